"""The sample ``receipts verify --rerun N`` re-executes: N signed rows, seeded and stratified by slice.

Every (pack, slice labels) stratum gets its proportional share (largest remainder, at least one where N
allows); rows are ranked by sha256(seed, pack, item, variant), so the sample follows from the seed and the
item ids alone, in any language and any Python version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.verify import VerifiedReceipt

__all__ = ["Sampled", "SignedRun", "sample", "signed_runs"]


@dataclass(frozen=True)
class SignedRun:
    """One signed run as verified: its results header and its examples rows."""

    results: Results
    rows: tuple[Mapping[str, Any], ...]

    @property
    def pack_id(self) -> str:
        """The run's pack id."""
        return self.results.pack.id

    @property
    def threads(self) -> int | None:
        """The thread count the signed header records (``None`` when it records none)."""
        value = (self.results.settings or {}).get("threads")
        return value if isinstance(value, int) else None

    @property
    def libraries(self) -> dict[str, str]:
        """The library versions the signed header records (none before receipts recorded them)."""
        value = (self.results.settings or {}).get("library_versions")
        if not isinstance(value, Mapping):
            return {}
        return {str(k): v for k, v in value.items() if isinstance(v, str)}


def signed_runs(verified: VerifiedReceipt) -> list[SignedRun]:
    """Each run of a verified receipt with its examples rows, in the predicate's order.

    Raises:
        InputError: an examples log is not JSON lines receipts accepts, or holds too many rows.
    """
    from receipts.evidence import examples_rows

    runs = []
    for entry, results in zip(verified.predicate.runs, verified.results, strict=True):
        rows = examples_rows(verified.files[entry.examples], entry.examples)
        runs.append(SignedRun(results, tuple(r for r in rows if isinstance(r, Mapping))))
    return runs


@dataclass(frozen=True)
class Sampled:
    """One sampled row: its run, item, variant and stratum (pack and slice labels)."""

    run: SignedRun
    row: Mapping[str, Any]
    stratum: str

    @property
    def item(self) -> str:
        """The item id."""
        return str(self.row.get("item"))

    @property
    def variant(self) -> str:
        """The variant the item was posed in."""
        return str(self.row.get("variant"))

    @property
    def name(self) -> str:
        """``pack/item`` with the variant when it is not the original."""
        name = f"{self.run.pack_id}/{self.item}"
        return name if self.variant == "original" else f"{name} ({self.variant})"


def _rank(seed: int, *parts: str) -> str:
    # a hash order: the same in any language, for any Python version (random.sample is not promised to be)
    return hashlib.sha256("\x1f".join([str(seed), *parts]).encode("utf-8")).hexdigest()


def _stratum(run: SignedRun, row: Mapping[str, Any]) -> str:
    slices = row.get("slices")
    slices = slices if isinstance(slices, Mapping) else {}
    return json.dumps([run.pack_id, sorted((str(k), str(v)) for k, v in slices.items())])


def _allocate(sizes: Mapping[str, int], n: int, seed: int) -> dict[str, int]:
    """Proportional allocation of ``n`` over the strata (largest remainder), at least one each where n allows.

    A stratum left with none takes one from the stratum holding the most; ties follow the seeded order.
    """
    order = sorted(sizes, key=lambda s: _rank(seed, "stratum", s))
    total = sum(sizes.values())
    n = min(n, total)
    quotas = {s: n * sizes[s] / total for s in order}
    share = {s: int(quotas[s]) for s in order}
    by_remainder = sorted(order, key=lambda s: quotas[s] - share[s], reverse=True)
    for s in by_remainder[: n - sum(share.values())]:
        share[s] += 1
    if n >= len(order):
        for s in order:
            if share[s] == 0:
                richest = max(order, key=lambda r: share[r])
                share[richest] -= 1
                share[s] += 1
    return share


def sample(runs: Sequence[SignedRun], n: int, seed: int) -> list[Sampled]:
    """``n`` signed rows (all of them if there are fewer), stratified by pack and slice labels.

    Each stratum gets its proportional share (at least one where ``n`` allows); within a stratum rows are
    taken in the order of sha256(seed, pack, item, variant), so the sample follows from the seed and the
    item ids alone. The sample comes back in the signed rows' order.
    """
    strata: dict[str, list[Sampled]] = {}
    for run in runs:
        for row in run.rows:
            key = _stratum(run, row)
            strata.setdefault(key, []).append(Sampled(run, row, key))
    share = _allocate({k: len(v) for k, v in strata.items()}, n, seed)
    chosen: set[int] = set()
    for key, members in strata.items():
        ranked = sorted(members, key=lambda m: _rank(seed, m.run.pack_id, m.item, m.variant))
        chosen |= {id(m) for m in ranked[: share[key]]}
    return [m for members in strata.values() for m in members if id(m) in chosen]
