"""Failure modes bound to the evidence: pack items, measured evidence and number placeholders (DESIGN §11).

A card's failure mode names what shows it: ``pack_items`` (``<pack-id>/<item-id>``) and ``evidence``
(``{pack, role, metric, slice}``), and its prose carries no typed-in measurement. Every number in a
failure mode's ``description``, ``trigger`` or ``mitigation`` is a *placeholder* that the catalog fills
from the signed results when it renders the page, so the text cannot go stale on a re-run.

Placeholder grammar (closed; the text between braces, at most `MAX_PLACEHOLDER` characters)::

    {PACK.WHAT.MEASURE}  or  {PACK.WHAT.MEASURE@SLICE}

    PACK     the id of the pack a signed run evaluated              capitals-mc
    WHAT     a role: teacher, base, student, sft, optionally        student, student@int8-dynamic
             @VARIANT (letters, digits, _ and -); or a difference
             of two roles as results.json names it (A minus B)      student-teacher
    MEASURE  a metric of the run (results ``metrics``)              acc, acc_norm, f1 ...
             retention   (S-B)/(T-B) of the primary metric           (a role)
             ece         expected calibration error, 10 equal-mass bins (a role, all items)
             brier       Brier score                                 (a role, all items)
             agreement   agreement rate with the teacher             (a role, all items)
             kl          KL(teacher||role)                           (a role, all items)
             n           items scored in the slice (primary metric)  (a role)
             agree_teacher_wrong, agree_teacher_correct, disagree_teacher_wrong,
             disagree_teacher_correct   fidelity cells: item counts  (a role, all items)
    SLICE    a slice as results.json keys it: all (the default),     variant=lowercase, critical
             critical, or FIELD=LABEL (FIELD a pack field name,      difficulty=easy
             variant or critical; LABEL no white space or brace)

    {capitals-mc.student.acc@variant=lowercase}   {capitals-mc.student.ece}
    {capitals-mc.student-teacher.acc}             {capitals-mc.student.retention}

Where a text needs a literal brace, there is none: braces are reserved for placeholders.

Typed numbers: after placeholders are taken out (the text of braces that are not a placeholder stays
in, so a number hidden in a malformed one is refused too), a word of a failure mode's text that holds a
digit (any ``str.isnumeric`` character: ``½`` and ``⅓`` too) is refused unless it starts with a letter
and holds no decimal fraction, ``%`` or ``=`` (an identifier such as ``cap-028``, ``GPT-4``, ``int8``).
``0.324``, ``15``, ``90%``, ``2nd``, ``n=105`` and ``ECE-0.324`` are refused: a measurement is a
placeholder, anything else is written in words ("ten metres", "second").

Binding: a reference to a pack the receipt signs a run of must resolve in that run (the item is in its
examples log; the role, slice and metric are in its results). A reference to a pack the receipt signs no
run of is *not evaluated in this receipt* (the page says so), never a contradiction; a card may be silent
about what was not measured, never contradict what was (as `receipts.binding` holds teachers and bases).
``sign`` refuses and ``verify`` fails on every problem, each named by its JSON path in the card.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from receipts.formats import Card, Results
    from receipts.verify import VerifiedReceipt

__all__ = [
    "MAX_PLACEHOLDER",
    "MEASURES",
    "Measured",
    "Ref",
    "SignedPack",
    "Text",
    "binding_problems",
    "filled",
    "parse_ref",
    "resolve",
    "segments",
    "signed_packs",
    "text_problems",
    "verified_packs",
]

MAX_PLACEHOLDER = 300
"""The most characters between a placeholder's braces."""

_ROLE = r"(?:teacher|base|student|sft)(?:@[a-z0-9_-]+)?"
_REF = re.compile(
    rf"(?P<pack>[a-z0-9][a-z0-9._-]*?)\.(?P<what>{_ROLE}(?:-{_ROLE})?)\.(?P<measure>[a-z][a-z0-9_]*)"
    r"(?:@(?P<slice>all|critical|[A-Za-z_][A-Za-z0-9_]{0,63}=[^\s{}\x00-\x1f\x7f]+))?"
)
_BRACES = re.compile(r"\{([^{}]*)\}")

_CELLS = (
    "agree_teacher_wrong",
    "agree_teacher_correct",
    "disagree_teacher_wrong",
    "disagree_teacher_correct",
)
MEASURES: Mapping[str, str] = {
    "retention": "retention",
    "ece": "expected calibration error (10 equal-mass bins)",
    "brier": "Brier score",
    "agreement": "agreement with the teacher",
    "kl": "KL(teacher||role)",
    "n": "items scored",
    "agree_teacher_wrong": "items the teacher gets wrong, answered the same",
    "agree_teacher_correct": "items the teacher gets right, answered the same",
    "disagree_teacher_wrong": "items the teacher gets wrong, answered differently",
    "disagree_teacher_correct": "items the teacher gets right, answered differently",
}
"""The measures a placeholder may name besides a run's own metrics, with their words on a page."""

