"""examples/distill.py: the real teacher -> truncated base -> distilled student trio, run as a user would."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors.numpy import load_file

from tests.models import smollm2_gguf, tiny_llama

ROOT = Path(__file__).parent.parent
SCRIPT = ROOT / "examples" / "distill.py"


def distill(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "RECEIPTS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--threads", "1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


TINY = [
    "--keep-layers",
    "2",
    "--steps",
    "4",
    "--batch-size",
    "4",
    "--corpus-limit",
    "12",
    "--max-new-tokens",
    "3",
]


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("teacher") / "t", seed=5, layers=4)


def test_trio_from_a_tiny_teacher(tmp_path: Path, tiny_teacher: Path) -> None:
    trio, _ = distill(
        tmp_path, "--teacher", f"hf:{tiny_teacher}", "--sft", *TINY, "--out", str(tmp_path / "trio")
    )
    models = {role: Path(p) for role, p in trio["models"].items()}
    assert set(models) == {"teacher", "base", "student", "sft"}
    assert len(set(trio["digests"].values())) == 4  # four different sets of weights

    # The base student is the teacher's layers 0 and 3, renumbered, and nothing else changed.
    assert trio["lineage"]["kept_layers"] == [0, 3]
    config = json.loads((models["base"] / "config.json").read_text("utf-8"))
    assert config["num_hidden_layers"] == 2
    teacher_w = load_file(models["teacher"] / "model.safetensors")
    base_w = load_file(models["base"] / "model.safetensors")
    for new, old in enumerate([0, 3]):
        for name in ("self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"):
            assert (base_w[f"model.layers.{new}.{name}"] == teacher_w[f"model.layers.{old}.{name}"]).all()
    assert not any(k.startswith("model.layers.2.") for k in base_w)

    # Training moved the student's weights, and the log says what was done.
    student_w = load_file(models["student"] / "model.safetensors")
    assert not (
        student_w["model.layers.0.self_attn.q_proj.weight"]
        == base_w["model.layers.0.self_attn.q_proj.weight"]
    ).all()
    log = json.loads((tmp_path / "trio" / "train-log.json").read_text("utf-8"))
    assert len(log["distillation"]["losses"]) == 4
    assert log["sft"]["loss"] == "cross_entropy_gold"
    corpus = (tmp_path / "trio" / "corpus.jsonl").read_bytes()
    assert len(corpus.splitlines()) == 12
    assert trio["lineage"]["corpus"]["sha256"] == "sha256:" + hashlib.sha256(corpus).hexdigest()
    overlap = trio["lineage"]["overlap_with_eval"]
    assert (overlap["items_checked"], overlap["items_overlapping"], overlap["overlapping"]) == (1000, 0, [])
    signed = json.loads((tmp_path / "trio" / "overlap.json").read_text("utf-8"))
    assert signed["corpus"][0]["sha256"] == trio["lineage"]["corpus"]["sha256"]  # the corpus trained on
    assert trio["lineage"]["method"] == "logit"


def test_trio_is_deterministic_and_cached(tmp_path: Path, tiny_teacher: Path) -> None:
    first, _ = distill(tmp_path, "--teacher", f"hf:{tiny_teacher}", *TINY)
    again, err = distill(tmp_path, "--teacher", f"hf:{tiny_teacher}", *TINY)
    assert "cached" in err
    assert again == first
    elsewhere, err = distill(tmp_path, "--teacher", f"hf:{tiny_teacher}", *TINY, "--out", str(tmp_path / "x"))
    assert "cached" not in err
    assert elsewhere["digests"] == first["digests"]  # rebuilt from scratch: the same bytes
    other_seed, _ = distill(tmp_path, "--teacher", f"hf:{tiny_teacher}", *TINY, "--seed", "1")
    assert other_seed["digests"]["student"] != first["digests"]["student"]
    assert other_seed["digests"]["base"] == first["digests"]["base"]


def test_bad_teacher_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "RECEIPTS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--teacher", f"hf:{tmp_path / 'missing'}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.model
def test_smollm2_trio_keeps_part_of_the_teacher(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reduced size: 12 KL steps on 48 questions already pull the truncated student towards the teacher."""
    from receipts.cli import main

    trio, _ = distill(
        tmp_path,
        "--teacher",
        f"gguf:{smollm2_gguf()}",
        "--steps",
        "12",
        "--corpus-limit",
        "48",
        "--threads",
        "2",
    )
    m = trio["models"]
    code = main(
        [
            "run",
            str(ROOT / "packs" / "capitals-mc"),
            "--teacher",
            f"hf:{m['teacher']}",
            "--base",
            f"hf:{m['base']}",
            "--student",
            f"hf:{m['student']}",
            "--variant",
            "original",
            "--limit",
            "60",
            "--threads",
            "2",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    capsys.readouterr()
    assert code == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text("utf-8"))
    acc = {r: v["value"] for r, v in results["metrics"]["all"]["acc"]["roles"].items()}
    assert acc["teacher"] > acc["base"] + 0.2  # dropping a third of the layers costs a lot
    kl = {r: results["fidelity"][r]["kl"]["value"] for r in ("base", "student")}
    assert results["fidelity"]["student"]["kl"]["level"] == "token"
    assert kl["student"] < 0.8 * kl["base"]  # distillation moved the student towards the teacher
    assert results["models"]["student"]["digest"] == trio["digests"]["student"]
