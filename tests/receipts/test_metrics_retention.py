"""receipts.metrics.retention: hand-computed values, null rules and invariants."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from receipts.metrics import retention as m

unit = st.floats(0.0, 1.0, allow_nan=False)


# -------------------------------------------------------------------------------------------- retention


def test_retention_hand_computed():
    assert m.retention(0.7, 0.8, 0.4) == m.Retention(pytest.approx(0.75))
    assert m.retention(0.3, 0.8, 0.4).value == pytest.approx(-0.25)  # below base
    assert m.retention(0.9, 0.8, 0.4).value == pytest.approx(1.25)  # above teacher


def test_retention_null_rules():
    assert m.retention(0.7, 0.505, 0.5) == m.Retention(None, m.GAP_BELOW_MIN)
    assert m.retention(0.7, 0.8, 0.4, gap_ci=(-0.01, 0.6)) == m.Retention(None, m.GAP_CI_CONTAINS_ZERO)
    assert m.retention(0.7, 0.8, 0.4, gap_ci=(0.0, 0.6)).reason == m.GAP_CI_CONTAINS_ZERO  # inclusive
    assert m.retention(0.7, 0.8, 0.4, gap_ci=(0.2, 0.6)).value == pytest.approx(0.75)
    assert set(m.REASONS) == {
        m.GAP_BELOW_MIN,
        m.GAP_CI_CONTAINS_ZERO,
        m.TEACHER_ZERO,
    }


def test_retention_rejects_non_finite_scores():
    with pytest.raises(ValueError, match="finite"):
        m.retention(float("nan"), 0.8, 0.4)
    with pytest.raises(ValueError, match="finite"):
        m.teacher_ratio(0.5, float("inf"))


def test_teacher_ratio():
    assert m.teacher_ratio(0.6, 0.8) == m.Retention(pytest.approx(0.75))
    assert m.teacher_ratio(0.6, 0.0) == m.Retention(None, m.TEACHER_ZERO)


@given(unit, unit, unit)
def test_retention_invariants(s, t, b):
    r = m.retention(s, t, b)
    if abs(t - b) < m.RETENTION_MIN_GAP:
        assert r == m.Retention(None, m.GAP_BELOW_MIN)
        return
    assert r.reason is None
    assert m.retention(t, t, b).value == pytest.approx(1.0)
    assert m.retention(b, t, b).value == pytest.approx(0.0, abs=1e-12)
    assert (r.value >= 0) == ((s - b) * (t - b) >= 0)
    assert r.value * (t - b) + b == pytest.approx(s, abs=1e-9)


def test_retention_replicates_follow_the_null_rule_per_resample():
    student = np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    teacher = np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    base = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]])
    found = m.replicate_retention(student, teacher, base)
    assert found[0] == 0.5
    assert np.isnan(found[1])  # teacher = base on this resample: nothing to retain


def test_retention_interval_skips_a_few_undefined_resamples_and_nulls_many():
    replicates = np.linspace(0.0, 1.0, 1000)
    replicates[:50] = np.nan  # 5%: still an interval, over the 950 defined
    found = m.retention_interval(m.Retention(0.7), replicates)
    assert found.undefined == 50
    assert found.low == pytest.approx(np.percentile(replicates[50:], 2.5))
    replicates[50] = np.nan  # one more than 5%: too unstable for an interval
    assert m.retention_interval(m.Retention(0.7), replicates) == m.RetentionInterval(None, None, 51)
    assert m.retention_interval(m.Retention(None, m.GAP_BELOW_MIN), np.ones(1000)).low is None
