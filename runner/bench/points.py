"""One measurement point of a footprint: a worker's raw samples -> statistics, roofline and verdict.

A point is one (quantization, concurrency) pair measured in its own worker process. Its statistics are
recomputed here from the raw per-call samples the worker returns (`runner.bench.stats`), and its
verdict lists every reason it is not VALID (DESIGN §8): too short, too few samples, too few warm-ups,
wrong output length, threads not as asked, a noisy host, swapping.
"""

from __future__ import annotations

from typing import Any

from runner.bench.plan import MIN_CALLS, MIN_DURATION_S, BenchConfig
from runner.bench.stats import call_metrics, summarize

__all__ = ["STEAL_LIMIT", "headline", "point", "reason"]

STEAL_LIMIT = 0.02  # share of CPU time stolen by other guests above which a point is noisy


def reason(code: str, detail: str, *, point: str | None = None, severity: str = "invalid") -> dict[str, Any]:
    """A verdict reason: a machine-readable code, its severity (invalid | info) and what happened."""
    return {"code": code, "severity": severity, "point": point, "detail": detail}


def point(
    raw: dict[str, Any], config: BenchConfig, quant: str, concurrency: int, bandwidth_bps: float | None
) -> dict[str, Any]:
    """One measurement point of the footprint, with its statistics and verdict reasons."""
    name = f"{quant}/c{concurrency}"
    entry: dict[str, Any] = {
        "id": name,
        "quant": quant,
        "concurrency": concurrency,
        "status": raw.get("status", "failed"),
        "detail": raw.get("detail"),
    }
    if entry["status"] != "ok":
        code = {"over_ram_budget": "does_not_fit", "out_of_memory": "does_not_fit"}.get(
            entry["status"], "point_failed"
        )
        entry.update(
            verdict={"status": "INVALID", "reasons": [reason(code, str(raw.get("detail")), point=name)]},
            peak_rss_bytes=raw.get("peak_rss_bytes") or raw.get("peak_rss_sampled_bytes"),
        )
        return entry
    entry.update(_measured(raw, config, concurrency, bandwidth_bps))
    reasons = _reasons(raw, config, name, entry["energy"])
    invalid = any(r["severity"] == "invalid" for r in reasons)
    entry["verdict"] = {"status": "INVALID" if invalid else "VALID", "reasons": reasons}
    return entry


def _measured(
    raw: dict[str, Any], config: BenchConfig, concurrency: int, bandwidth_bps: float | None
) -> dict[str, Any]:
    """The fields of a point that ran: runtime, load, memory, statistics, roofline, energy, samples."""
    metrics = _metrics(raw, config, concurrency)
    weights = int(raw["weights_bytes_resident"])
    roofline = bandwidth_bps / weights * concurrency if bandwidth_bps and weights else None
    decode_p50 = metrics["decode_tps"]["p50"]
    aggregate = decode_p50 * concurrency if decode_p50 is not None else None
    null_reasons = {
        "roofline_decode_tps": None if roofline else "memory bandwidth not measured",
        "peak_vram_bytes": "device cpu: no GPU memory used" if config.device == "cpu" else None,
        "roofline_fraction": None
        if aggregate is not None
        else metrics["decode_tps"]["null_reasons"].get("p50", "no decode samples"),
    }
    return {
        "compute_dtype": raw.get("compute_dtype"),
        "runtime_quant": raw.get("runtime_quant"),
        "threads": raw.get("threads"),
        "torch": raw.get("torch"),
        "gpu": raw.get("gpu"),
        "load": {
            "load_time_s": raw["load_time_s"],
            "import_s": raw.get("import_s"),
            "page_cache_state": _cache_state(raw.get("page_cache_resident_fraction")),
            "page_cache_resident_fraction": raw.get("page_cache_resident_fraction"),
        },
        "memory": {
            "params": raw.get("params"),
            "weights_bytes_resident": weights,
            "peak_rss_bytes": raw["peak_rss_bytes"],
            "rss_after_load_bytes": raw.get("rss_after_load_bytes"),
            "peak_vram_bytes": raw.get("peak_vram_bytes"),
            "peak_vram_allocated_bytes": raw.get("peak_vram_allocated_bytes"),
            "nvml_peak_used_bytes": raw.get("nvml_peak_used_bytes"),
        },
        "calls": raw["calls"],
        "duration_s": raw["duration_s"],
        "metrics": metrics,
        "roofline_decode_tps": roofline,
        "roofline_fraction": aggregate / roofline if roofline and aggregate is not None else None,
        "null_reasons": {k: v for k, v in null_reasons.items() if v},
        "energy": _energy(raw, config, concurrency),
        "host": {"steal_fraction": raw.get("steal_fraction"), "swapped_pages": raw.get("swapped_pages")},
        "samples": raw["samples"],
    }


