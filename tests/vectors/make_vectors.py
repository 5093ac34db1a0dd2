"""Generate the committed verifier test vectors (shared/VECTORS.md 1-13) under tests/vectors/.

    .venv/bin/python -m tests.vectors.make_vectors            # write what is missing
    .venv/bin/python -m tests.vectors.make_vectors --force    # rewrite everything but the keys and golden/v1
    .venv/bin/python -m tests.vectors.make_vectors --check    # regenerate in a temp dir and diff

Every output is a pure function of the fixture keys in keys/, the inputs and the fixed times below:
ECDSA signs with RFC 6979 (deterministic nonces), Ed25519 and RSA PKCS#1 v1.5 are deterministic, and
``issuedAt`` is pinned. So ``--force`` reproduces the committed bytes, and ``--check`` says when the
signer's output has drifted. Keys are made only when missing; a new key forces everything else.
cases.json is rewritten on every run (it is the registry below, in JSON).

THE KEYS IN keys/ ARE PUBLIC TEST FIXTURES. Never trust them for anything.
"""

from __future__ import annotations

import argparse
import base64
import filecmp
import functools
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from receipts.digests import digest_weights, sha256_bytes
from receipts.dsse import MAX_SIGNATURES, pae, sign_envelope
from receipts.keys import P256_ORDER, PrivateKey, keyid_of, load_private_key
from receipts.sign import PAYLOAD_TYPE, sign_receipt
from receipts.trust import ROOT_PAYLOAD_TYPE, format_time, new_root, trust_root_from_bytes

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
PASSPHRASE = b"vectors"  # the fixture keys' passphrase; they are public test keys, see README.md

ROOT_TIME = datetime(2026, 1, 1, tzinfo=UTC)  # version 1 of every root; notBefore of its keys
ISSUED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # issuedAt of every receipt unless a case says otherwise
UPDATE_TIME = datetime(2026, 7, 1, tzinfo=UTC)  # trust root updates; revokedAt
NOT_BEFORE = datetime(2026, 3, 1, tzinfo=UTC)  # the window of key A in roots/window.json
NOT_AFTER = datetime(2026, 9, 1, tzinfo=UTC)
SOURCE_DATE_EPOCH = str(int(ISSUED.timestamp()))

PUBLISHER = "Vector Lab"
CARD_ONLY = "vector-card@1.0.0"
RELEASE_A = "vector-model@0.1.0"
RELEASE_B = "vector-model@0.2.0"
MAIN = "roots/main.json"
PACK = "../data/pack_minimal"
CHECKS = frozenset(
    {
        "envelope",
        "signatures",
        "statement",
        "schema",
        "trust",
        "identity",
        "subjects",
        "bindings",
        "numbers",
        "weights",
        "pack",
        "trust-root",
    }
)


# --- keys ---------------------------------------------------------------------------------------


class _Rfc6979Key(PrivateKey):
    """A `PrivateKey` whose ECDSA signatures use RFC 6979 nonces, so regenerating is reproducible."""

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        return super().sign(message)


KEY_SPECS: dict[str, Callable[[], Any]] = {
    "p256-a": lambda: ec.generate_private_key(ec.SECP256R1()),  # trusted (every root)
    "p256-b": lambda: ec.generate_private_key(ec.SECP256R1()),  # trusted (every root)
    "p256-untrusted": lambda: ec.generate_private_key(ec.SECP256R1()),  # in no root
    "ed25519": ed25519.Ed25519PrivateKey.generate,  # trusted in roots/main.json
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),  # wrong curve (VECTORS 6)
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),  # VECTORS 6
}


def _write_key(folder: Path, name: str, key: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (folder / f"{name}.key.pem").write_bytes(private)
    (folder / f"{name}.pub.pem").write_bytes(public)


def ensure_keys(folder: Path) -> bool:
    """Create the fixture keys that are missing; True if any was created."""
    created = False
    for name, make in KEY_SPECS.items():
        if not (folder / f"{name}.key.pem").exists():
            _write_key(folder, name, make())
            print(f"created test key {folder / name}.key.pem")
            created = True
    return created


@dataclass(frozen=True)
class Keys:
    """The fixture keys: ``a``/``b`` trusted P-256, ``u`` untrusted P-256, ``e`` Ed25519, and raw others."""

    folder: Path

    def _load(self, name: str) -> PrivateKey:
        key = load_private_key(self.folder / f"{name}.key.pem", PASSPHRASE)
        return _Rfc6979Key(key.key, key.algorithm)

    def raw(self, name: str) -> Any:
        """A key receipts refuses to load (P-384, RSA), as a ``cryptography`` object."""
        return serialization.load_pem_private_key((self.folder / f"{name}.key.pem").read_bytes(), PASSPHRASE)

    @cached_property
    def a(self) -> PrivateKey:
        return self._load("p256-a")

    @cached_property
    def b(self) -> PrivateKey:
        return self._load("p256-b")

    @cached_property
    def u(self) -> PrivateKey:
        return self._load("p256-untrusted")

    @cached_property
    def e(self) -> PrivateKey:
        return self._load("ed25519")


# --- small helpers ------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def envelope(
    payload: bytes | str, signatures: list[tuple[str, bytes | str]], payload_type: str = PAYLOAD_TYPE
) -> bytes:
    """Compact DSSE envelope JSON; ``bytes`` are base64-encoded, ``str`` is written as given."""
    document = {
        "payloadType": payload_type,
        "payload": payload if isinstance(payload, str) else b64(payload),
        "signatures": [{"keyid": k, "sig": s if isinstance(s, str) else b64(s)} for k, s in signatures],
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical(statement: dict[str, Any]) -> bytes:
    """RFC 8785 bytes, as `receipts.sign` produces them."""
    return bytes(rfc8785.dumps(statement))


def payload_of(bundle: Path) -> bytes:
    """The signed payload bytes of a bundle's receipt."""
    return base64.b64decode(json.loads((bundle / "receipt.json").read_bytes())["payload"])


def statement_of(bundle: Path) -> dict[str, Any]:
    """The statement of a bundle's receipt, parsed (a fresh copy to edit)."""
    value: dict[str, Any] = json.loads(payload_of(bundle))
    return value


def copy_bundle(source: Path, out: Path, name: str | None = None) -> Path:
    """Copy a bundle folder into ``out`` (under ``name``, default its own) and return the copy."""
    target = out / (name or source.name)
    shutil.copytree(source, target)
    return target


def sign_payload(bundle: Path, payload: bytes, keys: list[PrivateKey]) -> None:
    """Write ``bundle/receipt.json``: ``payload`` signed over the in-toto PAE by every key."""
    (bundle / "receipt.json").write_bytes(sign_envelope(PAYLOAD_TYPE, payload, keys))


def subject(statement: dict[str, Any], kind: str) -> dict[str, Any]:
    """The first subject of ``kind``."""
    found: dict[str, Any] = next(s for s in statement["subject"] if s["annotations"]["kind"] == kind)
    return found


def dump_root(document: dict[str, Any]) -> bytes:
    """A trust root file, formatted as `receipts.trust` writes it."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def root_entry(public_pem: bytes, keyid: str, algorithm: str, **extra: str) -> dict[str, Any]:
    """One ``signed.keys`` entry of a trust root."""
    entry = {"keyid": keyid, "algorithm": algorithm, "publicKey": public_pem.decode("ascii")}
    return {**entry, "status": "active", "notBefore": format_time(ROOT_TIME), **extra}


def _public_pem(key: Any) -> bytes:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def sign_root_document(signed: dict[str, Any], signers: list[PrivateKey]) -> bytes:
    """A trust root file with ``signed`` and one signature per signer (no acceptance check)."""
    message = pae(ROOT_PAYLOAD_TYPE, canonical(signed))
    signatures = [{"keyid": k.public.keyid, "sig": b64(k.sign(message))} for k in signers]
    return dump_root({"format": "receipts.trust-root/v1", "signed": signed, "signatures": signatures})


# --- the world the cases are cut from -----------------------------------------------------------


@dataclass
class World:
    """The vectors folder being written (the real one, or a temp copy for ``--check``)."""

    base: Path
    keys: Keys

    def golden(self, name: str) -> Path:
        return self.base / "golden" / "v1" / name

    def root(self, name: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads((self.base / "roots" / f"{name}.json").read_bytes())
        return value

    @cached_property
    def card_payload(self) -> bytes:
        """The signed statement of the card-only golden (claims keys A and E)."""
        return payload_of(self.golden(CARD_ONLY))

    def card_bundle(self, out: Path, receipt: bytes) -> None:
        """The card-only golden with ``receipt`` as its receipt.json (the envelope-level cases)."""
        bundle = copy_bundle(self.golden(CARD_ONLY), out)
        (bundle / "receipt.json").write_bytes(receipt)

    def card_statement(self, edit: Callable[[dict[str, Any]], None], signers: list[PrivateKey]) -> bytes:
        """The card-only golden's statement, edited, as an envelope signed by ``signers``."""
        statement = json.loads(self.card_payload)
        edit(statement)
        return sign_envelope(PAYLOAD_TYPE, canonical(statement), signers)

    def signed_by(self, key: PrivateKey, payload: bytes | None = None) -> tuple[str, bytes]:
        """(keyid, signature) of ``key`` over the in-toto PAE of ``payload`` (default: the card golden)."""
        return key.public.keyid, key.sign(
            pae(PAYLOAD_TYPE, self.card_payload if payload is None else payload)
        )


# --- inputs, roots and goldens (deterministic files, made once) ---------------------------------


def make_weights_b(folder: Path) -> None:
    """Release B's weights: three small files of fixed content."""
    (folder / "tokenizer").mkdir()
    (folder / "config.json").write_bytes(b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 8}\n')
    (folder / "model.safetensors").write_bytes(bytes((i * 37 + 11) % 256 for i in range(512)))
    (folder / "tokenizer" / "tokenizer.json").write_bytes(b'{"model": {"type": "BPE", "vocab": {"b": 0}}}\n')


def make_run_b(folder: Path, world: World) -> None:
    """Release B's run: a real run of the tiny-mc pack (tests/fixture_runs.py) naming release B's weights."""
    from tests.fixture_runs import fake_run

    fake_run(folder, 0.9, world.base / "weights" / RELEASE_B, f"hf:weights/{RELEASE_B}")


def make_footprint_b(folder: Path, world: World) -> None:
    """Release B's footprint (same shape as tests/data/footprint_minimal.json)."""
    footprint = json.loads((DATA / "footprint_minimal.json").read_bytes())
    root = digest_weights(world.base / "weights" / RELEASE_B).root
    footprint["model"].update(spec=f"hf:weights/{RELEASE_B}", digest=f"sha256:{root}")
    footprint["summary"]["note"] = "release B footprint; written by make_vectors.py, not a measurement"
    (folder / "footprint.json").write_text(json.dumps(footprint, indent=2) + "\n", encoding="utf-8")


def _root(keys: list[PrivateKey], threshold: int = 1) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        new_root(PUBLISHER, [k.public for k in keys], threshold=threshold, now=ROOT_TIME)
    )
    return value


