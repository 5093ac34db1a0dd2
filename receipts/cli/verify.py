"""``receipts verify``: a receipt, a folder of receipts, a built catalog or a published catalog's URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from receipts.cli.app import Rederive, app, out
from receipts.cli.reproduce import (
    Model,
    OutFile,
    Rerun,
    Role,
    Seed,
    SignWith,
    Threads,
    Tolerant,
    reproduce,
    rerun_request,
)
from receipts.errors import UsageError, VerificationError

if TYPE_CHECKING:
    from receipts.trust import TrustRoot
    from receipts.verify import Report

__all__ = ["verify"]

_MARK = {"pass": "[green]✓[/green]", "fail": "[red]✗[/red]", "not checked": "[yellow]-[/yellow]"}
_MIB = 1024 * 1024


# The options, one type each, so the command's signature reads as the list of what it takes.
Target = Annotated[
    str,
    typer.Argument(
        metavar="TARGET",
        help="A receipt.json, a receipt folder, a folder of receipts, a built catalog or its URL.",
    ),
]
TrustRootFile = Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")]
TrustRootSha256 = Annotated[str | None, typer.Option(help="Refuse the trust root unless its sha256 matches.")]
Weights = Annotated[Path | None, typer.Option(help="Check these weights (folder or file) too.")]
ModelSig = Annotated[
    Path | None,
    typer.Option(help="With --weights: check this model_signing signature (default: WEIGHTS/model.sig)."),
]
Pack = Annotated[Path | None, typer.Option(help="Check this eval pack folder too.")]
AllowRetired = Annotated[bool, typer.Option(help="Accept signatures by retired keys.")]
Expect = Annotated[str | None, typer.Option(help="NAME@VERSION the receipt must be for.")]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable report on stdout.")]
MaxFileMb = Annotated[float, typer.Option(min=0.001, help="A catalog URL: the most MiB read for one file.")]
MaxCatalogMb = Annotated[
    float, typer.Option(min=0.001, help="A catalog URL: the most MiB read for the whole catalog.")
]
Gate = Annotated[
    bool,
    typer.Option(
        help="Also exit 5 unless every receipt's signed gate passes (only pass passes: an inconclusive, "
        "underpowered or not evaluated rule fails unless the card lists it in gate.optional)."
    ),
]


@app.command()
def verify(
    target_arg: Target,
    trust_root: TrustRootFile,
    trust_root_sha256: TrustRootSha256 = None,
    weights: Weights = None,
    model_sig: ModelSig = None,
    pack: Pack = None,
    allow_retired: AllowRetired = False,
    expect: Expect = None,
    as_json: AsJson = False,
    max_file_mb: MaxFileMb = 256,
    max_catalog_mb: MaxCatalogMb = 2048,
    gate: Gate = False,
    rederive: Rederive = True,
    rerun: Rerun = None,
    model: Model = None,
    role: Role = "student",
    seed: Seed = 0,
    threads: Threads = None,
    tolerant: Tolerant = False,
    sign_with: SignWith = None,
    out_file: OutFile = None,
) -> None:
    """Verify receipts against a pinned trust root; exit 4 if any check fails (5: --gate not passed).

    With --rerun N (one receipt), N signed items, sampled by seed and stratified by slice, are re-executed
    on --weights DIR or --model SPEC with the signed settings and compared with the signed rows: prompt
    sha256 and answers exactly; log-likelihoods bit for bit in the signed setup (dtype and threads),
    otherwise within the dtype's tolerance, labelled. Exit 4 unless N/N reproduce on the signed model.
    --sign-with KEY --out FILE then writes a signed reproduction statement (check it with
    `receipts verify-reproduction`). --weights and --pack are then the rerun's (each held to the signed
    digest) rather than extra checks.

    Example: receipts verify receipts/ --trust-root trust.json --weights models/student

    Example: receipts verify m@1.0/ --trust-root trust.json --rerun 20 --weights models/student
    """
    from generator.remote import Limits
    from generator.sitecheck import verify_target
    from receipts.gate import require_gates

    if model_sig is not None and weights is None:
        raise UsageError("--model-sig needs --weights", hint="pass --weights DIR --model-sig DIR/model.sig")
    request = rerun_request(
        rerun, weights=weights, model=model, pack=pack, role=role, seed=seed, threads=threads,
        tolerant=tolerant, sign_with=sign_with, out_file=out_file, model_sig=model_sig,
    )  # fmt: skip
    root = _trust_root(trust_root, trust_root_sha256, as_json=as_json)
    limits = Limits(file_bytes=int(max_file_mb * _MIB), catalog_bytes=int(max_catalog_mb * _MIB))
    reports = verify_target(
        target_arg,
        root,
        limits=limits,
        weights=None if request else weights,
        pack=None if request else pack,
        allow_retired=allow_retired,
        expect=expect,
        model_sig=model_sig,
        rederive=rederive,
    )
    if request is None or not as_json or any(not r.ok for r in reports):  # --json --rerun: one document
        _print_reports(reports, root, as_json=as_json)
    if any(not r.ok for r in reports):
        raise typer.Exit(VerificationError.exit_code)
    if gate:
        require_gates(reports)
    if request is not None:
        reproduce(reports, request, root, sign_with=sign_with, out_file=out_file, as_json=as_json)


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
