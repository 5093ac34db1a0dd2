"""Hardware benchmark (``receipts bench``, DESIGN §8): what a model costs to run on this machine.

- `plan`: `BenchConfig` and the parsing of its options.
- `driver`: `bench` — the parent process; every measurement in a fresh `worker` process.
- `worker`: one measurement point: load, warm up, timed greedy calls (TTFT via a per-step clock).
- `context`: the ``max_usable_context`` search. `points`, `footprint`: the document and its verdict.
- `host`: the machine's fingerprint, bandwidth, RSS.

The package imports nothing on its own (a worker process starts from it): names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from receipts._lazy import lazy_names

if TYPE_CHECKING:
    from runner.bench.driver import bench
    from runner.bench.plan import BenchConfig, parse_ints, parse_quants, parse_size

__all__ = ["BenchConfig", "bench", "parse_ints", "parse_quants", "parse_size"]

_HOMES = {
    "runner.bench.driver": ("bench",),
    "runner.bench.plan": (
        "BenchConfig",
        "parse_ints",
        "parse_quants",
        "parse_size",
    ),
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