_WHOLE_RUN = {"ece", "brier", "agreement", "kl", *_CELLS}
"""Measures a run records for all items only (no slice)."""

_FIELDS = ("description", "trigger", "mitigation")
# a word ends at white space, brackets, quotes (ASCII and typographic) and clause punctuation (a comma
# or colon between digits stays inside: 0,429 and 3:1 are one word)
_WORD = re.compile(r"(?:[^\s()\[\]{}\"'\u201c\u201d\u2018\u2019\u00ab\u00bb,;:!?]|(?<=\d)[,:](?=\d))+")
_DECIMAL = re.compile(r"\d[.,]\d")


@dataclass(frozen=True)
class Ref:
    """A reference to one signed number: ``PACK.WHAT.MEASURE@SLICE``."""

    pack: str
    what: str
    measure: str
    slice: str = "all"

    def __str__(self) -> str:
        at = "" if self.slice == "all" else f"@{self.slice}"
        return f"{self.pack}.{self.what}.{self.measure}{at}"


def parse_ref(body: str) -> Ref | None:
    """The reference a placeholder's text names, or ``None`` when it is not in the grammar."""
    if len(body) > MAX_PLACEHOLDER:
        return None
    match = _REF.fullmatch(body)
    if match is None:
        return None
    return Ref(match["pack"], match["what"], match["measure"], match["slice"] or "all")


@dataclass(frozen=True)
class Measured:
    """A reference resolved in a signed run: the number and what it is."""

    ref: Ref
    value: float | int | None
    kind: Literal["fraction", "difference", "count", "divergence"]
    n: int | None
    reason: str = ""

    def shown(self) -> str:
        """The number as a page prints it."""
        value = self.value
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "not defined"
        if self.kind == "count":
            return f"{int(value):,}"
        if self.kind == "difference":
            return f"{value:+.3f}"
        return f"{value:.3f}"

    def label(self) -> str:
        """What the number is: pack, role(s), measure, slice and n."""
        ref = self.ref
        first, _, second = _split_difference(ref.what)
        who = f"{first} minus {second}" if second else ref.what
        words = MEASURES.get(ref.measure, ref.measure)
        where = "all items" if ref.slice == "all" else f"slice {ref.slice}"
        parts = [ref.pack, who, words, where]
        if self.n is not None:
            parts.append(f"n={self.n}")
        if self.reason:
            parts.append(self.reason)
        return " · ".join(parts)


@dataclass(frozen=True)
class SignedPack:
    """What a signed run of one pack holds for binding: its results and the item ids of its examples log."""

    file: str
    results: Results
    items: frozenset[str]


@dataclass(frozen=True)
class Text:
    """A piece of failure-mode text: literal (``value`` is None, ``text`` as written) or a placeholder."""

    text: str
    value: Measured | None = None
    unresolved: str = ""


def _split_difference(what: str) -> tuple[str, str, str]:
    """``student-teacher`` -> (student, -, teacher); a single role -> (role, '', '')."""
    match = re.fullmatch(rf"({_ROLE})-({_ROLE})", what)
    return (match[1], "-", match[2]) if match else (what, "", "")


