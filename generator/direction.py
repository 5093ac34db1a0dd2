"""Volume and direction on a card page (issue #20 parts 4 and 5): flips and the sequence divergence.

Fidelity's matrix says how often a model departs from its teacher; this says which way: answers it lost
(teacher right, model wrong) and gained (teacher wrong, model right) per slice, with their 95% CIs, and
how far its distribution sits from the teacher's on the teacher's own outputs, per UTF-8 byte, for any
pair of tokenizers. Every number is read from the verified results (sections written before issue #20
have neither: nothing is shown); nothing here is HTML (the template escapes it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generator.figures import role_order
from generator.words import role_words, slice_words

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.formats.results import Estimate, FlipCounts, SeqEstimate

__all__ = ["SEQ_WHAT", "Direction", "FlipRow", "SeqRow", "direction"]

SEQ_WHAT = (
    "the mean, over items, of log p(teacher) minus log p(model) of the teacher's own greedy output, per "
    "UTF-8 byte: how much less likely the model finds what the teacher says, in nats per byte. It estimates "
    "KL(teacher ‖ model) at the teacher's most likely outputs, not over samples, so it leans low and one "
    "item can be negative; 0 means the model rates the teacher's outputs exactly as the teacher does"
)
"""What the sequence divergence estimates, in words (the README states the estimator and its bias)."""

_MAX_ROWS = 40  # slices per table; the viewer and the raw section have every one


def _pct(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{100 * value:.1f}%"


def _rate(estimate: Estimate) -> str:
    """A rate with its CI: ``8.0% (95% CI 4.0% to 12.7%)``."""
    low, high = estimate.ci95
    ci = f" (95% CI {_pct(low)} to {_pct(high)})" if low is not None and high is not None else ""
    return _pct(estimate.value) + ci


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a"
    return f"{value:.3f}".replace("-", "\u2212")


@dataclass(frozen=True)
class FlipRow:
    """One slice of one model's flips: counts, rates with CIs, and the test of lost against gained."""

    slice: str
    words: str
    role: str
    n: str
    lost: str
    lost_rate: str
    gained: str
    gained_rate: str
    p_value: str
    small_n: bool
    sentence: str


@dataclass(frozen=True)
class SeqRow:
    """One slice of one model's sequence divergence: value with CI, items measured and missing."""

    slice: str
    words: str
    role: str
    value: str
    ci: str
    n: str
    missing: str
    small_n: bool


@dataclass(frozen=True)
class Direction:
    """A pack's flips and sequence divergence, as the card shows them."""

    flips: list[FlipRow]
    flips_more: int
    lede: str  # the student's flips on all items in a sentence (else the first model's), "" without flips
    seq: list[SeqRow]
    seq_more: int
    seq_served: bool  # the teacher's side came from the log-probabilities its server returned
    seq_what: str = SEQ_WHAT


def _order(name: str) -> tuple[bool, bool, bool, str]:
    # all items first, then critical cohorts, then other slices, prompt variants last
    return name != "all", not name.startswith("critical"), name.startswith("variant="), name


def _sentence(role: str, f: FlipCounts) -> str:
    return (
        f"the {role_words(role)} loses {f.lost:,} answer{'s' * (f.lost != 1)} the teacher got right and "
        f"gains {f.gained:,} where the teacher was wrong, of {f.n:,} items"
    )


def _flip_rows(results: Results) -> list[FlipRow]:
    slices = (results.flips.slices or {}) if results.flips is not None else {}
    rows = []
    for name in sorted(slices, key=_order):
        for role, f in sorted(slices[name].items(), key=lambda i: role_order(i[0])):
            rows.append(
                FlipRow(
                    slice=name,
                    words=slice_words(name),
                    role=role_words(role),
                    n=f"{f.n:,}",
                    lost=f"{f.lost:,}",
                    lost_rate=_rate(f.lost_rate),
                    gained=f"{f.gained:,}",
                    gained_rate=_rate(f.gained_rate),
                    p_value="< 0.001" if f.mcnemar.p_value < 0.001 else f"{f.mcnemar.p_value:.3f}",
                    small_n=f.lost_rate.small_n,
                    sentence=_sentence(role, f),
                )
            )
    return rows


def _seq_row(name: str, role: str, e: SeqEstimate) -> SeqRow:
    low, high = e.ci95
    ci = f"[{_num(low)}, {_num(high)}]" if low is not None and high is not None else ""
    return SeqRow(
        slice=name,
        words=slice_words(name),
        role=role_words(role),
        value=_num(e.value) if e.value is not None else "not measured",
        ci=ci,
        n=f"{e.n:,}",
        missing=f"{e.missing:,}",
        small_n=e.small_n,
    )


def direction(results: Results, *, floor: bool = False) -> Direction | None:
    """The pack's flips and sequence divergence, or None when its results have neither (signed before).

    On a floor pack (every model scores zero) nothing is right, so nothing is lost or gained: no flips.
    The divergence does not read correctness and is shown there too.
    """
    flips = [] if floor else _flip_rows(results)
    section = results.sequence_divergence
    by_slice: Mapping[str, Mapping[str, SeqEstimate]] = (section.slices or {}) if section is not None else {}
    seq = [
        _seq_row(name, role, e)
        for name in sorted(by_slice, key=_order)
        for role, e in sorted(by_slice[name].items(), key=lambda i: role_order(i[0]))
    ]
    if not flips and not seq:
        return None
    served = section is not None and "served" in (section.teacher_logprob or [])
    overall = [r for r in flips if r.slice == "all"]
    lede = next((r for r in overall if r.role == role_words("student")), overall[0] if overall else None)
    return Direction(
        flips=flips[:_MAX_ROWS],
        flips_more=max(0, len(flips) - _MAX_ROWS),
        lede=lede.sentence if lede is not None else "",
        seq=seq[:_MAX_ROWS],
        seq_more=max(0, len(seq) - _MAX_ROWS),
        seq_served=served,
    )
