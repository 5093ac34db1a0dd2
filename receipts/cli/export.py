"""``receipts export``: a verified receipt as a Hugging Face model card or a CycloneDX ML-BOM."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from receipts.cli.app import Rederive, app, err

__all__ = ["export_app"]

export_app = typer.Typer(
    help="Export a verified receipt for other tools: a Hugging Face model card, a CycloneDX ML-BOM.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")


def _write_export(text: str, dest: Path | None, what: str) -> None:
    if dest is None:
        sys.stdout.write(text)
        return
    from receipts.output import write_file

    write_file(dest, text.encode("utf-8"), what=f"the {what}")
    err.print(f"wrote {what} to {escape(str(dest))}")


@export_app.command("hf")
def export_hf(
    receipt: Annotated[Path, typer.Argument(help="A receipt.json or its folder.")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    trust_root_sha256: Annotated[
        str | None, typer.Option(help="Refuse the trust root unless its sha256 matches.")
    ] = None,
    dest: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
    receipt_url: Annotated[
        str | None, typer.Option(help="Where the receipt is published (linked from the card).")
    ] = None,
    rederive: Rederive = True,
) -> None:
    """Write a Hugging Face model card (README.md) from a receipt that verifies.

    The YAML front matter carries license, base_model, base_model_relation, datasets and a
    model-index with every evaluated metric; the body carries the scorecard, states the numbers are
    self-reported, and says how to verify them.

    Example: receipts export hf receipts/my-model@1.0.0 --trust-root trust.json --out README.md
    """
    from receipts.export.hf import model_card
    from receipts.output import check_file
    from receipts.trust import load_trust_root
    from receipts.verify import verify_receipt

    if dest is not None:
        check_file(dest, what="the model card")
    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    verified = verify_receipt(receipt, root, rederive=rederive)
    _write_export(model_card(verified, receipt_url=receipt_url), dest, "model card")


@export_app.command("cyclonedx")
def export_cyclonedx(
    receipt: Annotated[Path, typer.Argument(help="A receipt.json or its folder.")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    trust_root_sha256: Annotated[
        str | None, typer.Option(help="Refuse the trust root unless its sha256 matches.")
    ] = None,
    dest: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
    rederive: Rederive = True,
) -> None:
    """Write a CycloneDX 1.6 ML-BOM (JSON) from a receipt that verifies.

    One machine-learning-model component with the weights' hashes, licences, the teacher as a
    pedigree ancestor, and a modelCard with every metric per slice with its confidence interval.

    Example: receipts export cyclonedx receipts/my-model@1.0.0 --trust-root trust.json --out bom.json
    """
    from receipts.export.cyclonedx import ml_bom
    from receipts.output import check_file
    from receipts.trust import load_trust_root
    from receipts.verify import verify_receipt

    if dest is not None:
        check_file(dest, what="the CycloneDX ML-BOM")
    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    bom = ml_bom(verify_receipt(receipt, root, rederive=rederive))
    _write_export(json.dumps(bom, indent=2, ensure_ascii=False) + "\n", dest, "CycloneDX ML-BOM")
