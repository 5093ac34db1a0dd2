"""``openai:BASE_URL#MODEL`` — any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, ...).

Log-likelihood uses ``POST {BASE_URL}/completions`` with ``echo: true, logprobs: 1, max_tokens: 0``
(the lm-eval ``local-completions`` approach): the continuation's tokens are those whose
``text_offset`` is at or past the end of the context. Servers that refuse echo+logprobs get a clear
error: score such a model on generate tasks. Generation is greedy (``temperature: 0``) through the
same endpoint. Only the standard library is used; the identity is the endpoint and model name.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from receipts.errors import InputError, UsageError
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, ModelIdentity

__all__ = ["OpenAIBackend"]

TIMEOUT_S = 120.0


class OpenAIBackend:
    """A model behind an OpenAI-compatible completions endpoint."""

    sees_gold = False

    def __init__(self, spec: str, body: str):
        url, _, model = body.partition("#")
        if not url.startswith(("http://", "https://")) or not model:
            raise UsageError(
                f"model spec {spec!r}: expected openai:BASE_URL#MODEL",
                hint="e.g. openai:http://127.0.0.1:8000/v1#smollm2",
            )
        self.url = url.rstrip("/")
        self.model = model
        self.identity = ModelIdentity(spec=spec, kind="openai", endpoint=f"{self.url}#{model}")
        self._echo_ok: bool | None = None

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the user names the endpoint
            f"{self.url}/completions",
            data=json.dumps({"model": self.model, **payload}).encode("utf-8"),
            headers={"Content-Type": "application/json", **self._auth()},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                data = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise InputError(
                f"{self.url}/completions refused the request: HTTP {exc.code} {detail}"
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise InputError(
                f"{self.url}: cannot reach the endpoint ({exc})", hint="is the server running at that URL?"
            ) from None
        except json.JSONDecodeError:
            raise InputError(f"{self.url}/completions did not answer JSON") from None
        if not isinstance(data, dict) or not data.get("choices"):
            raise InputError(f"{self.url}/completions answered without choices: {str(data)[:200]}")
        return data

    @staticmethod
    def _auth() -> dict[str, str]:
        key = os.environ.get("OPENAI_API_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _loglik(self, context: str, continuation: str) -> tuple[float, bool, int]:
        data = self._post(
            {"prompt": context + continuation, "max_tokens": 0, "echo": True, "logprobs": 1, "temperature": 0}
        )
        logprobs = data["choices"][0].get("logprobs") or {}
        offsets, values = logprobs.get("text_offset"), logprobs.get("token_logprobs")
        tops = logprobs.get("top_logprobs") or []
        if not offsets or not values:
            raise InputError(
                f"{self.url} does not return echoed prompt log-probabilities",
                hint="this endpoint cannot score multiple-choice by log-likelihood; use a generate pack",
            )
        start = len(context)
        total, greedy, count = 0.0, True, 0
        for index, (offset, value) in enumerate(zip(offsets, values, strict=False)):
            if offset < start or value is None:
                continue
            total += float(value)
            count += 1
            top = tops[index] if index < len(tops) and isinstance(tops[index], dict) else {}
            if top and max(top.values()) > float(value) + 1e-9:
                greedy = False
        if count == 0:
            raise InputError(f"{self.url}: no tokens of the continuation {continuation!r} came back")
        return total, greedy, count

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Echoed log-probabilities of each continuation."""
        out = []
        for req in requests:
            scored = [self._loglik(req.context, cont) for cont in req.continuations]
            out.append(
                ChoiceResult(
                    tuple(s[0] for s in scored), tuple(s[1] for s in scored), tuple(s[2] for s in scored)
                )
            )
        return out

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Greedy completions."""
        out = []
        for req in requests:
            payload: dict[str, Any] = {
                "prompt": req.prompt,
                "max_tokens": req.max_new_tokens,
                "temperature": 0,
                "logprobs": 1,
            }
            if req.stop:
                payload["stop"] = list(req.stop)
            choice = self._post(payload)["choices"][0]
            values = (choice.get("logprobs") or {}).get("token_logprobs") or []
            text = str(choice.get("text", ""))
            for stop in req.stop:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            out.append(GenResult(text, tuple(float(v) for v in values if v is not None)))
        return out

    def teacher_forced(self, context: str, continuation: str) -> npt.NDArray[np.float32] | None:
        """Endpoints return top-k, not full distributions: no token-level KL."""
        return None

    def close(self) -> None:
        """Nothing to free."""
