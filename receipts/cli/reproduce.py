"""``receipts verify --rerun N`` (re-execute signed items) and ``receipts verify-reproduction`` (check one).

The rerun itself lives in the runner (`runner.eval.rerun`), imported only when ``--rerun`` is given, so
``receipts verify`` stays torch-free; the reproduction statement is the kernel's (`receipts.reproduction`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from receipts.cli.app import app, out, shown
from receipts.errors import UsageError, VerificationError

if TYPE_CHECKING:
    from receipts.trust import TrustRoot
    from receipts.verify import Report
    from runner.eval.rerun import Reproduction, RerunRequest

__all__ = ["reproduce", "rerun_request", "verify_reproduction"]

Rerun = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="Re-execute N signed items (seeded, stratified by slice) on --weights/--model and compare them "
        "with the signed rows; exit 4 unless N/N reproduce.",
    ),
]
Model = Annotated[
    str | None, typer.Option(help="With --rerun: the model spec to run (instead of --weights).")
]
Role = Annotated[str, typer.Option(help="With --rerun: the signed role to reproduce.")]
Seed = Annotated[int, typer.Option(help="With --rerun: the seed of the sample.")]
Threads = Annotated[
    int | None, typer.Option(min=1, help="With --rerun: CPU threads (default: the signed thread count).")
]
Tolerant = Annotated[
    bool,
    typer.Option(
        help="With --rerun: compare log-likelihoods within the dtype's tolerance even in the signed setup "
        "(another CPU or torch build)."
    ),
]
SignWith = Annotated[
    Path | None,
    typer.Option(help="With --rerun: sign a reproduction statement with this (reproducer's) private key."),
]
OutFile = Annotated[Path | None, typer.Option("--out", help="With --sign-with: the statement file to write.")]


def rerun_request(
    n: int | None,
    *,
    weights: Path | None,
    model: str | None,
    pack: Path | None,
    role: str,
    seed: int,
    threads: int | None,
    tolerant: bool,
    sign_with: Path | None,
    out_file: Path | None,
    model_sig: Path | None = None,
) -> RerunRequest | None:
    """The rerun ``verify``'s options ask for (None: no ``--rerun``).

    Raises:
        UsageError: rerun options without ``--rerun``, N below one, not exactly one of weights and model,
            ``--sign-with`` without ``--out`` (or the other way round), an ``--out`` that exists,
            ``--model-sig`` with ``--rerun``.
    """
    if n is None:
        if model or sign_with or out_file or threads or tolerant:
            raise UsageError("--model, --threads, --tolerant, --sign-with and --out need --rerun N")
        return None
    if n < 1:
        raise UsageError(f"--rerun N must be at least 1, not {n}")
    from receipts.formats.reproduction import MAX_ITEMS

    if n > MAX_ITEMS:
        raise UsageError(f"--rerun N must be at most {MAX_ITEMS} (a reproduction lists each item), not {n}")
    if (weights is None) == (model is None):
        raise UsageError("--rerun needs exactly one of --weights DIR and --model SPEC")
    if (sign_with is None) != (out_file is None):
        raise UsageError("--sign-with KEY and --out FILE go together")
    if out_file is not None:  # a new file in a writable folder, checked before minutes of rerun
        from receipts.output import check_file

        check_file(out_file, what="the reproduction statement", force=False)
    if model_sig is not None:
        raise UsageError(
            "--model-sig checks weights, not a rerun", hint="verify the signature without --rerun"
        )
    from runner.eval.rerun import RerunRequest

    packs = (pack,) if pack else ()
    return RerunRequest(n, role, weights, model, packs, seed, threads, tolerant)


def reproduce(
    reports: Sequence[Report],
    request: RerunRequest,
    root: TrustRoot,
    *,
    sign_with: Path | None,
    out_file: Path | None,
    as_json: bool,
) -> None:
    """Rerun the one verified receipt of ``reports``, print the outcome, sign it if asked; exit 4 unless N/N.

    Raises:
        UsageError: ``reports`` is not exactly one receipt.
    """
    from runner.eval.rerun import rerun, signed_runs

    if len(reports) != 1 or reports[0].verified is None:
        raise UsageError("--rerun applies to one receipt", hint="point at one receipt folder")
    verified = reports[0].verified
    key = None
    if sign_with is not None:
        from receipts.cli.keys import private_keys

        (key,) = private_keys([sign_with])  # refuse a bad key before the work
    outcome = rerun(signed_runs(verified), request)
    written = None
    if key is not None and out_file is not None:
        from receipts.reproduction import reproduction_statement, sign_reproduction

        name = sign_with.name.split(".")[0] if sign_with else "?"  # lab.key.pem -> lab
        statement = reproduction_statement(
            verified, outcome.as_json(), name=name, keyid=key.public.keyid, issued_at=datetime.now(UTC)
        )
        from receipts.output import write_file

        data = sign_reproduction(statement, key)  # a new file only (O_EXCL, no link followed)
        write_file(out_file, data, what="the reproduction statement", force=False)
        written = str(out_file)
    if as_json:
        document = {
            "ok": outcome.ok,
            "trust_root": {"sha256": root.sha256, "version": root.version},
            "receipts": [r.as_json() for r in reports],
            "rerun": outcome.as_json(),
            "statement": written,
        }
        out.print_json(json.dumps(document))
    else:
        _print_outcome(outcome, written)
    if not outcome.ok:
        raise typer.Exit(VerificationError.exit_code)


def _print_outcome(outcome: Reproduction, written: str | None) -> None:
    signed = outcome.signed_identity
    what = signed.get("digest") or signed.get("endpoint")
    now = outcome.identity.get("digest") or outcome.identity.get("endpoint")
    if outcome.same_model:
        out.print(f"rerun: {shown(outcome.role)} = {shown(outcome.spec)} ({shown(now)}, the signed model)")
    else:
        out.print(
            f"[red]DIFFERENT MODEL[/red]: {shown(outcome.spec)} is {shown(now)}, "
            f"but the signed {shown(outcome.role)} is {shown(what)}"
        )
    if outcome.asked > outcome.n:
        out.print(f"  asked for {outcome.asked} items; the receipt has {outcome.n}: all of them re-executed")
    colour = "green" if outcome.ok else "red"
    packs = ", ".join(outcome.packs)
    out.print(
        f"[{colour}]reproduced {outcome.k}/{outcome.n}[/{colour}], {shown(outcome.label)} "
        f"· packs {shown(packs)} · seed {outcome.seed} · threads {outcome.threads}"
    )
    for check in outcome.checks:
        if not check.reproduced:
            out.print(f"  [red]✗[/red] {shown(check.name)}: {shown('; '.join(check.problems))}")
    if written:
        out.print(f"wrote {shown(written)} (reproduction statement; check: receipts verify-reproduction)")


@app.command("verify-reproduction")
def verify_reproduction(
    statement: Annotated[Path, typer.Argument(help="A reproduction statement (verify --rerun --sign-with).")],
    receipt: Annotated[Path, typer.Option(help="The receipt it reproduces (receipt.json or its folder).")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="The publisher's pinned trust root.")],
    reproducer_key: Annotated[
        Path,
        typer.Option(help="The reproducer's public key (NAME.pub.pem), pinned by you: not the publisher's."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
) -> None:
    """Check a reproduction statement: signed by the pinned reproducer key, about exactly this receipt.

    The receipt is verified against the publisher's trust root first. Exit 4 if anything fails, or if the
    statement says fewer than N/N items reproduced (or another model ran).

    Example: receipts verify-reproduction r.json --receipt m@1/ --trust-root t.json --reproducer-key l.pub.pem
    """
    from receipts.documents import read_bytes
    from receipts.dsse import MAX_ENVELOPE_BYTES
    from receipts.keys import load_public_key
    from receipts.reproduction import verify_reproduction as check
    from receipts.trust import load_trust_root
    from receipts.verify import verify_receipt

    root = load_trust_root(trust_root)
    key = load_public_key(reproducer_key)
    verified = verify_receipt(receipt, root)
    data = read_bytes(statement, what="reproduction statement", limit=MAX_ENVELOPE_BYTES)
    predicate = check(data, verified, key, root, file=statement).predicate
    complete = predicate.same_model and predicate.reproduced == predicate.n
    if as_json:
        out.print_json(json.dumps({"ok": complete, "statement": _summary(predicate)}))
    else:
        colour = "green" if complete else "red"
        out.print(
            f"[{colour}]reproduction VERIFIED[/{colour}]: {shown(verified.bundle_name)} reproduced by "
            f"the key you pinned ({predicate.reproducer.keyid[:19]}…; self-declared name "
            f"{shown(repr(predicate.reproducer.name))}) on "
            f"{predicate.issuedAt[:10]}: {predicate.reproduced}/{predicate.n}, {shown(predicate.label)}"
        )
        if not predicate.same_model:
            out.print("  [red]on a model other than the signed one[/red]")
    if not complete:
        raise typer.Exit(VerificationError.exit_code)


def _summary(predicate: Any) -> dict[str, Any]:
    return {
        "reproducer": predicate.reproducer.model_dump(),
        "issuedAt": predicate.issuedAt,
        "reproduced": predicate.reproduced,
        "n": predicate.n,
        "label": predicate.label,
        "same_model": predicate.same_model,
    }
