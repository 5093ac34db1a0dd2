"""Signing bundles with runs, footprints, weights and packs; the canonical statement bytes."""

import base64
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receipts.errors import InputError, UsageError, VerificationError
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes
from receipts.verify import verify_receipt

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parents[1] / "data"
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"  # the runs' teacher
WEIGHTS = DATA / "weights_golden"
RUN = DATA / "run_minimal"
PACK = DATA / "pack_minimal"
FOOTPRINT = DATA / "footprint_minimal.json"
ISSUED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 2, tzinfo=UTC)
GOLDEN_STATEMENT = DATA / "golden_statement.json"


@pytest.fixture(scope="module")
def key():
    return generate()


@pytest.fixture(scope="module")
def root(key):
    return trust_root_from_bytes(
        new_root("receipts demo", [key.public], now=datetime(2026, 1, 1, tzinfo=UTC))
    )


def sign(tmp_path, key, **kwargs):
    kwargs.setdefault("issued_at", ISSUED)
    return sign_receipt(CARD, [key], tmp_path / "out", **kwargs)


def payload(bundle):
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    return base64.b64decode(envelope["payload"])


def test_full_bundle_verifies_with_weights_and_pack(tmp_path, key, root):
    bundle = sign(tmp_path, key, weights=WEIGHTS, runs=[RUN], footprints=[FOOTPRINT])
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert names == [
        "card.yaml",
        "footprints/footprint_minimal.json",
        "receipt.json",
        "runs/tiny-mc/examples.jsonl",
        "runs/tiny-mc/results.json",
        "weights.manifest.json",
    ]
    report = verify_receipt(bundle / "receipt.json", root, weights=WEIGHTS, pack=PACK, now=NOW)
    assert {c.name: c.status for c in report.checks}["pack"] == "pass"
    assert report.ok


def test_statement_bytes_are_canonical_and_stable(tmp_path, key):
    """Golden: the RFC 8785 payload must not drift. Set RECEIPTS_UPDATE_GOLDEN=1 to rewrite it."""
    bundle = sign(tmp_path, key, weights=WEIGHTS, runs=[RUN], footprints=[FOOTPRINT])
    statement = json.loads(payload(bundle))
    statement["predicate"]["signer"]["keyids"] = ["sha256:" + "0" * 64]  # the key is random per run
    import rfc8785

    data = rfc8785.dumps(statement)
    assert payload(bundle) == rfc8785.dumps(json.loads(payload(bundle)))  # signed bytes are canonical
    if os.environ.get("RECEIPTS_UPDATE_GOLDEN"):
        GOLDEN_STATEMENT.write_bytes(data)
    assert data == GOLDEN_STATEMENT.read_bytes()


def test_other_pack_folder_fails(tmp_path, key, root):
    bundle = sign(tmp_path, key, weights=WEIGHTS, runs=[RUN])
    other = tmp_path / "pack"
    shutil.copytree(PACK, other)
    (other / "data" / "items.jsonl").write_text('{"id": "q1"}\n')
    with pytest.raises(VerificationError, match="no run used") as caught:
        verify_receipt(bundle / "receipt.json", root, pack=other, now=NOW)
    assert caught.value.check == "pack"


def test_results_edited_after_signing_fail(tmp_path, key, root):
    bundle = sign(tmp_path, key, runs=[RUN])
    results = bundle / "runs" / "tiny-mc" / "results.json"
    results.write_text(results.read_text().replace('"seed": 0', '"seed": 1', 1))
    with pytest.raises(VerificationError, match=re.escape("runs/tiny-mc/results.json: digest mismatch")):
        verify_receipt(bundle / "receipt.json", root, now=NOW)


def test_sign_refuses_run_whose_examples_changed(tmp_path, key):
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    with (run / "examples.jsonl").open("a") as handle:
        handle.write('{"item": "q3"}\n')
    with pytest.raises(InputError, match="does not match the sha256 recorded"):
        sign(tmp_path, key, runs=[run])


def test_sign_refuses_weights_other_than_the_evaluated_student(tmp_path, key):
    weights = tmp_path / "w"
    shutil.copytree(WEIGHTS, weights)
    (weights / "config.json").write_text("{}")
    with pytest.raises(
        VerificationError, match=r"the run's student is sha256:193a4e54.*not the signed weights"
    ):
        sign(tmp_path, key, runs=[RUN], weights=weights)
    assert not any(p.name.startswith(".signing-") for p in (tmp_path / "out").iterdir())


def test_two_runs_of_the_same_pack_are_refused(tmp_path, key):
    with pytest.raises(UsageError, match=re.escape("would both be stored as runs/tiny-mc/results.json")):
        sign(tmp_path, key, runs=[RUN, RUN])


def test_multi_signature_threshold_two(tmp_path, key):
    second = generate("ed25519")
    root2 = trust_root_from_bytes(
        new_root(
            "receipts demo", [key.public, second.public], threshold=2, now=datetime(2026, 1, 1, tzinfo=UTC)
        )
    )
    both = sign_receipt(CARD, [key, second], tmp_path / "both", issued_at=ISSUED)
    assert verify_receipt(both / "receipt.json", root2, now=NOW).ok
    one = sign_receipt(CARD, [key], tmp_path / "one", issued_at=ISSUED)
    with pytest.raises(VerificationError, match="1 of 2 required") as caught:
        verify_receipt(one / "receipt.json", root2, now=NOW)
    assert caught.value.check == "trust"


def test_receipt_issued_in_the_future_is_refused(tmp_path, key, root):
    bundle = sign(tmp_path, key, issued_at=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(VerificationError, match="in the future"):
        verify_receipt(bundle / "receipt.json", root, now=NOW)
