"""Evaluation (``receipts run``): packs, prompts, the run and its engines, scoring, metrics, reports.

- packs: `packs` (records), `loader` (``load_pack``), `items`, `templates`, `prompts` (``materialise``),
  `answers`, `perturbations`.
- the run: `command` (``receipts run`` as one call), `run` (``execute``, engines), `roles`, `work`,
  `cache`, `ray_engine`, `config`.
- reading the outputs: `scoring` (the `Scorer` interface and registry), `scorers` (built-in ones),
  `metrics` (one module per family), `report` (examples.jsonl, results.json).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from receipts._lazy import lazy_names
from runner.eval import scorers as _scorers  # noqa: F401 - imported for its registrations

if TYPE_CHECKING:
    from runner.eval.command import RunRequest, run_command
    from runner.eval.config import RunConfig
    from runner.eval.loader import load_pack
    from runner.eval.packs import Pack, PromptInstance
    from runner.eval.prompts import materialise
    from runner.eval.report import write_reports
    from runner.eval.run import RunOutcome, execute
    from runner.eval.scoring import Scorer, scorer, scorer_for

__all__ = [
    "Pack",
    "PromptInstance",
    "RunConfig",
    "RunOutcome",
    "RunRequest",
    "Scorer",
    "execute",
    "load_pack",
    "materialise",
    "run_command",
    "scorer",
    "scorer_for",
    "write_reports",
]

_HOMES = {
    "runner.eval.command": (
        "RunRequest",
        "run_command",
    ),
    "runner.eval.config": ("RunConfig",),
    "runner.eval.loader": ("load_pack",),
    "runner.eval.packs": (
        "Pack",
        "PromptInstance",
    ),
    "runner.eval.prompts": ("materialise",),
    "runner.eval.report": ("write_reports",),
    "runner.eval.run": (
        "RunOutcome",
        "execute",
    ),
    "runner.eval.scoring": (
        "Scorer",
        "scorer",
        "scorer_for",
    ),
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
