"""The model work of a run: requests for a batch of items, then teacher distributions or token KL.

`work` is the one function every engine calls (in process, or inside a Ray actor), so a distributed
run computes exactly what a local one does. Everything it needs travels in `WorkItem`s; everything it
produces comes back as `WorkResult`s; the driver (`runner.eval.roles`) keeps the cache and the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from receipts.errors import ReceiptsError
from receipts.metrics.fidelity import token_kl
from runner.backends.base import Backend, ChoiceRequest, GenRequest, Message
from runner.eval import seqkl
from runner.eval.cache import request_key
from runner.eval.chat import chat_request
from runner.eval.packs import Pack, PromptInstance

__all__ = ["WorkItem", "WorkResult", "kl_target", "request_for", "work"]


def request_for(
    sees_gold: bool, inst: PromptInstance, pack: Pack, *, chat: bool = False
) -> tuple[str, ChoiceRequest | GenRequest]:
    """The cache key and the request for ``inst`` (gold only for backends that replay gold answers).

    ``chat``: the model is posed through its chat template (`runner.eval.chat.chat_request`).
    """
    if chat:
        return chat_request(sees_gold, inst, pack)
    if inst.continuations is not None:
        gold = inst.gold if sees_gold and isinstance(inst.gold, int) else None
        key = request_key("choices", context=inst.prompt, continuations=list(inst.continuations))
        return key, ChoiceRequest(inst.prompt, inst.continuations, gold)
    gen = pack.generation
    gold_text = inst.gold_text() if sees_gold else None
    key = request_key("generate", prompt=inst.prompt, max_new_tokens=gen.max_new_tokens, stop=list(gen.stop))
    return key, GenRequest(inst.prompt, gen.max_new_tokens, gen.stop, gold_text)


def kl_target(inst: PromptInstance, teacher_row: Mapping[str, Any] | None) -> str | None:
    """The continuation token-level KL is measured on: the gold choice (MC) or the teacher's output."""
    if inst.continuations is not None and isinstance(inst.gold, int):
        return inst.continuations[inst.gold]
    if teacher_row is not None and teacher_row.get("output", {}).get("text"):
        return str(teacher_row["output"]["text"])
    return None


@dataclass(frozen=True)
class WorkItem:
    """One item's model work for one role: what to compute, and what the driver already has.

    Attributes:
        inst: the prompt instance.
        request: the request to send, or None when ``output`` came from the cache.
        output: the cached output (when ``request`` is None).
        dist: teacher only: also return its distributions over the KL target.
        kl_target: student roles: the continuation to measure token-level KL on ...
        teacher_dist: ... against these teacher distributions (None: no KL to measure).
        seq_target: the teacher's output text this role scores teacher-forced (`runner.eval.seqkl`) ...
        seq_self: ... or, for a local teacher, its own output once generated.
        seq_messages: for a model posed through its chat template, the conversation y is scored after.
    """

    inst: PromptInstance
    request: ChoiceRequest | GenRequest | None
    output: dict[str, Any] | None = None
    dist: bool = False
    kl_target: str | None = None
    teacher_dist: np.ndarray[Any, np.dtype[np.float32]] | None = None
    seq_target: str | None = None
    seq_self: bool = False
    seq_messages: tuple[Message, ...] = ()

    @property
    def needs_model(self) -> bool:
        """False when the driver can finish the item without a model call."""
        return (
            self.request is not None
            or self.dist
            or self.teacher_dist is not None
            or self.seq_target is not None
            or self.seq_self
        )


@dataclass(frozen=True)
class WorkResult:
    """What a model produced for one `WorkItem`."""

    output: dict[str, Any]
    dist: tuple[str, np.ndarray[Any, np.dtype[np.float32]]] | None = None
    kl: dict[str, Any] = field(default_factory=dict)
    seq: dict[str, Any] = field(default_factory=dict)


def _compute(backend: Backend, requests: Sequence[ChoiceRequest | GenRequest]) -> list[dict[str, Any]]:
    choice = [r for r in requests if isinstance(r, ChoiceRequest)]
    gen = [r for r in requests if isinstance(r, GenRequest)]
    out: list[dict[str, Any]] = []
    if choice:
        for res in backend.score_choices(choice):
            out.append({"logliks": list(res.logliks), "greedy": list(res.greedy), "tokens": list(res.tokens)})
            if res.prompt_sha256 is not None:  # a chat model: the prompt its template rendered
                out[-1]["prompt_sha256"] = res.prompt_sha256
    if gen:
        for g in backend.generate(gen):
            out.append({"text": g.text, "token_logprobs": [round(v, 6) for v in g.token_logprobs]})
            if g.prompt_sha256 is not None:  # a chat model: the prompt its template rendered
                out[-1]["prompt_sha256"] = g.prompt_sha256
    return out


