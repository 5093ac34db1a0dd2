"""`receipts sign --if-changed`: a re-run of the same signing keeps the receipt's bytes; any change re-signs.

Why: a warm `make demo` signs every receipt again, and a new signature (ECDSA signs with a fresh nonce,
and the signing time moves) is a new receipt.json, so the second party's reproduction of the old one no
longer applies and must be rerun. Keeping an unchanged receipt byte for byte lets it stand.
"""

import shutil
from pathlib import Path

import pytest

from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt

DATA = Path(__file__).parents[1] / "data"
CARD = DATA / "card_fake_teacher.yaml"
RUN = DATA / "run_minimal"
WEIGHTS = DATA / "weights_golden"
BUNDLE = "smollm2-135m-distilled-24l@0.1.0"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _tree(folder: Path) -> dict[str, bytes]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


@pytest.fixture
def signing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "correct horse")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "--out", "keys/release")[0] == 0
    shutil.copytree(WEIGHTS, "weights")
    shutil.copy(CARD, "card.yaml")

    def sign(*extra):
        return run(
            capsys, "sign", "--card", "card.yaml", "--weights", "weights", "--run", RUN,
            "--key", "keys/release.key.pem", "--out", "receipts", *extra,
        )  # fmt: skip

    code, text = sign()
    assert code == 0, text
    return sign, tmp_path / "receipts" / BUNDLE


def test_the_same_inputs_keep_the_receipt_byte_for_byte(signing):
    sign, bundle = signing
    before = _tree(bundle)
    code, text = sign("--if-changed")
    assert code == 0, text
    assert f"unchanged receipts/{BUNDLE}/receipt.json (kept: it signs the same inputs)" in text
    assert _tree(bundle) == before
    assert sorted(p.name for p in bundle.parent.iterdir()) == [BUNDLE]  # no staging folder left behind


def test_force_still_signs_again(signing):
    sign, bundle = signing
    before = (bundle / "receipt.json").read_bytes()
    code, text = sign("--force")
    assert code == 0, text
    assert "signed" in text
    assert (bundle / "receipt.json").read_bytes() != before  # a fresh signature (and signing time)


def test_a_changed_card_is_signed_again(signing):
    sign, bundle = signing
    before = (bundle / "receipt.json").read_bytes()
    card = Path("card.yaml")
    card.write_text(card.read_text("utf-8").replace("Apache-2.0", "MIT", 1), "utf-8")
    code, text = sign("--if-changed")
    assert code == 0, text
    assert "unchanged" not in text
    assert (bundle / "receipt.json").read_bytes() != before
    assert (bundle / "card.yaml").read_bytes() == card.read_bytes()


@pytest.mark.parametrize("attack", ["edit", "extra", "drop", "envelope", "link"])
def test_a_bundle_changed_after_signing_is_replaced_not_kept(signing, attack):
    """The kept bundle must be exactly what signing now would write; anything else is signed afresh."""
    sign, bundle = signing
    fresh = _tree(bundle)
    if attack == "edit":
        (bundle / "runs" / "tiny-mc" / "results.json").write_bytes(b"{}")
    elif attack == "extra":
        (bundle / "runs" / "tiny-mc" / "notes.txt").write_text("planted", "utf-8")
    elif attack == "drop":
        (bundle / "runs" / "tiny-mc" / "examples.jsonl").unlink()
    elif attack == "envelope":
        receipt = bundle / "receipt.json"
        receipt.write_bytes(receipt.read_bytes().replace(b'"sig":"', b'"sig":"A', 1))
    else:
        outside = Path("outside.txt")
        outside.write_text("outside", "utf-8")
        (bundle / "card.yaml").unlink()
        (bundle / "card.yaml").symlink_to(outside.resolve())
    code, text = sign("--if-changed")
    assert code == 0, text
    assert "unchanged" not in text
    after = _tree(bundle)
    assert sorted(after) == sorted(fresh)
    assert {k: v for k, v in after.items() if k != "receipt.json"} == {
        k: v for k, v in fresh.items() if k != "receipt.json"
    }
    assert not (bundle / "card.yaml").is_symlink()
    if attack == "link":
        assert Path("outside.txt").read_text("utf-8") == "outside"  # nothing outside was touched


def test_another_key_signs_again(tmp_path):
    first, second = generate(), generate()
    bundle = sign_receipt(CARD, [first], tmp_path, runs=[RUN])
    before = (bundle / "receipt.json").read_bytes()
    kept: list[Path] = []
    sign_receipt(CARD, [first], tmp_path, runs=[RUN], if_changed=True, kept=kept)
    assert kept == [bundle]
    assert (bundle / "receipt.json").read_bytes() == before
    sign_receipt(CARD, [second], tmp_path, runs=[RUN], if_changed=True, kept=kept)
    assert kept == [bundle]  # not kept this time
    assert (bundle / "receipt.json").read_bytes() != before
    sign_receipt(CARD, [first, second], tmp_path, runs=[RUN], if_changed=True, kept=kept)
    assert kept == [bundle]  # a second signer is a change too
