"""Retention (DESIGN §4): (S - B) / (T - B), the share of the teacher's gain the student kept, and S / T."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from receipts.metrics.arrays import FloatArray

__all__ = [
    "GAP_BELOW_MIN",
    "GAP_CI_CONTAINS_ZERO",
    "MAX_UNDEFINED_SHARE",
    "REASONS",
    "RETENTION_MIN_GAP",
    "TEACHER_ZERO",
    "Retention",
    "RetentionInterval",
    "replicate_retention",
    "retention",
    "retention_interval",
    "teacher_ratio",
]


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


MAX_UNDEFINED_SHARE = 0.05
"""Retention's CI is null when more than this share of resamples has no retention (``|T - B| < min_gap``).

A percentile interval over the defined resamples drops them silently; up to 5% (two tails' worth at 95%)
that moves the bounds little, beyond it the ratio is too unstable at this n for an interval to mean much.
"""


@dataclass(frozen=True)
class RetentionInterval:
    """Retention's 95% percentile CI over the resamples where it is defined, and how many were not.

    ``low``/``high`` are ``None`` when the point retention is null or more than `MAX_UNDEFINED_SHARE`
    of the resamples are undefined.
    """

    low: float | None
    high: float | None
    undefined: int


def replicate_retention(
    student: FloatArray, teacher: FloatArray, base: FloatArray, *, min_gap: float = RETENTION_MIN_GAP
) -> FloatArray:
    """(S - B) / (T - B) per resample (means over the last axis), NaN where ``|T - B| < min_gap``.

    The same null rule as `retention`, applied to each resample; the CI-contains-zero rule is about the
    whole sample, so it decides only whether the point value (and so the interval) exists.
    """
    s, t, b = (np.mean(x, axis=-1) for x in (student, teacher, base))
    gap = t - b
    defined = np.abs(gap) >= min_gap
    ratio = np.divide(s - b, gap, out=np.full_like(gap, np.nan), where=defined)
    return np.asarray(ratio, dtype=np.float64)


def retention_interval(
    point: Retention, replicates: FloatArray, confidence: float = 0.95
) -> RetentionInterval:
    """The percentile interval of retention's bootstrap ``replicates`` (NaN: undefined on that resample).

    Null when ``point`` is null, or when more than `MAX_UNDEFINED_SHARE` of the replicates are undefined;
    otherwise numpy's linear-interpolation percentiles over the defined replicates.
    """
    defined = replicates[np.isfinite(replicates)]
    undefined = int(replicates.size - defined.size)
    if point.value is None or not defined.size or undefined > MAX_UNDEFINED_SHARE * replicates.size:
        return RetentionInterval(None, None, undefined)
    tail = round(50.0 * (1.0 - confidence), 10)
    low, high = np.percentile(defined, [tail, 100.0 - tail])
    return RetentionInterval(float(low), float(high), undefined)
