"""The footprint document (schema/footprint) from what a bench measured: points, verdict, summary.

Everything here is arithmetic over the measurements a `runner.bench.driver` run collected; nothing is
measured. The derived numbers (statistics, rooflines, bandwidth used and drift, the summary) come from
`receipts.footprint`, the code ``receipts verify`` re-derives them with. The verdict is VALID only when
no point and no host-level check (bandwidth drift between the before and after measurements, a run below
the minimums) has an ``invalid`` reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from receipts import footprint as numbers
from receipts.digests import sha256_file
from runner.backends.base import ModelIdentity
from runner.bench.host import hw_class, hw_label, mem_total_bytes
from runner.bench.plan import MIN_CALLS, MIN_DURATION_S, BenchConfig
from runner.bench.points import point, reason

__all__ = ["DRIFT_LIMIT", "FORMAT", "Measurements", "footprint", "summary_lines"]

FORMAT = "receipts.footprint/v1"
DRIFT_LIMIT = 0.10  # relative memory-bandwidth change, before vs after, above which the host was noisy


@dataclass(frozen=True)
class Measurements:
    """What one bench collected: the model's files, the host, bandwidth, each point's raw result."""

    config: BenchConfig
    identity: ModelIdentity
    kind: str
    source: Path
    source_files: list[Path]
    load_files: list[Path]
    fingerprint: dict[str, Any]
    bandwidth_before: dict[str, Any]
    bandwidth_after: dict[str, Any]
    raw_points: list[tuple[str, int, dict[str, Any]]]
    context: dict[str, Any]
    created: str


def footprint(m: Measurements) -> dict[str, Any]:
    """The footprint document of a bench (not yet validated against its schema)."""
    config = m.config
    bandwidth_bps, drift = numbers.bandwidth(
        m.bandwidth_before.get("bytes_per_s"), m.bandwidth_after.get("bytes_per_s")
    )
    points = [point(raw, config, quant, c, bandwidth_bps) for quant, c, raw in m.raw_points]
    reasons = _reasons(points, drift, config, m.context)
    valid = not any(r["severity"] == "invalid" for r in reasons)
    fp = dict(m.fingerprint, threads_used=config.threads)
    for runtime in ("torch", "llama_cpp"):  # as the worker read it
        found = next((p.get(runtime) for p in points if p.get(runtime)), None)
        if found:
            fp[runtime] = found
    return {
        "format": FORMAT,
        "created": m.created,
        "model": _model(m),
        "hardware": {
            "hw_class": hw_class(fp),
            "label": hw_label(fp),
            "device": config.device,
            "fingerprint": fp,
        },
        "settings": _settings(config),
        "bandwidth": {
            "before": m.bandwidth_before,
            "after": m.bandwidth_after,
            "drift": drift,
            "bytes_per_s_used": bandwidth_bps,
        },
        "points": points,
        "max_usable_context": m.context,
        "verdict": {"status": "VALID" if valid else "INVALID", "reasons": reasons},
        "summary": numbers.summary(
            points,
            context=m.context,
            price_per_hour=config.price_per_hour,
            currency=config.currency,
            device=config.device,
            valid=valid,
        ),
    }


def _reasons(
    points: list[dict[str, Any]], drift: float | None, config: BenchConfig, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every point's reasons, then the bench's own: bandwidth drift, a short run, no usable context."""
    reasons = [r for p in points for r in p["verdict"]["reasons"]]
    if drift is not None and drift > DRIFT_LIMIT:
        detail = f"memory bandwidth moved {drift:.1%} between before and after > {DRIFT_LIMIT:.0%}"
        reasons.append(reason("bandwidth_drift", detail))
    if config.short:
        detail = (
            f"run below the minimums (≥ {MIN_DURATION_S:.0f} s, ≥ {MIN_CALLS} calls, ≥ 3 warm-ups per point)"
        )
        reasons.append(reason("short_run", detail))
    if context.get("value") is None:
        reasons.append(reason("max_usable_context", str(context.get("null_reason")), severity="info"))
    return reasons


