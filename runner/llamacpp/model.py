"""A GGUF file loaded by llama.cpp itself (through llama-cpp-python): tokens in, log-probabilities out.

The one place receipts opens a model with llama.cpp; the ``llamacpp:`` backend, quantization fidelity
and the native bench build on it. A file is checked before llama.cpp sees it (exists, regular, GGUF
magic), and a file llama.cpp refuses is one `InputError`, never a crash or a page of its log.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from receipts.errors import InputError
from runner.backends.extras import requires
from runner.llamacpp.toolchain import Toolchain, find

__all__ = ["NativeModel", "check_gguf", "log_softmax"]

_MAGIC = b"GGUF"


def check_gguf(path: Path, *, spec: str | None = None) -> Path:
    """``path`` if it is a regular file that starts like a GGUF; else one clear `InputError`."""
    label = f"model spec {spec!r}: " if spec else ""
    if not path.exists():
        raise InputError(f"{label}{path} does not exist", file=path, hint="llamacpp: takes a .gguf file")
    if not path.is_file():
        raise InputError(f"{label}{path} is not a file", file=path, hint="llamacpp: takes a .gguf file")
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise InputError(f"{label}cannot read {path}: {exc.strerror}", file=path) from exc
    if head != _MAGIC:
        raise InputError(
            f"{label}{path} is not a GGUF file (it does not start with 'GGUF')",
            file=path,
            hint="convert the model with `receipts quantize`, or point at the .gguf file itself",
        )
    return path


def log_softmax(logits: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """Row-wise log-softmax, computed in float64 and returned as float32."""
    values = np.asarray(logits, dtype=np.float64)
    shifted = values - values.max(axis=-1, keepdims=True)
    out: npt.NDArray[np.float32] = (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))).astype(
        np.float32
    )
    return out


class NativeModel:
    """One GGUF in llama.cpp on the CPU, with logits kept for every position of an evaluation."""

    def __init__(
        self, path: Path, *, n_ctx: int = 2048, threads: int = 1, n_batch: int = 512, spec: str | None = None
    ):
        """Load ``path`` with ``threads`` threads for both prompt processing and generation.

        Raises:
            InputError: not a GGUF file, llama.cpp refuses it, or llama.cpp is not built here.
            MissingDependency: the llama_cpp bindings are not installed.
        """
        self.path = check_gguf(Path(path), spec=spec)
        self.toolchain: Toolchain = find()
        with requires("runner", "a llamacpp: model"):
            import llama_cpp

        try:
            self.llm: Any = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_ubatch=n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                logits_all=True,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise InputError(
                f"llama.cpp could not load {self.path.name}: {exc}",
                file=self.path,
                hint="the file is truncated, corrupt, or an architecture this llama.cpp build does not know",
            ) from exc
        self.threads = threads

    @property
    def n_vocab(self) -> int:
        """The vocabulary size (the width of every log-probability row)."""
        return int(self.llm.n_vocab())

    @property
    def n_ctx(self) -> int:
        """The context this model was opened with."""
        return int(self.llm.n_ctx())

    @property
    def bos(self) -> int | None:
        """The BOS token id, or None when the model has none."""
        token = int(self.llm.token_bos())
        return token if token >= 0 else None

    @property
    def eos(self) -> int | None:
        """The EOS token id, or None when the model has none."""
        token = int(self.llm.token_eos())
        return token if token >= 0 else None

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of ``text`` with no BOS added (lm-eval's ``add_special_tokens=False``)."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def detokenize(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens`` (bytes that are not UTF-8 are replaced)."""
        return bytes(self.llm.detokenize(list(tokens))).decode("utf-8", errors="replace")

    def logprobs(self, tokens: Sequence[int]) -> npt.NDArray[np.float32]:
        """Log-probabilities of the next token after each prefix of ``tokens``: float32 ``[len, vocab]``.

        The evaluation starts from an empty context (no KV reuse between calls).

        Raises:
            InputError: more tokens than the context holds.
        """
        if not tokens:
            return np.zeros((0, self.n_vocab), dtype=np.float32)
        if len(tokens) > self.n_ctx:
            raise InputError(
                f"{len(tokens)} tokens do not fit the {self.n_ctx}-token context", file=self.path
            )
        self.llm.reset()  # eval() then drops the KV cache from position 0 on
        self.llm.eval(list(tokens))
        return log_softmax(self.llm.scores[: len(tokens)])

    def close(self) -> None:
        """Free the model and its context."""
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()
