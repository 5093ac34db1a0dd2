"""Latency statistics of `receipts bench` (DESIGN §8): nearest-rank percentiles and the median's CI.

Percentiles are nearest-rank (the ``k = ceil(p/100 · N)``-th smallest sample, 1-based), and one is
published only when there are enough samples for it to mean something (MLPerf LoadGen's rule, as in
DESIGN §8): p50 needs N ≥ 11, p90 64, p95 130, p99 662; below that the value is ``null`` with the reason
``insufficient_samples``. The median also gets a 95% percentile-bootstrap confidence interval.

The bootstrap is the one ``random.Random(seed)`` gives (``choices`` then ``statistics.median``, resample
after resample), computed with numpy from the same Mersenne Twister stream: the same draws, the same
medians, to the bit, at a fraction of the time (`bootstrap_median_ci`). ``receipts bench`` writes these
numbers and ``receipts verify`` recomputes them with this code (`receipts.footprint`).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "MIN_SAMPLES",
    "bootstrap_median_ci",
    "call_metrics",
    "nearest_rank",
    "summarize",
]

MIN_SAMPLES = {"p50": 11, "p90": 64, "p95": 130, "p99": 662}
"""The fewest samples each percentile is published with (DESIGN §8)."""

BOOTSTRAP_RESAMPLES = 2000
"""Resamples of every median CI: fixed here, never read from a document."""

_CHUNK = 4_000_000
"""Draws held in memory at once by the bootstrap (32 MB of float64)."""


def nearest_rank(samples: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile: the ``ceil(percent/100 · N)``-th smallest sample (N ≥ 1).

    Raises:
        ValueError: no samples, or ``percent`` outside (0, 100].
    """
    if not samples:
        raise ValueError("no samples")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    ordered = sorted(samples)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _medians(values: np.ndarray[Any, Any], stream: np.random.RandomState, resamples: int) -> list[float]:
    """Each resample's median, the draws taken from ``stream`` as ``random.choices`` takes them."""
    n = len(values)
    rows = max(1, _CHUNK // n)
    middle = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
    medians: list[float] = []
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        # random.choices: population[floor(random() * n)], random() being MT19937's 53-bit double
        picks = values[np.floor(stream.random_sample((count, n)) * float(n)).astype(np.intp)]
        part = np.partition(picks, middle, axis=1)
        if n % 2:
            medians += part[:, middle[0]].tolist()
        else:  # statistics.median: (data[i - 1] + data[i]) / 2
            medians += ((part[:, middle[0]] + part[:, middle[1]]) / 2).tolist()
    return medians


def bootstrap_median_ci(
    samples: Sequence[float], *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile-bootstrap CI of the median (``None`` below 2 samples). Deterministic for a seed.

    Equal, bit for bit, to sorting ``statistics.median(rng.choices(samples, k=n))`` over ``resamples``
    rounds of ``rng = random.Random(seed)`` (the test holds the two together).
    """
    if len(samples) < 2:
        return None
    state = random.Random(seed).getstate()[1]  # noqa: S311 - resampling, not secrets
    stream = np.random.RandomState()
    stream.set_state(("MT19937", np.array(state[:-1], dtype=np.uint32), state[-1], 0, 0.0))
    medians = sorted(_medians(np.asarray(samples, dtype=np.float64), stream, resamples))
    tail = (1 - level) / 2
    lo = medians[max(0, math.floor(tail * resamples))]
    hi = medians[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return lo, hi


def summarize(samples: Sequence[float], *, seed: int = 0) -> dict[str, Any]:
    """n, mean, stdev, min, max, p50/p90/p95/p99 (or ``null`` + reason) and the median's 95% CI."""
    values = [float(x) for x in samples]
    out: dict[str, Any] = {"n": len(values)}
    if not values:
        out.update(dict.fromkeys(("mean", "stdev", "min", "max", *MIN_SAMPLES, "median_ci95")))
        out["null_reasons"] = {k: "no_samples" for k in ("mean", "stdev", "min", "max", *MIN_SAMPLES)}
        out["null_reasons"]["median_ci95"] = "no_samples"
        return out
    reasons: dict[str, str] = {}
    out["mean"] = statistics.fmean(values)
    out["stdev"] = statistics.stdev(values) if len(values) > 1 else None
    if out["stdev"] is None:
        reasons["stdev"] = "insufficient_samples: 1 < 2"
    out["min"], out["max"] = min(values), max(values)
    ordered = sorted(values)
    for name, need in MIN_SAMPLES.items():
        if len(values) >= need:
            out[name] = ordered[max(1, math.ceil(float(name[1:]) / 100 * len(ordered))) - 1]
        else:
            out[name] = None
            reasons[name] = f"insufficient_samples: {len(values)} < {need}"
    ci = bootstrap_median_ci(values, seed=seed)
    out["median_ci95"] = list(ci) if ci else None
    if ci is None:
        reasons["median_ci95"] = "insufficient_samples: 1 < 2"
    out["null_reasons"] = reasons
    return out


def call_metrics(
    start: float, token_times: Sequence[float], end: float, *, prompt_tokens: int, batch: int
) -> dict[str, Any]:
    """The per-call numbers of DESIGN §8 from one greedy call's clock readings.

    ``start`` is the generate entry, ``token_times[i]`` the moment new token ``i`` (0-based) of every
    row existed, ``end`` the generate return. With G = len(token_times):
    ``ttft = t[0] - start``; ``tpot = (e2e - ttft)/(G - 1)`` (``None`` for G = 1);
    ``itl = diff(t)``; ``prefill_tps = batch · prompt_tokens / ttft``; ``decode_tps = 1/tpot`` per row.

    Raises:
        ValueError: the call produced no tokens.
    """
    if not token_times:
        raise ValueError("a call produced no tokens")
    g = len(token_times)
    e2e = end - start
    ttft = token_times[0] - start
    tpot = (e2e - ttft) / (g - 1) if g > 1 else None
    return {
        "e2e_s": e2e,
        "ttft_s": ttft,
        "tpot_s": tpot,
        "itl_s": [b - a for a, b in itertools.pairwise(token_times)],
        "prefill_tps": batch * prompt_tokens / ttft if ttft > 0 else None,
        "decode_tps": 1 / tpot if tpot else None,
    }
