"""A quantized GGUF against its full-precision base, token by token, as ``llama-perplexity`` measures it.

``llama-perplexity -m BASE -f TEXT -c N --kl-divergence-base X`` then ``-m QUANT ... --kl-divergence``
(tools/perplexity/perplexity.cpp at llama.cpp 0c1e570) is the community's way to judge a quant. This
module computes the same numbers through llama-cpp-python (`ScoringModel`):

- **the text**: tokenized by the base model with its special tokens (a BOS where the vocabulary adds
  one), cut into ``len // N`` chunks of N tokens (the tail is dropped); each chunk is evaluated from an
  empty context with its first token replaced by BOS (where the vocabulary adds one), and only the
  second half is scored: the logits at positions ``N/2 .. N-2`` against tokens ``N/2+1 .. N-1``;
- **the base's log-probabilities**: stored as llama-perplexity stores them between its two passes, 16-bit
  steps between ``max(min logit, max logit - 16)`` and the max logit (`pack_base`), so the KLD is
  summed over the same terms and the base's top token and likelihoods carry the same rounding;
- **per token** (`token_stats`, in float32 with double sums, as the C++ does): KL(base || quant), Δp of
  the actual next token, whether the top tokens agree, both negative log-likelihoods;
- **the statistics**: `receipts.metrics.quant_kld.summarize` (mean ± uncertainty, percentiles, RMS Δp,
  same-top rate, ln(PPL(Q)/PPL(base))).

`compare_text` is the text-file mode behind ``receipts quant-kld``; `runner.llamacpp.fidelity` scores a
run's items with the same per-token code, each text whole, for the receipt.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from receipts.digests import sha256_file
from receipts.errors import InputError, UsageError
from receipts.metrics.quant_kld import NllSums, Summary, summarize
from runner.backends.extras import requires
from runner.llamacpp.model import check_gguf
from runner.llamacpp.toolchain import find

__all__ = [
    "BLOCK",
    "MAX_TEXT_BYTES",
    "PackedBase",
    "TextComparison",
    "TokenStats",
    "chunk_tokens",
    "compare_text",
    "pack_base",
    "read_llama_base",
    "token_stats",
]

BLOCK = 32
"""Rows (positions) computed at once: bounds the float32 temporaries to BLOCK x vocab."""
MAX_TEXT_BYTES = 64 * 2**20
"""The largest text file `compare_text` reads."""
_F32 = np.float32


@dataclass(frozen=True)
class PackedBase:
    """The base model's log-probabilities at scored positions, as llama-perplexity keeps them.

    Attributes:
        scale: per position, the step between two 16-bit levels.
        min_log_prob: per position, the log-probability of level 0.
        levels: ``[positions, vocab]`` uint16; ``scale * level + min_log_prob`` is the log-probability.
    """

    scale: npt.NDArray[np.float32]
    min_log_prob: npt.NDArray[np.float32]
    levels: npt.NDArray[np.uint16]

    def log_probs(self) -> npt.NDArray[np.float32]:
        """The stored log-probabilities (float32 ``[positions, vocab]``)."""
        found: npt.NDArray[np.float32] = self.scale[:, None] * self.levels.astype(_F32)
        return found + self.min_log_prob[:, None]


def _log_sum_exp(rows: npt.NDArray[np.float32], top: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    # perplexity.cpp: sum_exp += expf(logit - max) in double; log_sum_exp = (float) log(sum_exp)
    sums = np.exp(rows - top[:, None]).astype(np.float64).sum(axis=1)
    found: npt.NDArray[np.float32] = np.log(sums).astype(_F32)
    return found


def pack_base(logits: npt.NDArray[np.float32]) -> PackedBase:
    """The base model's logits ``[positions, vocab]`` as llama-perplexity's 16-bit log-probabilities."""
    logits = np.asarray(logits, dtype=_F32)
    scales, mins, levels = [], [], np.empty(logits.shape, dtype=np.uint16)
    for start in range(0, logits.shape[0], BLOCK):
        rows = logits[start : start + BLOCK]
        top = rows.max(axis=1)
        low = np.maximum(rows.min(axis=1), top - _F32(16))
        lse = _log_sum_exp(rows, top)
        scale = (top - low) / _F32(65535)
        with np.errstate(divide="ignore"):
            inverse = np.where(scale > 0, _F32(1) / scale, _F32(0)).astype(_F32)
        # nearest_int: round half to even in float32; a level wraps to uint16 as the C++ assignment does
        found = np.rint(inverse[:, None] * (rows - low[:, None])).astype(np.int64)
        found = np.where(rows > low[:, None], found, 0)
        levels[start : start + BLOCK] = found.astype(np.uint16)
        scales.append(scale)
        mins.append((low - top - lse).astype(_F32))
    empty = np.zeros(0, dtype=_F32)
    return PackedBase(
        np.concatenate(scales) if scales else empty, np.concatenate(mins) if mins else empty, levels
    )


@dataclass(frozen=True)
class TokenStats:
    """Per scored token: KL(base || quant), Δp, top-token agreement, both negative log-likelihoods."""

    kld: npt.NDArray[np.float32]
    delta_p: npt.NDArray[np.float32]
    same_top: npt.NDArray[np.bool_]
    nll: npt.NDArray[np.float32]
    nll_base: npt.NDArray[np.float32]

    @classmethod
    def join(cls, parts: Sequence[TokenStats]) -> TokenStats:
        """One `TokenStats` of several, in order."""
        joined: dict[str, Any] = {
            n: np.concatenate([getattr(p, n) for p in parts]) for n in cls.__dataclass_fields__
        }
        return cls(**joined)

    def summary(self) -> Summary:
        """llama-perplexity's statistics over these tokens."""
        sums = NllSums.of(self.nll, self.nll_base)
        return summarize(self.kld, self.delta_p, int(self.same_top.sum()), sums)


