"""Every derived number of a footprint, from its raw samples and recorded facts (bench writes, verify checks).

``receipts bench`` measures (in ``runner.bench``) and records; the arithmetic from those records to the
numbers of the footprint lives here, so ``receipts verify`` recomputes them with the runner's own code
(DESIGN §11: numbers re-derive).

Derived (recomputed by `derive_footprint`, checked by `rederive_footprint`):

- each measured point's ``calls`` (the number of calls sampled) and ``metrics``: the statistics
  (`receipts.metrics.latency.summarize`: n, mean, stdev, min, max, p50/p90/p95/p99 or null with the
  reason, the median's bootstrap CI with ``settings.seed``) of TTFT, TPOT, e2e, pooled inter-token
  latency, prefill and decode tok/s from ``samples.token_times_s`` and ``samples.e2e_s``, of
  ``samples.tokenize_s``, and ``throughput_rps``/``output_tps`` (calls x concurrency / model seconds);
- each point's ``roofline_decode_tps`` (bandwidth / resident weights x concurrency), ``roofline_fraction``
  (decode p50 x concurrency / roofline) and ``null_reasons``; its ``energy`` statistics (from
  ``samples.energy_j`` when a counter measured them, or ``settings.watts`` x e2e);
- ``bandwidth.bytes_per_s_used`` (mean of before and after) and ``bandwidth.drift``;
- ``summary``: the first point's headline (p50s, throughput, roofline fraction, and its memory and load
  facts copied), ``machine_seconds_per_1k_calls`` (1000 / throughput), ``cost_per_1k_calls``
  (price per hour x machine seconds / 3600), ``max_usable_context``, ``by_quant`` (each point's headline)
  and the summary's ``null_reasons``.

Recorded facts (measurements, taken as signed): the samples themselves, ``duration_s``, load time, peak
RSS/VRAM, resident weight bytes, the bandwidth measurements, the context search's probes and value, host
steal and swap, the environment fingerprint, and the verdicts (their inputs, such as the new tokens each
call made, stay in the worker).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from receipts.derive import differences
from receipts.metrics.latency import call_metrics, summarize

__all__ = [
    "MAX_POINTS",
    "MAX_SAMPLES",
    "bandwidth",
    "derive_footprint",
    "energy",
    "headline",
    "point_metrics",
    "rederive_footprint",
    "roofline",
    "summary",
]

MAX_POINTS = 1_000
MAX_SAMPLES = 1_000_000
"""What `rederive_footprint` computes at most: points, and raw sample values over all points together.

Every series gets a 2,000-resample median CI, so the time goes with the samples: measured on a shared
2-core machine, 1,050 (one default point: 30 calls x 32 tokens) re-derive in 0.2 s, 35,000 in 3.7 s,
~990,000 in 81 s (one point) or 88 s (900 default points). Minutes at worst, never hours.
"""

Json = Mapping[str, Any]


def point_metrics(
    samples: Json, *, prompt_tokens: int, new_tokens: int, concurrency: int, seed: int
) -> dict[str, Any]:
    """Statistics of every per-call series (TTFT, TPOT, e2e, ITL, prefill/decode tok/s, tokenize time)."""
    calls = [
        call_metrics(0.0, times, e2e, prompt_tokens=prompt_tokens, batch=concurrency)
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
    metrics: dict[str, Any] = {name: summarize(values, seed=seed) for name, values in series.items()}
    model_time = sum(series["e2e_s"])
    rps = concurrency * len(calls) / model_time if model_time > 0 else None
    metrics["throughput_rps"] = rps
    metrics["output_tps"] = rps * new_tokens if rps is not None else None
    return metrics


def roofline(
    metrics: Json, *, weights_bytes: int, bandwidth_bps: float | None, concurrency: int, device: str
) -> dict[str, Any]:
    """``roofline_decode_tps``, ``roofline_fraction`` and the point's ``null_reasons``."""
    ceiling = bandwidth_bps / weights_bytes * concurrency if bandwidth_bps and weights_bytes else None
    decode_p50 = metrics["decode_tps"]["p50"]
    aggregate = decode_p50 * concurrency if decode_p50 is not None else None
    null_reasons = {
        "roofline_decode_tps": None if ceiling else "memory bandwidth not measured",
        "peak_vram_bytes": "device cpu: no GPU memory used" if device == "cpu" else None,
        "roofline_fraction": None
        if aggregate is not None
        else metrics["decode_tps"]["null_reasons"].get("p50", "no decode samples"),
    }
    return {
        "roofline_decode_tps": ceiling,
        "roofline_fraction": aggregate / ceiling if ceiling and aggregate is not None else None,
        "null_reasons": {k: v for k, v in null_reasons.items() if v},
    }


