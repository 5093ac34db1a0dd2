"""OpenSSF model signing: our model.sig checked by the real model_signing 1.1.1, and theirs by us."""

import base64
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from receipts.cli import main
from receipts.digests import digest_weights
from receipts.dsse import pae
from receipts.errors import UsageError, VerificationError
from receipts.keys import generate, load_private_key, load_public_key
from receipts.modelsig import (
    check_model_sig,
    model_sig_bytes,
    model_sig_key,
    write_model_sig,
)

model_signing = pytest.importorskip("model_signing")

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"  # the runs' teacher
WEIGHTS = Path(__file__).parents[1] / "data" / "weights_golden"
MODEL_SIGNING_CLI = Path(sys.executable).with_name("model_signing")
PASSPHRASE = "correct horse"
BUNDLE = "receipts/smollm2-135m-distilled-24l@0.1.0"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def model_signing_verify(weights: Path, sig: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI: `model_signing verify key MODEL --signature SIG --public_key PUB`."""
    command = [str(MODEL_SIGNING_CLI), "verify", "key", str(weights)]
    command += ["--signature", str(sig), "--public_key", str(public_key)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def world(tmp_path, monkeypatch, capsys):
    """Keygen -> trust init -> a weights folder (with a git file model_signing and we both ignore)."""
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", PASSPHRASE)
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "--out", "keys/release")[0] == 0
    code, text = run(
        capsys,
        "trust",
        "init",
        "--publisher",
        "receipts demo",
        "--key",
        "keys/release.pub.pem",
        "--out",
        "trust.json",
    )
    assert code == 0, text
    shutil.copytree(WEIGHTS, "weights")
    Path("weights/.gitattributes").write_text("*.bin filter=lfs\n")
    return tmp_path


def sign(capsys, *extra):
    argv = [
        "sign",
        "--card",
        CARD,
        "--weights",
        "weights",
        "--key",
        "keys/release.key.pem",
        "--out",
        "receipts",
    ]
    return run(capsys, *argv, *extra)


def verify(capsys, *extra):
    return run(capsys, "verify", BUNDLE, "--trust-root", "trust.json", "--weights", "weights", *extra)


def statement_of(sig: Path) -> dict:
    bundle = json.loads(sig.read_bytes())
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def report_checks(text: str) -> dict[str, str]:
    report = json.loads(text)
    return {c["name"]: c["status"] for c in report["receipts"][0]["checks"]}


# --- ours, accepted by model_signing ------------------------------------------------------------


def test_sign_model_sig_is_accepted_by_the_model_signing_cli_and_api(world, capsys):
    code, text = sign(capsys, "--model-sig", "weights/model.sig")
    assert code == 0, text
    assert "wrote weights/model.sig" in text
    sig, public = world / "weights" / "model.sig", world / "keys" / "release.pub.pem"
    result = model_signing_verify(world / "weights", sig, public)
    assert result.returncode == 0, result.stderr
    assert "Verification succeeded" in result.stdout
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        world / "weights", sig
    )

    code, text = verify(capsys, "--json")
    assert code == 0, text
    checks = report_checks(text)
    assert checks["weights"] == checks["model.sig"] == "pass"


def test_model_sig_format(world, capsys):
    """The decisions in receipts.modelsig's docstring, pinned."""
    assert sign(capsys, "--model-sig", "weights/model.sig")[0] == 0
    data = (world / "weights" / "model.sig").read_bytes()
    bundle = json.loads(data)
    assert list(bundle) == ["mediaType", "verificationMaterial", "dsseEnvelope"]
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"] == []
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    public = load_public_key(world / "keys" / "release.pub.pem")
    assert envelope["signatures"][0]["keyid"] == public.keyid
    statement = statement_of(world / "weights" / "model.sig")
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert statement["predicate"]["serialization"] == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore", "model.sig"],
    }
    digest = digest_weights(world / "weights")
    assert statement["subject"] == [{"name": "weights", "digest": {"sha256": digest.root}}]
    assert [r["name"] for r in statement["predicate"]["resources"]] == list(digest.files)
    assert ".gitattributes" not in digest.files


