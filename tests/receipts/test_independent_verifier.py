"""A receipt is checkable without receipts' code: a ~30-line verifier from the public specs alone.

Specs used: DSSE v1 (PAE, envelope), in-toto Statement v1, model_signing v1.0 "files" digest rule.
Only ``json``, ``base64``, ``hashlib`` and ``cryptography`` verify; receipts only *produces* the receipt.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from receipts.keys import generate
from receipts.sign import sign_receipt

CARD = Path(__file__).parents[1] / "data" / "cards" / "card_valid_minimal.yaml"
FILE_KINDS = {"card", "results", "examples", "footprint", "weights-manifest", "overlap"}


class Rejected(Exception):
    """The independent verifier refuses the receipt."""


def independent_verify(bundle: Path, public_pem: bytes, weights: Path) -> dict[str, Any]:
    """Verify ``bundle/receipt.json`` against one pinned public key; return the statement."""
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    payload_type, body = envelope["payloadType"], base64.b64decode(envelope["payload"], validate=True)
    t = payload_type.encode()
    pae = b"DSSEv1 " + str(len(t)).encode() + b" " + t + b" " + str(len(body)).encode() + b" " + body
    key = serialization.load_pem_public_key(public_pem)
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    keyid = "sha256:" + hashlib.sha256(spki).hexdigest()
    sigs = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"] if s["keyid"] == keyid]
    if not sigs:
        raise Rejected("no signature by the pinned key")
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sigs[0], pae)
        elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
            key.verify(sigs[0], pae, ec.ECDSA(hashes.SHA256()))
        else:
            raise Rejected("unsupported key type")
    except InvalidSignature:
        raise Rejected("bad signature") from None
    statement: dict[str, Any] = json.loads(body)  # the verified bytes, never re-serialised
    if (
        payload_type != "application/vnd.in-toto+json"
        or statement["_type"] != "https://in-toto.io/Statement/v1"
    ):
        raise Rejected("not an in-toto Statement v1")
    names = [p.relative_to(weights).as_posix() for p in weights.rglob("*") if p.is_file()]
    digests = [
        hashlib.sha256((weights / n).read_bytes()).digest() for n in sorted(names, key=lambda n: n.split("/"))
    ]
    root = hashlib.sha256(b"".join(digests)).hexdigest()
    if sum(s["annotations"]["kind"] == "weights" for s in statement["subject"]) != 1:
        raise Rejected("the statement binds no weights (or several)")
    for subject in statement["subject"]:
        kind, want = subject["annotations"]["kind"], subject["digest"]["sha256"]
        if kind in FILE_KINDS and hashlib.sha256((bundle / subject["name"]).read_bytes()).hexdigest() != want:
            raise Rejected(f"{subject['name']} does not match its signed digest")
        if kind == "weights" and root != want:
            raise Rejected("weights root does not match the signed digest")
    return statement


def _weights(folder: Path) -> Path:
    # "tokenizer/..." sorts before "tokenizer-config.json" by path components, after it as a string:
    # the verifier must use model_signing's component order to get the root right.
    (folder / "tokenizer").mkdir(parents=True)
    (folder / "config.json").write_bytes(b'{"hidden_size": 64}\n')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    (folder / "tokenizer" / "tokenizer.json").write_bytes(b'{"model": {"type": "BPE"}}')
    (folder / "tokenizer-config.json").write_bytes(b'{"bos_token": "<s>"}')
    return folder


@pytest.fixture(params=["ecdsa-p256-sha256", "ed25519"])
def signed(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, bytes, Path]:
    key = generate(request.param)
    weights = _weights(tmp_path / "weights")
    bundle = sign_receipt(
        CARD, [key], tmp_path / "out", weights=weights, issued_at=datetime(2025, 1, 15, tzinfo=UTC)
    )
    return bundle, key.public.pem().encode("ascii"), weights


def test_accepts_fresh_receipt(signed: tuple[Path, bytes, Path]) -> None:
    bundle, pem, weights = signed
    statement = independent_verify(bundle, pem, weights)
    kinds = sorted(s["annotations"]["kind"] for s in statement["subject"])
    assert kinds == ["card", "weights", "weights-manifest"]
    assert statement["predicate"]["model"]["name"] == "tiny-original"


def _flip(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("card.yaml", "card.yaml does not match"),
        ("weights.manifest.json", "weights.manifest.json does not match"),
        ("weights/tokenizer/tokenizer.json", "weights root"),
    ],
)
def test_rejects_tampered_file(signed: tuple[Path, bytes, Path], target: str, reason: str) -> None:
    bundle, pem, weights = signed
    _flip(weights.parent / target if target.startswith("weights/") else bundle / target)
    with pytest.raises(Rejected, match=reason):
        independent_verify(bundle, pem, weights)


def test_rejects_tampered_payload_and_other_key(signed: tuple[Path, bytes, Path]) -> None:
    bundle, pem, weights = signed
    receipt = bundle / "receipt.json"
    original = receipt.read_bytes()
    envelope = json.loads(original)
    body = bytearray(base64.b64decode(envelope["payload"]))
    body[body.index(b"tiny-original")] ^= 0x20  # "Tiny-original": still JSON, different bytes
    envelope["payload"] = base64.b64encode(bytes(body)).decode("ascii")
    receipt.write_text(json.dumps(envelope), encoding="ascii")
    with pytest.raises(Rejected, match="bad signature"):
        independent_verify(bundle, pem, weights)
    receipt.write_bytes(original)
    with pytest.raises(Rejected, match="no signature by the pinned key"):
        independent_verify(bundle, generate().public.pem().encode("ascii"), weights)
