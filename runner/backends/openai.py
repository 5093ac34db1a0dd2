"""``openai:BASE_URL#MODEL[?OPTIONS]`` — a model behind any OpenAI-compatible server.

Works with vLLM, llama.cpp, Ollama, ``transformers serve``, ... (standard library only). Options:

- ``api=completions`` (default): ``POST {BASE_URL}/completions`` with the prompt as is. Log-likelihood
  sends ``echo: true, logprobs: 1, max_tokens: 1`` (lm-eval's ``local-completions``) and sums the
  echoed log-probabilities of the tokens whose ``text_offset`` lies in the continuation. A server that
  does not echo prompt log-probabilities (``transformers serve``, llama.cpp's server) gets a clear
  error: score such a model on generate packs.
- ``api=chat``: ``POST {BASE_URL}/chat/completions`` with the pack's ``system_prompt`` (if any) as a
  system message and the prompt as one user message. The server applies the model's chat template,
  which changes the outputs, so the api is part of the model's identity; each example records the
  sha256 of the messages sent (`runner.backends.chat.messages_sha256`). Generate packs only.
- ``num_concurrent=1``: requests in flight at once (results keep request order).
- ``max_retries=3``: retries after a connection error or HTTP 429/5xx, with exponential backoff and
  jitter (a ``Retry-After`` header wins); other 4xx answers and timeouts are not retried.
- ``timeout=300``: seconds to wait for the server's answer to one request.

The names and defaults are lm-eval's ``local-completions`` ones, e.g.
``openai:http://127.0.0.1:8000/v1#smollm2?num_concurrent=4&max_retries=5&timeout=60``. Only the endpoint,
the model name and the api are the identity: the other options never change an output. Generation is
greedy (``temperature: 0``). ``OPENAI_API_KEY``, when set, is sent as a bearer token.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from receipts.errors import InputError, UsageError
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, ModelIdentity
from runner.backends.chat import messages_sha256

__all__ = ["OpenAIBackend", "Options", "parse_spec"]

APIS = {"completions": "/completions", "chat": "/chat/completions"}
BACKOFF_S = 0.5  # first retry waits 0.25-0.5 s, then twice as long each time
MAX_WAIT_S = 60.0  # the longest wait between two attempts, Retry-After included
_EXAMPLE = "openai:http://127.0.0.1:8000/v1#smollm2?num_concurrent=4&max_retries=3&timeout=60"

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Options:
    """How requests are sent; only ``api`` changes what the model answers."""

    api: str = "completions"
    num_concurrent: int = 1
    max_retries: int = 3
    timeout: float = 300.0


def parse_spec(spec: str, body: str) -> tuple[str, str, Options]:
    """``(base_url, model, options)`` of an ``openai:`` spec whose part after ``openai:`` is ``body``.

    Raises:
        UsageError: the spec is malformed or names an unknown option or value.
    """
    url, _, rest = body.partition("#")
    model, _, query = rest.partition("?")
    if not url.startswith(("http://", "https://")) or "?" in url or not model:
        raise UsageError(
            f"model spec {spec!r}: expected openai:BASE_URL#MODEL[?OPTIONS]", hint=f"e.g. {_EXAMPLE}"
        )
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise UsageError(f"model spec {spec!r}: options must be NAME=VALUE joined by &") from None
    given = dict(pairs)
    known = Options.__dataclass_fields__
    names = [name for name, _ in pairs]
    wrong = [name for name in names if name not in known or names.count(name) > 1]
    if wrong:
        raise UsageError(
            f"model spec {spec!r}: unknown or repeated option(s) {sorted(set(wrong))}",
            hint=f"options (each at most once): {', '.join(known)}",
        )
    try:
        options = Options(
            api=given.get("api", Options.api),
            num_concurrent=int(given.get("num_concurrent", Options.num_concurrent)),
            max_retries=int(given.get("max_retries", Options.max_retries)),
            timeout=float(given.get("timeout", Options.timeout)),
        )
    except ValueError:
        raise UsageError(
            f"model spec {spec!r}: num_concurrent, max_retries and timeout are numbers"
        ) from None
    if (
        options.api not in APIS
        or options.num_concurrent < 1
        or options.max_retries < 0
        or not 0 < options.timeout < math.inf
    ):
        raise UsageError(
            f"model spec {spec!r}: out-of-range option in {query!r}",
            hint=f"api is one of {list(APIS)}; num_concurrent >= 1, max_retries >= 0, 0 < timeout < inf",
        )
    return url.rstrip("/"), model, options


class _Transient(Exception):
    """An attempt failed in a way a later attempt may not: connection trouble, HTTP 429 or 5xx."""

    def __init__(self, reason: str, *, http: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.http, self.retry_after = reason, http, retry_after


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter, so clients that failed together do not retry together."""
    ceiling = min(MAX_WAIT_S, BACKOFF_S * 2.0 ** (attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), capped at MAX_WAIT_S."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_WAIT_S)


def _detail(body: bytes) -> str:
    """The server's own error message: OpenAI's ``error.message``, FastAPI's ``detail``, or the text."""
    text = body[:4000].decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        text = str(message or data.get("detail") or data.get("message") or text)
    return text[:300]


def _kept(pieces: Sequence[Any], cut: int) -> int:
    """How many generated tokens start before character ``cut`` of their concatenated text."""
    start = 0
    for index, piece in enumerate(pieces):
        if start >= cut:
            return index
        start += len(str(piece))
    return len(pieces)


class OpenAIBackend:
    """A model behind an OpenAI-compatible completions (or chat completions) endpoint."""

    sees_gold = False

    def __init__(self, spec: str, body: str):
        self.url, self.model, self.options = parse_spec(spec, body)
        self.identity = ModelIdentity(
            spec=spec, kind="openai", endpoint=f"{self.url}#{self.model}", extra={"api": self.options.api}
        )

    # --- transport --------------------------------------------------------------------------------

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST to the api's endpoint, retrying transient failures; the JSON answer.

        Raises:
            InputError: the server is unreachable or failing after every attempt, refused the request
                (4xx), timed out, or answered something that is not a completion.
        """
        where = self.url + APIS[self.options.api]
        data = json.dumps({"model": self.model, **payload}).encode("utf-8")
        attempt = 1
        while True:
            try:
                return self._attempt(where, data)
            except _Transient as exc:
                if attempt > self.options.max_retries:
                    raise self._exhausted(where, attempt, exc) from None
                _wait(exc.retry_after if exc.retry_after is not None else _backoff(attempt))
            attempt += 1

    @staticmethod
    def _exhausted(where: str, attempts: int, failure: _Transient) -> InputError:
        tries = f"{attempts} attempt{'s' * (attempts > 1)}"
        if failure.http:
            return InputError(
                f"{where} failed {tries}: {failure.reason}",
                hint="the server is overloaded or failing: see its log; lower num_concurrent or raise "
                "max_retries in the spec",
            )
        return InputError(
            f"cannot reach {where} after {tries} ({failure.reason})",
            hint="is the server running at that URL? (raise max_retries in the spec to wait longer)",
        )

    def _attempt(self, where: str, data: bytes) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the user names the endpoint
            where, data=data, headers={"Content-Type": "application/json", **self._auth()}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.options.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = f"HTTP {exc.code}: {_detail(exc.read())}"
            if exc.code == 429 or exc.code >= 500:
                wait = _retry_after(exc.headers.get("Retry-After"))
                raise _Transient(detail, http=True, retry_after=wait) from None
            raise InputError(
                f"{where} refused the request: {detail}", hint=self._refusal_hint(exc.code)
            ) from None
        except urllib.error.URLError as exc:  # refused, reset, DNS, or a connect timeout
            raise _Transient(str(exc.reason), http=False) from None
        except TimeoutError:
            # Not retried: a slow server stays slow, and the abandoned request still holds its slot there.
            raise InputError(
                f"{where}: no answer within {self.options.timeout:g} s (timeout={self.options.timeout:g})",
                hint=f"raise it in the spec (…#{self.model}?timeout=600) or lower num_concurrent",
            ) from None
        except (ConnectionError, http.client.HTTPException) as exc:  # dropped mid-answer
            raise _Transient(f"{type(exc).__name__}: {exc}", http=False) from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise InputError(f"{where} did not answer JSON: {raw[:200]!r}") from None
        if not isinstance(answer, dict) or not answer.get("choices"):
            raise InputError(f"{where} answered without choices: {str(answer)[:200]}")
        return answer

    def _refusal_hint(self, code: int) -> str:
        if code in (401, 403):
            return "set OPENAI_API_KEY to the server's key"
        if code == 404:
            other = "chat" if self.options.api == "completions" else "completions"
            return (
                f"is {self.url} the API root (often ending in /v1)? a server without it may take api={other}"
            )
        return f"is {self.model!r} the model name the server knows? see the server's log"

    @staticmethod
    def _auth() -> dict[str, str]:
        key = os.environ.get("OPENAI_API_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` with at most ``num_concurrent`` in flight; results in ``items`` order."""
        workers = min(self.options.num_concurrent, len(items))
        if workers <= 1:
            return [fn(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai")
        try:
            futures = [pool.submit(fn, item) for item in items]
            return [future.result() for future in futures]
        finally:
            # after a failure or Ctrl-C the queued requests are dropped, not sent
            pool.shutdown(wait=False, cancel_futures=True)

    # --- scoring ----------------------------------------------------------------------------------

    def _no_logprobs(self) -> InputError:
        return InputError(
            f"server {self.url} ({self.model}) does not return prompt logprobs (echo+logprobs)",
            hint="score this model on generate packs, or serve it with a server that does, e.g. vLLM",
        )

    def _loglik(self, pair: tuple[str, str]) -> tuple[float, bool, int]:
        context, continuation = pair
        # max_tokens 1, not 0: lm-eval's choice, and some servers refuse 0. The one generated token
        # lies past the prompt's end and is left out below.
        data = self._post(
            {"prompt": context + continuation, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0}
        )
        logprobs = data["choices"][0].get("logprobs") or {}
        offsets, values = logprobs.get("text_offset"), logprobs.get("token_logprobs")
        tops = logprobs.get("top_logprobs") or []
        if not offsets or not values:
            raise self._no_logprobs()
        start, end = len(context), len(context) + len(continuation)
        total, greedy, count = 0.0, True, 0
        for index, (offset, value) in enumerate(zip(offsets, values, strict=False)):
            if not start <= offset < end or value is None:
                continue
            total += float(value)
            count += 1
            top = tops[index] if index < len(tops) and isinstance(tops[index], dict) else {}
            if top and max(top.values()) > float(value) + 1e-9:
                greedy = False
        if count == 0:
            raise InputError(
                f"{self.url}: no tokens of the continuation {continuation!r} came back",
                hint="the server's echoed text_offset values do not cover the prompt",
            )
        return total, greedy, count

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Echoed log-probabilities of each continuation, ``num_concurrent`` requests at a time.

        Raises:
            UsageError: ``api=chat``, which has no echoed prompt log-probabilities.
            InputError: the server does not return them either.
        """
        if self.options.api == "chat":
            raise UsageError(
                f"model spec {self.identity.spec!r}: api=chat has no prompt logprobs to score choices with",
                hint="score it on generate packs, or use api=completions on a server with echo+logprobs",
            )
        pairs = [(req.context, cont) for req in requests for cont in req.continuations]
        scored = iter(self._map(self._loglik, pairs))
        out = []
        for req in requests:
            own = [next(scored) for _ in req.continuations]
            out.append(
                ChoiceResult(tuple(s[0] for s in own), tuple(s[1] for s in own), tuple(s[2] for s in own))
            )
        return out

    def _generate_one(self, req: GenRequest) -> GenResult:
        payload: dict[str, Any] = {"max_tokens": req.max_new_tokens, "temperature": 0}
        if req.stop:
            payload["stop"] = list(req.stop)
        # api=chat: the pack's system prompt (if any) and the prompt as messages (`runner.backends.chat`)
        messages = req.messages or (("user", req.prompt),)
        chat = [{"role": role, "content": content} for role, content in messages]
        choice = self._post(
            {"prompt": req.prompt, "logprobs": 1, **payload}
            if self.options.api == "completions"
            else {"messages": chat, "logprobs": True, **payload}
        )["choices"][0]
        logprobs = choice.get("logprobs") or {}
        if self.options.api == "completions":
            text = str(choice.get("text") or "")
            values = list(logprobs.get("token_logprobs") or [])
            pieces = list(logprobs.get("tokens") or [])
        else:
            text = str((choice.get("message") or {}).get("content") or "")
            content = [c for c in logprobs.get("content") or [] if isinstance(c, dict)]
            values, pieces = [c.get("logprob") for c in content], [c.get("token", "") for c in content]
        # Cut as the hf backend does (servers differ on whether the stop text is returned).
        cut = min([text.index(s) for s in req.stop if s and s in text], default=len(text))
        if cut < len(text):
            text = text[:cut]
            values = values[: _kept(pieces, cut)] if len(pieces) == len(values) else values
        sha = messages_sha256(messages) if self.options.api == "chat" else None
        return GenResult(text, tuple(float(v) for v in values if v is not None), sha)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Greedy completions, ``num_concurrent`` requests at a time."""
        return self._map(self._generate_one, requests)

    def teacher_forced(self, pairs: Sequence[tuple[str, str]]) -> list[npt.NDArray[np.float32] | None]:
        """Endpoints return top-k, not full distributions: no token-level KL."""
        return [None for _ in pairs]

    def close(self) -> None:
        """Nothing to free."""
