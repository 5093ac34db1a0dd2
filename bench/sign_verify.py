"""Sign and verify 1,000 card-only receipts through the Python API, profile both, time one CLI verify.

Run: ``make bench`` (or ``.venv/bin/python bench/sign_verify.py [--quick]``).

Each timed run signs ``count`` receipts of ``tests/data/cards/card_valid_minimal.yaml`` with an in-memory
P-256 key, each into its own existing output folder, then verifies every one of them against a trust
root parsed once. Runs alternate between a disk folder (``--work-dir``, where the targets are judged)
and tmpfs, and each is paired with the "file-system floor": the folders and files signing creates, made
without receipts' code, so the disk's share of ``sign`` is measured rather than guessed. A further,
untimed pass runs under cProfile to name the cost centres. The CLI line is one ``receipts verify``
process on one bundle: interpreter start-up and imports dominate it, so it is reported beside the
start-up of a bare interpreter rather than against the per-receipt targets.

Verification is timed twice on the same bundles: ``verify`` with ``rederive=False`` (signatures,
statement, trust, subjects, bindings: the issue #2 target) and ``verify_rederive`` (the default, which
also re-derives every signed number: for a card-only receipt, the gate and quantization table). A last
section signs receipts that carry one real run (``tests/data/run_minimal``: 2 items, 3 roles, 1,000
bootstrap resamples) and times verifying them both ways, so the cost of re-deriving a run is its own line.
"""

from __future__ import annotations

import _lsprof
import argparse
import cProfile
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter, process_time
from types import CodeType
from typing import Any

import machine

from receipts.keys import PrivateKey, generate
from receipts.sign import sign_receipt
from receipts.trust import TrustRoot, new_root, trust_root_from_bytes
from receipts.verify import verify_receipt

CARD = machine.REPO / "tests" / "data" / "cards" / "card_valid_minimal.yaml"
RUN_CARD = machine.REPO / "tests" / "data" / "card_fake_teacher.yaml"  # names run_minimal's teacher
RUN = machine.REPO / "tests" / "data" / "run_minimal"
TARGET_PER_1000_S = 2.0  # issue #2: <= 2 s to sign 1,000 receipts, <= 2 s to verify 1,000
# Where a profiled function's own time goes, by the file (or built-in) it belongs to; first match wins.
AREAS = (
    ("JSON Schema validation (jsonschema, referencing)", ("jsonschema", "referencing", "rpds")),
    ("typed formats (pydantic)", ("pydantic", "receipts/formats/")),
    ("YAML parsing (PyYAML + libyaml)", ("/yaml/", "_yaml")),
    ("canonical JSON (rfc8785)", ("rfc8785",)),
    ("signatures (cryptography)", ("cryptography", "ECPrivateKey", "ECPublicKey")),
    ("file system (open, read, write, mkdir, rename)", ("posix.", "_io.", "io.open", "pathlib", "tempfile")),
    ("JSON parsing (json)", ("/json/", "_json")),
    ("receipts' own code", ("/receipts/",)),
)
OTHER = "other (stdlib, interpreter)"


class _Fixture:
    """A signing key and the trust root that pins it, valid from a day ago."""

    def __init__(self) -> None:
        self.key: PrivateKey = generate()
        self.root_bytes = new_root(
            "Example Lab", [self.key.public], now=datetime.now(UTC) - timedelta(days=1)
        )
        self.root: TrustRoot = trust_root_from_bytes(self.root_bytes)
        # RUN_CARD's publisher: the same key, pinned by that publisher's root
        self.run_root = trust_root_from_bytes(
            new_root("receipts demo", [self.key.public], now=datetime.now(UTC) - timedelta(days=1))
        )

    def sign_many(self, folders: list[Path], *, with_run: bool = False) -> list[Path]:
        if with_run:
            return [sign_receipt(RUN_CARD, [self.key], folder, runs=[RUN]) for folder in folders]
        return [sign_receipt(CARD, [self.key], folder) for folder in folders]

    def verify_many(self, bundles: list[Path], *, rederive: bool = False, with_run: bool = False) -> None:
        root = self.run_root if with_run else self.root
        for bundle in bundles:
            if not verify_receipt(bundle / "receipt.json", root, rederive=rederive).ok:
                raise SystemExit(f"{bundle} did not verify")


def _out_folders(count: int, parent: Path) -> list[Path]:
    """One existing ``--out`` folder per receipt, made before the clock starts.

    Every receipt is the same model@version, so each needs its own folder; signing into a folder that
    exists is the usual case (``--out receipts/`` for many models), so making them is not timed.
    """
    folders = [parent / f"{index:04d}" for index in range(count)]
    for folder in folders:
        folder.mkdir(parents=True)
    return folders


