"""The card's similarity tables (issue #20 part 3): per pack, slices x roles, each value with its 95% CI.

Read from the verified results' ``similarity`` section (every number re-derived by ``receipts verify`` from
the signed per-item scores) and the run's ``settings.similarity`` (what each measure is, the encoder). One
table per pack and reference (the teacher's output, the reference answer); each slice has a row per measure.
Nothing here is HTML: the template escapes every string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from generator.figures import role_order
from generator.scorecard import Score, signed_number
from generator.words import role_words, slice_words

if TYPE_CHECKING:
    from receipts.formats import Results

__all__ = ["MEASURE_WORDS", "SimilarityCard", "SimilaritySection", "SimilarityTable", "similarity_section"]

MEASURE_WORDS = {"chrf": "chrF", "rouge_l": "ROUGE-L", "cosine": "embedding cosine"}
MEASURE_MEANING = {
    "chrf": "character n-gram overlap (F-score, recall weighted twice precision), 0 to 1",
    "rouge_l": "longest common word subsequence (F-score), 0 to 1",
    "cosine": "closeness of meaning: cosine of sentence embeddings, 1 identical, 0 unrelated",
}
REFERENCE_WORDS = {
    "teacher": "each model's output against the teacher's output on the same prompt",
    "gold": "each model's output against the pack's reference answer (the best of several)",
}
_MAX_SLICES = 50  # slices per table: the examples viewer has them all


@dataclass(frozen=True)
class SimilarityRow:
    """One slice and measure: the slice in words (first row of its group only), n, and one score per role."""

    slice: str
    words: str
    first: bool
    group: int  # rows in this slice's group (the slice cell's rowspan)
    measure: str
    n: str
    small_n: bool
    scores: list[Score]
    gain: str  # the student minus base, with its CI, in words ("" when not measured)


@dataclass(frozen=True)
class SimilarityTable:
    """One reference's table: columns are roles, rows are (slice, measure)."""

    reference: str
    words: str
    roles: list[tuple[str, str]]
    rows: list[SimilarityRow]
    more_slices: int


@dataclass(frozen=True)
class SimilarityCard:
    """One pack's similarity tables."""

    pack: str
    tables: list[SimilarityTable]


@dataclass(frozen=True)
class SimilaritySection:
    """Every pack's tables, and once for the page: what each measure is, and the encoders behind cosine."""

    cards: list[SimilarityCard]
    measures: list[tuple[str, str, str]]  # (name in words, meaning, exact definition as a run states it)
    encoders: list[str]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _gain(difference: Any) -> str:
    if difference is None or difference.value is None:
        return ""
    low, high = difference.ci95
    ci = f" [{signed_number(low)}, {signed_number(high)}]" if low is not None and high is not None else ""
    return f"{difference.value:+.3f}".replace("-", "\u2212") + ci


def _rows(slices: Mapping[str, Any], reference: str, roles: Sequence[str]) -> list[SimilarityRow]:
    rows = []
    for name in slices:
        found = [
            (m, slices[name][m][reference]) for m in MEASURE_WORDS if reference in slices[name].get(m, {})
        ]
        for i, (measure, comparison) in enumerate(found):
            first = next(iter(comparison.roles.values()))
            rows.append(
                SimilarityRow(
                    slice=name,
                    words=slice_words(name),
                    first=i == 0,
                    group=len(found),
                    measure=MEASURE_WORDS[measure],
                    n=signed_number(first.n),
                    small_n=first.small_n,
                    scores=[Score.of(comparison.roles.get(r)) for r in roles],
                    gain=_gain(comparison.differences.get("student-base")),
                )
            )
    return rows


def _encoder(results: Results) -> str:
    section = results.similarity
    if section is None or section.encoder is None:
        return ""
    enc = section.encoder
    stated = _mapping(_mapping(_mapping(results.settings).get("similarity")).get("encoder"))
    package = stated.get("package")
    known = (
        "the published model's files" if enc.recognised else "not a model receipts knows: check its digest"
    )
    return f"{enc.name} ({package + ', ' if isinstance(package, str) else ''}digest {enc.digest}: {known})"


def _tables(results: Results) -> list[SimilarityTable]:
    section = results.similarity
    if section is None:
        return []
    ordered = sorted(section.slices, key=lambda n: (n != "all", n.startswith("variant="), n))
    shown = {n: section.slices[n] for n in ordered[:_MAX_SLICES]}
    tables = []
    for reference, words in REFERENCE_WORDS.items():
        roles = sorted(
            {r for by in shown.values() for m in by.values() if reference in m for r in m[reference].roles},
            key=role_order,
        )
        rows = _rows(shown, reference, roles)
        if rows:
            hidden = ordered[_MAX_SLICES:]
            more = sum(1 for n in hidden if any(reference in m for m in section.slices[n].values()))
            tables.append(SimilarityTable(reference, words, [(r, role_words(r)) for r in roles], rows, more))
    return tables


def similarity_section(results: Sequence[Results]) -> SimilaritySection | None:
    """The similarity of every run that measured any (predicate order), or None when none did."""
    cards = [SimilarityCard(r.pack.id, t) for r in results if (t := _tables(r))]
    if not cards:
        return None
    measures: dict[str, tuple[str, str, str]] = {}
    encoders: list[str] = []
    for r in results:
        section = r.similarity
        if section is None:
            continue
        definitions = _mapping(_mapping(_mapping(r.settings).get("similarity")).get("definitions"))
        for m in MEASURE_WORDS:
            if m not in measures and any(m in by for by in section.slices.values()):
                measures[m] = (MEASURE_WORDS[m], MEASURE_MEANING[m], str(definitions.get(m) or "not stated"))
        encoder = _encoder(r)
        if encoder and encoder not in encoders:
            encoders.append(encoder)
    ordered = [measures[m] for m in MEASURE_WORDS if m in measures]
    return SimilaritySection(cards, ordered, encoders)
