"""The licence section of a card page and the catalog index's licence fields, from the verified receipt.

Computed terms come from the signed ``predicate.licence`` (verify recomputed them with the table version
it names); a receipt signed before the record existed shows the terms verify computed from its signed
card with table v1 (``receipts.licences.record_of``). The declared claim is the signed card's; an
override is shown as one, with its reason, never as a computed permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from receipts import licence_claims, licences

if TYPE_CHECKING:
    from receipts.verify import VerifiedReceipt

__all__ = ["LicenceRow", "index_fields", "licence_view"]


@dataclass(frozen=True)
class LicenceRow:
    """One permission: computed (with reasons), declared, and the override covering a difference."""

    label: str
    computed: str
    reasons: tuple[str, ...]
    declared: str
    override: str | None
    evidence: str | None
    differs: bool


def _record(entry: VerifiedReceipt) -> dict[str, Any]:
    signed = entry.predicate.licence
    return licence_claims.record_of(
        entry.card, signed.model_dump(mode="json") if signed is not None else None
    )


def _worst(computed: dict[str, Any], *keys: str) -> tuple[str, list[str]]:
    """The strictest of several duties (yes > unknown > no) and the reasons of those that set it."""
    verdicts = [computed[k]["verdict"] for k in keys]
    worst = "yes" if "yes" in verdicts else "unknown" if "unknown" in verdicts else "no"
    return worst, [r for k in keys if computed[k]["verdict"] == worst for r in computed[k]["reasons"]]


def licence_view(entry: VerifiedReceipt) -> dict[str, Any]:
    """What the card page's licence table shows: rows, the table used, carried terms and notes."""
    record = _record(entry)
    computed, card = record["computed"], entry.card
    declared = card.license.permissions
    overrides = {o["permission"]: o for o in record["overrides"]}

    def row(key: str, label: str, value: str, reasons: list[str], claim: str) -> LicenceRow:
        override = overrides.get(key)
        return LicenceRow(
            label,
            value,
            tuple(reasons),
            claim,
            override["reason"] if override else None,
            override.get("evidence_url") if override else None,
            override is not None,
        )

    rows = [
        row(
            k,
            k.replace("_", " "),
            computed[k]["verdict"],
            computed[k]["reasons"],
            "yes" if getattr(declared, k) else "no",
        )
        for k in licences.PERMISSIONS
    ]
    duty, why = _worst(computed, "attribution", "notice")
    claim = "yes" if declared.attribution_required else "no"
    rows.append(row("attribution_required", "attribution or notice required", duty, why, claim))
    limits, why = _worst(computed, "use_restrictions", "competing_models")
    listed = declared.output_use_restrictions
    claim = f"{len(listed)} listed" if listed else "none"
    rows.append(row("output_use_restrictions", "use restrictions", limits, why, claim))
    mau = computed["max_monthly_active_users"]
    stated = declared.user_thresholds.max_monthly_active_users if declared.user_thresholds else None
    rows.append(
        row(
            "user_thresholds",
            "user threshold",
            f"separate licence above {mau['value']:,} monthly active users" if mau["value"] else "none",
            mau["reasons"],
            f"{stated:,} monthly active users" if stated is not None else "none",
        )
    )
    prefix = computed["model_name_prefix"]
    if prefix["value"]:
        rows.append(
            row(
                "model_name_prefix",
                "model name",
                "must start with " + " and ".join(repr(p) for p in prefix["value"]),
                prefix["reasons"],
                card.model.name,
            )
        )
    return {
        "rows": rows,
        "table": record["table"],
        "recorded": entry.predicate.licence is not None,
        "carried": computed["carried_terms"],
        "notes": computed["notes"],
    }


def index_fields(entry: VerifiedReceipt) -> dict[str, Any]:
    """``licence_terms`` and ``licence_overrides`` of the catalog index row."""
    record = _record(entry)
    return {
        "licence_terms": {k: record["computed"][k]["verdict"] for k in licences.PERMISSIONS},
        "licence_overrides": [o["permission"] for o in record["overrides"]],
    }
