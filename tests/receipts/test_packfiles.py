"""Publishing a run's eval pack in its receipt bundle (receipts.packfiles): licence, sign, verify."""

import base64
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from receipts.digests import digest_weights
from receipts.errors import InputError, VerificationError
from receipts.keys import generate
from receipts.packfiles import pack_redistributable
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes
from receipts.verify import verify_receipt

DATA = Path(__file__).parents[1] / "data"
CARD = DATA / "card_fake_teacher.yaml"
RUN = DATA / "run_minimal"
PACK = DATA / "pack_minimal"
ISSUED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 6, 2, tzinfo=UTC)


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
    return sign_receipt(CARD, [key], tmp_path / "out", runs=[RUN], **kwargs)


def subjects(bundle):
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    return json.loads(base64.b64decode(envelope["payload"]))["subject"]


def relicensed(tmp_path, license_id, extra=None):
    """A copy of the minimal pack under another licence (plus ``extra`` files), and a run that records it."""
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    text = (pack / "pack.yaml").read_text().replace("license: CC-BY-4.0", f"license: {license_id}")
    (pack / "pack.yaml").write_text(text)
    for name, content in (extra or {}).items():
        (pack / name).write_text(content)
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    old = digest_weights(PACK).root
    new = digest_weights(pack).root
    (run / "results.json").write_text((run / "results.json").read_text().replace(old, new))
    return pack, run


@pytest.mark.parametrize(
    ("expression", "allowed"),
    [
        ("CC-BY-4.0", True),
        ("CC0-1.0", True),
        ("Apache-2.0", True),
        ("MIT AND CC-BY-4.0", True),
        ("CC-BY-NC-4.0 OR MIT", True),
        ("CC0-1.0 OR MIT AND CC-BY-NC-4.0", True),  # CC0-1.0 OR (MIT AND CC-BY-NC-4.0)
        ("CC-BY-NC-4.0 AND MIT OR CC-BY-NC-4.0", False),
        ("CC-BY-NC-4.0", False),
        ("MIT AND CC-BY-NC-4.0", False),
        ("LicenseRef-internal", False),
        ("GPL-2.0-only WITH Classpath-exception-2.0", False),
        ("", False),
    ],
)
def test_pack_redistributable_follows_the_licence_table(expression, allowed):
    verdict, reason = pack_redistributable(expression)
    assert verdict is allowed
    assert reason


def test_a_licence_the_table_does_not_know_is_not_redistributable_and_the_reason_names_it():
    allowed, reason = pack_redistributable("LicenseRef-internal")
    assert allowed is False
    assert "LicenseRef-internal" in reason


def test_sign_publishes_a_redistributable_pack_and_verify_checks_it(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK])
    names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert "packs/tiny-mc/pack.yaml" in names
    assert "packs/tiny-mc/data/items.jsonl" in names
    assert "packs/tiny-mc.manifest.json" in names
    assert (bundle / "packs/tiny-mc/data/items.jsonl").read_bytes() == (
        PACK / "data/items.jsonl"
    ).read_bytes()
    manifest = json.loads((bundle / "packs/tiny-mc.manifest.json").read_bytes())
    assert manifest["root"] == f"sha256:{digest_weights(PACK).root}"
    kinds = {s["name"]: s["annotations"] for s in subjects(bundle)}
    assert kinds["packs/tiny-mc/pack.yaml"] == {"kind": "pack-file", "pack": "pack:tiny-mc@1.0.0"}
    assert kinds["pack:tiny-mc@1.0.0"]["published"] == (
        "yes: CC-BY-4.0 permits redistribution, commercial use included (licence table)"
    )
    verified = verify_receipt(bundle, root, now=NOW)
    assert verified.pack_files("tiny-mc")["data/items.jsonl"] == (PACK / "data/items.jsonl").read_bytes()


def test_sign_leaves_out_a_pack_whose_licence_does_not_permit_it(tmp_path, key, root):
    pack, run = relicensed(tmp_path, "CC-BY-NC-4.0")
    bundle = sign_receipt(CARD, [key], tmp_path / "out", runs=[run], packs=[pack], issued_at=ISSUED)
    assert not (bundle / "packs").exists()
    pack_subject = next(s for s in subjects(bundle) if s["annotations"]["kind"] == "pack")
    published = pack_subject["annotations"]["published"]
    assert published.startswith("no: commercial use: no (")  # a catalog may be run commercially
    assert "CC-BY-NC-4.0" in published
    assert verify_receipt(bundle, root, now=NOW).pack_files("tiny-mc") == {}


def test_no_pack_leaves_a_licensed_pack_out(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK], publish_packs=False)
    assert not (bundle / "packs").exists()
    pack_subject = next(s for s in subjects(bundle) if s["annotations"]["kind"] == "pack")
    assert pack_subject["annotations"]["published"].startswith("no: signed with --no-pack")
    verify_receipt(bundle, root, now=NOW)


