"""``receipts verify --rerun N`` on a real tiny transformers model, and the signed reproduction statement."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.keys import generate, write_keypair
from receipts.sign import sign_receipt
from receipts.trust import new_root
from runner.eval.rerun import SignedRun, sample
from tests.models import tiny_llama

ROOT = Path(__file__).parents[2]
PACK = ROOT / "tests" / "data" / "pack_rerun_tiny_vocab"
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"  # names fake:teacher, the runs' teacher
NAME = "smollm2-135m-distilled-24l@0.1.0"
PASSPHRASE = "correct horse"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A tiny student run on the pack (batches of 4, 1 thread), signed; a reproducer's key pair."""
    tmp = tmp_path_factory.mktemp("rerun")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        for name in THREAD_VARIABLES:
            patch.setenv(name, "1")
        student = tiny_llama(tmp / "student", seed=2)
        run = tmp / "run"
        argv = ["run", PACK, "--teacher", "fake:teacher", "--student", f"hf:{student}", "--out", run]
        assert main([str(a) for a in [*argv, "--batch-size", "4", "--no-cache"]]) == 0
        publisher = generate()
        trust = tmp / "trust.json"
        trust.write_bytes(new_root("receipts demo", [publisher.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
        sign_receipt(CARD, [publisher], tmp / "receipts", runs=[run], weights=student)
        later = datetime(2026, 12, 1, tzinfo=UTC)  # the same evidence signed again: another receipt
        sign_receipt(CARD, [publisher], tmp / "again", runs=[run], weights=student, issued_at=later)
        write_keypair(generate(), tmp / "keys" / "lab", PASSPHRASE.encode())
        write_keypair(publisher, tmp / "keys" / "publisher", PASSPHRASE.encode())
        yield {
            "tmp": tmp,
            "student": student,
            "receipt": tmp / "receipts" / NAME,
            "again": tmp / "again" / NAME,
            "trust": trust,
            "keys": tmp / "keys",
        }


@pytest.fixture(autouse=True)
def _isolated(world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test's cache, passphrase and thread settings are its own (a rerun pins threads)."""
    import torch

    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", PASSPHRASE)
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, "1"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def verify(capsys: pytest.CaptureFixture[str], world: dict[str, Path], *argv: object) -> tuple[int, str]:
    base = ["verify", world["receipt"], "--trust-root", world["trust"]]
    code = main([str(a) for a in [*base, *argv]])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def rerun_json(capsys: pytest.CaptureFixture[str], world: dict[str, Path], *argv: object) -> tuple[int, Any]:
    code, text = verify(capsys, world, "--json", "--pack", PACK, *argv)
    return code, json.loads(text)


def _changed_one_layer(source: Path, into: Path) -> Path:
    """The student with one layer's MLP weights perturbed."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, into)
    weights = into / "model.safetensors"
    tensors = load_file(weights)
    name = "model.layers.1.mlp.down_proj.weight"
    tensors[name] = tensors[name] * 1.5
    save_file(tensors, weights, metadata={"format": "pt"})
    return into


def test_identical_setup_reproduces_every_item_bit_exact(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = verify(capsys, world, "--rerun", 6, "--weights", world["student"], "--pack", PACK)
    assert code == 0, text
    assert "VERIFIED" in text
    assert "the signed model" in text
    assert "reproduced 6/6, bit-exact ·" in text
    code, document = rerun_json(capsys, world, "--rerun", 6, "--weights", world["student"])
    assert code == 0
    rerun = document["rerun"]
    assert (rerun["reproduced"], rerun["n"], rerun["mode"], rerun["ok"]) == (6, 6, "exact", True)
    assert all(item["max_abs_delta"] == "0" for item in rerun["items"])
    # stratified: 8 easy and 4 hard items -> 4 and 2
    assert Counter(item["item"] < "q08" for item in rerun["items"]) == {True: 4, False: 2}


def test_a_student_changed_in_one_layer_names_the_items_that_moved(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = _changed_one_layer(world["student"], tmp_path / "changed")
    code, text = verify(capsys, world, "--rerun", 4, "--weights", changed, "--pack", PACK)
    assert code == 4, text
    assert "DIFFERENT MODEL" in text
    assert "but the signed student is sha256:" in text
    assert "reproduced 0/4" in text
    moved = [line for line in text.splitlines() if line.strip().startswith("✗")]
    assert len(moved) == 4
    assert all("tiny-rerun/q" in line and "max |Δlogliks|" in line for line in moved), text


def test_another_thread_count_is_compared_within_tolerance_and_labelled(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = rerun_json(capsys, world, "--rerun", 6, "--weights", world["student"], "--threads", 2)
    rerun = document["rerun"]
    assert code == 0, rerun
    assert rerun["mode"] == "tolerance"
    assert rerun["tolerance"] == {"atol": "0.0001", "rtol": "1e-05"}  # float32's
    # the tiny model may well be bit-exact across thread counts: the label then says so, honestly
    if all(item["max_abs_delta"] == "0" for item in rerun["items"]):
        assert rerun["label"] == "bit-exact (threads 1 vs 2)"
    else:
        assert rerun["label"] == "within tolerance (threads 1 vs 2; atol 0.0001, rtol 1e-05)"
    assert rerun["host"]["threads"] == 2
    assert rerun["host"]["signed_threads"] == [1]


def verify_reproduction(
    capsys: pytest.CaptureFixture[str], world: dict[str, Path], statement: Path, receipt: Path, key: Path
) -> tuple[int, str]:
    """``receipts verify-reproduction`` of ``statement`` against ``receipt``, pinning ``key``."""
    argv = ["verify-reproduction", statement, "--receipt", receipt, "--trust-root", world["trust"]]
    code = main([str(a) for a in [*argv, "--reproducer-key", key]])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_a_signed_reproduction_verifies_with_the_reproducer_key_only(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statement = tmp_path / "repro.json"
    keys = world["keys"]
    code, text = verify(
        capsys, world, "--rerun", 5, "--weights", world["student"], "--pack", PACK,
        "--sign-with", keys / "lab.key.pem", "--out", statement,
    )  # fmt: skip
    assert code == 0, text
    assert "wrote" in text

    def check(path: Path, receipt: Path, key: Path) -> tuple[int, str]:
        return verify_reproduction(capsys, world, path, receipt, key)

    code, text = check(statement, world["receipt"], keys / "lab.pub.pem")
    assert code == 0, text
    assert f"{NAME} reproduced by the key you pinned (sha256:" in text
    assert "self-declared name 'lab')" in text
    assert ": 5/5, bit-exact\n" in text

    envelope = json.loads(statement.read_bytes())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert payload["predicateType"] == "https://receipts.dev/predicate/reproduction/v1"
    assert payload["predicate"]["n"] == 5
    assert len(payload["predicate"]["items"]) == 5
    payload["predicate"]["reproduced"] = 5
    payload["predicate"]["label"] = "bit-exact, trust me"
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(envelope), "utf-8")
    code, text = check(tampered, world["receipt"], keys / "lab.pub.pem")
    assert code == 4
    assert "no valid signature by the reproducer key" in text

    code, text = check(statement, world["again"], keys / "lab.pub.pem")
    assert code == 4
    assert "is about the receipt with sha256" in text

    code, text = check(statement, world["receipt"], keys / "publisher.pub.pem")
    assert code == 4
    assert "no valid signature by the reproducer key" in text


def test_a_publishers_own_rerun_is_not_a_third_party_reproduction(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statement = tmp_path / "own.json"
    keys = world["keys"]
    code, text = verify(
        capsys, world, "--rerun", 2, "--weights", world["student"], "--pack", PACK,
        "--sign-with", keys / "publisher.key.pem", "--out", statement,
    )  # fmt: skip
    assert code == 0, text
    code, text = verify_reproduction(capsys, world, statement, world["receipt"], keys / "publisher.pub.pem")
    assert code == 4
    assert "is one of the publisher's keys" in text


def test_a_pack_that_is_not_the_signed_one_is_refused(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = shutil.copytree(PACK, tmp_path / "pack")
    items = edited / "data" / "items.jsonl"
    items.write_text(items.read_text("utf-8").replace("France", "Spain", 1), "utf-8")
    code, text = verify(capsys, world, "--rerun", 3, "--weights", world["student"], "--pack", edited)
    assert code == 2
    assert "error: pack tiny-rerun at" in text
    assert "but the receipt's run used sha256:" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rerun", 0, "--weights", "W"], "--rerun N must be at least 1, not 0"),
        (
            ["--rerun", 2, "--weights", "W", "--model", "hf:W"],
            "exactly one of --weights DIR and --model SPEC",
        ),
        (["--rerun", 2], "exactly one of --weights DIR and --model SPEC"),
        (["--rerun", 2, "--weights", "W", "--role", "sft"], "role 'sft' is not in every run of this receipt"),
        (
            ["--rerun", 2, "--weights", "W", "--sign-with", "k.key.pem"],
            "--sign-with KEY and --out FILE go together",
        ),
        (["--model", "hf:W"], "need --rerun N"),
        (
            ["--rerun", 2, "--weights", "W", "--sign-with", "k.key.pem", "--out", PACK / "pack.yaml"],
            "pack.yaml: already exists",
        ),
    ],
)
def test_bad_rerun_arguments_get_one_clear_message(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str], argv: list[object], message: str
) -> None:
    argv = [world["student"] if a == "W" else f"hf:{world['student']}" if a == "hf:W" else a for a in argv]
    code, text = verify(capsys, world, *argv, "--pack", PACK)
    assert code == 2, text
    assert message in text
    assert "Traceback" not in text


def test_more_items_than_signed_reruns_them_all_and_says_so(
    world: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = verify(capsys, world, "--rerun", 100, "--weights", world["student"], "--pack", PACK)
    assert code == 0, text
    assert "asked for 100 items; the receipt has 12: all of them re-executed" in text
    assert "reproduced 12/12, bit-exact ·" in text


def _runs(sizes: dict[str, int]) -> list[SignedRun]:
    from receipts.formats import Results

    results = json.loads((ROOT / "tests" / "data" / "run_minimal" / "results.json").read_text("utf-8"))
    rows = [
        {"item": f"{label}{i}", "variant": "original", "slices": {"difficulty": label}, "roles": {}}
        for label, n in sizes.items()
        for i in range(n)
    ]
    return [SignedRun(Results.parse(results), tuple(rows))]


def test_the_sample_is_proportional_with_one_per_slice_and_follows_the_seed() -> None:
    runs = _runs({"easy": 90, "medium": 9, "hard": 1})
    picked = sample(runs, 10, seed=0)
    assert Counter(s.row["slices"]["difficulty"] for s in picked) == {"easy": 8, "medium": 1, "hard": 1}
    assert [s.item for s in picked] == [s.item for s in sample(runs, 10, seed=0)]
    assert [s.item for s in picked] != [s.item for s in sample(runs, 10, seed=1)]
    assert len(sample(runs, 2, seed=0)) == 2  # fewer than the slices: two slices get one each
    assert len(sample(runs, 500, seed=0)) == 100


def test_the_signed_header_records_what_moves_last_bits_and_a_rerun_compares_it(
    world: dict[str, Path],
) -> None:
    from receipts.formats import Results
    from runner.eval.rerun import _setup_differences

    results = json.loads((world["tmp"] / "run" / "results.json").read_text("utf-8"))
    recorded = results["settings"]["library_versions"]
    assert {"python", "receipts", "torch", "transformers"} <= set(recorded)
    student = Results.parse(results).models["student"]
    now = {"compute_dtype": "float32"}
    assert _setup_differences(now, student, 1, [1], [recorded], recorded) == []
    moved = _setup_differences(now, student, 2, [1], [{**recorded, "torch": "1.0"}], recorded)
    assert moved == ["threads 1 vs 2", f"torch 1.0 vs {recorded['torch']}"]
    assert _setup_differences(now, student, 1, [None], [{}], recorded) == ["threads not recorded vs 1"]


@pytest.mark.parametrize(
    ("pack", "flags"),
    [
        ("capitals-mc", ["--limit", "7", "--batch-size", "3", "--variant", "original", "--variant", "typo"]),
        (
            "capitals-mc",
            ["--limit", "10", "--batch-size", "1", "--variant", "original", "--variant", "reworded"],
        ),
        ("capitals-mc", ["--limit", "30", "--batch-size", "64"]),
        ("capitals-mc", ["--limit", "20"]),  # the default batch size (64) over 80 instances
        # generated items share `HFBackend.generate`'s sub-batches, so they too are posed in their batch
        (
            "contract-clauses",
            ["--limit", "5", "--batch-size", "3", "--variant", "original", "--variant", "numbered"],
        ),
    ],
)
def test_a_rerun_poses_exactly_the_batches_the_signed_run_posed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pack: str, flags: list[str]
) -> None:
    """The batches recorded as `receipts run` posed them to the student equal the rerun's, from its header."""
    import runner.eval.run as run_module
    from receipts.formats import Results
    from runner.eval.loader import load_pack
    from runner.eval.rerun import _signed_batches

    posed: list[list[tuple[str, str]]] = []
    real_work = run_module.work

    def recording(backend: Any, items: Any) -> Any:
        if backend.identity.spec.startswith("fake:s"):
            posed.append([(i.inst.item_id, i.inst.variant) for i in items])
        return real_work(backend, items)

    monkeypatch.setattr(run_module, "work", recording)
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    pack_dir = ROOT / "packs" / pack
    argv = [
        "run",
        pack_dir,
        "--teacher",
        "fake:t",
        "--student",
        "fake:s?skill=0.5",
        "--out",
        tmp_path / "run",
    ]
    assert main([str(a) for a in [*argv, *flags, "--no-cache"]]) == 0
    header = Results.parse(json.loads((tmp_path / "run" / "results.json").read_bytes()))
    wanted = {batch[-1] for batch in posed}  # one item of each batch: the rerun poses its whole batch
    rerun = _signed_batches(load_pack(pack_dir), SignedRun(header, ()), wanted)
    assert [[(i.item_id, i.variant) for i in batch] for batch in rerun] == posed
    assert len(posed) > 1


def test_outputs_cached_in_other_batches_are_computed_again_and_the_signed_run_reproduces(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A transformers model's outputs are cached per batch, and read back only into the same batch.

    A run in batches of 4 after one in batches of 5 computes every item again, so what it signs is what its
    own batches gave, bit for bit (issue #22: the demo's `verify --rerun` failed on outputs a run with
    another --limit had cached).
    """
    base = ["run", PACK, "--teacher", "fake:teacher", "--student", f"hf:{world['student']}", "--json"]
    for size, folder in (("5", "first"), ("5", "again"), ("4", "signed")):
        assert main([str(a) for a in [*base, "--batch-size", size, "--out", tmp_path / folder]]) == 0
        summary = json.loads(capsys.readouterr().out)[0]["run"]
        computed, hits = summary["computed"]["student"], summary["cache_hits"]["student"]
        # the same batches read back whole; batches of 4 share none of the batches of 5
        assert (computed, hits) == ((0, 12) if folder == "again" else (12, 0)), folder
    publisher = generate()
    trust = tmp_path / "trust.json"
    trust.write_bytes(new_root("receipts demo", [publisher.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp_path / "receipts"
    sign_receipt(CARD, [publisher], receipts, runs=[tmp_path / "signed"], weights=world["student"])
    argv = ["verify", receipts / NAME, "--trust-root", trust, "--json", "--pack", PACK]
    code = main([str(a) for a in [*argv, "--rerun", 12, "--weights", world["student"]]])
    rerun = json.loads(capsys.readouterr().out)["rerun"]
    assert code == 0, rerun
    assert (rerun["reproduced"], rerun["n"], rerun["mode"]) == (12, 12, "exact")
