"""receipts.metrics.uncertainty against the documented PCG64 stream and scipy."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from receipts.metrics import uncertainty as m

# ------------------------------------------------------------------------------------------ uncertainty


def test_bootstrap_indices_are_the_documented_pcg64_stream():
    idx = m.bootstrap_indices(17, seed=42)
    expected = np.random.Generator(np.random.PCG64(42)).integers(0, 17, size=(1000, 17))
    np.testing.assert_array_equal(idx, expected)
    with pytest.raises(ValueError, match="at least 1000"):
        m.bootstrap_indices(17, n_resamples=999)


def test_paired_bootstrap_uses_the_same_items_for_every_role():
    rng = np.random.default_rng(0)
    teacher, base = rng.integers(0, 2, 80).astype(float), rng.integers(0, 2, 80).astype(float)
    got = m.paired_bootstrap(
        {"teacher": teacher, "base": base},
        {"t": m.role_mean("teacher"), "t_minus_b": m.role_difference("teacher", "base")},
        seed=9,
    )
    idx = np.random.Generator(np.random.PCG64(9)).integers(0, 80, size=(1000, 80))
    diffs = teacher[idx].mean(axis=1) - base[idx].mean(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    est = got["t_minus_b"]
    assert est.value == pytest.approx(teacher.mean() - base.mean())
    assert (est.low, est.high) == (pytest.approx(low), pytest.approx(high))
    assert est.n == 80
    assert not est.small_n
    assert got["t"].value == pytest.approx(teacher.mean())


def test_paired_bootstrap_is_deterministic_and_flags_small_n():
    scores = {"student": [1, 0, 1, 1, 0, 1, 1, 0, 1, 1]}
    first, second = m.paired_bootstrap(scores), m.paired_bootstrap(scores)
    assert first == second
    assert first["student"].small_n
    assert first["student"].value == 0.7
    assert m.paired_bootstrap({"s": [1] * 30})["s"] == m.Estimate(1.0, 1.0, 1.0, 30, False, 0.0)


def test_the_bootstrap_standard_error_is_the_replicates_standard_deviation():
    scores = {"a": [1, 0, 1, 1, 0, 1, 1, 0, 1, 1] * 4}
    found = m.bootstrap_replicates(scores, {"a": m.role_mean("a")})["a"]
    assert m.paired_bootstrap(scores)["a"].se == pytest.approx(float(np.std(found.replicates, ddof=1)))
    # the binomial standard error of a mean of 40 Bernoulli(0.7) scores, within bootstrap noise
    assert m.paired_bootstrap(scores)["a"].se == pytest.approx((0.7 * 0.3 / 40) ** 0.5, rel=0.1)


@pytest.mark.parametrize(
    ("scores", "kwargs", "message"),
    [
        ({}, {}, "at least one role"),
        ({"a": [1, 0], "b": [1]}, {}, "differ in length"),
        ({"a": [1, 0]}, {"confidence": 1.0}, "confidence"),
        ({"a": [1, 0]}, {"n_resamples": 100}, "at least 1000"),
    ],
)
def test_paired_bootstrap_rejects_bad_input(scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        m.paired_bootstrap(scores, **kwargs)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=100, max_size=400), st.integers(0, 2**32 - 1))
def test_bootstrap_ci_contains_the_point_estimate_for_large_n(scores, seed):
    est = m.paired_bootstrap({"s": scores}, seed=seed)["s"]
    assert est.contains(est.value)
    assert 0.0 <= est.low <= est.high <= 1.0


@pytest.mark.parametrize(
    ("only_a", "only_b", "both"), [(0, 0, 5), (3, 0, 2), (1, 6, 4), (7, 7, 1), (12, 12, 0)]
)
def test_mcnemar_exact_matches_scipy_binomtest(only_a, only_b, both):
    a = [1] * only_a + [0] * only_b + [1] * both
    b = [0] * only_a + [1] * only_b + [1] * both
    got = m.mcnemar(a, b)
    assert got.method == "exact"
    assert (got.only_a, got.only_b) == (only_a, only_b)
    d = only_a + only_b
    expected = 1.0 if d == 0 else scipy.stats.binomtest(min(only_a, only_b), d, 0.5).pvalue
    assert got.p_value == pytest.approx(expected, rel=1e-12)
    assert got.statistic == min(only_a, only_b)


@pytest.mark.parametrize(("only_a", "only_b"), [(20, 5), (13, 12), (40, 60), (100, 3)])
def test_mcnemar_chi2_matches_scipy(only_a, only_b):
    a = [1] * only_a + [0] * only_b + [0] * 9
    b = [0] * only_a + [1] * only_b + [0] * 9
    got = m.mcnemar(a, b)
    statistic = (abs(only_a - only_b) - 1) ** 2 / (only_a + only_b)
    assert got.method == "chi2"
    assert got.statistic == pytest.approx(statistic, rel=1e-15)
    assert got.p_value == pytest.approx(scipy.stats.chi2.sf(statistic, 1), rel=1e-9)


def test_mcnemar_switches_to_chi2_at_25_discordant_pairs():
    assert m.mcnemar([1] * 24, [0] * 24).method == "exact"
    assert m.mcnemar([1] * 25, [0] * 25).method == "chi2"
