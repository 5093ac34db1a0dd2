"""One sequence through a llama.cpp context, with the KV cache rewound between continuations.

A `Decoder` is a llama.cpp context on a `runner.llamacpp.model.NativeModel`'s weights that keeps logits
only for the positions a caller asks for, and can drop the cache from a position on (`Decoder.rewind`),
so a multiple-choice item's context is evaluated once and each choice continues from it.

Why one item, one layout: llama.cpp's numbers depend on where a token sits in the KV cache and on
how many tokens share its ``llama_decode`` (SIMD lanes of the softmax and of the attention-weighted
sum; matrix kernels picked by batch size). In float these are last-bit effects, but a Q8_0 matmul
rounds its activations to 8 bits and a last-bit change can flip a rounding: on SmolLM2-135M Q8_0,
packing 40 capitals-mc items into shared decodes moved a choice's log-likelihood by up to 0.28 nats
from its value alone (2026-12-07). So every continuation is evaluated at the same cells, right
after its context, whatever else was asked: an item's numbers depend on the item alone (resume,
cache hits and ``verify --rerun`` see the same values). They do not depend on the thread count either
(each output element is computed by one thread): 30 capitals-mc items at 2 threads gave the bits of 1.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from receipts.errors import InputError

__all__ = ["Decoder"]


class Decoder:
    """A one-sequence llama.cpp context over already loaded weights, logits kept only where asked."""

    def __init__(self, llm: Any, *, n_ctx: int, n_batch: int, threads: int, label: Any):
        """Open a context of ``n_ctx`` KV cells on ``llm``'s model (a ``llama_cpp.Llama``).

        Raises:
            InputError: llama.cpp cannot create the context (e.g. out of memory).
        """
        import llama_cpp
        from llama_cpp import _internals

        self._lib = llama_cpp
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(n_batch, n_ctx)
        params.n_seq_max = 1
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as NativeModel: f32 softmax
        params.embeddings = False
        params.no_perf = True
        try:
            self._ctx: Any = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as exc:
            raise InputError(f"llama.cpp could not open a {n_ctx}-token context: {exc}", file=label) from exc
        self._vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self.n_vocab = int(llm.n_vocab())
        self.n_ctx = n_ctx
        self.n_batch = int(params.n_batch)
        self._batch: Any = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self.label = label

    @property
    def threads(self) -> tuple[int, int]:
        """The threads llama.cpp uses: (generation, prompt processing)."""
        ctx = self._ctx.ctx
        return int(self._lib.llama_n_threads(ctx)), int(self._lib.llama_n_threads_batch(ctx))

    def clear(self) -> None:
        """Empty the KV cache (its cells are freed, not zeroed: a freed cell is masked out exactly)."""
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx.ctx), False)

    def rewind(self, position: int) -> None:
        """Drop the cache from ``position`` on (the next tokens then sit where the dropped ones did)."""
        self._ctx.kv_cache_seq_rm(0, position, -1)

    def is_eog(self, token: int) -> bool:
        """Whether ``token`` ends generation (EOS, EOT, or another end-of-generation token)."""
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def decode(self, tokens: Sequence[int], start: int, keep: Sequence[bool]) -> npt.NDArray[np.float32]:
        """Evaluate ``tokens`` at positions ``start, start + 1, ...``; the logits where ``keep``, in order.

        Tokens go in ``n_batch`` at a time.

        Raises:
            InputError: llama.cpp refused the batch (e.g. the cache is full).
        """
        out = np.empty((sum(map(bool, keep)), self.n_vocab), dtype=np.float32)
        row = 0
        batch = self._batch.batch
        floats = ctypes.POINTER(ctypes.c_float)
        for offset in range(0, len(tokens), self.n_batch):
            chunk = tokens[offset : offset + self.n_batch]
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + offset + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = bool(keep[offset + i])
            batch.n_tokens = len(chunk)
            status = self._lib.llama_decode(self._ctx.ctx, batch)
            if status != 0:
                raise InputError(
                    f"llama.cpp could not evaluate {len(chunk)} tokens at position {start + offset} "
                    f"(llama_decode returned {status})",
                    file=self.label,
                    hint="the context is full: this is a bug in receipts' llamacpp backend, please report it",
                )
            for i in range(len(chunk)):
                if keep[offset + i]:
                    pointer = ctypes.cast(self._lib.llama_get_logits_ith(self._ctx.ctx, i), floats)
                    out[row] = np.ctypeslib.as_array(pointer, (self.n_vocab,))
                    row += 1
        return out

    def close(self) -> None:
        """Free the context (before its model)."""
        self._batch.close()
        self._ctx.close()