def _compute_each(backend: Backend, requests: Sequence[ChoiceRequest | GenRequest]) -> list[dict[str, Any]]:
    """All requests in one call; if that fails, item by item so only the failing item is lost."""
    try:
        return _compute(backend, requests)
    except ReceiptsError:
        raise
    except Exception:  # one bad batch: retry item by item
        fresh: list[dict[str, Any]] = []
        for request in requests:
            try:
                fresh.extend(_compute(backend, [request]))
            except ReceiptsError:
                raise
            except Exception as exc:  # recorded with the item; the run aborts past a threshold
                fresh.append({"error": f"{type(exc).__name__}: {exc}"[:500]})
        return fresh


def work(backend: Backend | None, items: Sequence[WorkItem]) -> list[WorkResult]:
    """Do the model work for a batch of items: outputs, then teacher distributions or token KL.

    The one function every engine calls (in process, or inside a Ray actor), so a distributed run
    computes exactly what a local one does. The distributions of the whole batch are asked for in one
    `Backend.teacher_forced` call, so items whose outputs came from the cache (the same model in two
    roles) are batched like fresh ones rather than forwarded one by one.

    Raises:
        ReceiptsError: the backend refused in a way no retry fixes (e.g. an endpoint without logprobs).
    """
    outputs = [item.output for item in items]
    missing = [i for i, item in enumerate(items) if item.request is not None]
    if missing:
        assert backend is not None  # noqa: S101 - callers only pass None when nothing needs a model
        fresh = _compute_each(backend, [r for i in missing if (r := items[i].request) is not None])
        for i, value in zip(missing, fresh, strict=True):
            outputs[i] = value
    done: list[dict[str, Any]] = []
    for output in outputs:
        assert output is not None  # noqa: S101 - every item has a cached or a fresh output
        done.append(output)
    if backend is None:
        return [WorkResult(output) for output in done]
    # issue #20 part 4 first: on hf the distributions below then read this forward (`HFBackend._memo`)
    results = [
        WorkResult(output, seq=seq)
        for output, seq in zip(done, _sequences(backend, items, done), strict=True)
    ]
    asks = _distributions_asked(items, done)
    dists = backend.teacher_forced([(items[i].inst.prompt, target) for i, target in asks]) if asks else []
    for (i, target), dist in zip(asks, dists, strict=True):
        item = items[i]
        if dist is None:
            continue
        if item.dist:
            results[i] = WorkResult(done[i], (target, dist), seq=results[i].seq)
        elif item.teacher_dist is not None and item.teacher_dist.shape == dist.shape:
            kl = {"kl_token": round(token_kl(item.teacher_dist, dist), 8), "kl_positions": int(dist.shape[0])}
            results[i] = WorkResult(done[i], kl=kl, seq=results[i].seq)
    return results


def _sequences(
    backend: Backend, items: Sequence[WorkItem], outputs: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Per item: its model's log-probability of the teacher's text (`runner.eval.seqkl`), or nothing."""
    asks = []
    for i, (item, output) in enumerate(zip(items, outputs, strict=True)):
        text = seqkl.target(item.inst, output) if item.seq_self else item.seq_target
        if text and "error" not in output:
            asks.append((i, text))
    found: list[dict[str, Any]] = [{} for _ in items]
    scored = seqkl.sequence_logprobs(
        backend, [(items[i].inst.prompt, text) for i, text in asks], [items[i].seq_messages for i, _ in asks]
    )
    for (i, _), value in zip(asks, scored, strict=True):
        found[i] = value
    return found


def _distributions_asked(
    items: Sequence[WorkItem], outputs: Sequence[Mapping[str, Any]]
) -> list[tuple[int, str]]:
    """``(item index, continuation)`` of every distribution the batch needs from its model.

    The teacher's over its KL target (to keep for later roles); a later role's over the teacher's
    target (to measure KL against the teacher's). Items whose output is an error need none.
    """
    asks = []
    for i, (item, output) in enumerate(zip(items, outputs, strict=True)):
        if "error" in output:
            continue
        if item.dist:
            target = kl_target(item.inst, {"output": output})
            if target is not None:
                asks.append((i, target))
        elif item.teacher_dist is not None and item.kl_target is not None:
            asks.append((i, item.kl_target))
    return asks