def test_model_sig_outside_the_folder_and_for_a_single_file(world, capsys):
    assert sign(capsys, "--model-sig", "sigs/weights.sig")[0] == 0
    public = world / "keys" / "release.pub.pem"
    assert model_signing_verify(world / "weights", world / "sigs/weights.sig", public).returncode == 0
    code, text = verify(capsys, "--model-sig", "sigs/weights.sig")
    assert code == 0, text
    assert "model.sig: model_signing v1.0 signature by sha256:" in text

    key = load_private_key(world / "keys" / "release.key.pem", PASSPHRASE.encode())
    single = world / "weights" / "config.json"
    write_model_sig(single, key, world / "config.sig")
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        single, world / "config.sig"
    )


# --- theirs, accepted by us ---------------------------------------------------------------------


def test_model_signing_signature_is_accepted_by_receipts_verify(world, capsys):
    assert sign(capsys)[0] == 0
    code, text = verify(capsys, "--json")
    assert code == 0
    assert "model.sig" not in report_checks(text)  # no model.sig: no check
    # model_signing's own signer takes our encrypted PKCS#8 key, given the passphrase as *bytes*
    # (its CLI passes --password as str, which cryptography refuses: use the API).
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=world / "keys" / "release.key.pem", password=PASSPHRASE.encode()
    ).sign(world / "weights", world / "weights" / "model.sig")
    code, text = verify(capsys)
    assert code == 0, text
    assert "✓ model.sig: model_signing v1.0 signature by sha256:" in text


def test_model_signing_cli_signature_is_accepted_by_receipts_verify(world, capsys):
    """Its CLI cannot open an encrypted key (``--password`` reaches cryptography as str): use a plain copy."""
    assert sign(capsys)[0] == 0
    key = load_private_key(world / "keys" / "release.key.pem", PASSPHRASE.encode())
    plain = world / "plain.key.pem"
    plain.write_bytes(
        key.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    command = [str(MODEL_SIGNING_CLI), "sign", "key", "weights", "--private_key", str(plain)]
    command += ["--signature", "weights/model.sig"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    code, text = verify(capsys)
    assert code == 0, text
    assert "✓ model.sig: model_signing v1.0 signature by sha256:" in text


def test_our_root_is_model_signings_subject_digest(world, capsys):
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=world / "keys" / "release.key.pem", password=PASSPHRASE.encode()
    ).sign(world / "weights", world / "theirs.sig")
    theirs = statement_of(world / "theirs.sig")
    ours = digest_weights(world / "weights")
    assert theirs["subject"][0]["digest"]["sha256"] == ours.root
    assert {r["name"]: r["digest"] for r in theirs["predicate"]["resources"]} == dict(ours.files)


# --- negatives ----------------------------------------------------------------------------------


def test_model_sig_by_a_key_outside_the_trust_root_exits_4(world, capsys):
    assert sign(capsys)[0] == 0
    write_model_sig(world / "weights", generate(), world / "weights" / "model.sig")
    code, text = verify(capsys)
    assert code == 4
    assert "✗ model.sig:" in text
    assert "signed by a key that is not in the trust root" in text


def test_weights_changed_after_signing_are_rejected_by_both(world, capsys):
    assert sign(capsys, "--model-sig", "weights/model.sig")[0] == 0
    (world / "weights" / "config.json").write_text('{"changed": true}')
    sig, public = world / "weights" / "model.sig", world / "keys" / "release.pub.pem"
    result = model_signing_verify(world / "weights", sig, public)
    assert result.returncode == 1
    assert "Hash mismatch for 'config.json'" in result.stderr
    code, text = verify(capsys)
    assert code == 4
    assert "config.json modified" in text


def test_model_sig_for_another_folder_names_the_differing_path(world, capsys):
    assert sign(capsys)[0] == 0
    other = world / "other"
    shutil.copytree(world / "weights", other)
    (other / "sub" / "blob.bin").write_bytes(b"other weights")
    key = load_private_key(world / "keys" / "release.key.pem", PASSPHRASE.encode())
    write_model_sig(other, key, world / "weights" / "model.sig")
    public = world / "keys" / "release.pub.pem"
    assert model_signing_verify(world / "weights", world / "weights" / "model.sig", public).returncode == 1
    code, text = verify(capsys)
    assert code == 4
    assert "✗ model.sig:" in text
    assert "sub/blob.bin differs: model.sig has sha256" in text


def test_garbage_model_sig_is_one_clear_error(world, capsys):
    assert sign(capsys)[0] == 0
    (world / "weights" / "model.sig").write_bytes(b"\x00\xffnot a bundle")
    code, text = verify(capsys)
    assert code == 4
    assert "Traceback" not in text
    assert "model.sig: not a Sigstore bundle: not UTF-8" in text


def test_missing_explicit_model_sig_fails(world, capsys):
    assert sign(capsys)[0] == 0
    code, text = verify(capsys, "--model-sig", "nowhere.sig")
    assert code == 4
    assert "model signature does not exist" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model-sig", "weights/sig.json"], "inside the weights folder but not named model.sig"),
        (["--key", "keys/ed.key.pem", "--model-sig", "weights/model.sig"], None),
    ],
)
def test_sign_model_sig_usage_errors_write_nothing(world, capsys, extra, message):
    if message is None:  # only an Ed25519 key
        assert run(capsys, "keygen", "--out", "keys/ed", "--algorithm", "ed25519")[0] == 0
        argv = ["sign", "--card", CARD, "--weights", "weights", *extra, "--out", "receipts"]
        message = "--model-sig needs an ECDSA P-256 key"
        code, text = run(capsys, *argv)
    else:
        code, text = sign(capsys, *extra)
    assert code == 2
    assert message in text
    assert not (world / "receipts").exists()
    assert not (world / "weights" / "model.sig").exists()