def _metrics(raw: dict[str, Any], config: BenchConfig, concurrency: int) -> dict[str, Any]:
    """Summaries of every per-call series (TTFT, TPOT, e2e, ITL, prefill/decode tok/s, tokenize time)."""
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
    """Joules per call: measured (RAPL, NVML), estimated from ``--watts``, or unavailable."""
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


def _reasons(
    raw: dict[str, Any], config: BenchConfig, name: str, energy: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every reason the point that ran is not VALID (severity invalid), and its energy source (info)."""
    reasons = []
    if raw["duration_s"] < MIN_DURATION_S:
        reasons.append(
            reason(
                "min_duration", f"timed for {raw['duration_s']:.2f} s < {MIN_DURATION_S:.0f} s", point=name
            )
        )
    if raw["calls"] < MIN_CALLS:
        reasons.append(reason("min_samples", f"{raw['calls']} calls < {MIN_CALLS}", point=name))
    if config.warmups < 3:
        reasons.append(reason("min_warmups", f"{config.warmups} warm-up calls < 3", point=name))
    if raw.get("new_tokens_made") != [config.new_tokens]:
        made = raw.get("new_tokens_made")
        reasons.append(
            reason("output_length", f"made {made} new tokens, asked {config.new_tokens}", point=name)
        )
    threads = raw.get("threads") or {}
    if threads.get("torch_num_threads") != config.threads:
        used = threads.get("torch_num_threads")
        reasons.append(reason("threads", f"torch used {used} threads, asked {config.threads}", point=name))
    steal = raw.get("steal_fraction")
    if steal is not None and steal > STEAL_LIMIT:
        detail = f"{steal:.1%} of CPU time stolen by other guests > {STEAL_LIMIT:.0%}"
        reasons.append(reason("steal_time", detail, point=name))
    swapped = sum((raw.get("swapped_pages") or {}).values())
    if swapped > 0:
        reasons.append(reason("swapping", f"{swapped} pages swapped while timing", point=name))
    detail = energy.get("reason") or str(energy["source"])
    reasons.append(reason(f"energy_{energy['status']}", detail, point=name, severity="info"))
    return reasons


def _cache_state(fraction: float | None) -> str:
    if fraction is None:
        return "unknown"
    return "warm" if fraction >= 0.99 else "cold" if fraction <= 0.01 else "partial"


def headline(entry: dict[str, Any]) -> dict[str, Any]:
    """A point's p50 figures, memory and verdict: one row of the footprint summary."""
    m = entry.get("metrics") or {}

    def p50(name: str) -> float | None:
        stats = m.get(name) or {}
        value = stats.get("p50")
        return float(value) if isinstance(value, int | float) else None

    memory = entry.get("memory") or {}
    return {
        "quant": entry["quant"],
        "concurrency": entry["concurrency"],
        "status": entry["status"],
        "verdict": entry["verdict"]["status"],
        "peak_rss_bytes": memory.get("peak_rss_bytes", entry.get("peak_rss_bytes")),
        "peak_vram_bytes": memory.get("peak_vram_bytes"),
        "weights_bytes_resident": memory.get("weights_bytes_resident"),
        "load_time_s": (entry.get("load") or {}).get("load_time_s"),
        "ttft_p50_s": p50("ttft_s"),
        "tpot_p50_s": p50("tpot_s"),
        "e2e_p50_s": p50("e2e_s"),
        "decode_tps_p50": p50("decode_tps"),
        "prefill_tps_p50": p50("prefill_tps"),
        "throughput_rps": m.get("throughput_rps"),
        "roofline_fraction": entry.get("roofline_fraction"),
    }
