"""receipts: signed, verifiable evidence of what a distilled model kept and what it costs to run.

This package is the trust kernel (schemas, digests, keys, DSSE, trust roots, sign, verify) and the
one CLI. It never imports torch, transformers or the runner.

Names are imported on first use (PEP 562), so ``import receipts`` (and ``receipts --help``) does not pay
for JSON Schema, cryptography or YAML until a command needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from receipts._lazy import lazy_names
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
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())

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
