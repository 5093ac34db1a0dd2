"""receipts.metrics.task against independent references.

Hand-computed values, sklearn, SQuAD v2.0's token F1, and a verbatim copy of lm-eval's acc_norm choice.
"""

import collections
import re
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)
from sklearn.preprocessing import MultiLabelBinarizer

from receipts.metrics import task as m

# ------------------------------------------------------------------------------------------------------
# Reference 1 — lm-eval 0.4.x (EleutherAI/lm-evaluation-harness, MIT License). Copied verbatim: the lines
# of lm_eval/api/task.py ConfigurableTask.process_results (multiple_choice) that choose pred / pred_norm.


def lm_eval_mc_preds(lls, choices):
    completion_len = np.array([float(len(i)) for i in choices])
    pred = np.argmax(lls)
    pred_norm = np.argmax(lls / completion_len)
    return pred, pred_norm


# ------------------------------------------------------------------------------------------------------
# Reference 2 — SQuAD v2.0's official evaluate-v2.0.py definition of token F1 (normalize_answer,
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


def none_if_nan(x):
    return None if np.isnan(x) else pytest.approx(float(x), rel=1e-12)


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
