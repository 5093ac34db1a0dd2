"""sigstore-python 4.5.1 parses and verifies our receipt envelopes with its own DSSE code.

What does the verifying, precisely:

- ``sigstore.dsse.Envelope._from_json(bytes)`` parses our ``receipt.json`` (through the
  ``sigstore_models.intoto.Envelope`` pydantic model: strict, unknown keys forbidden).
- ``sigstore.dsse._verify(key, envelope)`` verifies it: it builds ``sigstore.dsse._pae(payloadType,
  payload)`` and calls ``key.verify(sig, pae, ECDSA(SHA256()))`` with a ``cryptography`` key loaded
  from our SPKI PEM. This is the very call ``sigstore.verify.Verifier.verify_dsse`` makes at its
  step (7) once it has the signing certificate's key. sigstore-python has no public verifier that
  takes a bare public key: ``sigstore.models.Bundle`` insists on a certificate (``expected
  certificate in bundle``), so for key-based bundles we do what model_signing does: parse the bundle
  with ``sigstore_models.bundle.v1.Bundle`` (``publicKey`` verification material) and hand its
  ``dsseEnvelope`` to ``sigstore.dsse.Envelope`` and ``_verify``.
- ``sigstore.dsse.Statement(payload)`` parses the verified bytes as an in-toto Statement v1
  (``sigstore.dsse._Statement``), and ``Statement._matches_digest`` finds our weights subject.

sigstore's DSSE accepts exactly one signature per envelope, so multi-signed receipts are outside
this interop (the DSSE spec allows several; we use several for thresholds).
"""

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from receipts.dsse import pae
from receipts.keys import generate, write_keypair
from receipts.sign import PAYLOAD_TYPE, PREDICATE_TYPE, sign_receipt

dsse = pytest.importorskip("sigstore.dsse")
sigstore_errors = pytest.importorskip("sigstore.errors")
bundle_v1 = pytest.importorskip("sigstore_models.bundle.v1")
common_v1 = pytest.importorskip("sigstore_models.common.v1")
sigstore_hashes = pytest.importorskip("sigstore.hashes")

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"  # the runs' teacher
WEIGHTS = Path(__file__).parents[1] / "data" / "weights_golden"


@pytest.fixture(scope="module")
def receipt(tmp_path_factory):
    """(receipt.json bytes, the cryptography public key loaded from our SPKI PEM, the statement)."""
    folder = tmp_path_factory.mktemp("interop")
    key = generate()
    _, public_pem = write_keypair(key, folder / "keys" / "release", b"passphrase")
    bundle = sign_receipt(
        CARD, [key], folder / "out", weights=WEIGHTS, issued_at=datetime(2026, 6, 1, tzinfo=UTC)
    )
    data = (bundle / "receipt.json").read_bytes()
    public = serialization.load_pem_public_key(public_pem.read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    statement = json.loads(base64.b64decode(json.loads(data)["payload"]))
    return data, public, statement


def test_sigstore_envelope_parse_and_verify(receipt):
    data, public, _ = receipt
    envelope = dsse.Envelope._from_json(data)
    payload = dsse._verify(public, envelope)
    assert payload == base64.b64decode(json.loads(data)["payload"])
    # the same check spelled out: sigstore's PAE, cryptography's ECDSA P-256/SHA-256
    sigstore_pae = dsse._pae(envelope._inner.payload_type, envelope._inner.payload)
    public.verify(envelope.signature, sigstore_pae, ec.ECDSA(hashes.SHA256()))
    assert sigstore_pae == pae(PAYLOAD_TYPE, payload)  # and it agrees with ours byte for byte


def test_sigstore_parses_our_statement(receipt):
    data, public, ours = receipt
    statement = dsse.Statement(dsse._verify(public, dsse.Envelope._from_json(data)))
    inner = statement._inner
    assert inner.type_ == "https://in-toto.io/Statement/v1"
    assert inner.predicate_type == PREDICATE_TYPE
    assert [(s.name, s.digest.root) for s in inner.subjects] == [
        (s["name"], s["digest"]) for s in ours["subject"]
    ]
    weights = next(s for s in ours["subject"] if s["name"] == "weights")["digest"]["sha256"]
    hashed = sigstore_hashes.Hashed(algorithm=common_v1.HashAlgorithm.SHA2_256, digest=bytes.fromhex(weights))
    assert statement._matches_digest(hashed)


def test_key_based_sigstore_bundle_around_our_envelope(receipt):
    """Our envelope inside a ``publicKey`` Sigstore bundle, as model_signing's key signer writes them."""
    data, public, _ = receipt
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    document = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": hashlib.sha256(pem).hexdigest()}, "tlogEntries": []},
        "dsseEnvelope": json.loads(data),
    }
    bundle = bundle_v1.Bundle.from_json(json.dumps(document))
    assert bundle.verification_material.public_key.hint == hashlib.sha256(pem).hexdigest()
    payload = dsse._verify(public, dsse.Envelope(bundle.dsse_envelope))
    assert dsse.Statement(payload)._inner.predicate_type == PREDICATE_TYPE


def _flip_payload_bit(data: bytes, index: int) -> bytes:
    document = json.loads(data)
    payload = bytearray(base64.b64decode(document["payload"]))
    payload[index // 8] ^= 1 << (index % 8)
    document["payload"] = base64.b64encode(payload).decode("ascii")
    return json.dumps(document).encode()


@pytest.mark.parametrize("bit", [0, 8 * 40 + 3, -1])
def test_one_bit_flip_fails_sigstore_verification(receipt, bit):
    data, public, _ = receipt
    size = len(base64.b64decode(json.loads(data)["payload"]))
    tampered = dsse.Envelope._from_json(_flip_payload_bit(data, bit % (8 * size)))
    with pytest.raises(sigstore_errors.VerificationError, match="DSSE: invalid signature"):
        dsse._verify(public, tampered)
    sigstore_pae = dsse._pae(tampered._inner.payload_type, tampered._inner.payload)
    with pytest.raises(InvalidSignature):
        public.verify(tampered.signature, sigstore_pae, ec.ECDSA(hashes.SHA256()))


def test_another_key_fails_sigstore_verification(receipt):
    data, _, _ = receipt
    other = generate().public.key
    assert isinstance(other, ec.EllipticCurvePublicKey)
    with pytest.raises(sigstore_errors.VerificationError, match="DSSE: invalid signature"):
        dsse._verify(other, dsse.Envelope._from_json(data))
