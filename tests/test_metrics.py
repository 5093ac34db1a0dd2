"""runner.metrics against independent references.

Hand-computed values, sklearn, scipy, torch, and verbatim copies of HELM's (verified_calibration's) ECE
and of lm-eval's Brier score, softmax and acc_norm choice.
"""

import collections
import json
import re
import string
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple, TypeVar  # noqa: UP035 - the copied reference code uses them

import jsonschema
import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    brier_score_loss,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)
from sklearn.preprocessing import MultiLabelBinarizer

from runner import metrics as m

ROOT = Path(__file__).resolve().parents[1]

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
# lm_eval/api/metrics.py `brier_score` (the aggregation), lm_eval/utils.py `softmax`, and the lines of
# lm_eval/api/task.py ConfigurableTask.process_results (multiple_choice) that choose pred / pred_norm.


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


def lm_eval_mc_preds(lls, choices):
    completion_len = np.array([float(len(i)) for i in choices])
    pred = np.argmax(lls)
    pred_norm = np.argmax(lls / completion_len)
    return pred, pred_norm


# ------------------------------------------------------------------------------------------------------
# Reference 3 — SQuAD v2.0's official evaluate-v2.0.py definition of token F1 (normalize_answer,
# get_tokens, compute_f1), restated.


def squad_normalize_answer(s):
    def remove_articles(text):
        return re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", text)

    def remove_punc(text):
        return "".join(ch for ch in text if ch not in set(string.punctuation))

    return " ".join(remove_articles(remove_punc(s.lower())).split())


def squad_compute_f1(a_gold, a_pred):
    gold_toks = squad_normalize_answer(a_gold).split() if a_gold else []
    pred_toks = squad_normalize_answer(a_pred).split() if a_pred else []
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


unit = st.floats(0.0, 1.0, allow_nan=False)


def none_if_nan(x):
    return None if np.isnan(x) else pytest.approx(float(x), rel=1e-12)


# ------------------------------------------------------------------------------------------------ module


def test_metrics_module_does_not_import_torch():
    code = "import sys, runner.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_exported_members():
    for name in m.__all__:
        assert hasattr(m, name), name


# -------------------------------------------------------------------------------------------------- task


def test_accuracy_is_the_mean_of_item_scores():
    assert m.accuracy([1, 0, 1, 1]) == 0.75
    assert m.accuracy([True, False]) == 0.5
    assert m.accuracy([0.5, 1.0]) == 0.75  # mean F1 works the same way


@pytest.mark.parametrize(("bad", "message"), [([], "at least one item"), ([1.0, float("nan")], "NaN")])
def test_accuracy_rejects_empty_and_nan(bad, message):
    with pytest.raises(ValueError, match=message):
        m.accuracy(bad)


def test_exact_match_compares_normalised_strings():
    assert m.exact_match("paris", "paris") == 1.0
    assert m.exact_match("paris", "paris france") == 0.0


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        ("a b c", "a b d", 2 / 3),  # P = R = 2/3
        ("cat", "cat sat on mat", 2 * 1 * 0.25 / 1.25),  # P = 1, R = 1/4 -> 0.4
        ("a a b", "a b b", 2 / 3),  # bag overlap {a: 1, b: 1} = 2 of 3 on each side
        ("x y", "z", 0.0),
        ("", "", 1.0),  # SQuAD v2.0 no-answer rule
        ("", "a", 0.0),
        ("a", "", 0.0),
    ],
)
def test_token_f1_hand_computed(pred, ref, expected):
    assert m.token_f1(pred, ref) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("in 1889, in Paris", "Paris, 1889"),
        ("an apple a day", "the apple"),
        ("no", ""),
        ("", ""),
        ("A B C D", "d c b a a"),
    ],
)
def test_token_f1_matches_squad_v2(pred, gold):
    ours = m.token_f1(squad_normalize_answer(pred), squad_normalize_answer(gold))
    assert ours == pytest.approx(squad_compute_f1(gold, pred), rel=1e-15)


