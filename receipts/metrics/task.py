"""Task metrics (DESIGN §4): accuracy, exact match, token F1, extraction P/R/F1, multiple-choice scoring."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from receipts.metrics.arrays import binary_array, float_array, ratio, same_length

__all__ = [
    "PRF",
    "ChoiceScore",
    "ExtractionScores",
    "accuracy",
    "exact_match",
    "extraction_prf",
    "precision_recall_at",
    "score_choices",
    "token_f1",
]


def accuracy(scores: npt.ArrayLike) -> float:
    """Mean of per-item scores: accuracy for 0/1 scores, mean EM or mean F1 for those.

    Raises:
        ValueError: no items, or a NaN score.
    """
    return float(np.mean(float_array(scores, "scores")))


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the two already-normalised strings are equal, else 0.0 (SQuAD ``compute_exact``)."""
    return 1.0 if prediction == reference else 0.0


def token_f1(prediction: str, reference: str) -> float:
    """Token F1 of two already-normalised strings, SQuAD v2.0's ``compute_f1``.

    Tokens are ``str.split()`` of each string; overlap counts tokens with multiplicity (bag
    intersection). F1 = 2PR/(P+R) with P = overlap/|pred|, R = overlap/|ref|; 0 when there is no
    overlap. If either side has no tokens, F1 is 1.0 when both are empty and 0.0 otherwise (the v2.0
    script's no-answer rule; v1.1 would give 0 for two empties). Tested against hand-computed values
    and SQuAD v2.0's definition composed with its ``normalize_answer``.
    """
    pred, ref = prediction.split(), reference.split()
    if not pred or not ref:
        return float(pred == ref)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class PRF:
    """Counts and precision/recall/F1; a ratio with a zero denominator is ``None``.

    precision = tp/(tp+fp), recall = tp/(tp+fn), f1 = 2tp/(2tp+fp+fn) (the harmonic mean of P and R
    whenever both are defined; sklearn's formula, ``zero_division=nan`` mapped to ``None``).
    """

    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int) -> PRF:
        """Build from the three counts."""
        return cls(tp, fp, fn, ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(2 * tp, 2 * tp + fp + fn))


@dataclass(frozen=True)
class ExtractionScores:
    """Per-field and micro-averaged (all fields pooled) precision/recall/F1 of an extraction task."""

    micro: PRF
    per_field: Mapping[str, PRF]


def extraction_prf(
    gold: Sequence[Mapping[str, object]],
    predicted: Sequence[Mapping[str, object]],
    fields: Sequence[str] | None = None,
) -> ExtractionScores:
    """Per-field precision/recall/F1 for structured extraction (e.g. contract clauses -> JSON).

    Values must already be normalised; ``None`` and an absent key both mean "no value". Per item and
    field, with g the gold value and p the predicted one:

    * g and p present, p == g: one true positive;
    * g and p present, p != g: one false positive *and* one false negative (a wrong value is both a
      spurious prediction and a missed gold value — the usual slot-filling convention);
    * g present, p absent: one false negative;  g absent, p present: one false positive;
    * both absent: nothing (a true negative, which P/R/F1 do not use).

    Equivalently: each item is the set of (field, value) pairs it holds, TP = |gold ∩ pred|,
    FP = |pred - gold|, FN = |gold - pred|; that is how sklearn's multilabel micro P/R/F1 checks it.
    ``fields`` limits scoring to the declared fields (other predicted keys are ignored — schema
    validity is scored separately); by default every key seen in gold or predictions is scored.

    Raises:
        ValueError: gold and predicted differ in length or are empty.
    """
    same_length(gold, predicted)
    names = list(fields) if fields is not None else sorted({k for item in (*gold, *predicted) for k in item})
    counts = {name: [0, 0, 0] for name in names}
    for gold_item, pred_item in zip(gold, predicted, strict=True):
        for name in names:
            g, p = gold_item.get(name), pred_item.get(name)
            tally = counts[name]
            if g is not None and p is not None and g == p:
                tally[0] += 1
                continue
            tally[1] += p is not None
            tally[2] += g is not None
    per_field = {name: PRF.from_counts(*c) for name, c in counts.items()}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    return ExtractionScores(PRF.from_counts(tp, fp, fn), per_field)


def precision_recall_at(scores: npt.ArrayLike, labels: npt.ArrayLike, threshold: float) -> PRF:
    """Precision/recall/F1 of the decision "positive iff score >= threshold" against 0/1 labels.

    The comparison is inclusive (a score equal to the pack's stated threshold is positive). Tested
    against ``sklearn.metrics.precision_score``/``recall_score``/``f1_score`` on ``scores >= t``.

    Raises:
        ValueError: mismatched or empty inputs, non-binary labels.
    """
    s, y = float_array(scores, "scores"), binary_array(labels, "labels")
    same_length(s, y)
    predicted = s >= threshold
    positive = y == 1.0
    return PRF.from_counts(
        int(np.sum(predicted & positive)),
        int(np.sum(predicted & ~positive)),
        int(np.sum(~predicted & positive)),
    )


@dataclass(frozen=True)
class ChoiceScore:
    """One multiple-choice item scored as lm-eval does: argmax choice, raw and length-normalised."""

    pred: int
    pred_norm: int
    acc: float
    acc_norm: float


def score_choices(logliks: Sequence[float], choices: Sequence[str], gold: int) -> ChoiceScore:
    """Score one MC item from its per-choice summed continuation log-likelihoods.

    ``pred = argmax(logliks)``; ``pred_norm = argmax(logliks / len(choice))`` where ``len`` counts the
    characters of the choice text itself (without the target delimiter), exactly lm-eval 0.4.x's
    ``ConfigurableTask.process_results`` (``completion_len = [float(len(i)) for i in choices]``).
    Ties go to the first maximum (``np.argmax``), as in lm-eval. acc/acc_norm are 1.0 when the
    prediction equals ``gold``.

    Raises:
        ValueError: lengths differ, no choices, an empty choice text, NaN, or gold out of range.
    """
    lls = float_array(logliks, "logliks")
    same_length(lls, choices)
    if not 0 <= gold < len(choices):
        raise ValueError(f"gold index {gold} is out of range for {len(choices)} choices")
    lengths = np.array([float(len(c)) for c in choices])
    if (lengths == 0).any():
        raise ValueError("acc_norm divides by the choice length: a choice text is empty")
    pred, pred_norm = int(np.argmax(lls)), int(np.argmax(lls / lengths))
    return ChoiceScore(pred, pred_norm, float(pred == gold), float(pred_norm == gold))
