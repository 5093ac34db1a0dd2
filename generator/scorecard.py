"""The scorecard below a card page's label: what the template shows, computed here (DESIGN §11, issue #19).

The template only lays out what this module hands it: one table per pack with slices as rows and roles as
columns, the fidelity matrix, robustness per prompt variant, calibration, the quantization table and the
diagnostics as sentences. Every number is read from the verified results (typed, or free-form sections
read defensively); every code is in words (generator/words.py); nothing is HTML: the template escapes it.

A pack on which every role scores zero is a floor pack: it measured nothing about these models, so it gets
one sentence instead of tables of zeros, no chart, and no diagnostic (whatever the receipt signed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from generator.direction import Direction, direction
from generator.figures import at_floor, role_order
from generator.words import (
    CELLS,
    RETENTION_REASONS,
    code_words,
    diagnostic_title,
    evidence_label,
    retention_reason,
    role_words,
    slice_words,
)

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.formats.results import Estimate, Metric

__all__ = ["FLOOR_SENTENCE", "PackCard", "pack_cards", "raw_sections", "signed_number"]

FLOOR_SENTENCE = "no model scores above zero here; this pack says nothing about these models"
"""What a floor pack says in place of its tables (issue #19)."""

_MAX_SLICES = 200  # rows of one slice table; a receipt may sign thousands, the viewer has them all


def signed_number(value: Any, digits: int = 3) -> str:
    """A signed number as the page writes it (fixed digits), "n/a" for anything that is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"


def _bar(value: Any) -> str:
    """The inline bar's width for a score: a CSS percentage, clamped to [0, 100] (scores run 0 to 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return "0%"
    return f"{max(0.0, min(float(value), 1.0)) * 100:.1f}%"


@dataclass(frozen=True)
class Score:
    """One role's estimate: value, its 95% CI as text, n, small-n flag and the bar width."""

    value: str
    ci: str
    n: str
    small_n: bool
    bar: str

    @classmethod
    def of(cls, estimate: Estimate | None) -> Score:
        if estimate is None:
            return cls("n/a", "", "", False, "0%")
        low, high = estimate.ci95  # the schema holds it to two entries
        ci = f"[{signed_number(low)}, {signed_number(high)}]" if low is not None and high is not None else ""
        value = estimate.value
        return cls(signed_number(value), ci, signed_number(estimate.n), estimate.small_n, _bar(value))


@dataclass(frozen=True)
class SliceRow:
    """One slice of a pack: its signed name (for the viewer link), its words and one score per role."""

    name: str
    words: str
    scores: list[Score]


@dataclass(frozen=True)
class Fidelity:
    """One role against the teacher: the 2x2 agreement matrix, the agreement rate and the divergence."""

    role: str
    matrix: list[tuple[str, list[str]]]  # rows (agrees / disagrees), columns (teacher right / wrong)
    total: str
    agreement: str
    unreadable: str
    kl: str
    kl_what: str


@dataclass(frozen=True)
class Calibration:
    """One role's calibration numbers."""

    role: str
    ece: str
    brier: str
    n: str
    confidence: str


@dataclass(frozen=True)
class Finding:
    """A diagnostic in words: a title, the runner's sentence and the numbers that triggered it."""

    title: str
    message: str
    numbers: list[str]


@dataclass(frozen=True)
class PackCard:
    """Everything the scorecard shows of one signed run."""

    pack: str
    version: str
    metric: str
    floor: bool
    roles: list[tuple[str, str]]  # (role, words), the table's columns
    slices: list[SliceRow]
    more_slices: int
    retention_ci: str  # the student's retention CI, beside the signed headline figure
    retention_why: str  # why the student's retention is not defined, in words ("" when it is)
    retention: list[str]  # sentences, one per other retaining role (SFT baseline, quantized students)
    fidelity: list[Fidelity]
    variants: list[str]
    worst_case: list[str]  # sentences
    calibration: list[Calibration]
    abstention: list[str]
    findings: list[Finding]
    suppressed: int  # diagnostics the receipt signed that this page does not show (floor pack)
    raw: dict[str, Any] = field(default_factory=dict)  # sections shown collapsed, as signed
    direction: Direction | None = None  # issue #20 parts 4 and 5: flips, sequence divergence (None: absent)


def _primary(results: Results) -> tuple[str, Mapping[str, Metric]]:
    metric = results.primary_metric or "primary metric"
    found = {name: by.get(metric) for name, by in (results.metrics or {}).items()}
    return metric, {name: m for name, m in found.items() if m is not None}


def _columns(slices: Mapping[str, Metric], headline: Sequence[str]) -> list[str]:
    """Every role a slice scores, and every role the run's signed summary scores (its headline figures)."""
    seen = {role for m in slices.values() for role in m.roles} | set(headline)
    return sorted(seen, key=role_order)


def _slice_rows(slices: Mapping[str, Metric], roles: Sequence[str]) -> list[SliceRow]:
    """Slices as rows, "all items" first; the row is there even when no slice is, for the headline figures."""
    ordered = sorted(slices, key=lambda n: (n != "all", n.startswith("variant="), n))
    rows = [
        SliceRow(name, slice_words(name), [Score.of(slices[name].roles.get(role)) for role in roles])
        for name in ordered
        if not name.startswith("variant=")  # prompt variants are robustness, shown there
    ]
    if "all" not in slices:
        rows.insert(0, SliceRow("all", slice_words("all"), [Score.of(None) for _ in roles]))
    return rows


def _student_retention(metric: Metric | None) -> tuple[str, str]:
    """The student's retention CI as ``[low, high]`` and why it is undefined (each "" when not applicable)."""
    kept = ((metric.retention or {}) if metric is not None else {}).get("student")
    if kept is None:
        return "", ""
    if kept.value is None:
        return "", retention_reason(kept.reason)
    pair = _ci_pair(kept.ci95)
    return (f"[{pair[0]}, {pair[1]}]" if pair else ""), ""


def _retention(metric: Metric | None) -> list[str]:
    out = []
    kept_by_role = (metric.retention or {}) if metric is not None else {}
    others = {role: kept for role, kept in kept_by_role.items() if role != "student"}
    for role, kept in sorted(others.items(), key=lambda i: role_order(i[0])):
        if kept.value is None:
            out.append(f"{role_words(role)}: {retention_reason(kept.reason)}")
            continue
        ci = _ci_words(kept.ci95)
        out.append(f"{role_words(role)}: {signed_number(kept.value)}{ci}")
    return out


def _ci_pair(ci95: Any) -> tuple[str, str] | None:
    """A signed ``ci95`` as two numbers in text, or None unless it is a list of two numbers."""
    if not isinstance(ci95, list | tuple) or len(ci95) != 2:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in ci95):
        return None
    return signed_number(ci95[0]), signed_number(ci95[1])


