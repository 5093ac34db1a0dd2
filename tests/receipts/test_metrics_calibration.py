"""receipts.metrics.calibration against independent references.

Hand-computed values, sklearn, and verbatim copies of HELM's (verified_calibration's) ECE and selective
statistics and of lm-eval's Brier score and softmax.
"""

from typing import List, Tuple, TypeVar  # noqa: UP035 - the copied reference code uses them

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    brier_score_loss,
)

from receipts.metrics import calibration as m

# ------------------------------------------------------------------------------------------------------
# Reference 1 — HELM's ece_10_bin. HELM (stanford-crfm/helm, src/helm/benchmark/metrics/basic_metrics.py,
# compute_calibration_metrics) computes `ece_10_bin = cal.get_ece_em(max_probs, correct, num_bins=10)` with
# `import calibration as cal`, the uncertainty-calibration package. Copied verbatim (comments and the 1-D
# path of _get_ce only; MIT License, Copyright (c) 2019 Ananya Kumar) from p-lambda/verified_calibration,
# calibration/utils.py at commit bdd60a77025cc767382833385ff8cbed0760667a.

Data = List[Tuple[float, float]]  # List of (predicted_probability, true_label).  # noqa: UP006
Bins = List[float]  # List of bin boundaries, excluding 0.0, but including 1.0.  # noqa: UP006
BinnedData = List[Data]  # binned_data[i] contains the data in bin i.  # noqa: UP006
T = TypeVar("T")

eps = 1e-6


def split(sequence: List[T], parts: int) -> List[List[T]]:  # noqa: UP006
    assert parts <= len(sequence)
    array_splits = np.array_split(sequence, parts)
    splits = [list(l) for l in array_splits]  # noqa: E741
    assert len(splits) == parts
    return splits


def get_equal_bins(probs: List[float], num_bins: int = 10) -> Bins:  # noqa: UP006
    """Get bins that contain approximately an equal number of data points."""
    sorted_probs = sorted(probs)
    if num_bins > len(sorted_probs):
        num_bins = len(sorted_probs)
    binned_data = split(sorted_probs, num_bins)
    bins: Bins = []
    for i in range(len(binned_data) - 1):
        last_prob = binned_data[i][-1]
        next_first_prob = binned_data[i + 1][0]
        bins.append((last_prob + next_first_prob) / 2.0)
    bins.append(1.0)
    bins = sorted(list(set(bins)))
    return bins


def get_equal_prob_bins(probs: List[float], num_bins: int = 10) -> Bins:  # noqa: UP006
    return [i * 1.0 / num_bins for i in range(1, num_bins + 1)]


def get_ece(probs, labels, debias=False, num_bins=15, mode="top-label"):
    """Get ECE as computed by Guo et al."""
    return lower_bound_scaling_ce(
        probs, labels, p=1, debias=debias, num_bins=num_bins, binning_scheme=get_equal_prob_bins, mode=mode
    )


def get_ece_em(probs, labels, debias=False, num_bins=15, mode="top-label"):
    """Get ECE, but use equal mass binning."""
    return lower_bound_scaling_ce(
        probs, labels, p=1, debias=debias, num_bins=num_bins, binning_scheme=get_equal_bins, mode=mode
    )


def lower_bound_scaling_ce(
    probs, labels, p=2, debias=True, num_bins=15, binning_scheme=get_equal_bins, mode="marginal"
):
    return _get_ce(probs, labels, p, debias, num_bins, binning_scheme, mode=mode)


def _get_ce(probs, labels, p, debias, num_bins, binning_scheme, mode="marginal"):
    def ce_1d(probs, labels):
        assert probs.shape == labels.shape
        assert len(probs.shape) == 1
        data = list(zip(probs, labels))  # noqa: B905
        bins = binning_scheme(probs, num_bins=num_bins)
        return plugin_ce(bin(data, bins), power=p)

    probs = np.array(probs)
    labels = np.array(labels)
    if not (np.issubdtype(labels.dtype, np.integer)):
        raise ValueError("labels should an integer numpy array.")
    if len(probs.shape) == 1:
        # If 1D (2-class setting), compute the regular calibration error.
        if np.min(labels) < 0 or np.max(labels) > 1:
            raise ValueError("If probs is 1D, each label should be 0 or 1.")
        return ce_1d(probs, labels)
    raise NotImplementedError("only the 1-D path HELM uses is copied")


