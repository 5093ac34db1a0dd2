"""The one CLI: ``receipts`` with keygen, trust, validate, run, bench, sign, verify, render, build, export.

Errors are caught in exactly one place (`main`) and mapped to exit codes:
0 ok · 1 error · 2 usage · 3 schema validation failed · 4 verification failed · 5 gate failed
· 130 interrupted. ``--verbose`` re-raises for a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape

from receipts import __version__, schemas
from receipts.documents import load_document, read_bytes
from receipts.dsse import parse_envelope
from receipts.errors import (
    InputError,
    ReceiptsError,
    SchemaError,
    UsageError,
    VerificationError,
    Violation,
)
from receipts.keys import (
    ALGORITHMS,
    PASSPHRASE_ENV,
    PrivateKey,
    generate,
    keypair_paths,
    load_private_key,
    load_public_key,
    write_keypair,
)
from receipts.output import check_file, check_folder, write_file
from receipts.trust import (
    TrustRoot,
    check_update,
    load_trust_root,
    new_root,
    parse_time,
    sign_root,
)
from receipts.trust import trust_root_from_bytes as _root_from_bytes

__all__ = ["app", "main"]

app = typer.Typer(
    name="receipts",
    help="Signed, verifiable receipts for distilled models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
trust_app = typer.Typer(help="Manage the trust root: the publisher keys verifiers pin.", no_args_is_help=True)
app.add_typer(trust_app, name="trust")
export_app = typer.Typer(
    help="Export a verified receipt for other tools: a Hugging Face model card, a CycloneDX ML-BOM.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")

# emoji=False: text from files and paths is printed as is (``items.jsonl:100:`` is not an emoji code)
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        out.print(f"receipts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Signed, verifiable receipts for distilled models."""
    _state["verbose"] = verbose


def _passphrase(path: Path, *, confirm: bool = False) -> bytes:
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env.encode("utf-8")
    if not sys.stdin.isatty():
        raise UsageError(
            f"no passphrase: {PASSPHRASE_ENV} is unset and there is no terminal to ask on",
            hint=f"export {PASSPHRASE_ENV}=... or run in a terminal",
        )
    text = typer.prompt(f"Passphrase for {path}", hide_input=True, confirmation_prompt=confirm)
    return str(text).encode("utf-8")


def _private_keys(paths: Sequence[Path]) -> list[PrivateKey]:
    keys = []
    for path in paths:
        data = read_bytes(path, what="private key")
        needs = b"ENCRYPTED PRIVATE KEY" in data
        keys.append(load_private_key(path, _passphrase(path) if needs else None))
    return keys


# --- keygen -------------------------------------------------------------------------------------


@app.command()
def keygen(
    out_stem: Annotated[Path, typer.Option("--out", help="DIR/NAME: writes NAME.key.pem and NAME.pub.pem.")],
    algorithm: Annotated[str, typer.Option(help=f"One of {', '.join(ALGORITHMS)}.")] = ALGORITHMS[0],
) -> None:
    """Generate a signing key pair (private key encrypted with a passphrase, mode 0600).

    Example: RECEIPTS_PASSPHRASE=... receipts keygen --out keys/release
    """
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown algorithm {algorithm!r}", hint=f"use one of {', '.join(ALGORITHMS)}")
    if out_stem.is_dir():
        raise UsageError(
            "is a folder; --out takes DIR/NAME (the key files are NAME.key.pem and NAME.pub.pem)",
            file=out_stem,
            hint=f"e.g. --out {out_stem}/release",
        )
    keypair_paths(out_stem)  # refuse a bad destination before asking for a passphrase
    key = generate(algorithm)
    private, public = write_keypair(key, out_stem, _passphrase(out_stem, confirm=True))
    out.print(f"wrote {escape(str(private))} (private, 0600) and {escape(str(public))} (public)")
    out.print(f"keyid {key.public.keyid}")
    out.print(f"next: receipts trust init --publisher NAME --key {escape(str(public))} --out trust.json")


# --- trust --------------------------------------------------------------------------------------


def _write_new(path: Path, data: bytes, *, force: bool) -> None:
    write_file(path, data, what="the trust root", force=force)