def _model(m: Measurements) -> dict[str, Any]:
    """The model section: identity, the files as given (with digests) and the bytes actually loaded."""
    return {
        "spec": m.config.spec,
        "digest": m.identity.digest,
        "kind": m.kind,
        "params": m.identity.params,
        "file_bytes": sum(p.stat().st_size for p in m.source_files),
        "files": [
            {
                "path": p.name if m.source.is_file() else p.relative_to(m.source).as_posix(),
                "bytes": p.stat().st_size,
                "sha256": sha256_file(p),
            }
            for p in m.source_files
        ],
        "storage_quant": m.identity.storage_quant,
        "tokenizer": m.identity.tokenizer,
        "loaded_from_bytes": sum(p.stat().st_size for p in m.load_files),
        **({"extra": m.identity.extra} if m.identity.extra else {}),
    }


def _settings(config: BenchConfig) -> dict[str, Any]:
    """The settings section: every knob that decided the numbers, with the sources of budgets and prices."""
    priced = config.price_per_hour is not None
    return {
        "quants": list(config.quants),
        "prompt_tokens": config.prompt_tokens,
        "new_tokens": config.new_tokens,
        "concurrency": list(config.concurrency),
        "threads": config.threads,
        "warmups": config.warmups,
        "min_duration_s": config.min_duration_s,
        "min_calls": config.min_calls,
        "short_run": config.short,
        "decoding": "greedy, min_new_tokens = max_new_tokens",
        "ram_budget_bytes": config.ram_budget_bytes or mem_total_bytes(),
        "ram_budget_source": "--ram-budget" if config.ram_budget_bytes else "MemTotal",
        "ttft_budget_s": config.ttft_budget_s,
        "page_cache": config.page_cache,
        "price": {
            "per_hour": config.price_per_hour,
            "currency": config.currency if priced else None,
            "source": "--price-per-hour" if priced else None,
        },
        "watts": config.watts,
        "seed": config.seed,
    }


def summary_lines(document: dict[str, Any]) -> list[str]:
    """What ``receipts bench`` prints about a footprint, as rich markup (file text escaped)."""
    summary, verdict = document["summary"], document["verdict"]
    lines = []
    for row in summary["by_quant"].values():
        name = f"[bold]{escape(row['quant'])}[/bold] c{row['concurrency']}:"
        if row["status"] != "ok":
            lines.append(f"{name} [red]{escape(row['status'])}[/red]")
            continue
        lines.append(
            f"{name} peak RSS {row['peak_rss_bytes'] / 1e9:.2f} GB"
            f" · TTFT p50 {_fmt(row['ttft_p50_s'], '.3f')} s · TPOT p50 {_fmt(row['tpot_p50_s'], '.4f')} s"
            f" · decode {_fmt(row['decode_tps_p50'], '.1f')} tok/s"
            f" · {_fmt(row['throughput_rps'], '.2f')} req/s"
            f" · roofline {_fmt(row['roofline_fraction'], '.0%')}"
        )
    lines.append(
        f"max usable context: {summary['max_usable_context'] or 'n/a'}"
        f" · cost/1k calls: {_fmt(summary['cost_per_1k_calls'], '.4f')} {escape(summary['currency'] or '')}"
        f" · machine-seconds/1k calls {_fmt(summary['machine_seconds_per_1k_calls'], '.1f')}"
    )
    colour = "green" if verdict["status"] == "VALID" else "yellow"
    lines.append(f"verdict: [{colour}]{verdict['status']}[/{colour}]")
    lines += [
        f"  {escape(reason['code'])}: {escape(reason['detail'])}"
        for reason in verdict["reasons"]
        if reason["severity"] == "invalid"
    ]
    return lines


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)
