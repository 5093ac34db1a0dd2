"""``receipts validate``: documents and eval packs against their schemas, every problem listed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from receipts.cli.app import app, err, out
from receipts.errors import InputError, ReceiptsError, SchemaError, VerificationError, Violation

__all__ = ["validate"]


def _validate_pack(path: Path) -> str:
    from runner.eval.loader import load_pack  # lazily: the kernel reaches the runner only through the CLI

    pack = load_pack(path)
    return f"pack {pack.id}@{pack.version}: {len(pack.items)} items, digest sha256:{pack.digest}"


def _validate_one(path: Path) -> str:
    from receipts import schemas
    from receipts.documents import load_document
    from receipts.dsse import parse_envelope

    if path.name == "pack.yaml" or (path / "pack.yaml").is_file():
        return _validate_pack(path)
    data, value = load_document(path)
    kind = schemas.detect_kind(value)
    if kind == "pack":
        return _validate_pack(path)
    if kind == "receipt":
        try:
            envelope = parse_envelope(data, file=path)
        except VerificationError as exc:
            raise SchemaError(path, "receipt", [Violation("$", exc.message)]) from None
        statement = json.loads(envelope.payload)
        schemas.validate(statement, "statement", file=f"{path} (statement)")
        return "receipt (structure only; run `receipts verify` to check signatures and files)"
    if kind is None or (kind not in schemas.KINDS and kind != "statement"):
        raise InputError(
            "cannot tell what kind of document this is",
            file=path,
            hint="cards, results, footprints and trust roots start with a `format:` marker "
            f"({', '.join(schemas.KINDS.values())})",
        )
    schemas.validate(value, kind, file=path)
    if kind == "card":
        _check_failure_mode_text(value, path)
        from receipts.formats import Card
        from receipts.licence_claims import check_card

        terms = check_card(Card.parse(value, file=path), file=path)
        verdicts = ", ".join(
            f"{k.replace('_', ' ')} {terms.verdict(k)}" for k in ("commercial_use", "redistribution")
        )
        return f"card (computed licence terms: {verdicts})"
    return kind


def _check_failure_mode_text(card: dict[str, object], path: Path) -> None:
    """Placeholder syntax and typed-in numbers: what failure modes can be checked for without runs."""
    from receipts.failure_modes import text_problems

    found = text_problems(card)
    hint = "write a measurement as a placeholder filled from the signed results, anything else in words"
    if found:
        raise SchemaError(path, "card", [Violation(where, problem, hint) for where, problem in found])


@app.command()
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Cards, results, footprints, trust roots, receipts, eval packs.")
    ],
) -> None:
    """Validate documents against their JSON Schemas, listing every problem with its JSON path.

    An eval pack (its folder or pack.yaml) is loaded whole: every item and template is checked.

    Example: receipts validate examples/card.yaml trust.json packs/capitals-mc
    """
    failures: list[ReceiptsError] = []
    for path in files:
        try:
            kind = _validate_one(path)
            out.print(f"[green]ok[/green] {escape(str(path))}: valid {kind}")
        except (SchemaError, InputError) as exc:
            err.print(escape(exc.diagnostics()))
            failures.append(exc)
    if failures:
        raise typer.Exit(max(f.exit_code for f in failures))
