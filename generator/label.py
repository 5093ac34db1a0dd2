"""The label at the top of a card page: what a reviewer needs first, one screen, from the verified receipt.

Like the label on a bottle, it answers the buyer's questions before the scorecard below explains them:
who taught the model and what it started from (the card's names, bound to the signed evaluated
identities), the gate verdict and why, how much of the teacher's lead over the base survived per pack
(retention with its 95% CI, drawn against the base and the teacher), whether distillation beat plain
fine-tuning (the signed student - SFT difference and its CI), what it costs to run locally (peak memory,
decode speed, time to first token, a price only where the footprint signs one), the computed licence,
the worst failure modes, and whether it verified and was reproduced.

Every number the label prints is a figure of generator/figures.py (``data-rc-figure``): this module
decides only what to show and in which words, never a number's text. Bars are drawn from the signed
values (positions in percent); a pack where every role scores zero draws none and says why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generator.figures import role_label, role_order
from generator.latency import null_words
from receipts.binding import lineage
from receipts.formats.footprint import MeasuredPoint
from receipts.metrics import diagnostics
from receipts.metrics.retention import REASONS

if TYPE_CHECKING:
    from generator.failure_modes import FailureModeView
    from generator.reproductions import Shown
    from receipts.formats import Footprint
    from receipts.verify import Check, VerifiedReceipt

__all__ = ["FLOOR_WORDS", "label_view"]

FLOOR_WORDS = "no model scores above zero here; this pack says nothing about these models"
"""What a pack where every role scores zero says instead of a bar."""

SHOWN_FAILURE_MODES = 3
"""Failure modes listed on the label, worst first; the rest are counted."""

_SEVERITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}

_RULE_WORDS = {
    "min_retention": "keeps less of the teacher's lead than the card's minimum",
    "max_global_regression": "drops further below the teacher than the card allows",
    "max_critical_regression": "drops further below the teacher on critical items than the card allows",
    "max_ece_increase": "is worse calibrated than the teacher by more than the card allows",
    "max_cost_ratio": "costs more relative to the teacher than the card allows",
}
"""A failed gate rule in words: the numbers are in the gate table below the label."""

_OUTCOME_WORDS = {
    "inconclusive": "inconclusive",
    "underpowered": "underpowered (too few items)",
    "not_evaluated": "not evaluated",
}

_AXIS = (-0.5, 1.5)
"""The retention axis is clipped here: base at 0, teacher at 1, a little room either side."""


@dataclass(frozen=True)
class Bar:
    """Where the marks of a retention bar sit, in percent of its width (axis: base 0, teacher 1)."""

    base: float
    teacher: float
    low: float
    high: float
    point: float
    clipped: bool


@dataclass(frozen=True)
class PackLine:
    """One pack on the label: its scores, and retention as a bar, or the floor sentence."""

    pack: str
    key: str
    metric: str
    floor: bool
    roles: tuple[tuple[str, str], ...]  # (figure key, role in words)
    bar: Bar | None
    why_no_retention: str | None
    vs_sft: str | None  # yes / no / can't tell, when the run signs a student - SFT difference


@dataclass(frozen=True)
class CostRow:
    """One measured point of a footprint: its figure keys' prefix and why a missing p95 is missing."""

    who: str
    quant: str
    concurrency: int
    key: str
    p95_why: str | None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _metric(entry: VerifiedReceipt, results_file: str) -> Mapping[str, Any]:
    """The signed results' ``metrics.all[<primary>]``, read as JSON (as generator/figures.py reads it)."""
    try:
        results = _mapping(json.loads(entry.files.get(results_file, b"{}")))
    except ValueError:
        return {}
    primary = results.get("primary_metric")
    every = _mapping(_mapping(results.get("metrics")).get("all"))
    return _mapping(every.get(primary)) if isinstance(primary, str) else {}


def _bar(low: float, high: float, point: float) -> Bar:
    lo, hi = _AXIS

    def at(value: float) -> float:
        return round((min(max(value, lo), hi) - lo) / (hi - lo) * 100, 2)

    return Bar(at(0), at(1), at(low), at(high), at(point), low < lo or high > hi)


