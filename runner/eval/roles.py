"""The driver's side of one role in a run: what to ask the model, and each row recorded as it exists.

An engine (`runner.eval.run.LocalEngine`, `runner.eval.ray_engine.RayEngine`) decides where
`runner.eval.work.work` runs; a `RoleRun` owns the rest — the output cache, the partial rows, the
teacher's distributions for token-level KL, and the error threshold — so every engine writes the
same rows and either can resume the other's run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from receipts.errors import InputError
from runner.backends.base import ModelIdentity
from runner.backends.chat import is_chat
from runner.backends.paths import cache_root
from runner.eval import seqkl
from runner.eval.cache import OutputCache, request_key
from runner.eval.chat import posed as chat_posed
from runner.eval.config import RunConfig
from runner.eval.packs import Pack, PromptInstance
from runner.eval.work import WorkItem, WorkResult, kl_target, request_for

__all__ = [
    "BATCH_INVARIANT",
    "BATCH_LAYOUT",
    "ITEM_LAYOUT",
    "Progress",
    "RoleRun",
    "TeacherDists",
    "in_batches",
    "instance_key",
]

Progress = Callable[[str, int, int], None]
"""Called after each batch with the role, its rows done and its total."""


def instance_key(inst: PromptInstance) -> str:
    """The key of an instance's rows: item id and variant, joined by a unit separator."""
    return f"{inst.item_id}\x1f{inst.variant}"


BATCH_INVARIANT = frozenset({"fake", "llamacpp", "openai", "replay"})
"""Backend kinds whose output for a prompt does not depend on the prompts posed with it (llama.cpp decodes
one sequence at a time; an endpoint is asked item by item); every other kind is cached per batch."""

BATCH_LAYOUT = "pack1024/quantum2/gemm4/gen32x12288/greedy-drop-2"
"""How a transformers model lays out a batch: `runner.backends.hf`'s PACK_TOKENS, ROW_QUANTUM and
MIN_GEMM_ROWS, `runner.backends.hf_decode`'s GEN_ROWS and GEN_TOKENS, and the decoding loop. It is part of
each batch's cache scope, so outputs computed under another layout are never read back into a run (they
would be signed, then fail ``verify --rerun``). Written out here, where torch is not imported;
tests/runner/test_hf_generate.py holds it to the constants. Change the last part when the loop changes."""


ITEM_LAYOUT = {"llamacpp": "item-tree-8"}
"""How a batch-invariant backend lays out one item, where that moves its numbers: `runner.llamacpp.backend`
evaluates a multiple-choice item's context and up to ``SEQS`` choices in one ``llama_decode``
(its ``LAYOUT``; tests/runner/test_llamacpp_backend.py holds them equal). It is the cache scope of the
kind's outputs, so numbers of another layout are never read back into a run (they would be signed, then
fail ``verify --rerun``)."""


