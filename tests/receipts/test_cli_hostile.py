"""Hostile input for every command: one message naming the path, a documented exit code, nothing else touched.

Each case runs one command through ``receipts.cli.main`` against a small world (keys, a trust root, a
signed receipt) and checks three things: ``main`` returns a documented exit code instead of raising
(no traceback), the message names the offending path or option, and the files around it are exactly
as they were — paths, sizes, mtimes and modes — except inside the folder the command was told to write.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from receipts.cli import main

ROOT = Path(__file__).parents[2]
CARD = ROOT / "examples" / "card.yaml"
PACK = ROOT / "packs" / "capitals-mc"
WEIGHTS = Path(__file__).parents[1] / "data" / "weights_golden"
BUNDLE = "receipts/smollm2-135m-distilled-24l@0.1.0"
PASSPHRASE = "correct horse"
# not UTF-8, not JSON, not YAML, not PEM: what a wrong file or a bad disk hands a command
GARBAGE = bytes([0xFF, 0xFE, 0x00, 0x9C]) + bytes(range(256)) * 3 + b"\xc3\x28:\x00[red]"
NET = "--verbose shows where it failed"  # the hint of main's last-resort OSError handler


def tree_snapshot(path: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``path``: folders by mode, files (and links) by size, mtime and mode."""
    snap: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            full = Path(folder) / name
            info = full.lstat()
            rel = full.relative_to(path).as_posix()
            if stat.S_ISDIR(info.st_mode):
                snap[rel] = ("dir", stat.S_IMODE(info.st_mode))
            else:
                snap[rel] = ("file", info.st_size, info.st_mtime_ns, stat.S_IMODE(info.st_mode))
    return snap


def changes(before: dict[str, tuple[object, ...]], after: dict[str, tuple[object, ...]]) -> list[str]:
    """Paths created, deleted or changed between two snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    return any(path == f or path.startswith(f.rstrip("/") + "/") for f in folders)


# --- the world: keygen -> trust init -> sign, built once and copied per test --------------------


def _cli(command: str) -> None:
    assert main(shlex.split(command)) == 0, command


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECEIPTS_PASSPHRASE", PASSPHRASE)
        mp.chdir(base)
        for name in ("release", "next", "third"):
            _cli(f"keygen --out keys/{name}")
        keys = "--key keys/release.pub.pem --key keys/next.pub.pem"
        _cli(f"trust init --publisher 'receipts demo' {keys} --out trust.json")
        signer = "--sign-with keys/release.key.pem"
        _cli(f"trust add --trust-root trust.json --key keys/third.pub.pem {signer} --out trust.v2.json")
        shutil.copytree(WEIGHTS, "weights")
        _cli(f"sign --card {CARD} --weights weights --key keys/release.key.pem --out receipts")
        Path("garbage.bin").write_bytes(GARBAGE)
        Path("garbage.jsonl").write_bytes(GARBAGE)
        Path("afile.txt").write_text("just a file\n")
        Path("adir").mkdir()
        Path("adir.json").mkdir()
        Path("badpack").mkdir()
        Path("badpack/pack.yaml").write_bytes(GARBAGE)
        Path("badreceipts/x@1").mkdir(parents=True)
        Path("badreceipts/x@1/receipt.json").write_bytes(GARBAGE)
        Path("model").mkdir()
        Path("model/config.json").write_bytes(GARBAGE)
        Path("listmodel").mkdir()
        Path("listmodel/config.json").write_text("[1, 2]\n")
        Path("k.key.pem").mkdir()  # keygen --out k would have to overwrite a folder
    return base


@dataclass
class World:
    """The copied world; ``blocked`` is a folder nothing can be written into (a file, for root)."""

    root: Path
    blocked: Path

    def fill(self, template: str) -> str:
        """A case's template with this world's paths and values filled in."""
        from receipts.keys import load_public_key

        return template.format(
            blocked=self.blocked,
            pack=PACK,
            card=CARD,
            bundle=BUNDLE,
            fake="--teacher fake:t --student fake:s --limit 2",
            trust="--trust-root trust.json",
            sign=f"--card {CARD} --weights weights --key keys/release.key.pem",
            next_keyid=load_public_key(self.root / "keys" / "next.pub.pem").keyid,
        )


def permission_bits_stop_writes(folder: Path) -> bool:
    """False for root (or CAP_DAC_OVERRIDE), whom a 0o500 folder does not stop."""
    probe = folder / ".probe"
    probe.mkdir(mode=0o500)
    try:
        (probe / "x").touch()
    except PermissionError:
        return True
    finally:
        (probe / "x").unlink(missing_ok=True)
        probe.rmdir()
    return False


_DROPPED = "RECEIPTS_TEST_WITHOUT_DAC_OVERRIDE"


def ran_without_dac_override(request: pytest.FixtureRequest, folder: Path) -> bool:
    """Where permission bits do not stop writes (root), run this test again in a child that they stop.

    The child is the same pytest node under ``setpriv`` with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH
    dropped from the bounding set (root then gets no override after exec). Returns True when the child
    ran the test and it passed: the caller then returns. False: run the test here, permission bits hold.
    """
    if permission_bits_stop_writes(folder):
        return False
    if os.environ.get(_DROPPED):
        pytest.fail("permission bits still do not stop writes without CAP_DAC_OVERRIDE")
    setpriv = shutil.which("setpriv")
    assert setpriv, "util-linux setpriv is needed to test permission errors as root"
    argv = [setpriv, "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "pytest"]
    argv += ["-q", "-p", "no:cacheprovider", request.node.nodeid]
    root = Path(__file__).parents[2]
    proc = subprocess.run(argv, cwd=root, env={**os.environ, _DROPPED: "1"}, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "1 passed" in proc.stdout.splitlines()[-1], proc.stdout[-2000:]
    return True


def _blocked(root: Path) -> Path:
    path = root / "blocked"
    if permission_bits_stop_writes(root):
        path.mkdir(mode=0o500)
    else:  # permission bits do not stop root (os.geteuid() == 0): a file as the parent stops everyone
        path.write_text("a file, not a folder\n")
    return path


@pytest.fixture
def world(
    template: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    root = tmp_path / "w"
    shutil.copytree(template, root, symlinks=True)
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.chdir(root)
    blocked = _blocked(root)
    yield World(root, Path(blocked.name))
    if blocked.is_dir():
        blocked.chmod(0o700)


# --- the cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One hostile command line: what its message must name, which exit codes fit, where it may write.

    ``command`` and ``names`` are templates: ``{blocked}`` is the unwritable parent, ``{fake}`` two fake
    models on two items, ``{trust}`` the pinned trust root, ``{sign}`` a valid card/weights/key,
    ``{update}`` ``--keyid``/``--sign-with`` for trust retire|revoke.
    """

    command: str
    names: str
    codes: tuple[int, ...] = (1,)
    allowed: tuple[str, ...] = ()


