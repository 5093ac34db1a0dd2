"""receipts: signed, verifiable evidence of what a distilled model kept and what it costs to run.

This package is the trust kernel (schemas, digests, keys, DSSE, trust roots, sign, verify) and the
one CLI. It never imports torch, transformers or the runner.
"""

__version__ = "0.1.0"

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
from receipts.verify import Report, verify_receipt

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
