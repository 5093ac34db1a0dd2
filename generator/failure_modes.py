"""A card page's failure modes: placeholders filled from the verified results, and the named items' outputs.

Each failure mode becomes a view (`FailureModeView`) the card template lays out under ``id="fm-<id>"``:
its text with every ``{pack.role.measure@slice}`` placeholder replaced by the signed number (an
``<abbr>`` whose title says what the number is: pack, role, measure, slice and n), its evidence as
labelled numbers, and its items with the teacher's and the student's outputs side by side, read from the
verified examples log. Everything from the receipt is escaped here (it is the publisher's text and a
model's output); the template adds nothing unescaped. Nothing here raises on odd data: a placeholder that
does not resolve (a pack this receipt signs no run of) is shown as "not evaluated", an odd row as blank.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import markupsafe

from receipts.errors import InputError
from receipts.evidence import examples_rows
from receipts.failure_modes import Measured, Ref, SignedPack, resolve, segments, verified_packs

if TYPE_CHECKING:
    from receipts.verify import VerifiedReceipt

__all__ = ["MAX_ROWS", "FailureModeView", "failure_mode_views"]

MAX_ROWS = 16
"""Examples rows shown per failure mode; the rest are counted."""

MAX_TEXT = 160
"""Characters of a generated output shown in a cell."""

SIDES = ("teacher", "student")
"""The roles shown side by side, when the run has them."""


@dataclass(frozen=True)
class FailureModeView:
    """One failure mode as the page shows it (``Markup`` parts are escaped already)."""

    id: str
    anchor: str
    severity: str
    description: markupsafe.Markup
    trigger: markupsafe.Markup
    mitigation: markupsafe.Markup
    evidence: tuple[markupsafe.Markup, ...]
    items: tuple[str, ...]
    packs: tuple[str, ...]
    not_evaluated: tuple[str, ...]
    sides: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    more_rows: int


def _measured(value: Measured) -> markupsafe.Markup:
    return markupsafe.Markup('<abbr class="rc-measured" title="{}">{}</abbr>').format(
        value.label(), value.shown()
    )


def _filled(text: str, packs: Mapping[str, SignedPack]) -> markupsafe.Markup:
    parts = []
    for piece in segments(text, packs):
        if piece.value is not None:
            parts.append(_measured(piece.value))
        elif piece.unresolved:
            parts.append(
                markupsafe.Markup('<span class="rc-unmeasured" title="{}">[{}]</span>').format(
                    piece.text[:300], piece.unresolved[:300]
                )
            )
        else:
            parts.append(markupsafe.escape(piece.text))
    return markupsafe.Markup("").join(parts)


def _evidence(ref: Ref, packs: Mapping[str, SignedPack]) -> markupsafe.Markup:
    found = resolve(ref, packs)
    if isinstance(found, str):
        return markupsafe.Markup("<code>{}</code>: {}").format(str(ref), found)
    return markupsafe.Markup("{}: <strong>{}</strong>").format(found.label(), found.shown())


def _cell(row: Mapping[str, Any], role: str) -> dict[str, str]:
    """One role's output on one row, in words: what it answered, whether it scored, how confident."""
    roles = row.get("roles")
    out = roles.get(role) if isinstance(roles, Mapping) else None
    if not isinstance(out, Mapping):
        return {"output": "no output", "score": "", "mark": "", "confidence": ""}
    if out.get("error"):
        return {"output": "error", "score": "", "mark": "", "confidence": ""}
    text = out.get("text")
    if isinstance(text, str):
        output = repr(text[:MAX_TEXT]) + ("…" if len(text) > MAX_TEXT else "")
    elif out.get("abstained") is True:
        output = "abstained"
    else:
        output = f"choice {str(out.get('answer'))[:MAX_TEXT]}"
    score = _score(out.get("score"))
    mark = score if score in ("right", "wrong") else ""
    return {"output": output, "score": score, "mark": mark, "confidence": _confidence(out.get("confidence"))}


def _score(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    if value in (0, 1):
        return "right" if value == 1 else "wrong"
    return f"score {value:.3f}"


def _confidence(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{value:.2f}"


def _gold(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"choice {value}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text[:MAX_TEXT] + ("…" if len(text) > MAX_TEXT else "")


def _rows(item: str, rows: Sequence[Any], sides: Sequence[str], *, short: bool) -> list[dict[str, Any]]:
    shown = []
    item_id = item.partition("/")[2]
    for row in rows:
        if not isinstance(row, Mapping) or row.get("item") != item_id:
            continue
        gold = _gold(row.get("gold"))
        shown.append(
            {
                "item": item_id if short else item,
                "variant": str(row.get("variant") or "original")[:100],
                "gold": gold,
                "cells": [_cell(row, role) for role in sides],
            }
        )
    return shown


def _logs(entry: VerifiedReceipt) -> tuple[dict[str, SignedPack], dict[str, list[Any]]]:
    packs = verified_packs(entry)
    rows = {}
    for run, results in zip(entry.predicate.runs, entry.results, strict=True):
        try:  # verify parsed these very bytes already: a failure cannot happen for a verified receipt
            rows[results.pack.id] = examples_rows(entry.files.get(run.examples, b""), run.examples)
        except InputError:
            rows[results.pack.id] = []
    return packs, rows


def failure_mode_views(entry: VerifiedReceipt) -> list[FailureModeView]:
    """Every failure mode of a verified receipt's card, ready for the page."""
    packs, rows = _logs(entry)
    views = []
    for mode in entry.card.failure_modes:
        shown: list[dict[str, Any]] = []
        unevaluated = []
        named = sorted({item.partition("/")[0] for item in mode.pack_items})
        for item in mode.pack_items:
            pack = item.partition("/")[0]
            if pack not in packs:
                unevaluated.append(item)
                continue
            shown += _rows(item, rows.get(pack, []), SIDES, short=len(named) == 1)
        refs = [Ref(e.pack, e.role, e.metric, e.slice or "all") for e in mode.evidence or []]
        views.append(
            FailureModeView(
                id=mode.id,
                anchor=f"fm-{mode.id}",
                severity=mode.severity,
                description=_filled(mode.description, packs),
                trigger=_filled(mode.trigger, packs),
                mitigation=_filled(mode.mitigation, packs),
                evidence=tuple(_evidence(ref, packs) for ref in refs),
                items=tuple(mode.pack_items),
                packs=tuple(named),
                not_evaluated=tuple(unevaluated),
                sides=SIDES,
                rows=tuple(shown[:MAX_ROWS]),
                more_rows=max(0, len(shown) - MAX_ROWS),
            )
        )
    return views
