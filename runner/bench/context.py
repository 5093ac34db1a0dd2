"""``max_usable_context``: the largest prompt that fits both the RAM and the TTFT budget (DESIGN §8).

Each length is one probe in a fresh worker process; the search doubles from the bench's prompt length,
then bisects, and records every probe with what limited it. When the TTFT already measured at the bench's
prompt length predicts, with a margin, that even the limit fits, the limit is probed first
(`limit_first`): both RAM and TTFT grow with the prompt, so if it fits no shorter length need be probed
(the demo's fp32 bench: one fresh process instead of four, ~20 s less); if it does not, the search goes on
as without the guess, which cost one probe.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from runner.bench.plan import BenchConfig

__all__ = ["GUESS_MARGIN", "limit_first", "search_context"]

GUESS_MARGIN = 2.0
"""How far under the TTFT budget the limit's predicted TTFT must be to probe it first. The prediction is
linear in the prompt length; measured growth from 128 to 1,024 tokens (2 threads, 2026-12-07) was 7.4x
for SmolLM2-135M in fp32 and 9.9x for its Q4_K_M in llama.cpp (attention grows faster than linearly)."""


def limit_first(ttft_s: float | None, start: int, limit: int, budget_s: float) -> bool:
    """Whether to probe ``limit`` first, from the TTFT measured at ``start`` tokens."""
    if ttft_s is None or not 0 < start < limit:
        return False
    return ttft_s * (limit / start) * GUESS_MARGIN <= budget_s


def search_context(
    probe: Callable[[int], dict[str, Any]],
    start: int,
    limit: int,
    config: BenchConfig,
    *,
    guess_limit: bool = False,
) -> dict[str, Any]:
    """Largest prompt length that fits both budgets: doubling from ``start``, then bisection.

    A length fits when its worker finished (RAM never over budget) with TTFT within budget. Resolution:
    the bracket is closed when ``hi - lo ≤ max(16, lo // 16)``. ``guess_limit``: probe ``limit`` first
    (see `limit_first`); no length is probed twice.
    """
    probes: list[dict[str, Any]] = []
    known: dict[int, bool] = {}

    def fits(length: int) -> bool:
        if length in known:
            return known[length]
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
        known[length] = ok
        return ok

    lo, hi = 0, None
    length = max(1, min(start, limit))
    if guess_limit and fits(limit):
        lo = length = limit
    while lo < limit:
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
