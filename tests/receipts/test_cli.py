"""The CLI as a new user runs it: the happy path, and one clear message per bad input."""

import json
import shutil
import stat
import time
from pathlib import Path

import pytest

from receipts.cli import main

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"  # the runs' teacher
CARDS = Path(__file__).parents[1] / "data" / "cards"
WEIGHTS = Path(__file__).parents[1] / "data" / "weights_golden"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    """Keygen -> trust init -> sign, as in the README."""
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "correct horse")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "--out", "keys/release")[0] == 0
    assert (
        run(
            capsys,
            "trust",
            "init",
            "--publisher",
            "receipts demo",
            "--key",
            "keys/release.pub.pem",
            "--out",
            "trust.json",
        )[0]
        == 0
    )
    shutil.copytree(WEIGHTS, "weights")
    code, text = run(
        capsys,
        "sign",
        "--card",
        CARD,
        "--weights",
        "weights",
        "--key",
        "keys/release.key.pem",
        "--out",
        "receipts",
    )
    assert code == 0, text
    return tmp_path / "receipts" / "smollm2-135m-distilled-24l@0.1.0"


def test_keygen_writes_0600_encrypted_pkcs8(world):
    key = Path("keys/release.key.pem")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert Path("keys/release.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_refuses_to_overwrite(world, capsys):
    code, text = run(capsys, "keygen", "--out", "keys/release")
    assert code == 1
    assert "refusing to overwrite" in text


def test_keygen_ed25519(world, capsys):
    code, text = run(capsys, "keygen", "--out", "keys/ed", "--algorithm", "ed25519")
    assert code == 0, text
    assert "keyid sha256:" in text


def test_verify_passes_with_weights(world, capsys):
    code, text = run(capsys, "verify", world, "--trust-root", "trust.json", "--weights", "weights")
    assert code == 0, text
    assert "VERIFIED smollm2-135m-distilled-24l@0.1.0" in text
    assert "1 verified, 0 failed" in text


def test_verify_json_report(world, capsys):
    code, text = run(capsys, "verify", world, "--trust-root", "trust.json", "--json")
    assert code == 0
    report = json.loads(text)
    assert report["ok"] is True
    checks = {c["name"]: c["status"] for c in report["receipts"][0]["checks"]}
    assert checks["signatures"] == "pass"
    assert checks["weights"] == "not checked"


@pytest.mark.parametrize(
    ("target", "offset", "check"),
    [
        ("receipt.json", 300, "envelope|signatures"),
        ("card.yaml", 40, "subjects"),
        ("weights.manifest.json", 30, "subjects"),
        ("WEIGHTS/sub/blob.bin", 100, "weights"),
    ],
)
def test_any_flipped_byte_fails_with_exit_4_and_the_reason(world, capsys, target, offset, check):
    path = (
        Path("weights") / target.removeprefix("WEIGHTS/") if target.startswith("WEIGHTS/") else world / target
    )
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    code, text = run(capsys, "verify", world, "--trust-root", "trust.json", "--weights", "weights", "--json")
    assert code == 4
    failed = [c for c in json.loads(text)["receipts"][0]["checks"] if c["status"] == "fail"]
    assert len(failed) == 1
    assert failed[0]["name"] in check.split("|")


def test_trust_root_pin(world, capsys):
    code, text = run(capsys, "verify", world, "--trust-root", "trust.json", "--trust-root-sha256", "ab" * 32)
    assert code == 4
    assert "does not match the pinned" in text


def test_trust_rotation_with_retire_and_revoke(world, capsys):
    assert run(capsys, "keygen", "--out", "keys/next")[0] == 0
    code, text = run(
        capsys,
        "trust",
        "add",
        "--trust-root",
        "trust.json",
        "--key",
        "keys/next.pub.pem",
        "--sign-with",
        "keys/release.key.pem",
        "--out",
        "trust.v2.json",
    )
    assert code == 0, text
    assert "v2" in text
    keyid = next(line.split()[0] for line in text.splitlines() if "active" in line)
    code, text = run(
        capsys,
        "trust",
        "retire",
        "--trust-root",
        "trust.v2.json",
        "--keyid",
        keyid,
        "--sign-with",
        "keys/next.key.pem",
        "--out",
        "trust.v3.json",
    )
    assert code == 0, text
    # the pinned v1 moves forward one signed step at a time
    shutil.copy("trust.json", "pinned.json")
    code, text = run(
        capsys, "trust", "update", "--trust-root", "pinned.json", "trust.v2.json", "trust.v3.json"
    )
    assert code == 0, text
    code, text = run(capsys, "verify", world, "--trust-root", "pinned.json")
    assert code == 4
    assert "retired" in text
    assert run(capsys, "verify", world, "--trust-root", "pinned.json", "--allow-retired")[0] == 0
    # rollback to v2 is refused
    code, text = run(capsys, "trust", "update", "--trust-root", "pinned.json", "trust.v2.json")
    assert code == 4
    assert "rollback refused" in text
    code, text = run(
        capsys,
        "trust",
        "revoke",
        "--trust-root",
        "pinned.json",
        "--keyid",
        keyid,
        "--sign-with",
        "keys/next.key.pem",
    )
    assert code == 0, text
    code, text = run(capsys, "verify", world, "--trust-root", "pinned.json", "--allow-retired")
    assert code == 4
    assert "revoked" in text


# --- bad input: one message naming the file, what is wrong and what to do; never a traceback ----


def assert_clean(text):
    assert "Traceback" not in text
    assert "error" in text


def test_wrong_passphrase(world, capsys, monkeypatch):
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "wrong")
    code, text = run(capsys, "sign", "--card", CARD, "--key", "keys/release.key.pem", "--out", "r2")
    assert code == 1
    assert_clean(text)
    assert "keys/release.key.pem: wrong passphrase" in text