def _trust_update(command: str, extra: str, names: str, codes: tuple[int, ...]) -> Hostile:
    what = "--key keys/third.pub.pem" if command == "add" else "--keyid {next_keyid}"
    argv = f"trust {command} {{trust}} {what} --sign-with keys/release.key.pem {extra}"
    return Hostile(argv, names, codes)


_Table = dict[str, tuple[str, str, tuple[int, ...]]]
_TRUST_UPDATES: _Table = {
    "out_is_folder": ("--out adir", "adir", (2,)),
    "out_unwritable": ("--out {blocked}/t2.json", "{blocked}", (1,)),
    "input_missing": ("--trust-root nope.json", "nope.json", (1,)),
    "input_garbage": ("--trust-root garbage.bin", "garbage.bin", (1, 4)),
    "input_folder": ("--trust-root adir", "adir", (1,)),
    "sign_with_garbage": ("--sign-with garbage.bin", "garbage.bin", (1,)),
    "sign_with_missing": ("--sign-with nope.key.pem", "nope.key.pem", (1,)),
}
_EXPORTS: _Table = {
    "out_is_folder": ("{bundle} {trust} --out adir", "adir", (2,)),
    "out_unwritable": ("{bundle} {trust} --out {blocked}/out.txt", "{blocked}", (1,)),
    "input_missing": ("nope {trust}", "nope", (1,)),
    "input_garbage": ("badreceipts/x@1 {trust}", "receipt.json", (1, 4)),
    "trust_root_garbage": ("{bundle} --trust-root garbage.bin", "garbage.bin", (1, 4)),
}
_SITES: _Table = {  # render | build
    "out_is_file": ("receipts {trust} --out afile.txt", "afile.txt", (1, 2)),
    "out_unwritable": ("receipts {trust} --out {blocked}/docs", "{blocked}", (1,)),
    "input_missing": ("nope {trust} --out docs", "nope", (1,)),
    "input_garbage": ("badreceipts {trust} --out docs", "receipt.json", (1, 4)),
    "trust_root_garbage": ("receipts --trust-root garbage.bin --out docs", "garbage.bin", (1, 4)),
}
_INIT = "trust init --publisher P --key keys/release.pub.pem"
_REPLAY = "run {pack} --student fake:s --limit 2 --out run --teacher replay:"

