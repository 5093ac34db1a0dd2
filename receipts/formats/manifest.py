"""Per-file digests of a weights folder (``schema/weights-manifest.schema.json``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from receipts.formats._base import Digest, Document

__all__ = ["WeightsManifest"]


class WeightsManifest(Document):
    """A weights manifest (``receipts.weights-manifest/v1``): path -> digest, and their root digest."""

    KIND: ClassVar[str] = "weights-manifest"

    format: Literal["receipts.weights-manifest/v1"]
    rule: Literal["model_signing/v1.0/files/sha256"]
    root: Digest
    files: Annotated[dict[str, Digest], Field(min_length=1)]
    """POSIX path relative to the weights folder (``.`` for a single file) -> ``sha256:<hex>``."""
