"""Judged equivalence on a card page (issue #20 part 2): what the template shows of a run's ``judged``.

Per pack with a judge: the judge's certificate in words (Cohen's kappa against the human-rated sample,
its 95% CI, the pack's threshold, validated or why not), and one table per comparison — each model's
output judged equivalent to the teacher's ("judged agreement") and to the gold answer ("judged correct")
— with slices as rows and models as columns, each value with its CI. When the judge is not validated,
every judged number is marked "judge not validated". Every number is read from the verified results;
nothing here is HTML (the template escapes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from generator.figures import role_order
from generator.scorecard import Score, signed_number
from generator.words import role_words, slice_words

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.formats.results import Estimate

__all__ = ["NOT_VALIDATED", "JudgedCard", "JudgedTable", "judged_card"]

NOT_VALIDATED = "judge not validated"
_MAX_ROWS = 50


@dataclass(frozen=True)
class JudgedTable:
    """One comparison: its caption, the model columns, and one row per slice (words, n, scores)."""

    caption: str
    roles: list[tuple[str, str]]
    rows: list[tuple[str, list[Score]]]


@dataclass(frozen=True)
class JudgedCard:
    """A run's judge: who, with which rubric, its certificate in words, and the judged tables."""

    validated: bool
    judge: str
    rubric: str
    kappa: str
    agreement: str
    threshold: str
    n: str
    reason: str
    unparseable: str
    tables: list[JudgedTable]


def _number(value: object, digits: int = 3) -> str:
    return signed_number(value, digits)


def _ci(found: object) -> tuple[str, str]:
    """(value, "[low, high]") of a signed ``{value, ci95}`` mapping, read defensively."""
    if not isinstance(found, Mapping):
        return "n/a", ""
    ci = found.get("ci95")
    numbers = isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci)
    pair = ci if numbers else None
    return _number(found.get("value")), f"[{_number(pair[0])}, {_number(pair[1])}]" if pair else ""


def _table(caption: str, by_slice: Mapping[str, Mapping[str, Estimate]]) -> JudgedTable | None:
    roles = sorted({role for per in by_slice.values() for role in per}, key=role_order)
    if not roles:
        return None
    names = sorted(by_slice, key=lambda name: (name != "all", name))[:_MAX_ROWS]
    rows = [(slice_words(name), [Score.of(by_slice[name].get(role)) for role in roles]) for name in names]
    return JudgedTable(caption, [(role, role_words(role)) for role in roles], rows)


def judged_card(results: Results) -> JudgedCard | None:
    """The card's judged-equivalence section of one run; None for a run without a judge."""
    judged, setup = results.judged, results.judge
    if judged is None or setup is None:
        return None
    certificate = judged.certificate
    kappa, kappa_ci = _ci(certificate.kappa)
    agree, agree_ci = _ci(certificate.agreement)
    model = setup.model
    who = str(model.get("spec") or model.get("endpoint") or "?")
    digest = str(model.get("digest") or "")
    tables = [
        _table("judged agreement: the model's output judged equivalent to the teacher's", judged.agreement),
        _table("judged correct: the model's output judged equivalent to the gold answer", judged.correct),
    ]
    return JudgedCard(
        validated=certificate.validated,
        judge=f"{who} ({digest[:19]}…)" if digest else who,
        rubric=f"{setup.rubric.path} (sha256 {setup.rubric.sha256[:12]}…)",
        kappa=f"{kappa} {kappa_ci}".strip(),
        agreement=f"{agree} {agree_ci}".strip(),
        threshold=_number(certificate.threshold, 2),
        n=_number(certificate.n),
        reason=certificate.reason or "",
        unparseable=_number(certificate.unparseable),
        tables=[t for t in tables if t is not None],
    )
