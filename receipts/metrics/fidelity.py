"""Fidelity to the teacher (DESIGN §4): agreement, the agreement x correctness cells, token and choice KL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from receipts.metrics.arrays import FloatArray, binary_array, float_array, same_length

__all__ = [
    "FidelityCells",
    "agreement_rate",
    "agrees",
    "choice_kl",
    "fidelity_cells",
    "token_kl",
]


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
    n = same_length(student_answers, teacher_answers)
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
    tc = binary_array(teacher_correct, "teacher_correct")
    same_length(student_answers, teacher_answers, tc)
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
    t = float_array(teacher_logprobs, "teacher_logprobs", ndim=2)
    s = float_array(student_logprobs, "student_logprobs", ndim=2)
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
    t, s = float_array(teacher_logliks, "teacher_logliks"), float_array(student_logliks, "student_logliks")
    same_length(t, s)
    return float(_kl_rows(_log_softmax(t), _log_softmax(s)))
