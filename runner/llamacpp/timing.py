"""Greedy decoding through llama.cpp's C API, driven the way ``llama-bench`` drives it, for the bench worker.

`receipts bench llamacpp:FILE` times the calls of a `NativeDecoder` in its worker process
(`runner.bench.worker`), exactly as it times the transformers backend: ``decode_batch`` then
``decode(batch, G, on_step)``, with ``on_step`` called as each new token exists.

What one call is, and why it measures what ``llama-bench`` measures (tools/llama-bench/llama-bench.cpp
at the pinned commit):

- the KV cache is cleared, then the N prompt tokens are decoded in batches of ``n_batch`` (2048, split
  by llama.cpp into ``n_ubatch`` 512) with only the last position's logits computed
  (``llama_batch_get_one``) — llama-bench's ``test_prompt``, its ``pp`` test. The first new token is the
  argmax of those logits: TTFT, and prefill tok/s = N / TTFT;
- each next token is one single-token decode at the next position (one ``llama_decode`` of one token,
  its logits, the argmax) — llama-bench's ``test_gen``, its ``tg`` test, here after a context of N
  tokens: ``llama-bench -n G -d N``. decode tok/s = 1 / TPOT.

Everything else is llama.cpp's own defaults, as llama-bench takes them: ``llama_model_default_params``
(weights mmapped, CPU repacking on), ``llama_context_default_params`` (flash attention auto, f16 KV
cache), ``n_ctx`` = N + G, the same thread count for prompt and generation, and a ggml thread pool with
the default polling attached to the context. Greedy with exactly G new tokens: an end-of-generation
token is never chosen (``min_new_tokens = max_new_tokens``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from receipts.errors import InputError
from runner.backends.extras import requires
from runner.llamacpp.model import check_gguf

__all__ = ["N_BATCH", "N_UBATCH", "NativeDecoder", "NativeTokenizer", "Prompt", "bindings"]

N_BATCH = 2048
N_UBATCH = 512
"""llama.cpp's (and llama-bench's) default logical and physical batch sizes."""
_MAX_THREADS = 512  # GGML_MAX_N_THREADS: the cpumask length of ggml_threadpool_params


class _ThreadpoolParams(ctypes.Structure):
    _fields_ = (  # struct ggml_threadpool_params (ggml.h)
        ("cpumask", ctypes.c_bool * _MAX_THREADS),
        ("n_threads", ctypes.c_int),
        ("prio", ctypes.c_int),
        ("poll", ctypes.c_uint32),
        ("strict_cpu", ctypes.c_bool),
        ("paused", ctypes.c_bool),
    )


@cache
def bindings() -> Any:
    """``llama_cpp.llama_cpp`` (the ctypes bindings), imported once, with llama.cpp's log quiet below errors.

    Raises:
        MissingDependency: the llama_cpp bindings are not installed.
    """
    with requires("runner", "a llamacpp: model"):
        import llama_cpp

    llama_cpp._logger.set_verbose(False)
    low = llama_cpp.llama_cpp
    low.llama_backend_init()
    return low


@dataclass(frozen=True)
class Prompt:
    """One prompt, as llama.cpp reads it: the token array and a pointer to each ``n_batch`` slice."""

    tokens: Any
    chunks: tuple[tuple[Any, int], ...]


class NativeTokenizer:
    """The GGUF's own tokenizer, with the calls the bench makes of a transformers tokenizer."""

    def __init__(self, low: Any, vocab: Any):
        """Wrap the ``vocab`` of a loaded model."""
        self._low, self._vocab = low, vocab

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text`` (no BOS unless ``add_special_tokens``)."""
        data = text.encode("utf-8")
        room = len(data) + 8  # a token is at least one byte; room for the special tokens too
        out = (ctypes.c_int32 * room)()
        count = self._low.llama_tokenize(self._vocab, data, len(data), out, room, add_special_tokens, False)
        if count < 0:
            raise ValueError(f"llama_tokenize needs {-count} tokens for {len(data)} bytes")
        return list(out[:count])

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``."""
        tokens = (ctypes.c_int32 * len(ids))(*ids)
        room = 16 * len(ids) + 16
        buf = ctypes.create_string_buffer(room)
        size = self._low.llama_detokenize(self._vocab, tokens, len(ids), buf, room, False, False)
        return bytes(buf.raw[: max(size, 0)]).decode("utf-8", errors="replace")

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenise each text (the bench times this apart from the model)."""
        return [self.encode(text) for text in texts]


class NativeDecoder:
    """One GGUF in llama.cpp on the CPU: a context of ``n_ctx`` tokens and a thread pool of ``threads``."""

    def __init__(self, path: Path, *, n_ctx: int, threads: int):
        """Load the file and make its context (the worker times this as the load).

        Raises:
            InputError: not a GGUF file, or llama.cpp cannot load it or make the context.
            MissingDependency: the llama_cpp bindings are not installed.
        """
        self.path = check_gguf(Path(path))
        low = self._low = bindings()
        self.model = self.ctx = self._pool = None
        self.model = low.llama_model_load_from_file(str(self.path).encode(), low.llama_model_default_params())
        if not self.model:
            raise InputError(
                f"llama.cpp could not load {self.path.name}",
                file=self.path,
                hint="the file is truncated, corrupt, or an architecture this llama.cpp build does not know",
            )
        params = low.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, N_BATCH, N_UBATCH
        params.n_threads = params.n_threads_batch = threads
        self.ctx = low.llama_init_from_model(self.model, params)
        if not self.ctx:
            self.close()
            raise InputError(
                f"llama.cpp could not make a {n_ctx}-token context for {self.path.name}",
                file=self.path,
                hint="a smaller --prompt-tokens/--max-context needs less memory",
            )
        self._pool = self._attach_pool(threads)
        self.vocab = low.llama_model_get_vocab(self.model)
        self.n_vocab = int(low.llama_vocab_n_tokens(self.vocab))
        self.n_batch = min(N_BATCH, int(low.llama_n_ctx(self.ctx)))
        self.tokenizer = NativeTokenizer(low, self.vocab)
        self._memory = low.llama_get_memory(self.ctx)
        self._one = (ctypes.c_int32 * 1)()
        self.generated: list[int] = []
        """The tokens the last `decode` chose."""

    def _attach_pool(self, threads: int) -> Any:
        """A ggml thread pool of ``threads``, default polling, attached to the context as llama-bench does."""
        lib = self._low._lib
        lib.ggml_threadpool_params_default.restype = _ThreadpoolParams
        lib.ggml_threadpool_params_default.argtypes = (ctypes.c_int,)
        lib.ggml_threadpool_new.restype = ctypes.c_void_p
        lib.ggml_threadpool_new.argtypes = (ctypes.POINTER(_ThreadpoolParams),)
        lib.llama_attach_threadpool.restype = None
        lib.llama_attach_threadpool.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
        settings = lib.ggml_threadpool_params_default(threads)
        pool = lib.ggml_threadpool_new(ctypes.byref(settings))
        if not pool:
            raise InputError(f"ggml could not start a pool of {threads} threads", file=self.path)
        lib.llama_attach_threadpool(self.ctx, pool, None)
        self.poll = int(settings.poll)
        return pool

    @property
    def facts(self) -> dict[str, Any]:
        """What the footprint records of the loaded model and its context."""
        low = self._low
        return {
            "params": int(low.llama_model_n_params(self.model)),
            "weights_bytes": int(low.llama_model_size(self.model)),
            "n_ctx_train": int(low.llama_model_n_ctx_train(self.model)),
            "threads": {
                "llama_n_threads": int(low.llama_n_threads(self.ctx)),
                "llama_n_threads_batch": int(low.llama_n_threads_batch(self.ctx)),
                "threadpool_poll": self.poll,
            },
            "context": {
                "n_ctx": int(low.llama_n_ctx(self.ctx)),
                "n_batch": self.n_batch,
                "n_ubatch": min(N_UBATCH, self.n_batch),
            },
        }

    def decode_batch(self, prompts: Sequence[Sequence[int]]) -> Prompt:
        """The one prompt a call decodes (llama.cpp serves one request at a time here)."""
        if len(prompts) != 1:
            raise ValueError("a llama.cpp bench point decodes one prompt at a time")
        ids = list(prompts[0])
        tokens = (ctypes.c_int32 * len(ids))(*ids)
        base = ctypes.addressof(tokens)
        pointer = ctypes.POINTER(ctypes.c_int32)
        chunks = tuple(
            (ctypes.cast(base + 4 * start, pointer), min(self.n_batch, len(ids) - start))
            for start in range(0, len(ids), self.n_batch)
        )
        return Prompt(tokens, chunks)

    def decode(self, prompt: Prompt, new_tokens: int, on_step: Callable[[], None]) -> int:
        """Greedy decoding of exactly ``new_tokens`` tokens after ``prompt``; return how many were made.

        ``on_step`` runs as each new token is chosen, so the caller reads TTFT and inter-token latency.

        Raises:
            InputError: llama.cpp refused a decode (the context is full).
        """
        low, ctx = self._low, self.ctx
        low.llama_memory_clear(self._memory, True)
        for pointer, count in prompt.chunks:
            self._check(low.llama_decode(ctx, low.llama_batch_get_one(pointer, count)))
        token = self._greedy()
        on_step()
        one, made = self._one, [token]
        for _ in range(new_tokens - 1):
            one[0] = token
            self._check(low.llama_decode(ctx, low.llama_batch_get_one(one, 1)))
            token = self._greedy()
            on_step()
            made.append(token)
        self.generated = made
        return len(made)

    def _greedy(self) -> int:
        """The most likely next token that does not end generation."""
        row = np.ctypeslib.as_array(self._low.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
        token = int(row.argmax())
        while self._low.llama_vocab_is_eog(self.vocab, token):
            row[token] = -np.inf  # llama.cpp's own logits buffer, rewritten by the next decode
            token = int(row.argmax())
        return token

    def _check(self, status: int) -> None:
        if status != 0:
            raise InputError(f"llama_decode returned {status} for {self.path.name}", file=self.path)

    def close(self) -> None:
        """Free the context, the thread pool and the model."""
        low = self._low
        if self.ctx:
            low.llama_free(self.ctx)
        if self._pool:
            low._lib.ggml_threadpool_free.argtypes = (ctypes.c_void_p,)
            low._lib.ggml_threadpool_free(self._pool)
        if self.model:
            low.llama_model_free(self.model)
        self.ctx = self._pool = self.model = None
