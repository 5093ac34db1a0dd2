"""receipts.metrics.diagnostics: each rule fires exactly on its documented thresholds."""

import pytest

from receipts.metrics import diagnostics as m

# ------------------------------------------------------------------------------------------ diagnostics


def ids(**kwargs):
    return [f.id for f in m.diagnose(m.DiagnosticInputs(**kwargs))]


def test_teacher_is_ceiling():
    assert ids(agreement_rate=0.95, student_accuracy=0.4, teacher_accuracy=0.42) == ["teacher_is_ceiling"]
    assert ids(agreement_rate=0.85, student_accuracy=0.4) == []
    assert ids(agreement_rate=0.95, student_accuracy=0.6) == []
    finding = m.diagnose(m.DiagnosticInputs(agreement_rate=0.9, student_accuracy=0.5))[0]
    assert finding.evidence == {"agreement_rate": 0.9, "student_accuracy": 0.5}


def test_coverage_gap_one_finding_per_weak_critical_slice():
    findings = m.diagnose(
        m.DiagnosticInputs(student_accuracy=0.85, critical_slices={"rare": 0.6, "common": 0.8})
    )
    assert [f.id for f in findings] == ["coverage_gap"]
    assert findings[0].evidence == {"aggregate": 0.85, "slice_score": 0.6, "gap": pytest.approx(0.25)}
    assert "'rare'" in findings[0].message
    assert ids(student_accuracy=0.6, critical_slices={"rare": 0.1}) == []


def test_recalibrate():
    assert ids(student_accuracy=0.8, student_ece=0.15) == ["recalibrate"]
    assert ids(student_accuracy=0.8, student_ece=0.05) == []
    assert ids(student_accuracy=0.5, student_ece=0.3) == []


def test_no_distillation_gain():
    assert ids(student_accuracy=0.705, sft_accuracy=0.70) == ["no_distillation_gain"]
    assert ids(student_accuracy=0.60, sft_accuracy=0.70) == ["no_distillation_gain"]
    assert ids(student_accuracy=0.75, sft_accuracy=0.70) == []
    assert ids(student_accuracy=0.75, sft_accuracy=0.70, student_minus_sft_ci=(-0.01, 0.1)) == [
        "no_distillation_gain"
    ]


def test_no_inputs_no_findings():
    assert m.diagnose(m.DiagnosticInputs()) == []


def test_no_rule_fires_when_every_role_is_at_the_floor():
    # the demo's behaviour-probes: every role 0, agreement 1.0 -> was "teacher is the ceiling" from zeros
    floor = {"agreement_rate": 1.0, "student_accuracy": 0.0, "teacher_accuracy": 0.0, "sft_accuracy": 0.0}
    assert ids(**floor) == ["teacher_is_ceiling", "no_distillation_gain"]
    assert ids(**floor, at_floor=True) == []


@pytest.mark.parametrize(
    ("values", "floor"),
    [
        ([0.0, 0, 0.0], True),
        ([0.0, 0.001], False),
        ([None, None], False),  # undefined (precision with nothing extracted) is not zero
        ([0.0, None], False),
        ([], False),  # no roles: nothing to say
        ([False, 0.0], False),  # a boolean is no score
        (iter([0.0, 0.0]), True),  # any iterable, read once
    ],
)
def test_one_floor_rule(values, floor):
    """The rule the diagnostics, the card's label and scorecard and the catalog index all use (issue #19)."""
    assert m.at_floor(values) is floor