def _ci_words(ci95: Any) -> str:
    """`` (95% CI low to high)`` for a list of two numbers, else nothing."""
    pair = _ci_pair(ci95)
    return f" (95% CI {pair[0]} to {pair[1]})" if pair else ""


def _fidelity(results: Results) -> list[Fidelity]:
    out = []
    for role, entry in sorted((results.fidelity or {}).items(), key=lambda i: role_order(i[0])):
        cells = entry.cells if isinstance(entry.cells, Mapping) else {}
        counts = {code: cells.get(code) for code in CELLS}
        numbers = [v for v in counts.values() if isinstance(v, int) and not isinstance(v, bool)]
        total = sum(numbers)
        matrix = [
            (
                agree,
                [_count(counts[f"{code}_teacher_{side}"], total) for side in ("correct", "wrong")],
            )
            for code, agree in (("agree", "agrees with the teacher"), ("disagree", "disagrees"))
        ]
        kl = entry.kl
        out.append(
            Fidelity(
                role=role_words(role),
                matrix=matrix,
                total=signed_number(total),
                agreement=signed_number(entry.agreement_rate),
                unreadable=signed_number((entry.model_extra or {}).get("both_unreadable")),
                kl=signed_number(kl.value) if kl is not None else "not measured",
                kl_what=(kl.definition or f"{kl.level}-level KL") + f", n {kl.n:,}" if kl is not None else "",
            )
        )
    return out