def test_model_sig_needs_weights(world, capsys):
    code, text = run(
        capsys, "sign", "--card", CARD, "--key", "keys/release.key.pem", "--out", "r", "--model-sig", "m.sig"
    )
    assert (code, "--model-sig needs --weights" in text) == (2, True)
    assert sign(capsys)[0] == 0
    code, text = run(capsys, "verify", BUNDLE, "--trust-root", "trust.json", "--model-sig", "m.sig")
    assert (code, "--model-sig needs --weights" in text) == (2, True)


# --- check_model_sig on crafted bundles ---------------------------------------------------------


@pytest.fixture(scope="module")
def signed():
    key = generate()
    digest = digest_weights(WEIGHTS)
    data = model_sig_bytes(digest, key, name="weights")
    return key, digest, data


def check(data, key, digest):
    return check_model_sig(data, {key.public.keyid: key.public}, digest.files, digest.root)


def test_check_accepts_and_reports(signed):
    key, digest, data = signed
    detail = check(data, key, digest)
    files = len(digest.files)
    assert (
        detail
        == f"model_signing v1.0 signature by {key.public.keyid}: {files} file(s), root sha256:{digest.root}"
    )


def resigned(key, mutate_statement):
    """A bundle whose statement was edited and then signed again (so only the content is wrong)."""
    digest = digest_weights(WEIGHTS)
    bundle = json.loads(model_sig_bytes(digest, key, name="weights"))
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    mutate_statement(statement)
    payload = json.dumps(statement).encode()
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    sig = key.sign(pae("application/vnd.in-toto+json", payload))
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    return json.dumps(bundle).encode()


def _fix_subject(s):
    resources = s["predicate"]["resources"]
    joined = b"".join(bytes.fromhex(r["digest"]) for r in resources)
    s["subject"][0]["digest"]["sha256"] = hashlib.sha256(joined).hexdigest()