def test_sign_refuses_a_pack_no_run_used(tmp_path, key):
    other = tmp_path / "other"
    shutil.copytree(PACK, other)
    (other / "data" / "items.jsonl").write_text(
        '{"id": "q9", "question": "x", "choices": ["a"], "label": 0}\n'
    )
    with pytest.raises(InputError, match="which no --run used"):
        sign(tmp_path, key, packs=[other])
    assert not (tmp_path / "out" / "tiny-fake-student@0.1.0").exists()


def test_only_data_files_are_published_the_rest_is_bound_by_the_manifest(tmp_path, key, root):
    script = "<script>alert(1)</script>\n"
    extra = {"README.md": script, "notes.html": script, "receipt.json": "{}"}
    pack, run = relicensed(tmp_path, "MIT", extra)
    bundle = sign_receipt(CARD, [key], tmp_path / "out", runs=[run], packs=[pack], issued_at=ISSUED)
    assert not (bundle / "packs/tiny-mc/README.md").exists()
    assert not (bundle / "packs/tiny-mc/notes.html").exists()
    assert not (bundle / "packs/tiny-mc/receipt.json").exists()
    manifest = json.loads((bundle / "packs/tiny-mc.manifest.json").read_bytes())
    assert {"README.md", "notes.html", "receipt.json", "pack.yaml", "data/items.jsonl"} == set(
        manifest["files"]
    )
    published = next(s for s in subjects(bundle) if s["annotations"]["kind"] == "pack")["annotations"][
        "published"
    ]
    assert (
        published == "yes: MIT permits redistribution, commercial use included (licence table); "
        "not published, bound by the manifest: "
        "README.md, notes.html, receipt.json"
    )
    verify_receipt(bundle, root, now=NOW)


def test_verify_fails_when_an_included_pack_file_is_edited(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK])
    items = bundle / "packs/tiny-mc/data/items.jsonl"
    items.write_bytes(items.read_bytes().replace(b"?", b"? <script>alert(1)</script>", 1))
    with pytest.raises(
        VerificationError, match=re.escape("packs/tiny-mc/data/items.jsonl: digest mismatch")
    ) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "subjects"


def test_verify_fails_when_an_included_pack_file_is_removed(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK])
    (bundle / "packs/tiny-mc/pack.yaml").unlink()
    with pytest.raises(VerificationError, match=re.escape("packs/tiny-mc/pack.yaml: missing")):
        verify_receipt(bundle, root, now=NOW)


def test_verify_fails_when_an_unsigned_file_is_added_to_the_pack_folder(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK])
    (bundle / "packs/tiny-mc/data/extra.jsonl").write_text("{}\n")
    with pytest.raises(
        VerificationError, match=re.escape("files the receipt does not sign: packs/tiny-mc/data/extra.jsonl")
    ):
        verify_receipt(bundle, root, now=NOW)


def cli(capsys, *argv):
    from receipts.cli import main

    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_cli_sign_pack_and_no_pack_then_verify(tmp_path, monkeypatch, capsys):
    """The README path: keygen, trust init, sign --run --pack; verify; sign --no-pack; a pack no run used."""
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "correct horse")
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "keygen", "--out", "keys/release")[0] == 0
    trust = [
        "trust",
        "init",
        "--publisher",
        "receipts demo",
        "--key",
        "keys/release.pub.pem",
        "--out",
        "trust.json",
    ]
    assert cli(capsys, *trust)[0] == 0
    sign_args = ["sign", "--card", CARD, "--key", "keys/release.key.pem", "--run", RUN, "--pack", PACK]
    code, text = cli(capsys, *sign_args, "--out", "published")
    assert code == 0, text
    bundle = next((tmp_path / "published").iterdir())
    assert (bundle / "packs" / "tiny-mc" / "data" / "items.jsonl").is_file()
    code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json")
    assert code == 0, text
    code, text = cli(capsys, *sign_args, "--no-pack", "--out", "withheld")
    assert code == 0, text
    assert not (next((tmp_path / "withheld").iterdir()) / "packs").exists()
    other = tmp_path / "other"
    shutil.copytree(PACK, other)
    (other / "pack.yaml").write_text((other / "pack.yaml").read_text() + "\n")
    code, text = cli(capsys, *sign_args[:-1], other, "--out", "refused")
    assert code == 1
    assert "which no --run used" in text
    assert "Traceback" not in text