def _file_system_floor(folders: list[Path]) -> None:
    """What signing asks of the file system, without receipts: the floor under ``sign`` on this disk.

    Per receipt: the staging folder, card.yaml, receipt.json, and the rename into place.
    """
    card, receipt = CARD.read_bytes(), b"x" * 3000  # a card-only receipt.json is ~3 KB
    for folder in folders:
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".signing-"))
        (staging / "card.yaml").write_bytes(card)
        (staging / "receipt.json").write_bytes(receipt)
        staging.rename(folder / "model@1.0.0")


def _summary(
    runs_s: list[float], count: int, *, target: float | None, cpu_s: list[float] | None = None
) -> dict[str, Any]:
    median_s = machine.median(runs_s)
    per_1000 = median_s / count * 1000
    out: dict[str, Any] = {
        "count": count,
        "runs_s": [round(t, 4) for t in runs_s],
        "median_s": round(median_s, 4),
        "min_s": round(min(runs_s), 4),
        "per_receipt_ms": round(median_s / count * 1000, 3),
        "per_1000_s": round(per_1000, 3),
    }
    if cpu_s is not None:  # this process's CPU seconds: what the run cost, whatever else the cores ran
        out |= {"cpu_runs_s": [round(t, 4) for t in cpu_s], "cpu_median_s": round(machine.median(cpu_s), 4)}
    if target is not None:
        out |= {"target_per_1000_s": target, "met": per_1000 <= target, "extrapolated": count != 1000}
    return out


def _area(code: str | CodeType) -> str:
    where = code if isinstance(code, str) else code.co_filename
    found = (name for name, marks in AREAS if any(mark in where for mark in marks))
    return next(found, OTHER)


def _label(code: str | CodeType) -> str:
    if isinstance(code, str):  # a built-in: "<built-in method posix.mkdir>", "<method 'sign' of ...>"
        return code
    relative = code.co_filename.split("site-packages/")[-1].replace(str(machine.REPO) + "/", "")
    return f"{relative}:{code.co_firstlineno}({code.co_name})"


def _by_area(entries: list[_lsprof.profiler_entry]) -> dict[str, float]:
    """Own time per area; a built-in (``isinstance``, ``dict.get``) counts towards its caller's area."""
    areas: dict[str, float] = defaultdict(float)
    for entry in entries:
        areas[_area(entry.code)] += entry.inlinetime
        if isinstance(entry.code, str):
            continue
        for call in entry.calls or ():
            if isinstance(call.code, str) and _area(call.code) == OTHER:
                areas[_area(entry.code)] += call.inlinetime
                areas[OTHER] -= call.inlinetime
    return areas


def _profile_summary(entries: list[_lsprof.profiler_entry]) -> dict[str, Any]:
    total = sum(e.inlinetime for e in entries)
    own = [e for e in entries if not isinstance(e.code, str) and "/receipts/" in e.code.co_filename]
    top = sorted(own, key=lambda e: e.totaltime, reverse=True)[:8]
    return {
        "profiled_s": round(total, 4),
        "own_time_by_area": {
            name: {"s": round(t, 4), "share": round(t / total, 3)}
            for name, t in sorted(_by_area(entries).items(), key=lambda item: -item[1])
        },
        "receipts_functions_by_cumulative_time": [
            {"function": _label(e.code), "calls": e.callcount, "cumulative_s": round(e.totaltime, 4)}
            for e in top
        ],
    }


def profile(fixture: _Fixture, count: int, out: Path) -> dict[str, Any]:
    """Own time by area, and the receipts functions with the most cumulative time, for sign and verify."""
    folders = _out_folders(count, out)
    signing = cProfile.Profile()
    signing.enable()
    bundles = fixture.sign_many(folders)
    signing.disable()
    verifying = cProfile.Profile()
    verifying.enable()
    fixture.verify_many(bundles)
    verifying.disable()
    return {
        "sign": _profile_summary(signing.getstats()),
        "verify": _profile_summary(verifying.getstats()),
    }


