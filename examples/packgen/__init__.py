"""The bundled packs' items, generated from templates with seeded variety (issue #22).

Each pack's module (``capitals``, ``clauses``, ``probes``) has ``build(seed) -> PackData``: the pack's eval
items (the hand-written items kept as the ``curated`` slice, then generated ones) and a disjoint training
split for the demo's teacher fine-tune, distillation and SFT baseline (``examples/distill.py``).
``examples/make_packs.py`` writes them (``packs/<id>/data/items.jsonl``, ``examples/train/<id>.jsonl``) and
``--check`` holds the committed files to what the generator makes.

Conventions every module follows:

- Deterministic under ``seed`` alone: one ``random.Random(seed)`` per pack, no set iteration order, no
  clock, no environment.
- Eval items are pack-shaped (the fields ``pack.yaml`` maps) and carry ``source``: ``curated`` or
  ``generated``. Ids are unique strings.
- The eval order is *stratified*: ``interleave`` deals the items round-robin over their strata (the
  critical cohort and the pack's main slice), so any prefix (``receipts run --limit N``) holds every
  stratum in proportion, and the critical items are spread evenly.
- Training rows are pack-shaped too (the same fields, so the pack's own prompt templates render them),
  plus ``response``: the exact text a competent model answers (what SFT and the teacher fine-tune learn).
- Train and eval are disjoint by construction (different entities, values and phrasings, per module);
  ``disjoint`` checks it on the rendered inputs, and ``receipts overlap`` measures n-gram overlap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PackData", "disjoint", "interleave", "jsonl"]


@dataclass(frozen=True)
class PackData:
    """What one pack's generator makes."""

    pack_id: str
    eval_items: list[dict[str, Any]]
    train_items: list[dict[str, Any]]
    notes: dict[str, Any] = field(default_factory=dict)  # counts etc., printed by make_packs


def interleave(groups: Mapping[str, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Items dealt so every prefix holds each group in proportion to its size (largest-remainder).

    Deterministic: groups are taken in sorted key order, each group's own order is kept. At step k of n
    the group furthest behind its share ``k * len(g) / n`` gives its next item.
    """
    keys = sorted(k for k, g in groups.items() if g)
    total = sum(len(groups[k]) for k in keys)
    taken = dict.fromkeys(keys, 0)
    out: list[dict[str, Any]] = []
    for step in range(1, total + 1):
        best = max(keys, key=lambda k: (step * len(groups[k]) / total - taken[k], -keys.index(k)))
        out.append(groups[best][taken[best]])
        taken[best] += 1
    return out


def disjoint(
    eval_items: Iterable[Mapping[str, Any]],
    train_items: Iterable[Mapping[str, Any]],
    text: Callable[..., str],
) -> list[str]:
    """Ids of training rows whose normalised input ``text(row)`` equals an eval item's (should be none)."""

    def norm(row: Mapping[str, Any]) -> str:
        return " ".join(text(row).lower().split())

    seen = {norm(row) for row in eval_items}
    return [str(row["id"]) for row in train_items if norm(row) in seen]


def jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows as JSON lines, byte-stable (key order as built, UTF-8, no trailing spaces)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write ``rows`` to ``path`` as JSON lines (parent folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(jsonl(rows), "utf-8")
