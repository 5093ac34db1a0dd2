"""What `receipts bench` reads about the host, torch-free: fingerprint, hw_class, noise and memory.

Everything here reads /proc, /sys or the C library directly, so the parent process can describe the
machine without importing torch, and a worker can watch itself (RSS, steal, swap) while it measures.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import mmap
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = [
    "bandwidth",
    "cpu_times",
    "fingerprint",
    "hw_class",
    "page_cache_residency",
    "peak_rss_bytes",
    "rapl_energy_uj",
    "rss_bytes",
    "steal_fraction",
    "swap_counters",
]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _read(path: str) -> str:
    try:
        return Path(path).read_text("utf-8", errors="replace")
    except OSError:
        return ""


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in _read("/proc/cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


# Flags that change how fast a CPU runs a transformer (vector width, int8 and bf16 dot products).
_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "avx_vnni",
    "sha_ni",
    "neon",
    "asimd",
    "sve",
)


def mem_total_bytes() -> int | None:
    """MemTotal from /proc/meminfo."""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _gpus() -> list[dict[str, str]]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in done.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3:
            gpus.append({"name": parts[0], "driver": parts[1], "memory": parts[2]})
    return gpus


def fingerprint() -> dict[str, Any]:
    """CPU model and flags, cores and affinity, RAM, OS/kernel, GPUs and drivers, Python and libraries.

    The worker adds what only torch can say (its build, the threads it actually uses).
    """
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    versions: dict[str, str | None] = {}
    from importlib import metadata

    for dist in ("torch", "transformers", "numpy", "safetensors", "tokenizers", "accelerate"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cpu_model": info.get("model name") or platform.processor() or "unknown",
        "cpu_flags": [f for f in _FLAGS if f in flags],
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "affinity": affinity,
        "mem_total_bytes": mem_total_bytes(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "gpus": _gpus(),
        "python": sys.version.split()[0],
        "libraries": versions,
        "virtualized": "hypervisor" in flags,
    }


def hw_class(fp: dict[str, Any]) -> str:
    """A short hash naming the hardware (CPU model, usable cores, RAM in GiB, GPUs) — not the software.

    Two footprints with the same ``hw_class`` were measured on the same kind of machine, so their costs
    can be compared (the gate's ``max_cost_ratio``).
    """
    mem = fp.get("mem_total_bytes")
    body = {
        "cpu_model": fp.get("cpu_model"),
        "arch": fp.get("arch"),
        "cores": len(fp.get("affinity") or []) or fp.get("logical_cpus"),
        "mem_gib": round(mem / 2**30) if isinstance(mem, int) else None,
        "gpus": sorted(g["name"] for g in fp.get("gpus", [])),
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "hw-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def hw_label(fp: dict[str, Any]) -> str:
    """A human name for the hardware class, e.g. ``AMD EPYC 7B13 · 2 cores · 24 GiB``."""
    mem = fp.get("mem_total_bytes")
    cores = len(fp.get("affinity") or []) or fp.get("logical_cpus")
    parts = [str(fp.get("cpu_model")), f"{cores} cores"]
    if isinstance(mem, int):
        parts.append(f"{round(mem / 2**30)} GiB")
    parts += [g["name"] for g in fp.get("gpus", [])]
    return " · ".join(parts)


def cpu_times() -> list[int]:
    """The aggregate ``cpu`` line of /proc/stat (user nice system idle iowait irq softirq steal ...)."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            return [int(x) for x in line.split()[1:]]
    return []


def steal_fraction(before: list[int], after: list[int]) -> float | None:
    """Share of CPU time the hypervisor gave to other guests between two `cpu_times` readings."""
    if len(before) < 8 or len(after) < 8:
        return None
    # guest/guest_nice (fields 9, 10) are already counted in user/nice
    total = sum(after[:8]) - sum(before[:8])
    return (after[7] - before[7]) / total if total > 0 else 0.0


def swap_counters() -> dict[str, int]:
    """``pswpin``/``pswpout`` from /proc/vmstat (pages swapped since boot)."""
    out = {}
    for line in _read("/proc/vmstat").splitlines():
        key, _, value = line.partition(" ")
        if key in ("pswpin", "pswpout"):
            out[key] = int(value)
    return out


def rss_bytes() -> int | None:
    """Current resident set size of this process."""
    text = _read("/proc/self/statm").split()
    return int(text[1]) * _PAGE if len(text) > 1 else None


def peak_rss_bytes() -> int:
    """The resident-memory high-water mark of this process since it started (``VmHWM``).

    Not ``getrusage``'s ``ru_maxrss`` where ``VmHWM`` is readable: Linux carries the parent's peak into
    a child's ``ru_maxrss`` across ``fork`` + ``exec``, so a worker spawned by a bench whose parent
    measured memory bandwidth (512 MiB) would report at least that. Elsewhere ``ru_maxrss`` (KiB on
    Linux, bytes on macOS).
    """
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def rapl_energy_uj() -> int | None:
    """Sum of the RAPL package energy counters (µJ), or ``None`` where the host exposes none."""
    total, found = 0, False
    for zone in sorted(Path("/sys/class/powercap").glob("intel-rapl:[0-9]*")):
        if zone.name.count(":") != 1:
            continue
        text = _read(str(zone / "energy_uj")).strip()
        if text.isdigit():
            total += int(text)
            found = True
    return total if found else None


def page_cache_residency(files: Iterable[Path]) -> float | None:
    """Fraction of the files' pages in the page cache (``mincore``), ``None`` where it cannot be read."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        mincore = libc.mincore
    except (OSError, AttributeError):
        return None
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    resident = pages = 0
    for path in files:
        size = path.stat().st_size
        if size == 0:
            continue
        with path.open("rb") as fh, mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_COPY) as mm:
            count = (size + _PAGE - 1) // _PAGE
            vec = (ctypes.c_ubyte * count)()
            anchor = ctypes.c_char.from_buffer(mm)
            try:
                if mincore(ctypes.addressof(anchor), size, vec) != 0:
                    return None
            finally:
                del anchor
            resident += sum(b & 1 for b in vec)
            pages += count
    return resident / pages if pages else None


def set_page_cache(files: Iterable[Path], state: str) -> None:
    """Make the files' pages resident (``warm``: read them) or evict them (``cold``: fadvise DONTNEED)."""
    for path in files:
        with path.open("rb") as fh:
            if state == "warm":
                while fh.read(1 << 24):
                    pass
            elif hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def bandwidth(threads: int = 1, *, mib: int = 256, repeats: int = 5) -> dict[str, Any]:
    """Memory bandwidth (bytes/s) from a STREAM-like copy with ``threads`` threads, best of ``repeats``.

    Each thread copies its own slice of a ``mib`` MiB array (numpy releases the GIL); a copy moves
    2 x bytes (read + write). Decode is bound by this number: every new token reads all the weights.
    """
    import numpy as np

    threads = max(1, threads)
    n = mib * 2**20 // 8
    src = np.ones(n, dtype=np.float64)
    dst = np.empty_like(src)
    bounds = [(i * n // threads, (i + 1) * n // threads) for i in range(threads)]

    def copy(span: tuple[int, int]) -> None:
        np.copyto(dst[span[0] : span[1]], src[span[0] : span[1]])

    best = math_inf = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(copy, bounds))  # touch the pages once
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(copy, bounds))
            best = min(best, time.perf_counter() - start)
    rate = 2 * src.nbytes / best if best < math_inf else None
    return {
        "bytes_per_s": rate,
        "method": f"numpy copy of {mib} MiB float64, {threads} thread(s), best of {repeats}; 2 x bytes / s",
        "threads": threads,
    }