def test_extraction_prf_hand_computed():
    gold = [
        {"party": "acme", "term": "12 months", "law": None},
        {"party": "globex", "term": "24 months", "law": "ny"},
    ]
    pred = [
        {"party": "acme", "term": "6 months", "law": "de"},  # TP party; term FP+FN; law FP
        {"party": "globex", "law": "ny", "extra": "x"},  # TP party; term FN; law TP; extra ignored
    ]
    scores = m.extraction_prf(gold, pred, fields=["party", "term", "law"])
    assert scores.per_field["party"] == m.PRF(2, 0, 0, 1.0, 1.0, 1.0)
    assert scores.per_field["term"] == m.PRF(0, 1, 2, 0.0, 0.0, 0.0)
    assert scores.per_field["law"] == m.PRF(1, 1, 0, 0.5, 1.0, pytest.approx(2 / 3))
    micro = scores.micro
    assert (micro.tp, micro.fp, micro.fn) == (3, 2, 2)
    assert micro.precision == pytest.approx(0.6)
    assert micro.recall == pytest.approx(0.6)
    assert micro.f1 == pytest.approx(0.6)
    # without a declared field list every key seen is scored, so the spurious "extra" is a false positive
    assert m.extraction_prf(gold, pred).per_field["extra"] == m.PRF(0, 1, 0, 0.0, None, 0.0)


def test_extraction_prf_undefined_ratios_are_none():
    scores = m.extraction_prf([{"a": None}], [{}], fields=["a"])
    assert scores.per_field["a"] == m.PRF(0, 0, 0, None, None, None)


def sklearn_extraction(gold, pred, fields):
    """The set view: an item is the set of "field=value" labels it holds; sklearn multilabel P/R/F1."""

    def labels(item):
        return {f"{k}={item[k]!r}" for k in fields if item.get(k) is not None}

    y_true, y_pred = [labels(g) for g in gold], [labels(p) for p in pred]
    binarizer = MultiLabelBinarizer().fit(y_true + y_pred + [{"__pad__"}])
    yt, yp = binarizer.transform(y_true), binarizer.transform(y_pred)
    classes = list(binarizer.classes_)

    def prf(names):
        idx = [i for i, c in enumerate(classes) if c.split("=", 1)[0] in names]
        if not idx:
            return (np.nan, np.nan, np.nan)
        p, r, f, _ = precision_recall_fscore_support(
            yt, yp, labels=idx, average="micro", zero_division=np.nan
        )
        return p, r, f

    return prf(set(fields)), {f: prf({f}) for f in fields}


field_values = st.one_of(st.none(), st.sampled_from(["x", "y", "z"]))
records = st.fixed_dictionaries({}, optional={k: field_values for k in ("a", "b", "c")})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(records, records), min_size=1, max_size=12))
def test_extraction_prf_matches_sklearn_multilabel(pairs):
    gold, pred = [g for g, _ in pairs], [p for _, p in pairs]
    fields = ["a", "b", "c"]
    ours = m.extraction_prf(gold, pred, fields=fields)
    micro, per_field = sklearn_extraction(gold, pred, fields)
    for got, want in [(ours.micro, micro), *((ours.per_field[f], per_field[f]) for f in fields)]:
        if got.tp + got.fp + got.fn == 0:
            assert (got.precision, got.recall, got.f1) == (None, None, None)
            continue
        assert (got.precision, got.recall, got.f1) == tuple(none_if_nan(x) for x in want)


def test_precision_recall_at_threshold_matches_sklearn_and_is_inclusive():
    scores = [0.1, 0.5, 0.7, 0.5, 0.9, 0.3, 0.49999]
    labels = [0, 1, 1, 0, 1, 1, 1]
    got = m.precision_recall_at(scores, labels, 0.5)
    decided = (np.array(scores) >= 0.5).astype(int)
    assert decided.tolist() == [0, 1, 1, 1, 1, 0, 0]
    assert got.precision == pytest.approx(precision_score(labels, decided))
    assert got.recall == pytest.approx(recall_score(labels, decided))
    assert got.f1 == pytest.approx(f1_score(labels, decided))
    assert (got.tp, got.fp, got.fn) == (3, 1, 2)


# ---------------------------------------------------------------------------------------- multiple choice