def energy(
    samples: Json, *, source: str | None, watts: float | None, concurrency: int, seed: int
) -> dict[str, Any]:
    """Joules per call: measured (``source`` rapl or nvml), estimated from ``watts``, or unavailable."""
    measured = [x for x in samples.get("energy_j", []) if x is not None]
    if source in ("rapl", "nvml") and measured:
        stats = summarize(measured, seed=seed)
        return {
            "status": "measured",
            "source": source,
            "joules_per_call": stats,
            "joules_per_request_p50": stats["p50"] / concurrency if stats["p50"] is not None else None,
        }
    if watts is not None:
        stats = summarize([watts * e for e in samples["e2e_s"]], seed=seed)
        return {
            "status": "estimated",
            "source": f"--watts {watts} x e2e time",
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


def bandwidth(before: float | None, after: float | None) -> tuple[float | None, float | None]:
    """The bandwidth the rooflines use (the mean of before and after, or the one measured) and the drift."""
    used = (before + after) / 2 if before and after else before or after
    drift = abs(after / before - 1) if before and after else None
    return used, drift


def headline(entry: Json) -> dict[str, Any]:
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


def summary(
    points: Sequence[Json],
    *,
    context: Json,
    price_per_hour: float | None,
    currency: str | None,
    device: str,
    valid: bool,
) -> dict[str, Any]:
    """The headline: the first point's figures, context, cost per 1k calls, verdict, and each point's row."""
    out = headline(points[0])
    rps = out["throughput_rps"]
    machine_seconds = 1000 / rps if rps else None
    out.update(
        max_usable_context=context.get("value"),
        machine_seconds_per_1k_calls=machine_seconds,
        cost_per_1k_calls=(
            price_per_hour * machine_seconds / 3600
            if price_per_hour is not None and machine_seconds is not None
            else None
        ),
        currency=currency if price_per_hour is not None else None,
        verdict="VALID" if valid else "INVALID",
        by_quant={p["id"]: headline(p) for p in points},
    )
    out["null_reasons"] = _null_reasons(out, points[0], context, device)
    return out


_P50_SERIES = (
    ("ttft_p50_s", "ttft_s"),
    ("tpot_p50_s", "tpot_s"),
    ("e2e_p50_s", "e2e_s"),
    ("decode_tps_p50", "decode_tps"),
    ("prefill_tps_p50", "prefill_tps"),
)


def _null_reasons(out: Json, head: Json, context: Json, device: str) -> dict[str, str]:
    """Why each null figure of the summary is null."""
    reasons: dict[str, str | None] = {
        "cost_per_1k_calls": "no --price-per-hour given" if out["cost_per_1k_calls"] is None else None,
        "currency": "no --price-per-hour given" if out["currency"] is None else None,
        "peak_vram_bytes": "device cpu: no GPU memory used" if device == "cpu" else None,
        "max_usable_context": context.get("null_reason") if context.get("value") is None else None,
        "machine_seconds_per_1k_calls": None
        if out["machine_seconds_per_1k_calls"]
        else "no throughput measured",
    }
    if head["status"] != "ok":
        for key in ("ttft_p50_s", "tpot_p50_s", "decode_tps_p50", "throughput_rps"):
            if out.get(key) is None:
                reasons[key] = f"the {head['id']} point: {head['status']}"
    else:
        for key, name in _P50_SERIES:
            if out.get(key) is None:
                reasons[key] = f"{head['id']}: {head['metrics'][name]['null_reasons'].get('p50')}"
    return {key: why for key, why in reasons.items() if why}


def _derived_point(point: Json, settings: Json, device: str, bandwidth_bps: float | None) -> dict[str, Any]:
    """A point with its derived fields recomputed in place (an unmeasured point has none)."""
    if point["status"] != "ok":
        return dict(point)
    samples, concurrency, seed = point["samples"], point["concurrency"], _seed(settings)
    metrics = point_metrics(
        samples,
        prompt_tokens=settings["prompt_tokens"],
        new_tokens=settings["new_tokens"],
        concurrency=concurrency,
        seed=seed,
    )
    recorded = point["energy"]
    source = recorded.get("source") if recorded.get("status") == "measured" else None
    ceiling = roofline(
        metrics,
        weights_bytes=point["memory"]["weights_bytes_resident"],
        bandwidth_bps=bandwidth_bps,
        concurrency=concurrency,
        device=device,
    )
    return {
        **point,
        "calls": len(samples["e2e_s"]),
        "metrics": metrics,
        **ceiling,
        "energy": energy(
            samples, source=source, watts=settings.get("watts"), concurrency=concurrency, seed=seed
        ),
    }


def _seed(settings: Json) -> int:
    seed = settings["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise ValueError(f"settings.seed is {seed!r}, not a whole number below 2**64")
    return seed


def derive_footprint(document: Json) -> dict[str, Any]:
    """The footprint with every derived number (module docstring) recomputed from its records.

    Keys keep their places, so a footprint ``receipts bench`` wrote comes back equal, key order included.

    Raises:
        KeyError, TypeError, ValueError: the document lacks a record derivation reads, or holds the wrong
            type (a footprint the runner wrote always has them).
    """
    settings, device = document["settings"], document["hardware"]["device"]
    signed_bandwidth = document["bandwidth"]
    used, drift = bandwidth(
        signed_bandwidth["before"]["bytes_per_s"], signed_bandwidth["after"]["bytes_per_s"]
    )
    points = [_derived_point(p, settings, device, used) for p in document["points"]]
    price = settings["price"]
    return {
        **document,
        "bandwidth": {**signed_bandwidth, "drift": drift, "bytes_per_s_used": used},
        "points": points,
        "summary": summary(
            points,
            context=document["max_usable_context"],
            price_per_hour=price["per_hour"],
            currency=price["currency"],
            device=device,
            valid=document["verdict"]["status"] == "VALID",
        ),
    }


_POINT_DERIVED = ("calls", "metrics", "roofline_decode_tps", "roofline_fraction", "null_reasons", "energy")
_IDENTITY = ("quant", "concurrency", "status")
"""Summary keys that name the point rather than measure it (a hand-made summary may leave them out)."""


def _bound(document: Json) -> None:
    points = document["points"]
    if len(points) > MAX_POINTS:
        raise ValueError(f"{len(points):,} points; re-derivation computes at most {MAX_POINTS:,}")
    total = 0
    for point in points:
        if point["status"] == "ok":
            samples = point["samples"]
            total += len(samples["e2e_s"]) + len(samples["tokenize_s"]) + len(samples.get("energy_j", []))
            total += sum(len(times) for times in samples["token_times_s"])
    if total > MAX_SAMPLES:
        raise ValueError(f"{total:,} raw samples; re-derivation computes at most {MAX_SAMPLES:,}")


def _row_differences(signed: Json, derived: Json, path: str) -> list[str]:
    """A summary row's differences: every key both hold; a number only one side has."""
    found = []
    for key, value in derived.items():
        where = f"{path}.{key}"
        if key in signed:
            found += differences(signed[key], value, where)
        elif isinstance(value, int | float) and not isinstance(value, bool) and key not in _IDENTITY:
            found.append(f"{where}: derived {value!r}, missing from the signed footprint")
    for key, value in signed.items():
        if key not in derived and isinstance(value, int | float) and not isinstance(value, bool):
            found.append(f"{path}.{key}: signed {value!r}, not derived from the samples")
    return found


def rederive_footprint(document: Json) -> list[str]:
    """Every way the signed footprint's derived numbers differ from its records (empty: they agree).

    Each difference names the number and both values (``points[0].metrics.ttft_s.p50: signed 0.21,
    re-derived 0.25``), numbers within `receipts.derive.TOLERANCE`. A summary may leave out a number or
    the words explaining a null (a hand-made footprint does); it may not state one the records do not give.

    Raises:
        KeyError, TypeError, ValueError: the document lacks a record derivation reads, or holds more than
            `MAX_POINTS` points or `MAX_SAMPLES` samples.
    """
    _bound(document)
    derived = derive_footprint(document)
    found = [
        d
        for key in ("bytes_per_s_used", "drift")
        for d in differences(document["bandwidth"].get(key), derived["bandwidth"][key], f"bandwidth.{key}")
    ]
    for i, (signed, point) in enumerate(zip(document["points"], derived["points"], strict=True)):
        if point["status"] == "ok":
            for key in _POINT_DERIVED:
                found += differences(signed.get(key), point[key], f"points[{i}].{key}")
    signed_summary, derived_summary = document["summary"], derived["summary"]
    found += _row_differences(
        {k: v for k, v in signed_summary.items() if k != "by_quant"},
        {k: v for k, v in derived_summary.items() if k != "by_quant"},
        "summary",
    )
    signed_rows, rows = signed_summary["by_quant"], derived_summary["by_quant"]
    for name in sorted(set(signed_rows) | set(rows)):
        if name not in rows:
            found.append(f"summary.by_quant.{name}: signed, but no point has that id")
        elif name not in signed_rows:
            found.append(f"summary.by_quant.{name}: point {name} missing from the signed summary")
        else:
            found += _row_differences(signed_rows[name], rows[name], f"summary.by_quant.{name}")
    return found
