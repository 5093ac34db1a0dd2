"""The latency percentiles a card page shows: p50/p95/p99 where published, why not in words where not.

A footprint publishes a nearest-rank percentile only with enough samples (DESIGN §8: p95 needs 130, p99
662). Per call there is one TTFT and one TPOT, so the default bench (30 calls per point) gives p50 only;
the gaps between consecutive new tokens, pooled over every call (``itl_s``: 30 calls x 31 gaps = 930 at
the defaults), give the per-token p95 and p99. The page shows the signed values; where one is null it
says what it needs and what the run had ("p95 needs ≥ 130 calls; this run made 30").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from receipts.formats.footprint import MeasuredPoint

if TYPE_CHECKING:
    from receipts.formats import Footprint
    from receipts.formats.footprint import Stats

__all__ = ["PERCENTILES", "SERIES", "latency_rows", "null_words"]

PERCENTILES = ("p50", "p95", "p99")

SERIES = (
    ("ttft_s", "TTFT", "calls"),
    ("tpot_s", "TPOT", "calls"),
    ("itl_s", "gap between tokens", "token gaps"),
)
"""What a row shows: the series of ``points[].metrics``, its words, and what one sample of it is."""

_INSUFFICIENT = re.compile(r"insufficient_samples: (\d+) < (\d+)")


def null_words(name: str, reason: str | None, unit: str) -> str:
    """Why a percentile is null, in words (``p95 needs ≥ 130 calls; this run made 30``)."""
    found = _INSUFFICIENT.fullmatch(reason or "")
    if found:
        had, need = int(found[1]), int(found[2])
        return f"{name} needs ≥ {need:,} {unit}; this run made {had:,}"
    if reason == "no_samples":
        return f"no {unit} measured"
    return reason or "not published"


def _cells(stats: Stats, unit: str) -> list[dict[str, Any]]:
    cells = []
    for name in PERCENTILES:
        value = getattr(stats, name)
        why = None if value is not None else null_words(name, stats.null_reasons.get(name), unit)
        cells.append({"value": value, "why": why})
    return cells


def latency_rows(footprints: Sequence[Footprint]) -> list[dict[str, Any]]:
    """One row per measured point and series: its point, words, n and three cells.

    A cell holds the signed ``value`` (seconds) or, when it is null, ``why`` in words. The first row of
    a point carries ``first`` and ``span`` (the rows it heads), and ``hardware`` when the receipt holds
    footprints of more than one machine.
    """
    several = len({f.hardware.hw_class for f in footprints}) > 1
    rows = []
    for footprint in footprints:
        hardware = (footprint.hardware.label or footprint.hardware.hw_class) if several else None
        for point in footprint.points:
            if not isinstance(point, MeasuredPoint):
                continue
            for number, (key, words, unit) in enumerate(SERIES):
                stats = getattr(point.metrics, key)
                rows.append(
                    {
                        "first": number == 0,
                        "span": len(SERIES),
                        "hardware": hardware,
                        "quant": point.quant,
                        "concurrency": point.concurrency,
                        "measure": words,
                        "n": stats.n,
                        "cells": _cells(stats, unit),
                    }
                )
    return rows