CASES: dict[str, Hostile] = {
    # keygen: --out is DIR/NAME
    "keygen-out_is_folder": Hostile("keygen --out adir", "adir", (2,)),
    "keygen-out_key_is_folder": Hostile("keygen --out k", "k.key.pem"),
    "keygen-out_unwritable": Hostile("keygen --out {blocked}/release", "{blocked}"),
    # trust init
    "trust_init-out_is_folder": Hostile(f"{_INIT} --out adir", "adir", (2,)),
    "trust_init-out_is_folder_force": Hostile(f"{_INIT} --out adir --force", "adir", (2,)),
    "trust_init-out_unwritable": Hostile(f"{_INIT} --out {{blocked}}/t.json", "{blocked}"),
    "trust_init-input_missing": Hostile(
        "trust init --publisher P --key nope.pub.pem --out t.json", "nope.pub.pem"
    ),
    "trust_init-input_garbage": Hostile(
        "trust init --publisher P --key garbage.bin --out t.json", "garbage.bin"
    ),
    "trust_init-input_folder": Hostile("trust init --publisher P --key adir --out t.json", "adir"),
    "trust_init-threshold_zero": Hostile(f"{_INIT} --out t.json --threshold 0", "--threshold", (2,)),
    "trust_init-threshold_above_keys": Hostile(f"{_INIT} --out t.json --threshold 2", "--threshold", (2,)),
    # trust add | retire | revoke
    **{
        f"trust_{command}-{case}": _trust_update(command, extra, names, codes)
        for command in ("add", "retire", "revoke")
        for case, (extra, names, codes) in _TRUST_UPDATES.items()
    },
    "trust_add-key_garbage": Hostile(
        "trust add {trust} --key garbage.bin --sign-with keys/release.key.pem", "garbage.bin"
    ),
    "trust_retire-unknown_keyid": Hostile(
        "trust retire {trust} --keyid sha256:0000 --sign-with keys/release.key.pem", "sha256:0000", (2,)
    ),
    # trust update
    "trust_update-input_missing": Hostile("trust update {trust} nope.json", "nope.json"),
    "trust_update-input_garbage": Hostile("trust update {trust} garbage.bin", "garbage.bin", (1, 4)),
    "trust_update-input_folder": Hostile("trust update {trust} adir", "adir"),
    "trust_update-pinned_missing": Hostile("trust update --trust-root nope.json trust.v2.json", "nope.json"),
    "trust_update-pinned_is_folder": Hostile("trust update --trust-root adir trust.v2.json", "adir"),
    # trust show
    "trust_show-input_missing": Hostile("trust show nope.json", "nope.json"),
    "trust_show-input_garbage": Hostile("trust show garbage.bin", "garbage.bin", (1, 4)),
    "trust_show-input_folder": Hostile("trust show adir", "adir"),
    # validate
    "validate-input_missing": Hostile("validate nope.yaml", "nope.yaml"),
    "validate-input_garbage": Hostile("validate garbage.bin", "garbage.bin", (1, 3)),
    "validate-input_folder": Hostile("validate adir", "adir"),
    "validate-pack_garbage": Hostile("validate badpack", "badpack", (1, 3)),
    # run (fake models, two items)
    "run-out_is_file": Hostile("run {pack} {fake} --out afile.txt", "afile.txt", (1, 2)),
    "run-out_unwritable": Hostile("run {pack} {fake} --out {blocked}/run", "{blocked}"),
    "run-input_missing": Hostile("run nope-pack {fake} --out run", "nope-pack"),
    "run-input_garbage": Hostile("run badpack {fake} --out run", "badpack", (1, 3)),
    "run-replay_garbage": Hostile(_REPLAY + "garbage.jsonl", "garbage.jsonl", allowed=("run",)),
    "run-replay_missing": Hostile(_REPLAY + "nope.jsonl", "nope.jsonl", allowed=("run",)),
    "run-replay_folder": Hostile(_REPLAY + "adir", "adir", allowed=("run",)),
    # bench: refused before anything is measured
    "bench-config_garbage": Hostile("bench hf:model --out fp.json", "model/config.json"),
    "bench-config_not_object": Hostile("bench hf:listmodel --out fp.json", "listmodel/config.json"),
    "bench-input_missing": Hostile("bench hf:nope --out fp.json", "nope"),
    "bench-out_is_folder": Hostile("bench hf:nope --out adir.json", "adir.json", (2,)),
    "bench-out_unwritable": Hostile("bench hf:nope --out {blocked}/fp.json", "{blocked}"),
    # sign
    "sign-out_is_file": Hostile("sign {sign} --out afile.txt", "afile.txt", (1, 2)),
    "sign-out_unwritable": Hostile("sign {sign} --out {blocked}/r", "{blocked}"),
    "sign-input_missing": Hostile("sign --card nope.yaml --key keys/release.key.pem --out r", "nope.yaml"),
    "sign-input_garbage": Hostile(
        "sign --card garbage.bin --key keys/release.key.pem --out r", "garbage.bin", (1, 3)
    ),
    "sign-weights_missing": Hostile(
        "sign --card {card} --weights nope --key keys/release.key.pem --out r", "nope"
    ),
    # export hf | cyclonedx
    **{
        f"export_{fmt}-{case}": Hostile(f"export {fmt} {argv}", names, codes)
        for fmt in ("hf", "cyclonedx")
        for case, (argv, names, codes) in _EXPORTS.items()
    },
    # render | build (owned by the build/verify rework)
    **{
        f"{command}-{case}": Hostile(f"{command} {argv}", names, codes, allowed=("docs",))
        for command in ("render", "build")
        for case, (argv, names, codes) in _SITES.items()
    },
    # verify
    "verify-input_missing": Hostile("verify nope {trust}", "nope"),
    "verify-input_garbage": Hostile("verify badreceipts/x@1 {trust}", "receipt.json", (1, 4)),
    "verify-trust_root_garbage": Hostile("verify {bundle} --trust-root garbage.bin", "garbage.bin", (1, 4)),
    "verify-trust_root_folder": Hostile("verify {bundle} --trust-root adir", "adir"),
    "verify-weights_missing": Hostile("verify {bundle} {trust} --weights nope", "nope", (1, 4)),
}

