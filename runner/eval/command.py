"""``receipts run`` as one library call: the parsed options in, every pack run, results out.

The CLI module (`receipts.cli.run`) only parses options into a `RunRequest`, calls `run_command` and
prints `summary_lines` (or `json_summaries`); it imports this module lazily, so ``receipts verify``
never loads the runner.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from receipts.errors import GateError, UsageError
from receipts.formats._shared import Gate
from receipts.gate import release_decision
from receipts.output import check_folder
from runner.backends.registry import ModelSpec, split_spec
from runner.eval.config import RunConfig
from runner.eval.judge import judge_run, judge_spec
from runner.eval.loader import load_pack
from runner.eval.packs import Pack
from runner.eval.report import write_reports
from runner.eval.run import Engine, execute

__all__ = ["RunRequest", "json_summaries", "pin_threads", "run_command", "summary_lines"]


@dataclass(frozen=True)
class RunRequest:
    """What ``receipts run`` is asked to do, as its options say it (see ``receipts run --help``)."""

    packs: tuple[Path, ...]
    teacher: str
    student: str
    out: Path
    base: str | None = None
    sft: str | None = None
    student_variants: tuple[str, ...] = ()
    limit: int | None = None
    seed: int = 0
    threads: int = 1
    batch_size: int = 64
    variants: tuple[str, ...] | None = None
    resume: bool = False
    force: bool = False
    use_cache: bool = True
    gate: bool = False
    ray: str | None = None
    ray_workers: int = 1
    judge: str | None = None  # issue #20 part 2: the judge model spec (else the pack's judge.model)
    similarity: tuple[str, ...] = ()  # issue #20 part 3: --similarity MEASURE

    def roles(self) -> dict[str, str]:
        """Role name -> model spec; each ``--student-variant`` SPEC@VARIANT is role ``student@VARIANT``.

        A ``llamacpp:FILE.gguf`` variant is named by its quantization (`runner.llamacpp.quantize.variant_of`):
        ``student@Q4_K_M``.

        Raises:
            UsageError: a student variant spec without ``@VARIANT``, a malformed spec, two variants of
                one name.
            InputError: a ``llamacpp:`` file that is missing, not a GGUF, or contradicts its manifest.
        """
        roles = {"teacher": self.teacher, "student": self.student}
        if self.base:
            roles["base"] = self.base
        if self.sft:
            roles["sft"] = self.sft
        for spec in self.student_variants:
            role = f"student@{_variant(spec)}"
            if role in roles:
                raise UsageError(
                    f"--student-variant {spec} and --student-variant {roles[role]} are both role {role}",
                    hint="pass each variant once; two files of one quantization need runs of their own",
                )
            roles[role] = spec
        return roles


def _variant(spec: str) -> str:
    """The variant a ``--student-variant`` spec names: its ``@VARIANT``, or a ``llamacpp:`` file's quant.

    Raises:
        UsageError: no ``@VARIANT`` where one is needed, or a malformed spec.
        InputError: a ``llamacpp:`` file that is missing, not a GGUF, or contradicts its manifest.
    """
    kind, _, location = spec.partition(":")
    if kind == "llamacpp" and location:
        from runner.backends.chat import split_option
        from runner.llamacpp.quantize import variant_of

        plain, _ = split_option(ModelSpec(spec, kind, location))
        return variant_of(Path(plain.location), spec=spec)
    _, _, variant_name = split_spec(spec)
    variant_name = variant_name.partition("?")[0] if variant_name else None  # ?chat_template=1
    if not variant_name:
        raise UsageError(f"--student-variant {spec}: no @VARIANT", hint="e.g. hf:models/student@int8-dynamic")
    return variant_name


def run_command(request: RunRequest, *, console: Console, show_progress: bool) -> list[dict[str, Any]]:
    """Run every pack of ``request``; one pack writes into ``out``, several into ``out/<pack id>/``.

    Returns each pack's results.json document, with a ``_run`` entry (folder, seconds, cache hits).

    Raises:
        UsageError: contradicting or out-of-range options, a bad ``--out``, the same pack twice.
        InputError: a pack or a model cannot be loaded, or too many items failed.
        GateError: ``gate`` is set and a pack's gate did not pass.
    """
    if request.resume and request.force:
        raise UsageError("--resume and --force contradict each other", hint="choose one")
    check_folder(request.out, what="the run")
    config = RunConfig(
        roles=request.roles(),
        limit=request.limit,
        seed=request.seed,
        threads=request.threads,
        batch_size=request.batch_size,
        variants=request.variants,
        use_cache=request.use_cache,
        similarity=request.similarity,
    )
    pin_threads(config.threads)
    loaded = [load_pack(p) for p in request.packs]
    ids = [p.id for p in loaded]
    if len(set(ids)) != len(ids):
        raise UsageError(f"the same pack is given twice: {ids}")
    for pack in loaded:  # a --judge the pack cannot use is refused before any model runs
        judge_spec(pack, request.judge)
    if request.ray is None:
        results = _run_all(loaded, config, request, console, show_progress, None)
    else:
        from runner.eval.ray_engine import RayEngine

        engine = RayEngine(request.ray, workers=request.ray_workers, threads=config.threads)
        try:
            results = _run_all(loaded, config, request, console, show_progress, engine)
        finally:
            engine.shutdown()  # one Ray session for every pack of the command
    if request.gate:
        _check_gates(results)
    return results


def pin_threads(threads: int) -> None:
    """Pin BLAS/OpenMP threads before torch is imported; the hf backend pins torch's from the same value.

    Raises:
        UsageError: fewer than one thread.
    """
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)


class _Bar:
    """One progress row per role: items done of total, elapsed, ETA."""

    def __init__(self, bar: Progress, pack_id: str):
        self.bar, self.pack_id = bar, pack_id
        self.tasks: dict[str, TaskID] = {}

    def update(self, role: str, done: int, total: int) -> None:
        if role not in self.tasks:
            self.tasks[role] = self.bar.add_task(f"{self.pack_id} {role}", total=total)
        self.bar.update(self.tasks[role], completed=done)


def _run_all(
    loaded: Sequence[Pack],
    config: RunConfig,
    request: RunRequest,
    console: Console,
    show_progress: bool,
    engine: Engine | None,
) -> list[dict[str, Any]]:
    all_results = []
    for pack in loaded:
        run_dir = request.out if len(loaded) == 1 else request.out / pack.id
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not show_progress,
            transient=False,
        ) as bar:
            outcome = execute(
                pack,
                config,
                run_dir,
                resume=request.resume,
                force=request.force,
                progress=_Bar(bar, pack.id).update,
                engine=engine,
            )
        spec = judge_spec(pack, request.judge)
        judged = (
            judge_run(pack, spec, outcome.instances, outcome.rows, use_cache=config.use_cache)
            if spec is not None
            else None
        )
        results = write_reports(pack, config, outcome, judged)
        results["_run"] = {
            "dir": str(run_dir),
            "seconds": round(outcome.seconds, 3),
            "cache_hits": outcome.cache_hits,
            "computed": outcome.computed,
        }
        all_results.append(results)
    return all_results


def _check_gates(all_results: Sequence[dict[str, Any]]) -> None:
    blocked = []
    for results in all_results:
        passed, why = release_decision(Gate.model_validate(results["gate"]))
        if not passed:
            blocked.append(f"{results['pack']['id']}: {why}")
    if blocked:
        raise GateError(
            "the release gate did not pass (only pass passes: a rule inconclusive, underpowered or not "
            "evaluated does not): " + "; ".join(blocked),
            hint="see gate.rules in results.json; a card can mark rules optional when you sign",
        )


def json_summaries(all_results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``receipts run --json`` prints: per pack, its summary, run facts and gate."""
    return [{"summary": r["summary"], "run": r["_run"], "gate": r["gate"]} for r in all_results]


def summary_lines(all_results: Sequence[dict[str, Any]]) -> list[str]:
    """What ``receipts run`` prints per pack, as rich markup (file text escaped)."""
    lines = []
    for r in all_results:
        summary = r["summary"]
        scores = ", ".join(f"{role} {value:.3f}" for role, value in summary["scores"].items())
        retention = summary["retention"]
        lines.append(
            f"[bold]{escape(r['pack']['id'])}[/bold] {escape(summary['primary_metric'])}: {escape(scores)}"
        )
        lines.append(
            f"  retention {'n/a' if retention is None else f'{retention:.3f}'}"
            f" · agreement {summary['agreement_rate']}"
            f" · gate {summary['gate']} · {r['_run']['seconds']} s"
            f" · cached {sum(r['_run']['cache_hits'].values())}"
            f", computed {sum(r['_run']['computed'].values())}"
        )
        lines.append(f"  wrote {escape(r['_run']['dir'])}/results.json and examples.jsonl")
    return lines
