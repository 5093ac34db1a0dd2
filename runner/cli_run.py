"""The body of ``receipts run`` (the CLI module calls this lazily, so ``receipts verify`` never loads it)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
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
from receipts.gate import release_decision
from runner.packs import Pack, load_pack
from runner.report import write_reports
from runner.run import Engine, RunConfig, execute

__all__ = ["pin_threads", "run_packs"]


def pin_threads(threads: int) -> None:
    """Pin BLAS/OpenMP threads before torch is imported; the hf backend pins torch's from the same value."""
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


def run_packs(
    packs: Sequence[Path],
    roles: Mapping[str, str],
    out: Path,
    *,
    config: RunConfig,
    resume: bool,
    force: bool,
    gate: bool,
    console: Console,
    show_progress: bool,
    ray: str | None = None,
    ray_workers: int = 1,
) -> list[dict[str, Any]]:
    """Run every pack; one pack writes into ``out``, several into ``out/<pack id>/``.

    Raises:
        GateError: ``gate`` is set and a pack's gate failed.
    """
    pin_threads(config.threads)
    loaded = [load_pack(p) for p in packs]
    ids = [p.id for p in loaded]
    if len(set(ids)) != len(ids):
        raise UsageError(f"the same pack is given twice: {ids}")
    if ray is None:
        return _run_all(loaded, config, out, resume, force, gate, console, show_progress, None)
    from runner.ray_engine import RayEngine

    engine = RayEngine(ray, workers=ray_workers, threads=config.threads)
    try:
        return _run_all(loaded, config, out, resume, force, gate, console, show_progress, engine)
    finally:
        engine.shutdown()  # one Ray session for every pack of the command


def _run_all(
    loaded: Sequence[Pack],
    config: RunConfig,
    out: Path,
    resume: bool,
    force: bool,
    gate: bool,
    console: Console,
    show_progress: bool,
    engine: Engine | None,
) -> list[dict[str, Any]]:
    all_results = []
    for pack in loaded:
        run_dir = out if len(loaded) == 1 else out / pack.id
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
                resume=resume,
                force=force,
                progress=_Bar(bar, pack.id).update,
                engine=engine,
            )
        results = write_reports(pack, config, outcome)
        results["_run"] = {
            "dir": str(run_dir),
            "seconds": round(outcome.seconds, 3),
            "cache_hits": outcome.cache_hits,
            "computed": outcome.computed,
        }
        all_results.append(results)
    if gate:
        blocked = []
        for results in all_results:
            passed, why = release_decision(results["gate"])
            if not passed:
                blocked.append(f"{results['pack']['id']}: {why}")
        if blocked:
            raise GateError(
                "the release gate did not pass (it fails closed: a rule not evaluated does not pass): "
                + "; ".join(blocked),
                hint="see gate.rules in results.json; a card can mark rules optional when you sign",
            )
    return all_results