def _answer(low: float | None, high: float | None) -> str | None:
    """Better than plain fine-tuning? Yes or no only where the 95% CI of student - SFT excludes zero."""
    if low is None or high is None:
        return None
    return "yes" if low > 0 else "no" if high < 0 else "can't tell"


def _no_retention(code: Any, scores: Mapping[str, Any]) -> str:
    """Why a run signs no retention, in words (the signed null reason, else the role the run lacks)."""
    if isinstance(code, str):
        return REASONS.get(code, code.replace("_", " "))
    roles = (("teacher", "teacher"), ("base", "base model"))
    missing = [words for role, words in roles if role not in scores]
    return f"no {' or '.join(missing)} evaluated in this run" if missing else "not measured"


def _pack_line(entry: VerifiedReceipt, index: int, shown: Mapping[str, str]) -> PackLine:
    run = entry.predicate.runs[index]
    key, summary = f"runs.{run.pack.id}", run.summary
    scores = _mapping(summary.get("scores"))
    metric = _metric(entry, run.results)
    floor = diagnostics.at_floor(
        _number(_mapping(v).get("value")) for v in _mapping(metric.get("roles")).values()
    )
    kept = _mapping(_mapping(metric.get("retention")).get("student"))
    point, ci = _number(summary.get("retention")), kept.get("ci95")
    bar = None
    if not floor and point is not None and isinstance(ci, list) and len(ci) == 2:
        low, high = _number(ci[0]), _number(ci[1])
        bar = _bar(low, high, point) if low is not None and high is not None else None
    why = None
    if point is None and not floor:
        why = _no_retention(kept.get("reason"), scores)
    gain = _mapping(_mapping(metric.get("differences")).get("student-sft"))
    pair = gain.get("ci95")
    bounds = pair if isinstance(pair, list) and len(pair) == 2 else [None, None]
    return PackLine(
        pack=run.pack.id,
        key=key,
        metric=shown.get(f"{key}.primary_metric", "n/a"),
        floor=floor,
        roles=tuple((f"{key}.scores.{r}", role_label(r)) for r in sorted(scores, key=role_order)),
        bar=bar,
        why_no_retention=why,
        vs_sft=_answer(_number(bounds[0]), _number(bounds[1])) if f"{key}.vs_sft" in shown else None,
    )


def _who(footprint: Footprint, entry: VerifiedReceipt) -> str:
    """Whose footprint: the role whose signed evaluated identity has its digest ("model" if none).

    A quantization of the student (``student@Q8_0``, or a file whose signed lineage leads to the student's
    weights) is the student's: the row beside it names the quantization.
    """
    digest = footprint.model.digest
    for results in entry.results:
        for role, model in results.models.items():
            if model.digest == digest:
                return "student" if role.startswith("student@") else role_label(role)
    weights = entry.predicate.weights
    try:
        found = lineage(footprint.model)
    except ValueError:
        found = None
    source = found.quantized_from if found is not None else None
    return "student" if weights is not None and weights.root in (digest, source) else "model"


def _cost(entry: VerifiedReceipt) -> list[dict[str, Any]]:
    """Per footprint: who was benched, where, its measured points, and its price key where one is signed."""
    out = []
    for number, footprint in enumerate(entry.footprints):
        who = _who(footprint, entry)
        rows = []
        for point in footprint.points:
            if isinstance(point, MeasuredPoint):
                stats = point.metrics.ttft_s
                reason = stats.null_reasons.get("p95")
                why = None if stats.p95 is not None else null_words("p95", reason, "calls")
                key = f"footprints.{number}.{point.id}"
                rows.append(CostRow(who, point.quant, point.concurrency, key, why))
        currency = footprint.settings.price.currency
        out.append(
            {
                "who": who,
                "hardware": footprint.hardware.label or footprint.hardware.hw_class,
                "rows": rows,
                "cost_key": f"footprints.{number}.cost_per_1k",
                "currency": currency if isinstance(currency, str) else "",
            }
        )
    return out