def bin(data: Data, bins: Bins):
    return fast_bin(data, bins)


def fast_bin(data, bins):
    prob_label = np.array(data)
    bin_indices = np.searchsorted(bins, prob_label[:, 0])
    bin_sort_indices = np.argsort(bin_indices)
    sorted_bins = bin_indices[bin_sort_indices]
    splits = np.searchsorted(sorted_bins, list(range(1, len(bins))))
    binned_data = np.split(prob_label[bin_sort_indices], splits)
    return binned_data


def difference_mean(data: Data) -> float:
    """Returns average pred_prob - average label."""
    data = np.array(data)
    ave_pred_prob = np.mean(data[:, 0])
    ave_label = np.mean(data[:, 1])
    return ave_pred_prob - ave_label


def get_bin_probs(binned_data: BinnedData) -> List[float]:  # noqa: UP006
    bin_sizes = list(map(len, binned_data))
    num_data = sum(bin_sizes)
    bin_probs = list(map(lambda b: b * 1.0 / num_data, bin_sizes))
    assert abs(sum(bin_probs) - 1.0) < eps
    return list(bin_probs)


def plugin_ce(binned_data: BinnedData, power=2) -> float:
    def bin_error(data: Data):
        if len(data) == 0:
            return 0.0
        return abs(difference_mean(data)) ** power

    bin_probs = get_bin_probs(binned_data)
    bin_errors = list(map(bin_error, binned_data))
    return np.dot(bin_probs, bin_errors) ** (1.0 / power)


def get_selective_stats(probs, correct):
    """Return area under coverage-accuracy curve, and acc for 10% most confident predictions."""
    # Sort in descending order.
    probs = np.array(probs)
    correct = np.array(correct)
    sort_indices = np.argsort(-probs)
    sorted_correct = correct[sort_indices]
    accs = np.cumsum(sorted_correct) / np.arange(1, len(sorted_correct) + 1)
    coverage_acc_area = np.mean(accs)
    acc_percentile_90 = accs[int(0.1 * len(sorted_correct))]
    return coverage_acc_area, acc_percentile_90


# ------------------------------------------------------------------------------------------------------
# Reference 2 — lm-eval 0.4.x (EleutherAI/lm-evaluation-harness, MIT License). Copied verbatim:
# lm_eval/api/metrics.py `brier_score` (the aggregation) and lm_eval/utils.py `softmax`.


def lm_eval_brier_score(items):  # This is a passthrough function
    gold, predictions = list(zip(*items))  # noqa: B905
    bs, num_class = np.array(predictions).shape  # noqa: RUF059

    gold = list(gold)
    gold_one_hot = np.eye(num_class)[gold]
    return np.mean(np.sum((predictions - gold_one_hot) ** 2, axis=1))


def lm_eval_softmax(x) -> np.ndarray:
    """Compute softmax values for each sets of scores in x."""
    e_x = np.exp(x - np.max(x))
    return e_x / e_x.sum()


unit = st.floats(0.0, 1.0, allow_nan=False)


# --------------------------------------------------------------------------- confidence and calibration


@pytest.mark.parametrize("lls", [[-1.0, -2.0, -3.0], [-100.0, -101.0], [-1e4, -3.0, -3.0, -7.5], [0.0]])
def test_choice_probabilities_match_scipy_and_lm_eval(lls):
    got = m.choice_probabilities(lls)
    np.testing.assert_allclose(got, scipy.special.softmax(lls), rtol=1e-12)
    np.testing.assert_array_equal(got, lm_eval_softmax(np.array(lls)))
    assert m.max_probability(lls) == pytest.approx(float(np.max(scipy.special.softmax(lls))), rel=1e-12)


