"""receipts: signed, verifiable evidence of what a distilled model kept and what it costs to run.

This package is the trust kernel (schemas, digests, keys, DSSE, trust roots, sign, verify) and the
one CLI. It never imports torch, transformers or the runner.

Names are imported on first use (PEP 562), so ``import receipts`` (and ``receipts --help``) does not pay
for JSON Schema, cryptography or YAML until a command needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from receipts._version import __version__

if TYPE_CHECKING:
    from receipts.digests import WeightsDigest, digest_weights, sha256_file
    from receipts.dsse import Envelope, parse_envelope, sign_envelope
    from receipts.errors import (
        GateError,
        InputError,
        KeyFileError,
        ReceiptsError,
        SchemaError,
        UsageError,
        VerificationError,
    )
    from receipts.keys import PrivateKey, PublicKey, generate, load_private_key, load_public_key
    from receipts.schemas import detect_kind, validate
    from receipts.sign import sign_receipt
    from receipts.trust import TrustRoot, load_trust_root
    from receipts.verify import Report, VerifiedReceipt, verify_receipt

_HOMES = {
    "receipts.digests": ("WeightsDigest", "digest_weights", "sha256_file"),
    "receipts.dsse": ("Envelope", "parse_envelope", "sign_envelope"),
    "receipts.errors": (
        "GateError",
        "InputError",
        "KeyFileError",
        "ReceiptsError",
        "SchemaError",
        "UsageError",
        "VerificationError",
    ),
    "receipts.keys": ("PrivateKey", "PublicKey", "generate", "load_private_key", "load_public_key"),
    "receipts.schemas": ("detect_kind", "validate"),
    "receipts.sign": ("sign_receipt",),
    "receipts.trust": ("TrustRoot", "load_trust_root"),
    "receipts.verify": ("Report", "VerifiedReceipt", "verify_receipt"),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'receipts' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "Envelope",
    "GateError",
    "InputError",
    "KeyFileError",
    "PrivateKey",
    "PublicKey",
    "ReceiptsError",
    "Report",
    "SchemaError",
    "TrustRoot",
    "UsageError",
    "VerificationError",
    "VerifiedReceipt",
    "WeightsDigest",
    "__version__",
    "detect_kind",
    "digest_weights",
    "generate",
    "load_private_key",
    "load_public_key",
    "load_trust_root",
    "parse_envelope",
    "sha256_file",
    "sign_envelope",
    "sign_receipt",
    "validate",
    "verify_receipt",
]
