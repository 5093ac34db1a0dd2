"""Signing keys: generate, load, identify, sign and verify (ECDSA P-256/SHA-256 default, Ed25519).

Private keys are PKCS#8 PEM encrypted with a passphrase, written 0600; public keys are SPKI PEM.
``keyid = "sha256:" + sha256(SPKI DER)``. ECDSA signatures are DER; the verifier accepts only the
minimal DER encoding with 0 < r, s < n (high-S is accepted, as OpenSSL and WebCrypto accept it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from receipts.documents import read_bytes
from receipts.errors import KeyFileError, ReceiptsError
from receipts.output import check_file, write_file

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "PrivateKey",
    "PublicKey",
    "generate",
    "keyid_of",
    "keypair_paths",
    "load_private_key",
    "load_public_key",
    "public_key_from_pem",
    "write_keypair",
]

Algorithm = Literal["ecdsa-p256-sha256", "ed25519"]
ALGORITHMS: tuple[Algorithm, ...] = ("ecdsa-p256-sha256", "ed25519")
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PASSPHRASE_ENV = "RECEIPTS_PASSPHRASE"  # noqa: S105 - the variable name, not a secret

_Private = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_Public = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def _spki(key: _Public) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def keyid_of(key: _Public) -> str:
    """``sha256:`` + hex sha256 of the key's SubjectPublicKeyInfo DER."""
    return "sha256:" + hashlib.sha256(_spki(key)).hexdigest()


def _algorithm_of(key: object, source: object) -> Algorithm:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ecdsa-p256-sha256"
        raise KeyFileError(
            f"ECDSA key on curve {key.curve.name}; receipts accepts only P-256",
            file=source,
            hint="generate a key with `receipts keygen`",
        )
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise KeyFileError(
        f"unsupported key type {type(key).__name__.lstrip('_')}; use ECDSA P-256 or Ed25519",
        file=source,
        hint="generate a key with `receipts keygen`",
    )


def _der_is_strict(signature: bytes) -> bool:
    # OpenSSL also re-encodes and compares; checking here keeps the rule explicit and shared with
    # verify.js, and rejects r or s outside [1, n-1] before any curve arithmetic.
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        return False
    if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
        return False
    return encode_dss_signature(r, s) == signature


@dataclass(frozen=True)
class PublicKey:
    """A verification key with its algorithm and keyid."""

    key: _Public
    algorithm: Algorithm
    keyid: str

    @classmethod
    def of(cls, key: object, source: object = "<key>") -> PublicKey:
        """Wrap a ``cryptography`` public key, checking it is a supported kind.

        Raises:
            KeyFileError: unsupported algorithm or curve.
        """
        algorithm = _algorithm_of(key, source)
        assert isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)  # noqa: S101
        return cls(key=key, algorithm=algorithm, keyid=keyid_of(key))

    def pem(self) -> str:
        """SPKI PEM text."""
        encoded = self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return encoded.decode("ascii")

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if ``signature`` is a valid signature of ``message`` by this key."""
        try:
            if isinstance(self.key, ed25519.Ed25519PublicKey):
                self.key.verify(signature, message)
            else:
                if not _der_is_strict(signature):
                    return False
                self.key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class PrivateKey:
    """A signing key."""

    key: _Private
    algorithm: Algorithm

    @property
    def public(self) -> PublicKey:
        """The matching public key."""
        return PublicKey.of(self.key.public_key())

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (DER for ECDSA, raw 64 bytes for Ed25519)."""
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(message)
        return self.key.sign(message, ec.ECDSA(hashes.SHA256()))


def generate(algorithm: Algorithm = "ecdsa-p256-sha256") -> PrivateKey:
    """A fresh private key."""
    if algorithm == "ed25519":
        return PrivateKey(ed25519.Ed25519PrivateKey.generate(), "ed25519")
    return PrivateKey(ec.generate_private_key(ec.SECP256R1()), "ecdsa-p256-sha256")


