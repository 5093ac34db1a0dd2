"""The runner: ``receipts run`` (packs on teacher, base and student) and ``receipts bench`` (model cost).

Three rooms: `runner.backends` (model specs -> loaded models, a registry), `runner.eval` (packs,
scoring, metrics, reports) and `runner.bench` (plan, worker, statistics, host). Only here are torch and
transformers imported, lazily, where a model is first called; ``import runner`` imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from receipts._lazy import lazy_names

if TYPE_CHECKING:
    from runner.backends.registry import load_backend
    from runner.bench.driver import bench
    from runner.bench.plan import BenchConfig
    from runner.eval.command import RunRequest, run_command
    from runner.eval.config import RunConfig
    from runner.eval.loader import load_pack
    from runner.eval.prompts import materialise
    from runner.eval.report import write_reports
    from runner.eval.run import execute

__all__ = [
    "BenchConfig",
    "RunConfig",
    "RunRequest",
    "bench",
    "execute",
    "load_backend",
    "load_pack",
    "materialise",
    "run_command",
    "write_reports",
]

_HOMES = {
    "runner.backends.registry": ("load_backend",),
    "runner.bench.driver": ("bench",),
    "runner.bench.plan": ("BenchConfig",),
    "runner.eval.command": (
        "RunRequest",
        "run_command",
    ),
    "runner.eval.config": ("RunConfig",),
    "runner.eval.loader": ("load_pack",),
    "runner.eval.prompts": ("materialise",),
    "runner.eval.report": ("write_reports",),
    "runner.eval.run": ("execute",),
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