def _drop_first_resource(s):
    s["predicate"]["resources"].pop(0)
    _fix_subject(s)


def _shards(s):
    s["predicate"]["serialization"]["method"] = "shards"


def _old_predicate(s):
    s["predicateType"] = "https://model_signing/Digests/v0.1"


def _subject_lies(s):
    s["subject"][0]["digest"]["sha256"] = "0" * 64


def _reorder(s):
    s["predicate"]["resources"].reverse()
    _fix_subject(s)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_drop_first_resource, "is in the receipt's weights manifest but missing from model.sig"),
        (_shards, "serialization shards/sha256 is not files/sha256"),
        (_old_predicate, "predicateType 'https://model_signing/Digests/v0.1' is not"),
        (_subject_lies, "inconsistent: its resources hash to"),
        (_reorder, "is not the receipt's weights root"),
    ],
)
def test_check_rejects_well_signed_wrong_content(signed, mutate, message):
    key, digest, _ = signed
    with pytest.raises(VerificationError, match=r"model\.sig") as info:
        check(resigned(key, mutate), key, digest)
    assert message in info.value.message
    assert info.value.check == "model.sig"


def _edit(data: bytes, change) -> bytes:
    bundle = json.loads(data)
    change(bundle)
    return json.dumps(bundle).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.update(mediaType="application/json"), "not a Sigstore bundle with mediaType"),
        (lambda b: b["verificationMaterial"].pop("publicKey"), "signed with a certificate"),
        (lambda b: b.pop("dsseEnvelope"), "carries no DSSE envelope"),
        (lambda b: b["dsseEnvelope"]["signatures"].append({"sig": "AA=="}), "exactly one signature"),
        (lambda b: b["dsseEnvelope"].update(payloadType="text/plain"), "DSSE payloadType is 'text/plain'"),
        (
            lambda b: b["dsseEnvelope"].update(payload="e30="),
            "the signature does not verify with sha256:",
        ),
        (lambda b: b["verificationMaterial"]["publicKey"].pop("hint"), None),  # no hint: tries every key
        (lambda b: b["dsseEnvelope"].update(payload="!!"), "payload is not base64"),
    ],
)
def test_check_rejects_malformed_bundles(signed, change, message):
    key, digest, data = signed
    edited = _edit(data, change)
    if message is None:
        assert check(edited, key, digest).startswith("model_signing v1.0 signature by")
        return
    with pytest.raises(VerificationError) as info:
        check(edited, key, digest)
    assert message in info.value.message


def test_payload_bit_flip_fails_the_signature(signed):
    key, digest, data = signed
    bundle = json.loads(data)
    payload = bytearray(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload[10] ^= 1
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    with pytest.raises(VerificationError, match="does not verify"):
        check(json.dumps(bundle).encode(), key, digest)


def test_model_sig_key_rules(tmp_path):
    ed, p256 = generate("ed25519"), generate()
    assert model_sig_key([ed, p256], WEIGHTS, tmp_path / "x.sig") is p256
    with pytest.raises(UsageError, match="P-256"):
        model_sig_key([ed], WEIGHTS, tmp_path / "x.sig")
    with pytest.raises(UsageError, match="needs --weights"):
        model_sig_key([p256], None, tmp_path / "x.sig")
    with pytest.raises(UsageError, match="overwrite the weights file"):
        model_sig_key([p256], WEIGHTS / "config.json", WEIGHTS / "config.json")


def test_without_a_hint_every_trusted_key_is_tried(signed):
    key, digest, _ = signed
    stranger = model_sig_bytes(digest, generate(), name="weights")
    no_hint = _edit(stranger, lambda b: b["verificationMaterial"]["publicKey"].pop("hint"))
    with pytest.raises(VerificationError, match="does not verify with any trusted key"):
        check(no_hint, key, digest)
    with pytest.raises(VerificationError, match="not in the trust root"):
        check(stranger, key, digest)
