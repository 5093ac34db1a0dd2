"""Hostile bundles, builds and claims (issue #15): publish only what was signed, never delete, bind claims.

Each test tries the attack through the real CLI (real keys, real signatures, a real mkdocs build) and
asserts the exit code, the message, and that nothing outside the intended folder was created, changed or
deleted (tree snapshots before and after).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import unicodedata
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import yaml

from receipts.cli import main
from receipts.dsse import sign_envelope
from receipts.keys import generate, write_keypair
from receipts.sign import PAYLOAD_TYPE
from tests.receipts.test_cli_hostile import changes, tree_snapshot

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
CARD = DATA / "card_fake_teacher.yaml"  # names the teacher tests/data/run_minimal evaluated
DEMO_CARD = ROOT / "examples" / "card.yaml"  # names SmolLM2 (by its GGUF digest) as the teacher
RUN = DATA / "run_minimal"
WEIGHTS = DATA / "weights_golden"
FOOTPRINT = DATA / "footprint_minimal.json"
BUNDLE = "smollm2-135m-distilled-24l@0.1.0"


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    return code, text


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """Keygen -> trust init -> sign (card + run + footprint + weights), as a publisher does."""
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "pw")
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "keygen", "--out", "keys/release")[0] == 0
    code, text = cli(
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
    code, text = cli(
        capsys,
        *("sign", "--card", CARD, "--weights", "weights", "--run", RUN, "--footprint", FOOTPRINT),
        *("--key", "keys/release.key.pem", "--out", "receipts"),
    )
    assert code == 0, text
    return {"tmp": tmp_path, "bundle": tmp_path / "receipts" / BUNDLE, "trust": tmp_path / "trust.json"}


def _resign(bundle: Path, edit: Any, key_path: Path) -> None:
    """The publisher's own key signs an edited statement: what `sign` refuses, forged by hand."""
    from receipts.keys import load_private_key

    envelope = json.loads((bundle / "receipt.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    edit(statement)
    key = load_private_key(key_path, b"pw")
    payload = bytes(rfc8785.dumps(statement))
    (bundle / "receipt.json").write_bytes(sign_envelope(PAYLOAD_TYPE, payload, [key]))


# --- a bundle is exactly its signed subjects ---------------------------------------------------------


@pytest.mark.parametrize(
    ("intruder", "content"),
    [
        ("evil.html", b"<script>window.__pwned = 1</script>"),
        ("runs/tiny-mc/evil.js", b"alert(1)"),
        ("release.key.pem", None),  # the publisher's private key, dropped into the bundle by mistake
    ],
)
def test_unsigned_file_in_a_bundle_fails_verify_build_and_render(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], intruder: str, content: bytes | None
) -> None:
    bundle, tmp = world["bundle"], world["tmp"]
    if content is None:
        shutil.copy2(tmp / "keys" / "release.key.pem", bundle / intruder)
    else:
        (bundle / intruder).write_bytes(content)
    before = tree_snapshot(tmp)
    code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json")
    assert code == 4
    assert f"bundle: files the receipt does not sign: {intruder}" in text
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 4
    assert "refusing to publish an unverified receipt" in text
    assert intruder in text
    code, text = cli(capsys, "render", "receipts", "--trust-root", "trust.json", "--out", "docs")
    assert code == 4
    assert intruder in text
    assert changes(before, tree_snapshot(tmp)) == []  # no site, no docs, nothing touched


def test_symlinks_are_never_followed_or_published(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, tmp = world["bundle"], world["tmp"]
    secret = tmp / "secret.txt"
    secret.write_text("a private key outside the bundle")
    # a signed subject replaced by a link to the same bytes elsewhere: still refused (never follow links)
    outside = tmp / "card-elsewhere.yaml"
    shutil.copy2(bundle / "card.yaml", outside)
    (bundle / "card.yaml").unlink()
    (bundle / "card.yaml").symlink_to(outside)
    (bundle / "leak.txt").symlink_to(secret)
    before = tree_snapshot(tmp)
    code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json")
    assert code == 4
    assert "card.yaml: a symbolic link is on its path" in text
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 4
    assert changes(before, tree_snapshot(tmp)) == []


def test_a_linked_folder_of_subjects_is_refused(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, tmp = world["bundle"], world["tmp"]
    shutil.move(bundle / "runs", tmp / "runs-elsewhere")
    (bundle / "runs").symlink_to(tmp / "runs-elsewhere")
    code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json")
    assert code == 4
    assert "runs/tiny-mc/results.json: a symbolic link is on its path" in text


def test_a_linked_bundle_in_a_folder_of_receipts_is_not_published(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A link inside the receipts folder cannot pull a bundle (or anything) from elsewhere into a catalog."""
    tmp = world["tmp"]
    (tmp / "elsewhere").mkdir()
    shutil.move(world["bundle"], tmp / "elsewhere" / BUNDLE)
    (tmp / "receipts" / BUNDLE).symlink_to(tmp / "elsewhere" / BUNDLE)
    code, text = cli(capsys, "verify", "receipts", "--trust-root", "trust.json")
    assert code == 1
    assert "no receipt.json found" in text


def test_the_built_site_publishes_exactly_the_signed_subjects(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 0, text
    published = world["tmp"] / "site" / "models" / "smollm2-135m-distilled-24l" / "0.1.0" / BUNDLE
    names = sorted(p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file())
    statement = json.loads(
        base64.b64decode(json.loads((world["bundle"] / "receipt.json").read_bytes())["payload"])
    )
    signed = {s["name"] for s in statement["subject"] if s["annotations"]["kind"] not in ("weights", "pack")}
    assert names == sorted(signed | {"receipt.json"})
    for name in names:
        assert (published / name).read_bytes() == (world["bundle"] / name).read_bytes()
    folders = [p for p in published.rglob("*") if p.is_dir()] + [published]
    assert all(p.stat().st_mode & 0o055 == 0o055 for p in folders)  # published folders are world-readable
    code, text = cli(capsys, "verify", "site", "--trust-root", "trust.json")
    assert code == 0, text


def test_signed_bundles_follow_the_umask(world: dict[str, Any]) -> None:
    """A mkdtemp 0700 would hide a bundle from other users ("no receipt.json found"); keys stay 0600."""
    umask = os.umask(0)
    os.umask(umask)
    for folder in [world["bundle"], *(p for p in world["bundle"].rglob("*") if p.is_dir())]:
        assert folder.stat().st_mode & 0o777 == 0o777 & ~umask, folder
    assert (world["tmp"] / "keys" / "release.key.pem").stat().st_mode & 0o777 == 0o600


UNSAFE_NAMES = {
    "html_page": "runs/tiny-mc/examples.html",  # would be served as a live page on the catalog's origin
    "markdown_page": "card.md",  # mkdocs would render it into a themed page
    "space": "card yaml",  # verify.js refuses it: the CLI must agree
    "nested_receipt": "footprints/receipt.json",
    "dot_slash": "./card.yaml",
    "dot_dot": "runs/../card.yaml",
    "absolute": "/etc/passwd",
    "backslash": "runs\\tiny-mc\\results.json",
    "nul": "card.yaml\x00.txt",
    "nfd": unicodedata.normalize("NFD", "carte-é.yaml"),
    "empty_segment": "runs//tiny-mc/results.json",
}


@pytest.mark.parametrize("case", sorted(UNSAFE_NAMES))
def test_unsafe_subject_names_are_refused_at_verify(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], case: str
) -> None:
    bundle = world["bundle"]

    def rename(statement: dict[str, Any]) -> None:
        card = next(s for s in statement["subject"] if s["annotations"]["kind"] == "card")
        card["name"] = UNSAFE_NAMES[case]

    _resign(bundle, rename, world["tmp"] / "keys" / "release.key.pem")
    code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json")
    assert code == 4
    assert "subjects: subject " in text


def test_sign_refuses_a_footprint_whose_name_is_unsafe(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    odd = world["tmp"] / "foot\nprint.json"
    shutil.copy(FOOTPRINT, odd)
    code, text = cli(
        capsys,
        *("sign", "--card", CARD, "--weights", "weights", "--footprint", odd),
        *("--key", "keys/release.key.pem", "--out", "other"),
    )
    assert code == 2
    assert "holds a control character" in text
    assert not (world["tmp"] / "other").exists() or not any((world["tmp"] / "other").iterdir())


# --- builds never delete before success --------------------------------------------------------------


def test_a_failed_build_keeps_the_last_good_site(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = world["tmp"]
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 0, text
    card = world["bundle"] / "card.yaml"
    card.write_bytes(card.read_bytes().replace(b"Apache-2.0", b"Apache-3.0", 1))
    before = tree_snapshot(tmp)
    code, build_text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 4
    assert "card.yaml: digest mismatch" in build_text
    assert "Aborted with a BuildError" not in build_text
    assert changes(before, tree_snapshot(tmp)) == []  # the old site is exactly as it was
    code, render_text = cli(capsys, "render", "receipts", "--trust-root", "trust.json", "--out", "docs")
    assert code == 4
    assert build_text.splitlines()[0] == render_text.splitlines()[0]  # the same message as render


def test_build_refuses_an_unrelated_non_empty_out(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = world["tmp"]
    home = tmp / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    before = tree_snapshot(tmp)
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", home)
    assert code == 2
    assert "not a previous receipts build" in text
    assert "--force" in text
    assert changes(before, tree_snapshot(tmp)) == []
    # a previous receipts build is replaced; --force replaces anything
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 0, text
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 0, text
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", home, "--force")
    assert code == 0, text
    assert not (home / "thesis.tex").exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith(".")]  # no staging or old folders left


@pytest.mark.parametrize("out", ["receipts", ".", "receipts/smollm2-135m-distilled-24l@0.1.0"])
def test_build_never_replaces_its_own_inputs_even_with_force(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], out: str
) -> None:
    before = tree_snapshot(world["tmp"])
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", out, "--force")
    assert code == 2
    assert "replacing it with the site would delete it" in text  # or mix the site into them
    assert changes(before, tree_snapshot(world["tmp"])) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "mkdocs config does not exist"),
        (b"site_name: [unclosed\n", "not valid YAML"),
        (b"\xff\xfe\x00garbage", "is a YAML mapping"),  # parses as one odd string
        (b"- just\n- a list\n", "is a YAML mapping"),
    ],
    ids=["missing", "syntax", "binary", "not_a_mapping"],
)
def test_build_config_file_errors_are_one_message(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], config: bytes | None, message: str
) -> None:
    path = world["tmp"] / "mkdocs.yml"
    if config is not None:
        path.write_bytes(config)
    before = tree_snapshot(world["tmp"])
    code, text = cli(
        capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site", "--config-file", path
    )
    assert code == 1
    assert message in text
    assert "mkdocs.yml" in text
    assert changes(before, tree_snapshot(world["tmp"])) == []


# --- the card is bound to the evidence ---------------------------------------------------------------


def test_sign_refuses_a_card_naming_another_teacher(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo card names SmolLM2 as teacher; run_minimal's teacher was fake:teacher."""
    before = tree_snapshot(world["tmp"])
    code, text = cli(
        capsys,
        *("sign", "--card", DEMO_CARD, "--weights", "weights", "--run", RUN),
        *("--key", "keys/release.key.pem", "--out", "receipts", "--force"),
    )
    assert code == 4
    assert "the run's teacher is fake:teacher" in text
    assert "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" in text
    assert changes(before, tree_snapshot(world["tmp"])) == []


def test_a_forged_teacher_claim_fails_verify_naming_both(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The key holder bypasses `sign` and signs a card that names another teacher: verify catches it."""
    bundle = world["bundle"]
    card = yaml.safe_load((DEMO_CARD).read_text("utf-8"))
    (bundle / "card.yaml").write_text(yaml.safe_dump(card), "utf-8")
    from receipts.digests import sha256_bytes

    def swap_card(statement: dict[str, Any]) -> None:
        statement["predicate"]["card"] = card
        subject = next(s for s in statement["subject"] if s["annotations"]["kind"] == "card")
        subject["digest"]["sha256"] = sha256_bytes((bundle / "card.yaml").read_bytes())

    _resign(bundle, swap_card, world["tmp"] / "keys" / "release.key.pem")
    code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json")
    assert code == 4
    assert "the card contradicts the signed evidence" in text
    assert "fake:teacher" in text
    assert "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53" in text


def _second_run_folder(bundle: Path, statement: dict[str, Any], folder: str, *, keep: bool) -> None:
    """Copy (``keep``) or move the signed run of tiny-mc to ``runs/<folder>/``, subjects and entries too."""
    shutil.copytree(bundle / "runs" / "tiny-mc", bundle / "runs" / folder)
    if not keep:
        shutil.rmtree(bundle / "runs" / "tiny-mc")
    entry = json.loads(json.dumps(statement["predicate"]["runs"][0]))
    entry["results"], entry["examples"] = f"runs/{folder}/results.json", f"runs/{folder}/examples.jsonl"
    statement["predicate"]["runs"] = [*statement["predicate"]["runs"], entry] if keep else [entry]
    for subject in list(statement["subject"]):
        if subject["name"].startswith("runs/tiny-mc/"):
            moved = dict(subject, name=subject["name"].replace("runs/tiny-mc/", f"runs/{folder}/"))
            statement["subject"].append(moved)
            if not keep:
                statement["subject"].remove(subject)


@pytest.mark.parametrize("keep", [True, False], ids=["two_runs_of_one_pack", "run_in_another_folder"])
def test_one_run_per_pack_under_its_pack_id(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], keep: bool
) -> None:
    """Pages key a run by its pack id: a second run of tiny-mc, or a run filed elsewhere, is refused."""
    bundle = world["bundle"]
    _resign(
        bundle,
        lambda st: _second_run_folder(bundle, st, "tiny-mc-again", keep=keep),
        world["tmp"] / "keys" / "release.key.pem",
    )
    code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json")
    assert code == 4, text
    assert "bindings" in text
    if keep:
        assert "two runs of pack tiny-mc: runs/tiny-mc/results.json and runs/tiny-mc-again/" in text
    else:
        assert "is not named runs/tiny-mc/results.json and runs/tiny-mc/examples.jsonl" in text


def test_a_fake_student_is_not_the_signed_weights(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    run = world["tmp"] / "fake-student-run"
    shutil.copytree(RUN, run)
    results = json.loads((run / "results.json").read_text("utf-8"))
    results["models"]["student"] = {"spec": "fake:s", "endpoint": "fake:s", "kind": "fake"}
    (run / "results.json").write_text(json.dumps(results), "utf-8")
    code, text = cli(
        capsys,
        *("sign", "--card", CARD, "--weights", "weights", "--run", run),
        *("--key", "keys/release.key.pem", "--out", "other"),
    )
    assert code == 4
    assert "the run's student is fake:s" in text
    assert "not the signed weights sha256:" in text


def test_a_footprint_of_another_model_is_refused(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    footprint = json.loads(FOOTPRINT.read_text("utf-8"))
    footprint["model"]["digest"] = "sha256:" + "ab" * 32
    other = world["tmp"] / "other-model.json"
    other.write_text(json.dumps(footprint), "utf-8")
    code, text = cli(
        capsys,
        *("sign", "--card", CARD, "--weights", "weights", "--run", RUN, "--footprint", other),
        *("--key", "keys/release.key.pem", "--out", "other"),
    )
    assert code == 4
    assert f"the footprint measured sha256:{'ab' * 32}" in text


def test_a_card_of_another_publisher_fails_verify(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from receipts.trust import new_root

    key = generate()
    write_keypair(key, tmp_path / "acme", b"pw")
    (tmp_path / "acme-trust.json").write_bytes(
        new_root("Acme ML", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    code, text = cli(
        capsys,
        *("sign", "--card", CARD, "--key", tmp_path / "acme.key.pem", "--out", tmp_path / "acme-receipts"),
    )
    assert code == 0, text
    code, text = cli(
        capsys, "verify", tmp_path / "acme-receipts" / BUNDLE, "--trust-root", tmp_path / "acme-trust.json"
    )
    assert code == 4
    assert (
        "trust: the card says it is published by 'receipts demo', but the pinned trust root is 'Acme ML'"
        in text
    )


# --- gates fail closed -------------------------------------------------------------------------------


def _card_with_gate(tmp: Path, gate: dict[str, Any]) -> Path:
    card = yaml.safe_load(CARD.read_text("utf-8"))
    card["gate"] = gate
    path = tmp / "gated.card.yaml"
    path.write_text(yaml.safe_dump(card), "utf-8")
    return path


def test_sign_gate_fails_closed_unless_the_rule_is_optional(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """run_minimal's teacher is a fake endpoint with no footprint: the cost rule is not evaluated."""
    tmp = world["tmp"]
    lenient = {"max_cost_ratio": 100.0}
    before = tree_snapshot(tmp)
    code, text = cli(
        capsys,
        *("sign", "--card", _card_with_gate(tmp, lenient), "--weights", "weights", "--run", RUN, "--gate"),
        *("--key", "keys/release.key.pem", "--out", "gated"),
    )
    assert code == 5
    assert "not signed: the release gate did not pass" in text
    assert "max_cost_ratio not evaluated: no footprints of student and teacher on one hardware class" in text
    after = tree_snapshot(tmp)
    assert [p for p in changes(before, after) if not p.startswith(("gated.card.yaml", "gated"))] == []
    assert not (tmp / "gated" / BUNDLE).exists()
    # without --gate it signs, and verify --gate then exits 5 on the signed verdict
    code, text = cli(
        capsys,
        *("sign", "--card", _card_with_gate(tmp, lenient), "--weights", "weights", "--run", RUN),
        *("--key", "keys/release.key.pem", "--out", "gated"),
    )
    assert code == 0, text
    code, text = cli(capsys, "verify", tmp / "gated" / BUNDLE, "--trust-root", "trust.json", "--gate")
    assert code == 5
    assert "the release gate did not pass" in text


def test_an_optional_rule_may_go_unevaluated(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from receipts.formats._shared import Gate
    from receipts.gate import release_decision as decide

    def release_decision(gate: dict[str, Any], optional: Sequence[str] = ()) -> tuple[bool, str]:
        return decide(Gate.model_validate(gate), optional)

    gate = {
        "verdict": "not_evaluated",
        "rules": [
            {
                "pack": "p@1",
                "rule": "max_global_regression",
                "status": "pass",
                "observed": 0.01,
                "threshold": 0.03,
            },
            {"pack": "p@1", "rule": "max_cost_ratio", "status": "not_evaluated", "input": "cost_ratio"},
        ],
    }
    assert release_decision(gate) == (False, release_decision(gate)[1])
    assert "max_cost_ratio not evaluated: no footprints of student and teacher" in release_decision(gate)[1]
    passed, why = release_decision(gate, ["max_cost_ratio"])
    assert passed
    assert why == "passed (optional, not passed: max_cost_ratio)"
    failed = {**gate, "rules": [{**gate["rules"][0], "status": "fail"}, gate["rules"][1]]}
    assert (
        release_decision(failed, ["max_cost_ratio", "max_global_regression"])[0] is False
    )  # fails still fail
    assert release_decision({"verdict": "not_evaluated", "rules": []}, ["max_cost_ratio"])[0] is False
    nothing = {**gate, "rules": [gate["rules"][1]]}  # every rule optional, none evaluated: not a pass
    assert release_decision(nothing, ["max_cost_ratio"]) == (
        False,
        "no rule passed (optional, not passed: max_cost_ratio)",
    )


def test_run_gate_exits_5_when_a_rule_cannot_be_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No base model: retention cannot be computed, so min_retention is not evaluated -> exit 5, not 0."""
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    code, text = cli(
        capsys,
        *(
            "run",
            ROOT / "packs" / "capitals-mc",
            "--teacher",
            "fake:t?skill=0.9",
            "--student",
            "fake:t?skill=0.9",
        ),
        *("--limit", "20", "--variant", "original", "--out", tmp_path / "run", "--gate"),
    )
    assert code == 5
    assert "min_retention not evaluated: the run has no retention (no base model" in text
    assert (tmp_path / "run" / "results.json").is_file()  # the run itself is kept


# --- in a real browser ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _chromium_page(site: Path) -> Iterator[tuple[Any, str]]:
    """A Chromium page and the base URL of ``site`` served on 127.0.0.1 (both stopped afterwards)."""
    import http.server
    import threading

    from playwright import sync_api

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_api.sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                yield chromium.new_page(), f"http://127.0.0.1:{server.server_address[1]}/"
            finally:
                chromium.close()
    finally:
        server.shutdown()
        server.server_close()


def _settled(page: Any) -> str:
    page.wait_for_function("() => document.querySelector('.rc-status')?.dataset.state !== 'pending'")
    return str(page.locator(".rc-status").get_attribute("data-state"))


@pytest.mark.browser
def test_an_unsigned_script_in_a_bundle_is_never_served(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """evil.html lands in the bundle right after its receipt verified (the race the copy loop once lost)."""
    import generator.render

    verify = generator.render.verify_receipt
    evil = b"<script>window.top.__pwned = 1; document.title = 'pwned'</script>"

    def verify_then_drop(receipt: Path, root: object, **options: Any) -> object:
        report = verify(receipt, root, **options)  # type: ignore[arg-type]
        (receipt.parent / "evil.html").write_bytes(evil)
        (receipt.parent / "runs" / "tiny-mc" / "evil.js").write_bytes(b"window.top.__pwned = 2")
        return report

    monkeypatch.setattr(generator.render, "verify_receipt", verify_then_drop)
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 0, text
    site = world["tmp"] / "site"
    assert not list(site.rglob("evil.*"))

    model = "models/smollm2-135m-distilled-24l/0.1.0/"
    with _chromium_page(site) as (page, base):
        response = page.goto(base + model + f"{BUNDLE}/evil.html")
        assert response is not None
        assert response.status == 404
        page.goto(base + model)
        assert _settled(page) == "verified"
        assert page.evaluate("() => window.__pwned") is None


@pytest.mark.browser
@pytest.mark.parametrize(
    "attack", ["dot_slash_subject", "other_publisher", "two_runs_of_one_pack", "pack_without_pack_yaml"]
)
def test_verify_js_refuses_what_the_cli_refuses(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    """A page re-pointed at a re-signed receipt with ``./card.yaml``, or at a root of another publisher."""
    import hashlib
    import re

    if attack == "pack_without_pack_yaml":  # the receipt publishes its pack (CC-BY-4.0 permits it)
        shutil.rmtree(world["bundle"])
        code, text = cli(
            capsys,
            *("sign", "--card", CARD, "--weights", "weights", "--run", RUN, "--footprint", FOOTPRINT),
            *("--pack", DATA / "pack_minimal", "--key", "keys/release.key.pem", "--out", "receipts"),
        )
        assert code == 0, text
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 0, text
    folder = world["tmp"] / "site" / "models" / "smollm2-135m-distilled-24l" / "0.1.0"
    page_file = folder / "index.html"
    html = page_file.read_text("utf-8")
    if attack == "dot_slash_subject":

        def rename(statement: dict[str, Any]) -> None:
            next(s for s in statement["subject"] if s["annotations"]["kind"] == "card")["name"] = (
                "./card.yaml"
            )

        _resign(folder / BUNDLE, rename, world["tmp"] / "keys" / "release.key.pem")
        digest = hashlib.sha256((folder / BUNDLE / "receipt.json").read_bytes()).hexdigest()
        html = re.sub(r'data-receipt-sha256="[0-9a-f]+"', f'data-receipt-sha256="{digest}"', html)
        expected = "is not a safe relative path"
    elif attack == "pack_without_pack_yaml":
        bundle = folder / BUNDLE
        (bundle / "packs" / "tiny-mc" / "pack.yaml").unlink()

        def drop(statement: dict[str, Any]) -> None:
            statement["subject"] = [s for s in statement["subject"] if s["name"] != "packs/tiny-mc/pack.yaml"]

        _resign(bundle, drop, world["tmp"] / "keys" / "release.key.pem")
        digest = hashlib.sha256((bundle / "receipt.json").read_bytes()).hexdigest()
        html = re.sub(r'data-receipt-sha256="[0-9a-f]+"', f'data-receipt-sha256="{digest}"', html)
        expected = "published without its pack.yaml"
        code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json", "--expect", BUNDLE)
        assert code == 4
        assert expected in text
    elif attack == "two_runs_of_one_pack":
        bundle = folder / BUNDLE
        _resign(
            bundle,
            lambda st: _second_run_folder(bundle, st, "tiny-mc-again", keep=True),
            world["tmp"] / "keys" / "release.key.pem",
        )
        digest = hashlib.sha256((bundle / "receipt.json").read_bytes()).hexdigest()
        html = re.sub(r'data-receipt-sha256="[0-9a-f]+"', f'data-receipt-sha256="{digest}"', html)
        expected = "two runs of pack tiny-mc"
        code, text = cli(capsys, "verify", bundle, "--trust-root", "trust.json", "--expect", BUNDLE)
        assert code == 4
        assert expected in text
    else:
        root = json.loads(world["trust"].read_bytes())
        root["signed"]["publisher"] = "Acme ML"
        data = json.dumps(root).encode("utf-8")
        html = re.sub(
            r'data-trust-sha256="[0-9a-f]+"', f'data-trust-sha256="{hashlib.sha256(data).hexdigest()}"', html
        )
        html = re.sub(
            r'data-trust-root="[^"]+"', f'data-trust-root="{base64.b64encode(data).decode()}"', html
        )
        expected = "but the trust root is"
    page_file.write_text(html, "utf-8")

    with _chromium_page(world["tmp"] / "site") as (page, base):
        page.goto(base + "models/smollm2-135m-distilled-24l/0.1.0/")
        assert _settled(page) == "failed"
        assert expected in str(page.locator(".rc-status").text_content())


# --- found by an attacker review of the above ------------------------------------------------------------


def test_a_planted_marker_does_not_authorise_replacing_a_folder(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    tmp = world["tmp"]
    home = tmp / "home"
    (home / ".git").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (home / ".receipts-build").write_text("")  # shipped by some archive, or planted
    before = tree_snapshot(tmp)
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", home)
    assert code == 2
    assert "not a previous receipts build" in text
    assert changes(before, tree_snapshot(tmp)) == []
    # a real previous build, with a file added to it since, needs --force too
    assert cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")[0] == 0
    (tmp / "site" / "CNAME").write_text("catalog.example")
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 2
    assert (tmp / "site" / "CNAME").is_file()


def test_a_card_page_without_its_verification_box_fails_verify_site(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")[0] == 0
    page = world["tmp"] / "site" / "models" / "smollm2-135m-distilled-24l" / "0.1.0" / "index.html"
    html = page.read_text("utf-8")
    page.write_text(html.replace("rc-verify", "rc-verifx").replace(">receipts demo<", ">Acme Corp<"), "utf-8")
    code, text = cli(capsys, "verify", "site", "--trust-root", "trust.json")
    assert code == 4
    assert "no card page shows this receipt with its verification box" in text
    page.unlink()
    code, text = cli(capsys, "verify", "site", "--trust-root", "trust.json")
    assert code == 4
    assert "models/smollm2-135m-distilled-24l/0.1.0/index.html" in text


def test_a_fifo_or_link_in_place_of_receipt_json_is_refused_without_reading(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = world["bundle"] / "receipt.json"
    receipt.unlink()
    os.mkfifo(receipt)  # opening it for reading would wait forever for a writer
    code, text = cli(capsys, "verify", world["bundle"], "--trust-root", "trust.json")
    assert code == 4
    assert "receipt.json is not a regular file" in text
    receipt.unlink()
    receipt.symlink_to("/dev/zero")  # followed, it would be read until memory runs out
    code, text = cli(capsys, "verify", world["bundle"], "--trust-root", "trust.json")
    assert code == 4
    assert "receipt.json: a symbolic link is on its path" in text


def test_publishers_compare_exactly(world: dict[str, Any]) -> None:
    from receipts.binding import publisher_problem

    assert publisher_problem("receipts demo", "receipts demo") is None
    assert publisher_problem(unicodedata.normalize("NFD", "Café"), "Café") is None  # NFC only
    for lookalike in (
        "receipts\x1cdemo",
        "receipts  demo",
        "receipts\u00a0demo",
        "receipts\u200bdemo",
        "r\u0435ceipts demo",  # a Cyrillic e
    ):
        assert publisher_problem(lookalike, "receipts demo") is not None, repr(lookalike)


def test_a_served_teacher_binds_by_host_and_model(world: dict[str, Any]) -> None:
    from receipts.binding import matches_teacher
    from receipts.formats.card import Teacher
    from receipts.formats.results import ModelIdentity

    def problems(api: str, endpoint: str) -> bool:
        claim = Teacher.model_validate({"name": "t", "api_identifier": api, "license": "MIT"})
        run = ModelIdentity.model_validate({"spec": "openai:x", "kind": "openai", "endpoint": endpoint})
        return not matches_teacher(claim, run)

    assert not problems("openai:gpt-4o", "https://api.openai.com/v1#gpt-4o")
    assert not problems("gpu-box:Qwen/Qwen2.5-72B", "http://gpu-box:8000/v1#Qwen/Qwen2.5-72B")
    assert problems("openai:gpt-4o", "http://127.0.0.1:9/v1#gpt-4o")  # a local server calling itself gpt-4o
    assert problems("anthropic:gpt-4o", "https://api.openai.com/v1#gpt-4o")
    assert problems("openai:gpt-4o", "https://api.openai.com/v1#gpt-4o-mini")


def test_a_plugin_that_rewrites_the_built_site_is_caught_before_the_swap(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A theme or plugin changing a published bundle or a page's figure: the old site stays in place."""
    import generator.render

    assert cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")[0] == 0
    before = tree_snapshot(world["tmp"])
    render = generator.render.render

    def render_then_meddle(*args: Any, **kwargs: Any) -> Any:
        result = render(*args, **kwargs)
        for name in list(result.files):
            if name.endswith("/card.yaml"):
                result.files[name] += b"\n# appended by a plugin\n"
        return result

    monkeypatch.setattr(generator.render, "render", render_then_meddle)
    code, text = cli(capsys, "build", "receipts", "--trust-root", "trust.json", "--out", "site")
    assert code == 4
    assert "differs from what verified: card.yaml" in text
    assert changes(before, tree_snapshot(world["tmp"])) == []