def _entry(document: dict[str, Any], keyid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in document["signed"]["keys"] if e["keyid"] == keyid)
    return found


def make_roots(world: World) -> dict[str, bytes]:
    """The pinned roots the receipt cases verify against (all version 1, unsigned)."""
    k = world.keys
    revoked = _root([k.a, k.b])
    _entry(revoked, k.a.public.keyid).update(status="revoked", revokedAt=format_time(UPDATE_TIME))
    retired = _root([k.a, k.b])
    _entry(retired, k.a.public.keyid)["status"] = "retired"
    window = _root([k.a, k.b])
    _entry(window, k.a.public.keyid).update(
        notBefore=format_time(NOT_BEFORE), notAfter=format_time(NOT_AFTER)
    )
    roots = {
        "main": _root([k.a, k.b, k.e]),
        "threshold-2": _root([k.a, k.b], threshold=2),
        "revoked": revoked,
        "retired": retired,
        "window": window,
    }
    return {name: dump_root(document) for name, document in roots.items()}


def make_golden(world: World, name: str, out: Path) -> None:
    """Sign one golden bundle into ``out`` with the real signer."""
    k, inputs = world.keys, HERE / "inputs"
    if name == CARD_ONLY:
        sign_receipt(inputs / "card-vector-card-1.0.0.yaml", [k.a, k.e], out, issued_at=ISSUED)
    elif name == RELEASE_A:
        sign_receipt(
            inputs / "card-0.1.0.yaml",
            [k.a],
            out,
            runs=[DATA / "run_minimal"],
            footprints=[DATA / "footprint_minimal.json"],
            weights=world.base / "weights" / RELEASE_A,
            issued_at=ISSUED,
        )
    else:
        sign_receipt(
            inputs / "card-0.2.0.yaml",
            [k.a],
            out,
            runs=[world.base / "inputs" / "run-0.2.0"],
            footprints=[world.base / "inputs" / "footprint-0.2.0" / "footprint.json"],
            weights=world.base / "weights" / RELEASE_B,
            issued_at=ISSUED,
        )


# --- the case registry --------------------------------------------------------------------------

Build = Callable[[World, Path], None]


@dataclass(frozen=True)
class Case:
    """One vector: where its files are, what to verify them against, and the expected outcome."""

    id: str
    section: int
    description: str
    check: str  # the failing check, or "pass"
    build: Build | None = None  # writes cases/<id>/; None: uses committed files (plus `mutate`)
    bundle: str = CARD_ONLY  # a folder name: inside cases/<id>/; a path: relative to tests/vectors
    root: str = MAIN
    options: dict[str, Any] = field(default_factory=dict)
    mutate: dict[str, str] = field(default_factory=dict)
    kind: str = "verify"
    updates: tuple[str, ...] = ()

    def manifest(self) -> dict[str, Any]:
        """This case's entry in cases.json."""
        folder = f"cases/{self.id}"
        entry: dict[str, Any] = {"id": self.id, "section": self.section, "kind": self.kind}
        entry["description"] = self.description
        if self.kind == "verify":
            entry["bundle"] = self.bundle if "/" in self.bundle else f"{folder}/{self.bundle}"
        entry["root"] = self.root
        if self.updates:
            entry["updates"] = list(self.updates)
        if self.options:
            entry["options"] = self.options
        if self.mutate:
            entry["mutate"] = self.mutate
        entry["expect"] = "pass" if self.check == "pass" else "fail"
        if self.check != "pass":
            entry["check"] = self.check
        return entry


CASES: list[Case] = []


def case(case_id: str, section: int, check: str, description: str, **kwargs: Any) -> Callable[[Build], Build]:
    """Register the decorated function as the builder of case ``case_id``."""

    def register(build: Build) -> Build:
        add(case_id, section, check, description, build=build, **kwargs)
        return build

    return register


def add(case_id: str, section: int, check: str, description: str, **kwargs: Any) -> None:
    """Register a case."""
    assert check == "pass" or check in CHECKS, check
    assert case_id.startswith(f"{section:02d}-"), case_id
    CASES.append(Case(case_id, section, description, check, **kwargs))


Receipt = Callable[[World], bytes]


def envelope_case(
    case_id: str, section: int, check: str, description: str, **kwargs: Any
) -> Callable[[Receipt], Receipt]:
    """Register a case whose bundle is the card-only golden with the receipt the function returns."""

    def register(make: Receipt) -> Receipt:
        def build(world: World, out: Path) -> None:
            world.card_bundle(out, make(world))

        add(case_id, section, check, description, build=build, **kwargs)
        return make

    return register


# --- 1. the signature bytes ---------------------------------------------------------------------


