"""receipts.metrics.latency: the DESIGN §8 definitions worked out by hand, and the bootstrap against Python's.

`bootstrap_median_ci` draws with numpy from the Mersenne Twister state ``random.Random(seed)`` starts in;
it must equal the pure-Python bootstrap bench wrote before (``statistics.median(rng.choices(...))``
resample after resample) to the bit, or signed footprints would stop re-deriving.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import pytest

from receipts.metrics import latency


def python_bootstrap(samples: Sequence[float], seed: int, resamples: int = 2000) -> tuple[float, float]:
    """The bootstrap as bench computed it in pure Python (the reference)."""
    rng = random.Random(seed)
    n = len(samples)
    medians = sorted(statistics.median(rng.choices(samples, k=n)) for _ in range(resamples))
    return medians[max(0, math.floor(0.025 * resamples))], medians[math.ceil(0.975 * resamples) - 1]


def test_nearest_rank_is_the_ceil_rank_sample() -> None:
    samples = list(range(100, 0, -1))  # 100..1, unsorted on purpose
    assert latency.nearest_rank(samples, 50) == 50
    assert latency.nearest_rank(samples, 90) == 90
    assert latency.nearest_rank(samples, 99) == 99
    assert latency.nearest_rank([3.0, 1.0, 2.0], 50) == 2.0  # ceil(1.5) = 2nd smallest
    assert latency.nearest_rank([5.0, 1.0, 4.0, 2.0], 50) == 2.0  # ceil(2.0) = 2nd, no interpolation
    assert latency.nearest_rank([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no samples"):
        latency.nearest_rank([], 50)
    with pytest.raises(ValueError, match="percent must be in"):
        latency.nearest_rank([1.0], 0)


@pytest.mark.parametrize(("name", "need"), [("p50", 11), ("p90", 64), ("p95", 130), ("p99", 662)])
def test_percentiles_need_their_minimum_samples(name: str, need: int) -> None:
    below = latency.summarize([float(i) for i in range(need - 1)])
    assert below[name] is None
    assert below["null_reasons"][name] == f"insufficient_samples: {need - 1} < {need}"
    at = latency.summarize([float(i) for i in range(need)])
    assert at[name] == latency.nearest_rank([float(i) for i in range(need)], float(name[1:]))
    assert name not in at["null_reasons"]


def test_no_samples_and_one_sample_say_why_each_number_is_null() -> None:
    empty = latency.summarize([])
    assert empty["n"] == 0
    assert empty["null_reasons"]["p50"] == "no_samples"
    one = latency.summarize([2.5])
    assert (one["mean"], one["p50"], one["stdev"], one["median_ci95"]) == (2.5, None, None, None)
    assert one["null_reasons"]["median_ci95"] == "insufficient_samples: 1 < 2"


def test_call_metrics_follow_the_design_definitions() -> None:
    # generate entered at t=10.0; tokens at 10.5, 10.6, 10.7, 10.8; returned at 10.85
    m = latency.call_metrics(10.0, [10.5, 10.6, 10.7, 10.8], 10.85, prompt_tokens=100, batch=2)
    assert m["ttft_s"] == pytest.approx(0.5)
    assert m["e2e_s"] == pytest.approx(0.85)
    assert m["tpot_s"] == pytest.approx((0.85 - 0.5) / 3)  # (e2e - ttft)/(G - 1), not mean ITL
    assert m["itl_s"] == pytest.approx([0.1, 0.1, 0.1])
    assert m["prefill_tps"] == pytest.approx(2 * 100 / 0.5)
    assert m["decode_tps"] == pytest.approx(3 / 0.35)
    single = latency.call_metrics(0.0, [0.2], 0.25, prompt_tokens=8, batch=1)
    assert single["tpot_s"] is None
    assert single["decode_tps"] is None
    assert single["itl_s"] == []
    with pytest.raises(ValueError, match="no tokens"):
        latency.call_metrics(0.0, [], 0.25, prompt_tokens=8, batch=1)


def test_bootstrap_ci_of_the_median_covers_about_95_percent() -> None:
    rng = random.Random(7)
    covered = 0
    trials = 200
    for trial in range(trials):
        samples = [rng.gauss(1.0, 0.2) for _ in range(41)]
        lo, hi = latency.bootstrap_median_ci(samples, seed=trial, resamples=400) or (0, 0)
        assert lo <= statistics.median(samples) <= hi
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / trials <= 0.995, covered
    assert latency.bootstrap_median_ci([2.0] * 5) == (2.0, 2.0)
    assert latency.bootstrap_median_ci([1.0]) is None


@pytest.mark.parametrize("n", [2, 3, 30, 31, 130, 931])
@pytest.mark.parametrize("seed", [0, 1, 2**40 + 7])
def test_bootstrap_is_pythons_to_the_bit(n: int, seed: int) -> None:
    rng = random.Random(n * 1000 + seed)
    samples = [rng.lognormvariate(-2.0, 0.5) for _ in range(n)]
    assert latency.bootstrap_median_ci(samples, seed=seed) == python_bootstrap(samples, seed)
    # a resample count that does not fill the last chunk, on a sample that spans several chunks
    assert latency.bootstrap_median_ci(samples, seed=seed, resamples=7) == python_bootstrap(samples, seed, 7)


def test_bootstrap_chunks_draw_the_stream_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [float(i % 17) + i / 1000 for i in range(101)]
    whole = latency.bootstrap_median_ci(samples, seed=3)
    monkeypatch.setattr(latency, "_CHUNK", 250)  # two resamples per chunk
    assert latency.bootstrap_median_ci(samples, seed=3) == whole == python_bootstrap(samples, 3)
