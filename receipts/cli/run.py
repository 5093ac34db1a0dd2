"""``receipts run``: evaluate eval packs on teacher, base, student (and SFT baseline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from receipts.cli.app import app, err, out

__all__ = ["run"]


# The options, one type each, so the command's signature reads as the list of what it takes.
Packs = Annotated[list[Path], typer.Argument(help="Eval pack folders (or their pack.yaml).")]
Teacher = Annotated[
    str,
    typer.Option(
        help="Teacher model spec: hf:DIR[@bf16|@int8-dynamic], gguf:FILE, or a served model "
        "openai:URL#MODEL[?num_concurrent=8&max_retries=3&timeout=300&api=completions|chat]."
    ),
]
Student = Annotated[str, typer.Option(help="Distilled student model spec.")]
OutDir = Annotated[Path, typer.Option("--out", help="Run folder (one pack) or parent of one per pack.")]
Base = Annotated[str | None, typer.Option(help="Base student (before distillation) spec.")]
Sft = Annotated[str | None, typer.Option(help="SFT baseline spec, to ask whether distilling paid off.")]
StudentVariant = Annotated[
    list[str] | None,
    typer.Option(help="The student again as SPEC@VARIANT (e.g. hf:DIR@int8-dynamic): role student@VARIANT."),
]
Limit = Annotated[int | None, typer.Option(min=1, help="Only the first N items of each pack.")]
Seed = Annotated[int, typer.Option(help="Seed for the bootstrap (and nothing else: decoding is greedy).")]
Threads = Annotated[int, typer.Option(min=1, help="CPU threads for torch/BLAS (pinned, recorded).")]
BatchSize = Annotated[
    int,
    typer.Option(
        min=1,
        help="Items per model call (a throughput knob; float32 log-probs may move in the last bits).",
    ),
]
Variant = Annotated[
    list[str] | None, typer.Option(help="Only these pack variants (repeatable; default all).")
]
Resume = Annotated[bool, typer.Option(help="Continue an interrupted run in --out.")]
Force = Annotated[bool, typer.Option(help="Start over, discarding a run in --out.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Recompute instead of reading cached outputs.")]
Gate = Annotated[bool, typer.Option(help="Exit 5 if the pack's release gate fails.")]
Ray = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="Spread the model work over Ray: local (start one here), auto (this machine's cluster) "
        "or ray://HOST:10001. Same results, same --resume.",
    ),
]
RayWorkers = Annotated[int, typer.Option(min=1, help="With --ray: model replicas (actors) per role.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print results.json summaries as JSON.")]
Judge = Annotated[
    str | None,
    typer.Option(
        metavar="SPEC",
        help="Judge model for judged equivalence (hf:, gguf:, openai:, replay:, fake:); the pack's "
        "judge.model if omitted. Needs a pack with a judge rubric.",
    ),
]
# issue #20 part 3
Similarity = Annotated[
    list[str] | None,
    typer.Option(
        "--similarity",
        metavar="MEASURE",
        help="Also score each generated output's similarity to the teacher's and to the reference: "
        "chrf, rouge_l or cosine (repeatable; adds to the pack's own `similarity` list).",
    ),
]


@app.command()
def run(
    packs: Packs,
    teacher: Teacher,
    student: Student,
    out_dir: OutDir,
    base: Base = None,
    sft: Sft = None,
    student_variant: StudentVariant = None,
    limit: Limit = None,
    seed: Seed = 0,
    threads: Threads = 1,
    batch_size: BatchSize = 64,
    variant: Variant = None,
    resume: Resume = False,
    force: Force = False,
    no_cache: NoCache = False,
    gate: Gate = False,
    ray: Ray = None,
    ray_workers: RayWorkers = 1,
    judge: Judge = None,
    as_json: AsJson = False,
    similarity: Similarity = None,
) -> None:
    """Evaluate packs on teacher, base and student: what survived distillation, with CIs.

    Writes examples.jsonl (every item, all roles side by side) and results.json (schema/results).
    Interrupted runs keep every finished item: rerun with --resume.

    Example: receipts run packs/capitals-mc --teacher hf:t --base hf:b --student hf:s --out runs/capitals

    On a Ray cluster: receipts run packs/capitals-mc ... --ray auto --ray-workers 4
    """
    from runner.eval.command import RunRequest, json_summaries, run_command, summary_lines

    request = RunRequest(
        packs=tuple(packs),
        teacher=teacher,
        student=student,
        out=out_dir,
        base=base,
        sft=sft,
        student_variants=tuple(student_variant or ()),
        limit=limit,
        seed=seed,
        threads=threads,
        batch_size=batch_size,
        variants=tuple(variant) if variant else None,
        resume=resume,
        force=force,
        use_cache=not no_cache,
        gate=gate,
        ray=ray,
        ray_workers=ray_workers,
        judge=judge,
        similarity=tuple(similarity or ()),
    )
    results = run_command(request, console=err, show_progress=not as_json and err.is_terminal)
    if as_json:
        out.print_json(json.dumps(json_summaries(results)))
        return
    for line in summary_lines(results):
        out.print(line)
