"""The metric definitions of DESIGN §4, as pure functions over per-item numbers.

Sections, in order: task · multiple choice · confidence and calibration · abstention · fidelity ·
retention · uncertainty · gate · diagnostics. Nothing here imports torch, reads files or keeps state;
the runner hands these functions per-item arrays and records what they return. Each docstring states
the exact definition and the reference it is tested against in ``tests/test_metrics.py``.

Conventions: ``correct``/binary inputs are 0/1 or bools; probabilities lie in [0, 1]; an undefined
ratio is ``None`` (never NaN, never a numpy warning); empty or mismatched inputs raise ``ValueError``
(a caller bug, not user input).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from receipts.gate import GATE_RULES, GATE_TOLERANCE, GateResult, RuleResult, evaluate_gate

__all__ = [
    "BAD_ECE",
    "COVERAGE_GAP",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "GAP_BELOW_MIN",
    "GAP_CI_CONTAINS_ZERO",
    "GATE_RULES",
    "GATE_TOLERANCE",
    "GOOD_ACCURACY",
    "HIGH_AGGREGATE",
    "HIGH_AGREEMENT",
    "LOW_ACCURACY",
    "MCNEMAR_EXACT_BELOW",
    "PRF",
    "REASONS",
    "RETENTION_MIN_GAP",
    "SFT_MARGIN",
    "SMALL_N",
    "TEACHER_ZERO",
    "AbstainAgreement",
    "AbstentionStats",
    "ChoiceScore",
    "DiagnosticInputs",
    "Estimate",
    "ExtractionScores",
    "FidelityCells",
    "Finding",
    "FloatArray",
    "GateResult",
    "McNemar",
    "ReliabilityBin",
    "Retention",
    "RuleResult",
    "abstain_agreement",
    "abstention_stats",
    "accuracy",
    "agreement_rate",
    "agrees",
    "bootstrap_indices",
    "brier_score",
    "calibration_error",
    "choice_kl",
    "choice_probabilities",
    "diagnose",
    "ece_equal_mass",
    "ece_equal_width",
    "evaluate_gate",
    "exact_match",
    "extraction_prf",
    "fidelity_cells",
    "max_probability",
    "mcnemar",
    "mean_token_probability",
    "paired_bootstrap",
    "precision_recall_at",
    "reliability_bins",
    "retention",
    "role_difference",
    "role_mean",
    "score_choices",
    "selective_stats",
    "teacher_ratio",
    "token_f1",
    "token_kl",
]

FloatArray = npt.NDArray[np.float64]

# --------------------------------------------------------------------------------------------- helpers


def _floats(values: npt.ArrayLike, name: str, *, ndim: int = 1) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name}: needs at least one item")
    if np.isnan(array).any():
        raise ValueError(f"{name}: contains NaN")
    return array


def _binary(values: npt.ArrayLike, name: str) -> FloatArray:
    array = _floats(values, name)
    if not np.isin(array, (0.0, 1.0)).all():
        raise ValueError(f"{name}: every value must be 0 or 1")
    return array


def _probabilities(values: npt.ArrayLike, name: str) -> FloatArray:
    array = _floats(values, name)
    if ((array < 0.0) | (array > 1.0)).any():
        raise ValueError(f"{name}: every probability must lie in [0, 1]")
    return array


def _same_length(*arrays: Sized) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"paired inputs differ in length: {sorted(lengths)}")
    (n,) = lengths
    if n == 0:
        raise ValueError("needs at least one item")
    return n


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


# ------------------------------------------------------------------------------------------------ task


def accuracy(scores: npt.ArrayLike) -> float:
    """Mean of per-item scores: accuracy for 0/1 scores, mean EM or mean F1 for those.

    Raises:
        ValueError: no items, or a NaN score.
    """
    return float(np.mean(_floats(scores, "scores")))


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
        return cls(tp, fp, fn, _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn))


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
    _same_length(gold, predicted)
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
    s, y = _floats(scores, "scores"), _binary(labels, "labels")
    _same_length(s, y)
    predicted = s >= threshold
    positive = y == 1.0
    return PRF.from_counts(
        int(np.sum(predicted & positive)),
        int(np.sum(predicted & ~positive)),
        int(np.sum(~predicted & positive)),
    )


# ------------------------------------------------------------------------------------- multiple choice


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
    lls = _floats(logliks, "logliks")
    _same_length(lls, choices)
    if not 0 <= gold < len(choices):
        raise ValueError(f"gold index {gold} is out of range for {len(choices)} choices")
    lengths = np.array([float(len(c)) for c in choices])
    if (lengths == 0).any():
        raise ValueError("acc_norm divides by the choice length: a choice text is empty")
    pred, pred_norm = int(np.argmax(lls)), int(np.argmax(lls / lengths))
    return ChoiceScore(pred, pred_norm, float(pred == gold), float(pred_norm == gold))


# ------------------------------------------------------------------------ confidence and calibration


def choice_probabilities(logliks: Sequence[float]) -> FloatArray:
    """Softmax over an item's choice log-likelihoods: ``exp(x - max x) / sum``, lm-eval's ``utils.softmax``.

    A choice at ``-inf`` gets probability 0; at least one choice must be finite.

    Raises:
        ValueError: no choices, NaN, or every choice at ``-inf``.
    """
    x = _floats(logliks, "logliks")
    top = np.max(x)
    if not np.isfinite(top):
        raise ValueError("logliks: the largest log-likelihood must be finite")
    e = np.exp(x - top)
    return np.asarray(e / e.sum(), dtype=np.float64)


def max_probability(logliks: Sequence[float]) -> float:
    """MC confidence: the largest softmax probability over the choices (the ``max_prob`` HELM's ECE reads)."""
    return float(np.max(choice_probabilities(logliks)))


def mean_token_probability(token_logprobs: npt.ArrayLike) -> float:
    """Generate-task confidence: arithmetic mean of ``exp(logprob)`` over the answer span's tokens.

    Raises:
        ValueError: an empty span or NaN.
    """
    return float(np.mean(np.exp(_floats(token_logprobs, "token_logprobs"))))


@dataclass(frozen=True)
class ReliabilityBin:
    """One reliability-diagram bin, covering confidences in (lower, upper] (the first bin includes 0).

    ``mean_confidence`` and ``accuracy`` are ``None`` for an empty bin.
    """

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


BinScheme = Literal["equal_width", "equal_mass"]


def _equal_mass_edges(confidences: FloatArray, n_bins: int) -> list[float]:
    # verified_calibration get_equal_bins (what HELM's ece_10_bin calls): split the sorted values into
    # min(n_bins, n) chunks with np.array_split, put an edge halfway between neighbouring chunks, end at
    # 1.0, drop duplicate edges.
    chunks = np.array_split(np.sort(confidences), min(n_bins, len(confidences)))
    edges = {(float(a[-1]) + float(b[0])) / 2.0 for a, b in itertools.pairwise(chunks)}
    return sorted({*edges, 1.0})


def reliability_bins(
    confidences: npt.ArrayLike, correct: npt.ArrayLike, *, n_bins: int = 15, scheme: BinScheme = "equal_width"
) -> list[ReliabilityBin]:
    """Reliability-diagram data: per bin, the count, mean confidence and accuracy.

    Bin i holds confidences c with ``edge[i-1] < c <= edge[i]`` (``np.searchsorted(edges, c)``, left
    side; the first bin starts at 0 inclusive). ``equal_width`` edges are ``k / n_bins`` for
    k = 1..n_bins (Guo et al. 2017; verified_calibration's ``get_equal_prob_bins``). ``equal_mass``
    edges are verified_calibration's ``get_equal_bins`` — the binning behind HELM's ``ece_10_bin`` —
    so it may return fewer than ``n_bins`` bins when values repeat or n < n_bins.

    Raises:
        ValueError: mismatched/empty inputs, confidences outside [0, 1], non-binary ``correct``,
            ``n_bins < 1`` or an unknown scheme.
    """
    c, y = _probabilities(confidences, "confidences"), _binary(correct, "correct")
    _same_length(c, y)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if scheme == "equal_width":
        edges = [k / n_bins for k in range(1, n_bins + 1)]
    elif scheme == "equal_mass":
        edges = _equal_mass_edges(c, n_bins)
    else:
        raise ValueError(f"unknown binning scheme {scheme!r}")
    index = np.searchsorted(np.array(edges), c)
    bins = []
    for i, upper in enumerate(edges):
        member = index == i
        count = int(member.sum())
        conf = float(np.mean(c[member])) if count else None
        acc = float(np.mean(y[member])) if count else None
        bins.append(ReliabilityBin(edges[i - 1] if i else 0.0, upper, count, conf, acc))
    return bins


def calibration_error(bins: Sequence[ReliabilityBin]) -> float:
    """ECE of binned data: ``sum_b (n_b / n) * |accuracy_b - mean_confidence_b|`` (empty bins add 0).

    Raises:
        ValueError: every bin is empty.
    """
    total = sum(b.count for b in bins)
    if total == 0:
        raise ValueError("no items in any bin")
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.mean_confidence)
            for b in bins
            if b.accuracy is not None and b.mean_confidence is not None
        )
    )