def keypair_paths(stem: Path) -> tuple[Path, Path]:
    """Where `write_keypair` writes: ``STEM.key.pem`` and ``STEM.pub.pem``.

    Raises:
        KeyFileError: either file exists (a key is never overwritten).
        UsageError: either is a folder.
        InputError: their folder cannot be created or written.
    """
    private_path = stem.with_name(stem.name + ".key.pem")
    public_path = stem.with_name(stem.name + ".pub.pem")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise KeyFileError("already exists; refusing to overwrite a key", file=path)
        check_file(path, what="a key file", force=False)
    return private_path, public_path


def write_keypair(key: PrivateKey, stem: Path, passphrase: bytes) -> tuple[Path, Path]:
    """Write ``STEM.key.pem`` (encrypted PKCS#8, mode 0600) and ``STEM.pub.pem`` (SPKI).

    Raises:
        KeyFileError: a file would be overwritten, or the passphrase is empty.
        UsageError: a key path is a folder.
        InputError: the folder cannot be created or written.
    """
    if not passphrase:
        raise KeyFileError("empty passphrase", hint=f"set {PASSPHRASE_ENV} or type one at the prompt")
    private_path, public_path = keypair_paths(stem)
    private_pem = key.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    # Created 0600 from the start and never replaced: no window where the key is world-readable.
    write_file(private_path, private_pem, what="the private key", force=False, mode=0o600)
    try:
        write_file(public_path, key.public.pem().encode("ascii"), what="the public key", force=False)
    except ReceiptsError:
        private_path.unlink(missing_ok=True)  # half a key pair is no key pair
        raise
    return private_path, public_path


def load_private_key(path: Path, passphrase: bytes | None) -> PrivateKey:
    """Load an encrypted (or plain) PKCS#8 PEM private key.

    Raises:
        KeyFileError: missing passphrase, wrong passphrase, a public key, or an unsupported key.
    """
    data = read_bytes(path, what="private key")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise KeyFileError(
            "is a public key; signing needs the private key",
            file=path,
            hint="pass the NAME.key.pem written by `receipts keygen`, not NAME.pub.pem",
        )
    encrypted = b"ENCRYPTED PRIVATE KEY" in data
    if encrypted and not passphrase:
        raise KeyFileError(
            "key is encrypted and no passphrase was given",
            file=path,
            hint=f"set {PASSPHRASE_ENV} or run interactively to be prompted",
        )
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise KeyFileError(
                "wrong passphrase (or corrupted key)", file=path, hint=f"check {PASSPHRASE_ENV}"
            ) from None
        raise KeyFileError(f"not a PEM private key: {exc}", file=path) from None
    except TypeError as exc:
        raise KeyFileError(f"cannot load private key: {exc}", file=path) from None
    except Exception as exc:
        raise KeyFileError(f"cannot load private key: {exc}", file=path) from None
    algorithm = _algorithm_of(key, path)
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)  # noqa: S101
    return PrivateKey(key, algorithm)


def public_key_from_pem(data: bytes, source: object = "<key>") -> PublicKey:
    """Parse SPKI PEM bytes into a `PublicKey`.

    Raises:
        KeyFileError: not a PEM public key, or an unsupported algorithm.
    """
    if b"PRIVATE KEY-----" in data:
        raise KeyFileError(
            "is a private key; pass the public key (NAME.pub.pem)",
            file=source,
            hint="never hand out the .key.pem file",
        )
    try:
        key = serialization.load_pem_public_key(data)
    except Exception as exc:
        raise KeyFileError(f"not a PEM public key: {exc}", file=source) from None
    return PublicKey.of(key, source)


def load_public_key(path: Path) -> PublicKey:
    """Load an SPKI PEM public key file.

    Raises:
        KeyFileError: missing, malformed, or unsupported.
    """
    return public_key_from_pem(read_bytes(path, what="public key"), path)
