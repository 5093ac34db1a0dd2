"""Hashing throughput: receipts' sha256 vs coreutils ``sha256sum``, its folder rule vs model_signing.

Run: ``make bench`` (or ``.venv/bin/python bench/hash_throughput.py [--quick]``).

Conditions, the same for every side: the page cache is warm (one untimed pass of each side first), and
receipts' in-process digest memo (``receipts.digests._cache``) is cleared before each timed call, so every
timed call reads and hashes every byte. Sides are interleaved, alternating which goes first, so drift in
the shared machine's speed falls on both.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import machine

from receipts import digests

TARGET_RATIO = 0.9  # issue #2: receipts hashes at >= 0.9x sha256sum's throughput
MIB = 1024 * 1024


def _ensure_random_file(path: Path, size: int) -> Path:
    """A file of ``size`` random bytes, reused when a previous run left one of the right size."""
    if path.is_file() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        for offset in range(0, size, 16 * MIB):
            handle.write(os.urandom(min(16 * MIB, size - offset)))
    partial.rename(path)
    return path


def _ensure_folder(path: Path, small: int, large: int, large_size: int) -> Path:
    """``small`` files of 1-32 KiB spread over subfolders, plus ``large`` random files of ``large_size``."""
    done = path.with_name(path.name + ".complete")  # outside the folder: a marker inside would be hashed
    if path.is_dir() and done.is_file():
        return path
    shutil.rmtree(path, ignore_errors=True)
    rng = random.Random(2)
    for index in range(small):
        target = path / f"shard-{index // 100:02d}" / f"part-{index:04d}.bin"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(rng.randint(1024, 32 * 1024)))
    for index in range(large):
        _ensure_random_file(path / f"model-{index:02d}-of-{large:02d}.safetensors", large_size)
    done.touch()
    return path


def _receipts_file(path: Path) -> str:
    digests._cache.clear()  # time the hashing, not the memo
    return digests.sha256_file(path)


def _command_digest(command: list[str]) -> str:
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return done.stdout.split()[0].lower()


def _receipts_folder(path: Path) -> str:
    digests._cache.clear()
    return digests.digest_weights(path).root


def _model_signing_folder(path: Path) -> str:
    import model_signing.hashing

    descriptors = model_signing.hashing.hash(path).resource_descriptors()
    return hashlib.sha256(b"".join(d.digest.digest_value for d in descriptors)).hexdigest()


def _race(sides: dict[str, Callable[[], str]], runs: int) -> dict[str, list[float]]:
    """Time each side ``runs`` times, interleaved; every side must produce the same digest."""
    expected = {name: side() for name, side in sides.items()}  # untimed: warms the page cache
    if len(set(expected.values())) != 1:
        raise SystemExit(f"the sides disagree on the digest: {expected}")
    times: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(runs):
        order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
        for name in order:
            start = perf_counter()
            digest = sides[name]()
            times[name].append(perf_counter() - start)
            if digest != expected[name]:
                raise SystemExit(f"{name} gave a different digest on round {round_}")
    return times


def _summary(runs_s: list[float], size: int, files: int = 1) -> dict[str, Any]:
    median_s = machine.median(runs_s)
    return {
        "runs_s": [round(t, 6) for t in runs_s],
        "median_s": round(median_s, 6),
        "mib_per_s": round(size / MIB / median_s, 1),
        "files_per_s": round(files / median_s, 1),
    }


def bench_file(path: Path, runs: int) -> dict[str, Any]:
    """Receipts' ``sha256_file`` against ``sha256sum`` (and ``openssl dgst`` when installed)."""
    sides: dict[str, Callable[[], str]] = {
        "receipts": lambda: _receipts_file(path),
        "sha256sum": lambda: _command_digest(["sha256sum", str(path)]),
    }
    if shutil.which("openssl"):
        sides["openssl"] = lambda: _command_digest(["openssl", "dgst", "-sha256", "-r", str(path)])
    size = path.stat().st_size
    times = _race(sides, runs)
    summaries = {name: _summary(t, size) for name, t in times.items()}
    ratio = summaries["sha256sum"]["median_s"] / summaries["receipts"]["median_s"]
    return {
        "bytes": size,
        "sides": summaries,
        "versions": {
            "sha256sum": _first_line(["sha256sum", "--version"]),
            "openssl": _first_line(["openssl", "version"]),
        },
        "ratio": round(ratio, 3),
        "ratio_meaning": "receipts throughput / sha256sum throughput",
        "target_ratio": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
    }