def ece_equal_mass(confidences: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 10) -> float:
    """HELM's ``ece_10_bin``: ECE over 10 equal-mass bins of (max-prob confidence, 0/1 correct).

    HELM (``helm.benchmark.metrics.basic_metrics.compute_calibration_metrics``) computes it as
    ``calibration.get_ece_em(max_probs, correct, num_bins=10)`` from the ``uncertainty-calibration``
    package (p-lambda/verified_calibration ``calibration/utils.py``): equal-mass edges from
    ``get_equal_bins``, assignment by ``np.searchsorted`` (left), and the plug-in L1 error
    ``plugin_ce(power=1)``. This reproduces that rule; the test compares with a verbatim copy.
    """
    return calibration_error(reliability_bins(confidences, correct, n_bins=n_bins, scheme="equal_mass"))


def ece_equal_width(confidences: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 15) -> float:
    """ECE over 15 equal-width bins ((k-1)/15, k/15], the definition of Guo et al. (2017).

    Same as verified_calibration's ``get_ece(probs, labels, num_bins=15)`` for 1-D inputs; a
    confidence of exactly 0 falls in the first bin.
    """
    return calibration_error(reliability_bins(confidences, correct, n_bins=n_bins, scheme="equal_width"))


def brier_score(probabilities: Sequence[Sequence[float]], gold: Sequence[int]) -> float:
    """Multi-class Brier score, lm-eval's ``brier_score`` aggregation for multiple choice.

    ``mean_i sum_j (p_ij - onehot(gold_i)_j)^2`` over each item's choice distribution (lm-eval feeds
    it ``softmax(lls)``, i.e. :func:`choice_probabilities`). lm-eval needs every item to have the same
    number of choices; this accepts ragged items and is identical when they are rectangular. Ranges
    over [0, 2]; for two choices it is twice sklearn's binary ``brier_score_loss``.

    Raises:
        ValueError: mismatched/empty inputs, an empty distribution, or a gold index out of range.
    """
    _same_length(probabilities, gold)
    total = 0.0
    for p_row, g in zip(probabilities, gold, strict=True):
        p = _probabilities(p_row, "probabilities")
        if not 0 <= g < len(p):
            raise ValueError(f"gold index {g} is out of range for {len(p)} choices")
        onehot = np.zeros_like(p)
        onehot[g] = 1.0
        total += float(np.sum((p - onehot) ** 2))
    return total / len(gold)


