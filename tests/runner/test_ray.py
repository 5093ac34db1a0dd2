"""``receipts run --ray``: a run spread over a (local) Ray cluster writes exactly what a local run writes.

Real tiny transformers models, a real local Ray started by the run (``--ray local``); the teacher and
student share a tokenizer, so token-level KL (teacher distributions shipped to the workers) is covered.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from receipts.cli import main
from tests.models import tiny_llama
from tests.processes import default_sigint

pytest.importorskip("ray")

pytestmark = [pytest.mark.model, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
MC = ROOT / "packs" / "capitals-mc"
GEN = ROOT / "tests" / "data" / "pack_generate_tiny_vocab"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("ray-models")
    return {
        "teacher": tiny_llama(tmp / "teacher", seed=0),
        "student": tiny_llama(tmp / "student", seed=1),
        "base": tiny_llama(tmp / "base", seed=2),
    }


def run_args(models: dict[str, Path], pack: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run",
        str(pack),
        "--teacher",
        f"hf:{models['teacher']}",
        "--student",
        f"hf:{models['student']}",
        "--base",
        f"hf:{models['base']}",
        "--student-variant",
        f"hf:{models['student']}@int8-dynamic",
        "--out",
        str(out),
        "--no-cache",
        "--json",
        *extra,
    ]


def outputs(run_dir: Path) -> tuple[bytes, dict[str, object]]:
    """examples.jsonl bytes, and results.json."""
    return (run_dir / "examples.jsonl").read_bytes(), json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("pack", [MC, GEN], ids=["multiple-choice", "generate"])
def test_ray_run_equals_local_run(
    models: dict[str, Path], pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = ["--limit", "5", "--batch-size", "3"]
    assert main(run_args(models, pack, tmp_path / "local", *limit)) == 0
    assert main(run_args(models, pack, tmp_path / "ray", *limit, "--ray", "local", "--ray-workers", "2")) == 0
    capsys.readouterr()
    local, ray = outputs(tmp_path / "local"), outputs(tmp_path / "ray")
    assert local[0] == ray[0]  # every item, every role, byte for byte
    assert local[1] == ray[1]
    rows = [json.loads(line) for line in local[0].splitlines()]
    kl = [r for row in rows for r in row["roles"].values() if r.get("kl_token") is not None]
    assert kl, "the run measured token-level KL (teacher distributions reached the workers)"
    manifest = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert manifest["engine"] == "ray"


def test_ray_resumes_a_local_run_and_computes_only_what_is_missing(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = ["--limit", "6", "--batch-size", "4"]
    assert main(run_args(models, MC, tmp_path / "full", *limit)) == 0
    capsys.readouterr()
    # A local run that stopped part-way: half of each role's rows, no examples/results yet.
    shutil.copytree(tmp_path / "full", tmp_path / "half")
    kept = 0
    for partial in (tmp_path / "half" / "partial").glob("*.jsonl"):
        lines = partial.read_bytes().splitlines(keepends=True)
        partial.write_bytes(b"".join(lines[: len(lines) // 2]))
        kept += len(lines) // 2
    for name in ("examples.jsonl", "results.json"):
        (tmp_path / "half" / name).unlink()
    assert main(run_args(models, MC, tmp_path / "half", *limit, "--resume", "--ray", "local")) == 0
    report = json.loads(capsys.readouterr().out)[0]
    total = sum(len(p.read_bytes().splitlines()) for p in (tmp_path / "full" / "partial").glob("*.jsonl"))
    assert sum(report["run"]["computed"].values()) == total - kept
    assert outputs(tmp_path / "half") == outputs(tmp_path / "full")


def test_ctrl_c_leaves_a_run_that_resumes_to_the_same_result(models: dict[str, Path], tmp_path: Path) -> None:
    """SIGINT during a Ray run: exit 130, finished rows kept; --resume (local) completes it identically."""
    out = tmp_path / "interrupted"
    args = run_args(models, MC, out, "--batch-size", "1", "--limit", "40", "--ray", "local")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "receipts.cli", *args]
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, preexec_fn=default_sigint)
    teacher = out / "partial" / "teacher.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if teacher.exists() and len(teacher.read_bytes().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    done = sum(len(p.read_bytes().splitlines()) for p in (out / "partial").glob("*.jsonl"))
    assert done >= 5
    assert not (out / "results.json").exists()
    resumed = [a for a in args if a not in ("--ray", "local")]
    assert main([*resumed, "--resume"]) == 0
    assert main(run_args(models, MC, tmp_path / "straight", "--batch-size", "1", "--limit", "40")) == 0
    assert outputs(out) == outputs(tmp_path / "straight")


def test_ray_missing_is_one_clear_error(
    models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(run_args(models, MC, tmp_path / "r", "--limit", "1", "--ray", "local")) == 2
    err = capsys.readouterr().err
    assert "--ray needs Ray installed" in err
    assert "Traceback" not in err


def test_missing_model_fails_with_the_path_named(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Neither this machine nor a Ray worker holds the teacher: one message naming it, no traceback."""
    args = run_args(models, MC, tmp_path / "r", "--limit", "1", "--ray", "local")
    args[args.index("--teacher") + 1] = f"hf:{tmp_path / 'no-such-model'}"
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "no-such-model" in err
    assert "Traceback" not in err


def test_a_worker_with_other_weights_at_the_same_path_is_refused(models: dict[str, Path]) -> None:
    from receipts.errors import InputError
    from runner.backends import load_backend
    from runner.eval.ray_engine import _shard

    other = load_backend(f"hf:{models['student']}").identity
    with pytest.raises(InputError, match="a Ray worker sees a different model"):
        next(_shard(f"hf:{models['teacher']}", other, [[]]))
