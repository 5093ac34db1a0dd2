"""Quantization fidelity in llama.cpp's terms (issue #21): ``llama-perplexity --kl-divergence``'s statistics.

A quantized model Q is compared with the full-precision model it was made from (the base, e.g. the F16
GGUF) token by token, on the same text, teacher-forced. Per scored token ``t`` (the runner computes these
from both models' logits, `runner.llamacpp.kld`):

- ``kld``: KL(base || Q) of the next-token distributions, ``sum_i p_base(i) (log p_base(i) - log p_Q(i))``
  over the tokens whose base log-probability exceeds -16 (llama-perplexity stores the base's
  log-probabilities as 16-bit steps above ``max - 16`` and sums over the same terms);
- ``delta_p``: ``p_Q(actual next token) - p_base(actual next token)``;
- ``same_top``: whether both models' most likely next token is the same;
- ``nll``, ``nll_base``: each model's negative log-likelihood of the actual next token (the base's read
  from the same 16-bit store: a token more than 16 nats below the base's top one reads as ``top - 16``,
  so ``ln(PPL(Q)/PPL(base))`` and Δp carry llama-perplexity's floor too).

Over all scored tokens, exactly as ``llama-perplexity`` (tools/perplexity/perplexity.cpp at llama.cpp
0c1e570, ``kl_divergence``) reports them:

- ``mean ± unc`` of a per-token value: ``f = sum/n``, ``unc = sqrt((sum2/n - f^2)/(n - 1))`` (0 when that
  variance is not positive; undefined, here ``None``, for n <= 10): the standard error of the mean;
- KLD percentiles: linear interpolation at ``fraction * (n - 1)`` of the sorted values, in float32; the
  median is the middle value (the mean of the two middle ones for even n);
- RMS Δp: ``sqrt(mean(delta_p^2))``, uncertainty ``0.5 / rms * unc(delta_p^2)``;
- same-top rate: ``k / n``, uncertainty ``sqrt(r (1 - r) / (n - 1))``;
- ``ln(PPL(Q)/PPL(base))``: ``mean(nll) - mean(nll_base)``, uncertainty ``sqrt(unc_Q^2 + unc_base^2 - 2 cov)``
  with ``cov = (sum(nll nll_base)/n - mean(nll) mean(nll_base)) / (n - 1)``.

Δp and same-top rates are fractions here (llama-perplexity prints percent). Nothing here reads files or
imports the runner; ``receipts verify`` re-derives a receipt's ``quant_fidelity`` with these functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DELTA_P_PERCENTILES",
    "KLD_PERCENTILES",
    "NllSums",
    "Summary",
    "mean_and_uncertainty",
    "percentile",
    "summarize",
]

KLD_PERCENTILES = {
    "kld_p99_9": 0.999,
    "kld_p99": 0.990,
    "kld_p95": 0.950,
    "kld_p90": 0.900,
    "kld_p10": 0.100,
    "kld_p5": 0.050,
    "kld_p1": 0.010,
    "kld_p0_1": 0.001,
}
"""The KLD percentiles llama-perplexity prints (besides the maximum, median and minimum)."""
DELTA_P_PERCENTILES = {
    "delta_p_p99_9": 0.999,
    "delta_p_p99": 0.990,
    "delta_p_p95": 0.950,
    "delta_p_p90": 0.900,
    "delta_p_p75": 0.750,
    "delta_p_p25": 0.250,
    "delta_p_p10": 0.100,
    "delta_p_p5": 0.050,
    "delta_p_p1": 0.010,
    "delta_p_p0_1": 0.001,
}
"""The Δp percentiles llama-perplexity prints."""

MIN_FOR_UNCERTAINTY = 11
"""llama-perplexity reports an uncertainty only from 11 values on (``count > 10``)."""


@dataclass(frozen=True)
class NllSums:
    """The sums llama-perplexity keeps of each model's negative log-likelihood of the actual next token.

    Attributes:
        nll: sum of the quantized model's ``nll``.
        nll2: sum of its squares.
        nll_base: sum of the base model's ``nll``.
        nll_base2: sum of its squares.
        nll_cross: sum of ``nll * nll_base``.
    """

    nll: float = 0.0
    nll2: float = 0.0
    nll_base: float = 0.0
    nll_base2: float = 0.0
    nll_cross: float = 0.0

    @classmethod
    def of(cls, nll: npt.ArrayLike, nll_base: npt.ArrayLike) -> NllSums:
        """The sums over per-token values (each square taken in float32, as llama-perplexity does)."""
        q = np.asarray(nll, dtype=np.float32)
        b = np.asarray(nll_base, dtype=np.float32)
        if q.shape != b.shape or q.ndim != 1:
            raise ValueError(f"nll {q.shape} and nll_base {b.shape} must be equal-length vectors")
        return cls(
            nll=math.fsum(q.astype(np.float64)),
            nll2=math.fsum((q * q).astype(np.float64)),
            nll_base=math.fsum(b.astype(np.float64)),
            nll_base2=math.fsum((b * b).astype(np.float64)),
            nll_cross=math.fsum((q * b).astype(np.float64)),
        )

    @classmethod
    def total(cls, parts: Iterable[NllSums]) -> NllSums:
        """The sums over several texts (items)."""
        found = list(parts)
        return cls(*(math.fsum(getattr(p, name) for p in found) for name in cls.__dataclass_fields__))

    def as_list(self) -> list[float]:
        """``[nll, nll2, nll_base, nll_base2, nll_cross]`` (how an examples row records them)."""
        return [self.nll, self.nll2, self.nll_base, self.nll_base2, self.nll_cross]


def mean_and_uncertainty(total: float, total2: float, count: int) -> tuple[float, float | None]:
    """llama-perplexity's ``mean_and_uncertainty``: the mean and its standard error (None for n <= 10).

    Raises:
        ValueError: ``count`` is below 1.
    """
    if count < 1:
        raise ValueError("no values")
    mean = total / count
    variance = total2 / count - mean * mean
    if count < MIN_FOR_UNCERTAINTY:
        return mean, None
    return mean, math.sqrt(variance / (count - 1)) if variance > 0 else 0.0


def _covariance(a: float, b: float, ab: float, count: int) -> float:
    if count < 10:
        return 0.0
    return (ab / count - (a / count) * (b / count)) / (count - 1)


def percentile(ordered: npt.NDArray[np.float32], fraction: float) -> float:
    """llama-perplexity's ``percentile`` of ascending float32 values (interpolated, in float32)."""
    if fraction <= 0:
        return float(ordered[0])
    if fraction >= 1:
        return float(ordered[-1])
    at = np.float32(fraction) * np.float32(ordered.size - 1)
    index = int(at)
    weight = at - np.float32(index)
    upper = ordered[min(index + 1, ordered.size - 1)]
    return float((np.float32(1) - weight) * ordered[index] + weight * upper)


