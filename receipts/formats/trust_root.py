"""A publisher's trust root: the keys receipts are signed with (``schema/trust-root.schema.json``).

This is the document as written; ``receipts.trust.TrustRoot`` is the loaded root (keys parsed,
signatures checked), hence the name `TrustRootDocument`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from receipts.formats._base import Closed, DateTime, Digest, Document, Integer, Omittable

__all__ = ["RootSignature", "SignedRoot", "TrustRootDocument", "TrustedKeyEntry"]

Time = Annotated[DateTime, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$(?!\n)")]
"""``$defs/time``: RFC 3339 in UTC, whole seconds, a real calendar instant.

No fractional seconds: receipts writes none (``receipts.trust.format_time``), a statement's ``issuedAt``
has none, and verify.js's ``instant()`` refuses them; JavaScript's ``Date`` keeps milliseconds where
Python keeps microseconds, so a finer key window could be judged differently by the two verifiers.
"""


RootPublisher = Annotated[str, Field(min_length=1, max_length=200)]
RootVersion = Annotated[Integer, Field(ge=1, le=9007199254740991)]  # JSON's safe integers


class TrustedKeyEntry(Closed):
    """One key of the root, with its status and validity window (``$defs/key``)."""

    keyid: Digest
    name: Omittable[Annotated[str, Field(max_length=200)]] = None
    algorithm: Literal["ecdsa-p256-sha256", "ed25519"]
    publicKey: Annotated[str, Field(max_length=4096, pattern=r"^-----BEGIN PUBLIC KEY-----")]  # JSON key
    status: Literal["active", "retired", "revoked"]
    notBefore: Omittable[Time] = None  # JSON key
    notAfter: Omittable[Time] = None  # JSON key
    revokedAt: Omittable[Time] = None  # JSON key

    @model_validator(mode="after")
    def _revoked_when(self) -> Self:
        if self.status == "revoked" and self.revokedAt is None:
            raise ValueError("a revoked key needs revokedAt")
        return self


class SignedRoot(Closed):
    """``signed``: the part of the root its signatures cover."""

    publisher: RootPublisher
    version: RootVersion
    threshold: Annotated[Integer, Field(ge=1, le=8)]
    issuedAt: Time  # JSON key
    keys: Annotated[list[TrustedKeyEntry], Field(min_length=1, max_length=64)]


class RootSignature(Closed):
    """A signature over the signed part by a key of the previous root version."""

    keyid: Digest
    sig: Annotated[str, Field(min_length=1)]


class TrustRootDocument(Document):
    """A trust root file (``receipts.trust-root/v1``)."""

    KIND: ClassVar[str] = "trust-root"

    format: Literal["receipts.trust-root/v1"]
    signed: SignedRoot
    signatures: Annotated[list[RootSignature], Field(max_length=8)]
