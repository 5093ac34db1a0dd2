"""``receipts run``: evaluate eval packs on teacher, base, student (and SFT baseline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from receipts.cli.app import app, err, out
from receipts.errors import UsageError

__all__ = ["run"]


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
    from receipts.output import check_folder

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
