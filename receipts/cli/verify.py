"""``receipts verify``: a receipt, a folder of receipts, a built catalog or a published catalog's URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from receipts.cli.app import app, out
from receipts.errors import UsageError, VerificationError

if TYPE_CHECKING:
    from receipts.trust import TrustRoot
    from receipts.verify import Report

__all__ = ["verify"]

_MARK = {"pass": "[green]✓[/green]", "fail": "[red]✗[/red]", "not checked": "[yellow]-[/yellow]"}
_MIB = 1024 * 1024


@app.command()
def verify(
    target_arg: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            help="A receipt.json, a receipt folder, a folder of receipts, a built catalog or its URL.",
        ),
    ],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    trust_root_sha256: Annotated[
        str | None, typer.Option(help="Refuse the trust root unless its sha256 matches.")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Check these weights (folder or file) too.")] = None,
    model_sig: Annotated[
        Path | None,
        typer.Option(help="With --weights: check this model_signing signature (default: WEIGHTS/model.sig)."),
    ] = None,
    pack: Annotated[Path | None, typer.Option(help="Check this eval pack folder too.")] = None,
    allow_retired: Annotated[bool, typer.Option(help="Accept signatures by retired keys.")] = False,
    expect: Annotated[str | None, typer.Option(help="NAME@VERSION the receipt must be for.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report on stdout.")] = False,
    max_file_mb: Annotated[
        float, typer.Option(min=0.001, help="A catalog URL: the most MiB read for one file.")
    ] = 256,
    max_catalog_mb: Annotated[
        float, typer.Option(min=0.001, help="A catalog URL: the most MiB read for the whole catalog.")
    ] = 2048,
    gate: Annotated[
        bool,
        typer.Option(
            help="Also exit 5 unless every receipt's signed gate passes (only pass passes: an inconclusive, "
            "underpowered or not evaluated rule fails unless the card lists it in gate.optional)."
        ),
    ] = False,
    rederive: Annotated[
        bool,
        typer.Option(
            help="Also re-derive every signed number (metrics, CIs, retention, gate, summaries, "
            "quantization) from the signed examples and footprints; exit 4 naming each that differs."
        ),
    ] = False,
) -> None:
    """Verify receipts against a pinned trust root; exit 4 if any check fails (5: --gate not passed).

    Example: receipts verify receipts/ --trust-root trust.json --weights models/student
    """
    from generator.remote import Limits
    from generator.sitecheck import verify_target
    from receipts.gate import require_gates

    if model_sig is not None and weights is None:
        raise UsageError("--model-sig needs --weights", hint="pass --weights DIR --model-sig DIR/model.sig")
    root = _trust_root(trust_root, trust_root_sha256, as_json=as_json)
    limits = Limits(file_bytes=int(max_file_mb * _MIB), catalog_bytes=int(max_catalog_mb * _MIB))
    reports = verify_target(
        target_arg,
        root,
        limits=limits,
        weights=weights,
        pack=pack,
        allow_retired=allow_retired,
        expect=expect,
        model_sig=model_sig,
        rederive=rederive,
    )
    _print_reports(reports, root, as_json=as_json)
    if any(not r.ok for r in reports):
        raise typer.Exit(VerificationError.exit_code)
    if gate:
        require_gates(reports)


def _trust_root(path: Path, sha256: str | None, *, as_json: bool) -> TrustRoot:
    """The pinned trust root; with ``--json`` an unusable one is reported as JSON too (exit 4)."""
    from receipts.trust import load_trust_root

    try:
        return load_trust_root(path, expected_sha256=sha256)
    except VerificationError as exc:
        if not as_json:
            raise
        failure = {"name": exc.check, "status": "fail", "detail": exc.summary(), "hint": exc.hint}
        out.print_json(json.dumps({"ok": False, "trust_root": None, "receipts": [], "error": failure}))
        raise typer.Exit(VerificationError.exit_code) from None


def _print_reports(reports: Sequence[Report], root: TrustRoot, *, as_json: bool) -> None:
    failed = [r for r in reports if not r.ok]
    if as_json:
        document = {
            "ok": not failed,
            "trust_root": {"sha256": root.sha256, "version": root.version},
            "receipts": [r.as_json() for r in reports],
        }
        out.print_json(json.dumps(document))
        return
    for report in reports:
        verdict = "[green]VERIFIED[/green]" if report.ok else "[red]FAILED[/red]"
        out.print(f"{verdict} {escape(report.model or '?')}  {escape(report.receipt)}")
        for check in report.checks:
            out.print(f"  {_MARK[check.status]} {check.name}: {escape(check.detail)}")
    out.print(
        f"{len(reports) - len(failed)} verified, {len(failed)} failed "
        f"(trust root {escape(root.publisher)} v{root.version}, sha256 {root.sha256[:16]}…)"
    )
