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

from tests.models import smollm2_gguf, tiny_llama, tiny_smol

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
    "--rows",
    "4",
    "--teacher-epochs",
    "1",
    "--teacher-frozen",
    "2",
    "--keep-layers",
    "2",
    "--batch-size",
    "4",
]


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 4-layer Llama with SmolLM2's real tokenizer (and so its chat template)."""
    return tiny_smol(tmp_path_factory.mktemp("teacher") / "t", seed=5, layers=4)


def _weights(folder: Path) -> dict[str, Any]:
    return load_file(folder / "model.safetensors")


def test_trio_from_a_tiny_instruct_model(tmp_path: Path, tiny_teacher: Path) -> None:
    trio, err = distill(
        tmp_path, "--teacher-from", f"hf:{tiny_teacher}", "--sft", *TINY, "--out", str(tmp_path / "trio")
    )
    models = {role: Path(p) for role, p in trio["models"].items()}
    assert set(models) == {"teacher", "base", "student", "sft"}
    assert len(set(trio["digests"].values())) == 4  # four different sets of weights
    assert "specialist teacher in" in err
    assert "distilled student and SFT baseline in" in err

    # The specialist teacher: the instruct model with its 2 frozen layers untouched and the top trained.
    start, teacher = _weights(tiny_teacher), _weights(models["teacher"])
    for name in ("self_attn.q_proj.weight", "mlp.down_proj.weight"):
        for layer in (0, 1):
            assert (teacher[f"model.layers.{layer}.{name}"] == start[f"model.layers.{layer}.{name}"]).all()
        for layer in (2, 3):
            key = f"model.layers.{layer}.{name}"
            assert not (teacher[key] == start[key]).all()
    assert (teacher["model.embed_tokens.weight"] == start["model.embed_tokens.weight"]).all()

    # The base student is the teacher's layers 0 and 3, renumbered, and nothing else changed.
    assert trio["lineage"]["kept_layers"] == [0, 3]
    config = json.loads((models["base"] / "config.json").read_text("utf-8"))
    assert config["num_hidden_layers"] == 2
    base = _weights(models["base"])
    for new, old in enumerate([0, 3]):
        for name in ("self_attn.q_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"):
            assert (base[f"model.layers.{new}.{name}"] == teacher[f"model.layers.{old}.{name}"]).all()
    assert not any(k.startswith("model.layers.2.") for k in base)

    # Training moved the students' weights, and the log says what was done.
    for role in ("student", "sft"):
        moved = _weights(models[role])["model.layers.0.self_attn.q_proj.weight"]
        assert not (moved == base["model.layers.0.self_attn.q_proj.weight"]).all()
    log = json.loads((tmp_path / "trio" / "train-log.json").read_text("utf-8"))
    assert log["teacher"]["loss"] == "cross_entropy_gold"
    assert log["teacher"]["frozen_layers"] == 2
    assert log["distillation"]["loss"] == "kl_teacher_student"
    assert log["sft"]["loss"] == "cross_entropy_gold"
    assert len(log["distillation"]["losses"]) == len(log["sft"]["losses"]) == 3  # 12 examples, batches of 4

    # The corpus is what was trained on: 4 rows of each pack's training split, posed as the pack poses them.
    corpus = (tmp_path / "trio" / "corpus.jsonl").read_bytes()
    rows = [json.loads(line) for line in corpus.splitlines()]
    assert [r["pack"] for r in rows].count("contract-clauses") == 4
    assert len(rows) == 12
    assert all(r["prompt"].startswith("<|im_start|>system") for r in rows)  # through the chat template
    assert trio["lineage"]["corpus"]["sha256"] == "sha256:" + hashlib.sha256(corpus).hexdigest()
    for summary in trio["overlap_with_eval"]:
        assert summary["items_checked"] > 900
        assert summary["overlapping"] == []
        signed = json.loads((tmp_path / "trio" / summary["file"]).read_text("utf-8"))
        assert signed["corpus"][0]["sha256"] == trio["lineage"]["corpus"]["sha256"]  # the corpus trained on
    assert trio["lineage"]["method"] == "logit"


def test_trio_is_deterministic_and_cached(tmp_path: Path, tiny_teacher: Path) -> None:
    first, _ = distill(tmp_path, "--teacher-from", f"hf:{tiny_teacher}", *TINY)
    again, err = distill(tmp_path, "--teacher-from", f"hf:{tiny_teacher}", *TINY)
    assert "cached" in err
    assert again == first
    out = tmp_path / "x"
    elsewhere, err = distill(tmp_path, "--teacher-from", f"hf:{tiny_teacher}", *TINY, "--out", str(out))
    assert "cached" not in err
    assert elsewhere["digests"] == first["digests"]  # rebuilt from scratch: the same bytes
    other_seed, _ = distill(tmp_path, "--teacher-from", f"hf:{tiny_teacher}", *TINY, "--seed", "1")
    assert other_seed["digests"]["student"] != first["digests"]["student"]
    assert other_seed["lineage"]["corpus"]["sha256"] != first["lineage"]["corpus"]["sha256"]  # another sample


def test_a_model_without_a_chat_template_is_one_clear_line(tmp_path: Path) -> None:
    plain = tiny_llama(tmp_path / "plain", layers=2)
    env = {**os.environ, "RECEIPTS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--teacher-from", f"hf:{plain}", *TINY],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode != 0
    assert "no chat template" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_teacher_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "RECEIPTS_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--teacher-from", f"hf:{tmp_path / 'missing'}"],
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
    """Reduced size: one epoch over 16 rows of each pack pulls the truncated student towards the teacher."""
    from receipts.cli import main

    trio, _ = distill(
        tmp_path,
        "--teacher-from",
        f"gguf:{smollm2_gguf()}",
        "--rows",
        "16",
        "--teacher-epochs",
        "1",
        "--epochs",
        "1",
        "--threads",
        "2",
    )
    m = trio["models"]
    code = main(
        [
            "run",
            str(ROOT / "packs" / "capitals-mc"),
            "--teacher",
            f"hf:{m['teacher']}?chat_template=1",
            "--base",
            f"hf:{m['base']}?chat_template=1",
            "--student",
            f"hf:{m['student']}?chat_template=1",
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
    assert acc["teacher"] > acc["base"] + 0.1  # dropping a third of the layers costs a lot (0.45 vs 0.25)
    kl = {r: results["fidelity"][r]["kl"]["value"] for r in ("base", "student")}
    # through the chat template the runs record each item's choice distribution, not token distributions
    assert results["fidelity"]["student"]["kl"]["level"] == "choice"
    assert kl["student"] < 0.8 * kl["base"]  # distillation moved the student towards the teacher
    assert results["models"]["student"]["digest"] == trio["digests"]["student"]