def test_public_key_where_private_expected(world, capsys):
    code, text = run(capsys, "sign", "--card", CARD, "--key", "keys/release.pub.pem", "--out", "r2")
    assert code == 1
    assert_clean(text)
    assert "keys/release.pub.pem: is a public key; signing needs the private key" in text


def test_no_passphrase_and_no_terminal(world, capsys, monkeypatch):
    monkeypatch.delenv("RECEIPTS_PASSPHRASE")
    code, text = run(capsys, "sign", "--card", CARD, "--key", "keys/release.key.pem", "--out", "r2")
    assert code == 2
    assert "RECEIPTS_PASSPHRASE is unset" in text


def test_sign_card_missing_license_exits_3(world, capsys):
    card = CARDS / "card_missing_license.yaml"
    code, text = run(capsys, "sign", "--card", card, "--key", "keys/release.key.pem", "--out", "r2")
    assert code == 3
    assert_clean(text)
    assert "'license' is a required property" in text
    assert not Path("r2").exists() or not any(Path("r2").iterdir())


def test_validate_lists_every_problem(capsys):
    code, text = run(capsys, "validate", CARDS / "card_many_errors.yaml")
    assert code == 3
    assert text.count("fix:") >= 10
    assert "$.model.name" in text
    assert "$.failure_modes[0].severity" in text


def test_validate_malformed_yaml_names_the_line(capsys):
    code, text = run(capsys, "validate", CARDS / "card_bad_yaml.yaml")
    assert code == 1
    assert "card_bad_yaml.yaml:line 7" in text


def test_validate_unknown_kind(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    code, text = run(capsys, "validate", path)
    assert code == 1
    assert "cannot tell what kind of document" in text


def test_validate_receipt_structure(world, capsys):
    code, text = run(capsys, "validate", world / "receipt.json", "trust.json")
    assert code == 0, text
    assert "valid receipt" in text
    assert "valid trust-root" in text


def test_receipt_that_is_not_dsse(world, capsys):
    (world / "receipt.json").write_text('{"hello": "world"}')
    code, text = run(capsys, "verify", world, "--trust-root", "trust.json")
    assert code == 4
    assert "envelope has the wrong keys" in text


def test_trust_root_failing_its_schema(world, capsys):
    root = json.loads(Path("trust.json").read_text())
    root["signed"]["threshold"] = 0
    Path("bad-trust.json").write_text(json.dumps(root))
    code, text = run(capsys, "verify", world, "--trust-root", "bad-trust.json")
    assert code == 4
    assert_clean(text)
    assert "bad-trust.json" in text
    assert "$.signed.threshold" in text


def test_path_that_does_not_exist(world, capsys):
    code, text = run(capsys, "verify", "nowhere", "--trust-root", "trust.json")
    assert code == 1
    assert_clean(text)
    assert "nowhere: does not exist" in text
    code, text = run(capsys, "verify", world, "--trust-root", "nope.json")
    assert code == 1
    assert "nope.json: trust root does not exist" in text


def test_sign_refuses_to_overwrite_without_force(world, capsys):
    code, text = run(capsys, "sign", "--card", CARD, "--key", "keys/release.key.pem", "--out", "receipts")
    assert code == 2
    assert "--force" in text


def test_sign_out_is_a_folder_not_a_file(world, capsys):
    code, text = run(
        capsys, "sign", "--card", CARD, "--key", "keys/release.key.pem", "--out", "x/model.receipt.json"
    )
    assert code == 2
    assert "receipt is a folder" in text
    assert "--out x/" in text
    assert not Path("x").exists()


def test_usage_error_exit_2(capsys):
    code, _ = run(capsys, "verify")
    assert code == 2


@pytest.mark.parametrize(
    "command",
    [
        ["keygen"],
        ["trust", "init"],
        ["trust", "add"],
        ["trust", "update"],
        ["validate"],
        ["sign"],
        ["verify"],
        ["overlap"],
        ["quantize"],
    ],
)
def test_every_command_has_help_with_an_example(capsys, command):
    code, text = run(capsys, *command, "--help")
    assert code == 0
    assert "Example:" in text


def test_verify_json_reports_a_refused_trust_root(world, capsys):
    code, text = run(
        capsys, "verify", world, "--trust-root", "trust.json", "--trust-root-sha256", "0" * 64, "--json"
    )
    assert code == 4
    report = json.loads(text)
    assert report["ok"] is False
    assert report["error"]["name"] == "trust-root"
    assert "sha256" in report["error"]["detail"]


def test_trust_init_force_says_older_receipts_no_longer_verify(world, capsys):
    """A replaced root dates its keys from now: the receipt signed before fails, and init says so."""
    init = ["trust", "init", "--publisher", "receipts demo", "--key", "keys/release.pub.pem"]
    init += ["--out", "trust.json"]
    code, text = run(capsys, *init)
    assert code != 0
    assert "--force" in text
    time.sleep(1.1)  # validity has second precision: the new root's keys start after the receipt was signed
    code, text = run(capsys, *init, "--force")
    assert code == 0, text
    assert "note: replaced trust.json" in text
    assert "does not verify under it" in text
    code, text = run(capsys, "verify", str(world), "--trust-root", "trust.json")
    assert code == 4, text
    assert "not valid before" in text
    code, text = run(capsys, *init[:-1], "other.json")  # a new file: nothing replaced, no note
    assert code == 0, text
    assert "note: replaced" not in text
