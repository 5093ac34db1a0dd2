"""Sequence-level divergence across tokenizers and served teachers (issue #20 part 4): the per-item evidence.

For each generate or extract item, y is the teacher's output string. Every role scores y teacher-forced
under its own tokenizer: ``seq_logprob = log p(y | prompt)``, the summed continuation log-likelihood of
the multiple-choice path (`Backend.score_choices` with y as the one continuation: lm-eval's
``enc(ctx + y)[len(enc(ctx)):]``, so end-of-text is not part of it). The teacher's own value comes the
same way for a local model; for a served (``openai:``) or recorded (``replay:``) teacher, which cannot be
teacher-forced here, it is the sum of the log-probabilities the server returned for the tokens it
generated (``seq_source: served``). `receipts.derive` turns the signed values into
``(log p_T(y|x) - log p_S(y|x)) / bytes(y)`` per item and its mean per slice: a per-byte estimate of
KL(teacher || student) at the teacher's mode, defined for any pair of models (see the README for the
estimator and its bias).

A role whose backend cannot score text (a served student without prompt log-probabilities) records
nothing: the item counts under ``missing``, never as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from receipts.errors import ReceiptsError
from runner.backends.base import Backend, ChoiceRequest, Message
from runner.eval.cache import request_key

if TYPE_CHECKING:
    from runner.eval.packs import PromptInstance

__all__ = [
    "FIELDS",
    "SERVED_KINDS",
    "cache_key",
    "sequence_logprobs",
    "served_logprob",
    "target",
    "teacher_forced_here",
]

FIELDS = ("seq_logprob", "seq_source", "seq_tokens")
"""What a role's examples cell carries (`runner.eval.report` copies them from the partial row)."""

SERVED_KINDS = frozenset({"openai", "replay"})
"""Backends whose teacher log-probabilities are the ones returned at generation, not teacher-forced here."""

DECIMALS = 6
"""Rounding of a stored log-probability (as generation's token log-probabilities are stored)."""


def teacher_forced_here(kind: str) -> bool:
    """Whether a teacher of this backend kind scores its own output teacher-forced (else: served logprobs)."""
    return kind not in SERVED_KINDS


def target(inst: PromptInstance, teacher_output: Mapping[str, Any] | None) -> str | None:
    """The text y of ``inst``: the teacher's output (None for choice items, an error, an empty text)."""
    if inst.continuations is not None or teacher_output is None or "error" in teacher_output:
        return None
    text = teacher_output.get("text")
    return text if isinstance(text, str) and text else None


def cache_key(inst: PromptInstance, text: str) -> str:
    """The role's output-cache key of its log-probability of ``text`` after the item's prompt."""
    return request_key("seq", prompt=inst.prompt, continuation=text)


def _logprob(value: object) -> float | None:
    """A backend's summed log-likelihood as a log-probability: finite and <= 0, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return round(number, DECIMALS) if math.isfinite(number) and number <= 0.0 else None


def served_logprob(output: Mapping[str, Any]) -> dict[str, Any]:
    """A served teacher's ``log p(y|x)``: the sum of its generated tokens' returned log-probabilities.

    Empty when the server returned none (or a value that is no log-probability) for a non-empty text.
    """
    values = output.get("token_logprobs")
    text = output.get("text")
    if not isinstance(values, list) or not values or not isinstance(text, str) or not text:
        return {}
    found = [_logprob(v) for v in values]
    if any(v is None for v in found):
        return {}
    total = _logprob(math.fsum(v for v in found if v is not None))
    if total is None:
        return {}
    return {"seq_logprob": total, "seq_source": "served", "seq_tokens": len(values)}


def sequence_logprobs(
    backend: Backend, pairs: Sequence[tuple[str, str]], messages: Sequence[tuple[Message, ...]] = ()
) -> list[dict[str, Any]]:
    """Per ``(prompt, y)``: the fields `FIELDS` of the model's ``log p(y|prompt)``, in one batched call.

    ``messages`` (one per pair, for a model posed through its chat template): the conversation the model
    was given, so y is scored right after the rendered chat prompt it was (or would be) generated after.

    Empty for a pair whose value is no log-probability. A backend that cannot score a text after a prompt
    (an endpoint without prompt log-probabilities, a recording, ``api=chat``) refuses with a
    `ReceiptsError`: then no pair of the batch gets a value, and the run goes on (the divergence counts
    them as missing, never as zero).
    """
    if not pairs:
        return []
    try:
        posed = list(messages) or [()] * len(pairs)
        requests = [
            ChoiceRequest(prompt, (text,), None, conversation)
            for (prompt, text), conversation in zip(pairs, posed, strict=True)
        ]
        scored = backend.score_choices(requests)
    except ReceiptsError:
        return [{} for _ in pairs]
    found: list[dict[str, Any]] = []
    for result in scored:
        value = _logprob(result.logliks[0]) if result.logliks else None
        tokens = result.tokens[0] if result.tokens else 0
        found.append(
            {}
            if value is None
            else {"seq_logprob": value, "seq_source": "teacher_forced", "seq_tokens": tokens}
        )
    return found
