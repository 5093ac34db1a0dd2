"""What every backend is: an identity, choice scoring by log-likelihood, and greedy generation.

Backends never see gold answers, with one declared exception: the test-only ``fake:`` backend, whose
``sees_gold`` flag tells the runner to pass them so it can play a model of a chosen skill.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "Backend",
    "ChoiceRequest",
    "ChoiceResult",
    "GenRequest",
    "GenResult",
    "Message",
    "ModelIdentity",
]


@dataclass(frozen=True)
class ModelIdentity:
    """Who answered: everything that changes a model's outputs, and nothing else.

    The identity (minus ``spec``, which is just how the user spelled it) is the cache key of every
    output the model produced: weights digest or endpoint, storage quantization, compute dtype, runtime
    quantization and tokenizer.
    """

    spec: str
    kind: str
    digest: str | None = None
    endpoint: str | None = None
    storage_quant: str | None = None
    compute_dtype: str | None = None
    runtime_quant: str | None = None
    tokenizer: str | None = None
    params: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The identity as results.json records it (``None`` fields dropped)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}

    @property
    def key(self) -> str:
        """sha256 over the canonical identity without ``spec``: the cache key component."""
        body = {k: v for k, v in self.as_json().items() if k != "spec"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


Message = tuple[str, str]
"""One chat turn: ``(role, content)``, role ``system`` or ``user`` (see `runner.backends.chat`)."""


@dataclass(frozen=True)
class ChoiceRequest:
    """Score each continuation after ``context`` (multiple choice).

    ``gold`` is given only to backends that declare ``sees_gold`` (the test-only fake). ``messages``
    (chat models only, `runner.backends.chat`): the conversation the context is; a backend that
    applies a chat template renders them and ignores ``context``.
    """

    context: str
    continuations: tuple[str, ...]
    gold: int | None = None
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True)
class ChoiceResult:
    """Per continuation: summed log-likelihood, whether it is the greedy continuation, token count."""

    logliks: tuple[float, ...]
    greedy: tuple[bool, ...]
    tokens: tuple[int, ...]
    prompt_sha256: str | None = None  # a chat model's rendered prompt (`runner.backends.chat`)


@dataclass(frozen=True)
class GenRequest:
    """Greedy generation of at most ``max_new_tokens``, cut at the first stop sequence."""

    prompt: str
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
    gold: str | None = None
    messages: tuple[Message, ...] = ()  # as in ChoiceRequest


@dataclass(frozen=True)
class GenResult:
    """The generated text (stop sequence excluded) and the log-probability of each generated token."""

    text: str
    token_logprobs: tuple[float, ...]
    prompt_sha256: str | None = None  # a chat model's rendered prompt (`runner.backends.chat`)

    @property
    def confidence(self) -> float | None:
        """Mean token probability of the answer span (DESIGN §4 generate confidence)."""
        if not self.token_logprobs:
            return None
        return float(np.mean(np.exp(np.asarray(self.token_logprobs, dtype=np.float64))))


@runtime_checkable
class Backend(Protocol):
    """A loaded model. Implementations: fake, hf (also gguf), replay, openai."""

    identity: ModelIdentity
    sees_gold: bool

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Summed continuation log-likelihoods, lm-eval's tokenisation."""
        ...

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Greedy generations."""
        ...

    def teacher_forced(self, pairs: Sequence[tuple[str, str]]) -> list[npt.NDArray[np.float32] | None]:
        """Per ``(context, continuation)``: the log-probability distribution at each continuation position.

        ``None`` for a pair the backend cannot give distributions for (an endpoint, a recording). All
        pairs are asked at once so a backend can batch them.
        """
        ...

    def close(self) -> None:
        """Free the model."""
        ...
