"""``receipts sign``: bind a card to its weights, runs and footprints, and sign the receipt."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from receipts.cli.app import app, out
from receipts.cli.keys import private_keys
from receipts.errors import UsageError, VerificationError

__all__ = ["sign"]

PackOption = Annotated[
    list[Path] | None,
    typer.Option(
        help="A run's eval pack folder; repeatable. Held to the digest the run recorded, and published in "
        "the bundle (packs/<id>/...) when its licence permits redistribution (reviewers read the inputs)."
    ),
]
NoPackOption = Annotated[
    bool, typer.Option("--no-pack", help="Bind the packs by digest only: never publish their files.")
]

OverlapOption = Annotated[
    Path | None,
    typer.Option(help="A `receipts overlap` overlap.json about the pack of a --run: bound as a subject."),
]
ModelSigOption = Annotated[
    Path | None,
    typer.Option(help="Also write an OpenSSF model_signing signature here (e.g. WEIGHTS/model.sig)."),
]
GateOption = Annotated[
    bool,
    typer.Option(
        help="Sign only if the release gate passes (exit 5 otherwise; a rule inconclusive, underpowered "
        "or not evaluated does not pass unless the card lists it in gate.optional)."
    ),
]
RederiveOption = Annotated[
    bool,
    typer.Option(
        help="Refuse (exit 4) to sign numbers that do not re-derive from the signed evidence, as verify "
        "would: each run's results from its examples, each footprint from its samples. --no-rederive "
        "signs without this check."
    ),
]

IfChangedOption = Annotated[
    bool,
    typer.Option(
        help="Replace an existing receipt folder only if what it signs changed: one with the same "
        "files, signed by these keys over the same statement (its signing time aside), is kept byte "
        "for byte, so reproductions of it still apply."
    ),
]


@app.command()
def sign(
    card: Annotated[Path, typer.Option(help="The publisher's card.yaml.")],
    key: Annotated[
        list[Path], typer.Option(help="Private key (NAME.key.pem); repeatable for multi-signing.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write <name>@<version>/ into.")],
    run: Annotated[
        list[Path] | None, typer.Option(help="A `receipts run` output folder; repeatable.")
    ] = None,
    footprint: Annotated[
        list[Path] | None, typer.Option(help="A `receipts bench` footprint.json; repeatable.")
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="The model's weights folder or file.")] = None,
    overlap: OverlapOption = None,
    pack: PackOption = None,
    no_pack: NoPackOption = False,
    issued_at: Annotated[str | None, typer.Option(help="Override the signing time (RFC 3339).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing receipt folder.")] = False,
    if_changed: IfChangedOption = False,
    model_sig: ModelSigOption = None,
    gate: GateOption = False,
    rederive: RederiveOption = True,
) -> None:
    """Bind a card to its weights, runs and footprints, and sign it into OUT/<name>@<version>/.

    Subject files are copied into the receipt folder; receipt.json names them by relative path.

    Example: receipts sign --card card.yaml --weights models/student --key release.key.pem --out receipts/

    With --pack, a run's eval pack is published in the bundle when its licence permits redistribution.

    With --model-sig, the weights also get a model.sig that `model_signing verify key` accepts.
    """
    from receipts.output import check_folder
    from receipts.sign import sign_receipt

    if out_dir.suffix.lower() == ".json":
        raise UsageError(
            f"--out {out_dir} looks like a file, but a receipt is a folder",
            hint=f"pass a parent folder: --out {out_dir.parent}/ writes "
            f"{out_dir.parent}/<name>@<version>/receipt.json with its subject files beside it",
        )
    check_folder(out_dir, what="the receipt folder")
    when = _issued_at(issued_at)
    if rederive:
        _check_numbers(run or [], footprint or [])
    keys = private_keys(key)
    if model_sig is not None:
        from receipts.modelsig import model_sig_key, write_model_sig

        sig_key = model_sig_key(keys, weights, model_sig)  # refuse before anything is written
    kept: list[Path] = []
    bundle = sign_receipt(
        card,
        keys,
        out_dir,
        runs=run or [],
        footprints=footprint or [],
        weights=weights,
        packs=pack or [],
        publish_packs=not no_pack,
        issued_at=when,
        force=force,
        require_gate=gate,
        overlap=overlap,
        if_changed=if_changed,
        kept=kept,
    )
    if kept:
        out.print(f"unchanged {escape(str(bundle / 'receipt.json'))} (kept: it signs the same inputs)")
    else:
        out.print(f"signed {escape(str(bundle / 'receipt.json'))}")
    out.print(f"verify: receipts verify {escape(str(bundle))} --trust-root trust.json")
    if model_sig is not None and weights is not None:
        write_model_sig(weights, sig_key, model_sig)
        out.print(f"wrote {escape(str(model_sig))} (OpenSSF model signing, key {sig_key.public.keyid})")


def _issued_at(text: str | None) -> datetime | None:
    from receipts.trust import parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageError(f"--issued-at: {exc}", hint="e.g. 2026-11-23T10:00:00Z") from None


def _check_numbers(runs: list[Path], footprints: list[Path]) -> None:
    """Sign nothing ``receipts verify`` would refuse: the inputs' numbers re-derived first (exit 4)."""
    from receipts.evidence import input_problems

    problems = input_problems(runs, footprints)
    if problems:
        raise VerificationError(
            "not signed: numbers that do not follow from the evidence: " + "; ".join(problems),
            check="numbers",
            hint="results.json and each footprint must be what their examples and samples give: re-run or "
            "re-bench (or sign the unedited files); --no-rederive signs without this check",
        )
