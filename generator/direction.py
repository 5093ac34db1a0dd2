"""Volume and direction on a card page (issue #20 parts 4 and 5): flips and the sequence divergence.

Fidelity's matrix says how often a model departs from its teacher; this says which way: answers it lost
(teacher right, model wrong) and gained (teacher wrong, model right) per slice, with their 95% CIs, and
how far its distribution sits from the teacher's on the teacher's own outputs, per UTF-8 byte, for any
pair of tokenizers. Every number is read from the verified results (sections written before issue #20
have neither: nothing is shown); nothing here is HTML (the template escapes it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generator.figures import role_order
from generator.words import role_words, slice_words

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.formats.results import Estimate, FlipCounts, SeqEstimate

__all__ = ["SEQ_WHAT", "Direction", "FlipCell", "Row", "SeqCell", "direction"]

SEQ_WHAT = (
    "the mean, over items, of log p(teacher) minus log p(model) of the teacher's own greedy output, per "
    "UTF-8 byte: how much less likely the model finds what the teacher says, in nats per byte. It estimates "
    "KL(teacher ‖ model) at the teacher's most likely outputs, not over samples, so it leans low and one "
    "item can be negative; 0 means the model rates the teacher's outputs exactly as the teacher does"
)
"""What the sequence divergence estimates, in words (the README states the estimator and its bias)."""

SMALL_N = 30  # receipts.metrics.uncertainty.SMALL_N: slices below it are flagged

_MAX_ROWS = 40  # slices per table; the viewer and the raw section have every one


def _pct(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{100 * value:.1f}%"


def _rate(estimate: Estimate) -> str:
    """A rate in percent with its CI: ``68.6% [59.0, 77.1]``."""
    low, high = estimate.ci95
    ci = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None and high is not None else ""
    return _pct(estimate.value) + ci


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{value:.3f}".replace("-", "\u2212")


@dataclass(frozen=True)
class FlipCell:
    """One model's flips on one slice: counts, rates with CIs, and the test of lost against gained."""

    lost: str
    lost_rate: str
    gained: str
    gained_rate: str
    p_value: str


@dataclass(frozen=True)
class SeqCell:
    """One model's sequence divergence on one slice: value with CI, items measured and not measured."""

    value: str
    ci: str
    n: str
    missing: str


@dataclass(frozen=True)
class Row:
    """One slice: its words, its item count, and one cell per model (None: not measured there)."""

    slice: str
    words: str
    n: str
    small_n: bool
    cells: list[Any]


@dataclass(frozen=True)
class Direction:
    """A pack's flips and sequence divergence, as the card shows them: rows are slices, columns models."""

    flip_roles: list[str]
    flips: list[Row]
    flips_more: int
    lede: str  # the student's flips on all items in a sentence, "" without them
    seq_roles: list[str]
    seq: list[Row]
    seq_more: int
    seq_served: bool  # the teacher's side came from the log-probabilities its server returned
    seq_what: str = SEQ_WHAT


def _order(name: str) -> tuple[bool, bool, bool, str]:
    # all items first, then critical cohorts, then other slices, prompt variants last
    return name != "all", not name.startswith("critical"), name.startswith("variant="), name


def _lede(role: str, f: FlipCounts) -> str:
    return (
        f"the {role_words(role)} loses {f.lost:,} answer{'s' * (f.lost != 1)} the teacher got right and "
        f"gains {f.gained:,} where the teacher was wrong, of {f.n:,} items"
    )


def _flip_cell(f: FlipCounts) -> FlipCell:
    p = f.mcnemar.p_value
    return FlipCell(
        lost=f"{f.lost:,}",
        lost_rate=_rate(f.lost_rate),
        gained=f"{f.gained:,}",
        gained_rate=_rate(f.gained_rate),
        p_value="< 0.001" if p < 0.001 else f"{p:.3f}",
    )


def _seq_cell(e: SeqEstimate) -> SeqCell:
    low, high = e.ci95
    ci = f"[{_num(low)}, {_num(high)}]" if low is not None and high is not None else ""
    value = _num(e.value) if e.value is not None else "not measured"
    return SeqCell(value=value, ci=ci, n=f"{e.n:,}", missing=f"{e.missing:,}")


def _students(roles: Any) -> list[str]:
    # flips of a distilled model (student, its variants, the SFT baseline); the base model's are noise here
    return sorted((r for r in roles if r.split("@")[0] in ("student", "sft")), key=role_order)


def _table(
    slices: Mapping[str, Mapping[str, Any]],
    roles: list[str],
    cell: Callable[[Any], Any],
    size: Callable[[Any], int],
) -> list[Row]:
    """Slices as rows (all items, critical cohorts, the rest, prompt variants), one cell per model."""
    rows = []
    for name in sorted(slices, key=_order):
        found = [slices[name][r] for r in roles if r in slices[name]]
        if not found:
            continue
        n = max(size(entry) for entry in found)
        rows.append(
            Row(
                slice=name,
                words=slice_words(name),
                n=f"{n:,}",
                small_n=n < SMALL_N,
                cells=[cell(slices[name][r]) if r in slices[name] else None for r in roles],
            )
        )
    return rows


def direction(results: Results, *, floor: bool = False) -> Direction | None:
    """The pack's flips and sequence divergence, or None when its results have neither (signed before).

    On a floor pack (every model scores zero) nothing is right, so nothing is lost or gained: no flips.
    The divergence does not read correctness and is shown there too.
    """
    flip_slices = (results.flips.slices or {}) if results.flips is not None and not floor else {}
    flip_roles = _students({r for by in flip_slices.values() for r in by})
    flips = _table(flip_slices, flip_roles, _flip_cell, lambda f: int(f.n))
    section = results.sequence_divergence
    seq_slices: Mapping[str, Mapping[str, SeqEstimate]] = {}
    if section is not None:
        seq_slices = section.slices or {}
    seq_roles = sorted({r for by in seq_slices.values() for r in by}, key=role_order)
    seq = _table(seq_slices, seq_roles, _seq_cell, lambda e: int(e.n + e.missing))
    if not flips and not seq:
        return None
    overall = flip_slices.get("all", {})
    lede_role = "student" if "student" in overall else next(iter(flip_roles), None)
    return Direction(
        flip_roles=[role_words(r) for r in flip_roles],
        flips=flips[:_MAX_ROWS],
        flips_more=max(0, len(flips) - _MAX_ROWS),
        lede=_lede(lede_role, overall[lede_role]) if lede_role in overall else "",
        seq_roles=[role_words(r) for r in seq_roles],
        seq=seq[:_MAX_ROWS],
        seq_more=max(0, len(seq) - _MAX_ROWS),
        seq_served=section is not None and "served" in (section.teacher_logprob or []),
    )