def selective_stats(confidences: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[float, float]:
    """HELM's ``selective_cov_acc_area`` and ``selective_acc@10``, via ``get_selective_stats``.

    Items sorted by descending confidence (``np.argsort(-c)``); ``acc_k`` = accuracy of the k most
    confident. Returns (mean of acc_k over k = 1..n, ``acc`` at index ``int(0.1 * n)``, i.e. the top
    ``int(0.1 * n) + 1`` items).
    """
    c, y = _probabilities(confidences, "confidences"), _binary(correct, "correct")
    n = _same_length(c, y)
    accs = np.cumsum(y[np.argsort(-c)]) / np.arange(1, n + 1)
    return float(np.mean(accs)), float(accs[int(0.1 * n)])


# ------------------------------------------------------------------------------------------ abstention


@dataclass(frozen=True)
class AbstentionStats:
    """How a model used abstention on a set of items.

    coverage = answered / n; selective_accuracy = correct among answered / answered (``None`` when
    nothing was answered) — "accuracy on answered items"; overall_accuracy = correct / n, counting an
    item correct exactly as the scorer did (an abstention is correct only where abstaining is).
    """

    n: int
    answered: int
    coverage: float
    selective_accuracy: float | None
    overall_accuracy: float


def abstention_stats(abstained: npt.ArrayLike, correct: npt.ArrayLike) -> AbstentionStats:
    """Coverage, selective accuracy and overall accuracy from per-item abstained and correct flags.

    Raises:
        ValueError: mismatched/empty or non-binary inputs.
    """
    a, y = _binary(abstained, "abstained"), _binary(correct, "correct")
    n = _same_length(a, y)
    answered = a == 0.0
    k = int(answered.sum())
    return AbstentionStats(n, k, k / n, _ratio(float(y[answered].sum()), k), float(y.mean()))


@dataclass(frozen=True)
class AbstainAgreement:
    """Student vs teacher abstention decisions: the four counts and the share that match."""

    both: int
    student_only: int
    teacher_only: int
    neither: int
    rate: float


def abstain_agreement(student_abstained: npt.ArrayLike, teacher_abstained: npt.ArrayLike) -> AbstainAgreement:
    """Share of items where the student abstains exactly when the teacher does, with the 2x2 counts.

    Raises:
        ValueError: mismatched/empty or non-binary inputs.
    """
    s, t = _binary(student_abstained, "student_abstained"), _binary(teacher_abstained, "teacher_abstained")
    n = _same_length(s, t)
    both, neither = int(np.sum((s == 1) & (t == 1))), int(np.sum((s == 0) & (t == 0)))
    return AbstainAgreement(
        both,
        int(np.sum((s == 1) & (t == 0))),
        int(np.sum((s == 0) & (t == 1))),
        neither,
        (both + neither) / n,
    )


# -------------------------------------------------------------------------------------------- fidelity


def agrees(student_answer: object, teacher_answer: object) -> bool:
    """Whether both gave the same readable answer.

    ``None`` (nothing could be read: invalid JSON, no match) agrees with nothing: two unreadable outputs
    are two failures, not agreement.
    """
    return student_answer is not None and student_answer == teacher_answer


def agreement_rate(student_answers: Sequence[object], teacher_answers: Sequence[object]) -> float:
    """Share of items where the student's normalised answer equals the teacher's; symmetric.

    An item where either answer is ``None`` (unreadable) counts as disagreement (see `agrees`).

    Raises:
        ValueError: mismatched or empty inputs.
    """
    n = _same_length(student_answers, teacher_answers)
    return sum(agrees(s, t) for s, t in zip(student_answers, teacher_answers, strict=True)) / n


@dataclass(frozen=True)
class FidelityCells:
    """The 2x2 of agreement with the teacher x teacher correctness (counts).

    ``disagree_teacher_wrong`` holds the items where the student departs from a wrong teacher —
    whether it is then right is the student's own accuracy, not part of this table.
    """

    agree_teacher_correct: int
    agree_teacher_wrong: int
    disagree_teacher_correct: int
    disagree_teacher_wrong: int

    @property
    def n(self) -> int:
        """Number of items."""
        return (
            self.agree_teacher_correct
            + self.agree_teacher_wrong
            + self.disagree_teacher_correct
            + self.disagree_teacher_wrong
        )

    @property
    def agreement_rate(self) -> float:
        """(agree cells) / n, equal to :func:`agreement_rate` on the same items."""
        return (self.agree_teacher_correct + self.agree_teacher_wrong) / self.n


def fidelity_cells(
    student_answers: Sequence[object], teacher_answers: Sequence[object], teacher_correct: npt.ArrayLike
) -> FidelityCells:
    """Count items by (student answer == teacher answer) x (teacher correct).

    Raises:
        ValueError: mismatched/empty inputs or non-binary ``teacher_correct``.
    """
    tc = _binary(teacher_correct, "teacher_correct")
    _same_length(student_answers, teacher_answers, tc)
    cells = Counter(
        (agrees(s, t), bool(c)) for s, t, c in zip(student_answers, teacher_answers, tc.tolist(), strict=True)
    )
    return FidelityCells(cells[True, True], cells[True, False], cells[False, True], cells[False, False])


def _kl_rows(p_log: FloatArray, q_log: FloatArray) -> FloatArray:
    # sum_v p (log p - log q), with 0 * log 0 = 0: mask before subtracting so -inf - -inf never runs.
    p = np.exp(p_log)
    present = p > 0.0
    diff = np.where(present, p_log, 0.0) - np.where(present, q_log, 0.0)
    return np.asarray(np.sum(np.where(present, p * diff, 0.0), axis=-1), dtype=np.float64)


def token_kl(teacher_logprobs: npt.ArrayLike, student_logprobs: npt.ArrayLike) -> float:
    """KL(teacher ‖ student) per token, averaged over teacher-forced positions, in nats.

    Inputs are ``(positions, vocab)`` arrays of log-probabilities (log-softmax of each model's logits
    at the same positions of the same token sequence — only meaningful with identical tokenizers).
    Per position: ``sum_v p_v (log p_v - log q_v)`` with ``p = exp(teacher)``, ``q = exp(student)``,
    terms with ``p_v = 0`` contributing 0; the result is the mean over positions. ``inf`` when the
    student gives probability 0 where the teacher does not. Tested against ``scipy.stats.entropy``
    per row and ``torch.nn.functional.kl_div(..., log_target=True, reduction="batchmean")``.

    Raises:
        ValueError: shapes differ, no positions, or NaN.
    """
    t = _floats(teacher_logprobs, "teacher_logprobs", ndim=2)
    s = _floats(student_logprobs, "student_logprobs", ndim=2)
    if t.shape != s.shape:
        raise ValueError(f"teacher and student log-prob shapes differ: {t.shape} vs {s.shape}")
    return float(np.mean(_kl_rows(t, s)))


def _log_softmax(x: FloatArray) -> FloatArray:
    top = np.max(x)
    if not np.isfinite(top):
        raise ValueError("logliks: the largest log-likelihood must be finite")
    shifted = x - top
    return np.asarray(shifted - np.log(np.sum(np.exp(shifted))), dtype=np.float64)


def choice_kl(teacher_logliks: Sequence[float], student_logliks: Sequence[float]) -> float:
    """Choice-level KL(teacher ‖ student) for one MC item, in nats.

    Both distributions are the softmax over the item's choice log-likelihoods
    (:func:`choice_probabilities`); the KL is then as in :func:`token_kl`. Used instead of per-token KL
    when the tokenizers differ (the results say which). Average it over items for a slice.

    Raises:
        ValueError: lengths differ, no choices, NaN, or all choices at ``-inf``.
    """
    t, s = _floats(teacher_logliks, "teacher_logliks"), _floats(student_logliks, "student_logliks")
    _same_length(t, s)
    return float(_kl_rows(_log_softmax(t), _log_softmax(s)))


# ------------------------------------------------------------------------------------------- retention

RETENTION_MIN_GAP = 0.01
"""Retention is null when the teacher-base gap |T - B| is smaller than this (DESIGN §4)."""

GAP_BELOW_MIN = "teacher_base_gap_below_min"
GAP_CI_CONTAINS_ZERO = "teacher_base_gap_ci_contains_zero"
TEACHER_ZERO = "teacher_score_zero"
REASONS: Mapping[str, str] = {
    GAP_BELOW_MIN: f"teacher and base differ by less than {RETENTION_MIN_GAP}: nothing to retain",
    GAP_CI_CONTAINS_ZERO: "the 95% CI of teacher minus base contains 0: the gap is not significant",
    TEACHER_ZERO: "the teacher scores 0, so student/teacher is undefined",
}
"""Human-readable text for each null reason code."""


@dataclass(frozen=True)
class Retention:
    """A ratio that may be undefined: ``value`` is ``None`` exactly when ``reason`` (a code) is set."""

    value: float | None
    reason: str | None = None


def retention(
    student: float,
    teacher: float,
    base: float,
    *,
    gap_ci: tuple[float, float] | None = None,
    min_gap: float = RETENTION_MIN_GAP,
) -> Retention:
    """Retention = (S - B) / (T - B): the share of the teacher's gain over base the student kept.

    Null (``value=None``) with reason ``teacher_base_gap_below_min`` when ``|T - B| < min_gap``, else
    with ``teacher_base_gap_ci_contains_zero`` when ``gap_ci`` (the paired-bootstrap CI of T - B) has
    ``low <= 0 <= high``. May be < 0 (student below base) or > 1 (student above teacher).

    Raises:
        ValueError: a score is NaN or infinite.
    """
    if not all(math.isfinite(x) for x in (student, teacher, base)):
        raise ValueError(f"retention needs finite scores, got S={student}, T={teacher}, B={base}")
    gap = teacher - base
    if abs(gap) < min_gap:
        return Retention(None, GAP_BELOW_MIN)
    if gap_ci is not None and gap_ci[0] <= 0.0 <= gap_ci[1]:
        return Retention(None, GAP_CI_CONTAINS_ZERO)
    return Retention((student - base) / gap)


def teacher_ratio(student: float, teacher: float) -> Retention:
    """S / T, null with reason ``teacher_score_zero`` when T == 0.

    Raises:
        ValueError: a score is NaN or infinite.
    """
    if not (math.isfinite(student) and math.isfinite(teacher)):
        raise ValueError(f"the teacher ratio needs finite scores, got S={student}, T={teacher}")
    return Retention(None, TEACHER_ZERO) if teacher == 0 else Retention(student / teacher)


# ----------------------------------------------------------------------------------------- uncertainty

SMALL_N = 30
"""Slices with fewer items than this are flagged ``small_n``."""

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0

Statistic = Callable[[Mapping[str, FloatArray]], Any]
"""Maps role -> scores to a value, reducing over the *last* axis (so it works on ``(R, n)`` resamples)."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    n: int
    small_n: bool

    def contains(self, x: float) -> bool:
        """Whether ``low <= x <= high``."""
        return self.low <= x <= self.high


def role_mean(role: str) -> Statistic:
    """Statistic: the mean score of ``role``."""
    return lambda s: np.mean(s[role], axis=-1)


def role_difference(a: str, b: str) -> Statistic:
    """Statistic: mean of ``a`` minus mean of ``b`` (e.g. teacher - base), on the same items."""
    return lambda s: np.mean(s[a], axis=-1) - np.mean(s[b], axis=-1)


def bootstrap_indices(
    n: int, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> npt.NDArray[np.int64]:
    """The ``(n_resamples, n)`` resampled item indices, shared by every role.

    Exactly ``np.random.Generator(np.random.PCG64(seed)).integers(0, n, size=(n_resamples, n))``.

    Raises:
        ValueError: ``n < 1`` or fewer than 1,000 resamples (DESIGN §4).
    """
    if n < 1:
        raise ValueError("needs at least one item")
    if n_resamples < DEFAULT_RESAMPLES:
        raise ValueError(f"at least {DEFAULT_RESAMPLES} resamples are required, got {n_resamples}")
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.integers(0, n, size=(n_resamples, n), dtype=np.int64)


def paired_bootstrap(
    scores: Mapping[str, npt.ArrayLike],
    statistics: Mapping[str, Statistic] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Percentile-bootstrap CIs over items, paired across roles.

    One index matrix from :func:`bootstrap_indices` resamples every role's per-item scores (so the
    same items are drawn for teacher, base and student); each statistic is evaluated on the original
    scores (the point value) and on all resamples at once; the interval is
    ``np.percentile(replicates, [50(1-confidence), 100 - 50(1-confidence)])`` (numpy's default linear
    interpolation) — 2.5 and 97.5 for 95%. ``small_n`` is ``n < 30``. By default the statistics are the
    mean of each role. A statistic that is undefined on some resample must return NaN there; the
    interval is then NaN.

    Raises:
        ValueError: no roles, roles of different lengths, NaN scores, a bad confidence or too few
            resamples.
    """
    arrays = {role: _floats(values, role) for role, values in scores.items()}
    if not arrays:
        raise ValueError("needs at least one role")
    n = _same_length(*arrays.values())
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    stats = statistics if statistics is not None else {role: role_mean(role) for role in arrays}
    index = bootstrap_indices(n, n_resamples=n_resamples, seed=seed)
    resampled = {role: values[index] for role, values in arrays.items()}
    tail = round(50.0 * (1.0 - confidence), 10)
    out = {}
    for name, stat in stats.items():
        low, high = np.percentile(np.asarray(stat(resampled), dtype=np.float64), [tail, 100.0 - tail])
        out[name] = Estimate(float(stat(arrays)), float(low), float(high), n, n < SMALL_N)
    return out


MCNEMAR_EXACT_BELOW = 25
"""McNemar is exact (binomial) when the discordant count b + c is below this, the usual rule of thumb."""


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired binary scores.

    ``only_a``/``only_b``: items only a (only b) got right. ``method`` is ``exact`` (statistic =
    min(only_a, only_b)) or ``chi2`` (Edwards' continuity-corrected chi-square, 1 df).
    """

    statistic: float
    p_value: float
    method: Literal["exact", "chi2"]
    only_a: int
    only_b: int


def mcnemar(a_correct: npt.ArrayLike, b_correct: npt.ArrayLike) -> McNemar:
    """McNemar's test of whether two models' paired 0/1 scores differ.

    With discordant counts b = only_a, c = only_b and d = b + c: if d < 25, the exact two-sided binomial
    test ``p = min(1, 2 * P[X <= min(b, c)])``, X ~ Binomial(d, 1/2) (= ``scipy.stats.binomtest``;
    d = 0 gives p = 1); otherwise ``chi2 = (|b - c| - 1)^2 / d`` with ``p = P[chi2_1 >= chi2]``
    (= ``scipy.stats.chi2.sf``; the statsmodels ``mcnemar(exact=False, correction=True)`` formula).

    Raises:
        ValueError: mismatched/empty or non-binary inputs.
    """
    a, b = _binary(a_correct, "a_correct"), _binary(b_correct, "b_correct")
    _same_length(a, b)
    only_a, only_b = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
    d = only_a + only_b
    if d < MCNEMAR_EXACT_BELOW:
        k = min(only_a, only_b)
        tail = sum(math.comb(d, i) for i in range(k + 1))
        return McNemar(float(k), min(1.0, 2 * tail / 2**d), "exact", only_a, only_b)
    statistic = (abs(only_a - only_b) - 1) ** 2 / d
    # chi-square survival with 1 degree of freedom: P[Z^2 >= x] = erfc(sqrt(x / 2))
    return McNemar(statistic, math.erfc(math.sqrt(statistic / 2)), "chi2", only_a, only_b)


# ------------------------------------------------------------------------------------------------ gate
# The gate lives in receipts.gate (torch- and numpy-free) so that `receipts sign` can recompute it;
# re-exported here because the runner's metric API has always named it.

# ----------------------------------------------------------------------------------------- diagnostics

HIGH_AGREEMENT = 0.90
"""Teacher-is-the-ceiling: student agrees with the teacher on at least this share of items ..."""
LOW_ACCURACY = 0.60
"""... while its accuracy is below this."""
HIGH_AGGREGATE = 0.70
"""Coverage gap: the aggregate score is at least this ..."""
COVERAGE_GAP = 0.10
"""... and a critical slice scores at least this much lower."""
GOOD_ACCURACY = 0.70
"""Recalibrate: accuracy is at least this ..."""
BAD_ECE = 0.10
"""... and the 15-bin ECE is at least this."""
SFT_MARGIN = 0.01
"""No distillation gain: the student beats the SFT baseline by less than this (or not significantly)."""


@dataclass(frozen=True)
class DiagnosticInputs:
    """The numbers diagnostics read; a rule whose inputs are ``None`` is skipped.

    Scores are the student's headline metric unless named otherwise; ``critical_slices`` maps each
    critical slice to the student's score on it; ``student_minus_sft_ci`` is the paired-bootstrap CI
    of student - SFT.
    """

    student_accuracy: float | None = None
    teacher_accuracy: float | None = None
    agreement_rate: float | None = None
    student_ece: float | None = None
    critical_slices: Mapping[str, float] = field(default_factory=dict)
    sft_accuracy: float | None = None
    student_minus_sft_ci: tuple[float, float] | None = None


@dataclass(frozen=True)
class Finding:
    """One diagnostic: a stable ``id``, a sentence for humans and the numbers behind it."""

    id: str
    message: str
    evidence: Mapping[str, float]


def _teacher_ceiling(x: DiagnosticInputs) -> list[Finding]:
    if x.agreement_rate is None or x.student_accuracy is None:
        return []
    if x.agreement_rate < HIGH_AGREEMENT or x.student_accuracy >= LOW_ACCURACY:
        return []
    evidence = {"agreement_rate": x.agreement_rate, "student_accuracy": x.student_accuracy}
    if x.teacher_accuracy is not None:
        evidence["teacher_accuracy"] = x.teacher_accuracy
    message = (
        "The student reproduces the teacher closely but scores low: the teacher is the ceiling. "
        "A better teacher, not more distillation, is what would raise accuracy."
    )
    return [Finding("teacher_is_ceiling", message, evidence)]


def _coverage_gaps(x: DiagnosticInputs) -> list[Finding]:
    if x.student_accuracy is None or x.student_accuracy < HIGH_AGGREGATE:
        return []
    return [
        Finding(
            "coverage_gap",
            f"High aggregate score but the critical slice {name!r} trails it by "
            f"{x.student_accuracy - score:.2f}: the distillation data likely under-covers it.",
            {"aggregate": x.student_accuracy, "slice_score": score, "gap": x.student_accuracy - score},
        )
        for name, score in sorted(x.critical_slices.items())
        if x.student_accuracy - score >= COVERAGE_GAP
    ]


def _recalibrate(x: DiagnosticInputs) -> list[Finding]:
    if x.student_accuracy is None or x.student_ece is None:
        return []
    if x.student_accuracy < GOOD_ACCURACY or x.student_ece < BAD_ECE:
        return []
    message = (
        "Accuracy is good but confidence is miscalibrated: recalibrate (e.g. temperature scaling) "
        "before using the student's probabilities for decisions or abstention."
    )
    return [Finding("recalibrate", message, {"student_accuracy": x.student_accuracy, "ece": x.student_ece})]


def _sft_baseline(x: DiagnosticInputs) -> list[Finding]:
    if x.student_accuracy is None or x.sft_accuracy is None:
        return []
    gain = x.student_accuracy - x.sft_accuracy
    ci = x.student_minus_sft_ci
    not_significant = ci is not None and ci[0] <= 0.0 <= ci[1]
    if gain >= SFT_MARGIN and not not_significant:
        return []
    evidence = {"student_accuracy": x.student_accuracy, "sft_accuracy": x.sft_accuracy, "gain": gain}
    if ci is not None:
        evidence |= {"gain_ci_low": ci[0], "gain_ci_high": ci[1]}
    message = (
        "The student does no better than plain fine-tuning on the same data (SFT baseline): "
        "distillation did not earn its keep here."
    )
    return [Finding("no_distillation_gain", message, evidence)]


def diagnose(inputs: DiagnosticInputs) -> list[Finding]:
    """Read the signal (DESIGN §4, seed 004); each rule's thresholds are the module constants above.

    * ``teacher_is_ceiling``: agreement >= HIGH_AGREEMENT and student accuracy < LOW_ACCURACY.
    * ``coverage_gap`` (one per slice): aggregate >= HIGH_AGGREGATE and aggregate - critical slice
      score >= COVERAGE_GAP.
    * ``recalibrate``: accuracy >= GOOD_ACCURACY and ECE >= BAD_ECE.
    * ``no_distillation_gain``: student - SFT < SFT_MARGIN, or the CI of student - SFT contains 0.
    """
    checks = (_teacher_ceiling, _coverage_gaps, _recalibrate, _sft_baseline)
    return [finding for check in checks for finding in check(inputs)]
