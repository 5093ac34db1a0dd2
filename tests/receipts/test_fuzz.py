"""VECTORS §15: sign once, then flip single bytes anywhere in the bundle or the weights.

Every mutation must be rejected, and only ever with `VerificationError` (never another exception,
never an accept). Each kind of file must fail at the check that owns it.
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receipts.errors import VerificationError
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import TrustRoot, new_root, trust_root_from_bytes
from receipts.verify import verify_receipt

CARD = Path(__file__).parents[1] / "data" / "cards" / "card_valid_minimal.yaml"
CASES = 10_000
SEED = 20250115

# The check each kind of file fails at. Every check listed must be reached, and no other.
EXPECTED = {
    "receipt": {"envelope", "signatures"},
    "card": {"subjects"},
    "manifest": {"subjects"},
    "weights": {"weights"},
}


@dataclass(frozen=True)
class Signed:
    bundle: Path
    weights: Path
    root: TrustRoot

    @property
    def receipt(self) -> Path:
        return self.bundle / "receipt.json"

    def targets(self) -> list[tuple[str, Path]]:
        """(kind, path) for receipt.json, every file in the bundle, and every weights file."""
        out: list[tuple[str, Path]] = []
        for path in sorted(p for p in self.bundle.rglob("*") if p.is_file()):
            name = path.relative_to(self.bundle).as_posix()
            kind = {"receipt.json": "receipt", "card.yaml": "card", "weights.manifest.json": "manifest"}
            out.append((kind[name], path))
        out += [("weights", p) for p in sorted(self.weights.rglob("*")) if p.is_file()]
        return out

    def verify(self) -> object:
        return verify_receipt(self.receipt, self.root, weights=self.weights)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    base = tmp_path_factory.mktemp("fuzz")
    rng = random.Random(SEED)
    weights = base / "weights"
    (weights / "tokenizer").mkdir(parents=True)
    (weights / "config.json").write_bytes(b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}\n')
    (weights / "model.safetensors").write_bytes(bytes(rng.randrange(256) for _ in range(512)))
    (weights / "tokenizer" / "tokenizer.json").write_bytes(b'{"model": {"type": "BPE", "vocab": {"a": 0}}}')
    key = generate()
    root = trust_root_from_bytes(new_root("Example Lab", [key.public], now=datetime(2024, 1, 1, tzinfo=UTC)))
    bundle = sign_receipt(
        CARD, [key], base / "out", weights=weights, issued_at=datetime(2025, 1, 15, tzinfo=UTC)
    )
    result = Signed(bundle, weights, root)
    assert {kind for kind, _ in result.targets()} == set(EXPECTED)
    result.verify()  # the untouched bundle verifies
    return result


_mtime = [2_000_000_000 * 10**9]


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    # The digest cache is keyed by (path, size, mtime_ns, inode). On a kernel with coarse timestamps a
    # same-size rewrite can keep its mtime; move it on explicitly, as any real edit would.
    _mtime[0] += 1_000_000
    os.utime(path, ns=(_mtime[0], _mtime[0]))


class _Mutated:
    def __init__(self, path: Path, data: bytes):
        self.path, self.data = path, data

    def __enter__(self) -> None:
        self.original = self.path.read_bytes()
        _write(self.path, self.data)

    def __exit__(self, *exc: object) -> None:
        _write(self.path, self.original)


def _outcome(signed: Signed) -> tuple[str, str]:
    """("rejected", check) | ("accepted", "") | ("crashed", repr)."""
    try:
        signed.verify()
    except VerificationError as exc:
        return "rejected", exc.check
    except Exception as exc:  # recorded: anything but VerificationError fails the test
        return "crashed", f"{type(exc).__name__}: {exc}"
    return "accepted", ""


def test_single_byte_mutations_all_rejected(signed: Signed) -> None:
    rng = random.Random(SEED)
    targets = signed.targets()
    originals = {path: path.read_bytes() for _, path in targets}
    histogram: Counter[tuple[str, str]] = Counter()
    bad: list[str] = []
    for case in range(CASES):
        kind, path = rng.choice(targets)
        data = bytearray(originals[path])
        offset = rng.randrange(len(data))
        data[offset] = (data[offset] + rng.randrange(1, 256)) % 256  # any other value
        with _Mutated(path, bytes(data)):
            status, detail = _outcome(signed)
        if status == "rejected":
            histogram[kind, detail] += 1
            if detail not in EXPECTED[kind]:
                bad.append(f"case {case}: {path.name}@{offset}: rejected by unexpected check {detail!r}")
        else:
            bad.append(f"case {case}: {path.name}@{offset} -> {data[offset]:#04x}: {status} {detail}")
    for _, path in targets:
        assert path.read_bytes() == originals[path]
    signed.verify()

    print(f"\n{CASES} single-byte mutations, rejected by check:")
    for (kind, check), count in sorted(histogram.items()):
        print(f"  {kind:9} {check:11} {count:6}")
    assert not bad, f"{len(bad)} bad outcome(s), first ones:\n" + "\n".join(bad[:10])
    for kind, checks in EXPECTED.items():
        reached = {check for k, check in histogram if k == kind}
        assert reached == checks, f"{kind} mutations failed at {sorted(reached)}, expected {sorted(checks)}"


Edit = tuple[str, int, bytes]


@st.composite
def _edits(draw: st.DrawFn, size: int) -> list[Edit]:
    """1-3 edits, each: replace one byte, insert 1-4 bytes, or delete 1-4 bytes."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        offset = draw(st.integers(0, size - 1))
        length = 1 if op == "replace" else draw(st.integers(1, 4))
        edits.append((op, offset, draw(st.binary(min_size=length, max_size=length))))
    return edits