def der_int(value: int, *, extra_zero: bool = False) -> bytes:
    """DER INTEGER for ``value >= 0``: minimal, or with one superfluous leading zero byte."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    body = b"\x00" + body if extra_zero else body
    return b"\x02" + bytes([len(body)]) + body


def der(r: int, s: int, *, long_form: bool = False, extra_zero: bool = False) -> bytes:
    """An ECDSA-Sig-Value SEQUENCE, by hand, so that each defect below is exactly one defect."""
    body = der_int(r, extra_zero=extra_zero) + der_int(s)
    return b"\x30" + (b"\x81" if long_form else b"") + bytes([len(body)]) + body


def _rs(world: World) -> tuple[int, int]:
    signature = world.signed_by(world.keys.a)[1]
    r_len = signature[3]
    r = int.from_bytes(signature[4 : 4 + r_len], "big")
    s = int.from_bytes(signature[6 + r_len :], "big")
    assert der(r, s) == signature  # our DER writer agrees with OpenSSL's
    return r, s


def _flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


N = P256_ORDER
SIG_DEFECTS: list[tuple[str, str, str, Callable[[bytes, int, int], bytes | str]]] = [
    ("01-sig-bitflip", "signatures", "one bit flipped in the last byte of s", lambda d, r, s: _flip(d, -1)),
    ("01-sig-truncated", "signatures", "the DER signature's last byte cut off", lambda d, r, s: d[:-1]),
    ("01-sig-empty", "envelope", 'sig is the empty string ""', lambda d, r, s: ""),
    ("01-sig-not-base64", "envelope", "sig is not base64 at all", lambda d, r, s: "not base64!"),
    (
        "01-sig-der-trailing-garbage",
        "signatures",
        "valid DER followed by one 0x00",
        lambda d, r, s: d + b"\0",
    ),
    (
        "01-sig-der-long-form-length",
        "signatures",
        "SEQUENCE length in non-minimal long form (0x81 nn); same r and s",
        lambda d, r, s: der(r, s, long_form=True),
    ),
    (
        "01-sig-der-int-leading-zero",
        "signatures",
        "INTEGER r with a superfluous leading 0x00 (non-minimal DER); same r and s",
        lambda d, r, s: der(r, s, extra_zero=True),
    ),
    ("01-sig-r-zero", "signatures", "r = 0", lambda d, r, s: der(0, s)),
    ("01-sig-s-zero", "signatures", "s = 0", lambda d, r, s: der(r, 0)),
    ("01-sig-r-equals-n", "signatures", "r = n (the P-256 group order)", lambda d, r, s: der(N, s)),
    ("01-sig-s-equals-n", "signatures", "s = n", lambda d, r, s: der(r, N)),
    (
        "01-sig-r-plus-n",
        "signatures",
        "r + n: congruent to r mod n, out of range",
        lambda d, r, s: der(r + N, s),
    ),
    (
        "01-sig-s-plus-n",
        "signatures",
        "s + n: congruent to s mod n, out of range",
        lambda d, r, s: der(r, s + N),
    ),
    ("01-sig-r-s-swapped", "signatures", "r and s swapped", lambda d, r, s: der(s, r)),
    (
        "01-sig-raw-p1363",
        "signatures",
        "raw 64-byte r||s (the WebCrypto/P1363 form) instead of DER",
        lambda d, r, s: r.to_bytes(32, "big") + s.to_bytes(32, "big"),
    ),
    (
        "01-sig-high-s",
        "pass",
        "high-S twin (r, n - s) of a valid signature: ACCEPTED, as OpenSSL and WebCrypto accept it "
        "(keys.py); DSSE envelopes are not signed, so malleability is harmless here",
        lambda d, r, s: der(r, max(s, N - s)),
    ),
]


def _sig_defect_build(transform: Callable[[bytes, int, int], bytes | str]) -> Build:
    def build(world: World, out: Path) -> None:
        keyid, signature = world.signed_by(world.keys.a)
        r, s = _rs(world)
        world.card_bundle(out, envelope(world.card_payload, [(keyid, transform(signature, r, s))]))

    return build


for _id, _check, _description, _transform in SIG_DEFECTS:
    add(_id, 1, _check, _description, build=_sig_defect_build(_transform))


# --- 2. the payload bytes -----------------------------------------------------------------------


def _same_meaning(payload: bytes, changed: bytes) -> bytes:
    assert changed != payload
    assert json.loads(changed) == json.loads(payload)
    return changed


def _payload_variant(make: Callable[[bytes], bytes]) -> Receipt:
    def receipt(world: World) -> bytes:
        return envelope(make(world.card_payload), [world.signed_by(world.keys.a)])

    return receipt


for _id, _description, _make in [
    (
        "02-payload-bitflip",
        "one bit flipped in the decoded payload (vector-card -> wector-card); signature unchanged",
        lambda p: _flip(p, p.index(b"vector-card")),
    ),
    (
        "02-payload-whitespace",
        "payload re-serialised with indentation: same JSON value, other bytes",
        lambda p: _same_meaning(p, json.dumps(json.loads(p), indent=2).encode()),
    ),
    (
        "02-payload-key-order",
        "payload re-serialised with the top-level keys in reverse order",
        lambda p: _same_meaning(p, json.dumps(dict(reversed(json.loads(p).items()))).encode()),
    ),
    (
        "02-payload-one-point-zero",
        'payload with "ram_gib":1 written as 1.0 (equal as JSON numbers)',
        lambda p: _same_meaning(p, p.replace(b'"ram_gib":1}', b'"ram_gib":1.0}', 1)),
    ),
    (
        "02-payload-unicode-escape",
        'payload with "_type" spelled "\\u005ftype" (the same string)',
        lambda p: _same_meaning(p, p.replace(b'"_type"', b'"\\u005ftype"', 1)),
    ),
]:
    envelope_case(_id, 2, "signatures", _description)(_payload_variant(_make))


# --- 3. payloadType and PAE ---------------------------------------------------------------------


@envelope_case("03-payloadtype-changed", 3, "envelope", "payloadType application/json, signature untouched")
def _payloadtype_changed(world: World) -> bytes:
    return envelope(world.card_payload, [world.signed_by(world.keys.a)], "application/json")


@envelope_case(
    "03-payloadtype-changed-resigned",
    3,
    "envelope",
    "payloadType application/json with a valid signature over that PAE: still not an in-toto receipt",
)
def _payloadtype_resigned(world: World) -> bytes:
    signature = world.keys.a.sign(pae("application/json", world.card_payload))
    return envelope(world.card_payload, [(world.keys.a.public.keyid, signature)], "application/json")


@envelope_case(
    "03-payloadtype-non-ascii", 3, "envelope", "payloadType application/vnd.in-toto+jsön, validly signed"
)
def _payloadtype_non_ascii(world: World) -> bytes:
    kind = "application/vnd.in-toto+jsön"
    signature = world.keys.a.sign(pae(kind, world.card_payload))
    return envelope(world.card_payload, [(world.keys.a.public.keyid, signature)], kind)


@envelope_case("03-payloadtype-empty", 3, "envelope", 'payloadType "", validly signed')
def _payloadtype_empty(world: World) -> bytes:
    signature = world.keys.a.sign(pae("", world.card_payload))
    return envelope(world.card_payload, [(world.keys.a.public.keyid, signature)], "")


def _wrong_pae(make: Callable[[bytes, bytes], bytes]) -> Receipt:
    def receipt(world: World) -> bytes:
        message = make(PAYLOAD_TYPE.encode(), world.card_payload)
        assert message != pae(PAYLOAD_TYPE, world.card_payload)
        return envelope(world.card_payload, [(world.keys.a.public.keyid, world.keys.a.sign(message))])

    return receipt


for _id, _description, _pae in [
    (
        "03-pae-missing-prefix",
        'signature over the PAE without its "DSSEv1 " prefix',
        lambda t, p: b"%d %s %d %s" % (len(t), t, len(p), p),
    ),
    (
        "03-pae-wrong-type-length",
        "signature over a PAE whose payloadType length is off by one",
        lambda t, p: b"DSSEv1 %d %s %d %s" % (len(t) + 1, t, len(p), p),
    ),
    (
        "03-pae-wrong-body-length",
        "signature over a PAE whose payload length is off by one",
        lambda t, p: b"DSSEv1 %d %s %d %s" % (len(t), t, len(p) - 1, p),
    ),
    ("03-pae-raw-payload", "signature over the payload bytes alone, no PAE", lambda t, p: p),
    (
        "03-pae-base64-body",
        "signature over a PAE of the base64 text instead of the decoded bytes",
        lambda t, p: pae(t.decode(), base64.b64encode(p)),
    ),
]:
    envelope_case(_id, 3, "signatures", _description)(_wrong_pae(_pae))


# --- 4. the signatures list ---------------------------------------------------------------------


def _junk(index: int) -> bytes:
    return b"junk signature %d" % index


@envelope_case("04-signatures-empty", 4, "envelope", "signatures: []")
def _signatures_empty(world: World) -> bytes:
    return envelope(world.card_payload, [])


@envelope_case("04-signatures-missing", 4, "envelope", "no signatures key at all")
def _signatures_missing(world: World) -> bytes:
    return json.dumps({"payloadType": PAYLOAD_TYPE, "payload": b64(world.card_payload)}).encode()


@envelope_case("04-signatures-not-a-list", 4, "envelope", "signatures is one object, not a list of them")
def _signatures_object(world: World) -> bytes:
    keyid, signature = world.signed_by(world.keys.a)
    document = {"payloadType": PAYLOAD_TYPE, "payload": b64(world.card_payload)}
    return json.dumps({**document, "signatures": {"keyid": keyid, "sig": b64(signature)}}).encode()


@envelope_case(
    "04-same-signature-twice",
    4,
    "trust",
    "key A's signature twice under a threshold-2 root: counts once, 1 of 2",
    root="roots/threshold-2.json",
)
def _same_twice(world: World) -> bytes:
    return envelope(world.card_payload, [world.signed_by(world.keys.a)] * 2)


@envelope_case(
    "04-same-key-two-signatures",
    4,
    "trust",
    "two different valid signatures by key A, (r, s) and (r, n - s), under a threshold-2 root: 1 of 2",
    root="roots/threshold-2.json",
)
def _same_key_twice(world: World) -> bytes:
    r, s = _rs(world)
    keyid = world.keys.a.public.keyid
    return envelope(world.card_payload, [(keyid, der(r, s)), (keyid, der(r, N - s))])


def _claims_a_and_b(world: World) -> bytes:
    statement = json.loads(world.card_payload)
    statement["predicate"]["signer"]["keyids"] = sorted(
        [world.keys.a.public.keyid, world.keys.b.public.keyid]
    )
    return canonical(statement)


@envelope_case(
    "04-threshold-two-distinct-keys",
    4,
    "pass",
    "keys A and B both sign a statement claiming both: meets a threshold-2 root",
    root="roots/threshold-2.json",
)
def _two_keys(world: World) -> bytes:
    payload = _claims_a_and_b(world)
    return envelope(payload, [world.signed_by(world.keys.a, payload), world.signed_by(world.keys.b, payload)])


@envelope_case(
    "04-threshold-two-one-invalid",
    4,
    "trust",
    "A valid, B's entry junk, under a threshold-2 root: 1 of 2",
    root="roots/threshold-2.json",
)
def _two_keys_one_junk(world: World) -> bytes:
    payload = _claims_a_and_b(world)
    return envelope(payload, [world.signed_by(world.keys.a, payload), (world.keys.b.public.keyid, _junk(0))])


@envelope_case("04-junk-then-valid", 4, "pass", "an unknown keyid with junk first, a valid signature second")
def _junk_then_valid(world: World) -> bytes:
    return envelope(world.card_payload, [("sha256:" + "00" * 32, _junk(0)), world.signed_by(world.keys.a)])


@envelope_case(
    "04-invalid-trusted-then-valid",
    4,
    "pass",
    "junk under trusted key B's keyid first, A's valid signature second",
)
def _invalid_then_valid(world: World) -> bytes:
    return envelope(
        world.card_payload, [(world.keys.b.public.keyid, _junk(0)), world.signed_by(world.keys.a)]
    )


@envelope_case("04-eight-signatures", 4, "pass", "the cap: 7 junk signatures then a valid one (8 in all)")
def _eight(world: World) -> bytes:
    junk = [(world.keys.b.public.keyid, _junk(i)) for i in range(MAX_SIGNATURES - 1)]
    return envelope(world.card_payload, [*junk, world.signed_by(world.keys.a)])


@envelope_case("04-nine-signatures", 4, "envelope", "over the cap: 8 junk signatures then a valid one (9)")
def _nine(world: World) -> bytes:
    junk = [(world.keys.b.public.keyid, _junk(i)) for i in range(MAX_SIGNATURES)]
    return envelope(world.card_payload, [*junk, world.signed_by(world.keys.a)])


@envelope_case("04-keyid-empty", 4, "envelope", 'a valid signature with keyid ""')
def _keyid_empty(world: World) -> bytes:
    return envelope(world.card_payload, [("", world.signed_by(world.keys.a)[1])])


# --- 5. which key signed ------------------------------------------------------------------------


@envelope_case(
    "05-unknown-keyid",
    5,
    "signatures",
    "A's valid signature under a keyid no root lists (keyid is a binding)",
)
def _unknown_keyid(world: World) -> bytes:
    return envelope(world.card_payload, [("sha256:" + "ab" * 32, world.signed_by(world.keys.a)[1])])


@envelope_case(
    "05-untrusted-key",
    5,
    "signatures",
    "a valid signature by an untrusted key, under its own keyid and claim",
)
def _untrusted(world: World) -> bytes:
    keyid = world.keys.u.public.keyid
    return world.card_statement(lambda s: s["predicate"]["signer"].update(keyids=[keyid]), [world.keys.u])


@envelope_case(
    "05-untrusted-sig-trusted-keyid", 5, "signatures", "the untrusted key's signature under A's keyid"
)
def _untrusted_as_trusted(world: World) -> bytes:
    return envelope(world.card_payload, [(world.keys.a.public.keyid, world.signed_by(world.keys.u)[1])])


@envelope_case(
    "05-other-trusted-keys-sig",
    5,
    "signatures",
    "trusted key B's valid signature under trusted key A's keyid",
)
def _b_as_a(world: World) -> bytes:
    return envelope(world.card_payload, [(world.keys.a.public.keyid, world.signed_by(world.keys.b)[1])])


@envelope_case(
    "05-revoked-key",
    5,
    "trust",
    "signed by key A, revoked in the root (revokedAt after issuedAt: backdating does not help)",
    root="roots/revoked.json",
)
def _revoked(world: World) -> bytes:
    return envelope(world.card_payload, [world.signed_by(world.keys.a)])


envelope_case(
    "05-revoked-key-allow-retired",
    5,
    "trust",
    "signed by revoked key A, verified with --allow-retired: revoked never counts",
    root="roots/revoked.json",
    options={"allow_retired": True},
)(_revoked)


@envelope_case(
    "05-revoked-and-active-key",
    5,
    "pass",
    "signed by revoked A and active B, both claimed: B alone meets threshold 1",
    root="roots/revoked.json",
)
def _revoked_and_active(world: World) -> bytes:
    payload = _claims_a_and_b(world)
    return envelope(payload, [world.signed_by(world.keys.a, payload), world.signed_by(world.keys.b, payload)])


def _issued(when: str) -> Receipt:
    def receipt(world: World) -> bytes:
        return world.card_statement(lambda s: s["predicate"].update(issuedAt=when), [world.keys.a])

    return receipt


for _id, _check, _when, _what in [
    ("05-before-not-before", "trust", "2026-02-28T23:59:59Z", "one second before A's notBefore"),
    ("05-at-not-before", "pass", "2026-03-01T00:00:00Z", "exactly A's notBefore (notBefore <= t: valid)"),
    ("05-just-before-not-after", "pass", "2026-08-31T23:59:59Z", "one second before A's notAfter"),
    ("05-at-not-after", "trust", "2026-09-01T00:00:00Z", "exactly A's notAfter (t < notAfter: expired)"),
]:
    envelope_case(_id, 5, _check, f"issuedAt {_when}, {_what}", root="roots/window.json")(_issued(_when))

envelope_case(
    "05-issued-in-future", 5, "trust", "issuedAt 2099-01-01T00:00:00Z, in the future of any verifier clock"
)(_issued("2099-01-01T00:00:00Z"))

envelope_case(
    "05-retired-key",
    5,
    "trust",
    "signed by retired key A, without --allow-retired",
    root="roots/retired.json",
)(_revoked)
envelope_case(
    "05-retired-key-allow-retired",
    5,
    "pass",
    "signed by retired key A, with --allow-retired",
    root="roots/retired.json",
    options={"allow_retired": True},
)(_revoked)


# --- 6. key types -------------------------------------------------------------------------------


def _odd_key_case(name: str, algorithm: str, sign: Callable[[Any, bytes], bytes]) -> Build:
    """A root that lists key ``name`` as ``algorithm``, and a bundle signed by that key."""

    def build(world: World, out: Path) -> None:
        key = world.keys.raw(name)
        keyid = keyid_of(key.public_key())  # sha256 of the SPKI DER, whatever the key type
        document = _root([world.keys.a])
        document["signed"]["keys"].append(root_entry(_public_pem(key), keyid, algorithm))
        (out / "trust.json").write_bytes(dump_root(document))
        statement = json.loads(world.card_payload)
        statement["predicate"]["signer"]["keyids"] = [keyid]
        payload = canonical(statement)
        world.card_bundle(out, envelope(payload, [(keyid, sign(key, pae(PAYLOAD_TYPE, payload)))]))

    return build


def _ecdsa(key: Any, message: bytes) -> bytes:
    signature: bytes = key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    return signature


def _rsa(key: Any, message: bytes) -> bytes:
    signature: bytes = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return signature


def _eddsa(key: Any, message: bytes) -> bytes:
    signature: bytes = key.sign(message)
    return signature


for _id, _description, _name, _algorithm, _sign in [
    (
        "06-p384-labelled-p256",
        "the root lists a P-384 key as ecdsa-p256-sha256; the receipt is signed by it",
        "p384",
        "ecdsa-p256-sha256",
        _ecdsa,
    ),
    (
        "06-ed25519-under-ecdsa-entry",
        "the root lists an Ed25519 key as ecdsa-p256-sha256; the receipt is signed by it",
        "ed25519",
        "ecdsa-p256-sha256",
        _eddsa,
    ),
    (
        "06-rsa-labelled-ecdsa",
        "the root lists an RSA-2048 key as ecdsa-p256-sha256; the receipt is RSA-signed",
        "rsa2048",
        "ecdsa-p256-sha256",
        _rsa,
    ),
    (
        "06-rsa-algorithm",
        "the root lists an RSA-2048 key as rsa-pkcs1v15-sha256 (not an allowed algorithm)",
        "rsa2048",
        "rsa-pkcs1v15-sha256",
        _rsa,
    ),
]:
    add(
        _id,
        6,
        "trust-root",
        _description,
        build=_odd_key_case(_name, _algorithm, _sign),
        root=f"cases/{_id}/trust.json",
    )


@envelope_case(
    "06-ecdsa-sig-under-ed25519-keyid", 6, "signatures", "A's DER ECDSA signature under Ed25519 key E's keyid"
)
def _ecdsa_as_ed(world: World) -> bytes:
    return envelope(world.card_payload, [(world.keys.e.public.keyid, world.signed_by(world.keys.a)[1])])


@envelope_case(
    "06-ed25519-sig-under-ecdsa-keyid", 6, "signatures", "E's Ed25519 signature under P-256 key A's keyid"
)
def _ed_as_ecdsa(world: World) -> bytes:
    return envelope(world.card_payload, [(world.keys.a.public.keyid, world.signed_by(world.keys.e)[1])])


@envelope_case("06-ed25519-only", 6, "pass", "signed by trusted Ed25519 key E alone (Ed25519 is supported)")
def _ed_only(world: World) -> bytes:
    return envelope(world.card_payload, [world.signed_by(world.keys.e)])


# --- 7. base64 spellings ------------------------------------------------------------------------


def _b64_variant(change: Callable[[str], str], *, sig: bool = True, payload: bool = True) -> Receipt:
    def receipt(world: World) -> bytes:
        keyid, signature = world.signed_by(world.keys.a)
        text, sig_text = b64(world.card_payload), b64(signature)
        new_text = change(text) if payload else text
        new_sig = change(sig_text) if sig else sig_text
        assert (new_text, new_sig) != (text, sig_text)  # the variant must differ
        return envelope(new_text, [(keyid, new_sig)])

    return receipt


def _urlsafe(text: str) -> str:
    return text.translate(str.maketrans("+/", "-_"))


def _unpadded(text: str) -> str:
    return text.rstrip("=")


def _mixed(text: str) -> str:
    index = min(i for i in (text.find("+"), text.find("/")) if i >= 0)
    assert any(c in text[index + 1 :] for c in "+/")  # one standard character must remain
    return text[:index] + _urlsafe(text[index]) + text[index + 1 :]


def _non_canonical(text: str) -> str:
    # The last data character of a padded string has unused low bits; lenient decoders ignore them.
    body = text.rstrip("=")
    assert body != text  # needs a padded string
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(body[-1]) | 1]
    assert base64.b64decode(body[:-1] + last + text[len(body) :]) == base64.b64decode(text)
    return body[:-1] + last + text[len(body) :]


for _id, _check, _description, _change, _where in [
    (
        "07-urlsafe",
        "pass",
        "payload and sig in the URL-safe alphabet (-_), padded: DSSE says MUST accept",
        _urlsafe,
        {},
    ),
    (
        "07-unpadded",
        "pass",
        "payload and sig without = padding: accepted (decision in dsse.py)",
        _unpadded,
        {},
    ),
    (
        "07-urlsafe-unpadded",
        "pass",
        "payload and sig URL-safe and unpadded (base64url as JWS writes it)",
        lambda t: _urlsafe(_unpadded(t)),
        {},
    ),
    (
        "07-payload-newlines",
        "envelope",
        "payload broken into 76-character MIME lines with \\n: refused (no whitespace inside base64)",
        lambda t: "\n".join(t[i : i + 76] for i in range(0, len(t), 76)),
        {"sig": False},
    ),
    ("07-payload-trailing-newline", "envelope", "payload ending in \\n", lambda t: t + "\n", {"sig": False}),
    (
        "07-sig-newline",
        "envelope",
        "a \\n in the middle of sig",
        lambda t: t[:20] + "\n" + t[20:],
        {"payload": False},
    ),
    (
        "07-payload-space",
        "envelope",
        "a space in the middle of payload",
        lambda t: t[:40] + " " + t[40:],
        {"sig": False},
    ),
    (
        "07-mixed-alphabets",
        "envelope",
        "payload mixing - and + (or _ and /): refused",
        _mixed,
        {"sig": False},
    ),
    (
        "07-non-canonical-bits",
        "envelope",
        "payload whose last character has non-zero unused bits (decodes, leniently, to the same bytes)",
        _non_canonical,
        {"sig": False},
    ),
    ("07-excess-padding", "envelope", "payload with one = too many", lambda t: t + "=", {"sig": False}),
]:
    envelope_case(_id, 7, _check, _description)(_b64_variant(_change, **_where))


# --- 8. the envelope's JSON ---------------------------------------------------------------------


def _golden_receipt(world: World) -> bytes:
    return (world.golden(CARD_ONLY) / "receipt.json").read_bytes()


def _evil_payload(world: World) -> str:
    statement = json.loads(world.card_payload)
    statement["predicate"]["card"]["license"]["id"] = "Proprietary"
    return b64(canonical(statement))


def _raw_case(case_id: str, check: str, description: str, make: Receipt, **kwargs: Any) -> None:
    envelope_case(case_id, 8, check, description, **kwargs)(make)


def _duplicate_payload(evil_first: bool) -> Receipt:
    def receipt(world: World) -> bytes:
        good = b64(world.card_payload)
        first, second = (_evil_payload(world), good) if evil_first else (good, _evil_payload(world))
        keyid, signature = world.signed_by(world.keys.a)
        sigs = json.dumps([{"keyid": keyid, "sig": b64(signature)}], separators=(",", ":"))
        return (
            f'{{"payloadType":"{PAYLOAD_TYPE}","payload":"{first}","payload":"{second}","signatures":{sigs}}}'
        ).encode()

    return receipt


_raw_case(
    "08-duplicate-payload-evil-first",
    "envelope",
    '"payload" twice: an unsigned edit first, the signed one last (what JSON.parse and json.loads keep)',
    _duplicate_payload(evil_first=True),
)
_raw_case(
    "08-duplicate-payload-evil-last",
    "envelope",
    '"payload" twice: the signed one first, an unsigned edit last',
    _duplicate_payload(evil_first=False),
)
_raw_case(
    "08-duplicate-payloadtype",
    "envelope",
    '"payloadType" twice (application/json, then the in-toto type)',
    lambda w: _golden_receipt(w).replace(b"{", b'{"payloadType":"application/json",', 1),
)
_raw_case(
    "08-duplicate-sig-key",
    "envelope",
    'a signature object with "sig" twice (junk, then the valid one)',
    lambda w: _golden_receipt(w).replace(b'"sig":', b'"sig":"anVuaw==","sig":', 1),
)
_raw_case(
    "08-extra-top-level-field",
    "envelope",
    'an extra top-level field "comment"',
    lambda w: _golden_receipt(w)[:-1] + b',"comment":"hi"}',
)
_raw_case(
    "08-extra-signature-field",
    "envelope",
    'a signature object with an extra "cert" field',
    lambda w: _golden_receipt(w).replace(b'"sig":', b'"cert":null,"sig":', 1),
)
_raw_case(
    "08-bom",
    "envelope",
    "a UTF-8 byte-order mark before the JSON",
    lambda w: b"\xef\xbb\xbf" + _golden_receipt(w),
)
_raw_case(
    "08-not-utf8",
    "envelope",
    "a Latin-1 byte (0xe9) inside a keyid string: not UTF-8",
    lambda w: _golden_receipt(w).replace(b'"keyid":"sha256:', b'"keyid":"\xe9sha256:', 1),
)
_raw_case(
    "08-trailing-data",
    "envelope",
    "a second JSON value after the envelope",
    lambda w: _golden_receipt(w) + b"{}",
)
_raw_case(
    "08-not-an-object",
    "envelope",
    "the envelope wrapped in a JSON array",
    lambda w: b"[" + _golden_receipt(w) + b"]",
)
_raw_case(
    "08-nan",
    "envelope",
    "payloadType: NaN (not JSON, though Python's json module reads it)",
    lambda w: re.sub(rb'"payloadType":"[^"]*"', b'"payloadType":NaN', _golden_receipt(w), count=1),
)


def _nested(depth: int) -> Receipt:
    # object (1) > signatures list (2) > depth - 2 more lists: exactly `depth` levels in all
    return lambda w: _golden_receipt(w).replace(
        b'"signatures":[', b'"signatures":[' + b"[" * (depth - 2) + b"]" * (depth - 2) + b",", 1
    )


_raw_case("08-deep-nesting-65", "envelope", "65 levels of nesting, one past the 64-level cap", _nested(65))
_raw_case(
    "08-deep-nesting-10000",
    "envelope",
    "10,000 levels of nesting (recursion-depth bomb for naive parsers)",
    _nested(10_000),
)
_raw_case(
    "08-pretty-printed",
    "pass",
    "the envelope re-indented, with a trailing newline: the envelope is not signed, the payload is",
    lambda w: (json.dumps(json.loads(_golden_receipt(w)), indent=4) + "\n").encode(),
)
add(
    "08-oversized",
    8,
    "envelope",
    "an envelope over the 16 MiB cap (generated at test time, not committed)",
    bundle=f"golden/v1/{CARD_ONLY}",
    mutate={"receipt": "oversized"},
)


@envelope_case("08-statement-deep-nesting", 8, "statement", "a validly signed payload nested 100 levels deep")
def _statement_nested(world: World) -> bytes:
    payload = b'{"_type":"https://in-toto.io/Statement/v1","x":' + b"[" * 100 + b"]" * 100 + b"}"
    return sign_envelope(PAYLOAD_TYPE, payload, [world.keys.a])


# --- 9. the statement (validly signed by trusted key A) -----------------------------------------


def _statement_case(
    case_id: str, check: str, description: str, edit: Callable[[dict[str, Any]], Any]
) -> None:
    envelope_case(case_id, 9, check, description)(lambda w: w.card_statement(edit, [w.keys.a]))


def _signed_bytes(case_id: str, description: str, make: Callable[[bytes], bytes]) -> None:
    envelope_case(case_id, 9, "statement", description)(
        lambda w: sign_envelope(PAYLOAD_TYPE, make(w.card_payload), [w.keys.a])
    )


def _card(statement: dict[str, Any]) -> dict[str, Any]:
    return subject(statement, "card")


_statement_case(
    "09-wrong-type",
    "statement",
    "_type in-toto Statement v0.1",
    lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"),
)
_statement_case(
    "09-wrong-predicate-type",
    "statement",
    "predicateType SLSA provenance v1",
    lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"),
)
_signed_bytes("09-payload-not-json", "the signed payload is not JSON", lambda p: b"this is not JSON")
_signed_bytes("09-payload-json-array", "the signed payload is a JSON array", lambda p: b"[" + p + b"]")
_signed_bytes(
    "09-payload-duplicate-key",
    'the signed payload has "_type" twice (a bogus one first)',
    lambda p: b'{"_type":"https://example.com/evil",' + p[1:],
)
_signed_bytes("09-payload-bom", "the signed payload starts with a UTF-8 BOM", lambda p: b"\xef\xbb\xbf" + p)
_statement_case(
    "09-subject-without-digest", "schema", "the card subject has no digest", lambda s: _card(s).pop("digest")
)
_statement_case(
    "09-subject-empty-digest",
    "schema",
    "the card subject's digest is {}",
    lambda s: _card(s).update(digest={}),
)


@envelope_case(
    "09-subject-only-sha512", 9, "subjects", "the card subject's digest is its true sha512, and only that"
)
def _only_sha512(world: World) -> bytes:
    card = (world.golden(CARD_ONLY) / "card.yaml").read_bytes()
    digest = {"sha512": hashlib.sha512(card).hexdigest()}
    return world.card_statement(lambda s: _card(s).update(digest=digest), [world.keys.a])


_statement_case(
    "09-duplicate-subject-names",
    "subjects",
    "card.yaml listed twice among the subjects",
    lambda s: s["subject"].append(dict(_card(s))),
)


def _no_card(statement: dict[str, Any]) -> None:
    statement["subject"] = [
        {"name": "pack:x@1", "digest": {"sha256": "00" * 32}, "annotations": {"kind": "pack"}}
    ]


_statement_case("09-no-card-subject", "subjects", "the card subject replaced by a pack subject", _no_card)
_statement_case(
    "09-subject-path-traversal",
    "subjects",
    "card subject named ../vector-card@1.0.0/card.yaml (resolves to the right file; still refused)",
    lambda s: _card(s).update(name=f"../{CARD_ONLY}/card.yaml"),
)
_statement_case(
    "09-subject-absolute-path",
    "subjects",
    "card subject named /etc/passwd",
    lambda s: _card(s).update(name="/etc/passwd"),
)
_statement_case(
    "09-subject-nul-byte",
    "subjects",
    "card subject name with a NUL byte (card.yaml\\u0000.txt)",
    lambda s: _card(s).update(name="card.yaml\x00.txt"),
)


@envelope_case("09-signer-claims-other-key", 9, "trust", "signed by A, but signer.keyids claims only B")
def _claims_b(world: World) -> bytes:
    keyid = world.keys.b.public.keyid
    return world.card_statement(lambda s: s["predicate"]["signer"].update(keyids=[keyid]), [world.keys.a])


_statement_case(
    "09-predicate-missing-gate", "schema", "predicate without gate", lambda s: s["predicate"].pop("gate")
)
_statement_case(
    "09-predicate-extra-field",
    "schema",
    "predicate with an extra field",
    lambda s: s["predicate"].update(extra=1),
)
_statement_case(
    "09-card-fails-schema",
    "schema",
    "the predicate's card has no license",
    lambda s: s["predicate"]["card"].pop("license"),
)
_statement_case(
    "09-issued-at-not-a-date",
    "schema",
    "issuedAt 2026-02-30T12:00:00Z: matches the pattern, is not a date",
    lambda s: s["predicate"].update(issuedAt="2026-02-30T12:00:00Z"),
)
# Python's `$` also matches before a final newline, ECMA-262's does not: the schemas' patterns end in
# `$(?!\n)` so that the schema refuses each of these in both readings. Read with a bare `$`, each would
# pass the schema and fail a later check (named in its description).
_statement_case(
    "09-subject-digest-trailing-newline",
    "schema",
    'the card subject\'s sha256 is its true digest followed by "\\n" (later: subjects)',
    lambda s: _card(s)["digest"].update(sha256=_card(s)["digest"]["sha256"] + "\n"),
)
_statement_case(
    "09-model-name-trailing-newline",
    "schema",
    'predicate.model.name is the card\'s name followed by "\\n" (later: identity)',
    lambda s: s["predicate"]["model"].update(name=s["predicate"]["model"]["name"] + "\n"),
)
_statement_case(
    "09-signer-keyid-trailing-newline",
    "schema",
    'each of signer.keyids followed by "\\n"; signed by key A (later: trust)',
    lambda s: s["predicate"]["signer"].update(keyids=[k + "\n" for k in s["predicate"]["signer"]["keyids"]]),
)


# --- 10. the files bound by digest --------------------------------------------------------------

CONTENT_FILES = {
    "card": "card.yaml",
    "results": "runs/tiny-mc/results.json",
    "examples": "runs/tiny-mc/examples.jsonl",
    "footprint": "footprints/footprint_minimal.json",
    "manifest": "weights.manifest.json",
}
B_FILES = {**CONTENT_FILES, "footprint": "footprints/footprint.json"}


def _content_case(what: str, how: str) -> Build:
    def build(world: World, out: Path) -> None:
        bundle = copy_bundle(world.golden(RELEASE_A), out)
        target = bundle / CONTENT_FILES[what]
        if how == "modified":
            data = target.read_bytes()
            index = max(data.rfind(b"0"), data.rfind(b"1"))  # a digit: one character, still valid
            target.write_bytes(_flip(data, index))
        elif how == "missing":
            target.unlink()
        else:
            shutil.copyfile(world.golden(RELEASE_B) / B_FILES[what], target)

    return build


for _what in CONTENT_FILES:
    for _how, _text in [
        ("modified", "one character changed"),
        ("missing", "deleted"),
        ("from-other-release", f"replaced by the same file of {RELEASE_B} (mix-and-match)"),
    ]:
        add(
            f"10-{_what}-{_how}",
            10,
            "subjects",
            f"{RELEASE_A}: {CONTENT_FILES[_what]} {_text}",
            build=_content_case(_what, _how),
            bundle=RELEASE_A,
        )


@case(
    "10-all-files-from-other-release",
    10,
    "subjects",
    f"{RELEASE_A}'s receipt.json with every other file from {RELEASE_B}",
    bundle=RELEASE_A,
)
def _all_from_b(world: World, out: Path) -> None:
    bundle = copy_bundle(world.golden(RELEASE_B), out, RELEASE_A)
    shutil.copyfile(world.golden(RELEASE_A) / "receipt.json", bundle / "receipt.json")
    (bundle / B_FILES["footprint"]).rename(bundle / CONTENT_FILES["footprint"])


def _rebound(files: list[str], edit: Callable[[dict[str, Any]], None] | None = None) -> Build:
    """Release A with ``files`` taken from release B and re-signed by trusted key A to match them."""

    def build(world: World, out: Path) -> None:
        bundle = copy_bundle(world.golden(RELEASE_A), out)
        statement = statement_of(bundle)
        for what in files:
            data = (world.golden(RELEASE_B) / B_FILES[what]).read_bytes()
            (bundle / CONTENT_FILES[what]).write_bytes(data)
            named = next(s for s in statement["subject"] if s["name"] == CONTENT_FILES[what])
            named["digest"]["sha256"] = sha256_bytes(data)
        if edit is not None:
            edit(statement)
        sign_payload(bundle, canonical(statement), [world.keys.a])

    return build


def _renumbered(edit: Callable[[Path], None]) -> Build:
    """Release A with a signed file edited by ``edit`` (in the bundle) and re-signed by trusted key A.

    The digests and signatures then hold: only re-deriving the numbers from the evidence catches it.
    """

    def build(world: World, out: Path) -> None:
        bundle = copy_bundle(world.golden(RELEASE_A), out)
        edit(bundle)
        statement = statement_of(bundle)
        for subject in statement["subject"]:
            if (bundle / subject["name"]).is_file():
                subject["digest"]["sha256"] = sha256_bytes((bundle / subject["name"]).read_bytes())
        results = json.loads((bundle / CONTENT_FILES["results"]).read_bytes())
        statement["predicate"]["runs"][0]["summary"] = results["summary"]
        sign_payload(bundle, canonical(statement), [world.keys.a])

    return build


def _rederived(edit: Callable[[Path], None]) -> Build:
    """`_renumbered`, and the statement's gate and quantization table recomputed from the edited files.

    So that the one rule a case is about is the only thing that catches it (verify.js re-derives neither).
    """
    renumbered = _renumbered(edit)

    def build(world: World, out: Path) -> None:
        from receipts.formats import Card, Footprint, Results
        from receipts.sign import quantization_table, signed_gate

        renumbered(world, out)
        bundle = out / world.golden(RELEASE_A).name
        statement = statement_of(bundle)
        results = Results.parse(json.loads((bundle / CONTENT_FILES["results"]).read_bytes()))
        footprint = Footprint.parse(json.loads((bundle / CONTENT_FILES["footprint"]).read_bytes()))
        card = Card.parse(statement["predicate"]["card"])
        statement["predicate"]["gate"] = signed_gate(card, [results], [footprint])
        statement["predicate"]["quantization"] = quantization_table([results], [footprint])
        sign_payload(bundle, canonical(statement), [world.keys.a])

    return build


def _edit_results(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(bundle: Path) -> None:
        path = bundle / CONTENT_FILES["results"]
        results = json.loads(path.read_bytes())
        change(results)
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    return edit


def _retention(results: dict[str, Any]) -> None:
    results["summary"]["retention"] = 0.84
    results["metrics"]["all"]["acc"]["retention"]["student"]["value"] = 0.84


def _ci(results: dict[str, Any]) -> None:
    results["metrics"]["all"]["acc"]["roles"]["student"]["ci95"][1] = 0.99


def _examples_flipped(bundle: Path) -> None:
    """The student's answer to q2 made right in the examples log; results.json names the new log."""
    path = bundle / CONTENT_FILES["examples"]
    rows = [json.loads(line) for line in path.read_bytes().splitlines()]
    row = next(r for r in rows if r["item"] == "q2")
    student = row["roles"]["student"]
    student.update(answer=str(row["gold"]), score=1.0, scores={"acc": 1.0, "acc_norm": 1.0})
    row["agreement"]["student"] = True
    data = b"".join(
        json.dumps(r, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode() + b"\n"
        for r in rows
    )
    path.write_bytes(data)
    _edit_results(lambda r: r["examples"].update(sha256=sha256_bytes(data)))(bundle)


def _rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _write_rows(bundle: Path, rows: list[dict[str, Any]], results: dict[str, Any]) -> None:
    """The examples log as the runner writes it, and results naming its digest."""
    data = b"".join(
        json.dumps(r, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode() + b"\n"
        for r in rows
    )
    (bundle / CONTENT_FILES["examples"]).write_bytes(data)
    results["examples"]["sha256"] = sha256_bytes(data)
    path = bundle / CONTENT_FILES["results"]
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _derived_as(bundle: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json of ``bundle`` with every derived section recomputed from ``rows``."""
    from receipts.derive import DERIVED, derive_results, facts_of

    results = json.loads((bundle / CONTENT_FILES["results"]).read_bytes())
    header = {k: v for k, v in results.items() if k not in DERIVED}
    return {**header, **derive_results(header, rows, facts_of(results))}


def _row_repeated(bundle: Path) -> None:
    """q1's row logged twice, and results derived counting it twice (as a derive that took repeats would).

    The results are derived with the copy under another item id (the same numbers: the copy's cells are
    the original's), then the copy gets q1's id back: only refusing the repeat catches it.
    """
    rows = _rows_of(bundle / CONTENT_FILES["examples"])
    original = next(r for r in rows if r["item"] == "q1")
    results = _derived_as(bundle, [*rows, {**original, "item": "q1-again"}])
    _write_rows(bundle, [*rows, dict(original)], results)


def _retention_under_the_gap(bundle: Path) -> None:
    """200 rows where teacher and base differ by 0.005: derive says no retention, the results sign one.

    The scores and the summary are the rows' own means, and the signed retention is (S - B) / (T - B):
    only retention's null rule (|T - B| < 0.01) refuses it, in Python and in verify.js alike.
    """
    template = _rows_of(bundle / CONTENT_FILES["examples"])[0]
    rows = []
    for i in range(200):
        right = {"teacher": i < 101, "base": i < 100, "student": i < 100 or i == 150}
        roles = {}
        for role, cell in template["roles"].items():
            score = 1.0 if right[role] else 0.0
            roles[role] = {**cell, "score": score, "scores": {"acc": score, "acc_norm": score}}
        rows.append({**template, "item": f"g{i:03d}", "roles": roles})
    results = _derived_as(bundle, rows)
    teacher, base, student = 101 / 200, 100 / 200, 101 / 200
    assert results["summary"]["retention"] is None  # derive's null rule applies
    results["summary"]["retention"] = round((student - base) / (teacher - base), 6)
    _write_rows(bundle, rows, results)


for _id, _description, _edit_bundle in [
    (
        "10-examples-row-repeated",
        "q1's row twice in examples.jsonl, results derived counting it twice, re-signed: one row per item",
        _row_repeated,
    ),
    (
        "10-retention-signed-under-the-null-rule",
        "teacher and base differ by 0.005 over 200 rows (retention undefined) but the summary signs 1.0",
        _retention_under_the_gap,
    ),
    (
        "10-results-retention-edited",
        "retention 0.5 -> 0.84 in results.json and the statement's run summary, all digests re-signed",
        _edit_results(_retention),
    ),
    (
        "10-results-ci-edited",
        "the student's accuracy CI upper bound set to 0.99 in results.json, re-signed",
        _edit_results(_ci),
    ),
    (
        "10-examples-edited-results-kept",
        "a student answer made right in examples.jsonl (digest updated, re-signed); results.json unchanged",
        _examples_flipped,
    ),
]:
    build = _rederived(_edit_bundle) if _edit_bundle in (_row_repeated, _retention_under_the_gap) else None
    add(_id, 10, "numbers", _description, build=build or _renumbered(_edit_bundle), bundle=RELEASE_A)


for _id, _description, _files, _edit in [
    (
        "10-card-file-differs-from-signed-card",
        "card.yaml of release B, its digest re-signed, but the signed predicate still carries A's card",
        ["card"],
        None,
    ),
    (
        "10-examples-not-named-by-results",
        "examples of release B with its digest re-signed; results.json names A's examples log",
        ["examples"],
        None,
    ),
    (
        "10-student-is-other-weights",
        "results and examples of release B re-signed into A: the evaluated student is not A's weights",
        ["results", "examples"],
        None,
    ),
    (
        "10-manifest-root-mismatch",
        "weights manifest of release B re-signed into A: it does not add up to the signed weights digest",
        ["manifest"],
        None,
    ),
    (
        "10-run-pack-differs",
        "the signed run entry names pack version 9.9.9; results.json says 1.0.0",
        [],
        lambda s: s["predicate"]["runs"][0]["pack"].update(version="9.9.9"),
    ),
]:
    add(_id, 10, "bindings", _description, build=_rebound(_files, _edit), bundle=RELEASE_A)

add(
    "10-pack-modified",
    10,
    "pack",
    "--pack: one bit flipped in the pack's items (at test time)",
    bundle=f"golden/v1/{RELEASE_A}",
    options={"pack": PACK},
    mutate={"pack": "bitflip"},
)
add(
    "10-pack-symlink",
    10,
    "pack",
    "--pack: a symbolic link added to the pack folder (at test time; links are refused)",
    bundle=f"golden/v1/{RELEASE_A}",
    options={"pack": PACK},
    mutate={"pack": "symlink"},
)
add(
    "10-pack-unchanged",
    10,
    "pass",
    "--pack: the pack the run used, copied (control for the two cases above)",
    bundle=f"golden/v1/{RELEASE_A}",
    options={"pack": PACK},
    mutate={"pack": "none"},
)


# --- 11. weights (mutated at test time on a copy of weights/vector-model@0.1.0) -------------------

WEIGHTS_MUTATIONS = {
    "none": ("pass", "an unchanged copy of the weights (control)"),
    "bitflip": ("weights", "one bit flipped in sub/blob.bin"),
    "extra-file": ("weights", "an extra file extra.bin"),
    "deleted-file": ("weights", "config.json deleted"),
    "renamed-file": ("weights", "config.json renamed to config.jsn"),
    "moved-into-subfolder": ("weights", "a-c moved to sub/a-c"),
    "empty-file": ("weights", "an empty file added"),
    "symlink-file": ("weights", "a symbolic link to config.json added (links are refused)"),
    "symlink-dir": ("weights", "a symbolic link to the sub/ folder added (links are refused)"),
    "single-file": ("weights", "--weights names one file of the folder instead of the folder"),
    "missing": ("weights", "--weights names a folder that does not exist"),
}
for _op, (_check, _description) in WEIGHTS_MUTATIONS.items():
    add(
        f"11-weights-{_op}",
        11,
        _check,
        _description,
        bundle=f"golden/v1/{RELEASE_A}",
        options={"weights": f"weights/{RELEASE_A}", "pack": PACK},
        mutate={"weights": _op},
    )
add(
    "11-weights-of-other-release",
    11,
    "weights",
    f"{RELEASE_A}'s receipt checked against {RELEASE_B}'s weights",
    bundle=f"golden/v1/{RELEASE_A}",
    options={"weights": f"weights/{RELEASE_B}"},
)
add(
    "11-weights-for-card-only-receipt",
    11,
    "weights",
    "--weights given for a receipt that binds no weights",
    bundle=f"golden/v1/{CARD_ONLY}",
    options={"weights": f"weights/{RELEASE_A}"},
)


# --- 12. trust root updates and trust root files -------------------------------------------------


def _next(base: dict[str, Any], **change: Any) -> dict[str, Any]:
    signed: dict[str, Any] = json.loads(json.dumps(base["signed"]))  # a deep copy
    signed.update(version=signed["version"] + 1, issuedAt=format_time(UPDATE_TIME), **change)
    return signed


def _add_key(signed: dict[str, Any], key: PrivateKey) -> dict[str, Any]:
    signed["keys"].append(root_entry(key.public.pem().encode(), key.public.keyid, key.public.algorithm))
    return signed


def _update_case(
    case_id: str, check: str, description: str, root: str, updates: list[str]
) -> Callable[[Callable[[World, Path], None]], Build]:
    return case(
        case_id,
        12,
        check,
        description,
        kind="trust-update",
        root=root.format(id=case_id),
        updates=tuple(u.format(id=case_id) for u in updates),
    )


@_update_case(
    "12-update-valid",
    "pass",
    "v1 -> v2 adding key U, signed by active key A of v1 (control)",
    MAIN,
    ["cases/{id}/trust.v2.json"],
)
def _update_valid(world: World, out: Path) -> None:
    signed = _add_key(_next(world.root("main")), world.keys.u)
    (out / "trust.v2.json").write_bytes(sign_root_document(signed, [world.keys.a]))


@_update_case(
    "12-update-unsigned",
    "trust-root",
    "v2 adding key U with no signatures",
    MAIN,
    ["cases/{id}/trust.v2.json"],
)
def _update_unsigned(world: World, out: Path) -> None:
    signed = _add_key(_next(world.root("main")), world.keys.u)
    (out / "trust.v2.json").write_bytes(sign_root_document(signed, []))


@_update_case(
    "12-update-signed-by-revoked-key",
    "trust-root",
    "v2 (valid, signed by B) revokes A; v3 adding key U is signed by revoked A only",
    MAIN,
    ["cases/{id}/trust.v2.json", "cases/{id}/trust.v3.json"],
)
def _update_revoked(world: World, out: Path) -> None:
    v2 = _next(world.root("main"))
    _entry({"signed": v2}, world.keys.a.public.keyid).update(
        status="revoked", revokedAt=format_time(UPDATE_TIME)
    )
    (out / "trust.v2.json").write_bytes(sign_root_document(v2, [world.keys.b]))
    v3 = _add_key(_next({"signed": v2}), world.keys.u)
    (out / "trust.v3.json").write_bytes(sign_root_document(v3, [world.keys.a]))


@_update_case(
    "12-update-signed-by-untrusted-key",
    "trust-root",
    "v2 adding key U, signed by U itself",
    MAIN,
    ["cases/{id}/trust.v2.json"],
)
def _update_untrusted(world: World, out: Path) -> None:
    signed = _add_key(_next(world.root("main")), world.keys.u)
    (out / "trust.v2.json").write_bytes(sign_root_document(signed, [world.keys.u]))


@_update_case(
    "12-update-rollback",
    "trust-root",
    "pinned v2 (signed by A), offered v1 (roots/main.json): rollback",
    "cases/{id}/trust.v2.json",
    [MAIN],
)
def _update_rollback(world: World, out: Path) -> None:
    signed = _add_key(_next(world.root("main")), world.keys.u)
    (out / "trust.v2.json").write_bytes(sign_root_document(signed, [world.keys.a]))


@_update_case(
    "12-update-same-version",
    "trust-root",
    "pinned v2, offered another v2 (threshold changed) validly signed by A: not newer, refused",
    "cases/{id}/trust.v2.json",
    ["cases/{id}/trust.v2-other.json"],
)
def _update_same_version(world: World, out: Path) -> None:
    v2 = _add_key(_next(world.root("main")), world.keys.u)
    (out / "trust.v2.json").write_bytes(sign_root_document(v2, [world.keys.a]))
    other = dict(v2, threshold=2)
    (out / "trust.v2-other.json").write_bytes(sign_root_document(other, [world.keys.a]))


@_update_case(
    "12-update-skips-version",
    "trust-root",
    "pinned v1, offered v3 signed by A (v2 never shown): skipping is refused",
    MAIN,
    ["cases/{id}/trust.v3.json"],
)
def _update_skip(world: World, out: Path) -> None:
    v2 = _add_key(_next(world.root("main")), world.keys.u)
    v3 = _next({"signed": v2})
    (out / "trust.v3.json").write_bytes(sign_root_document(v3, [world.keys.a]))


@_update_case(
    "12-update-threshold-not-met",
    "trust-root",
    "pinned roots/threshold-2.json, v2 adding U signed by A only: 1 of 2",
    "roots/threshold-2.json",
    ["cases/{id}/trust.v2.json"],
)
def _update_threshold(world: World, out: Path) -> None:
    signed = _add_key(_next(world.root("threshold-2")), world.keys.u)
    (out / "trust.v2.json").write_bytes(sign_root_document(signed, [world.keys.a]))


@_update_case(
    "12-update-same-key-twice",
    "trust-root",
    "pinned roots/threshold-2.json, v2 signed twice by A: counts once, 1 of 2",
    "roots/threshold-2.json",
    ["cases/{id}/trust.v2.json"],
)
def _update_twice(world: World, out: Path) -> None:
    signed = _add_key(_next(world.root("threshold-2")), world.keys.u)
    (out / "trust.v2.json").write_bytes(sign_root_document(signed, [world.keys.a, world.keys.a]))


@_update_case(
    "12-update-edited-after-signing",
    "trust-root",
    "v2 signed by A, then its threshold edited: the signature no longer covers it",
    MAIN,
    ["cases/{id}/trust.v2.json"],
)
def _update_edited(world: World, out: Path) -> None:
    signed = _add_key(_next(world.root("main")), world.keys.u)
    document = json.loads(sign_root_document(signed, [world.keys.a]))
    document["signed"]["threshold"] = 2
    (out / "trust.v2.json").write_bytes(dump_root(document))


@_update_case(
    "12-update-other-publisher",
    "trust-root",
    "v2 renaming the publisher, validly signed by A: refused",
    MAIN,
    ["cases/{id}/trust.v2.json"],
)
def _update_publisher(world: World, out: Path) -> None:
    signed = _next(world.root("main"), publisher="Someone Else")
    (out / "trust.v2.json").write_bytes(sign_root_document(signed, [world.keys.a]))


def _bad_root(case_id: str, description: str, edit: Callable[[dict[str, Any], World], bytes | None]) -> None:
    """A pinned root file that must be refused on load; the receipt is the card-only golden."""

    def build(world: World, out: Path) -> None:
        document = world.root("main")
        data = edit(document, world)
        (out / "trust.json").write_bytes(data if data is not None else dump_root(document))

    add(
        case_id,
        12,
        "trust-root",
        description,
        build=build,
        bundle=f"golden/v1/{CARD_ONLY}",
        root=f"cases/{case_id}/trust.json",
    )


def _first_key(document: dict[str, Any]) -> dict[str, Any]:
    key: dict[str, Any] = document["signed"]["keys"][0]
    return key


_bad_root(
    "12-root-impossible-date",
    "a key's notBefore is 2026-02-30T00:00:00Z (matches the pattern, is not a date)",
    lambda d, w: _first_key(d).update(notBefore="2026-02-30T00:00:00Z"),
)
_bad_root(
    "12-root-non-ascii-public-key",
    "a publicKey PEM with a non-ASCII character in its base64 body",
    lambda d, w: _first_key(d).update(publicKey=_first_key(d)["publicKey"].replace("M", "Ä", 1)),
)
_bad_root(
    "12-root-keyid-mismatch",
    "key A's entry carries key B's keyid",
    lambda d, w: _first_key(d).update(keyid=w.keys.b.public.keyid),
)
_bad_root(
    "12-root-threshold-exceeds-active-keys",
    "threshold 4 with 3 active keys",
    lambda d, w: d["signed"].update(threshold=4),
)
_bad_root(
    "12-root-duplicate-json-key",
    '"threshold" twice in the signed part',
    lambda d, w: dump_root(d).replace(b'"threshold": 1,', b'"threshold": 1,\n    "threshold": 1,', 1),
)


# --- 13. identity and rollback of the receipt itself --------------------------------------------


@case(
    "13-older-receipt-in-newer-folder",
    13,
    "identity",
    f"the validly signed {RELEASE_A} bundle served from a folder named {RELEASE_B}",
    bundle=RELEASE_B,
)
def _older_in_newer(world: World, out: Path) -> None:
    copy_bundle(world.golden(RELEASE_A), out, RELEASE_B)


add(
    "13-expect-newer-version",
    13,
    "identity",
    f"{RELEASE_A} verified with --expect {RELEASE_B}",
    bundle=f"golden/v1/{RELEASE_A}",
    options={"expect": RELEASE_B},
)
add(
    "13-expect-other-name",
    13,
    "identity",
    "--expect other-model@0.1.0",
    bundle=f"golden/v1/{RELEASE_A}",
    options={"expect": "other-model@0.1.0"},
)
add(
    "13-expect-matches",
    13,
    "pass",
    f"{RELEASE_B} verified with --expect {RELEASE_B} (control)",
    bundle=f"golden/v1/{RELEASE_B}",
    options={"expect": RELEASE_B},
)


@case(
    "13-statement-version-differs-from-card",
    13,
    "identity",
    f"re-signed: predicate.model says 0.2.0, the card inside says 0.1.0, folder {RELEASE_B}",
    bundle=RELEASE_B,
)
def _model_vs_card(world: World, out: Path) -> None:
    bundle = copy_bundle(world.golden(RELEASE_A), out, RELEASE_B)
    statement = statement_of(bundle)
    statement["predicate"]["model"]["version"] = "0.2.0"
    sign_payload(bundle, canonical(statement), [world.keys.a])


# --- writing ------------------------------------------------------------------------------------


def manifest() -> dict[str, Any]:
    """The content of cases.json."""
    return {
        "format": "receipts.vectors/v1",
        "about": "Verifier test vectors (shared/VECTORS.md 1-13). Written by make_vectors.py; do not "
        "edit. Paths are relative to this file's folder. check: the VerificationError.check "
        "that must fail; expect pass: must verify.",
        "cases": [c.manifest() for c in CASES],
    }


class Writer:
    """Creates each output unit if missing (or always, with ``force``), staged then renamed."""

    def __init__(self, base: Path, force: bool):
        self.base, self.force, self.written = base, force, 0

    def wanted(self, path: Path) -> bool:
        return self.force or not path.exists()

    def folder(self, path: Path, make: Callable[[Path], object]) -> None:
        """``make(staging)`` fills a fresh folder that then replaces ``path``."""
        if not self.wanted(path):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".staging-"))
        try:
            make(staging)
            if path.exists():
                shutil.rmtree(path)
            staging.rename(path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.written += 1

    def file(self, path: Path, data: bytes, *, always: bool = False) -> None:
        """Write ``data`` to ``path`` if wanted (or ``always``) and different."""
        if (always or self.wanted(path)) and (not path.exists() or path.read_bytes() != data):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            self.written += 1


def _golden_into(world: World, name: str) -> Callable[[Path], None]:
    def make(staging: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            make_golden(world, name, Path(tmp))
            shutil.copytree(Path(tmp) / name, staging, dirs_exist_ok=True)

    return make


def generate(base: Path, *, force: bool) -> int:
    """Write every missing output under ``base``; returns how many units were written."""
    os.environ["SOURCE_DATE_EPOCH"] = SOURCE_DATE_EPOCH
    new_keys = ensure_keys(base / "keys")
    if new_keys:
        force = True  # a new key invalidates every root, golden and case
    world = World(base, Keys(base / "keys"))
    out = Writer(base, force)
    out.folder(
        base / "weights" / RELEASE_A,
        lambda t: shutil.copytree(DATA / "weights_golden", t, dirs_exist_ok=True),
    )
    out.folder(base / "weights" / RELEASE_B, make_weights_b)
    out.folder(base / "inputs" / "run-0.2.0", lambda t: make_run_b(t, world))
    out.folder(base / "inputs" / "footprint-0.2.0", lambda t: make_footprint_b(t, world))
    for name, data in make_roots(world).items():
        trust_root_from_bytes(data, source=name)  # every pinned root loads
        out.file(base / "roots" / f"{name}.json", data)
    # golden/v1 is frozen: receipts of format v1 must verify forever, so a golden is written only when
    # missing (or under a new key), never rewritten by --force; the cases build on the committed bytes.
    frozen = Writer(base, new_keys)
    for name in (CARD_ONLY, RELEASE_A, RELEASE_B):
        frozen.folder(world.golden(name), _golden_into(world, name))
    out.written += frozen.written
    for item in CASES:
        if item.build is not None:
            out.folder(base / "cases" / item.id, functools.partial(item.build, world))
    cases_json = json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n"
    out.file(base / "cases.json", cases_json.encode(), always=True)  # the registry: cheap and exact
    built = {c.id for c in CASES if c.build is not None}
    for stale in sorted(p for p in (base / "cases").iterdir() if p.name not in built):
        print(f"stale case folder (not in the registry): {stale}", file=sys.stderr)
        if force:
            shutil.rmtree(stale)
    return out.written


def _tree(base: Path) -> Iterator[Path]:
    for sub in ("weights", "inputs", "roots", "golden", "cases", "cases.json"):
        path = base / sub
        yield from ([path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()))


def check() -> int:
    """Regenerate into a temp copy and compare with the committed files; 0 if identical."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp)
        shutil.copytree(HERE / "keys", copy / "keys")
        shutil.copytree(HERE / "golden", copy / "golden")  # frozen (see generate)
        (copy / "inputs").mkdir()
        (copy / "cases").mkdir()
        generate(copy, force=True)
        ours = {p.relative_to(copy) for p in _tree(copy)}
        committed = {p.relative_to(HERE) for p in _tree(HERE)}
        committed -= {p for p in committed if p.parts[0] == "inputs" and p.parent == Path("inputs")}
        problems = [f"missing: {p}" for p in sorted(ours - committed)]
        problems += [f"not generated: {p}" for p in sorted(committed - ours)]
        problems += [
            f"differs: {p}"
            for p in sorted(ours & committed)
            if not filecmp.cmp(copy / p, HERE / p, shallow=False)
        ]
    for line in problems:
        print(line)
    print(f"{len(problems)} difference(s)" if problems else "vectors are up to date")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="rewrite every output except the keys")
    parser.add_argument("--check", action="store_true", help="regenerate into a temp dir and diff")
    args = parser.parse_args(argv)
    if args.check:
        return check()
    (HERE / "cases").mkdir(exist_ok=True)
    written = generate(HERE, force=args.force)
    print(f"{written} output(s) written under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
