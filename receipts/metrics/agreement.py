"""Judged equivalence: the judge's verdict grammar, and how far a judge agrees with human raters.

A judge model reads two texts and must end its reply with one line, exactly
``VERDICT: EQUIVALENT`` or ``VERDICT: DIFFERENT`` (`parse_verdict`); anything else is ``unparseable``,
which never counts as agreement. The judge's agreement with human labels on a pack's validation sample
is Cohen's kappa (`cohen_kappa`, vectorised over bootstrap resamples; equal to
``sklearn.metrics.cohen_kappa_score`` with ``labels=VERDICTS``, which the tests hold it to) with a
paired-bootstrap CI (`kappa_estimate`). No numpy-free fallback and no sklearn at verify time: the kernel
re-derives kappa with this one implementation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from receipts.metrics.uncertainty import DEFAULT_RESAMPLES, SMALL_N, bootstrap_indices

__all__ = [
    "RAW_CAP",
    "VERDICTS",
    "KappaEstimate",
    "Verdict",
    "cap_raw",
    "cohen_kappa",
    "kappa_estimate",
    "parse_verdict",
]

Verdict = Literal["equivalent", "different", "unparseable"]
VERDICTS: tuple[Verdict, ...] = ("equivalent", "different", "unparseable")
"""Every verdict, in the order the kappa's confusion matrix uses."""

RAW_CAP = 2000
"""Characters of a judge's raw reply kept in the examples log: its tail, where the verdict line is."""

_VERDICT_LINE = re.compile(r"VERDICT: (EQUIVALENT|DIFFERENT)")


def parse_verdict(raw: str, *, truncated: bool = False) -> Verdict:
    """The verdict on the last non-blank line: exactly ``VERDICT: EQUIVALENT`` or ``VERDICT: DIFFERENT``.

    Only the judge's own last line counts: a verdict quoted earlier (an output asking the judge to say
    EQUIVALENT) is ignored. ``truncated`` says ``raw`` is a tail cut by `cap_raw`: its first line may be
    the end of a longer line, so it is dropped before reading.
    """
    lines = raw.splitlines()
    if truncated:
        lines = lines[1:]
    last = next((line for line in reversed(lines) if line.strip()), None)
    if last is None:
        return "unparseable"
    found = _VERDICT_LINE.fullmatch(last.strip())
    return "unparseable" if found is None else "equivalent" if found.group(1) == "EQUIVALENT" else "different"


def cap_raw(raw: str) -> tuple[str, bool]:
    """The reply as logged: at most the last `RAW_CAP` characters, and whether it was cut.

    `parse_verdict` of the capped text (with its flag) equals `parse_verdict` of the whole reply: a cut
    drops the first, partial line, and a last line longer than the cap was no verdict line anyway.
    """
    if len(raw) <= RAW_CAP:
        return raw, False
    return raw[-RAW_CAP:], True


def _codes(labels: Sequence[str]) -> npt.NDArray[np.int64]:
    index: dict[str, int] = {v: i for i, v in enumerate(VERDICTS)}
    try:
        return np.array([index[label] for label in labels], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"unknown label {exc.args[0]!r}; labels are {', '.join(VERDICTS)}") from None


def _kappa_rows(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Kappa of each row pair of ``(R, n)`` code arrays (NaN where chance agreement is 1)."""
    k = len(VERDICTS)
    n = a.shape[-1]
    observed = np.mean(a == b, axis=-1)
    pa = np.stack([np.mean(a == c, axis=-1) for c in range(k)], axis=-1)
    pb = np.stack([np.mean(b == c, axis=-1) for c in range(k)], axis=-1)
    expected = np.sum(pa * pb, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1.0 - expected)
    kappa = np.where(np.isclose(expected, 1.0, rtol=0.0, atol=1e-12), np.nan, kappa)
    return kappa if n else np.full(a.shape[:-1], np.nan)


def cohen_kappa(human: Sequence[str], judge: Sequence[str]) -> float | None:
    """Cohen's kappa between two raters' labels (`VERDICTS`); ``None`` when undefined (chance agreement 1).

    Raises:
        ValueError: different lengths, no labels, or a label outside `VERDICTS`.
    """
    if len(human) != len(judge) or not human:
        raise ValueError(f"needs two equally long, non-empty label lists ({len(human)} vs {len(judge)})")
    value = float(_kappa_rows(_codes(human)[None, :], _codes(judge)[None, :])[0])
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class KappaEstimate:
    """Kappa and raw agreement with 95% paired-bootstrap percentile intervals (None: undefined)."""

    kappa: float | None
    kappa_ci95: tuple[float | None, float | None]
    agreement: float
    agreement_ci95: tuple[float, float]
    n: int
    undefined_resamples: int

    @property
    def small_n(self) -> bool:
        """Fewer than `SMALL_N` rated pairs."""
        return self.n < SMALL_N

    def as_json(self) -> dict[str, Any]:
        """The certificate's numbers as results.json records them (six decimals)."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(float(x), 6)

        return {
            "kappa": {"value": r(self.kappa), "ci95": [r(v) for v in self.kappa_ci95]},
            "agreement": {"value": r(self.agreement), "ci95": [r(v) for v in self.agreement_ci95]},
            "n": self.n,
            "small_n": self.small_n,
            "undefined_resamples": self.undefined_resamples,
        }


def kappa_estimate(
    human: Sequence[str], judge: Sequence[str], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> KappaEstimate:
    """Kappa and agreement of ``judge`` with ``human`` over rated pairs, with paired-bootstrap CIs.

    Every resample draws the same pairs for both raters (`bootstrap_indices`, ``seed``). Resamples where
    kappa is undefined (every label alike) are left out of its interval and counted; the interval is
    ``None`` when more than 5% of resamples are undefined (too unstable to bound).

    Raises:
        ValueError: as `cohen_kappa`, or fewer than 1,000 resamples.
    """
    value = cohen_kappa(human, judge)
    a, b = _codes(human), _codes(judge)
    index = bootstrap_indices(len(a), n_resamples=n_resamples, seed=seed)
    kappas = _kappa_rows(a[index], b[index])
    agree = np.mean(a[index] == b[index], axis=-1)
    defined = kappas[~np.isnan(kappas)]
    undefined = int(kappas.size - defined.size)
    if defined.size and undefined <= 0.05 * kappas.size:
        low, high = (float(x) for x in np.percentile(defined, [2.5, 97.5]))
        kappa_ci: tuple[float | None, float | None] = (low, high)
    else:
        kappa_ci = (None, None)
    a_low, a_high = (float(x) for x in np.percentile(agree, [2.5, 97.5]))
    return KappaEstimate(value, kappa_ci, float(np.mean(a == b)), (a_low, a_high), len(a), undefined)
