"""``fake:NAME[?skill=..&abstain=..&seed=..&delay=..&fail=..]`` — a deterministic test backend (like mockllm).

It is the one backend that sees gold answers: with probability ``skill`` (decided per prompt by a hash,
so reruns agree) it prefers the gold choice or repeats the gold text; otherwise it prefers another
choice or says something else. ``abstain`` is the probability of answering "I don't know"; ``fail``
the probability that a prompt raises (to test error recording); ``delay`` sleeps that many seconds
per request (to test interruption). Nothing about it is random at run time: the same spec and prompt
always give the same output.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from urllib.parse import parse_qsl

import numpy as np
import numpy.typing as npt

from receipts.errors import UsageError
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, ModelIdentity

__all__ = ["FakeBackend"]

_PARAMS = {"skill": 0.5, "abstain": 0.0, "seed": 0.0, "delay": 0.0, "fail": 0.0}
VOCAB = 64


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FakeBackend:
    """Deterministic pseudo-model; see the module docstring for the spec."""

    sees_gold = True

    def __init__(self, spec: str, body: str):
        name, _, query = body.partition("?")
        if not name:
            raise UsageError(f"model spec {spec!r}: fake needs a name", hint="e.g. fake:teacher?skill=0.9")
        self.name = name
        self.params = dict(_PARAMS)
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key not in _PARAMS:
                raise UsageError(
                    f"model spec {spec!r}: unknown fake parameter {key!r}", hint=f"use {_PARAMS}"
                )
            try:
                self.params[key] = float(value)
            except ValueError:
                raise UsageError(f"model spec {spec!r}: {key}={value!r} is not a number") from None
        for key in ("skill", "abstain", "fail"):
            if not 0.0 <= self.params[key] <= 1.0:
                raise UsageError(f"model spec {spec!r}: {key} must be between 0 and 1")
        tag = hashlib.sha256(body.encode("utf-8")).hexdigest()
        self.identity = ModelIdentity(spec=spec, kind="fake", endpoint=f"fake:{body}", tokenizer="fake-chars")
        self._tag = tag

    def _u(self, *parts: object) -> float:
        return _unit(self._tag, self.params["seed"], *parts)

    def _serve(self, prompt: str) -> None:
        if self.params["delay"] > 0:
            time.sleep(self.params["delay"])
        if self._u("fail", prompt) < self.params["fail"]:
            raise RuntimeError(f"fake model {self.name} fails on this prompt (fail={self.params['fail']})")

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Choice log-likelihoods: the preferred choice gets the highest, the rest hash-spread below it.

        A request of one continuation (a text scored after its prompt) gets -0.2 to -0.8 nats per UTF-8 byte.
        """
        out = []
        for req in requests:
            self._serve(req.context)
            n = len(req.continuations)
            if n == 1:  # one text scored after a prompt (sequence divergence): a log-probability, per byte
                cont = req.continuations[0]
                per_byte = 0.2 + 0.6 * self._u("seq", req.context, cont)
                out.append(
                    ChoiceResult((-per_byte * max(1, len(cont.encode("utf-8"))),), (True,), (len(cont),))
                )
                continue
            right = req.gold is not None and self._u("mc", req.context) < self.params["skill"]
            if right and req.gold is not None:
                preferred = req.gold
            else:
                wrong = [i for i in range(n) if i != req.gold] or list(range(n))
                preferred = wrong[int(self._u("pick", req.context) * len(wrong))]
            logliks = []
            for i, cont in enumerate(req.continuations):
                base = -1.0 - 4.0 * self._u("ll", req.context, cont)
                logliks.append(
                    base + (3.0 * (1.0 + self._u("margin", req.context)) if i == preferred else -2.0)
                )
            tokens = tuple(max(1, len(c.split())) for c in req.continuations)
            greedy = tuple(i == preferred for i in range(n))
            out.append(ChoiceResult(tuple(logliks), greedy, tokens))
        return out

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Gold text with probability ``skill``, "I don't know" with ``abstain``, else a wrong answer."""
        out = []
        for req in requests:
            self._serve(req.prompt)
            u = self._u("gen", req.prompt)
            if u < self.params["abstain"]:
                text = "I don't know."
            elif req.gold is not None and self._u("right", req.prompt) < self.params["skill"]:
                text = req.gold
            else:
                text = f"answer-{int(self._u('wrong', req.prompt) * 1000)}"
            words = text.split()[: req.max_new_tokens] or [""]
            text = " ".join(words)
            for stop in req.stop:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            logprobs = tuple(math.log(0.2 + 0.8 * self._u("p", req.prompt, i)) for i in range(len(words)))
            out.append(GenResult(text, logprobs))
        return out

    def teacher_forced(self, pairs: Sequence[tuple[str, str]]) -> list[npt.NDArray[np.float32] | None]:
        """A deterministic distribution per character of each continuation over a 64-symbol vocabulary."""
        return [self._distributions(context, continuation) for context, continuation in pairs]

    def _distributions(self, context: str, continuation: str) -> npt.NDArray[np.float32]:
        seed = int(self._u("tf", context) * 2**63)
        logits = 4.0 * np.random.default_rng(seed).random((max(1, len(continuation)), VOCAB))
        logits -= logits.max(axis=1, keepdims=True)
        return np.asarray(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)), dtype=np.float32)

    def close(self) -> None:
        """Nothing to free."""
