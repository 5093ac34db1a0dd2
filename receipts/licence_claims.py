"""A card's declared licence claim against its computed terms, and the signed record of both.

`receipts.licences` computes the effective terms and what a claim exceeds; this module turns that into
refusals (`licence_problems`, `check_card`: refused at validate and sign unless an override names the
permission) and writes and re-checks the ``predicate.licence`` record (`licence_record`, `record_of`,
`check_record`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from receipts.errors import InputError, SchemaError, VerificationError, Violation
from receipts.licences import (
    _LABEL,
    PERMISSIONS,
    Excess,
    Table,
    Terms,
    _clip,
    _excesses,
    compute_terms,
    load_table,
)

if TYPE_CHECKING:
    from receipts.formats import Card


def _split(card: Card, terms: Terms) -> tuple[list[Excess], list[Excess]]:
    """(excesses an override covers, excesses none covers)."""
    overridden = {o.permission for o in card.license.overrides or ()}
    found = _excesses(card, terms)
    return [e for e in found if e.permission in overridden], [
        e for e in found if e.permission not in overridden
    ]


_PATHS = {
    "model_name_prefix": "$.model.name",
    "license_id": "$.license.id",
}


def licence_problems(card: Card, terms: Terms | None = None) -> list[Violation]:
    """Declared permissions beyond the computed ones that no override covers, one violation each."""
    terms = terms or compute_terms(card)
    _, uncovered = _split(card, terms)
    problems = []
    for e in uncovered:
        if e.permission == "license_id":
            problems.append(
                Violation(
                    "$.license.id",
                    f"declares licence {_clip(e.declared)!r}, but the computed licence terms carry "
                    f"{e.computed.removeprefix('a licence that includes ')}, which the card's licence does "
                    "not include: " + "; ".join(e.reasons),
                    "name each carried licence in `license.id` (e.g. `Apache-2.0 AND "
                    f"{e.computed.removeprefix('a licence that includes ').split(' and ')[0]}`), or add "
                    "`license.overrides: [{permission: license_id, reason: ...}]` naming the agreement that "
                    "lets you license the model otherwise",
                )
            )
            continue
        problems.append(
            Violation(
                _PATHS.get(e.permission, f"$.license.permissions.{e.permission}"),
                f"declares {e.permission}: {e.declared}, but the computed licence terms say {e.computed}: "
                + "; ".join(e.reasons),
                f"declare what the terms allow (receipts computes them from the licence table), or add "
                f"`license.overrides: [{{permission: {e.permission}, reason: ...}}]` naming the agreement "
                "that grants it"
                + (
                    "; training data that reaches the model only through the base weights is marked "
                    "`through_base: true`"
                    if any(r.startswith("training data") for r in e.reasons)
                    else ""
                ),
            )
        )
    if card.lineage.relation == "original":  # no base weights for data to arrive through
        for i, data in enumerate(card.training_data):
            if data.through_base:
                problems.append(
                    Violation(
                        f"$.training_data[{i}].through_base",
                        "an original model has no base weights that data could reach it through",
                        "remove `through_base`: data an original model was trained on binds it",
                    )
                )
    return problems


def check_card(card: Card, *, file: object) -> Terms:
    """The card's computed terms; refuses declared permissions beyond them without an override.

    Raises:
        SchemaError: (exit 3) listing every uncovered excess with its JSON path, computed value and reasons.
    """
    terms = compute_terms(card)
    problems = licence_problems(card, terms)
    if problems:
        raise SchemaError(file, "card (licence terms)", problems)
    return terms


def licence_record(card: Card, table: Table | None = None) -> dict[str, Any]:
    """What a receipt signs (``predicate.licence``): table, computed terms, the claim and the overrides."""
    table = table or load_table()
    terms = compute_terms(card, table)
    covered, _ = _split(card, terms)
    declared = card.license.permissions
    reasons: dict[str, Any] = {o.permission: o for o in card.license.overrides or ()}
    return {
        "table": {"version": table.version, "sha256": table.sha256},
        "computed": terms.as_json(),
        "declared": {
            "license": card.license.id,
            **{k: getattr(declared, k) for k in PERMISSIONS},
            "attribution_required": declared.attribution_required,
            "output_use_restrictions": len(declared.output_use_restrictions),
            "max_monthly_active_users": (
                declared.user_thresholds.max_monthly_active_users if declared.user_thresholds else None
            ),
        },
        "overrides": [
            {
                **e.as_json(),
                "reason": reasons[e.permission].reason,
                **(
                    {"evidence_url": reasons[e.permission].evidence_url}
                    if reasons[e.permission].evidence_url
                    else {}
                ),
            }
            for e in covered
        ],
    }


LEGACY_TABLE = 1
"""The table a receipt signed before ``predicate.licence`` existed is checked against."""


def record_of(card: Card, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
    """The licence record a verified receipt stands for (the signed one, or one computed at verification).

    A receipt signed before terms were recorded stands for the record computed from its signed card with
    table `LEGACY_TABLE`.

    Raises:
        InputError: the recorded table version is not shipped.
    """
    if recorded is None:
        return licence_record(card, load_table(LEGACY_TABLE))
    return dict(recorded)


def check_record(card: Card, recorded: Mapping[str, Any] | None) -> str:
    """Recompute ``predicate.licence`` with the table version it names; return a one-line summary.

    A receipt without the record (signed before it existed) is checked against table `LEGACY_TABLE`:
    leaving the record out never skips the check.

    Raises:
        VerificationError: (check ``licence``) an unknown table or digest, a difference, or a declared
            permission no override covers.
    """
    version = recorded["table"]["version"] if recorded is not None else LEGACY_TABLE
    try:
        table = load_table(version)
    except InputError as exc:
        raise VerificationError(exc.message, check="licence", hint=exc.hint) from None
    expected = licence_record(card, table)
    if recorded is not None:
        if table.sha256 != recorded["table"]["sha256"]:
            raise VerificationError(
                f"the receipt names licence table v{version} with sha256 {recorded['table']['sha256']}, but "
                f"this receipts ships v{version} as {table.sha256}",
                check="licence",
                hint="a published table never changes: the receipt or this installation was altered",
            )
        for key in ("computed", "declared", "overrides"):
            if _canonical(expected[key]) != _canonical(recorded.get(key)):
                raise VerificationError(
                    f"the signed licence {key} differ from those recomputed from the signed card with "
                    f"licence table v{version}",
                    check="licence",
                    hint="the statement was edited before signing; re-sign the card with receipts sign",
                )
    problems = licence_problems(card, compute_terms(card, table))  # sign refuses these
    if problems:
        raise VerificationError(
            f"the card declares permissions beyond its computed licence terms: {problems[0].path}: "
            + problems[0].message,
            check="licence",
            hint=problems[0].hint,
        )
    terms = expected["computed"]
    summary = ", ".join(f"{_LABEL[k]} {terms[k]['verdict']}" for k in PERMISSIONS)
    where = "recomputed" if recorded is not None else "not recorded (an older receipt); computed"
    return f"{where} with licence table v{version}: {summary}" + (
        f"; {len(expected['overrides'])} override(s)" if expected["overrides"] else ""
    )


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