def _median(ordered: npt.NDArray[np.float32]) -> float:
    middle = ordered.size // 2
    if ordered.size % 2 == 0:
        return float(np.float32(0.5) * (ordered[middle] + ordered[middle - 1]))
    return float(ordered[middle])


@dataclass(frozen=True)
class Summary:
    """Every statistic of one comparison; `as_dict` gives them under llama-perplexity's names."""

    values: Mapping[str, float | int | None]

    def as_dict(self, *, digits: int | None = None) -> dict[str, float | int | None]:
        """The statistics, each rounded to ``digits`` decimal places when given."""
        if digits is None:
            return dict(self.values)
        return {
            k: v if v is None or isinstance(v, int) else round(float(v), digits)
            for k, v in self.values.items()
        }


def _float32_vector(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: need a non-empty vector of per-token values")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: holds a value that is not a finite number")
    return array


def summarize(kld: npt.ArrayLike, delta_p: npt.ArrayLike, same_top: int, nll: NllSums) -> Summary:
    """llama-perplexity's KL-divergence statistics from per-token ``kld`` and ``delta_p`` values.

    ``same_top`` counts the tokens where both models' top token is the same; ``nll`` holds the sums of
    both models' negative log-likelihoods over the same tokens.

    Raises:
        ValueError: empty or mismatched inputs, a value that is not finite, a count out of range.
    """
    k = np.sort(_float32_vector(kld, "kld"))
    p = np.sort(_float32_vector(delta_p, "delta_p"))
    n = int(k.size)
    if p.size != n:
        raise ValueError(f"{n} kld values but {p.size} delta_p values")
    if isinstance(same_top, bool) or not 0 <= same_top <= n:
        raise ValueError(f"same_top {same_top!r} is not a count of at most {n} tokens")
    k64, p64 = k.astype(np.float64), p.astype(np.float64)
    mean_kld, kld_unc = mean_and_uncertainty(math.fsum(k64), math.fsum(k64 * k64), n)
    squares = (p * p).astype(np.float64)  # llama-perplexity squares the float Δp, then sums in double
    mean_dp, dp_unc = mean_and_uncertainty(math.fsum(p64), math.fsum(squares), n)
    mse, mse_unc = mean_and_uncertainty(math.fsum(squares), math.fsum(squares * squares), n)
    rms = math.sqrt(mse)
    log_q, log_q_unc = mean_and_uncertainty(nll.nll, nll.nll2, n)
    log_b, log_b_unc = mean_and_uncertainty(nll.nll_base, nll.nll_base2, n)
    ratio_unc = None
    if log_q_unc is not None and log_b_unc is not None:
        cov = _covariance(nll.nll, nll.nll_base, nll.nll_cross, n)
        ratio_unc = math.sqrt(max(0.0, log_q_unc**2 + log_b_unc**2 - 2 * cov))
    same = same_top / n
    values: dict[str, float | int | None] = {
        "tokens": n,
        "mean_kld": mean_kld,
        "mean_kld_unc": kld_unc,
        "kld_max": float(k[-1]),
        **{name: percentile(k, f) for name, f in KLD_PERCENTILES.items() if f > 0.5},
        "kld_median": _median(k),
        **{name: percentile(k, f) for name, f in KLD_PERCENTILES.items() if f < 0.5},
        "kld_min": float(k[0]),
        "delta_p_mean": mean_dp,
        "delta_p_mean_unc": dp_unc,
        "delta_p_max": float(p[-1]),
        **{name: percentile(p, f) for name, f in DELTA_P_PERCENTILES.items() if f > 0.5},
        "delta_p_median": _median(p),
        **{name: percentile(p, f) for name, f in DELTA_P_PERCENTILES.items() if f < 0.5},
        "delta_p_min": float(p[0]),
        "delta_p_rms": rms,
        "delta_p_rms_unc": None if mse_unc is None or rms == 0 else 0.5 / rms * mse_unc,
        "same_top_rate": same,
        "same_top_rate_unc": math.sqrt(same * (1 - same) / (n - 1)) if n > 1 else None,
        "ppl": math.exp(log_q),
        "ppl_base": math.exp(log_b),
        "ln_ppl_ratio": log_q - log_b,
        "ln_ppl_ratio_unc": ratio_unc,
    }
    return Summary(values)


def sums_of(record: Mapping[str, Any]) -> NllSums:
    """The `NllSums` of an examples-row record (``nll_sums``: five numbers).

    Raises:
        ValueError: it is not five finite numbers.
    """
    raw = record.get("nll_sums")
    if not isinstance(raw, list) or len(raw) != 5:
        raise ValueError(f"nll_sums is {raw!r}, not five numbers")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in raw):
        raise ValueError(f"nll_sums is {raw!r}, not five finite numbers")
    return NllSums(*(float(v) for v in raw))
