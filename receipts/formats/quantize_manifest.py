"""The manifest ``receipts quantize`` writes beside its GGUF files (``schema/quantize-manifest.schema.json``).

It is the one place the manifest's shape lives: `runner.llamacpp.quantize` writes it from
`QuantizeManifest` and reads it back through it, and `QuantLineage` (the schema's ``$defs/lineage``) is
what a run of one of its files records as ``extra.lineage`` of its model identity, and what
``receipts sign`` reads there.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from receipts.formats._base import Closed, Digest, Document, Hex64, Integer

__all__ = ["FORMAT", "QuantLineage", "QuantOutput", "QuantizeManifest", "Toolchain"]

FORMAT = "receipts.quantize-manifest/v1"

Quant = Annotated[str, Field(pattern=r"^[A-Z0-9_]{1,16}$(?!\n)")]
BaseQuant = Literal["F16", "BF16", "F32"]
Bytes = Annotated[Integer, Field(ge=0)]


class Generator(Closed):
    """The software that wrote the manifest."""

    name: Literal["receipts"]
    version: Annotated[str, Field(max_length=100)]


class Source(Closed):
    """The Hugging Face folder that was converted: its name and weights digest."""

    folder: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$(?!\n)")]
    digest: Digest


class Base(Closed):
    """The full-precision GGUF every output was quantized from."""

    quant: BaseQuant
    sha256: Digest
    bytes: Bytes


class Toolchain(Closed):
    """The llama.cpp build (`runner.llamacpp.toolchain.Toolchain.identity`)."""

    llama_cpp_python: Annotated[str, Field(pattern=r"^[0-9A-Za-z.+-]{1,40}$(?!\n)")]
    llama_cpp_commit: Annotated[str, Field(pattern=r"^[0-9a-f]{7,40}$(?!\n)")]
    build_flags_sha256: Hex64


class QuantOutput(Closed):
    """One GGUF written beside the manifest."""

    quant: Quant
    file: Annotated[str, Field(max_length=120, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.gguf$(?!\n)")]
    sha256: Digest
    bytes: Bytes


class QuantizeManifest(Document):
    """``manifest.json`` of a ``receipts quantize`` output folder (``receipts.quantize-manifest/v1``)."""

    KIND: ClassVar[str] = "quantize-manifest"

    format: Literal["receipts.quantize-manifest/v1"]
    generator: Generator
    source: Source
    base: Base
    toolchain: Toolchain
    outputs: Annotated[list[QuantOutput], Field(min_length=1, max_length=32)]


class QuantLineage(Closed):
    """``$defs/lineage``: where a quantized GGUF came from, as a run records it."""

    quantized_from: Digest
    quant: Quant
    base: BaseQuant
    bytes: Bytes
    manifest_sha256: Digest
    toolchain: Toolchain
