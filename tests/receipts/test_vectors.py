"""VECTORS 1-13: every committed vector through the Python API and the CLI; the golden receipts.

The vectors are written by tests/vectors/make_vectors.py and committed (see tests/vectors/README.md).
A failing case must fail with exactly its `VerificationError.check` and never any other exception;
a ``pass`` case must verify. Weights, pack and oversized-envelope cases are mutated here, at test time,
on copies (git keeps no symbolic links, and 16 MiB is too much to commit).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import model_signing.hashing
import pytest

from receipts.cli import main
from receipts.digests import digest_weights
from receipts.dsse import MAX_ENVELOPE_BYTES
from receipts.errors import VerificationError
from receipts.trust import check_update, load_trust_root
from receipts.verify import Check, verify_receipt

VECTORS = Path(__file__).parents[1] / "vectors"
MANIFEST: dict[str, Any] = json.loads((VECTORS / "cases.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = MANIFEST["cases"]
RECEIPT_CASES = [c for c in CASES if c["kind"] == "verify"]
UPDATE_CASES = [c for c in CASES if c["kind"] == "trust-update"]
GOLDEN = sorted((VECTORS / "golden").glob("v*/*@*"))
MAIN_ROOT = VECTORS / "roots" / "main.json"
PACK = Path(__file__).parents[1] / "data" / "pack_minimal"
RELEASE_A = "vector-model@0.1.0"


@functools.cache
def _generator() -> ModuleType:
    """tests/vectors/make_vectors.py, loaded by path (it is a script, not part of any package)."""
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_vectors", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _case_id(case: dict[str, Any]) -> str:
    return str(case["id"])


# --- test-time mutations ------------------------------------------------------------------------


def _flip_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _returning(action: Callable[[Path], object], result: str = "") -> Callable[[Path], Path]:
    """A mutation: ``action(folder)``, then the path to pass on (``folder / result``)."""

    def mutate(folder: Path) -> Path:
        action(folder)
        return folder / result if result else folder

    return mutate


WEIGHTS_OPS: dict[str, Callable[[Path], Path]] = {
    "none": _returning(lambda w: None),
    "bitflip": _returning(lambda w: _flip_bit(w / "sub" / "blob.bin")),
    "extra-file": _returning(lambda w: (w / "extra.bin").write_bytes(b"extra")),
    "deleted-file": _returning(lambda w: (w / "config.json").unlink()),
    "renamed-file": _returning(lambda w: (w / "config.json").rename(w / "config.jsn")),
    "moved-into-subfolder": _returning(lambda w: (w / "a-c").rename(w / "sub" / "a-c")),
    "empty-file": _returning(lambda w: (w / "added-empty.bin").write_bytes(b"")),
    "symlink-file": _returning(lambda w: (w / "link.bin").symlink_to("config.json")),
    "symlink-dir": _returning(lambda w: (w / "linked").symlink_to("sub", target_is_directory=True)),
    "single-file": _returning(lambda w: None, "config.json"),
    "missing": _returning(lambda w: None, "no-such-folder"),
}
PACK_OPS: dict[str, Callable[[Path], Path]] = {
    "none": _returning(lambda p: None),
    "bitflip": _returning(lambda p: _flip_bit(p / "data" / "items.jsonl")),
    "symlink": _returning(lambda p: (p / "data" / "more.jsonl").symlink_to("items.jsonl")),
}


def _oversized(receipt: Path) -> None:
    head = b'{"payloadType":"application/vnd.in-toto+json","payload":"'
    tail = b'","signatures":[{"keyid":"sha256:' + b"0" * 64 + b'","sig":"AAAA"}]}'
    receipt.write_bytes(head + b"A" * (MAX_ENVELOPE_BYTES - len(head) - len(tail) + 4) + tail)
    assert receipt.stat().st_size == MAX_ENVELOPE_BYTES + 4


RECEIPT_OPS: dict[str, Callable[[Path], None]] = {"oversized": _oversized}


def _prepare(case: dict[str, Any], tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    """(receipt.json, trust root file, verify_receipt options), copying and mutating as the case says."""
    bundle = VECTORS / case["bundle"]
    options: dict[str, Any] = dict(case.get("options", {}))
    for name in ("weights", "pack"):
        if name in options:
            options[name] = VECTORS / options[name]
    mutate = case.get("mutate", {})
    if "receipt" in mutate:
        bundle = shutil.copytree(bundle, tmp_path / "bundle" / bundle.name)  # same name: same identity
        RECEIPT_OPS[mutate["receipt"]](bundle / "receipt.json")
    for name, ops in (("weights", WEIGHTS_OPS), ("pack", PACK_OPS)):
        if name in mutate:
            options[name] = ops[mutate[name]](shutil.copytree(options[name], tmp_path / name))
    return bundle / "receipt.json", VECTORS / case["root"], options


def _flags(options: dict[str, Any]) -> list[str]:
    flags = []
    for name in ("weights", "pack", "expect"):
        if name in options:
            flags += [f"--{name}", str(options[name])]
    return flags + (["--allow-retired"] if options.get("allow_retired") else [])


def _cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- every receipt case, two ways ---------------------------------------------------------------


@pytest.mark.parametrize("case", RECEIPT_CASES, ids=_case_id)
def test_receipt_vector_python_api(case: dict[str, Any], tmp_path: Path) -> None:
    receipt, root, options = _prepare(case, tmp_path)
    if case["expect"] == "pass":
        report = verify_receipt(receipt, load_trust_root(root), **options)
        statuses = {c.name: c.status for c in report.checks}
        assert report.ok, report.checks
        assert all(statuses[name] == "pass" for name in ("weights", "pack") if name in options)
        return
    with pytest.raises(VerificationError) as caught:  # any other exception type fails the test
        verify_receipt(receipt, load_trust_root(root), **options)
    error = caught.value
    assert error.check == case["check"], error.diagnostics()
    assert error.message
    if error.check != "trust-root":  # a refused root fails before any receipt is read
        assert error.report.checks[-1] == Check(case["check"], "fail", error.message)
        assert [c.name for c in error.report.checks if c.status == "fail"] == [case["check"]]


def _assert_cli_outcome(case: dict[str, Any], root: Path, code: int, out: str, err: str) -> None:
    """`receipts verify --json`: exit 0 and ok, or exit 4 and the report names the failing check."""
    assert "Traceback" not in err
    if case["expect"] == "pass":
        assert code == 0, out + err
        assert json.loads(out)["ok"] is True
        return
    assert code == 4, out + err
    report = json.loads(out)
    if case["check"] == "trust-root":  # the pinned root itself was refused, before any receipt
        assert report["ok"] is False
        assert report["receipts"] == []
        assert report["error"]["name"] == "trust-root"
        assert report["error"]["detail"].startswith(f"{root}: ")
        return
    assert report["ok"] is False
    failed = [c["name"] for c in report["receipts"][0]["checks"] if c["status"] == "fail"]
    assert failed == [case["check"]]


@pytest.mark.parametrize("case", RECEIPT_CASES, ids=_case_id)
def test_receipt_vector_cli(case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    receipt, root, options = _prepare(case, tmp_path)
    code, out, err = _cli(capsys, "verify", receipt, "--trust-root", root, "--json", *_flags(options))
    _assert_cli_outcome(case, root, code, out, err)


# --- trust root updates, two ways ---------------------------------------------------------------


@pytest.mark.parametrize("case", UPDATE_CASES, ids=_case_id)
def test_trust_update_vector_python_api(case: dict[str, Any]) -> None:
    current = load_trust_root(VECTORS / case["root"])
    *accepted, offered = [load_trust_root(VECTORS / path) for path in case["updates"]]
    for candidate in accepted:  # the steps before the last are valid updates
        check_update(current, candidate)
        current = candidate
    if case["expect"] == "pass":
        check_update(current, offered)
        return
    with pytest.raises(VerificationError) as caught:
        check_update(current, offered)
    assert caught.value.check == case["check"]


@pytest.mark.parametrize("case", UPDATE_CASES, ids=_case_id)
def test_trust_update_vector_cli(
    case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pinned = tmp_path / "pinned.json"
    shutil.copyfile(VECTORS / case["root"], pinned)
    before = pinned.read_bytes()
    updates = [VECTORS / path for path in case["updates"]]
    code, out, err = _cli(capsys, "trust", "update", "--trust-root", pinned, *updates)
    if case["expect"] == "pass":
        assert code == 0, out + err
        assert pinned.read_bytes() == updates[-1].read_bytes()
    else:
        assert code == 4, out + err
        assert pinned.read_bytes() == before  # a refused chain moves nothing, not even its valid steps


# --- the installed entry point ------------------------------------------------------------------


@pytest.mark.parametrize("case_id", ["04-junk-then-valid", "01-sig-r-plus-n", "06-p384-labelled-p256"])
def test_receipts_entry_point(case_id: str, tmp_path: Path) -> None:
    """A few cases through the installed `receipts` script, as a user runs it."""
    case = next(c for c in CASES if c["id"] == case_id)
    receipt, root, options = _prepare(case, tmp_path)
    program = Path(sys.executable).with_name("receipts")
    result = subprocess.run(
        [program, "verify", receipt, "--trust-root", root, "--json", *_flags(options)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    _assert_cli_outcome(case, root, result.returncode, result.stdout, result.stderr)


# --- golden receipts: verify forever ------------------------------------------------------------


@pytest.mark.parametrize("bundle", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_receipt_verifies(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = VECTORS / "weights" / bundle.name
    options: dict[str, Any] = {"weights": weights, "pack": PACK} if weights.exists() else {}
    report = verify_receipt(bundle / "receipt.json", load_trust_root(MAIN_ROOT), **options)
    expected = ["pass"] * 11 + (
        ["pass", "pass"] if options else ["not checked", "not checked"]
    )  # 10: licence, 11: numbers
    assert [c.status for c in report.checks] == expected, report.checks
    code, out, err = _cli(capsys, "verify", bundle, "--trust-root", MAIN_ROOT, "--json", *_flags(options))
    assert code == 0, out + err
    assert json.loads(out)["receipts"][0]["model"] == bundle.name


def test_golden_set_has_a_card_only_and_a_full_receipt() -> None:
    names = {p.name: {f.relative_to(p).as_posix() for f in p.rglob("*") if f.is_file()} for p in GOLDEN}
    assert names["vector-card@1.0.0"] == {"card.yaml", "receipt.json"}
    assert names[RELEASE_A] == {
        "card.yaml",
        "receipt.json",
        "weights.manifest.json",
        "runs/tiny-mc/results.json",
        "runs/tiny-mc/examples.jsonl",
        "footprints/footprint_minimal.json",
    }


def _model_signing_root(folder: Path) -> str:
    manifest = model_signing.hashing.hash(folder)
    digests = b"".join(d.digest.digest_value for d in manifest.resource_descriptors())
    return hashlib.sha256(digests).hexdigest()


@pytest.mark.parametrize("name", [RELEASE_A, "vector-model@0.2.0"])
def test_signed_weights_root_is_model_signing_hash(name: str) -> None:
    folder = VECTORS / "weights" / name
    signed = json.loads((VECTORS / "golden" / "v1" / name / "weights.manifest.json").read_bytes())
    statement = _generator().statement_of(VECTORS / "golden" / "v1" / name)
    subject = next(s for s in statement["subject"] if s["name"] == "weights")
    root = _model_signing_root(folder)
    assert signed["root"] == f"sha256:{root}"
    assert subject["digest"]["sha256"] == root
    assert digest_weights(folder).root == root


@pytest.mark.parametrize(
    "op", ["bitflip", "extra-file", "deleted-file", "renamed-file", "moved-into-subfolder", "empty-file"]
)
def test_weights_mutations_agree_with_model_signing(op: str, tmp_path: Path) -> None:
    """Our digest of each mutated folder is model_signing's, file by file, and not the signed one."""
    signed = json.loads((VECTORS / "golden" / "v1" / RELEASE_A / "weights.manifest.json").read_bytes())
    folder = WEIGHTS_OPS[op](shutil.copytree(VECTORS / "weights" / RELEASE_A, tmp_path / "w"))
    ours = digest_weights(folder)
    descriptors = model_signing.hashing.hash(folder).resource_descriptors()
    assert list(ours.files.items()) == [(d.identifier, d.digest.digest_hex) for d in descriptors]
    assert ours.root == _model_signing_root(folder)
    assert {name: f"sha256:{digest}" for name, digest in ours.files.items()} != signed["files"]