# Known failures, tracked, not hidden (none at present).
OWNED_ELSEWHERE: set[str] = set()


def _param(case_id: str) -> object:
    if case_id in OWNED_ELSEWHERE:
        mark = pytest.mark.xfail(strict=False, reason="owned by the build/verify rework")
        return pytest.param(case_id, id=case_id, marks=mark)
    return pytest.param(case_id, id=case_id)


def invoke(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    """Run ``main``; any exception escaping it is a failure in its own right."""
    try:
        code = main(argv)
    except BaseException as exc:  # main is the last line: nothing may escape it
        pytest.fail(f"main raised {type(exc).__name__}: {exc}")
    captured = capsys.readouterr()
    assert isinstance(code, int), f"main returned {code!r}"
    return code, captured.out + captured.err


@pytest.mark.parametrize("case_id", [_param(c) for c in CASES])
def test_hostile_input(world: World, capsys: pytest.CaptureFixture[str], case_id: str) -> None:
    hostile = CASES[case_id]
    argv, names = shlex.split(world.fill(hostile.command)), world.fill(hostile.names)
    before = tree_snapshot(world.root)
    code, text = invoke(capsys, argv)
    after = tree_snapshot(world.root)
    assert "Traceback" not in text
    assert NET not in text, f"only main's safety net caught this; it needs its own message:\n{text}"
    assert code in hostile.codes, f"exit {code}, expected {sorted(hostile.codes)}:\n{text}"
    assert names in text, f"the message does not name {names}:\n{text}"
    assert text.count("error") <= 2 or code == 3, text  # one message, not a cascade
    touched = [p for p in changes(before, after) if not _inside(p, hostile.allowed)]
    assert not touched, f"touched outside {hostile.allowed}: {touched}"


def test_trust_update_of_a_read_only_pin(
    world: World, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    if ran_without_dac_override(request, world.root):
        return
    Path("trust.json").chmod(0o444)
    before = tree_snapshot(world.root)
    code, text = invoke(capsys, ["trust", "update", "--trust-root", "trust.json", "trust.v2.json"])
    assert code == 1, text
    assert "trust.json: cannot write the trust root: Permission denied" in text
    assert changes(before, tree_snapshot(world.root)) == []


# --- numeric options: a clean usage error naming the option -------------------------------------

_RUN = "run {pack} --teacher fake:t --student fake:s --out run"
_BENCH = "bench hf:nope --out fp.json"
NUMERIC = {  # the last option of each command line is the one out of range
    "run-limit_negative": f"{_RUN} --limit -1",
    "run-limit_zero": f"{_RUN} --limit 0",
    "run-batch_size_zero": f"{_RUN} --limit 2 --batch-size 0",
    "run-threads_zero": f"{_RUN} --limit 2 --threads 0",
    "run-ray_workers_zero": f"{_RUN} --limit 2 --ray-workers 0",
    "bench-prompt_tokens_zero": f"{_BENCH} --prompt-tokens 0",
    "bench-new_tokens_one": f"{_BENCH} --new-tokens 1",
    "bench-warmups_negative": f"{_BENCH} --warmups -1",
    "bench-min_calls_zero": f"{_BENCH} --min-calls 0",
    "bench-min_duration_negative": f"{_BENCH} --min-duration -1",
    "bench-timeout_zero": f"{_BENCH} --timeout 0",
    "bench-max_context_zero": f"{_BENCH} --max-context 0",
    "bench-concurrency_zero": f"{_BENCH} --concurrency 0",
    "bench-concurrency_negative": f"{_BENCH} --concurrency 1,-2",
    "bench-threads_zero": f"{_BENCH} --threads 0",
}


@pytest.mark.parametrize("case_id", list(NUMERIC))
def test_numeric_option_out_of_range_is_a_usage_error(
    world: World, capsys: pytest.CaptureFixture[str], case_id: str
) -> None:
    argv = shlex.split(world.fill(NUMERIC[case_id]))
    before = tree_snapshot(world.root)
    code, text = invoke(capsys, argv)
    assert code == 2, text
    assert "Traceback" not in text
    assert argv[-2] in text, text
    assert changes(before, tree_snapshot(world.root)) == []


def test_run_limit_one_runs_exactly_one_item(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = invoke(capsys, shlex.split(world.fill(f"{_RUN} --limit 1")))
    assert code == 0, text
    items = {json.loads(line)["item"] for line in Path("run/examples.jsonl").read_text().splitlines()}
    first = json.loads((PACK / "data" / "items.jsonl").read_text("utf-8").splitlines()[0])["id"]
    assert items == {first}


# --- what the consoles print is the text, never markup or emoji ---------------------------------


def test_error_text_is_printed_literally(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    name = "items.jsonl:100:[red]x[/red]"
    code, text = invoke(capsys, ["trust", "show", name])
    assert code == 1
    assert f"{name}: trust root does not exist" in text
    assert "\N{HUNDRED POINTS SYMBOL}" not in text


def test_validate_prints_paths_literally(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    name = "items.jsonl:100:[red]x[/red]"
    code, text = invoke(capsys, ["validate", name])
    assert code == 1
    assert f"{name}: " in text
    assert "\N{HUNDRED POINTS SYMBOL}" not in text


def test_success_output_is_printed_literally(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    Path("t:100:.json").write_bytes(Path("trust.json").read_bytes())
    code, text = invoke(capsys, ["trust", "show", "t:100:.json"])
    assert code == 0, text
    assert "t:100:.json" in text


# --- the safety net in main: an OSError nobody converted is still one line ----------------------


def test_unconverted_oserror_is_one_line_exit_1(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied", "somewhere/x.json")

    monkeypatch.setattr("receipts.trust.load_trust_root", boom)
    code, text = invoke(capsys, ["trust", "show", "trust.json"])
    assert code == 1
    assert "error: somewhere/x.json: Permission denied" in text
    assert "Traceback" not in text


# --- files that must keep their modes -----------------------------------------------------------


def test_keygen_private_key_stays_0600(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = invoke(capsys, ["keygen", "--out", "fresh/dir/k"])
    assert code == 0, text
    assert stat.S_IMODE(Path("fresh/dir/k.key.pem").stat().st_mode) == 0o600
