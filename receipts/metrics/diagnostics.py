"""Diagnostics (DESIGN §4, seed 004 "reading the signal"): what the numbers suggest doing next."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from receipts.metrics.flips import LOST_RATIO, LOST_SIGNIFICANCE, lost_dominates

__all__ = [
    "BAD_ECE",
    "COVERAGE_GAP",
    "GOOD_ACCURACY",
    "HIGH_AGGREGATE",
    "HIGH_AGREEMENT",
    "LOST_RATIO",
    "LOST_SIGNIFICANCE",
    "LOW_ACCURACY",
    "SFT_MARGIN",
    "DiagnosticInputs",
    "Finding",
    "at_floor",
    "diagnose",
]


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


def at_floor(values: Iterable[float | None]) -> bool:
    """Every role's score on a pack's headline metric is exactly zero: the pack measured nothing about them.

    The one floor rule (issue #19): diagnostics skip such a pack, pages say so in one sentence instead of
    charting zeros, and the buyer query ranks it n/a. An undefined score (``None``, e.g. precision where
    nothing was extracted) is not zero: a pack whose scores are all undefined is not a floor pack.
    """
    found = list(values)
    return bool(found) and all(value == 0 and not isinstance(value, bool) for value in found)


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
    critical_flips: Mapping[str, tuple[int, int, float]] = field(default_factory=dict)
    """Flips (issue #20): critical slice -> (lost, gained, McNemar p of lost vs gained) of the student."""
    at_floor: bool = False
    """Every role scores zero on the headline metric: the pack measured nothing, so no rule reads it (a
    "teacher is the ceiling" drawn from zeros is noise dressed as advice)."""


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


def _lost_capability(x: DiagnosticInputs) -> list[Finding]:
    # flips (issue #20): direction, not volume -- the student's disagreements on a critical cohort are
    # mostly answers the teacher had right
    return [
        Finding(
            "lost_capability",
            f"On the critical slice {name!r} the student loses {lost} answers the teacher got right and "
            f"gains {gained} (McNemar p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}): distillation lost "
            "capability the teacher had there.",
            {"lost": float(lost), "gained": float(gained), "p_value": p},
        )
        for name, (lost, gained, p) in sorted(x.critical_flips.items())
        if lost_dominates(lost, gained, p)
    ]


def diagnose(inputs: DiagnosticInputs) -> list[Finding]:
    """Read the signal (DESIGN §4, seed 004); each rule's thresholds are the module constants above.

    * ``teacher_is_ceiling``: agreement >= HIGH_AGREEMENT and student accuracy < LOW_ACCURACY.
    * ``coverage_gap`` (one per slice): aggregate >= HIGH_AGGREGATE and aggregate - critical slice
      score >= COVERAGE_GAP.
    * ``recalibrate``: accuracy >= GOOD_ACCURACY and ECE >= BAD_ECE.
    * ``no_distillation_gain``: student - SFT < SFT_MARGIN, or the CI of student - SFT contains 0.
    * ``lost_capability`` (one per critical slice): the student lost >= LOST_RATIO x as many answers the
      teacher had right as it gained where the teacher was wrong, and McNemar's p < LOST_SIGNIFICANCE.

    None fires when ``inputs.at_floor``: every role at zero says nothing about any of them.
    """
    if inputs.at_floor:
        return []
    checks = (_teacher_ceiling, _coverage_gaps, _recalibrate, _sft_baseline, _lost_capability)
    return [finding for check in checks for finding in check(inputs)]
