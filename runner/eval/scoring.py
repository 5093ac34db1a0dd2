"""Scoring one role's output on one prompt instance: the `Scorer` interface, its registry, the dispatch.

A scorer turns what a backend returned for one task type (``multiple_choice``, ``generate``, ...) into
the per-example fields of examples.jsonl; everything downstream (results.json, retention, the gate)
reads only those fields. The primary ``score`` is what accuracy, retention and the bootstrap are
computed on; ``answer`` is the normalised answer that agreement compares across roles. A new task
type is one class registered with ``@scorer("task")`` (the built-in ones: `runner.eval.scorers`).

Packs with behaviour probes (items whose expected behaviour is to clarify, abstain or refuse) are read
on ``probe_score``: the expected behaviour for probe items and the task metric for the others, so every
item counts once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from receipts.errors import UsageError
from runner.eval.packs import Pack, PromptInstance

__all__ = [
    "PROBE_SCORE",
    "Scorer",
    "example_cell",
    "has_probes",
    "primary_metric",
    "score_output",
    "scorer",
    "scorer_for",
]

PROBE_SCORE = "probe_score"


class Scorer(Protocol):
    """How one task type's outputs are scored, and what its numbers mean in results.json.

    Attributes:
        metric: the primary metric its rows' ``score`` is (``acc``, ``exact_match``, ``field_f1``).
        confidence: what a row's ``confidence`` is, as results.json's calibration section states it.
        per_field: whether rows carry per-field ``[tp, fp, fn]`` counts (``fields``), which
            results.json's ``extraction`` section pools.
    """

    metric: str
    confidence: str
    per_field: bool

    def score(self, pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
        """The scored fields of one output: ``answer``, ``score``, ``scores``, ``confidence``, ``abstained``.

        ``output`` is the backend's raw result as stored (``logliks`` for choices, ``text`` for
        generations), never an error.
        """
        ...


S = TypeVar("S", bound=Scorer)
_SCORERS: dict[str, Scorer] = {}


def scorer(*tasks: str) -> Callable[[type[S]], type[S]]:
    """Register the decorated class (instantiated without arguments) as the scorer of ``tasks``.

    Raises:
        ValueError: a task has a scorer already.
    """
    taken = [task for task in tasks if task in _SCORERS]
    if taken:
        raise ValueError(f"task(s) {taken} have a scorer already")

    def register(cls: type[S]) -> type[S]:
        instance = cls()
        for task in tasks:
            _SCORERS[task] = instance
        return cls

    return register


def scorer_for(task: str) -> Scorer:
    """The scorer registered for a pack task.

    Raises:
        UsageError: no scorer is registered for ``task``.
    """
    try:
        return _SCORERS[task]
    except KeyError:
        raise UsageError(
            f"no scorer is registered for task {task!r}", hint=f"registered: {', '.join(sorted(_SCORERS))}"
        ) from None


def has_probes(pack: Pack) -> bool:
    """Whether some items expect a behaviour (clarify, abstain, refuse) rather than an answer."""
    return any(item.expected != "answer" for item in pack.items)


def primary_metric(pack: Pack) -> str:
    """The metric the headline, retention and the gate read for this pack (``probe_score`` with probes)."""
    return PROBE_SCORE if has_probes(pack) else scorer_for(pack.task).metric


def score_output(pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
    """The scored fields of one role's output (``output`` is the backend's raw result as stored).

    A failed item (an ``error`` output) scores 0 and is left out of the paired statistics.
    """
    if "error" in output:
        return {"error": output["error"], "score": 0.0, "scores": {}, "answer": None, "abstained": False}
    row = scorer_for(pack.task).score(pack, inst, output)
    if has_probes(pack):
        row["scores"][PROBE_SCORE] = row["score"]
    return row


def example_cell(pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
    """One role's cell of an examples.jsonl row: the stored output (less its greedy flags) and its scores.

    The one definition of a cell: the run writes it (`runner.eval.report`) and ``receipts verify
    --rerun`` recomputes it (`runner.eval.rerun`); fields measured against another role (KL) are added
    by the run.
    """
    return {**{k: v for k, v in output.items() if k != "greedy"}, **score_output(pack, inst, output)}