def _lineage(entry: VerifiedReceipt, evaluated: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """The card's teacher and base names, and whether the signed runs evaluated that role.

    ``verify`` refused any card that contradicts the signed identities (receipts.binding); the label says
    in a word whether a role was evaluated, and keeps evaluated_models' longer words for the hover text.
    """
    bound = {row["role"]: row["bound"] for row in evaluated}
    lineage = entry.card.lineage

    def role(name: str) -> dict[str, str]:
        words = bound.get(name)
        shown = "evaluated in the signed runs" if words is not None else "not evaluated in this receipt"
        return {"words": shown, "detail": words or ""}

    return {
        "relation": lineage.relation,
        "teachers": [t.name for t in lineage.teachers or []],
        "teacher": role("teacher"),
        "base": lineage.base.name,
        "base_role": role("base"),
    }


def _verdict(entry: VerifiedReceipt) -> dict[str, Any]:
    """The gate verdict, its failed rules in words, and how many rules are unsettled, by outcome."""
    failed, unsettled = [], set()
    for signed in entry.predicate.gate.rules or []:
        rule = _mapping(signed)
        status, name = rule.get("status"), rule.get("rule")
        pack = str(rule.get("pack") or "").partition("@")[0]
        if status == "fail":
            words = _RULE_WORDS.get(str(name), f"fails {str(name).replace('_', ' ')}")
            failed.append(f"{pack}: {words}" if pack else words)
        elif status in _OUTCOME_WORDS:
            unsettled.add(status)
    return {
        "verdict": entry.predicate.gate.verdict,
        "failed": failed,
        "unsettled": [_OUTCOME_WORDS[s] for s in _OUTCOME_WORDS if s in unsettled],
    }


def _failure_modes(
    views: Sequence[FailureModeView], links: Mapping[str, Sequence[tuple[str, str]]]
) -> dict[str, Any]:
    """The worst failure modes first (by severity, then the card's order), each with its anchor and viewer."""
    order = sorted(enumerate(views), key=lambda pair: (_SEVERITY.get(pair[1].severity, 9), pair[0]))
    top = [
        {
            "id": view.id,
            "anchor": view.anchor,
            "severity": view.severity,
            "items": len(view.items),
            "viewer": next(iter(links.get(view.id, ())), None),
        }
        for _, view in order[:SHOWN_FAILURE_MODES]
    ]
    return {"top": top, "more": max(0, len(views) - SHOWN_FAILURE_MODES)}


def _why(reasons: Sequence[str], label: str) -> str:
    """The first computed reason, without the "<term>: <verdict>" the label prints beside it."""
    first = reasons[0] if reasons else "no source sets one"
    head, sep, rest = first.partition(": ")
    return rest.split(" ", 1)[1] if sep and head == label and " " in rest else first


def _checks(checks: Sequence[Check]) -> dict[str, Any]:
    failed = [c.name for c in checks if c.status == "fail"]
    unchecked = [c.name for c in checks if c.status not in ("pass", "fail")]
    return {"ok": not failed, "failed": failed, "unchecked": unchecked}


def label_view(
    entry: VerifiedReceipt,
    figures: Mapping[str, str],
    licence: Mapping[str, Any],
    failure_modes: Sequence[FailureModeView],
    failure_mode_links: Mapping[str, Sequence[tuple[str, str]]],
    reproductions: Sequence[Shown],
    evaluated: Sequence[Mapping[str, str]],
) -> dict[str, Any]:
    """What the label shows (site/templates/_label.j2 lays it out; numbers by figure key only)."""
    rows = {row.label: row for row in licence["rows"]}
    terms = [
        {"label": k, "computed": row.computed, "override": row.override, "why": _why(row.reasons, k)}
        for k in ("commercial use", "redistribution")
        if (row := rows.get(k)) is not None
    ]
    packs = [_pack_line(entry, i, figures) for i in range(len(entry.predicate.runs))]
    return {
        "lineage": _lineage(entry, evaluated),
        "verdict": _verdict(entry),
        "runs": len(packs),
        "packs": [p for p in packs if not p.floor],
        "floors": [p for p in packs if p.floor],
        "sft": [p for p in packs if p.vs_sft is not None and not p.floor],
        "cost": _cost(entry),
        "licence": terms,
        "failure_modes": _failure_modes(failure_modes, failure_mode_links),
        "checks": _checks(entry.checks),
        "reproductions": reproductions,
        "floor_words": FLOOR_WORDS,
    }
