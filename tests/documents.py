"""Typed documents for unit tests: a committed fixture with the fields a test cares about changed.

Kernel functions read the typed formats (``receipts.formats``), so a test that needs "a footprint of model X
on hardware Y costing Z" starts from a valid fixture and changes only that, and the result is held to the
schema like any document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from receipts.formats import Footprint, Results

DATA = Path(__file__).parent / "data"


def merged(base: Any, changes: Any) -> Any:
    """``base`` with ``changes`` written over it: objects merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(changes, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in changes.items()}}
    return changes


def estimate(value: float | None, n: int = 16) -> dict[str, Any]:
    """A per-role estimate as results.json records it (the interval is the value itself)."""
    return {"value": value, "ci95": [value, value], "n": n, "small_n": n < 30}


def footprint(**changes: Any) -> Footprint:
    """``tests/data/footprint_minimal.json`` with ``changes`` merged in."""
    value = json.loads((DATA / "footprint_minimal.json").read_bytes())
    return Footprint.parse(merged(value, changes))


def results(**changes: Any) -> Results:
    """``tests/data/run_minimal/results.json`` with ``changes`` merged in."""
    value = json.loads((DATA / "run_minimal" / "results.json").read_bytes())
    return Results.parse(merged(value, changes))