def _cli_times(fixture: _Fixture, bundle: Path, work: Path, runs: int) -> dict[str, Any]:
    trust = work / "trust.json"
    trust.write_bytes(fixture.root_bytes)
    console = Path(sys.executable).with_name("receipts")
    receipts = [str(console)] if console.exists() else [sys.executable, "-m", "receipts.cli"]
    commands = {
        "receipts_verify": [*receipts, "verify", str(bundle), "--trust-root", str(trust)],
        "python_startup": [sys.executable, "-c", "pass"],
        "import_receipts_cli": [sys.executable, "-c", "import receipts.cli"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            times[name].append(perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"{name} exited {done.returncode}: {done.stdout}{done.stderr}")
    result: dict[str, Any] = {name: _summary(t, 1, target=None) for name, t in times.items()}
    result["command"] = "receipts verify BUNDLE --trust-root trust.json"
    return result


def _print_profile(profiled: dict[str, Any]) -> None:
    for phase, data in profiled.items():
        print(f"\ncProfile, {phase} (own time by area, {data['profiled_s']:.2f} s under the profiler)")
        for name, area in data["own_time_by_area"].items():
            print(f"  {area['share']:>6.1%}  {name}")
        print("  receipts functions by cumulative time:")
        for entry in data["receipts_functions_by_cumulative_time"]:
            print(f"  {entry['cumulative_s']:>8.3f} s  {entry['calls']:>6}  {entry['function']}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100 receipts, 3 runs")
    parser.add_argument("--count", type=int, help="receipts per run (default 1000, quick 100)")
    parser.add_argument("--runs", type=int, help="timed runs (default 5, quick 3)")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=machine.REPO / ".cache" / "bench",
        help="the disk folder bundles are written under (removed afterwards)",
    )
    parser.add_argument("--out", type=Path, default=machine.REPO / "bench" / "results" / "sign_verify.json")
    args = parser.parse_args()
    args.count = args.count or (100 if args.quick else 1000)
    args.runs = args.runs or (3 if args.quick else 5)
    return args


def _locations(work_dir: Path) -> dict[str, Path]:
    """The disk folder the targets are judged on, and a tmpfs one (when there is one) for comparison."""
    work_dir.mkdir(parents=True, exist_ok=True)
    found = {"disk": Path(tempfile.mkdtemp(prefix="receipts-bench-", dir=work_dir))}
    shm = Path("/dev/shm")  # noqa: S108 - only mkdtemp's private (0700) folder is used inside
    if shm.is_dir() and os.access(shm, os.W_OK) and machine.filesystem_of(shm).startswith("tmpfs"):
        found["tmpfs"] = Path(tempfile.mkdtemp(prefix="receipts-bench-", dir=shm))
    return found


def _sign_then_verify(fixture: _Fixture, count: int, runs: int, where: dict[str, Path]) -> dict[str, Any]:
    """Per location, the seconds of each run's ``count`` signs and of verifying what it signed."""
    phases = ("sign", "verify", "verify_rederive")
    keys = (*phases, *(f"{phase}_cpu" for phase in phases), "file_system_floor")
    times: dict[str, Any] = {name: {key: [] for key in keys} for name in where}
    for folder in where.values():
        fixture.verify_many(fixture.sign_many(_out_folders(10, folder / "warm-up")))  # schema compilation
    for index in range(runs):
        for name, folder in where.items():
            outs = _out_folders(count, folder / f"run-{index}")
            floor_outs = _out_folders(count, folder / f"floor-{index}")
            # Signing creates a folder and two files per receipt: flush the previous run's write-back
            # first, so that a run does not pay for its predecessor.
            os.sync()
            start, start_cpu = perf_counter(), process_time()
            bundles = fixture.sign_many(outs)
            signed, signed_cpu = perf_counter(), process_time()
            fixture.verify_many(bundles)
            verified, verified_cpu = perf_counter(), process_time()
            fixture.verify_many(bundles, rederive=True)
            times[name]["sign"].append(signed - start)
            times[name]["verify"].append(verified - signed)
            times[name]["verify_rederive"].append(perf_counter() - verified)
            times[name]["sign_cpu"].append(signed_cpu - start_cpu)
            times[name]["verify_cpu"].append(verified_cpu - signed_cpu)
            times[name]["verify_rederive_cpu"].append(process_time() - verified_cpu)
            os.sync()
            start = perf_counter()
            _file_system_floor(floor_outs)
            times[name]["file_system_floor"].append(perf_counter() - start)
    return times


def _with_runs(fixture: _Fixture, count: int, runs: int, folder: Path) -> dict[str, Any]:
    """Receipts carrying one real run, verified without and with re-derivation (seconds per timed run)."""
    bundles = fixture.sign_many(_out_folders(count, folder), with_run=True)
    fixture.verify_many(bundles[:5], rederive=True, with_run=True)  # warm-up: numpy, schemas
    times: dict[str, list[float]] = {"verify": [], "verify_rederive": []}
    for _ in range(runs):
        for name, rederive in (("verify", False), ("verify_rederive", True)):
            start = perf_counter()
            fixture.verify_many(bundles, rederive=rederive, with_run=True)
            times[name].append(perf_counter() - start)
    return {name: _summary(t, count, target=None) for name, t in times.items()}


def _print_table(results: dict[str, Any], cli: dict[str, Any], count: int, runs: int) -> None:
    print(f"\n{count} card-only receipts, {runs} runs, medians (Python API, in-memory P-256 key)")
    print(
        f"  {'metric':<24} {'median s':>9} {'min s':>7} {'CPU s':>7} {'per receipt':>12} {'per 1,000':>10} "
        f"{'target':>7}  met?"
    )
    for location, rows in results.items():
        for name in ("sign", "verify", "verify_rederive"):
            row = rows[name]
            verdict = "(comparison)" if location != "disk" else ("yes" if row.get("met") else "NO")
            if name == "verify_rederive":
                verdict = "(re-derivation: no target)"
            label = f"{name} ({location})"
            print(
                f"  {label:<24} {row['median_s']:>9.3f} {row['min_s']:>7.3f} {row['cpu_median_s']:>7.3f} "
                f"{row['per_receipt_ms']:>9.2f} ms {row['per_1000_s']:>8.2f} s "
                f"{'' if name == 'verify_rederive' else f'{TARGET_PER_1000_S:.1f} s':>7}  {verdict}"
            )
        floor = rows["file_system_floor"]
        label = f"fs floor ({location})"
        print(
            f"  {label:<24} {floor['median_s']:>9.3f} {floor['min_s']:>7.3f} {'':>7} "
            f"{floor['per_receipt_ms']:>9.2f} ms {floor['per_1000_s']:>8.2f} s {'':>7}  (reference)"
        )
    print("  median, min: wall time; CPU: this process's CPU time (median); target judged on the median")
    print(
        "  fs floor: the folders and files signing creates, without receipts' code (see _file_system_floor)"
    )
    print(f"\none process each, {runs} runs, medians (start-up dominates; no target)")
    for name in ("receipts_verify", "import_receipts_cli", "python_startup"):
        print(f"  {name:<20} {cli[name]['median_s']:>9.3f} s")


def main() -> None:
    """Measure, print the table and the profile, write the JSON record."""
    threads = machine.pin_threads()
    args = _parse_args()
    info = machine.describe_machine()
    print(f"machine: {info['cpu_model']}, {info['cores']} cores, affinity {info['affinity']}, ", end="")
    print(f"Python {info['python']}")
    print("threads: " + " ".join(f"{k}={v}" for k, v in threads.items()))
    fixture = _Fixture()
    where = _locations(args.work_dir)
    filesystems = {name: machine.filesystem_of(folder) for name, folder in where.items()}
    for name, folder in where.items():
        print(f"{name}: bundles written to {folder}, {filesystems[name]}")
    try:
        times = _sign_then_verify(fixture, args.count, args.runs, where)
        run_count = max(10, args.count // 10)
        with_runs = _with_runs(fixture, run_count, args.runs, where["disk"] / "with-run")
        profiled = profile(fixture, args.count, where["disk"] / "profiled")
        cli = _cli_times(
            fixture, fixture.sign_many(_out_folders(1, where["disk"] / "cli"))[0], where["disk"], args.runs
        )
    finally:
        for folder in where.values():
            shutil.rmtree(folder, ignore_errors=True)
    results = {
        name: {
            "filesystem": filesystems[name],
            **{
                phase: _summary(
                    phases[phase], args.count, target=TARGET_PER_1000_S, cpu_s=phases[f"{phase}_cpu"]
                )
                for phase in ("sign", "verify")
            },
            "verify_rederive": _summary(
                phases["verify_rederive"], args.count, target=None, cpu_s=phases["verify_rederive_cpu"]
            ),
            "file_system_floor": _summary(phases["file_system_floor"], args.count, target=None),
        }
        for name, phases in times.items()
    }
    _print_table(results, cli, args.count, args.runs)
    print(f"\n{run_count} receipts with one real run (tests/data/run_minimal), {args.runs} runs, medians")
    for name, row in with_runs.items():
        print(f"  {name:<16} {row['median_s']:>9.3f} s  {row['per_receipt_ms']:>9.2f} ms per receipt")
    _print_profile(profiled)

    machine.write_results(
        args.out,
        {
            "benchmark": "sign_verify",
            "command": machine.command_line(),
            "quick": args.quick,
            "machine": info,
            "conditions": {
                "runs": args.runs,
                "statistic": "median",
                "card": str(CARD.relative_to(machine.REPO)),
                "key": "ecdsa-p256-sha256, in memory (no PEM decryption in the loop)",
                "bundle": "card only: card.yaml + receipt.json, written to a fresh folder per receipt",
                "verify": "verify_receipt(rederive=False) on each bundle just signed; trust root parsed once",
                "verify_rederive": "verify_receipt(rederive=True), the default, on the same bundles",
                "order": "runs interleaved across locations; os.sync() before each timed run",
                "targets_judged_on": "disk; tmpfs separates receipts' own cost from the disk's",
            },
            "sign": results["disk"]["sign"],
            "verify": results["disk"]["verify"],
            "verify_rederive": results["disk"]["verify_rederive"],
            "with_one_run": {"count": run_count, "run": str(RUN.relative_to(machine.REPO)), **with_runs},
            "locations": results,
            "cli": cli,
            "profile": profiled,
        },
    )


if __name__ == "__main__":
    main()