@pytest.mark.parametrize(
    ("lls", "choices", "gold"),
    [
        ([-5.0, -3.0, -3.0], ["a", "bb", "c"], 1),  # tie on acc: the first maximum (index 1) wins
        ([-4.0, -6.0, -9.0], ["no", "yes please", "certainly not"], 1),  # norm: -2, -0.6, -0.69
        ([-2.0, -2.0], ["same", "same"], 1),  # full tie: index 0 both ways
        ([-1.5, -10.0, -0.5, -30.0], ["A", "Paris, France", "B", "Lyon and also Marseille"], 3),
    ],
)
def test_score_choices_matches_lm_eval(lls, choices, gold):
    pred, pred_norm = lm_eval_mc_preds(lls, choices)
    got = m.score_choices(lls, choices, gold)
    assert (got.pred, got.pred_norm) == (pred, pred_norm)
    assert got.acc == float(pred == gold)
    assert got.acc_norm == float(pred_norm == gold)


def test_score_choices_hand_computed():
    got = m.score_choices([-4.0, -6.0, -9.0], ["no", "yes please", "certainly not"], 1)
    assert got == m.ChoiceScore(pred=0, pred_norm=1, acc=0.0, acc_norm=1.0)


@pytest.mark.parametrize(
    ("lls", "choices", "gold", "message"),
    [
        ([-1.0, -2.0], ["a", ""], 0, "choice text is empty"),
        ([-1.0, -2.0], ["a", "b"], 2, "out of range"),
        ([-1.0], ["a", "b"], 0, "differ in length"),
    ],
)
def test_score_choices_rejects_bad_items(lls, choices, gold, message):
    with pytest.raises(ValueError, match=message):
        m.score_choices(lls, choices, gold)


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


# --------------------------------------------------------------------------------------------- fidelity


def test_agreement_and_cells_hand_computed():
    student = ["a", "b", "c", "d", "a"]
    teacher = ["a", "b", "x", "y", "a"]
    teacher_correct = [1, 0, 1, 0, 1]
    assert m.agreement_rate(student, teacher) == 0.6
    cells = m.fidelity_cells(student, teacher, teacher_correct)
    assert cells == m.FidelityCells(2, 1, 1, 1)
    assert cells.n == 5
    assert cells.agreement_rate == 0.6


def test_two_unreadable_answers_do_not_agree():
    student = [None, None, "a", "b"]
    teacher = [None, "a", None, "b"]
    assert m.agreement_rate(student, teacher) == 0.25
    assert m.fidelity_cells(student, teacher, [0, 1, 1, 1]) == m.FidelityCells(1, 0, 2, 1)


@given(
    st.lists(st.tuples(st.none() | st.integers(0, 3), st.none() | st.integers(0, 3)), min_size=1, max_size=40)
)
def test_agreement_is_symmetric_and_matches_cells(pairs):
    s, t = [a for a, _ in pairs], [b for _, b in pairs]
    assert m.agreement_rate(s, t) == m.agreement_rate(t, s)
    assert m.fidelity_cells(s, t, [1] * len(s)).agreement_rate == m.agreement_rate(s, t)


def log_softmax_rows(x):
    return x - scipy.special.logsumexp(x, axis=1, keepdims=True)


def test_token_kl_matches_scipy_entropy_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    teacher = log_softmax_rows(rng.normal(size=(7, 50)) * 3)
    student = log_softmax_rows(rng.normal(size=(7, 50)) * 3)
    expected = np.mean(
        [scipy.stats.entropy(np.exp(t), np.exp(s)) for t, s in zip(teacher, student, strict=True)]
    )
    assert m.token_kl(teacher, student) == pytest.approx(expected, rel=1e-10)
    via_torch = torch.nn.functional.kl_div(
        torch.from_numpy(student), torch.from_numpy(teacher), reduction="batchmean", log_target=True
    )
    assert m.token_kl(teacher, student) == pytest.approx(via_torch.item(), rel=1e-10)
    assert m.token_kl(teacher, teacher) == 0.0


