"""Imported lm-eval tasks score as lm-eval scores them: the same model, lm-eval 0.4.9 vs `receipts run`.

lm-eval runs in a subprocess through bench/run_parity.py's launcher (lm-eval 0.4.9 under transformers 5).
The model is the tiny from-config Llama of tests/models.py, so this runs in CI; bench/lmeval_import_parity.py
does the same on SmolLM2-135M-Instruct.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from runner.eval.importers import import_lm_eval_task
from tests.models import tiny_llama

ROOT = Path(__file__).parents[2]
sys.path.insert(0, str(ROOT / "bench"))
from run_parity import LM_EVAL_LAUNCHER, OFFLINE  # noqa: E402

MC_TASK = """\
task: tiny_mc_import
dataset_path: json
dataset_kwargs:
  data_files: mc.jsonl
test_split: train
output_type: multiple_choice
description: "Answer : "
doc_to_text: "Question : What is the capital of {{country}} ?\\nAnswer :"
doc_to_target: "{{options.index(answer)}}"
doc_to_choice: "{{options}}"
num_fewshot: 2
fewshot_split: train
fewshot_config:
  sampler: first_n
metric_list:
  - metric: acc
  - metric: acc_norm
"""
GEN_TASK = """\
task: tiny_gen_import
dataset_path: json
dataset_kwargs:
  data_files: gen.jsonl
test_split: train
output_type: generate_until
doc_to_text: "Question : {{q}} ? Answer :"
doc_to_target: "{{a.split('####')[-1].strip()}}"
generation_kwargs:
  until: ["?"]
  max_gen_toks: 6
  do_sample: false
filter_list:
  - name: number
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(Paris|Berlin|Rome|Madrid)"
      - function: take_first
metric_list:
  - metric: exact_match
    ignore_case: true
"""
CAPITALS = {"France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid"}


def _write(folder: Path) -> None:
    folder.mkdir()
    (folder / "mc.yaml").write_text(MC_TASK, "utf-8")
    (folder / "gen.yaml").write_text(GEN_TASK, "utf-8")
    mc = [
        {
            "id": n,
            "country": c,
            "options": ["Paris", "Berlin", "Rome", "Madrid a"][: 3 + n % 2],
            "answer": city,
        }
        for n, (c, city) in enumerate(CAPITALS.items())
        if city in ["Paris", "Berlin", "Rome", "Madrid a"][: 3 + n % 2]
    ]
    (folder / "mc.jsonl").write_text("".join(json.dumps(d) + "\n" for d in mc), "utf-8")
    # golds picked so that the seed-3 tiny model's greedy answers hit once, miss once, match nothing twice
    pairs = [((1, 2), "Berlin"), ((2, 2), "Paris"), ((1, 1), "Rome"), ((3, 1), "Madrid")]
    gen = [{"q": f"What is {a} and {b}", "a": f"so #### {city}"} for (a, b), city in pairs]
    (folder / "gen.jsonl").write_text("".join(json.dumps(d) + "\n" for d in gen), "utf-8")


def _lm_eval(tasks: Path, model: Path, task: str, out: Path) -> list[dict[str, Any]]:
    launcher = tasks / "lm_eval_launcher.py"
    launcher.write_text(LM_EVAL_LAUNCHER, "utf-8")
    env = {**os.environ, **OFFLINE, "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(out / "hf")}
    argv = [
        sys.executable,
        str(launcher),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model},dtype=float32",
    ]
    argv += ["--tasks", task, "--include_path", str(tasks), "--device", "cpu", "--batch_size", "1"]
    argv += ["--log_samples", "--output_path", str(out)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=tasks)
    assert done.returncode == 0, done.stderr[-3000:]
    (samples,) = out.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in samples.read_text("utf-8").splitlines()]


def _receipts(pack: Path, model: Path, out: Path) -> dict[str, dict[str, Any]]:
    """Each item's row of examples.jsonl, by the sha256 of its prompt (lm-eval's prompt_hash)."""
    argv = ["run", str(pack), "--teacher", f"hf:{model}", "--student", "fake:s?skill=0.5", "--threads", "1"]
    assert main([*argv, "--no-cache", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text("utf-8").splitlines()]
    return {row["prompt_sha256"]: row | {"teacher": row["roles"]["teacher"]} for row in rows}


@pytest.mark.slow
def test_imported_tasks_score_as_lm_eval_scores_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    model = tiny_llama(tmp_path / "model", seed=3)
    tasks = tmp_path / "tasks"
    _write(tasks)
    mc_pack = import_lm_eval_task(tasks / "mc.yaml", tmp_path / "mc").path
    gen_pack = import_lm_eval_task(tasks / "gen.yaml", tmp_path / "gen").path

    theirs = _lm_eval(tasks, model, "tiny_mc_import", tmp_path / "le-mc")
    ours = _receipts(mc_pack, model, tmp_path / "r-mc")
    assert set(ours) == {s["prompt_hash"] for s in theirs}  # the same prompts, byte for byte
    for sample in theirs:
        row = ours[sample["prompt_hash"]]
        assert row["item"] == str(sample["doc"]["id"])
        assert row["teacher"]["scores"] == {"acc": sample["acc"], "acc_norm": sample["acc_norm"]}
        lls = [float(resp[0][0]) for resp in sample["resps"]]
        assert max(abs(a - b) for a, b in zip(row["teacher"]["logliks"], lls, strict=True)) < 1e-4

    theirs_gen = _lm_eval(tasks, model, "tiny_gen_import", tmp_path / "le-gen")
    ours_gen = _receipts(gen_pack, model, tmp_path / "r-gen")
    assert set(ours_gen) == {s["prompt_hash"] for s in theirs_gen}
    for sample in theirs_gen:
        row = ours_gen[sample["prompt_hash"]]
        assert row["teacher"]["text"] == sample["resps"][0][0]
        filtered = sample["filtered_resps"][0]  # lm-eval's regex filter; ignore_case lowers it to compare
        assert row["teacher"]["answer"] == (None if filtered == "[invalid]" else filtered.lower())
        assert row["teacher"]["scores"]["exact_match"] == sample["exact_match"]
    assert 0 < sum(s["exact_match"] for s in theirs_gen) < 4  # the filter and the comparison both ran
