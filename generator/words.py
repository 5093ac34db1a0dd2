"""Human words for the codes a signed results document holds (roles, slices, reasons, diagnostics, cells).

A card page never shows a code such as ``teacher_base_gap_below_min`` or ``agree_teacher_correct``: each
has its words here. A code this module does not know (a newer runner, a hand-made receipt) is shown with
its underscores as spaces, never as a snake_case identifier. Every string returned is plain text: the
templates escape it, since slice names, variant names and unknown codes come from the receipt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.figures import role_label
from receipts.metrics.retention import GAP_BELOW_MIN, GAP_CI_CONTAINS_ZERO, RETENTION_MIN_GAP, TEACHER_ZERO

__all__ = [
    "CELLS",
    "DIAGNOSTIC_TITLES",
    "EVIDENCE_WORDS",
    "RETENTION_REASONS",
    "code_words",
    "diagnostic_title",
    "evidence_label",
    "retention_reason",
    "role_words",
    "slice_words",
]

RETENTION_REASONS: Mapping[str, str] = {
    GAP_BELOW_MIN: f"not defined: the teacher beats the base model by less than {RETENTION_MIN_GAP}, "
    "so there was nothing to retain",
    GAP_CI_CONTAINS_ZERO: "not defined: the teacher's lead over the base model is not significant "
    "(its 95% CI contains 0)",
    TEACHER_ZERO: "not defined: the teacher scores 0",
}
"""Why a retention is null, in words (receipts.metrics.retention's reason codes)."""

CELLS: Mapping[str, tuple[str, str]] = {
    "agree_teacher_correct": ("agrees", "teacher right"),
    "agree_teacher_wrong": ("agrees", "teacher wrong"),
    "disagree_teacher_correct": ("disagrees", "teacher right"),
    "disagree_teacher_wrong": ("disagrees", "teacher wrong"),
}
"""Fidelity cells as (the model against the teacher, the teacher against gold): the 2x2 matrix's axes."""

DIAGNOSTIC_TITLES: Mapping[str, str] = {
    "teacher_is_ceiling": "The teacher is the ceiling",
    "coverage_gap": "A critical slice trails the rest",
    "recalibrate": "Confidence needs recalibrating",
    "no_distillation_gain": "No gain over plain fine-tuning",
    "lost_capability": "The student lost answers the teacher had right",  # issue #20 part 5
}
"""A title per diagnostic (receipts.metrics.diagnostics); the finding's own sentence follows it."""

EVIDENCE_WORDS: Mapping[str, str] = {
    "agreement_rate": "agreement with the teacher",
    "student_accuracy": "student score",
    "teacher_accuracy": "teacher score",
    "sft_accuracy": "SFT baseline score",
    "gain": "student minus SFT",
    "aggregate": "student score on all items",
    "slice_score": "student score on the slice",
    "gap": "gap",
    "ece": "student ECE",
    "lost": "answers lost (teacher right, student wrong)",  # issue #20 part 5
    "gained": "answers gained (teacher wrong, student right)",
    "p_value": "McNemar p-value, lost against gained",
}
"""The numbers a diagnostic names, in words (``gain_ci_low``/``gain_ci_high`` are shown as one CI)."""


def code_words(code: Any) -> str:
    """Any code as words: underscores and hyphens as spaces (the fallback for codes not listed here)."""
    return " ".join(str(code).replace("_", " ").split())


def role_words(role: str) -> str:
    """A role in words ("SFT baseline", "student (int8-dynamic)")."""
    return role_label(role)


def slice_words(name: str) -> str:
    """A slice name in words: ``all`` is "all items", ``domain=geography`` is "domain: geography"."""
    if name == "all":
        return "all items"
    if name == "critical":
        return "critical items"
    field, sep, label = name.partition("=")
    if not sep:
        return name
    if field == "variant":
        return f"prompt variant: {label}"
    if field == "critical":
        return f"critical ({label})"
    return f"{code_words(field)}: {label}"


def retention_reason(reason: Any) -> str:
    """Why a retention is not defined, in words."""
    return RETENTION_REASONS.get(str(reason), f"not defined: {code_words(reason)}")


def diagnostic_title(code: Any) -> str:
    """A diagnostic's title, from its id (an unknown id in words)."""
    return DIAGNOSTIC_TITLES.get(str(code), code_words(code).capitalize())


def evidence_label(key: Any) -> str:
    """A diagnostic's evidence key in words."""
    return EVIDENCE_WORDS.get(str(key), code_words(key))