def test_token_kl_zero_and_infinite_terms_raise_no_warnings():
    with np.errstate(divide="ignore"):  # log(0) = -inf is the point of this fixture
        teacher = np.log(np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]))  # -inf entries contribute 0
        student = np.log(np.array([[0.2, 0.4, 0.4], [0.5, 0.5, 0.0]]))
        zero_where_teacher_is_not = np.log([[1.0, 0.0]])
    expected = np.mean([scipy.stats.entropy([0, 0.5, 0.5], [0.2, 0.4, 0.4]), np.log(2.0)])
    assert m.token_kl(teacher, student) == pytest.approx(expected, rel=1e-12)
    assert m.token_kl(np.log([[0.5, 0.5]]), zero_where_teacher_is_not) == np.inf


def test_choice_kl_matches_scipy_entropy():
    t, s = [-1.0, -2.5, -4.0, -0.7], [-3.0, -0.2, -4.0, -1.1]
    expected = scipy.stats.entropy(scipy.special.softmax(t), scipy.special.softmax(s))
    assert m.choice_kl(t, s) == pytest.approx(expected, rel=1e-12)
    assert m.choice_kl(t, t) == pytest.approx(0.0, abs=1e-15)


def test_kl_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        m.token_kl(np.zeros((2, 3)), np.zeros((3, 3)))


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
    assert set(m.REASONS) == {m.GAP_BELOW_MIN, m.GAP_CI_CONTAINS_ZERO, m.TEACHER_ZERO}


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
    assert m.paired_bootstrap({"s": [1] * 30})["s"] == m.Estimate(1.0, 1.0, 1.0, 30, False)


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


# ------------------------------------------------------------------------------------------------- gate

RULES = {
    "max_global_regression": 0.03,
    "max_critical_regression": 0.01,
    "min_retention": 0.8,
    "max_cost_ratio": 0.15,
    "max_ece_increase": 0.02,
}


def test_gate_passes_with_all_inputs_within_bounds():
    observed = {
        "global_regression": 0.80 - 0.77,  # 0.030000000000000027: within the documented tolerance
        "critical_regression": 0.0,
        "retention": 0.8,
        "cost_ratio": 0.1,
        "ece_increase": -0.01,
    }
    result = m.evaluate_gate(RULES, observed)
    assert result.verdict == "pass"
    assert [r.status for r in result.rules] == ["pass"] * 5
    assert result.reason is None


def test_gate_fails_when_any_rule_fails_even_with_missing_inputs():
    observed = {"global_regression": 0.05, "retention": None, "cost_ratio": 0.1}
    result = m.evaluate_gate(RULES, observed)
    assert result.verdict == "fail"
    by_rule = {r.rule: r for r in result.rules}
    assert by_rule["max_global_regression"] == m.RuleResult(
        "max_global_regression", "fail", 0.03, 0.05, "global_regression"
    )
    assert by_rule["min_retention"].status == "not_evaluated"
    assert by_rule["max_ece_increase"].status == "not_evaluated"
    assert "max_global_regression" in (result.reason or "")


def test_gate_not_evaluated_when_inputs_are_missing():
    result = m.evaluate_gate(
        {"min_retention": 0.8, "max_cost_ratio": 0.15}, {"cost_ratio": 0.1, "retention": None}
    )
    assert result.verdict == "not_evaluated"
    assert result.reason == "missing inputs: retention"
    assert m.evaluate_gate({}, {}).verdict == "not_evaluated"
    assert m.evaluate_gate({"min_retention": 0.8}, {"retention": 0.79}).verdict == "fail"


def test_gate_rejects_unknown_rules_and_bad_thresholds():
    with pytest.raises(ValueError, match="unknown gate rule 'max_regression'"):
        m.evaluate_gate({"max_regression": 0.1}, {})
    with pytest.raises(ValueError, match="finite"):
        m.evaluate_gate({"min_retention": float("nan")}, {})


def test_gate_dict_validates_against_the_statement_schema():
    schema = json.loads((ROOT / "schema" / "statement.schema.json").read_text())["$defs"]["gate"]
    for observed in ({"global_regression": 0.5}, {}, dict.fromkeys(["global_regression", "cost_ratio"], 0.0)):
        jsonschema.validate(m.evaluate_gate(RULES, observed).as_dict(), schema)


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