def in_batches(items: Sequence[PromptInstance], size: int) -> Iterator[list[PromptInstance]]:
    """``items`` in consecutive batches of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class RoleRun:
    """One role over the instances: prepares work, records each row as soon as it exists.

    The engine (`runner.eval.run.LocalEngine`, `runner.eval.ray_engine.RayEngine`) decides where
    `runner.eval.work.work` runs; this class owns the driver's side — cache, partial rows, teacher
    distributions, error threshold.
    """

    def __init__(
        self,
        role: str,
        identity: ModelIdentity,
        pack: Pack,
        config: RunConfig,
        partial: Path,
        done: dict[str, dict[str, Any]],
        teacher: TeacherDists | None,
        total: int,
    ):
        self.role, self.identity, self.pack, self.config = role, identity, pack, config
        self.done, self.teacher, self.total = done, teacher, total
        root = cache_root() if config.use_cache else None
        self.cache = OutputCache(root, identity.key)
        self.handle: IO[str] = partial.open("a", encoding="utf-8")
        self.computed = 0
        self.errors = sum(1 for row in done.values() if "error" in row["output"])
        self.limit_errors = max(5, int(config.max_error_rate * total))
        self.sees_gold = False
        self.chat = is_chat(identity)  # chat templates (issue #20)
        self._fresh = False  # compute every output of the current batch again (`enter`)
        self._scopes: dict[str, str] = {}  # instance key -> the cache scope it was prepared in

    def todo(self, instances: Sequence[PromptInstance]) -> list[PromptInstance]:
        """The instances this role has no row for yet."""
        return [inst for inst in instances if instance_key(inst) not in self.done]

    def enter(self, batch: Sequence[PromptInstance]) -> None:
        """Scope the output cache to ``batch`` before its items are prepared.

        A transformers model's last digits depend on which prompts share its padded forward, so its
        outputs are cached per batch (the digest of the batch's requests, in order) and read back only
        into that batch: a run with another ``--limit`` or ``--batch-size`` computes again rather than
        mixing outputs of other layouts, which ``verify --rerun`` would then fail to reproduce. A batch is
        read back whole or computed whole: when any of its outputs is missing (a crash mid-batch, an item
        that failed) every item is computed again, as the uninterrupted run computed them.
        """
        self.cache.scope, self._fresh = "", False
        if self.identity.kind in BATCH_INVARIANT:
            layout = ITEM_LAYOUT.get(self.identity.kind)
            if layout is not None:
                self.cache.scope = request_key("layout", layout=layout)
            return
        keys = [request_for(self.sees_gold, inst, self.pack, chat=self.chat)[0] for inst in batch]
        self.cache.scope = request_key("batch", requests=keys, layout=BATCH_LAYOUT)
        self._fresh = not all(self.cache.has(key) for key in keys)

    def _kl_key(self, inst: PromptInstance, target: str) -> str:
        assert self.teacher is not None  # noqa: S101
        return request_key("kl", teacher=self.teacher.key, prompt=inst.prompt, continuation=target)

    def prepare(self, inst: PromptInstance) -> WorkItem:
        """What the model must still do for ``inst`` (nothing, when everything is cached)."""
        self._scopes[instance_key(inst)] = self.cache.scope  # `finish` caches in the same batch's scope
        item = self._prepare(inst)
        # issue #20 part 4: the role's log-probability of the teacher's text, unless cached; a chat model
        # scores it after the rendered chat prompt, as it generates
        posed = chat_posed(inst) if self.chat else ()
        if self.role == "teacher":
            if inst.continuations is None and seqkl.teacher_forced_here(self.identity.kind):
                text = seqkl.target(inst, item.output) if item.output is not None else None
                if item.output is None or (text and not self.cache.has(seqkl.cache_key(inst, text))):
                    return dataclasses.replace(item, seq_self=True, seq_messages=posed)
            return item
        text = self._teacher_text(inst)
        if text and not self.cache.has(seqkl.cache_key(inst, text)):
            return dataclasses.replace(item, seq_target=text, seq_messages=posed)
        return item

    def _teacher_text(self, inst: PromptInstance) -> str | None:
        row = self.teacher.rows.get(instance_key(inst)) if self.teacher is not None else None
        return seqkl.target(inst, row["output"] if row is not None else None)

    def _sequence(self, item: WorkItem, result: WorkResult) -> dict[str, Any]:
        """The row's `seqkl.FIELDS`: this role's log-probability of the teacher's text, or nothing."""
        inst, output = item.inst, result.output
        if self.role == "teacher" and not seqkl.teacher_forced_here(self.identity.kind):
            return seqkl.served_logprob(output) if inst.continuations is None else {}
        text = seqkl.target(inst, output) if self.role == "teacher" else self._teacher_text(inst)
        if not text or "error" in output:
            return {}
        key = seqkl.cache_key(inst, text)
        if result.seq:
            self.cache.put(key, result.seq)
        return self.cache.peek(key)

    def _prepare(self, inst: PromptInstance) -> WorkItem:
        """What the model must still do for ``inst`` for its output and token-level KL."""
        key, request = request_for(self.sees_gold, inst, self.pack, chat=self.chat)
        cached = None if self._fresh else self.cache.get(key)
        if self.chat or (self.teacher is not None and self.teacher.chat):
            # chat templates (issue #20): token-level KL is not measured where either model reads a chat
            # template (its teacher-forced context would not be the prompt it was scored on)
            return WorkItem(inst, request if cached is None else None, cached)
        if self.role == "teacher":
            # the KL target of an MC item is its gold continuation, known before the output is
            target = kl_target(inst, {"output": cached or {}})
            if cached is None and target is None:  # a generate item: the target is the output
                return WorkItem(inst, request, dist=self.teacher is not None)
            need = self.teacher is not None and target is not None and not self.teacher.has(inst, target)
            return WorkItem(inst, request if cached is None else None, cached, dist=need)
        item = WorkItem(inst, request if cached is None else None, cached)
        if self.teacher is None or self.teacher.tokenizer != self.identity.tokenizer:
            return item
        target = self.teacher.target(inst)
        if target is None or self.cache.has(self._kl_key(inst, target)):
            return item
        p = self.teacher.load(inst, target)
        if p is None:
            return item
        return WorkItem(inst, item.request, cached, kl_target=target, teacher_dist=p)

    def finish(self, item: WorkItem, result: WorkResult) -> None:
        """Record one finished item: cache, teacher distributions or KL, the partial row."""
        inst, output = item.inst, result.output
        self.cache.scope = self._scopes.pop(instance_key(inst), self.cache.scope)
        if item.request is not None:
            self.computed += 1
            if "error" not in output:
                self.cache.put(request_for(self.sees_gold, inst, self.pack, chat=self.chat)[0], output)
        extra: dict[str, Any] = {}
        if "error" in output:
            self.errors += 1
        elif self.role == "teacher":
            if result.dist is not None and self.teacher is not None:
                self.teacher.save(inst, *result.dist)
        elif self.teacher is not None and self.teacher.tokenizer == self.identity.tokenizer:
            target = self.teacher.target(inst)
            if target is not None:
                kl_key = self._kl_key(inst, target)
                if result.kl:
                    self.cache.put(kl_key, result.kl)
                extra = self.cache.peek(kl_key)
        if "error" not in output:
            extra.update(self._sequence(item, result))
        row = {"key": instance_key(inst), "prompt_sha256": inst.prompt_sha256, "output": output, **extra}
        self.handle.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.handle.flush()
        self.done[row["key"]] = row

    def batch_done(self, progress: Progress | None) -> None:
        """After each batch: stop past the error threshold, report progress."""
        if self.errors > self.limit_errors:
            raise InputError(
                f"role {self.role}: {self.errors} items failed (limit {self.limit_errors}); "
                f"last error: {self._last_error()}",
                hint="fix the model or pack and rerun with --resume (finished items are kept)",
            )
        if progress is not None:
            progress(self.role, len(self.done), self.total)

    def close(self) -> None:
        """Close the partial file and the cache."""
        self.handle.close()
        self.cache.close()

    def _last_error(self) -> str:
        for row in reversed(list(self.done.values())):
            if "error" in row["output"]:
                return str(row["output"]["error"])
        return ""


class TeacherDists:
    """The teacher's per-position distributions, kept on disk for token-level KL of later roles.

    Stored under the output cache (keyed by teacher identity, prompt and continuation) so a re-run
    needs no teacher forward; with ``--no-cache`` they live in the run folder.
    """

    def __init__(self, folder: Path, identity: ModelIdentity, rows: Mapping[str, Mapping[str, Any]]):
        self.folder, self.rows = folder, rows
        self.tokenizer = identity.tokenizer
        self.key = identity.key
        self.chat = is_chat(identity)
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, inst: PromptInstance, target: str) -> Path:
        return self.folder / f"{request_key('dist', prompt=inst.prompt, continuation=target)}.npy"

    def target(self, inst: PromptInstance) -> str | None:
        """The continuation later roles measure KL on for ``inst`` (see `runner.eval.work.kl_target`)."""
        return kl_target(inst, self.rows.get(instance_key(inst)))

    def has(self, inst: PromptInstance, target: str) -> bool:
        """Whether the distributions over ``target`` are on disk already."""
        return self._path(inst, target).exists()

    def save(self, inst: PromptInstance, target: str, dists: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        """Keep the distributions (written to a temporary name, then renamed: never half a file)."""
        path = self._path(inst, target)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, dists)
        os.replace(tmp, path)

    def load(self, inst: PromptInstance, target: str) -> np.ndarray[Any, np.dtype[np.float32]] | None:
        """The teacher's distributions over ``target``, or None when they were never kept."""
        path = self._path(inst, target)
        return np.load(path) if path.exists() else None
