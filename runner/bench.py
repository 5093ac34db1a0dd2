"""`receipts bench`: what a model costs to run on this hardware (DESIGN §8), as a footprint document.

The parent process never imports torch. It describes the machine, measures memory bandwidth before
and after, and runs every measurement point — each (quantization, concurrency) pair and each probe of
the ``max_usable_context`` search — in a fresh worker process (`runner.bench_worker`) whose threads are
pinned before torch is imported. Each worker's result is kept in ``<out>.parts/`` as soon as it exists,
so an interrupted bench resumes (``--resume``) without measuring a finished point again.

The footprint keeps every raw per-call sample; the statistics are recomputed from them
(`runner.benchstats`), and a verdict says whether the numbers are VALID, with machine-readable reasons
when they are not (too short, too few samples, noisy host, swapping, a budget not met).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receipts import schemas
from receipts.digests import sha256_file
from receipts.errors import UsageError
from receipts.output import check_file, check_folder, make_folder, write_file
from runner import hostinfo
from runner.backends import split_spec
from runner.backends.local import local_identity
from runner.benchstats import call_metrics, summarize

__all__ = ["QUANTS", "BenchConfig", "bench", "parse_quants", "parse_size"]

QUANTS = {"fp32": "fp32", "bf16": "bf16", "int8": "int8-dynamic", "int8-dynamic": "int8-dynamic"}
MIN_DURATION_S = 10.0
MIN_CALLS = 30
STEAL_LIMIT = 0.02  # share of CPU time stolen by other guests above which a point is noisy
DRIFT_LIMIT = 0.10  # relative memory-bandwidth change, before vs after, above which the host was noisy
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text: str, *, option: str = "--ram-budget") -> int:
    """``16GB`` → 16·10⁹ bytes, ``16GiB`` → 16·2³⁰ (a unit is required: a bare number is ambiguous)."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"{option} {text!r} is not a size", hint="write it with a unit: 16GB, 16GiB, 512MiB")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1:
        raise UsageError(f"{option} {text!r} must be positive")
    return int(value)