def resign(bundle, key, edit):
    """Re-sign ``bundle`` after ``edit(statement)`` changed its statement (a signer publishing a bad pack)."""
    import rfc8785

    from receipts.dsse import sign_envelope
    from receipts.sign import PAYLOAD_TYPE

    statement = json.loads(base64.b64decode(json.loads((bundle / "receipt.json").read_bytes())["payload"]))
    edit(statement)
    (bundle / "receipt.json").write_bytes(sign_envelope(PAYLOAD_TYPE, bytes(rfc8785.dumps(statement)), [key]))


def set_subject(statement, name, data):
    from receipts.digests import sha256_bytes

    next(s for s in statement["subject"] if s["name"] == name)["digest"]["sha256"] = sha256_bytes(data)


def test_signed_pack_file_that_is_not_the_runs_pack_fails_bindings(tmp_path, key, root):
    """Signed by a trusted key, digests matching, but not the runs' pack: the manifest check says so."""
    bundle = sign(tmp_path, key, packs=[PACK])
    items = bundle / "packs/tiny-mc/data/items.jsonl"
    items.write_bytes(items.read_bytes() + b'{"id": "planted"}\n')
    resign(bundle, key, lambda st: set_subject(st, "packs/tiny-mc/data/items.jsonl", items.read_bytes()))
    with pytest.raises(
        VerificationError, match=re.escape("data/items.jsonl differs from the pack manifest")
    ) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "bindings"


def test_signed_pack_manifest_that_does_not_give_the_pack_digest_fails(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK])
    manifest_path = bundle / "packs/tiny-mc.manifest.json"
    manifest = json.loads(manifest_path.read_bytes())
    manifest["files"]["extra.txt"] = "sha256:" + "0" * 64
    manifest_path.write_bytes(json.dumps(manifest).encode())
    resign(bundle, key, lambda st: set_subject(st, "packs/tiny-mc.manifest.json", manifest_path.read_bytes()))
    with pytest.raises(
        VerificationError, match="its files do not add up to its root; its root sha256:"
    ) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "bindings"


def test_signed_pack_file_without_a_manifest_fails(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK])
    (bundle / "packs/tiny-mc.manifest.json").unlink()

    def drop(statement):
        statement["subject"] = [
            s for s in statement["subject"] if s["annotations"]["kind"] != "pack-manifest"
        ]

    resign(bundle, key, drop)
    with pytest.raises(
        VerificationError, match=re.escape("pack files published without a pack manifest: pack:tiny-mc@1.0.0")
    ):
        verify_receipt(bundle, root, now=NOW)


def test_a_signed_html_pack_file_is_refused_by_its_layout(tmp_path, key, root):
    bundle = sign(tmp_path, key, packs=[PACK])
    page = bundle / "packs/tiny-mc/index.html"
    page.write_bytes(b"<script>alert(1)</script>")

    def plant(statement):
        from receipts.digests import sha256_bytes

        annotations = {"kind": "pack-file", "pack": "pack:tiny-mc@1.0.0"}
        digest = {"sha256": sha256_bytes(page.read_bytes())}
        statement["subject"].append(
            {"name": "packs/tiny-mc/index.html", "digest": digest, "annotations": annotations}
        )

    resign(bundle, key, plant)
    with pytest.raises(VerificationError, match="is not where a pack-file subject lives") as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "subjects"


def test_a_hand_published_pack_whose_licence_forbids_it_fails_verify(tmp_path, key, root, monkeypatch):
    """A signer that skips `pack_redistributable` (a hand-made statement) publishes a CC-BY-NC pack."""
    import receipts.packfiles

    pack, run = relicensed(tmp_path, "CC-BY-NC-4.0")
    with monkeypatch.context() as patched:
        patched.setattr(receipts.packfiles, "pack_redistributable", lambda _: (True, "a forged yes"))
        bundle = sign_receipt(CARD, [key], tmp_path / "out", runs=[run], packs=[pack], issued_at=ISSUED)
    assert (bundle / "packs/tiny-mc/pack.yaml").is_file()
    with pytest.raises(VerificationError) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "bindings"
    assert "published pack tiny-mc@1.0.0: its licence does not permit publishing it: commercial use: no" in (
        caught.value.message
    )


def test_a_pack_published_without_its_pack_yaml_fails_verify(tmp_path, key, root):
    """Without the published pack.yaml nobody can tell whether the pack's licence lets it be published."""
    bundle = sign(tmp_path, key, packs=[PACK])
    (bundle / "packs/tiny-mc/pack.yaml").unlink()

    def drop(statement):
        statement["subject"] = [s for s in statement["subject"] if s["name"] != "packs/tiny-mc/pack.yaml"]

    resign(bundle, key, drop)
    with pytest.raises(
        VerificationError, match=re.escape("published without its pack.yaml, so its licence cannot be")
    ) as caught:
        verify_receipt(bundle, root, now=NOW)
    assert caught.value.check == "bindings"