def _show_root(root: TrustRoot, path: Path) -> None:
    title = f"{root.publisher} trust root v{root.version}, threshold {root.threshold}"
    out.print(f"{escape(str(path))}: {escape(title)}")
    for keyid, key in root.keys.items():
        out.print(f"  {keyid} {key.public.algorithm} {key.status}")
    out.print(f"  pin: --trust-root-sha256 {root.sha256}")


@trust_app.command("init")
def trust_init(
    publisher: Annotated[str, typer.Option(help="Who signs with these keys.")],
    key: Annotated[list[Path], typer.Option(help="Public key file (NAME.pub.pem); repeatable.")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the trust root.")],
    threshold: Annotated[int, typer.Option(min=1, help="Distinct keys required per receipt.")] = 1,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Create version 1 of a trust root (pin it out of band: it is not signed).

    Example: receipts trust init --publisher "Acme ML" --key keys/release.pub.pem --out trust.json
    """
    check_file(out_path, what="the trust root", force=force)
    publics = [load_public_key(p) for p in key]
    distinct = len({p.keyid for p in publics})
    if threshold > distinct:
        raise UsageError(
            f"--threshold {threshold} is more than the {distinct} distinct key(s) given",
            hint="add --key for each signer, or lower --threshold",
        )
    data = new_root(publisher, publics, threshold=threshold)
    _root_from_bytes(data, source=out_path)  # refuse to write something verify would reject
    _write_new(out_path, data, force=force)
    _show_root(_root_from_bytes(data, source=out_path), out_path)


def _update(
    trust_root: Path,
    sign_with: Sequence[Path],
    out_path: Path | None,
    edit: Callable[[dict[str, Any]], None],
) -> None:
    old = load_trust_root(trust_root)
    target = out_path or trust_root
    check_file(target, what="the trust root")  # before a passphrase is asked or anything signed
    data = sign_root(old, None, _private_keys(sign_with), edit=edit)
    write_file(target, data, what="the trust root")
    _show_root(_root_from_bytes(data, source=target), target)


def _find_key(signed: dict[str, Any], keyid: str) -> dict[str, Any]:
    for entry in signed["keys"]:
        if entry["keyid"] == keyid:
            return cast(dict[str, Any], entry)
    raise UsageError(f"no key {keyid} in the trust root", hint="see `receipts trust show`")


_SignWith = Annotated[
    list[Path], typer.Option("--sign-with", help="Private key of the current root; repeatable.")
]
_RootOpt = Annotated[Path, typer.Option("--trust-root", help="The current trust root file.")]
_OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write the new version here (default: in place).")
]


@trust_app.command("add")
def trust_add(
    trust_root: _RootOpt,
    key: Annotated[Path, typer.Option(help="Public key to add.")],
    sign_with: _SignWith,
    out_path: _OutOpt = None,
) -> None:
    """Add a key: writes version n+1 signed by keys of version n.

    Example: receipts trust add --trust-root trust.json --key new.pub.pem --sign-with release.key.pem
    """
    public = load_public_key(key)

    def edit(signed: dict[str, Any]) -> None:
        if any(e["keyid"] == public.keyid for e in signed["keys"]):
            raise UsageError(f"key {public.keyid} is already in the trust root")
        signed["keys"].append(
            {
                "keyid": public.keyid,
                "algorithm": public.algorithm,
                "publicKey": public.pem(),
                "status": "active",
                "notBefore": signed["issuedAt"],
            }
        )

    _update(trust_root, sign_with, out_path, edit)


@trust_app.command("retire")
def trust_retire(
    trust_root: _RootOpt,
    keyid: Annotated[str, typer.Option(help="keyid to retire.")],
    sign_with: _SignWith,
    out_path: _OutOpt = None,
) -> None:
    """Retire a key (old receipts verify only with --allow-retired). Writes version n+1.

    Example: receipts trust retire --trust-root trust.json --keyid sha256:... --sign-with keys/new.key.pem
    """

    def edit(signed: dict[str, Any]) -> None:
        _find_key(signed, keyid)["status"] = "retired"

    _update(trust_root, sign_with, out_path, edit)


@trust_app.command("revoke")
def trust_revoke(
    trust_root: _RootOpt,
    keyid: Annotated[str, typer.Option(help="keyid to revoke.")],
    sign_with: _SignWith,
    out_path: _OutOpt = None,
) -> None:
    """Revoke a key (nothing it signed verifies any more). Writes version n+1.

    Example: receipts trust revoke --trust-root trust.json --keyid sha256:... --sign-with keys/new.key.pem
    """

    def edit(signed: dict[str, Any]) -> None:
        entry = _find_key(signed, keyid)
        entry["status"] = "revoked"
        entry["revokedAt"] = signed["issuedAt"]

    _update(trust_root, sign_with, out_path, edit)


@trust_app.command("update")
def trust_update(
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root (rewritten).")],
    new: Annotated[list[Path], typer.Argument(help="Newer versions, oldest first.")],
) -> None:
    """Move your pinned trust root forward; each version must be signed by the one before.

    Example: receipts trust update --trust-root pinned.json trust.v2.json trust.v3.json
    """
    current = load_trust_root(trust_root)
    check_file(trust_root, what="the trust root")
    data = b""
    for path in new:
        data = read_bytes(path, what="trust root")
        candidate = _root_from_bytes(data, source=path)
        check_update(current, candidate)
        current = candidate
    write_file(trust_root, data, what="the trust root")
    _show_root(current, trust_root)


@trust_app.command("show")
def trust_show(path: Annotated[Path, typer.Argument(help="Trust root file.")]) -> None:
    """Print a trust root's keys and the sha256 to pin it with.

    Example: receipts trust show trust.json
    """
    _show_root(load_trust_root(path), path)


# --- validate -----------------------------------------------------------------------------------


def _validate_pack(path: Path) -> str:
    from runner.packs import load_pack  # lazily: the kernel reaches the runner only through the CLI

    pack = load_pack(path)
    return f"pack {pack.id}@{pack.version}: {len(pack.items)} items, digest sha256:{pack.digest}"


def _validate_one(path: Path) -> str:
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
    return kind


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


# --- sign ---------------------------------------------------------------------------------------


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
    issued_at: Annotated[str | None, typer.Option(help="Override the signing time (RFC 3339).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing receipt folder.")] = False,
    model_sig: Annotated[
        Path | None,
        typer.Option(help="Also write an OpenSSF model_signing signature here (e.g. WEIGHTS/model.sig)."),
    ] = None,
    gate: Annotated[
        bool,
        typer.Option(
            help="Sign only if the release gate passes (exit 5 otherwise; a rule not evaluated does not "
            "pass unless the card lists it in gate.optional)."
        ),
    ] = False,
) -> None:
    """Bind a card to its weights, runs and footprints, and sign it into OUT/<name>@<version>/.

    Subject files are copied into the receipt folder; receipt.json names them by relative path.

    Example: receipts sign --card card.yaml --weights models/student --key release.key.pem --out receipts/

    With --model-sig, the weights also get a model.sig that `model_signing verify key` accepts.
    """
    from receipts.sign import sign_receipt

    if out_dir.suffix.lower() == ".json":
        raise UsageError(
            f"--out {out_dir} looks like a file, but a receipt is a folder",
            hint=f"pass a parent folder: --out {out_dir.parent}/ writes "
            f"{out_dir.parent}/<name>@<version>/receipt.json with its subject files beside it",
        )
    from receipts.output import check_folder

    check_folder(out_dir, what="the receipt folder")
    when = None
    if issued_at is not None:
        try:
            when = parse_time(issued_at)
        except ValueError as exc:
            raise UsageError(f"--issued-at: {exc}", hint="e.g. 2026-11-23T10:00:00Z") from None
    keys = _private_keys(key)
    if model_sig is not None:
        from receipts.modelsig import model_sig_key, write_model_sig

        sig_key = model_sig_key(keys, weights, model_sig)  # refuse before anything is written
    bundle = sign_receipt(
        card,
        keys,
        out_dir,
        runs=run or [],
        footprints=footprint or [],
        weights=weights,
        issued_at=when,
        force=force,
        require_gate=gate,
    )
    out.print(f"signed {escape(str(bundle / 'receipt.json'))}")
    out.print(f"verify: receipts verify {escape(str(bundle))} --trust-root trust.json")
    if model_sig is not None and weights is not None:
        write_model_sig(weights, sig_key, model_sig)
        out.print(f"wrote {escape(str(model_sig))} (OpenSSF model signing, key {sig_key.public.keyid})")


# --- run ----------------------------------------------------------------------------------------


@app.command()
def run(
    packs: Annotated[list[Path], typer.Argument(help="Eval pack folders (or their pack.yaml).")],
    teacher: Annotated[
        str,
        typer.Option(
            help="Teacher model spec: hf:DIR[@bf16|@int8-dynamic], gguf:FILE, or a served model "
            "openai:URL#MODEL[?num_concurrent=8&max_retries=3&timeout=300&api=completions|chat]."
        ),
    ],
    student: Annotated[str, typer.Option(help="Distilled student model spec.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder (one pack) or parent of one per pack.")],
    base: Annotated[str | None, typer.Option(help="Base student (before distillation) spec.")] = None,
    sft: Annotated[
        str | None, typer.Option(help="SFT baseline spec, to ask whether distilling paid off.")
    ] = None,
    student_variant: Annotated[
        list[str] | None,
        typer.Option(
            help="The student again as SPEC@VARIANT (e.g. hf:DIR@int8-dynamic): role student@VARIANT."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N items of each pack.")] = None,
    seed: Annotated[
        int, typer.Option(help="Seed for the bootstrap (and nothing else: decoding is greedy).")
    ] = 0,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for torch/BLAS (pinned, recorded).")] = 1,
    batch_size: Annotated[
        int,
        typer.Option(min=1, help="Items per model call (a throughput knob only: scores never depend on it)."),
    ] = 64,
    variant: Annotated[
        list[str] | None, typer.Option(help="Only these pack variants (repeatable; default all).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")] = False,
    force: Annotated[bool, typer.Option(help="Start over, discarding a run in --out.")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Recompute instead of reading cached outputs.")
    ] = False,
    gate: Annotated[bool, typer.Option(help="Exit 5 if the pack's release gate fails.")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Spread the model work over Ray: local (start one here), auto (this machine's cluster) "
            "or ray://HOST:10001. Same results, same --resume.",
        ),
    ] = None,
    ray_workers: Annotated[
        int, typer.Option(min=1, help="With --ray: model replicas (actors) per role.")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print results.json summaries as JSON.")] = False,
) -> None:
    """Evaluate packs on teacher, base and student: what survived distillation, with CIs.

    Writes examples.jsonl (every item, all roles side by side) and results.json (schema/results).
    Interrupted runs keep every finished item: rerun with --resume.

    Example: receipts run packs/capitals-mc --teacher hf:t --base hf:b --student hf:s --out runs/capitals

    On a Ray cluster: receipts run packs/capitals-mc ... --ray auto --ray-workers 4
    """
    from runner.cli_run import run_packs
    from runner.run import RunConfig

    if resume and force:
        raise UsageError("--resume and --force contradict each other", hint="choose one")
    check_folder(out_dir, what="the run")
    roles = {"teacher": teacher, "student": student}
    if base:
        roles["base"] = base
    if sft:
        roles["sft"] = sft
    for spec in student_variant or []:
        from runner.backends import split_spec

        _, _, variant_name = split_spec(spec)
        if not variant_name:
            raise UsageError(
                f"--student-variant {spec}: no @VARIANT", hint="e.g. hf:models/student@int8-dynamic"
            )
        roles[f"student@{variant_name}"] = spec
    config = RunConfig(
        roles=roles,
        limit=limit,
        seed=seed,
        threads=threads,
        batch_size=batch_size,
        variants=tuple(variant) if variant else None,
        use_cache=not no_cache,
    )
    results = run_packs(
        packs,
        roles,
        out_dir,
        config=config,
        resume=resume,
        force=force,
        gate=gate,
        console=err,
        show_progress=not as_json and err.is_terminal,
        ray=ray,
        ray_workers=ray_workers,
    )
    if as_json:
        out.print_json(
            json.dumps([{"summary": r["summary"], "run": r["_run"], "gate": r["gate"]} for r in results])
        )
        return
    for r in results:
        summary = r["summary"]
        scores = ", ".join(f"{role} {value:.3f}" for role, value in summary["scores"].items())
        retention = summary["retention"]
        out.print(
            f"[bold]{escape(r['pack']['id'])}[/bold] {escape(summary['primary_metric'])}: {escape(scores)}"
        )
        out.print(
            f"  retention {'n/a' if retention is None else f'{retention:.3f}'}"
            f" · agreement {summary['agreement_rate']}"
            f" · gate {summary['gate']} · {r['_run']['seconds']} s"
            f" · cached {sum(r['_run']['cache_hits'].values())}"
            f", computed {sum(r['_run']['computed'].values())}"
        )
        out.print(f"  wrote {escape(r['_run']['dir'])}/results.json and examples.jsonl")


# --- bench --------------------------------------------------------------------------------------


def _csv_ints(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a comma-separated list of integers", hint=f"e.g. {option} 1,4"
        ) from None
    return values


@app.command()
def bench(
    spec: Annotated[str, typer.Argument(help="The model to measure: hf:DIR or gguf:FILE.")],
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write footprint.json (schema/footprint).")
    ],
    quant: Annotated[
        str, typer.Option(help="Quantizations to bench, comma-separated: fp32, bf16, int8.")
    ] = "fp32",
    prompt_tokens: Annotated[int, typer.Option(min=1, help="Prompt length N in tokens.")] = 128,
    new_tokens: Annotated[int, typer.Option(help="New tokens G per call (greedy, exactly G).")] = 32,
    concurrency: Annotated[
        str, typer.Option(help="Requests served together, comma-separated, e.g. 1,4.")
    ] = "1",
    ram_budget: Annotated[
        str | None,
        typer.Option(help="RAM budget for max usable context, e.g. 16GB or 16GiB (default: all RAM)."),
    ] = None,
    ttft_budget: Annotated[
        float, typer.Option(help="Time-to-first-token budget (s) for max usable context.")
    ] = 10.0,
    price_per_hour: Annotated[
        float | None, typer.Option(help="Machine price per hour, for cost_per_1k_calls (recorded as given).")
    ] = None,
    currency: Annotated[str, typer.Option(help="Currency of --price-per-hour.")] = "USD",
    watts: Annotated[
        float | None,
        typer.Option(help="Power draw (W) for an *estimated* energy where no counter is readable."),
    ] = None,
    threads: Annotated[
        int, typer.Option(min=1, help="CPU threads (pinned before torch loads, read back).")
    ] = 1,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    warmups: Annotated[
        int, typer.Option(min=0, help="Full-length warm-up calls per point (≥ 3 for VALID).")
    ] = 3,
    min_duration: Annotated[
        float, typer.Option(min=0.0, help="Seconds of timed calls per point (≥ 10 for VALID).")
    ] = 10.0,
    min_calls: Annotated[int, typer.Option(min=1, help="Timed calls per point (≥ 30 for VALID).")] = 30,
    context_search: Annotated[
        bool, typer.Option("--context-search/--no-context-search", help="Search max usable context.")
    ] = True,
    max_context: Annotated[
        int | None, typer.Option(min=1, help="Stop the context search at this many tokens.")
    ] = None,
    page_cache: Annotated[
        str, typer.Option(help="warm (read weights first) or cold (evict them) before load.")
    ] = "warm",
    timeout: Annotated[
        float, typer.Option(help="Seconds before one measurement process is stopped.")
    ] = 1800.0,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted bench of the same --out.")] = False,
    force: Annotated[bool, typer.Option(help="Discard an interrupted bench of the same --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the footprint summary as JSON.")] = False,
) -> None:
    """Measure what a model costs to run here: memory, latency, throughput, context, quantizations.

    Every point runs in a fresh process with pinned threads; raw per-call samples, percentiles (only
    with enough samples), a bootstrap CI of the median, a roofline from measured memory bandwidth and a
    VALID/INVALID verdict with reasons go into footprint.json (schema/footprint).

    Example: receipts bench hf:models/student --quant fp32,int8 --ram-budget 16GB --out runs/s/footprint.json
    """
    from runner.bench import BenchConfig, parse_quants, parse_size
    from runner.bench import bench as run_bench

    if resume and force:
        raise UsageError("--resume and --force contradict each other", hint="choose one")
    config = BenchConfig(
        spec=spec,
        quants=parse_quants(quant),
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        concurrency=_csv_ints(concurrency, "--concurrency"),
        ram_budget_bytes=parse_size(ram_budget) if ram_budget else None,
        ttft_budget_s=ttft_budget,
        price_per_hour=price_per_hour,
        currency=currency,
        watts=watts,
        threads=threads,
        device=device,
        warmups=warmups,
        min_duration_s=min_duration,
        min_calls=min_calls,
        context_search=context_search,
        max_context=max_context,
        page_cache=page_cache,
        point_timeout_s=timeout,
    )
    footprint = run_bench(
        config,
        out_file,
        resume=resume,
        force=force,
        progress=(lambda _: None) if as_json else (lambda m: err.print(escape(m))),
    )
    summary = footprint["summary"]
    if as_json:
        out.print_json(json.dumps(summary))
        return
    verdict = footprint["verdict"]
    for row in summary["by_quant"].values():
        if row["status"] != "ok":
            out.print(
                f"[bold]{escape(row['quant'])}[/bold] c{row['concurrency']}:"
                f" [red]{escape(row['status'])}[/red]"
            )
            continue
        out.print(
            f"[bold]{escape(row['quant'])}[/bold] c{row['concurrency']}:"
            f" peak RSS {row['peak_rss_bytes'] / 1e9:.2f} GB"
            f" · TTFT p50 {_fmt(row['ttft_p50_s'], '.3f')} s · TPOT p50 {_fmt(row['tpot_p50_s'], '.4f')} s"
            f" · decode {_fmt(row['decode_tps_p50'], '.1f')} tok/s"
            f" · {_fmt(row['throughput_rps'], '.2f')} req/s"
            f" · roofline {_fmt(row['roofline_fraction'], '.0%')}"
        )
    out.print(
        f"max usable context: {summary['max_usable_context'] or 'n/a'}"
        f" · cost/1k calls: {_fmt(summary['cost_per_1k_calls'], '.4f')} {escape(summary['currency'] or '')}"
        f" · machine-seconds/1k calls {_fmt(summary['machine_seconds_per_1k_calls'], '.1f')}"
    )
    colour = "green" if verdict["status"] == "VALID" else "yellow"
    out.print(f"verdict: [{colour}]{verdict['status']}[/{colour}]")
    for reason in verdict["reasons"]:
        if reason["severity"] == "invalid":
            out.print(f"  {escape(reason['code'])}: {escape(reason['detail'])}")
    out.print(f"wrote {escape(str(out_file))}")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


# --- render / build -----------------------------------------------------------------------------


@app.command()
def render(
    receipts_dir: Annotated[Path, typer.Argument(help="A folder of receipt bundles (<name>@<version>/).")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Docs folder to write the pages into.")],
    trust_root_sha256: Annotated[
        str | None,
        typer.Option("--trust-root-sha256", help="Refuse the trust root unless its sha256 matches."),
    ] = None,
) -> None:
    """Verify receipts and render their catalog pages as Markdown (for mkdocs, zensical or any engine).

    Writes models/<name>/<version>/index.md with the receipt bundle and charts beside it, the catalog
    (models/index.md, catalog/<k>/ past 1,000 models), tags/, buyer/, compare/ and catalog/index.json.
    A receipt that does not verify stops the render (exit 4).

    Example: receipts render receipts/ --trust-root trust.json --out docs/
    """
    from generator.render import collect, write
    from generator.render import render as render_pages
    from receipts.output import check_folder

    check_folder(out_dir, what="the rendered pages")
    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    root_bytes = trust_root.read_bytes()
    result = render_pages(collect(receipts_dir, root, root_bytes=root_bytes), root, root_bytes)
    write(result, out_dir)
    out.print(
        f"rendered {len(result.entries)} receipt(s) into {escape(str(out_dir))}: {len(result.pages)} pages"
    )


@app.command()
def build(
    receipts_dir: Annotated[Path, typer.Argument(help="A folder of receipt bundles (<name>@<version>/).")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the built static site.")],
    config_file: Annotated[
        Path | None,
        typer.Option("--config-file", help="mkdocs.yml to build with (default: the repository's)."),
    ] = None,
    trust_root_sha256: Annotated[
        str | None,
        typer.Option("--trust-root-sha256", help="Refuse the trust root unless its sha256 matches."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace --out even if it is a non-empty folder no receipts build made.")
    ] = False,
) -> None:
    """Verify every receipt, build the static catalog with mkdocs-material (strict), then swap it into --out.

    Nothing in --out changes unless the whole build succeeds; a non-empty --out that is not a previous
    receipts build is refused without --force.

    Example: receipts build receipts/ --trust-root trust.json --out site-build/
    """
    from generator.site import build_site

    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    count = build_site(receipts_dir, trust_root, out_dir, root=root, config_file=config_file, force=force)
    out.print(f"built {count} receipt page(s) into {escape(str(out_dir))}")


# --- verify -------------------------------------------------------------------------------------

_MARK = {"pass": "[green]✓[/green]", "fail": "[red]✗[/red]", "not checked": "[yellow]-[/yellow]"}


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
            help="Also exit 5 unless every receipt's signed gate passes (a rule not evaluated fails)."
        ),
    ] = False,
) -> None:
    """Verify receipts against a pinned trust root; exit 4 if any check fails (5: --gate not passed).

    Example: receipts verify receipts/ --trust-root trust.json --weights models/student
    """
    try:
        root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    except VerificationError as exc:
        if not as_json:
            raise
        failure = {"name": exc.check, "status": "fail", "detail": exc.summary(), "hint": exc.hint}
        out.print_json(json.dumps({"ok": False, "trust_root": None, "receipts": [], "error": failure}))
        raise typer.Exit(VerificationError.exit_code) from None
    if model_sig is not None and weights is None:
        raise UsageError("--model-sig needs --weights", hint="pass --weights DIR --model-sig DIR/model.sig")
    options: dict[str, Any] = {
        "weights": weights,
        "pack": pack,
        "allow_retired": allow_retired,
        "expect": expect,
        "model_sig": model_sig,
    }
    if target_arg.startswith(("https://", "http://")):
        import tempfile

        from generator.remote import Limits

        mib = 1024 * 1024
        limits = Limits(file_bytes=int(max_file_mb * mib), catalog_bytes=int(max_catalog_mb * mib))
        # A fresh private (0700) folder, removed afterwards; nothing is written anywhere else.
        with tempfile.TemporaryDirectory(prefix="receipts-catalog-") as download:
            reports = _verify_catalog_url(target_arg, Path(download), root, limits, options)
    else:
        reports = _verify_local(Path(target_arg), root, options)
    failed = [r for r in reports if not r.ok]
    _print_reports(reports, root, as_json=as_json)
    if failed:
        raise typer.Exit(VerificationError.exit_code)
    if gate:
        _require_gates(reports)


def _print_reports(reports: Sequence[Any], root: TrustRoot, *, as_json: bool) -> None:
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


def _require_gates(reports: Sequence[Any]) -> None:
    """``verify --gate``: every verified receipt's signed gate must let its release through."""
    from receipts.errors import GateError
    from receipts.gate import release_decision

    blocked = []
    for report in reports:
        if not report.statement:  # a page-only report of a built site: its receipt is listed on its own
            continue
        predicate = report.statement["predicate"]
        optional = predicate["card"].get("gate", {}).get("optional", [])
        passed, why = release_decision(predicate["gate"], optional)
        if not passed:
            blocked.append(f"{report.model}: {why}")
    if blocked:
        raise GateError("the release gate did not pass: " + "; ".join(blocked), hint="see the receipt's gate")


def _verify_all(receipts: Sequence[Path], root: TrustRoot, options: dict[str, Any]) -> list[Any]:
    from receipts.verify import verify_receipt

    if any(options[k] for k in ("weights", "pack", "expect")) and len(receipts) > 1:
        raise UsageError("--weights/--pack/--expect apply to one receipt", hint="point at one receipt folder")
    reports = []
    for receipt in receipts:
        try:
            reports.append(verify_receipt(receipt, root, **options))
        except VerificationError as exc:
            reports.append(exc.report)
    return reports


def _verify_local(target: Path, root: TrustRoot, options: dict[str, Any]) -> list[Any]:
    """A receipt, a folder of receipts, or a built site (whose pages are checked too)."""
    from receipts.verify import find_receipts

    reports = _verify_all(find_receipts(target), root, options)
    if target.is_dir():  # a built catalog: each page names a receipt the site publishes, shows its figures
        from generator.sitecheck import check_built_site

        check_built_site(target, reports)
    return reports


def _verify_catalog_url(
    url: str, into: Path, root: TrustRoot, limits: Any, options: dict[str, Any]
) -> list[Any]:
    """A published catalog: download into ``into``, verify, and check each page against its receipt."""
    from generator.remote import fetch_catalog
    from generator.sitecheck import check_published_pages
    from receipts.verify import find_receipts

    pages = fetch_catalog(url, into, limits)
    reports = _verify_all(find_receipts(into), root, options)
    check_published_pages(pages, reports)
    return reports


# --- export -------------------------------------------------------------------------------------


def _write_export(text: str, dest: Path | None, what: str) -> None:
    if dest is None:
        sys.stdout.write(text)
        return
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
) -> None:
    """Write a Hugging Face model card (README.md) from a receipt that verifies.

    The YAML front matter carries license, base_model, base_model_relation, datasets and a
    model-index with every evaluated metric; the body carries the scorecard, states the numbers are
    self-reported, and says how to verify them.

    Example: receipts export hf receipts/my-model@1.0.0 --trust-root trust.json --out README.md
    """
    from receipts.export import load_verified
    from receipts.export.hf import model_card

    if dest is not None:
        check_file(dest, what="the model card")
    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    _write_export(model_card(load_verified(receipt, root), receipt_url=receipt_url), dest, "model card")


@export_app.command("cyclonedx")
def export_cyclonedx(
    receipt: Annotated[Path, typer.Argument(help="A receipt.json or its folder.")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    trust_root_sha256: Annotated[
        str | None, typer.Option(help="Refuse the trust root unless its sha256 matches.")
    ] = None,
    dest: Annotated[Path | None, typer.Option("--out", help="Write here (default: stdout).")] = None,
) -> None:
    """Write a CycloneDX 1.6 ML-BOM (JSON) from a receipt that verifies.

    One machine-learning-model component with the weights' hashes, licences, the teacher as a
    pedigree ancestor, and a modelCard with every metric per slice with its confidence interval.

    Example: receipts export cyclonedx receipts/my-model@1.0.0 --trust-root trust.json --out bom.json
    """
    from receipts.export import load_verified
    from receipts.export.cyclonedx import ml_bom

    if dest is not None:
        check_file(dest, what="the CycloneDX ML-BOM")
    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    bom = ml_bom(load_verified(receipt, root))
    _write_export(json.dumps(bom, indent=2, ensure_ascii=False) + "\n", dest, "CycloneDX ML-BOM")


def _interrupted(argv: Sequence[str] | None) -> int:
    words = list(argv) if argv is not None else sys.argv[1:]
    if {"run", "bench"} & set(words[:3]):
        err.print("interrupted: finished work is kept; rerun the same command with --resume to continue")
    else:
        err.print("interrupted")
    return 130


_OS_HINT = "check that path and its permissions; --verbose shows where it failed"


def _os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; the one place errors become exit codes."""
    try:
        result = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except ReceiptsError as exc:
        if _state["verbose"]:
            raise
        err.print(f"[red]error[/red]: {escape(exc.diagnostics())}")
        return exc.exit_code
    except OSError as exc:  # the net under every specific handler: still one line, never a traceback
        if _state["verbose"]:
            raise
        err.print(f"[red]error[/red]: {escape(_os_error(exc))}")
        err.print(f"  fix: {_OS_HINT}")
        return 1
    except (KeyboardInterrupt, typer.Abort):
        return _interrupted(argv)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors from the parser: wrong/missing options
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        return int(getattr(exc, "exit_code", 2))
    if result == 130:  # typer turns Ctrl-C into a silent Exit(130) and returns its code
        return _interrupted(argv)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