def test_choice_probabilities_handle_minus_inf():
    np.testing.assert_array_equal(m.choice_probabilities([-np.inf, 0.0]), [0.0, 1.0])
    with pytest.raises(ValueError, match="must be finite"):
        m.choice_probabilities([-np.inf, -np.inf])


def test_mean_token_probability_hand_computed():
    assert m.mean_token_probability(np.log([0.5, 0.25, 1.0])) == pytest.approx(1.75 / 3)


def test_ece_hand_computed_equal_width():
    # 15 bins of width 1/15; 0.95 and 0.99 share the last bin, 0.5 and 0.52 share bin 7 ((7/15, 8/15])
    conf, correct = [0.95, 0.99, 0.5, 0.52], [1, 0, 1, 1]
    expected = 2 / 4 * abs(0.5 - 0.97) + 2 / 4 * abs(1.0 - 0.51)
    assert m.ece_equal_width(conf, correct) == pytest.approx(expected, rel=1e-12)


def test_ece_hand_computed_equal_mass():
    # 4 values, 10 bins requested -> 4 chunks; edges at midpoints 0.25, 0.45, 0.75 and 1.0
    conf, correct = [0.2, 0.3, 0.6, 0.9], [0, 1, 1, 1]
    bins = m.reliability_bins(conf, correct, n_bins=10, scheme="equal_mass")
    assert [(b.lower, b.upper, b.count) for b in bins] == [
        (0.0, 0.25, 1),
        (0.25, pytest.approx(0.45), 1),
        (pytest.approx(0.45), 0.75, 1),
        (0.75, 1.0, 1),
    ]
    assert m.ece_equal_mass(conf, correct) == pytest.approx((0.2 + 0.7 + 0.4 + 0.1) / 4, rel=1e-12)


FIXED_CASES = [
    (
        [0.9, 0.8, 0.75, 0.6, 0.55, 0.5, 0.99, 0.3, 0.45, 0.7, 0.66, 0.33],
        [1, 1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1],
    ),
    ([0.5] * 7 + [1.0] * 5 + [0.25] * 3, [1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1]),  # heavy ties, 1.0
    ([0.4, 0.8, 0.6], [0, 1, 1]),  # n < number of bins
    ([2 / 15, 1 / 15, 0.2, 1.0, 0.0], [1, 0, 1, 1, 0]),  # values exactly on equal-width edges, and 0
]


@pytest.mark.parametrize(("conf", "correct"), FIXED_CASES)
def test_ece_equal_mass_matches_helm_ece_10_bin(conf, correct):
    assert m.ece_equal_mass(conf, correct) == pytest.approx(get_ece_em(conf, correct, num_bins=10), abs=1e-12)
    ours = [b.count for b in m.reliability_bins(conf, correct, n_bins=10, scheme="equal_mass")]
    theirs = [len(b) for b in fast_bin(list(zip(conf, correct, strict=True)), get_equal_bins(conf, 10))]
    assert ours == theirs


@pytest.mark.parametrize(("conf", "correct"), FIXED_CASES)
def test_ece_equal_width_matches_guo_definition(conf, correct):
    assert m.ece_equal_width(conf, correct) == pytest.approx(get_ece(conf, correct, num_bins=15), abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(unit, st.integers(0, 1)), min_size=1, max_size=60))
def test_ece_random_inputs_match_references_and_lie_in_unit_interval(pairs):
    conf, correct = [c for c, _ in pairs], [y for _, y in pairs]
    em, ew = m.ece_equal_mass(conf, correct), m.ece_equal_width(conf, correct)
    assert 0.0 <= em <= 1.0
    assert 0.0 <= ew <= 1.0
    assert em == pytest.approx(get_ece_em(conf, correct, num_bins=10), abs=1e-12)
    assert ew == pytest.approx(get_ece(conf, correct, num_bins=15), abs=1e-12)