def _printable(text: str) -> str:
    """Text for a terminal: control and other unprintable characters as escapes (no ANSI sequences)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _placeholder_problem(body: str) -> str | None:
    if parse_ref(body) is not None:
        return None
    shown = _printable(body if len(body) <= 60 else body[:57] + "...")
    return (
        f"{{{shown}}} is not a placeholder: write {{PACK.ROLE.MEASURE}} or {{PACK.ROLE.MEASURE@SLICE}}, "
        "e.g. {capitals-mc.student.acc@variant=lowercase} (grammar: schema/card.schema.json, failure_modes)"
    )


def _typed_numbers(text: str) -> list[str]:
    """The words of ``text`` (placeholders taken out) that are typed-in numbers."""
    found = []
    for match in _WORD.finditer(text):
        word = match[0].rstrip(".-")
        if not any(c.isnumeric() for c in word):  # 0-9, other scripts' digits, ½, ⅓, Ⅻ
            continue
        identifier = word[0].isalpha() and not _DECIMAL.search(word) and not any(c in word for c in "%=")
        if not identifier:
            found.append(word if len(word) <= 40 else word[:37] + "...")
    return found


def text_problems(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Placeholder syntax and typed-in numbers in failure-mode text: ``(JSON path, problem)`` pairs.

    Needs no results (``receipts validate``); ``card`` is the card as parsed, after its schema passed.
    """
    problems = []
    for index, mode in enumerate(card.get("failure_modes") or []):
        for field in _FIELDS:
            text = mode.get(field) if isinstance(mode, Mapping) else None
            if not isinstance(text, str):
                continue
            path = f"$.failure_modes[{index}].{field}"
            bodies = _BRACES.findall(text)
            problems += [(path, p) for p in map(_placeholder_problem, bodies) if p]
            rest = _BRACES.sub(" ", text)
            if "{" in rest or "}" in rest:
                problems.append(
                    (path, "a brace outside a placeholder: braces are reserved for {PACK.ROLE.MEASURE}")
                )
            # a malformed placeholder's text is prose: a number hidden in it is typed in all the same
            numbers = _typed_numbers(_BRACES.sub(lambda m: " " if parse_ref(m[1]) else f" {m[1]} ", text))
            if numbers:
                more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
                listed = ", ".join(repr(n) for n in numbers[:5]) + more
                problems.append((path, f"typed-in number{'s' if len(numbers) > 1 else ''} {listed}"))
    return problems


def _estimate(results: Results, ref: Ref) -> Measured | str:
    slices = results.metrics or {}
    if ref.slice not in slices:
        return f"slice {ref.slice!r} is not in the run (it has: {_some(slices)})"
    metrics = slices[ref.slice]
    primary = results.primary_metric or ""
    if ref.measure in ("retention", "n"):
        if primary not in metrics:
            return f"the run's primary metric {primary!r} has no numbers on slice {ref.slice!r}"
        metric = metrics[primary]
        if ref.measure == "n":
            estimate = metric.roles.get(ref.what)
            return (
                Measured(ref, estimate.n, "count", None) if estimate else f"no role {ref.what!r} in the run"
            )
        kept = (metric.retention or {}).get(ref.what)
        if kept is None:
            return f"no retention of role {ref.what!r} (it has: {_some(metric.retention or {})})"
        return Measured(ref, kept.value, "fraction", None, kept.reason or "")
    if ref.measure not in metrics:
        return f"metric {ref.measure!r} is not in the run (it has: {_some({**metrics, **MEASURES})})"
    metric = metrics[ref.measure]
    if ref.what in metric.roles:
        estimate = metric.roles[ref.what]
        return Measured(ref, estimate.value, "fraction", estimate.n)
    if ref.what in (metric.differences or {}):
        estimate = (metric.differences or {})[ref.what]
        return Measured(ref, estimate.value, "difference", estimate.n)
    known = {**metric.roles, **(metric.differences or {})}
    return f"no role or difference {ref.what!r} for {ref.measure} (it has: {_some(known)})"


