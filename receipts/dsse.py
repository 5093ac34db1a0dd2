"""DSSE v1 envelopes: PAE, strict parsing, signing, and per-signature verification.

Strictness decisions (tested in tests/vectors):
- exactly the keys ``payloadType``, ``payload``, ``signatures``; each signature exactly ``keyid``
  and ``sig``; 1 to 8 signatures; ``keyid`` is required and binds the signature to one trusted key;
- base64: the standard *or* the URL-safe alphabet (DSSE allows both) but not a mix; padding
  optional; no whitespace or newlines; non-canonical encodings (non-zero trailing bits) refused;
- payloadType must be printable ASCII; the envelope file is at most 16 MiB, UTF-8 without BOM,
  with no duplicate keys.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from receipts.documents import parse_json
from receipts.errors import InputError, VerificationError
from receipts.keys import PrivateKey, PublicKey

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "MAX_SIGNATURES",
    "Envelope",
    "Signature",
    "SignatureCheck",
    "b64decode_strict",
    "check_signatures",
    "pae",
    "parse_envelope",
    "sign_envelope",
]

MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
MAX_SIGNATURES = 8
_STANDARD = frozenset(string.ascii_letters + string.digits + "+/")
_URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: ``DSSEv1 SP len(type) SP type SP len(body) SP body``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def b64decode_strict(text: str, what: str) -> bytes:
    """Decode standard or URL-safe base64 under the rules in the module docstring.

    Raises:
        ValueError: with a reason naming ``what``.
    """
    if not text:
        raise ValueError(f"{what} is empty")
    body = text.rstrip("=")
    padding = len(text) - len(body)
    chars = set(body)
    if chars <= _STANDARD:
        altchars = b"+/"
    elif chars <= _URLSAFE:
        altchars = b"-_"
    else:
        raise ValueError(f"{what} is not base64 (bad characters, whitespace or mixed alphabets)")
    if len(body) % 4 == 1 or padding > 2 or (padding and (len(body) + padding) % 4):
        raise ValueError(f"{what} is not base64 (wrong length or padding)")
    try:
        data = base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{what} is not base64: {exc}") from None
    if base64.b64encode(data, altchars=altchars).rstrip(b"=").decode("ascii") != body:
        raise ValueError(f"{what} is not canonical base64 (non-zero trailing bits)")
    return data


@dataclass(frozen=True)
class Signature:
    """One DSSE signature: the key it claims and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope; ``payload`` holds the exact bytes that were signed."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


def _fail(message: str, file: object) -> VerificationError:
    return VerificationError(message, check="envelope", file=file)


def _exact_keys(value: Any, keys: set[str], what: str, file: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{what} is not a JSON object", file)
    if set(value) != keys:
        extra, missing = set(value) - keys, keys - set(value)
        parts = [
            f"unexpected {sorted(extra)}" if extra else "",
            f"missing {sorted(missing)}" if missing else "",
        ]
        raise _fail(f"{what} has the wrong keys: {'; '.join(p for p in parts if p)}", file)
    return value


def parse_envelope(data: bytes, *, file: object = "<envelope>") -> Envelope:
    """Parse DSSE envelope bytes strictly.

    Raises:
        VerificationError: (check ``envelope``) anything that is not a well-formed envelope.
    """
    if len(data) > MAX_ENVELOPE_BYTES:
        raise _fail(f"envelope is larger than {MAX_ENVELOPE_BYTES:,} bytes", file)
    try:
        value = parse_json(data, file=file)
    except InputError as exc:
        raise _fail(f"not a DSSE envelope: {exc.message}", file) from None
    value = _exact_keys(value, {"payloadType", "payload", "signatures"}, "envelope", file)
    payload_type, payload, signatures = value["payloadType"], value["payload"], value["signatures"]
    if not isinstance(payload_type, str) or not payload_type.isascii() or not payload_type.isprintable():
        raise _fail("payloadType must be a printable ASCII string", file)
    if not isinstance(payload, str) or not isinstance(signatures, list):
        raise _fail("payload must be a string and signatures a list", file)
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise _fail(f"envelope must carry 1 to {MAX_SIGNATURES} signatures, has {len(signatures)}", file)
    parsed = []
    for index, entry in enumerate(signatures):
        entry = _exact_keys(entry, {"keyid", "sig"}, f"signatures[{index}]", file)
        keyid, sig = entry["keyid"], entry["sig"]
        if not isinstance(keyid, str) or not keyid or len(keyid) > 256 or not isinstance(sig, str):
            raise _fail(f"signatures[{index}] needs a non-empty keyid and a string sig", file)
        try:
            parsed.append(Signature(keyid, b64decode_strict(sig, f"signatures[{index}].sig")))
        except ValueError as exc:
            raise _fail(str(exc), file) from None
    try:
        body = b64decode_strict(payload, "payload")
    except ValueError as exc:
        raise _fail(str(exc), file) from None
    return Envelope(payload_type, body, tuple(parsed))


def sign_envelope(payload_type: str, payload: bytes, keys: Iterable[PrivateKey]) -> bytes:
    """Sign ``payload`` with every key; return compact envelope JSON (no trailing newline).

    Compact with no trailing newline on purpose: then no byte of the file is insignificant
    whitespace, so a single-byte change is a change the verifier sees. The one exception is forced
    by DSSE, which requires accepting URL-safe base64: a base64 string holding exactly one ``+`` or
    ``/`` re-spells in one byte as ``-`` or ``_``, decoding to the very same bytes (tested in
    tests/receipts/test_fuzz.py; nothing signed changes, so nothing forged is accepted).
    """
    message = pae(payload_type, payload)
    signatures = [
        {"keyid": key.public.keyid, "sig": base64.b64encode(key.sign(message)).decode("ascii")}
        for key in keys
    ]
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": signatures,
    }
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True).encode("ascii")


@dataclass(frozen=True)
class SignatureCheck:
    """What happened to one signature of an envelope."""

    index: int
    keyid: str
    status: Literal["valid", "invalid", "unknown-key", "duplicate"]


def check_signatures(envelope: Envelope, keys: Mapping[str, PublicKey]) -> list[SignatureCheck]:
    """Check each signature against the key its keyid names (and only that key).

    A keyid is a binding, not a hint: a trusted keyid carrying another key's signature is invalid.
    A second valid signature by the same key is reported as ``duplicate`` and counts once.
    """
    message = pae(envelope.payload_type, envelope.payload)
    seen: set[str] = set()
    checks = []
    for index, signature in enumerate(envelope.signatures):
        key = keys.get(signature.keyid)
        if key is None:
            status: Literal["valid", "invalid", "unknown-key", "duplicate"] = "unknown-key"
        elif not key.verify(signature.sig, message):
            status = "invalid"
        elif signature.keyid in seen:
            status = "duplicate"
        else:
            status = "valid"
            seen.add(signature.keyid)
        checks.append(SignatureCheck(index, signature.keyid, status))
    return checks
