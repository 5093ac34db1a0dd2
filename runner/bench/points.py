"""One measurement point of a footprint: a worker's raw samples -> statistics, roofline and verdict.

A point is one (quantization, concurrency) pair measured in its own worker process. Its statistics,
roofline and energy figures are computed from the raw per-call samples the worker returns by
`receipts.footprint` (the code ``receipts verify`` re-derives them with), and its
verdict lists every reason it is not VALID (DESIGN §8): too short, too few samples, too few warm-ups,
wrong output length, threads not as asked, a noisy host, swapping.
"""

from __future__ import annotations

from typing import Any

from receipts import footprint as numbers
from runner.bench.plan import MIN_CALLS, MIN_DURATION_S, BenchConfig

__all__ = ["STEAL_LIMIT", "point", "reason"]

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
    samples = raw["samples"]
    metrics = numbers.point_metrics(
        samples,
        prompt_tokens=config.prompt_tokens,
        new_tokens=config.new_tokens,
        concurrency=concurrency,
        seed=config.seed,
    )
    weights = int(raw["weights_bytes_resident"])
    source = raw.get("energy_source")
    return {
        "compute_dtype": raw.get("compute_dtype"),
        "runtime_quant": raw.get("runtime_quant"),
        "threads": raw.get("threads"),
        "torch": raw.get("torch"),
        **{k: raw[k] for k in ("llama_cpp", "llama_context") if k in raw},
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
        **numbers.roofline(
            metrics,
            weights_bytes=weights,
            bandwidth_bps=bandwidth_bps,
            concurrency=concurrency,
            device=config.device,
        ),
        "energy": numbers.energy(
            samples,
            source=source if isinstance(source, str) else None,
            watts=config.watts,
            concurrency=concurrency,
            seed=config.seed,
        ),
        "host": {"steal_fraction": raw.get("steal_fraction"), "swapped_pages": raw.get("swapped_pages")},
        "samples": samples,
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
    runtime, used = _threads_used(raw.get("threads") or {})
    if used != config.threads:
        detail = f"{runtime} used {used} threads, asked {config.threads}"
        reasons.append(reason("threads", detail, point=name))
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


def _threads_used(threads: dict[str, Any]) -> tuple[str, Any]:
    """Who ran the point and the threads it read back: torch's, or llama.cpp's (prompt and generation)."""
    if "llama_n_threads" in threads:
        used = {threads.get("llama_n_threads"), threads.get("llama_n_threads_batch")}
        return "llama.cpp", used.pop() if len(used) == 1 else sorted(used, key=str)
    return "torch", threads.get("torch_num_threads")


def _cache_state(fraction: float | None) -> str:
    if fraction is None:
        return "unknown"
    return "warm" if fraction >= 0.99 else "cold" if fraction <= 0.01 else "partial"
