"""Confidence, calibration and abstention (DESIGN §4): ECE, reliability bins, Brier, coverage."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from receipts.metrics.arrays import (
    FloatArray,
    binary_array,
    float_array,
    probability_array,
    ratio,
    same_length,
)

__all__ = [
    "AbstainAgreement",
    "AbstentionStats",
    "BinScheme",
    "ReliabilityBin",
    "abstain_agreement",
    "abstention_stats",
    "brier_score",
    "calibration_error",
    "choice_probabilities",
    "ece_equal_mass",
    "ece_equal_width",
    "max_probability",
    "mean_token_probability",
    "reliability_bins",
    "selective_stats",
]


def choice_probabilities(logliks: Sequence[float]) -> FloatArray:
    """Softmax over an item's choice log-likelihoods: ``exp(x - max x) / sum``, lm-eval's ``utils.softmax``.

    A choice at ``-inf`` gets probability 0; at least one choice must be finite.

    Raises:
        ValueError: no choices, NaN, or every choice at ``-inf``.
    """
    x = float_array(logliks, "logliks")
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
    return float(np.mean(np.exp(float_array(token_logprobs, "token_logprobs"))))


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
    c, y = probability_array(confidences, "confidences"), binary_array(correct, "correct")
    same_length(c, y)
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
    same_length(probabilities, gold)
    total = 0.0
    for p_row, g in zip(probabilities, gold, strict=True):
        p = probability_array(p_row, "probabilities")
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
    c, y = probability_array(confidences, "confidences"), binary_array(correct, "correct")
    n = same_length(c, y)
    accs = np.cumsum(y[np.argsort(-c)]) / np.arange(1, n + 1)
    return float(np.mean(accs)), float(accs[int(0.1 * n)])


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
    a, y = binary_array(abstained, "abstained"), binary_array(correct, "correct")
    n = same_length(a, y)
    answered = a == 0.0
    k = int(answered.sum())
    return AbstentionStats(n, k, k / n, ratio(float(y[answered].sum()), k), float(y.mean()))


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
    s, t = (
        binary_array(student_abstained, "student_abstained"),
        binary_array(teacher_abstained, "teacher_abstained"),
    )
    n = same_length(s, t)
    both, neither = int(np.sum((s == 1) & (t == 1))), int(np.sum((s == 0) & (t == 0)))
    return AbstainAgreement(
        both,
        int(np.sum((s == 1) & (t == 0))),
        int(np.sum((s == 0) & (t == 1))),
        neither,
        (both + neither) / n,
    )