def parse_quants(text: str) -> tuple[str, ...]:
    """``fp32,bf16,int8`` → the runner's variant names, in order, without repeats."""
    out: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if name not in QUANTS:
            raise UsageError(
                f"--quant {name!r} is not a quantization receipts can bench",
                hint="use fp32, bf16 and/or int8 (int8 = dynamic int8 on CPU), comma-separated",
            )
        if QUANTS[name] not in out:
            out.append(QUANTS[name])
    if not out:
        raise UsageError("--quant is empty", hint="e.g. --quant fp32,int8")
    return tuple(out)


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides what a bench measures (all of it is recorded in the footprint)."""

    spec: str
    quants: tuple[str, ...] = ("fp32",)
    prompt_tokens: int = 128
    new_tokens: int = 32
    concurrency: tuple[int, ...] = (1,)
    ram_budget_bytes: int | None = None
    ttft_budget_s: float = 10.0
    price_per_hour: float | None = None
    currency: str = "USD"
    watts: float | None = None
    threads: int = 1
    device: str = "cpu"
    warmups: int = 3
    min_duration_s: float = MIN_DURATION_S
    min_calls: int = MIN_CALLS
    context_search: bool = True
    max_context: int | None = None
    page_cache: str = "warm"
    seed: int = 0
    point_timeout_s: float = 1800.0

    def check(self) -> None:
        """Refuse settings that cannot produce a measurement."""
        if self.prompt_tokens < 1:
            raise UsageError("--prompt-tokens must be at least 1")
        if self.new_tokens < 2:
            raise UsageError(
                "--new-tokens must be at least 2", hint="TPOT needs a second token: (e2e - ttft)/(G - 1)"
            )
        if not self.concurrency or min(self.concurrency) < 1:
            raise UsageError("--concurrency must be positive integers, e.g. 1 or 1,4")
        if self.threads < 1:
            raise UsageError("--threads must be at least 1")
        if self.warmups < 0 or self.min_calls < 1 or self.min_duration_s < 0:
            raise UsageError("--warmups must be ≥ 0, --min-calls ≥ 1 and --min-duration ≥ 0")
        if self.ttft_budget_s <= 0:
            raise UsageError("--ttft-budget must be positive seconds")
        if self.point_timeout_s <= 0:
            raise UsageError("--timeout must be positive seconds", hint="e.g. --timeout 1800")
        if self.max_context is not None and self.max_context < 1:
            raise UsageError("--max-context must be at least 1 token")
        if self.price_per_hour is not None and self.price_per_hour < 0:
            raise UsageError("--price-per-hour must not be negative")
        if self.device not in ("cpu", "cuda"):
            raise UsageError(f"--device {self.device!r}", hint="use cpu or cuda")
        if self.device == "cuda" and "int8-dynamic" in self.quants:
            raise UsageError(
                "int8 (dynamic) runs on CPU only", hint="drop int8 from --quant or use --device cpu"
            )
        if self.page_cache not in ("warm", "cold"):
            raise UsageError(f"--page-cache {self.page_cache!r}", hint="use warm or cold")

    @property
    def short(self) -> bool:
        """Below the DESIGN §8 minimums (≥ 10 s and ≥ 30 calls per point, ≥ 3 warm-ups)."""
        return self.min_duration_s < MIN_DURATION_S or self.min_calls < MIN_CALLS or self.warmups < 3


Progress = Callable[[str], None]


class _Parts:
    """``<out>.parts/``: one JSON file per finished measurement, written as soon as it exists."""

    def __init__(self, out: Path, *, resume: bool, force: bool, settings: dict[str, Any]):
        self.dir = out.with_name(out.name + ".parts")
        marker = self.dir / "settings.json"
        if self.dir.exists() and not resume and not force:
            raise UsageError(
                f"{self.dir} holds an interrupted bench",
                hint="rerun with --resume to continue it, or --force to start over",
            )
        if force and self.dir.exists():
            shutil.rmtree(self.dir)
        if resume and marker.exists():
            saved = json.loads(marker.read_text("utf-8"))
            if saved != settings:
                raise UsageError(
                    f"{self.dir} was started with other settings; --resume needs the same command",
                    hint="rerun the original command with --resume, or use --force to start over",
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(settings, sort_keys=True), "utf-8")

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.dir / f"{key}.json").read_text("utf-8"))
            return data
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        tmp = self.dir / f".{key}.tmp"
        tmp.write_text(json.dumps(value), "utf-8")
        os.replace(tmp, self.dir / f"{key}.json")


def _key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _load_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _run_worker(job: dict[str, Any], parts: _Parts, key: str, timeout: float, threads: int) -> dict[str, Any]:
    """Run one job in a fresh process; return its result (a failure is a result too)."""
    job_path = parts.dir / f"{key}.job.json"
    result_path = parts.dir / f"{key}.result.json"
    result_path.unlink(missing_ok=True)
    job["result"] = str(result_path)
    job_path.write_text(json.dumps(job), "utf-8")
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    log = parts.dir / f"{key}.log"
    with log.open("w", encoding="utf-8") as sink:
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "runner.bench_worker", str(job_path)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    try:
        result: dict[str, Any] = json.loads(result_path.read_text("utf-8"))
    except (OSError, ValueError):
        tail = log.read_text("utf-8", errors="replace").strip().splitlines()[-3:]
        if code is None:
            why = f"timed out after {timeout:.0f} s (raise --timeout if the model is simply slow)"
        elif code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            why = f"killed by {name}" + (" (likely the kernel's out-of-memory killer)" if code == -9 else "")
        else:
            why = f"exited with status {code}"
        result = {
            "status": "out_of_memory" if code == -9 else "failed",
            "detail": why + (": " + " | ".join(tail) if tail else ""),
        }
    if result.get("status") == "running":
        result = {**result, "status": "failed", "detail": "the worker stopped before finishing"}
    return result


def _point_metrics(raw: dict[str, Any], config: BenchConfig, concurrency: int) -> dict[str, Any]:
    samples = raw["samples"]
    calls = [
        call_metrics(0.0, times, e2e, prompt_tokens=config.prompt_tokens, batch=concurrency)
        for times, e2e in zip(samples["token_times_s"], samples["e2e_s"], strict=True)
    ]
    series: dict[str, list[float]] = {
        "ttft_s": [c["ttft_s"] for c in calls],
        "tpot_s": [c["tpot_s"] for c in calls if c["tpot_s"] is not None],
        "e2e_s": [c["e2e_s"] for c in calls],
        "itl_s": [x for c in calls for x in c["itl_s"]],
        "prefill_tps": [c["prefill_tps"] for c in calls if c["prefill_tps"] is not None],
        "decode_tps": [c["decode_tps"] for c in calls if c["decode_tps"] is not None],
        "tokenize_s": list(samples["tokenize_s"]),
    }
    metrics: dict[str, Any] = {name: summarize(values, seed=config.seed) for name, values in series.items()}
    model_time = sum(series["e2e_s"])
    rps = concurrency * len(calls) / model_time if model_time > 0 else None
    metrics["throughput_rps"] = rps
    metrics["output_tps"] = rps * config.new_tokens if rps is not None else None
    return metrics


def _energy(raw: dict[str, Any], config: BenchConfig, concurrency: int) -> dict[str, Any]:
    measured = [x for x in raw["samples"].get("energy_j", []) if x is not None]
    if raw.get("energy_source") in ("rapl", "nvml") and measured:
        stats = summarize(measured, seed=config.seed)
        return {
            "status": "measured",
            "source": raw["energy_source"],
            "joules_per_call": stats,
            "joules_per_request_p50": stats["p50"] / concurrency if stats["p50"] is not None else None,
        }
    if config.watts is not None:
        stats = summarize([config.watts * e for e in raw["samples"]["e2e_s"]], seed=config.seed)
        return {
            "status": "estimated",
            "source": f"--watts {config.watts} x e2e time",
            "joules_per_call": stats,
            "joules_per_request_p50": stats["p50"] / concurrency if stats["p50"] is not None else None,
        }
    return {
        "status": "unavailable",
        "source": None,
        "joules_per_call": None,
        "joules_per_request_p50": None,
        "reason": "no RAPL/NVML energy counter readable here; pass --watts W for an estimate",
    }


def _reason(code: str, detail: str, *, point: str | None = None, severity: str = "invalid") -> dict[str, Any]:
    return {"code": code, "severity": severity, "point": point, "detail": detail}


def _point(
    raw: dict[str, Any], config: BenchConfig, quant: str, concurrency: int, bandwidth_bps: float | None
) -> dict[str, Any]:
    """One measurement point of the footprint, with its statistics and verdict reasons."""
    name = f"{quant}/c{concurrency}"
    point: dict[str, Any] = {
        "id": name,
        "quant": quant,
        "concurrency": concurrency,
        "status": raw.get("status", "failed"),
        "detail": raw.get("detail"),
    }
    reasons: list[dict[str, Any]] = []
    if point["status"] != "ok":
        code = {"over_ram_budget": "does_not_fit", "out_of_memory": "does_not_fit"}.get(
            point["status"], "point_failed"
        )
        reasons.append(_reason(code, str(raw.get("detail")), point=name))
        point.update(
            verdict={"status": "INVALID", "reasons": reasons},
            peak_rss_bytes=raw.get("peak_rss_bytes") or raw.get("peak_rss_sampled_bytes"),
        )
        return point
    metrics = _point_metrics(raw, config, concurrency)
    weights = int(raw["weights_bytes_resident"])
    roofline = bandwidth_bps / weights * concurrency if bandwidth_bps and weights else None
    decode_p50 = metrics["decode_tps"]["p50"]
    aggregate = decode_p50 * concurrency if decode_p50 is not None else None
    point.update(
        compute_dtype=raw.get("compute_dtype"),
        runtime_quant=raw.get("runtime_quant"),
        threads=raw.get("threads"),
        torch=raw.get("torch"),
        gpu=raw.get("gpu"),
        load={
            "load_time_s": raw["load_time_s"],
            "import_s": raw.get("import_s"),
            "page_cache_state": _cache_state(raw.get("page_cache_resident_fraction")),
            "page_cache_resident_fraction": raw.get("page_cache_resident_fraction"),
        },
        memory={
            "params": raw.get("params"),
            "weights_bytes_resident": weights,
            "peak_rss_bytes": raw["peak_rss_bytes"],
            "rss_after_load_bytes": raw.get("rss_after_load_bytes"),
            "peak_vram_bytes": raw.get("peak_vram_bytes"),
            "peak_vram_allocated_bytes": raw.get("peak_vram_allocated_bytes"),
            "nvml_peak_used_bytes": raw.get("nvml_peak_used_bytes"),
        },
        calls=raw["calls"],
        duration_s=raw["duration_s"],
        metrics=metrics,
        roofline_decode_tps=roofline,
        roofline_fraction=aggregate / roofline if roofline and aggregate is not None else None,
        null_reasons={
            k: v
            for k, v in {
                "roofline_decode_tps": None if roofline else "memory bandwidth not measured",
                "peak_vram_bytes": "device cpu: no GPU memory used" if config.device == "cpu" else None,
                "roofline_fraction": None
                if aggregate is not None
                else metrics["decode_tps"]["null_reasons"].get("p50", "no decode samples"),
            }.items()
            if v
        },
        energy=_energy(raw, config, concurrency),
        host={"steal_fraction": raw.get("steal_fraction"), "swapped_pages": raw.get("swapped_pages")},
        samples=raw["samples"],
    )
    if raw["duration_s"] < MIN_DURATION_S:
        reasons.append(
            _reason(
                "min_duration", f"timed for {raw['duration_s']:.2f} s < {MIN_DURATION_S:.0f} s", point=name
            )
        )
    if raw["calls"] < MIN_CALLS:
        reasons.append(_reason("min_samples", f"{raw['calls']} calls < {MIN_CALLS}", point=name))
    if config.warmups < 3:
        reasons.append(_reason("min_warmups", f"{config.warmups} warm-up calls < 3", point=name))
    if raw.get("new_tokens_made") != [config.new_tokens]:
        reasons.append(
            _reason(
                "output_length",
                f"made {raw.get('new_tokens_made')} new tokens, asked {config.new_tokens}",
                point=name,
            )
        )
    threads = raw.get("threads") or {}
    if threads.get("torch_num_threads") != config.threads:
        reasons.append(
            _reason(
                "threads",
                f"torch used {threads.get('torch_num_threads')} threads, asked {config.threads}",
                point=name,
            )
        )
    steal = raw.get("steal_fraction")
    if steal is not None and steal > STEAL_LIMIT:
        reasons.append(
            _reason(
                "steal_time",
                f"{steal:.1%} of CPU time stolen by other guests > {STEAL_LIMIT:.0%}",
                point=name,
            )
        )
    swapped = sum((raw.get("swapped_pages") or {}).values())
    if swapped > 0:
        reasons.append(_reason("swapping", f"{swapped} pages swapped while timing", point=name))
    energy = point["energy"]["status"]
    reasons.append(
        _reason(
            f"energy_{energy}",
            point["energy"].get("reason") or str(point["energy"]["source"]),
            point=name,
            severity="info",
        )
    )
    invalid = any(r["severity"] == "invalid" for r in reasons)
    point["verdict"] = {"status": "INVALID" if invalid else "VALID", "reasons": reasons}
    return point


def _cache_state(fraction: float | None) -> str:
    if fraction is None:
        return "unknown"
    return "warm" if fraction >= 0.99 else "cold" if fraction <= 0.01 else "partial"


def _search_context(
    probe: Callable[[int], dict[str, Any]], start: int, limit: int, config: BenchConfig
) -> dict[str, Any]:
    """Largest prompt length that fits both budgets: doubling from ``start``, then bisection.

    A length fits when its worker finished (RAM never over budget) with TTFT within budget. Resolution:
    the bracket is closed when ``hi - lo ≤ max(16, lo // 16)``.
    """
    probes: list[dict[str, Any]] = []

    def fits(length: int) -> bool:
        result = probe(length)
        ok = result.get("status") == "ok" and float(result.get("ttft_s", math.inf)) <= config.ttft_budget_s
        why = None
        if not ok:
            why = {
                "over_ram_budget": "ram_budget",
                "out_of_memory": "ram_budget",
                "over_ttft_budget": "ttft_budget",
            }.get(str(result.get("status")), "ttft_budget" if result.get("status") == "ok" else "failed")
        probes.append(
            {
                "prompt_tokens": length,
                "fits": ok,
                "limited_by": why,
                "ttft_s": result.get("ttft_s"),
                "peak_rss_bytes": result.get("peak_rss_bytes") or result.get("peak_rss_sampled_bytes"),
                "detail": result.get("detail"),
            }
        )
        return ok

    lo, hi = 0, None
    length = max(1, min(start, limit))
    while True:
        if fits(length):
            lo = length
            if length >= limit:
                break
            length = min(2 * length, limit)
        else:
            hi = length
            break
    if hi is not None:
        while hi - lo > max(16, lo // 16):
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
    failing = [p for p in probes if not p["fits"]]
    first_fail = min(failing, key=lambda p: p["prompt_tokens"]) if failing else None
    return {
        "value": lo or None,
        "limited_by": first_fail["limited_by"] if first_fail else "model_limit",
        "null_reason": None if lo else "no_context_fits_budget",
        "limit": limit,
        "probes": probes,
    }


def _headline(point: dict[str, Any]) -> dict[str, Any]:
    m = point.get("metrics") or {}

    def p50(name: str) -> float | None:
        stats = m.get(name) or {}
        value = stats.get("p50")
        return float(value) if isinstance(value, int | float) else None

    memory = point.get("memory") or {}
    return {
        "quant": point["quant"],
        "concurrency": point["concurrency"],
        "status": point["status"],
        "verdict": point["verdict"]["status"],
        "peak_rss_bytes": memory.get("peak_rss_bytes", point.get("peak_rss_bytes")),
        "peak_vram_bytes": memory.get("peak_vram_bytes"),
        "weights_bytes_resident": memory.get("weights_bytes_resident"),
        "load_time_s": (point.get("load") or {}).get("load_time_s"),
        "ttft_p50_s": p50("ttft_s"),
        "tpot_p50_s": p50("tpot_s"),
        "e2e_p50_s": p50("e2e_s"),
        "decode_tps_p50": p50("decode_tps"),
        "prefill_tps_p50": p50("prefill_tps"),
        "throughput_rps": m.get("throughput_rps"),
        "roofline_fraction": point.get("roofline_fraction"),
    }


def bench(
    config: BenchConfig, out: Path, *, resume: bool = False, force: bool = False, progress: Progress = print
) -> dict[str, Any]:
    """Measure, assemble, validate and write the footprint; return it.

    Raises:
        UsageError: bad settings, or a leftover/mismatched ``<out>.parts``.
        InputError: the model spec names nothing loadable.
    """
    config.check()
    kind, location, spec_variant = split_spec(config.spec)
    if kind not in ("hf", "gguf"):
        raise UsageError(
            f"receipts bench measures local models; {config.spec!r} is a {kind}: spec",
            hint="bench hf:DIR or gguf:FILE (a served endpoint's cost is the server's to measure)",
        )
    quants = config.quants
    if spec_variant:
        raise UsageError(
            f"model spec {config.spec!r} names a variant",
            hint=f"drop @{spec_variant} and pass --quant instead",
        )
    if out.suffix != ".json":
        raise UsageError(f"--out {out} must be a .json file", hint="e.g. --out runs/student/footprint.json")
    check_file(out, what="the footprint")  # refuse a bad --out before anything is measured
    check_folder(out.with_name(out.name + ".parts"), what="the bench's partial results")
    identity, folder = local_identity(config.spec, kind, location, None)
    source = Path(location).expanduser()
    source_files = [source] if source.is_file() else _load_files(source)
    load_files = _load_files(folder)
    settings = {k: v for k, v in asdict(config).items() if k not in ("point_timeout_s",)}
    settings["identity"] = identity.key
    settings = json.loads(json.dumps(settings))  # as the parts folder will hold it (tuples become lists)
    make_folder(out.parent, what="the footprint")
    parts = _Parts(out, resume=resume, force=force, settings=settings)

    fp = hostinfo.fingerprint()
    bw_before = parts.get("bandwidth-before")
    if bw_before is None:
        progress(f"memory bandwidth ({config.threads} thread(s)) ...")
        bw_before = {**hostinfo.bandwidth(config.threads), "at": _now()}
        parts.put("bandwidth-before", bw_before)

    def job(mode: str, quant: str, **extra: Any) -> dict[str, Any]:
        return {
            "mode": mode,
            "spec": config.spec,
            "folder": str(folder),
            "variant": quant,
            "device": config.device,
            "threads": config.threads,
            "prompt_tokens": config.prompt_tokens,
            "new_tokens": config.new_tokens,
            "concurrency": 1,
            "warmups": config.warmups,
            "min_duration_s": config.min_duration_s,
            "min_calls": config.min_calls,
            "ram_budget_bytes": config.ram_budget_bytes,
            "ttft_budget_s": config.ttft_budget_s,
            "load_files": [str(p) for p in load_files],
            **extra,
        }

    raw_points: list[tuple[str, int, dict[str, Any]]] = []
    for quant in quants:
        for concurrency in config.concurrency:
            key = "point-" + _key(identity.key, quant, concurrency, settings)
            raw = parts.get(key)
            if raw is None:
                progress(f"{quant} concurrency {concurrency}: measuring in a fresh process ...")
                hostinfo.set_page_cache(load_files, config.page_cache)
                raw = _run_worker(
                    job("point", quant, concurrency=concurrency),
                    parts,
                    key,
                    config.point_timeout_s,
                    config.threads,
                )
                parts.put(key, raw)
            else:
                progress(f"{quant} concurrency {concurrency}: kept from the interrupted bench")
            progress(_point_line(quant, concurrency, raw, config))
            raw_points.append((quant, concurrency, raw))

    context: dict[str, Any]
    head_raw = raw_points[0][2]
    if not config.context_search:
        context = {"value": None, "null_reason": "not_measured: --no-context-search", "probes": []}
    elif head_raw.get("status") != "ok":
        context = {
            "value": None,
            "null_reason": f"not_measured: the {quants[0]} point did not run",
            "probes": [],
        }
    else:
        positions = head_raw.get("max_position_embeddings") or 2048
        limit = int(positions) - 2
        if config.max_context:
            limit = min(limit, config.max_context)

        def probe(length: int) -> dict[str, Any]:
            key = "probe-" + _key(identity.key, quants[0], length, settings)
            result = parts.get(key)
            if result is None:
                hostinfo.set_page_cache(load_files, config.page_cache)
                result = _run_worker(
                    job("probe", quants[0], prompt_tokens=length, new_tokens=2),
                    parts,
                    key,
                    config.point_timeout_s,
                    config.threads,
                )
                parts.put(key, result)
            fits = (
                result.get("status") == "ok" and float(result.get("ttft_s", math.inf)) <= config.ttft_budget_s
            )
            progress(
                f"  context {length}: {'fits' if fits else 'does not fit'} ({_probe_why(result, config)})"
            )
            return result

        progress(
            f"max usable context ({quants[0]},"
            f" RAM budget {_gb(config.ram_budget_bytes or hostinfo.mem_total_bytes())},"
            f" TTFT budget {config.ttft_budget_s} s) ..."
        )
        context = _search_context(probe, config.prompt_tokens, limit, config)
        context["quant"] = quants[0]
    progress(f"memory bandwidth again ({config.threads} thread(s)) ...")
    bw_after = {**hostinfo.bandwidth(config.threads), "at": _now()}

    before, after = bw_before.get("bytes_per_s"), bw_after.get("bytes_per_s")
    bandwidth_bps = (before + after) / 2 if before and after else before or after
    drift = abs(after / before - 1) if before and after else None
    points = [_point(raw, config, quant, c, bandwidth_bps) for quant, c, raw in raw_points]
    reasons = [r for p in points for r in p["verdict"]["reasons"]]
    if drift is not None and drift > DRIFT_LIMIT:
        reasons.append(
            _reason(
                "bandwidth_drift",
                f"memory bandwidth moved {drift:.1%} between before and after > {DRIFT_LIMIT:.0%}",
            )
        )
    if config.short:
        reasons.append(
            _reason(
                "short_run",
                f"run below the minimums (≥ {MIN_DURATION_S:.0f} s, ≥ {MIN_CALLS} calls,"
                " ≥ 3 warm-ups per point)",
            )
        )
    if context.get("value") is None:
        reasons.append(_reason("max_usable_context", str(context.get("null_reason")), severity="info"))
    valid = not any(r["severity"] == "invalid" for r in reasons)

    ram_budget = config.ram_budget_bytes or hostinfo.mem_total_bytes()
    headline = points[0]
    summary = _headline(headline)
    rps = summary["throughput_rps"]
    machine_seconds = 1000 / rps if rps else None
    summary.update(
        max_usable_context=context.get("value"),
        machine_seconds_per_1k_calls=machine_seconds,
        cost_per_1k_calls=(
            config.price_per_hour * machine_seconds / 3600
            if config.price_per_hour is not None and machine_seconds is not None
            else None
        ),
        currency=config.currency if config.price_per_hour is not None else None,
        verdict="VALID" if valid else "INVALID",
        by_quant={p["id"]: _headline(p) for p in points},
    )
    summary["null_reasons"] = {
        key: why
        for key, why in {
            "cost_per_1k_calls": "no --price-per-hour given"
            if summary["cost_per_1k_calls"] is None
            else None,
            "currency": "no --price-per-hour given" if summary["currency"] is None else None,
            "peak_vram_bytes": "device cpu: no GPU memory used" if config.device == "cpu" else None,
            "max_usable_context": context.get("null_reason") if context.get("value") is None else None,
            "machine_seconds_per_1k_calls": None if machine_seconds else "no throughput measured",
            **{
                key: f"the {headline['id']} point: {headline['status']}"
                for key in ("ttft_p50_s", "tpot_p50_s", "decode_tps_p50", "throughput_rps")
                if summary.get(key) is None and headline["status"] != "ok"
            },
            **{
                key: f"{headline['id']}: {headline['metrics'][name]['null_reasons'].get('p50')}"
                for key, name in (
                    ("ttft_p50_s", "ttft_s"),
                    ("tpot_p50_s", "tpot_s"),
                    ("e2e_p50_s", "e2e_s"),
                    ("decode_tps_p50", "decode_tps"),
                    ("prefill_tps_p50", "prefill_tps"),
                )
                if summary.get(key) is None and headline["status"] == "ok"
            },
        }.items()
        if why
    }
    fp["threads_used"] = config.threads
    worker_torch = next((p.get("torch") for p in points if p.get("torch")), None)
    if worker_torch:
        fp["torch"] = worker_torch
    footprint: dict[str, Any] = {
        "format": "receipts.footprint/v1",
        "created": _now(),
        "model": {
            "spec": config.spec,
            "digest": identity.digest,
            "kind": kind,
            "params": identity.params,
            "file_bytes": sum(p.stat().st_size for p in source_files),
            "files": [
                {
                    "path": p.name if source.is_file() else p.relative_to(source).as_posix(),
                    "bytes": p.stat().st_size,
                    "sha256": sha256_file(p),
                }
                for p in source_files
            ],
            "storage_quant": identity.storage_quant,
            "tokenizer": identity.tokenizer,
            "loaded_from_bytes": sum(p.stat().st_size for p in load_files),
        },
        "hardware": {
            "hw_class": hostinfo.hw_class(fp),
            "label": hostinfo.hw_label(fp),
            "device": config.device,
            "fingerprint": fp,
        },
        "settings": {
            "quants": list(quants),
            "prompt_tokens": config.prompt_tokens,
            "new_tokens": config.new_tokens,
            "concurrency": list(config.concurrency),
            "threads": config.threads,
            "warmups": config.warmups,
            "min_duration_s": config.min_duration_s,
            "min_calls": config.min_calls,
            "short_run": config.short,
            "decoding": "greedy, min_new_tokens = max_new_tokens",
            "ram_budget_bytes": ram_budget,
            "ram_budget_source": "--ram-budget" if config.ram_budget_bytes else "MemTotal",
            "ttft_budget_s": config.ttft_budget_s,
            "page_cache": config.page_cache,
            "price": {
                "per_hour": config.price_per_hour,
                "currency": config.currency if config.price_per_hour is not None else None,
                "source": "--price-per-hour" if config.price_per_hour is not None else None,
            },
            "watts": config.watts,
            "seed": config.seed,
        },
        "bandwidth": {
            "before": bw_before,
            "after": bw_after,
            "drift": drift,
            "bytes_per_s_used": bandwidth_bps,
        },
        "points": points,
        "max_usable_context": context,
        "verdict": {"status": "VALID" if valid else "INVALID", "reasons": reasons},
        "summary": summary,
    }
    footprint = json.loads(json.dumps(footprint, allow_nan=False))
    schemas.validate(footprint, "footprint", file=out)
    write_file(out, (json.dumps(footprint, indent=1) + "\n").encode("utf-8"), what="the footprint")
    shutil.rmtree(parts.dir, ignore_errors=True)
    return footprint


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _gb(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 1e9:.2f} GB"


def _probe_why(result: dict[str, Any], config: BenchConfig) -> str:
    if result.get("status") == "ok":
        return f"TTFT {float(result['ttft_s']):.3f} s, peak RSS {_gb(result.get('peak_rss_bytes'))}"
    return str(result.get("detail") or result.get("status"))


def _point_line(quant: str, concurrency: int, raw: dict[str, Any], config: BenchConfig) -> str:
    if raw.get("status") != "ok":
        return f"  {quant} c{concurrency}: {raw.get('status')}: {raw.get('detail')}"
    e2e = sorted(raw["samples"]["e2e_s"])
    median = e2e[len(e2e) // 2]
    return (
        f"  {quant} c{concurrency}: {raw['calls']} calls in {raw['duration_s']:.1f} s, "
        f"e2e median {median:.3f} s, {concurrency * config.new_tokens / median:.1f} new tok/s, "
        f"peak RSS {_gb(raw['peak_rss_bytes'])}, load {raw['load_time_s']:.2f} s"
    )