def _whole_run(results: Results, ref: Ref) -> Measured | str:
    if ref.slice != "all":
        return f"{ref.measure} is recorded for all items only, not per slice"
    if ref.measure in ("ece", "brier"):
        calibration = (results.calibration or {}).get(ref.what)
        if calibration is None:
            return f"no calibration of role {ref.what!r} in the run"
        value = calibration.ece_10_equal_mass if ref.measure == "ece" else calibration.brier
        return Measured(ref, _number(value), "fraction", calibration.n)
    fidelity = (results.fidelity or {}).get(ref.what)
    if fidelity is None:
        return f"no agreement with the teacher recorded for role {ref.what!r}"
    if ref.measure == "agreement":
        return Measured(ref, _number(fidelity.agreement_rate), "fraction", None)
    if ref.measure == "kl":
        kl = fidelity.kl
        return Measured(ref, kl.value, "divergence", kl.n) if kl else "the run records no KL for this role"
    cells = fidelity.cells if isinstance(fidelity.cells, Mapping) else {}
    count = cells.get(ref.measure)
    if not isinstance(count, int) or isinstance(count, bool):
        return f"the run records no {ref.measure} count for role {ref.what!r}"
    return Measured(ref, count, "count", None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _some(keys: Mapping[str, Any]) -> str:
    names = sorted(keys)
    shown = ", ".join(names[:12])
    return shown + (f" and {len(names) - 12} more" if len(names) > 12 else "") if names else "none"


def resolve(ref: Ref, packs: Mapping[str, SignedPack]) -> Measured | str:
    """The signed number a reference names, or why there is none (a pack with no signed run included)."""
    signed = packs.get(ref.pack)
    if signed is None:
        return f"not evaluated in this receipt (no signed run of {ref.pack})"
    if ref.measure in _WHOLE_RUN:
        if "-" in _split_difference(ref.what)[1]:
            return f"{ref.measure} is a role's number, not a difference"
        return _whole_run(signed.results, ref)
    return _estimate(signed.results, ref)


def segments(text: str, packs: Mapping[str, SignedPack]) -> list[Text]:
    """``text`` cut into literal pieces and resolved placeholders (never raises: a page always renders)."""
    out: list[Text] = []
    position = 0
    for match in _BRACES.finditer(text):
        out.append(Text(text[position : match.start()]))
        ref = parse_ref(match[1])
        found = resolve(ref, packs) if ref else "not a placeholder"
        out.append(Text(match[0], found, "") if isinstance(found, Measured) else Text(match[0], None, found))
        position = match.end()
    out.append(Text(text[position:]))
    return [piece for piece in out if piece.text]


def _evidence_refs(mode: Any) -> Iterator[tuple[str, Ref]]:
    for index, item in enumerate(mode.evidence or []):
        yield f".evidence[{index}]", Ref(item.pack, item.role, item.metric, item.slice or "all")


def binding_problems(card: Card, packs: Mapping[str, SignedPack]) -> list[tuple[str, str]]:
    """Every failure-mode reference a signed run of its pack contradicts, and every typed-in number.

    ``packs`` maps each signed run's pack id to what it holds. Returns ``(JSON path, problem)`` pairs.
    """
    problems = text_problems(card.model_dump(mode="json", by_alias=True, exclude_none=True))
    for index, mode in enumerate(card.failure_modes):
        base = f"$.failure_modes[{index}]"
        for position, item in enumerate(mode.pack_items):
            pack, _, item_id = item.partition("/")
            signed = packs.get(pack)
            if signed is not None and item_id not in signed.items:
                problems.append(
                    (
                        f"{base}.pack_items[{position}]",
                        f"item {item_id!r} is not in the signed run {signed.file}",
                    )
                )
        refs = list(_evidence_refs(mode))
        for field in _FIELDS:
            text = getattr(mode, field)
            refs += [(f".{field}", r) for r in map(parse_ref, _BRACES.findall(text)) if r is not None]
        for where, ref in refs:
            if ref.pack not in packs:
                continue
            found = resolve(ref, packs)
            if isinstance(found, str):
                problems.append((f"{base}{where}", f"{{{ref}}}: {found} ({packs[ref.pack].file})"))
    return problems


def _item_ids(log: bytes, name: str) -> frozenset[str]:
    """The ``item`` of every row of an examples log (strict JSON, one value a line; blank lines skipped).

    Raises:
        InputError: a line is not JSON receipts accepts.
    """
    from receipts.documents import parse_json  # receipts.evidence would import receipts.sign: a loop

    items = set()
    for number, line in enumerate(log.split(b"\n"), start=1):
        if line.strip():
            row = parse_json(line, file=f"{name}, line {number}")
            if isinstance(row, dict) and isinstance(row.get("item"), str):
                items.add(row["item"])
    return frozenset(items)


def signed_packs(
    names: Sequence[tuple[str, str]], docs: Sequence[Results], logs: Sequence[bytes]
) -> dict[str, SignedPack]:
    """Each signed run by its pack id, with the item ids of its examples log (what failure modes bind to).

    ``names`` are each run's (results, examples) bundle names, ``docs`` its results, ``logs`` its examples
    log's bytes, all in the predicate's order.

    Raises:
        InputError: an examples log is not one JSON value per line.
    """
    packs = {}
    for (results_name, examples_name), results, log in zip(names, docs, logs, strict=True):
        packs[results.pack.id] = SignedPack(results_name, results, _item_ids(log, examples_name))
    return packs


def verified_packs(verified: VerifiedReceipt) -> dict[str, SignedPack]:
    """`signed_packs` of a verified receipt, from the bytes its verification read (empty if unparsable)."""
    from receipts.errors import InputError

    runs = verified.predicate.runs
    names = [(run.results, run.examples) for run in runs]
    try:
        return signed_packs(
            names, list(verified.results), [verified.files.get(r.examples, b"") for r in runs]
        )
    except InputError:
        return {}


def filled(text: str, packs: Mapping[str, SignedPack]) -> str:
    """``text`` with each placeholder replaced by its signed number and label, as plain text (exports)."""
    out = []
    for piece in segments(text, packs):
        if piece.value is not None:
            out.append(f"{piece.value.shown()} ({piece.value.label()})")
        elif piece.unresolved:
            out.append(f"[{piece.unresolved}]")
        else:
            out.append(piece.text)
    return "".join(out)