def test_ece_on_max_prob_of_random_mc_items_matches_helm():
    rng = np.random.default_rng(7)
    lls = rng.normal(-5, 2, size=(400, 4))
    conf = [m.max_probability(row) for row in lls]
    correct = rng.integers(0, 2, size=400).tolist()
    assert m.ece_equal_mass(conf, correct) == pytest.approx(get_ece_em(conf, correct, num_bins=10), abs=1e-12)


def test_reliability_bins_report_count_confidence_and_accuracy():
    bins = m.reliability_bins([0.05, 0.15, 0.12, 0.95], [0, 1, 0, 1], n_bins=10)
    assert len(bins) == 10
    assert sum(b.count for b in bins) == 4
    assert bins[0] == m.ReliabilityBin(0.0, 0.1, 1, 0.05, 0.0)
    assert bins[1].count == 2
    assert bins[1].mean_confidence == pytest.approx(0.135)
    assert bins[1].accuracy == 0.5
    assert bins[5] == m.ReliabilityBin(0.5, 0.6, 0, None, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidences": [1.2], "correct": [1]}, r"\[0, 1\]"),
        ({"confidences": [0.5], "correct": [2]}, "0 or 1"),
        ({"confidences": [0.5], "correct": [1], "n_bins": 0}, "n_bins"),
        ({"confidences": [0.5], "correct": [1], "scheme": "quantile"}, "scheme"),
    ],
)
def test_reliability_bins_reject_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        m.reliability_bins(**kwargs)


def test_brier_matches_lm_eval():
    rng = np.random.default_rng(3)
    lls = rng.normal(-4, 3, size=(50, 4))
    probs = [m.choice_probabilities(row) for row in lls]
    gold = rng.integers(0, 4, size=50).tolist()
    items = list(zip(gold, [lm_eval_softmax(row) for row in lls], strict=True))
    assert m.brier_score(probs, gold) == pytest.approx(lm_eval_brier_score(items), rel=1e-12)


def test_brier_binary_is_twice_sklearn_brier_score_loss():
    p1 = np.array([0.9, 0.2, 0.6, 0.35, 0.5])
    y = [1, 0, 0, 1, 1]
    probs = np.stack([1 - p1, p1], axis=1)
    assert m.brier_score(probs, y) == pytest.approx(2 * brier_score_loss(y, p1), rel=1e-12)


def test_brier_hand_computed_ragged():
    # item 1: (0.5-1)^2 + 0.5^2 = 0.5; item 2: 0.1^2 + (0.7-1)^2 + 0.2^2 = 0.14
    assert m.brier_score([[0.5, 0.5], [0.1, 0.7, 0.2]], [0, 1]) == pytest.approx(0.32)


def test_selective_stats_match_helm():
    rng = np.random.default_rng(11)
    conf, correct = rng.uniform(size=97), rng.integers(0, 2, size=97)
    area, acc10 = m.selective_stats(conf, correct)
    ref_area, ref_acc10 = get_selective_stats(conf.tolist(), correct.tolist())
    assert area == pytest.approx(ref_area, rel=1e-12)
    assert acc10 == pytest.approx(ref_acc10, rel=1e-12)


# ------------------------------------------------------------------------------------------- abstention


def test_abstention_stats_hand_computed():
    abstained = [0, 0, 1, 0, 1]
    correct = [1, 0, 1, 1, 0]  # item 3 abstained correctly (unanswerable), item 5 should have answered
    got = m.abstention_stats(abstained, correct)
    assert got == m.AbstentionStats(
        n=5, answered=3, coverage=0.6, selective_accuracy=2 / 3, overall_accuracy=0.6
    )
    assert m.abstention_stats([1, 1], [0, 1]).selective_accuracy is None


def test_abstain_agreement_hand_computed():
    got = m.abstain_agreement([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    assert got == m.AbstainAgreement(both=1, student_only=1, teacher_only=1, neither=2, rate=0.6)
