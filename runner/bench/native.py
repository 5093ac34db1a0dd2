"""The ``llamacpp:FILE`` target of `receipts bench`: a GGUF measured through llama.cpp itself (issue #21).

The parent process reads what identifies the file — without torch and without loading it — and the
worker (`runner.bench.worker`) drives it with `runner.llamacpp.timing`. The identity is the one the
``llamacpp:`` backend records, so the quantization table joins a footprint to the runs of the same file:
the file's weights digest, its storage quantization, kind ``llamacpp``, ``extra.runtime`` (the llama.cpp
build: `runner.llamacpp.toolchain.Toolchain.identity`) and ``extra.lineage`` (`lineage_of`) when
``receipts quantize`` wrote the file.

The point's quantization is the file's own: the quantize manifest's name for it, else the GGUF's file
type. ``--quant`` does not apply (the file is the quantization), and llama.cpp is built for the CPU and
serves one request at a time here, so ``--device cuda`` and ``--concurrency`` above 1 are refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path

from receipts.digests import digest_weights
from receipts.errors import InputError, UsageError
from runner.backends.base import ModelIdentity
from runner.backends.local import gguf_storage_quant
from runner.bench.plan import BenchConfig
from runner.llamacpp.model import check_gguf
from runner.llamacpp.quantize import lineage_of
from runner.llamacpp.toolchain import find

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
    """Check the file and the settings, and read the file's identity and quantization.

    Raises:
        UsageError: ``--quant``, ``--device cuda`` or ``--concurrency`` above 1 with a llamacpp: file.
        InputError: the file is missing, not a GGUF, unreadable, or llama.cpp is not built here.
    """
    _check_settings(config)
    path = check_gguf(Path(location).expanduser(), spec=config.spec)
    try:
        storage_quant = gguf_storage_quant(path)
    except (ValueError, IndexError, KeyError, struct.error, OSError) as exc:
        raise InputError(
            f"model spec {config.spec!r}: {path} is not a readable GGUF file ({exc})",
            file=path,
            hint="the file is truncated or corrupt: convert it again (receipts quantize) or fetch it again",
        ) from exc
    lineage = lineage_of(path)
    extra: dict[str, object] = {"runtime": find().identity}
    if lineage is not None:
        extra["lineage"] = lineage
    identity = ModelIdentity(
        spec=config.spec,
        kind=KIND,
        digest="sha256:" + digest_weights(path).root,
        storage_quant=storage_quant,
        extra=extra,
    )
    quant = str(lineage["quant"]) if lineage else storage_quant
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
