"""``max_usable_context``: the largest prompt that fits both the RAM and the TTFT budget (DESIGN §8).

Each length is one probe in a fresh worker process; the search doubles from the bench's prompt length,
then bisects, and records every probe with what limited it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from runner.bench.plan import BenchConfig

__all__ = ["search_context"]


def search_context(
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
