"""The ``llamacpp:FILE`` target of `receipts bench`: a GGUF measured through llama.cpp itself (issue #21).

The parent process reads what identifies the file — without torch and without loading it — and the
worker (`runner.bench.worker`) drives it with `runner.llamacpp.timing`. The identity is the
``llamacpp:`` backend's own (`runner.llamacpp.identity.native_identity`: the weights digest ``gguf:``
records for the same file, the file type, the GGUF's tokenizer digest, parameters, ``extra.runtime``,
``extra.lineage``), so the quantization table joins a footprint to the runs of the same file.

The point's quantization is the file's own: the quantize manifest's name for it, else the GGUF's file
type. ``--quant`` does not apply (the file is the quantization), and llama.cpp is built for the CPU and
serves one request at a time here, so ``--device cuda`` and ``--concurrency`` above 1 are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from receipts.errors import UsageError
from runner.backends.base import ModelIdentity
from runner.bench.plan import BenchConfig
from runner.llamacpp.identity import native_identity

__all__ = ["KIND", "NativeTarget", "native_target"]

KIND = "llamacpp"


@dataclass(frozen=True)
class NativeTarget:
    """A GGUF file to bench through llama.cpp: its identity, its quantization, the settings resolved."""

    file: Path
    identity: ModelIdentity
    quant: str
    config: BenchConfig


def native_target(config: BenchConfig, location: str) -> NativeTarget:
    """Check the settings and the file, and read the file's identity and quantization.

    Raises:
        UsageError: ``--quant``, ``--device cuda`` or ``--concurrency`` above 1 with a llamacpp: file.
        InputError: the file is missing, not a GGUF, unreadable, its quantize manifest contradicts it,
            or llama.cpp is not built here.
    """
    _check_settings(config)
    identity, path, _ = native_identity(config.spec, location)
    lineage = identity.extra.get("lineage")
    quant = str(lineage["quant"]) if lineage else str(identity.storage_quant)
    return NativeTarget(path, identity, quant, replace(config, quants=(quant,)))


def _check_settings(config: BenchConfig) -> None:
    if config.quants:
        raise UsageError(
            f"--quant {','.join(config.quants)} does not apply to {config.spec!r}: "
            "the file is the quantization",
            hint="drop --quant; to bench another quantization, make it (receipts quantize --to Q4_K_M) "
            "and bench that file",
        )
    if config.device != "cpu":
        raise UsageError(
            f"--device {config.device}: receipts' llama.cpp is built for the CPU", hint="use --device cpu"
        )
    if config.concurrency != (1,):
        raise UsageError(
            "--concurrency above 1 is not measured through llama.cpp (one request at a time, as llama-bench)",
            hint="use --concurrency 1",
        )