def token_stats(base: PackedBase, logits: npt.NDArray[np.float32], targets: Sequence[int]) -> TokenStats:
    """The quantized model's ``logits`` at the same positions as ``base``, against the actual ``targets``.

    perplexity.cpp's ``log_softmax(n_vocab, logits, base_log_prob, tok, kld)``, row by row: float32
    arithmetic, sums over the vocabulary in double.

    Raises:
        ValueError: the shapes disagree.
    """
    logits = np.asarray(logits, dtype=_F32)
    tokens = np.asarray(targets, dtype=np.int64)
    if logits.shape != base.levels.shape or tokens.shape != (logits.shape[0],):
        raise ValueError(f"logits {logits.shape}, base {base.levels.shape}, targets {tokens.shape} disagree")
    parts = []
    for start in range(0, logits.shape[0], BLOCK):
        window = slice(start, start + BLOCK)
        parts.append(_block_stats(base, window, logits[window], tokens[window]))
    if not parts:
        empty = np.zeros(0, dtype=_F32)
        return TokenStats(empty, empty, np.zeros(0, dtype=np.bool_), empty, empty)
    return TokenStats.join(parts)


def _block_stats(
    base: PackedBase, window: slice, rows: npt.NDArray[np.float32], tokens: npt.NDArray[np.int64]
) -> TokenStats:
    index = np.arange(rows.shape[0])
    top = rows.max(axis=1)
    lse = _log_sum_exp(rows, top)
    nll = (top + lse) - rows[index, tokens]
    scale, low = base.scale[window], base.min_log_prob[window]
    base_log = scale[:, None] * base.levels[window].astype(_F32) + low[:, None]
    nll_base = -base_log[index, tokens]
    terms = np.exp(base_log) * ((base_log - rows) + (top + lse)[:, None])
    kld = np.where(base_log > _F32(-16), terms, _F32(0)).astype(np.float64).sum(axis=1)
    delta_p = np.exp(-nll) - np.exp(-nll_base)
    same_top = rows.argmax(axis=1) == base_log.argmax(axis=1)
    return TokenStats(kld.astype(_F32), delta_p.astype(_F32), same_top, nll, nll_base.astype(_F32))


def chunk_tokens(
    tokens: Sequence[int], ctx: int, bos: int | None, chunks: int | None = None
) -> list[list[int]]:
    """llama-perplexity's chunks: ``len // ctx`` runs of ``ctx`` tokens, each starting with BOS if given.

    Raises:
        InputError: fewer than ``2 * ctx`` tokens (llama-perplexity refuses those too).
    """
    if len(tokens) < 2 * ctx:
        raise InputError(
            f"the text is {len(tokens)} tokens; a context of {ctx} needs at least {2 * ctx}",
            hint=f"use a longer text or a smaller --ctx (at most {len(tokens) // 2})",
        )
    count = len(tokens) // ctx if chunks is None else min(chunks, len(tokens) // ctx)
    found = []
    for i in range(count):
        chunk = list(tokens[i * ctx : (i + 1) * ctx])
        if bos is not None:
            chunk[0] = bos
        found.append(chunk)
    return found


