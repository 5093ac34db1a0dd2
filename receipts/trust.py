"""Trust roots: which keys may sign a publisher's receipts, since when, until when, and how many.

A trust root file is ``{"format", "signed": {...}, "signatures": [...]}``. It is pinned out of band
(a file the verifier chose, optionally checked against ``--trust-root-sha256``), never fetched from the
site being verified. Version 1 is unsigned. Version n+1 is accepted only when signed by at least
``threshold`` distinct *active* keys of version n; older or equal versions are a rollback and refused.

The signed part holds only strings, safe integers and booleans, so its RFC 8785 form is unambiguous:
signatures cover ``PAE("application/vnd.receipts.trust-root+json", rfc8785(signed))``.

Key validity for a receipt is judged at the receipt's signed ``issuedAt``: ``notBefore <= t < notAfter``;
revoked keys never count (a leaked key can backdate ``issuedAt``); retired keys count only when the
verifier opts in (``--allow-retired``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rfc8785

from receipts.documents import parse_json, read_bytes
from receipts.dsse import Envelope, Signature, b64decode_strict, check_signatures, pae
from receipts.errors import KeyFileError, SchemaError, VerificationError
from receipts.keys import PrivateKey, PublicKey, public_key_from_pem

if TYPE_CHECKING:
    from receipts.formats.trust_root import TrustedKeyEntry

__all__ = [
    "ROOT_PAYLOAD_TYPE",
    "TrustRoot",
    "TrustedKey",
    "check_update",
    "format_time",
    "load_trust_root",
    "new_root",
    "parse_time",
    "sign_root",
    "trust_root_from_bytes",
]

ROOT_PAYLOAD_TYPE = "application/vnd.receipts.trust-root+json"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 UTC timestamp (``2026-11-23T10:00:00Z``).

    Raises:
        ValueError: not such a timestamp.
    """
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` suffix, second precision."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class TrustedKey:
    """A key of a trust root with its status and validity window."""

    public: PublicKey
    status: str
    not_before: datetime | None
    not_after: datetime | None
    revoked_at: datetime | None
    name: str

    def unusable_reason(self, at: datetime, *, allow_retired: bool = False) -> str | None:
        """Why this key cannot vouch for something issued at ``at``; ``None`` if it can."""
        if self.status == "revoked":
            return f"key {self.public.keyid} is revoked (since {self.revoked_at})"
        if self.status == "retired" and not allow_retired:
            return f"key {self.public.keyid} is retired (pass --allow-retired to accept it)"
        if self.not_before is not None and at < self.not_before:
            return f"key {self.public.keyid} is not valid before {format_time(self.not_before)}"
        if self.not_after is not None and at >= self.not_after:
            return f"key {self.public.keyid} expired at {format_time(self.not_after)}"
        return None


@dataclass(frozen=True)
class TrustRoot:
    """A loaded, schema-checked trust root."""

    publisher: str
    version: int
    threshold: int
    keys: Mapping[str, TrustedKey]
    signed: Mapping[str, Any]
    signatures: tuple[Signature, ...]
    sha256: str
    source: str

    def public_keys(self) -> dict[str, PublicKey]:
        """Keyid -> public key, every status (status is judged separately)."""
        return {keyid: key.public for keyid, key in self.keys.items()}

    def document(self) -> dict[str, Any]:
        """The JSON document form (for writing)."""
        return _document(dict(self.signed), self.signatures)


def _root_fail(message: str, source: object, hint: str = "") -> VerificationError:
    return VerificationError(message, check="trust-root", file=source, hint=hint)


def _trusted_key(entry: TrustedKeyEntry, where: str, source: object) -> TrustedKey:
    try:
        # utf-8, not ascii: a non-ASCII character must be refused as a bad PEM, not crash the encoder
        public = public_key_from_pem(entry.publicKey.encode("utf-8"), f"{source}:{where}")
    except KeyFileError as exc:
        raise _root_fail(f"{where}.publicKey: {exc.message}", source) from None
    if public.algorithm != entry.algorithm:
        raise _root_fail(f"{where}: labelled {entry.algorithm} but holds a {public.algorithm} key", source)
    if public.keyid != entry.keyid:
        raise _root_fail(f"{where}: keyid does not match the key (expected {public.keyid})", source)
    try:
        # The schema's pattern admits 2026-02-30T00:00:00Z; the instant must also exist.
        not_before, not_after, revoked_at = (
            parse_time(t) if t is not None else None
            for t in (entry.notBefore, entry.notAfter, entry.revokedAt)
        )
    except ValueError as exc:
        raise _root_fail(f"{where}: not a valid UTC time: {exc}", source) from None
    return TrustedKey(
        public=public,
        status=entry.status,
        not_before=not_before,
        not_after=not_after,
        revoked_at=revoked_at,
        name=entry.name or "",
    )


def trust_root_from_bytes(data: bytes, *, source: object = "<trust root>") -> TrustRoot:
    """Parse and check a trust root document.

    Raises:
        VerificationError: (check ``trust-root``) malformed, fails its schema, or inconsistent keys.
    """
    from receipts.formats import TrustRootDocument

    try:
        value = parse_json(data, file=source)
        document = TrustRootDocument.parse(value, file=source)
    except SchemaError as exc:
        raise _root_fail(exc.diagnostics().split("\n", 1)[-1].strip(), source) from None
    except VerificationError:
        raise
    except Exception as exc:
        raise _root_fail(getattr(exc, "message", str(exc)), source) from None
    signed = document.signed
    keys: dict[str, TrustedKey] = {}
    for index, entry in enumerate(signed.keys):
        key = _trusted_key(entry, f"signed.keys[{index}]", source)
        if key.public.keyid in keys:
            raise _root_fail(f"key {key.public.keyid} is listed twice", source)
        keys[key.public.keyid] = key
    usable = sum(1 for k in keys.values() if k.status == "active")
    if signed.threshold > usable:
        raise _root_fail(
            f"threshold {signed.threshold} exceeds the {usable} active key(s)",
            source,
            hint="add keys or lower the threshold",
        )
    signatures = []
    for index, signature in enumerate(document.signatures):
        try:
            signatures.append(Signature(signature.keyid, b64decode_strict(signature.sig, "sig")))
        except ValueError as exc:
            raise _root_fail(f"signatures[{index}]: {exc}", source) from None
    return TrustRoot(
        publisher=signed.publisher,
        version=signed.version,
        threshold=signed.threshold,
        keys=keys,
        signed=value["signed"],  # as written: the root's signatures cover exactly these values
        signatures=tuple(signatures),
        sha256=hashlib.sha256(data).hexdigest(),
        source=str(source),
    )


def load_trust_root(path: Path, *, expected_sha256: str | None = None) -> TrustRoot:
    """Load the pinned trust root, optionally checking the file's sha256 pin.

    Raises:
        InputError: the file is missing.
        VerificationError: the pin does not match, or the root is malformed.
    """
    data = read_bytes(path, what="trust root", limit=1024 * 1024)
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.removeprefix("sha256:").lower():
            raise _root_fail(
                f"sha256 {actual} does not match the pinned {expected_sha256}",
                path,
                hint="you were given a different trust root than the one you pinned; do not trust it",
            )
    return trust_root_from_bytes(data, source=path)


def _document(signed: dict[str, Any], signatures: Iterable[Signature]) -> dict[str, Any]:
    import base64

    from receipts import schemas

    return {
        "format": schemas.KINDS["trust-root"],
        "signed": signed,
        "signatures": [
            {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in signatures
        ],
    }


def _signed_bytes(signed: Mapping[str, Any]) -> bytes:
    return pae(ROOT_PAYLOAD_TYPE, rfc8785.dumps(dict(signed)))


def new_root(
    publisher: str, keys: Iterable[PublicKey], *, threshold: int = 1, now: datetime | None = None
) -> bytes:
    """Version 1 of a trust root (unsigned: it is pinned out of band), as file bytes."""
    issued = format_time(now or datetime.now(UTC))
    entries = [
        {
            "keyid": key.keyid,
            "algorithm": key.algorithm,
            "publicKey": key.pem(),
            "status": "active",
            "notBefore": issued,
        }
        for key in keys
    ]
    signed = {
        "publisher": publisher,
        "version": 1,
        "threshold": threshold,
        "issuedAt": issued,
        "keys": entries,
    }
    return _dump(_document(signed, []))


def _dump(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def sign_root(
    old: TrustRoot,
    change: Mapping[str, Any] | None,
    signers: Iterable[PrivateKey],
    *,
    now: datetime | None = None,
    edit: Any = None,
) -> bytes:
    """Build version n+1 from ``old``, apply ``edit(signed)`` to it, and sign it with ``signers``.

    Args:
        old: the current root.
        change: top-level fields to overwrite in the signed part (e.g. ``{"threshold": 2}``).
        signers: private keys of ``old`` (at least ``old.threshold`` active ones).
        now: the update time (default: now).
        edit: a function mutating the new signed dict in place (add, retire, revoke a key).

    Returns:
        The new trust root file bytes, already checked with `check_update`.

    Raises:
        VerificationError: the result would not be an acceptable update of ``old``.
    """
    signed = copy.deepcopy(dict(old.signed))
    signed.update(change or {})
    signed["version"] = old.version + 1
    signed["issuedAt"] = format_time(now or datetime.now(UTC))
    if edit is not None:
        edit(signed)
    message = _signed_bytes(signed)
    signatures = [Signature(key.public.keyid, key.sign(message)) for key in signers]
    data = _dump(_document(signed, signatures))
    check_update(old, trust_root_from_bytes(data, source="<new trust root>"), now=now)
    return data


def check_update(old: TrustRoot, new: TrustRoot, *, now: datetime | None = None) -> None:
    """Accept ``new`` as the successor of ``old`` or raise.

    Raises:
        VerificationError: rollback, skipped version, other publisher, or fewer than
            ``old.threshold`` valid signatures by distinct active keys of ``old``.
    """
    when = now or datetime.now(UTC)
    if new.version <= old.version:
        raise _root_fail(
            f"rollback refused: version {new.version} is not newer than the pinned {old.version}",
            new.source,
        )
    if new.version != old.version + 1:
        raise _root_fail(
            f"version {new.version} skips versions after {old.version}",
            new.source,
            hint=f"apply version {old.version + 1} first",
        )
    if new.publisher != old.publisher:
        raise _root_fail(f"publisher changed from {old.publisher!r} to {new.publisher!r}", new.source)
    envelope = Envelope(ROOT_PAYLOAD_TYPE, rfc8785.dumps(dict(new.signed)), new.signatures)
    valid = {c.keyid for c in check_signatures(envelope, old.public_keys()) if c.status == "valid"}
    counted = {k for k in valid if old.keys[k].unusable_reason(when) is None}
    if len(counted) < old.threshold:
        raise _root_fail(
            f"update to version {new.version} has {len(counted)} valid signature(s) by active keys "
            f"of version {old.version}; {old.threshold} required",
            new.source,
            hint="sign the update with --sign-with KEY for enough keys of the current root",
        )
