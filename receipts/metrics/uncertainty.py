"""Uncertainty (DESIGN §4): paired bootstrap CIs over items, small-n flags, McNemar's test."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from receipts.metrics.arrays import FloatArray, binary_array, float_array, same_length

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "MCNEMAR_EXACT_BELOW",
    "SMALL_N",
    "Estimate",
    "McNemar",
    "Replicates",
    "Statistic",
    "bootstrap_indices",
    "bootstrap_replicates",
    "mcnemar",
    "paired_bootstrap",
    "percentile_estimate",
    "role_difference",
    "role_mean",
]


SMALL_N = 30
"""Slices with fewer items than this are flagged ``small_n``."""

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0

Statistic = Callable[[Mapping[str, FloatArray]], Any]
"""Maps role -> scores to a value, reducing over the *last* axis (so it works on ``(R, n)`` resamples)."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap percentile interval and bootstrap standard error.

    ``se`` is the standard deviation of the bootstrap replicates (``ddof=1``): what the gate's minimum
    detectable effect is computed from (`receipts.gate.MDE_Z`); NaN when a replicate is undefined.
    """

    value: float
    low: float
    high: float
    n: int
    small_n: bool
    se: float = math.nan

    def contains(self, x: float) -> bool:
        """Whether ``low <= x <= high``."""
        return self.low <= x <= self.high


def role_mean(role: str) -> Statistic:
    """Statistic: the mean score of ``role``."""
    return lambda s: np.mean(s[role], axis=-1)


def role_difference(a: str, b: str) -> Statistic:
    """Statistic: mean of ``a`` minus mean of ``b`` (e.g. teacher - base), on the same items."""
    return lambda s: np.mean(s[a], axis=-1) - np.mean(s[b], axis=-1)


def bootstrap_indices(
    n: int, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> npt.NDArray[np.int64]:
    """The ``(n_resamples, n)`` resampled item indices, shared by every role.

    Exactly ``np.random.Generator(np.random.PCG64(seed)).integers(0, n, size=(n_resamples, n))``.

    Raises:
        ValueError: ``n < 1`` or fewer than 1,000 resamples (DESIGN §4).
    """
    if n < 1:
        raise ValueError("needs at least one item")
    if n_resamples < DEFAULT_RESAMPLES:
        raise ValueError(f"at least {DEFAULT_RESAMPLES} resamples are required, got {n_resamples}")
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.integers(0, n, size=(n_resamples, n), dtype=np.int64)


@dataclass(frozen=True)
class Replicates:
    """A statistic on the original items (``value``) and on each resample (``replicates``, NaN: undefined)."""

    value: float
    replicates: FloatArray
    n: int


def bootstrap_replicates(
    scores: Mapping[str, npt.ArrayLike],
    statistics: Mapping[str, Statistic],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Replicates]:
    """Each statistic on the original scores and on the same paired resamples of every role.

    The resamples are :func:`bootstrap_indices` (``seed``): every statistic of one call, and every call
    with the same seed and n, sees the same items, so a ratio's replicates pair with its parts'.

    Raises:
        ValueError: no roles, roles of different lengths, NaN scores or too few resamples.
    """
    arrays = {role: float_array(values, role) for role, values in scores.items()}
    if not arrays:
        raise ValueError("needs at least one role")
    n = same_length(*arrays.values())
    index = bootstrap_indices(n, n_resamples=n_resamples, seed=seed)
    resampled = {role: values[index] for role, values in arrays.items()}
    return {
        name: Replicates(float(stat(arrays)), np.asarray(stat(resampled), dtype=np.float64), n)
        for name, stat in statistics.items()
    }


def percentile_estimate(found: Replicates, confidence: float = 0.95) -> Estimate:
    """The percentile interval and standard error of a statistic's replicates (NaN if any is NaN).

    Raises:
        ValueError: a confidence outside (0, 1).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    tail = round(50.0 * (1.0 - confidence), 10)
    low, high = np.percentile(found.replicates, [tail, 100.0 - tail])
    se = float(np.std(found.replicates, ddof=1)) if found.replicates.size > 1 else math.nan
    return Estimate(found.value, float(low), float(high), found.n, found.n < SMALL_N, se)


def paired_bootstrap(
    scores: Mapping[str, npt.ArrayLike],
    statistics: Mapping[str, Statistic] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> dict[str, Estimate]:
    """Percentile-bootstrap CIs over items, paired across roles.

    One index matrix from :func:`bootstrap_indices` resamples every role's per-item scores (so the
    same items are drawn for teacher, base and student); each statistic is evaluated on the original
    scores (the point value) and on all resamples at once; the interval is
    ``np.percentile(replicates, [50(1-confidence), 100 - 50(1-confidence)])`` (numpy's default linear
    interpolation) — 2.5 and 97.5 for 95%; ``se`` is the replicates' standard deviation. ``small_n`` is
    ``n < 30``. By default the statistics are the mean of each role. A statistic that is undefined on
    some resample must return NaN there; the interval is then NaN.

    Raises:
        ValueError: no roles, roles of different lengths, NaN scores, a bad confidence or too few
            resamples.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    stats = statistics if statistics is not None else {role: role_mean(role) for role in scores}
    found = bootstrap_replicates(scores, stats, n_resamples=n_resamples, seed=seed)
    return {name: percentile_estimate(rep, confidence) for name, rep in found.items()}


MCNEMAR_EXACT_BELOW = 25
"""McNemar is exact (binomial) when the discordant count b + c is below this, the usual rule of thumb."""


@dataclass(frozen=True)
class McNemar:
    """McNemar's test on paired binary scores.

    ``only_a``/``only_b``: items only a (only b) got right. ``method`` is ``exact`` (statistic =
    min(only_a, only_b)) or ``chi2`` (Edwards' continuity-corrected chi-square, 1 df).
    """

    statistic: float
    p_value: float
    method: Literal["exact", "chi2"]
    only_a: int
    only_b: int


def mcnemar(a_correct: npt.ArrayLike, b_correct: npt.ArrayLike) -> McNemar:
    """McNemar's test of whether two models' paired 0/1 scores differ.

    With discordant counts b = only_a, c = only_b and d = b + c: if d < 25, the exact two-sided binomial
    test ``p = min(1, 2 * P[X <= min(b, c)])``, X ~ Binomial(d, 1/2) (= ``scipy.stats.binomtest``;
    d = 0 gives p = 1); otherwise ``chi2 = (|b - c| - 1)^2 / d`` with ``p = P[chi2_1 >= chi2]``
    (= ``scipy.stats.chi2.sf``; the statsmodels ``mcnemar(exact=False, correction=True)`` formula).

    Raises:
        ValueError: mismatched/empty or non-binary inputs.
    """
    a, b = binary_array(a_correct, "a_correct"), binary_array(b_correct, "b_correct")
    same_length(a, b)
    only_a, only_b = int(np.sum((a == 1) & (b == 0))), int(np.sum((a == 0) & (b == 1)))
    d = only_a + only_b
    if d < MCNEMAR_EXACT_BELOW:
        k = min(only_a, only_b)
        tail = sum(math.comb(d, i) for i in range(k + 1))
        return McNemar(float(k), min(1.0, 2 * tail / 2**d), "exact", only_a, only_b)
    statistic = (abs(only_a - only_b) - 1) ** 2 / d
    # chi-square survival with 1 degree of freedom: P[Z^2 >= x] = erfc(sqrt(x / 2))
    return McNemar(statistic, math.erfc(math.sqrt(statistic / 2)), "chi2", only_a, only_b)
