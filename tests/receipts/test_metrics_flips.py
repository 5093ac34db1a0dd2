"""Flips (issue #20 part 5): lost and gained answers against the teacher, their CIs, the diagnostic.

Constructed data with known counts; the CIs against an independent bootstrap written from the documented
index rule, McNemar against scipy's exact binomial test; the derived section and its diagnostic through a
real ``receipts run`` (fake models), including a forged number and results signed before flips existed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from receipts.cli import main
from receipts.derive import rederive
from receipts.metrics.diagnostics import DiagnosticInputs, diagnose
from receipts.metrics.flips import flips, lost_dominates

ROOT = Path(__file__).parents[2]

TEACHER = [1, 1, 1, 1, 0, 0, 1, 0, 1, 1]
STUDENT = [0, 0, 1, 0, 1, 0, 1, 0, 1, 1]  # lost: items 0, 1, 3; gained: item 4


def test_lost_and_gained_are_counted_by_direction() -> None:
    found = flips(TEACHER, STUDENT)
    assert (found.n, found.lost, found.gained) == (10, 3, 1)
    assert found.lost_rate.value == pytest.approx(0.3)
    assert found.gained_rate.value == pytest.approx(0.1)
    swapped = flips(STUDENT, TEACHER)  # the teacher's view of the student: directions swap
    assert (swapped.lost, swapped.gained) == (1, 3)


def test_rates_carry_the_paired_bootstrap_ci_of_the_documented_resamples() -> None:
    found = flips(TEACHER, STUDENT, n_resamples=2000, seed=7)
    index = np.random.Generator(np.random.PCG64(7)).integers(0, 10, size=(2000, 10))
    t, s = np.array(TEACHER)[index], np.array(STUDENT)[index]
    lost = ((t == 1) & (s == 0)).mean(axis=1)
    gained = ((t == 0) & (s == 1)).mean(axis=1)
    assert (found.lost_rate.low, found.lost_rate.high) == tuple(np.percentile(lost, [2.5, 97.5]))
    assert (found.gained_rate.low, found.gained_rate.high) == tuple(np.percentile(gained, [2.5, 97.5]))
    assert found.lost_rate.small_n


def test_mcnemar_of_lost_vs_gained_is_the_exact_binomial_test() -> None:
    found = flips(TEACHER, STUDENT)
    assert found.mcnemar.method == "exact"
    assert found.mcnemar.p_value == pytest.approx(stats.binomtest(3, 4, 0.5).pvalue)


@pytest.mark.parametrize(
    ("lost", "gained", "fires"),
    [
        (6, 0, True),  # exact p = 2/64 = 0.031
        (5, 0, False),  # p = 0.0625: too few to tell
        (10, 5, False),  # twice as many, but p = 0.30
        (20, 2, True),
        (20, 11, False),  # p < 0.05 is not enough: fewer than twice as many
        (0, 0, False),  # nothing discordant
        (2, 9, False),  # the student gains: the other direction
    ],
)
def test_lost_dominates_is_the_stated_rule(lost: int, gained: int, fires: bool) -> None:
    teacher = [1] * lost + [0] * gained
    student = [0] * lost + [1] * gained
    if not teacher:
        teacher, student = [1], [1]
    p = flips(teacher, student).mcnemar.p_value
    assert lost_dominates(lost, gained, p) is fires


def test_the_diagnostic_fires_on_a_critical_cohort_and_never_at_the_floor() -> None:
    inputs = DiagnosticInputs(student_accuracy=0.5, critical_flips={"critical=pii": (12, 1, 0.003)})
    (finding,) = diagnose(inputs)
    assert finding.id == "lost_capability"
    assert "loses 12 answers the teacher got right and gains 1" in finding.message
    assert "'critical=pii'" in finding.message
    assert dict(finding.evidence) == {"lost": 12.0, "gained": 1.0, "p_value": 0.003}
    assert diagnose(DiagnosticInputs(critical_flips={"critical": (12, 1, 0.003)}, at_floor=True)) == []
    assert diagnose(DiagnosticInputs(critical_flips={"critical": (12, 7, 0.2)})) == []


@pytest.mark.parametrize("value", [[0, 1, 2], [0.5, 1], []])
def test_inputs_that_are_not_binary_or_empty_are_refused(value: list[float]) -> None:
    with pytest.raises(ValueError, match=r"0 or 1|empty|at least"):
        flips(value, [1] * len(value))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("flips")
    roles = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.3"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        argv = ["run", str(ROOT / "packs" / "capitals-mc"), *roles, "--out", str(tmp / "r")]
        assert main([*argv, "--variant", "original"]) == 0
    results = json.loads((tmp / "r" / "results.json").read_bytes())
    rows = [json.loads(line) for line in (tmp / "r" / "examples.jsonl").read_bytes().splitlines()]
    return results, rows


def test_a_run_derives_flips_per_slice_and_the_lost_capability_finding(
    run: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    results, rows = run
    overall = results["flips"]["slices"]["all"]
    assert set(overall) == {"base", "student"}  # every role but the teacher
    teacher = [r["roles"]["teacher"]["score"] >= 0.5 for r in rows]
    student = [r["roles"]["student"]["score"] >= 0.5 for r in rows]
    lost = sum(t and not s for t, s in zip(teacher, student, strict=True))
    gained = sum(s and not t for t, s in zip(teacher, student, strict=True))
    assert (overall["student"]["lost"], overall["student"]["gained"]) == (lost, gained)
    critical = results["flips"]["slices"]["critical"]["student"]
    assert lost_dominates(critical["lost"], critical["gained"], critical["mcnemar"]["p_value"])
    assert "lost_capability" in [d["id"] for d in results["diagnostics"]]
    assert rederive(results, rows) == []


def test_a_forged_flip_count_or_rate_is_named(run: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    results, rows = run
    forged = json.loads(json.dumps(results))
    entry = forged["flips"]["slices"]["all"]["student"]
    real = entry["lost"]
    entry["lost"] = 1
    entry["gained_rate"]["value"] = 0.5
    found = rederive(forged, rows)
    assert f"$.flips.slices.all.student.lost: signed 1, re-derived {real}" in found
    assert any(d.startswith("$.flips.slices.all.student.gained_rate.value: signed 0.5") for d in found)


def test_results_signed_before_flips_still_rederive_but_cannot_keep_the_new_finding(
    run: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    results, rows = run
    old = {k: v for k, v in results.items() if k not in ("flips", "sequence_divergence")}
    old["diagnostics"] = [d for d in results["diagnostics"] if d["id"] != "lost_capability"]
    assert rederive(old, rows) == []  # no flips section: nothing claimed, no finding drawn from it
    claimed = {**old, "diagnostics": results["diagnostics"]}  # a finding whose evidence is not signed
    assert any(d.startswith("$.diagnostics") for d in rederive(claimed, rows))
