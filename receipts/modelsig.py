"""OpenSSF model signing: write and check a key-signed ``model.sig`` without importing model_signing.

The file is what ``model_signing sign key`` (1.1.1) writes, so ``model_signing verify key`` accepts
it: a Sigstore bundle (media type ``application/vnd.dev.sigstore.bundle.v0.3+json``) holding

- ``verificationMaterial``: ``{"publicKey": {"hint": hex sha256(SPKI PEM)}, "tlogEntries": []}``
  (the hint is model_signing's: the sha256 of the PEM text, not of the DER);
- ``dsseEnvelope``: payloadType ``application/vnd.in-toto+json``, one ECDSA P-256/SHA-256 DER
  signature over ``PAE(payloadType, payload)`` whose ``keyid`` is our keyid (informative only:
  model_signing writes ``""`` and ignores it, so checking picks the key by the hint);
- a payload that is an in-toto Statement v1 (RFC 8785 bytes) with one subject (the folder's name and
  the root digest), predicateType ``https://model_signing/signature/v1.0`` and the predicate
  ``{"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false,
  "ignore_paths": [the names the folder rule ignores]}, "resources": [{"name", "algorithm",
  "digest"}, ...]}`` in model_signing's path order, so the root over the resources is our root.

Checking (`check_model_sig`) follows model_signing's key verifier and then binds the result to a
receipt: the signature must be by a key the caller trusts, and the resources must be exactly the
receipt's signed weights manifest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import rfc8785

from receipts.digests import IGNORED_NAMES, WeightsDigest, digest_weights, root_of
from receipts.documents import parse_json
from receipts.dsse import b64decode_strict, pae
from receipts.errors import InputError, UsageError, VerificationError
from receipts.keys import PrivateKey, PublicKey

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_MODEL_SIG_BYTES",
    "MODEL_SIG",
    "PREDICATE_TYPE",
    "check_model_sig",
    "model_sig_bytes",
    "model_sig_key",
    "write_model_sig",
]

MODEL_SIG = "model.sig"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
MAX_MODEL_SIG_BYTES = 64 * 1024 * 1024
_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_HEX64 = re.compile(r"[0-9a-f]{64}")


def key_hint(key: PublicKey) -> str:
    """model_signing's ``publicKey.hint``: hex sha256 of the key's SPKI PEM text."""
    return hashlib.sha256(key.pem().encode("ascii")).hexdigest()


def model_sig_bytes(digest: WeightsDigest, key: PrivateKey, *, name: str) -> bytes:
    """The ``model.sig`` bytes for a digested folder, signed with a P-256 key.

    Raises:
        UsageError: the key is not ECDSA P-256 (model_signing verifies only EC keys).
    """
    if key.algorithm != "ecdsa-p256-sha256":
        raise UsageError("model.sig needs an ECDSA P-256 key", hint="generate one with `receipts keygen`")
    statement: dict[str, Any] = {
        "_type": _STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest.root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": sorted(IGNORED_NAMES),
            },
            # digest.files is already in model_signing's order, so the root over them is digest.root
            "resources": [
                {"name": path, "algorithm": "sha256", "digest": sha256}
                for path, sha256 in digest.files.items()
            ],
        },
    }
    payload = bytes(rfc8785.dumps(statement))
    signature = key.sign(pae(_PAYLOAD_TYPE, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(key.public)}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": _PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": key.public.keyid}],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode("ascii")


def model_sig_key(keys: Sequence[PrivateKey], weights: Path | None, dest: Path) -> PrivateKey:
    """Check a ``--model-sig DEST`` request before anything is signed; return the key to sign with.

    Raises:
        UsageError: no weights, no P-256 key, or ``dest`` inside the folder under another name
            (it would then be hashed as a model file and break the receipt's weights check).
    """
    if weights is None:
        raise UsageError("--model-sig needs --weights", hint="pass --weights DIR --model-sig DIR/model.sig")
    key = next((k for k in keys if k.algorithm == "ecdsa-p256-sha256"), None)
    if key is None:
        raise UsageError(
            "--model-sig needs an ECDSA P-256 key (model_signing does not verify Ed25519)",
            hint="add --key with a key made by `receipts keygen` (P-256 is the default)",
        )
    folder, target = weights.resolve(), dest.resolve()
    if weights.is_dir() and target.is_relative_to(folder) and target != folder / MODEL_SIG:
        raise UsageError(
            f"--model-sig {dest} is inside the weights folder but not named {MODEL_SIG}",
            hint=f"write it to {weights / MODEL_SIG} (the one name the folder digest ignores) or outside",
        )
    if target == folder:
        raise UsageError("--model-sig would overwrite the weights file", hint="choose another path")
    return key


def write_model_sig(weights: Path, key: PrivateKey, dest: Path) -> Path:
    """Digest ``weights`` and write its ``model.sig`` to ``dest`` (atomically). Returns ``dest``.

    Raises:
        InputError: the weights cannot be digested or ``dest`` cannot be written.
        UsageError: see `model_sig_key`.
    """
    model_sig_key([key], weights, dest)
    data = model_sig_bytes(digest_weights(weights), key, name=weights.resolve().name)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write: {exc.strerror}", file=dest) from exc
    return dest


# --- checking -----------------------------------------------------------------------------------


class _Fail:
    """Builds the `VerificationError` of check ``model.sig`` for one file."""

    def __init__(self, file: object):
        self.file = file

    def __call__(self, message: str, hint: str = "") -> VerificationError:
        return VerificationError(message, check=MODEL_SIG, file=self.file, hint=hint)


def _object(value: Any, what: str, fail: _Fail) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(f"{what} is not a JSON object")
    return value


def _envelope(data: bytes, fail: _Fail) -> tuple[str | None, bytes, bytes]:
    """(publicKey hint, payload, signature) of a key-signed Sigstore bundle with a DSSE envelope."""
    if len(data) > MAX_MODEL_SIG_BYTES:
        raise fail(f"larger than {MAX_MODEL_SIG_BYTES:,} bytes")
    try:
        bundle = _object(parse_json(data, file=fail.file), "not a Sigstore bundle: the document", fail)
    except InputError as exc:
        raise fail(
            f"not a Sigstore bundle: {exc.message}", "pass the model.sig written by model_signing"
        ) from None
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise fail(
            f"not a Sigstore bundle with mediaType {BUNDLE_MEDIA_TYPE} (got {bundle.get('mediaType')!r})"
        )
    material = _object(bundle.get("verificationMaterial"), "verificationMaterial", fail)
    if "publicKey" not in material:
        raise fail(
            "signed with a certificate (Sigstore keyless or PKI), not a key",
            "receipts checks model.sig files signed with a trust-root key (`model_signing sign key`)",
        )
    hint = _object(material["publicKey"], "verificationMaterial.publicKey", fail).get("hint")
    if "dsseEnvelope" not in bundle:
        raise fail("the bundle carries no DSSE envelope (a bare message signature is not a model.sig)")
    envelope = _object(bundle["dsseEnvelope"], "dsseEnvelope", fail)
    if envelope.get("payloadType") != _PAYLOAD_TYPE:
        raise fail(f"DSSE payloadType is {envelope.get('payloadType')!r}, expected {_PAYLOAD_TYPE!r}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise fail("the DSSE envelope must carry exactly one signature")
    signature = _object(signatures[0], "dsseEnvelope.signatures[0]", fail)
    payload, sig = envelope.get("payload"), signature.get("sig")
    if not isinstance(payload, str) or not isinstance(sig, str) or not isinstance(hint, str | None):
        raise fail("dsseEnvelope.payload, its sig and publicKey.hint must be strings")
    try:
        return hint, b64decode_strict(payload, "payload"), b64decode_strict(sig, "sig")
    except ValueError as exc:
        raise fail(f"dsseEnvelope: {exc}") from None


def _signer(hint: str | None, payload: bytes, sig: bytes, keys: Mapping[str, PublicKey], fail: _Fail) -> str:
    """The keyid of the trusted key whose signature this is (model_signing's hint picks the key)."""
    candidates = [k for k in keys.values() if k.algorithm == "ecdsa-p256-sha256"]
    if hint:
        candidates = [k for k in candidates if key_hint(k) == hint]
        if not candidates:
            raise fail(
                f"signed by a key that is not in the trust root, or not usable there (publicKey hint {hint})",
                "sign model.sig with a key of the pinned trust root",
            )
    message = pae(_PAYLOAD_TYPE, payload)
    for key in candidates:
        if key.verify(sig, message):
            return key.keyid
    named = f"{candidates[0].keyid}, the trusted key its publicKey hint names" if hint else "any trusted key"
    raise fail(
        f"the signature does not verify with {named}",
        "the file was altered after signing, or another key signed it",
    )


def _resources(payload: bytes, fail: _Fail) -> tuple[str, dict[str, str], str]:
    """(subject sha256, path -> sha256 of the resources, root over them in listed order)."""
    try:
        statement = _object(parse_json(payload, file=f"{fail.file} (payload)"), "the payload", fail)
    except InputError as exc:
        raise fail(f"payload: {exc.message}") from None
    if statement.get("_type") != _STATEMENT_TYPE:
        raise fail(f"payload is not an in-toto Statement v1 (_type must be {_STATEMENT_TYPE})")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise fail(
            f"predicateType {statement.get('predicateType')!r} is not {PREDICATE_TYPE}",
            "re-sign with model_signing >= 1.0",
        )
    subjects, predicate = statement.get("subject"), _object(statement.get("predicate"), "predicate", fail)
    one = subjects[0] if isinstance(subjects, list) and len(subjects) == 1 else None
    digest = one.get("digest") if isinstance(one, dict) else None
    if not isinstance(digest, dict) or not _HEX64.fullmatch(str(digest.get("sha256"))):
        raise fail("the statement must have exactly one subject with a sha256 digest")
    serialization = _object(predicate.get("serialization"), "predicate.serialization", fail)
    method = (serialization.get("method"), serialization.get("hash_type"))
    if method != ("files", "sha256"):
        raise fail(
            f"serialization {method[0]}/{method[1]} is not files/sha256",
            "sign with model_signing's default file serialization (sha256, not shards)",
        )
    entries = predicate.get("resources")
    if not isinstance(entries, list):
        raise fail("predicate.resources is not a list")
    files: dict[str, str] = {}
    outer = hashlib.sha256()
    for index, entry in enumerate(entries):
        entry = _object(entry, f"predicate.resources[{index}]", fail)
        name, value = entry.get("name"), str(entry.get("digest"))
        if not isinstance(name, str) or entry.get("algorithm") != "sha256" or not _HEX64.fullmatch(value):
            raise fail(f"predicate.resources[{index}] needs a name and a sha256 hex digest")
        if name in files:
            raise fail(f"predicate.resources lists {name} twice")
        files[name] = value
        outer.update(bytes.fromhex(value))
    return str(digest["sha256"]), files, outer.hexdigest()


def _first_difference(signed: Mapping[str, str], manifest: Mapping[str, str]) -> str | None:
    differing = sorted(
        (n for n in signed.keys() | manifest.keys() if signed.get(n) != manifest.get(n)),
        key=lambda n: tuple(n.split("/")),
    )
    if not differing:
        return None
    name, more = differing[0], len(differing) - 1
    if name not in signed:
        what = f"{name} is in the receipt's weights manifest but missing from model.sig"
    elif name not in manifest:
        what = f"{name} is in model.sig but not in the receipt's weights manifest"
    else:
        what = f"{name} differs: model.sig has sha256 {signed[name]}, the receipt has {manifest[name]}"
    return what + (f" (and {more} more difference(s))" if more else "")


def check_model_sig(
    data: bytes,
    public_keys: Mapping[str, PublicKey],
    manifest_files: Mapping[str, str],
    root: str,
    *,
    file: object = MODEL_SIG,
) -> str:
    """Check a ``model.sig`` against trusted keys and a receipt's weights manifest.

    Args:
        data: the ``model.sig`` bytes.
        public_keys: keyid -> trusted public key (only ECDSA P-256 keys can match).
        manifest_files: path -> sha256 (hex, ``sha256:`` prefix allowed) of the receipt's manifest.
        root: the receipt's weights root digest (hex, ``sha256:`` prefix allowed).
        file: what to name in messages.

    Returns:
        A one-line detail for the report.

    Raises:
        VerificationError: (check ``model.sig``) not a key-signed Sigstore DSSE bundle, not signed by a
            trusted key, not a model_signing v1.0 files/sha256 statement, inconsistent, or not
            exactly the files and digests of the manifest.
    """
    fail = _Fail(file)
    hint, payload, sig = _envelope(data, fail)
    keyid = _signer(hint, payload, sig, public_keys, fail)
    subject, signed, listed_root = _resources(payload, fail)
    if listed_root != subject:
        raise fail(f"inconsistent: its resources hash to {listed_root}, its subject says {subject}")
    manifest = {name: value.removeprefix("sha256:") for name, value in manifest_files.items()}
    difference = _first_difference(signed, manifest)
    if difference:
        raise fail(difference, "model.sig was made for other files than the ones this receipt signs")
    expected = root.removeprefix("sha256:")
    if subject != expected or root_of(manifest) != expected:
        raise fail(f"subject digest sha256:{subject} is not the receipt's weights root sha256:{expected}")
    return f"model_signing v1.0 signature by {keyid}: {len(signed)} file(s), root sha256:{subject}"
