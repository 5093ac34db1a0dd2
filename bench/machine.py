"""What every benchmark shares: thread pinning, the machine description, medians and the JSON record.

Import this module before anything that may start a thread pool: `pin_threads` only works if the
variables are set before a numerical library reads them.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

__all__ = [
    "REPO",
    "THREAD_VARIABLES",
    "command_line",
    "describe_machine",
    "filesystem_of",
    "load_average",
    "median",
    "pin_threads",
    "time_once",
    "write_results",
]

REPO = Path(__file__).resolve().parent.parent
# Every variable a BLAS/OpenMP runtime reads for its pool size. receipts' hashing uses none of them,
# but pinning them keeps a stray library from competing for the machine's two shared cores.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def pin_threads() -> dict[str, str]:
    """Set each thread variable to 1 unless the caller already set it; return the values in force."""
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    return {name: os.environ[name] for name in THREAD_VARIABLES}


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text("utf-8")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _cpu_flags(wanted: Sequence[str]) -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text("utf-8")
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return [flag for flag in wanted if flag in flags]


def describe_machine() -> dict[str, Any]:
    """CPU, cores, affinity, Python, OS and thread settings: enough to compare two result files."""
    import ssl

    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {
        "cpu_model": _cpu_model(),
        # sha_ni decides sha256 speed: OpenSSL uses it, coreutils' own sha256 does not
        "cpu_flags": _cpu_flags(["sha_ni", "avx2", "avx512f"]),
        "cores": os.cpu_count(),
        "affinity": affinity,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "openssl": ssl.OPENSSL_VERSION,
        "os": platform.platform(),
        "threads": {name: os.environ.get(name, "") for name in THREAD_VARIABLES},
        "load_average_at_start": load_average(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def filesystem_of(path: Path) -> str:
    """The file system holding ``path`` (type, mount point, options), from /proc/mounts."""
    try:
        lines = Path("/proc/mounts").read_text("utf-8").splitlines()
    except OSError:
        return "unknown"
    resolved = path.resolve()
    best = ("", "unknown", "")
    for line in lines:
        _, mount, kind, options, *_ = line.split()
        if resolved.is_relative_to(mount) and len(mount) > len(best[0]):
            best = (mount, kind, options)
    return f"{best[1]} on {best[0]} ({best[2]})"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the shared cores shows up here."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text("utf-8").split()[:3]]
    except OSError:
        return []


def median(values: Sequence[float]) -> float:
    """The median, the statistic every benchmark reports."""
    return statistics.median(values)


def time_once(action: Callable[[], object]) -> float:
    """Wall seconds of one call."""
    start = perf_counter()
    action()
    return perf_counter() - start


def command_line() -> str:
    """How this benchmark was started, for the record."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Write the JSON record (creating its folder) and say where it went."""
    document["machine"]["load_average_at_end"] = load_average()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    print(f"\nwrote {path}")
