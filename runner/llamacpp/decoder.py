"""A llama.cpp context for scoring and decoding: one item at a time, its choices as sequences of one batch.

A `Decoder` is a llama.cpp context on a `runner.llamacpp.model.NativeModel`'s weights that keeps logits
only for the positions a caller asks for. `Decoder.decode` evaluates one sequence (generation);
`Decoder.decode_tree` evaluates a multiple-choice item in one ``llama_decode`` (``n_batch`` tokens a call:
a longer item takes several): its context once, shared by a sequence per choice, then every choice's
tokens on its own sequence, as llama.cpp's own multiple-choice scorer lays out HellaSwag
(``tools/perplexity``: a common prefix with one sequence id per ending, a unified KV cache). Before,
each choice followed its context in a call of its own (the cache rewound between them): on SmolLM2-135M
Q8_0 at 2 threads, 40 capitals-mc items spent 3.9 s of 8.6 in 160 calls of ~3 tokens each, bound by
reading the weights once per call (2026-12-07).

Why one item, one layout: llama.cpp's numbers depend on where a token sits in the KV cache and on
how many tokens share its ``llama_decode`` (SIMD lanes of the softmax and of the attention-weighted
sum; matrix kernels picked by batch size). In float these are last-bit effects, but a Q8_0 matmul
rounds its activations to 8 bits and a last-bit change can flip a rounding: on SmolLM2-135M Q8_0,
packing 40 capitals-mc items into shared decodes moved a choice's log-likelihood by up to 0.28 nats
from its value alone (2026-12-07). So each item is evaluated alone, from an empty cache, in a layout
that is a function of the item: its numbers depend on the item alone (resume, cache hits and
``verify --rerun`` see the same values), though a choice's last bits depend on the item's other
choices. They do not depend on the thread count either (each output element is computed by one
thread): 30 capitals-mc items at 2 threads gave the bits of 1, in the old layout and in this one.
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
    """A llama.cpp context over already loaded weights, logits kept only where asked."""

    def __init__(self, llm: Any, *, n_ctx: int, n_batch: int, threads: int, label: Any, n_seq: int = 1):
        """Open a context of ``n_ctx`` KV cells on ``llm``'s model (a ``llama_cpp.Llama``).

        ``n_seq``: the sequences one batch may hold (`decode_tree`'s choices); the KV cache is unified,
        so any one sequence may use all ``n_ctx`` cells.

        Raises:
            InputError: llama.cpp cannot create the context (e.g. out of memory).
        """
        import llama_cpp
        from llama_cpp import _internals

        self._lib = llama_cpp
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(n_batch, n_ctx)
        params.n_seq_max = n_seq
        params.kv_unified = True
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
        self.n_seq = n_seq
        self._batch: Any = _internals.LlamaBatch(
            n_tokens=self.n_batch, embd=0, n_seq_max=n_seq, verbose=False
        )
        self.label = label

    @property
    def threads(self) -> tuple[int, int]:
        """The threads llama.cpp uses: (generation, prompt processing)."""
        ctx = self._ctx.ctx
        return int(self._lib.llama_n_threads(ctx)), int(self._lib.llama_n_threads_batch(ctx))

    def clear(self) -> None:
        """Empty the KV cache (its cells are freed, not zeroed: a freed cell is masked out exactly)."""
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx.ctx), False)

    def is_eog(self, token: int) -> bool:
        """Whether ``token`` ends generation (EOS, EOT, or another end-of-generation token)."""
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def decode(self, tokens: Sequence[int], start: int, keep: Sequence[bool]) -> npt.NDArray[np.float32]:
        """Evaluate ``tokens`` on sequence 0 from position ``start`` on; the logits where ``keep``, in order.

        Raises:
            InputError: llama.cpp refused the batch (e.g. the cache is full).
        """
        pairs = enumerate(zip(tokens, keep, strict=True))
        return self._run([(t, start + i, (0,), bool(k)) for i, (t, k) in pairs])

    def decode_tree(
        self, prefix: Sequence[int], tails: Sequence[Sequence[int]]
    ) -> tuple[npt.NDArray[np.float32], list[npt.NDArray[np.float32]]]:
        """Evaluate ``prefix`` once for every tail, then each tail right after it on a sequence of its own.

        Returns the logits of the prefix's last position ``[1, vocab]`` and, per tail, those of each of
        its positions ``[len(tail), vocab]``. The cache must be empty; it holds all of it afterwards.

        Raises:
            InputError: more tails than sequences, more tokens than cells, or llama.cpp refused the batch.
        """
        if not 0 < len(tails) <= self.n_seq or len(prefix) + sum(map(len, tails)) > self.n_ctx:
            raise InputError(
                f"{len(tails)} continuation(s) of {sum(map(len, tails))} tokens after {len(prefix)} do not "
                f"fit {self.n_seq} sequences of a {self.n_ctx}-token context",
                file=self.label,
                hint="this is a bug in receipts' llamacpp backend, please report it",
            )
        seqs = tuple(range(len(tails)))
        last = len(prefix) - 1
        entries = [(t, i, seqs, i == last) for i, t in enumerate(prefix)]
        for s, tail in enumerate(tails):
            entries += [(t, len(prefix) + i, (s,), True) for i, t in enumerate(tail)]
        rows = self._run(entries)
        out, at = [], 1
        for tail in tails:
            out.append(rows[at : at + len(tail)])
            at += len(tail)
        return rows[:1], out

    def _run(self, entries: Sequence[tuple[int, int, tuple[int, ...], bool]]) -> npt.NDArray[np.float32]:
        """Evaluate ``(token, position, sequence ids, keep)`` entries, ``n_batch`` per call; kept logits."""
        out = np.empty((sum(1 for *_, keep in entries if keep), self.n_vocab), dtype=np.float32)
        row = 0
        batch = self._batch.batch
        floats = ctypes.POINTER(ctypes.c_float)
        for offset in range(0, len(entries), self.n_batch):
            chunk = entries[offset : offset + self.n_batch]
            for i, (token, position, seqs, keep) in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = position
                batch.n_seq_id[i] = len(seqs)
                for j, seq in enumerate(seqs):
                    batch.seq_id[i][j] = seq
                batch.logits[i] = keep
            batch.n_tokens = len(chunk)
            status = self._lib.llama_decode(self._ctx.ctx, batch)
            if status != 0:
                raise InputError(
                    f"llama.cpp could not evaluate {len(chunk)} tokens at position {chunk[0][1]} "
                    f"(llama_decode returned {status})",
                    file=self.label,
                    hint="the context is full: this is a bug in receipts' llamacpp backend, please report it",
                )
            for i, (*_, keep) in enumerate(chunk):
                if keep:
                    pointer = ctypes.cast(self._lib.llama_get_logits_ith(self._ctx.ctx, i), floats)
                    out[row] = np.ctypeslib.as_array(pointer, (self.n_vocab,))
                    row += 1
        return out

    def close(self) -> None:
        """Free the context (before its model)."""
        self._batch.close()
        self._ctx.close()
