"""Per-quantization rows of the catalog index: what the buyer query ranks and compare lists.

A buyer deploys one quantization of a model, so a result must pair that quantization's quality with that
same quantization's memory: fp32's retention next to int8's peak RSS is a number nobody measured. Each row
here is one quantization of the student, read from the signed quantization table
(``predicate.quantization``: which role evaluated it per pack, which footprint points benched it), with
that role's score, retention (and CI), extraction precision/recall and the teacher's and base's scores on
the same pack, all from the verified results. A quantization only benched has no packs; one only
evaluated has no memory. Nothing here is prose from the card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from receipts.metrics import diagnostics
from receipts.metrics.retention import REASONS

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.verify import VerifiedReceipt

NO_BASE = "no base model was evaluated on this pack, so retention (S - B)/(T - B) is undefined"
"""Why retention is missing when the run has no base role (the metric needs one)."""

_MEMORY = ("hw_class", "hardware", "peak_rss_bytes", "decode_tps_p50", "status", "verdict")


def quant_rows(entry: VerifiedReceipt) -> list[dict[str, Any]]:
    """One row per student quantization in the signed quantization table, in the table's order."""
    runs = {f"{r.pack.id}@{r.pack.version}": r for r in entry.results}
    rows = []
    for row in entry.predicate.quantization or []:
        packs = {}
        for pack_ref, evaluated in row.evaluated.items():
            results = runs.get(pack_ref)
            if results is None:
                continue
            packs[results.pack.id] = pack_row(results, evaluated.role)
        memory = [{k: point.get(k) for k in _MEMORY} for point in row.benched]
        rows.append({"quant": row.quant, "packs": packs, "memory": memory})
    return rows


def pack_row(results: Results, role: str) -> dict[str, Any]:
    """What one role (``student`` or ``student@QUANT``) scored on one signed run, beside teacher and base."""
    primary = results.primary_metric or ""
    metric = (results.metrics or {}).get("all", {}).get(primary)
    estimates = metric.roles if metric else {}
    kept = (metric.retention or {}).get(role) if metric else None

    def score(name: str) -> float | None:
        estimate = estimates.get(name)
        return None if estimate is None else estimate.value

    values = [e.value for e in estimates.values()]
    out: dict[str, Any] = {
        "pack": f"{results.pack.id}@{results.pack.version}",
        "role": role,
        "metric": primary,
        "score": score(role),
        "teacher": score("teacher"),
        "base": score("base"),
        "retention": kept.value if kept else None,
        "retention_ci": list(kept.ci95) if kept and kept.ci95 and None not in kept.ci95 else None,
        "retention_reason": _retention_reason(kept, "base" in estimates),
        # every role at the floor: the pack cannot tell these models apart (or from nothing)
        "floor": diagnostics.at_floor(values),
    }
    counts = (results.extraction or {}).get(role)
    if counts is not None:
        micro = counts.micro
        out["extraction"] = {k: getattr(micro, k) for k in ("precision", "recall", "f1", "tp", "fp", "fn")}
    return out


def _retention_reason(kept: Any, has_base: bool) -> str | None:
    """Why retention is null, in words (the signed reason code's text), or None when it has a value."""
    if kept is not None and kept.value is not None:
        return None
    if kept is None:
        return "no retention recorded for this role" if has_base else NO_BASE
    code = kept.reason or ""
    return REASONS.get(code, code or "no reason recorded")