def _count(value: Any, total: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        return "n/a"
    return f"{value:,} ({value / total:.0%})" if total else f"{value:,}"


def _worst_case(results: Results, overall: Metric | None) -> list[str]:
    """Robustness in sentences: each role's worst case over the prompt variants against its original."""
    worst = _mapping((results.robustness or {}).get("worst_case"))
    if overall is None:
        return []
    worst_roles = _mapping(worst.get("roles"))
    out = []
    for role in sorted(worst_roles, key=role_order):
        entry, original = worst_roles[role], overall.roles.get(role)
        value = entry.get("value") if isinstance(entry, Mapping) else None
        if original is None or not isinstance(value, int | float) or original.value is None:
            continue
        drop = value - original.value
        out.append(
            f"{role_words(role)}: {signed_number(value)} on its worst variant of each item, against "
            f"{signed_number(original.value)} on the items as written ({_signed(drop)})"
        )
    gap = _mapping(_mapping(worst.get("differences")).get("student-teacher"))
    if isinstance(gap.get("value"), int | float):
        out.append(f"worst case, student minus teacher: {_signed(gap['value'])}{_ci_words(gap.get('ci95'))}")
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _signed(value: float) -> str:
    """A difference with its sign, a true minus sign for a negative one."""
    return f"{value:+.3f}".replace("-", "\u2212")


def _calibration(results: Results) -> list[Calibration]:
    return [
        Calibration(
            role=role_words(role),
            ece=signed_number(cal.ece_10_equal_mass),
            brier=signed_number(cal.brier),
            n=signed_number(cal.n),
            confidence=str(cal.confidence or "not stated"),
        )
        for role, cal in sorted((results.calibration or {}).items(), key=lambda i: role_order(i[0]))
    ]


def _abstention(results: Results) -> list[str]:
    out = []
    for role, entry in sorted((results.abstention or {}).items(), key=lambda i: role_order(str(i[0]))):
        if isinstance(entry, Mapping):
            out.append(
                f"{role_words(str(role))}: answers {signed_number(entry.get('coverage'))} of items "
                f"({signed_number(entry.get('answered'))} of {signed_number(entry.get('n'))}), "
                f"{signed_number(entry.get('accuracy_on_answered'))} right on those it answers"
            )
    return out


def _findings(results: Results) -> list[Finding]:
    out = []
    for d in results.diagnostics or []:
        evidence = d.evidence if isinstance(d.evidence, Mapping) else {}
        numbers = [
            f"{evidence_label(key)} {signed_number(value)}"
            for key, value in evidence.items()
            if key not in ("gain_ci_low", "gain_ci_high")
        ]
        low, high = evidence.get("gain_ci_low"), evidence.get("gain_ci_high")
        if low is not None or high is not None:
            numbers.append(f"95% CI of student minus SFT {signed_number(low)} to {signed_number(high)}")
        out.append(Finding(diagnostic_title(d.id), str(d.message if d.message is not None else ""), numbers))
    return out


def pack_card(results: Results, headline: Sequence[str] = ()) -> PackCard:
    """One run's scorecard; ``headline`` names the roles the run's signed summary scores."""
    metric, slices = _primary(results)
    floor = at_floor(results)
    roles = _columns(slices, headline)
    rows = _slice_rows(slices, roles)
    overall = slices.get("all")
    findings = [] if floor else _findings(results)
    robustness = results.robustness or {}
    listed = robustness.get("variants")
    variants = listed if isinstance(listed, list) else []
    return PackCard(
        pack=results.pack.id,
        version=results.pack.version,
        metric=metric,
        floor=floor,
        roles=[(role, role_words(role)) for role in roles],
        slices=rows[:_MAX_SLICES],
        more_slices=max(0, len(rows) - _MAX_SLICES),
        retention_ci=_student_retention(overall)[0],
        retention_why=_student_retention(overall)[1],
        retention=_retention(overall),
        fidelity=[] if floor else _fidelity(results),
        variants=[str(v) for v in variants],
        worst_case=[] if floor else _worst_case(results, overall),
        calibration=_calibration(results),
        abstention=_abstention(results),
        findings=findings,
        suppressed=len(results.diagnostics or []) - len(findings),
        raw={
            "fidelity": results.fidelity or {},
            "robustness": robustness,
            "task": code_words(results.task or "not stated"),
        },
        direction=direction(results, floor=floor),  # issue #20 parts 4 and 5
    )


def pack_cards(results: Sequence[Results], summaries: Sequence[Mapping[str, Any]]) -> list[PackCard]:
    """The scorecard of each signed run, in the predicate's order, with its summary (the predicate's)."""
    return [
        pack_card(r, list(_mapping(summary.get("scores"))))
        for r, summary in zip(results, summaries, strict=True)
    ]


def raw_sections(cards: Sequence[PackCard]) -> dict[str, dict[str, Any]]:
    """Fidelity and robustness as signed, per pack: the collapsed detail under each section.

    Every key is shown (the ``inert`` filter writes its underscores as spaces); a value that is a known
    code (a retention's null reason) is shown in words, as everywhere else on the page.
    """
    return {
        section: {card.pack: _worded(card.raw[section]) or "not measured by this pack" for card in cards}
        for section in ("fidelity", "robustness")
    }


def _worded(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _worded(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_worded(v) for v in value]
    if isinstance(value, str) and value in RETENTION_REASONS:
        return RETENTION_REASONS[value]
    return value