def test_renaming_a_file_can_keep_the_root(tmp_path: Path) -> None:
    """The model_signing root hashes the file digests in path order, not the names.

    config.json -> config.jsn keeps the order, hence the root; receipts still refuse it
    (11-weights-renamed-file) because the names are bound by the signed weights.manifest.json.
    """
    folder = WEIGHTS_OPS["renamed-file"](shutil.copytree(VECTORS / "weights" / RELEASE_A, tmp_path / "w"))
    assert _model_signing_root(folder) == _model_signing_root(VECTORS / "weights" / RELEASE_A)


# --- the suite itself ---------------------------------------------------------------------------


def test_every_vectors_section_has_cases() -> None:
    failing = {c["section"] for c in CASES if c["expect"] == "fail"}
    assert failing >= set(range(1, 14))
    # VECTORS demands these pass: high-S (1, documented), junk first then valid (4), URL-safe (7)
    assert {c["id"] for c in CASES if c["expect"] == "pass"} >= {
        "01-sig-high-s",
        "04-junk-then-valid",
        "07-urlsafe",
    }


def test_every_check_is_exercised() -> None:
    generator = _generator()
    assert {c["check"] for c in CASES if c["expect"] == "fail"} == generator.CHECKS
    for case in CASES:
        assert ("check" in case) == (case["expect"] == "fail"), case["id"]


def test_cases_json_is_the_generator_registry() -> None:
    """Editing make_vectors.py without regenerating fails here: run it (see tests/vectors/README.md)."""
    assert _generator().manifest() == MANIFEST


def test_case_folders_match_cases_json() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    paths = [c.get("bundle", "") for c in CASES] + [c["root"] for c in CASES]
    paths += [path for c in CASES for path in c.get("updates", [])]
    paths += [c["options"][k] for c in CASES for k in ("weights", "pack") if k in c.get("options", {})]
    missing = sorted(p for p in paths if p and not (VECTORS / p).exists())
    assert not missing, f"run make_vectors.py: {missing}"
    used = {Path(p).parts[1] for p in paths if p.startswith("cases/")}
    folders = {p.name for p in (VECTORS / "cases").iterdir()}
    assert folders == used, f"stale: {sorted(folders - used)}; missing: {sorted(used - folders)}"
    for case in CASES:
        for op, table in (("weights", WEIGHTS_OPS), ("pack", PACK_OPS), ("receipt", RECEIPT_OPS)):
            assert case.get("mutate", {}).get(op, "none") in {"none", *table}, case["id"]