def bench_folder(path: Path, runs: int) -> dict[str, Any]:
    """Receipts' ``digest_weights`` against ``model_signing.hashing.hash`` on the same folder."""
    files = [p for p in path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    times = _race(
        {"receipts": lambda: _receipts_folder(path), "model_signing": lambda: _model_signing_folder(path)},
        runs,
    )
    summaries = {name: _summary(t, size, len(files)) for name, t in times.items()}
    return {
        "files": len(files),
        "bytes": size,
        "workers": {
            "receipts": min(8, os.cpu_count() or 1),  # digest_weights' default pool
            "model_signing": min(32, (os.cpu_count() or 1) + 4),  # ThreadPoolExecutor's default
        },
        "sides": summaries,
        "ratio": round(summaries["model_signing"]["median_s"] / summaries["receipts"]["median_s"], 3),
        "ratio_meaning": "receipts throughput / model_signing throughput (reference only, no target)",
    }


def _first_line(command: list[str]) -> str:
    if not shutil.which(command[0]):
        return "not installed"
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    return done.stdout.splitlines()[0] if done.stdout else "unknown"


def _print_table(result: dict[str, Any], label: str, reference: str, *, per_file: bool = False) -> None:
    print(f"\n{label}")
    files_header = f" {'files/s':>9}" if per_file else ""
    print(f"  {'side':<15} {'median s':>9} {'MiB/s':>8}{files_header} {'vs ' + reference:>18}")
    base = result["sides"][reference]["median_s"]
    for name, side in result["sides"].items():
        files = f" {side['files_per_s']:>9.0f}" if per_file else ""
        speed = base / side["median_s"]
        print(f"  {name:<15} {side['median_s']:>9.3f} {side['mib_per_s']:>8.0f}{files} {speed:>17.2f}x")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="64 MiB file, 100 small files, 3 runs")
    parser.add_argument("--runs", type=int, help="timed runs per side (default 5, quick 3)")
    parser.add_argument(
        "--work-dir", type=Path, default=machine.REPO / ".cache" / "bench", help="test files, kept for reuse"
    )
    parser.add_argument(
        "--out", type=Path, default=machine.REPO / "bench" / "results" / "hash_throughput.json"
    )
    args = parser.parse_args()
    args.runs = args.runs or (3 if args.quick else 5)
    return args


def _print_header(info: dict[str, Any], runs: int) -> None:
    print(
        f"machine: {info['cpu_model']} ({', '.join(info['cpu_flags'])}), {info['cores']} cores, "
        f"affinity {info['affinity']}, Python {info['python']}, {info['openssl']}"
    )
    print("threads: " + " ".join(f"{k}={v}" for k, v in info["threads"].items()))
    print(
        "page cache warm for every side; receipts' digest memo cleared before each timed call; "
        f"{runs} interleaved runs, medians"
    )


def main() -> None:
    """Measure, print the tables, write the JSON record."""
    machine.pin_threads()
    args = _parse_args()
    size_mib, small, large, large_mib = (64, 100, 2, 8) if args.quick else (1024, 1000, 4, 64)
    big = _ensure_random_file(args.work_dir / f"random-{size_mib}MiB.bin", size_mib * MIB)
    folder = _ensure_folder(
        args.work_dir / f"folder-{small}-small-{large}x{large_mib}MiB", small, large, large_mib * MIB
    )
    info = machine.describe_machine()
    _print_header(info, args.runs)

    single = bench_file(big, args.runs)
    _print_table(single, f"one {size_mib} MiB file (sha256 of the raw bytes)", "sha256sum")
    verdict = "met" if single["met"] else "NOT met"
    print(f"  target receipts >= {TARGET_RATIO}x sha256sum: {single['ratio']:.2f}x, {verdict}")

    many = bench_folder(folder, args.runs)
    label = f"folder: {many['files']} files, {many['bytes'] / MIB:.0f} MiB (model_signing v1.0 files rule)"
    _print_table(many, label, "model_signing", per_file=True)
    print(f"  thread pools: {many['workers']}")

    machine.write_results(
        args.out,
        {
            "benchmark": "hash_throughput",
            "command": machine.command_line(),
            "quick": args.quick,
            "machine": info,
            "conditions": {
                "runs": args.runs,
                "statistic": "median",
                "order": "interleaved, alternating which side goes first",
                "page_cache": "warm: one untimed pass of every side before timing",
                "receipts_memo": "receipts.digests._cache cleared before every timed call",
                "subprocess_sides": "wall time includes starting the process (~1 ms)",
            },
            "single_file": single,
            "folder": many,
        },
    )


if __name__ == "__main__":
    main()