def _apply(data: bytes, edits: list[Edit]) -> bytes:
    out = bytearray(data)
    for op, offset, blob in edits:
        at = min(offset, len(out) - 1)
        if op == "replace":
            out[at] = blob[0]
        elif op == "insert":
            out[at:at] = blob
        else:
            del out[at : at + len(blob)]
    return bytes(out)


def _b64(text: str) -> bytes:
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    return base64.b64decode(body + "=" * (-len(body) % 4))


def _meaning(envelope: bytes) -> object:
    """What an envelope says, independent of its JSON spelling and base64 alphabet/padding."""
    value = json.loads(envelope)
    return (
        value["payloadType"],
        _b64(value["payload"]),
        [(s["keyid"], _b64(s["sig"])) for s in value["signatures"]],
        sorted(value),
        [sorted(s) for s in value["signatures"]],
    )


@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_receipt_json_edits_rejected(signed: Signed, data: st.DataObject) -> None:
    r"""Replacements, insertions and deletions in receipt.json: rejected, or the same envelope.

    Insertions and deletions can spell the *same* envelope differently (whitespace between tokens,
    ``\/`` for ``/``, dropped base64 padding); the envelope is not signed, so accepting those is right.
    Anything else accepted, or any exception but `VerificationError`, fails.
    """
    original = signed.receipt.read_bytes()
    edits = data.draw(_edits(len(original)))
    mutated = _apply(original, edits)
    with _Mutated(signed.receipt, mutated):
        status, detail = _outcome(signed)
    if status == "accepted":
        assert _meaning(mutated) == _meaning(original), f"{edits}: accepted a different envelope"
        return
    assert status == "rejected", f"{edits}: {detail}"
    assert detail in EXPECTED["receipt"], f"{edits}: rejected by {detail!r}"


def test_sig_alphabet_swap_is_the_same_envelope(tmp_path: Path) -> None:
    """The one single-byte edit that verifies: a sig's only ``+``/``/`` swapped for ``-``/``_``.

    DSSE requires accepting URL-safe base64 (VECTORS §7), so a sig holding exactly one ``+`` or
    ``/`` (about 1 signature in 7) re-spells in one byte as URL-safe base64 of the same bytes. That
    conflicts with the letter of VECTORS §15; we side with DSSE, because nothing signed changes:
    the envelope is not itself signed, and the edit decodes to the identical envelope. A swap that
    changes the decoded bytes (the same byte turned into anything else) is still rejected.
    """
    key = generate()
    root = trust_root_from_bytes(new_root("Example Lab", [key.public], now=datetime(2024, 1, 1, tzinfo=UTC)))
    for _ in range(200):
        bundle = sign_receipt(CARD, [key], tmp_path, issued_at=datetime(2025, 1, 15, tzinfo=UTC), force=True)
        original = (bundle / "receipt.json").read_bytes()
        sig = json.loads(original)["signatures"][0]["sig"]
        if sig.count("+") + sig.count("/") == 1:
            break
    else:
        pytest.fail("no signature with exactly one '+' or '/' in 200 tries")
    swapped = sig.translate(str.maketrans("+/", "-_"))
    mutated = original.replace(f'"sig":"{sig}"'.encode(), f'"sig":"{swapped}"'.encode())
    assert sum(a != b for a, b in zip(original, mutated, strict=True)) == 1
    assert _meaning(mutated) == _meaning(original)
    (bundle / "receipt.json").write_bytes(mutated)
    verify_receipt(bundle / "receipt.json", root)
    for other in "AZaz09":  # the same byte made into a character that changes the decoded signature
        broken = sig.translate(str.maketrans("+/", other * 2))
        (bundle / "receipt.json").write_bytes(original.replace(sig.encode(), broken.encode()))
        with pytest.raises(VerificationError):
            verify_receipt(bundle / "receipt.json", root)