class ScoringModel:
    """A GGUF opened as llama-perplexity opens it for ``--kl-divergence``: logits of whole sequences.

    Flash attention is on: llama-perplexity's default (``-fa auto``) turns it on for the CPU, and its
    logits differ in their last bits from the plain attention path `NativeModel` takes. Everything else
    (the file checks, the one clear error for a file llama.cpp refuses) is `NativeModel`'s.
    """

    def __init__(self, path: Path, *, ctx: int, threads: int = 1):
        """Load ``path`` with a context of ``ctx`` tokens.

        Raises:
            InputError: not a GGUF file, llama.cpp refuses it, or llama.cpp is not built here.
        """
        self.path = check_gguf(Path(path))
        self.toolchain = find()
        with requires("runner", "a llamacpp: model"):
            import llama_cpp

        try:
            self.llm: Any = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=ctx,
                n_batch=min(ctx, 2048),
                n_ubatch=min(ctx, 512),
                n_threads=threads,
                n_threads_batch=threads,
                flash_attn=True,
                logits_all=True,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise InputError(
                f"llama.cpp could not load {self.path.name}: {exc}",
                file=self.path,
                hint="the file is truncated, corrupt, or an architecture this llama.cpp build does not know",
            ) from exc

    @property
    def n_vocab(self) -> int:
        """The vocabulary size."""
        return int(self.llm.n_vocab())

    @property
    def bos(self) -> int | None:
        """The token that starts every chunk: BOS where the vocabulary adds one, else None."""
        token = int(self.llm.token_bos())
        return token if token >= 0 and self.llm._model.add_bos_token() else None

    def tokenize(self, text: str) -> list[int]:
        """``text`` as llama-perplexity tokenizes it: special tokens added (BOS), special text not parsed."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def logits(self, tokens: Sequence[int], first: int) -> npt.NDArray[np.float32]:
        """Raw logits of ``tokens`` from an empty context, at positions ``first .. len - 2``.

        Raises:
            InputError: more tokens than the context holds.
        """
        if len(tokens) > self.llm.n_ctx():
            raise InputError(f"{len(tokens)} tokens do not fit the {self.llm.n_ctx()}-token context")
        self.llm.reset()
        self.llm.eval(list(tokens))
        return np.array(self.llm.scores[first : len(tokens) - 1], dtype=_F32)

    def identity(self) -> dict[str, Any]:
        """The file, its sha256 and the llama.cpp build that read it."""
        digest = "sha256:" + sha256_file(self.path)
        return {"file": self.path.name, "sha256": digest, "toolchain": self.toolchain.identity}

    def close(self) -> None:
        """Free the model (llama_cpp's finaliser fails at interpreter exit otherwise)."""
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()


def _check_ctx(ctx: int) -> None:
    if not 4 <= ctx <= 1 << 20:
        raise UsageError(f"--ctx {ctx}: a context must hold 4 to 1,048,576 tokens", hint="e.g. --ctx 512")


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise InputError(
                "the text is not a regular file", file=path, hint="--text takes a UTF-8 text file"
            )
        if size > MAX_TEXT_BYTES:
            raise InputError(
                f"the text is {size:,} bytes; --text reads at most {MAX_TEXT_BYTES:,}",
                file=path,
                hint="cut the text (a few hundred kilobytes give a tight mean KLD)",
            )
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(
            "the text file does not exist", file=path, hint="--text takes a UTF-8 text file"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the text is not UTF-8 (byte {exc.start})", file=path, hint="--text takes a UTF-8 text file"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read the text: {exc.strerror}", file=path) from None


@dataclass(frozen=True)
class TextComparison:
    """What `compare_text` measured, and on what."""

    base: dict[str, Any]
    quant: dict[str, Any]
    text: dict[str, Any]
    ctx: int
    chunks: int
    stats: TokenStats

    def as_json(self, digits: int = 8) -> dict[str, Any]:
        """The comparison as JSON: inputs, settings, then llama-perplexity's statistics."""
        return {
            "base": self.base,
            "quant": self.quant,
            "text": self.text,
            "ctx": self.ctx,
            "chunks": self.chunks,
            "statistics": self.stats.summary().as_dict(digits=digits),
        }


def _base_pass(model: ScoringModel, chunks: Sequence[Sequence[int]], store: Path) -> PackedBase:
    """Every chunk's scored positions through the base model, kept in ``store`` (memory-mapped)."""
    first, width = len(chunks[0]) // 2, model.n_vocab
    rows = len(chunks) * (len(chunks[0]) - 1 - first)
    levels = np.lib.format.open_memmap(store, mode="w+", dtype=np.uint16, shape=(rows, width))
    scales, mins, at = [], [], 0
    for chunk in chunks:
        packed = pack_base(model.logits(chunk, first))
        levels[at : at + packed.levels.shape[0]] = packed.levels
        at += packed.levels.shape[0]
        scales.append(packed.scale)
        mins.append(packed.min_log_prob)
    return PackedBase(np.concatenate(scales), np.concatenate(mins), levels)


def _quant_pass(model: ScoringModel, chunks: Sequence[Sequence[int]], base: PackedBase) -> TokenStats:
    first = len(chunks[0]) // 2
    per_chunk = len(chunks[0]) - 1 - first
    parts = []
    for i, chunk in enumerate(chunks):
        window = slice(i * per_chunk, (i + 1) * per_chunk)
        part = PackedBase(base.scale[window], base.min_log_prob[window], base.levels[window])
        parts.append(token_stats(part, model.logits(chunk, first), chunk[first + 1 :]))
    return TokenStats.join(parts)


def compare_text(
    base_file: Path,
    quant_file: Path,
    text_file: Path,
    *,
    ctx: int = 512,
    chunks: int | None = None,
    threads: int = 1,
) -> TextComparison:
    """``quant_file`` against ``base_file`` on a text, chunked and scored as llama-perplexity does.

    Two passes like llama-perplexity's: the base model over every chunk (its 16-bit log-probabilities
    kept in a temporary file), then the quantized model; only one model is loaded at a time.

    Raises:
        InputError: a file is missing, not GGUF or not UTF-8 text; the text is shorter than two contexts;
            the two models' vocabularies differ.
        UsageError: a context out of range.
    """
    _check_ctx(ctx)
    for path in (base_file, quant_file):
        check_gguf(Path(path))
    if chunks is not None and chunks < 1:
        raise UsageError(f"--chunks {chunks}: must be at least 1")
    text = _read_text(Path(text_file))
    with tempfile.TemporaryDirectory(prefix="receipts-kld-") as tmp:
        model = ScoringModel(Path(base_file), ctx=ctx, threads=threads)
        try:
            tokens = model.tokenize(text)
            try:
                cut = chunk_tokens(tokens, ctx, model.bos, chunks)
            except InputError as exc:
                raise InputError(exc.message, file=text_file, hint=exc.hint) from None
            base = _base_pass(model, cut, Path(tmp) / "base.npy")
            base_id, vocab = model.identity(), model.n_vocab
        finally:
            model.close()
        model = ScoringModel(Path(quant_file), ctx=ctx, threads=threads)
        try:
            if model.n_vocab != vocab or model.tokenize(text) != tokens:
                raise InputError(
                    f"{Path(quant_file).name} does not share the base's tokenizer "
                    f"({model.n_vocab:,} tokens, the base {vocab:,}; or the text tokenizes differently)",
                    file=quant_file,
                    hint="compare a quantization with the full-precision file it was made from",
                )
            stats = _quant_pass(model, cut, base)
            quant_id = model.identity()
        finally:
            model.close()
        del base
    text_id = {"file": Path(text_file).name, "sha256": "sha256:" + sha256_file(Path(text_file))}
    return TextComparison(base_id, quant_id, {**text_id, "tokens": len(tokens)}, ctx, len(cut), stats)


def read_llama_base(path: Path) -> tuple[int, list[int], Iterator[PackedBase]]:
    """A ``--kl-divergence-base`` file llama-perplexity wrote: context, tokens, and per chunk its base.

    Format (perplexity.cpp): ``_logits_``, u32 context, i32 vocabulary, i32 chunks, the chunks' tokens
    (i32), then per chunk ``ctx - 1 - ctx/2`` rows of ``2 * ((vocab + 1) / 2) + 4`` uint16 (the first
    four: float32 scale and minimum log-probability).

    Raises:
        InputError: not such a file, or its size does not match its header.
    """
    data = np.memmap(path, dtype=np.uint8, mode="r")
    header = bytes(data[:20])
    if len(header) < 20 or header[:8] != b"_logits_":
        raise InputError(f"{path} is not a llama-perplexity --kl-divergence-base file", file=path)
    ctx, vocab, count = (int(v) for v in np.frombuffer(header[8:20], dtype="<i4"))
    width = 2 * ((vocab + 1) // 2) + 4
    rows = ctx - 1 - ctx // 2
    expected = 20 + 4 * ctx * count + 2 * rows * width * count
    if min(ctx, vocab, count) < 1 or data.size != expected:
        raise InputError(
            f"{path}: header says context {ctx}, vocabulary {vocab}, {count} chunks ({expected:,} bytes); "
            f"the file has {data.size:,}",
            file=path,
        )
    tokens = np.frombuffer(data[20 : 20 + 4 * ctx * count].tobytes(), dtype="<i4").tolist()
    body = np.asarray(data[20 + 4 * ctx * count :]).view("<u2").reshape(count, rows, width)

    def chunks() -> Iterator[PackedBase]:
        for chunk in body:
            head = np.ascontiguousarray(chunk[:, :4]).view("<f4")
            yield PackedBase(head[:, 0].copy(), head[:, 1].copy(), np.array(chunk[:, 4 : 4 + vocab]))

    return ctx, tokens, chunks()
