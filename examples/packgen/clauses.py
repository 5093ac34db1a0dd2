"""contract-clauses: the 63 curated clauses plus generated ones, and a training split (issue #22).

Each generated clause is one phrasing (``clause_text.PHRASINGS``) with its slots filled from seeded draws:
fictional companies, a period, an amount in one of several written forms, a governing place. The gold
follows the pack's field rules and is read off the slots, never off the text: ``party`` is the ``{P}``
company (null when the phrasing binds both parties alike), ``duration`` ``"<n> days|weeks|months|years"``,
``amount`` a plain number, ``currency`` the ISO 4217 code, ``jurisdiction`` the governing place. About a
third of the clauses are made long with boilerplate and distractors around them (another company, a
number that is not the amount, a date); a few name a governing place beside their own terms.

Train and eval use disjoint phrasings, boilerplate and company names (see ``clause_text``), so a model
fine-tuned on the split meets new wording and new names in the eval.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packgen import PackData, disjoint, interleave
from packgen.clause_text import (
    BOILERPLATE,
    CLAUSE_TYPES,
    CRITICAL_TYPES,
    CURRENCY_NAMES,
    CURRENCY_SYMBOLS,
    CURRENCY_WEIGHTS,
    EXTRA_JURISDICTION,
    FIRST_SYLLABLES,
    JURISDICTIONS,
    LATER_SYLLABLES,
    PERIODS,
    PHRASINGS,
    RARE_JURISDICTIONS,
    SECTORS,
    SUFFIXES,
)

__all__ = ["EVAL_PER_TYPE", "FIELDS", "PACK_ID", "TRAIN_PER_TYPE", "build", "response"]

PACK_ID = "contract-clauses"
FIELDS = ("clause_type", "party", "duration", "amount", "currency", "jurisdiction")
EVAL_PER_TYPE = 134  # generated eval clauses per type (+ 9 curated): 1,001 items, 286 critical
TRAIN_PER_TYPE = 86  # training rows per type: 602
LONG_SHARE = {"eval": 0.35, "train": 0.2}
EXTRA_JURISDICTION_SHARE = 0.06
LONG_CHARS = 200  # the curated items' rule: a clause over 200 characters is `long`
CURATED = Path(__file__).with_name("clauses_curated.jsonl")  # the 63 hand-written items of version 1

_SMALL = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_TENS = ("_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def number_words(n: int) -> str:
    """``n`` (0-999) in English words as contracts write them: ``forty-five``, ``one hundred and twenty``."""
    if n < 20:
        return _SMALL[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_SMALL[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    return f"{_SMALL[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")


def response(gold: Mapping[str, Any]) -> str:
    """The answer a competent model gives: the gold as JSON, the six keys in pack order."""
    return json.dumps({key: gold[key] for key in FIELDS})


class _Drafter:
    """Draws one split's clauses from its phrasings, names and boilerplate under a shared ``Random``."""

    def __init__(self, rng: random.Random, split: str):
        self.rng = rng
        self.split = split
        self.names: set[str] = set()
        self.places = JURISDICTIONS + (RARE_JURISDICTIONS if split == "eval" else ())  # rare ones: eval only

    def company(self) -> str:
        """A fictional company name, new in this split (stems from the split's own first syllables)."""
        rng = self.rng
        while True:
            stem, other = self._stem(), self._stem()
            roll = rng.random()
            if roll < 0.1 and other[:3] != stem[:3]:
                name = f"{stem} & {other} LLP"
            elif roll < 0.75:
                name = f"{stem} {rng.choice(SECTORS)} {rng.choice(SUFFIXES)}"
            else:
                name = f"{stem} {rng.choice(SUFFIXES)}"
            if name not in self.names:
                self.names.add(name)
                return name

    def _stem(self) -> str:
        # three syllables (``Pell`` + ``ova`` + ``en``): short stems such as ``Pella`` can be real brands
        second, third = self.rng.sample(LATER_SYLLABLES, 2)
        return self.rng.choice(FIRST_SYLLABLES[self.split]) + second + third

    def period(self, kind: str, avoid: str | None = None) -> tuple[str, str, str]:
        """A period for ``kind``: its gold (``30 days``), noun form and adjective form as written."""
        rng = self.rng
        while True:
            unit, numbers = rng.choice(PERIODS[kind])
            n = rng.choice(numbers)
            gold = f"{n} {unit}"
            if gold != avoid:
                break
        roll = rng.random()
        if roll < 0.45 or (roll >= 0.8 and n > 12):
            count, adjective = str(n), f"{n}-{unit[:-1]}"
        elif roll < 0.8:
            count = f"{number_words(n)} ({n})"
            adjective = f"{count} {unit[:-1]}"
        else:
            count = number_words(n)
            adjective = f"{count}-{unit[:-1]}"
        return gold, f"{count} {unit}", adjective

    def money(self, clause_type: str) -> tuple[float | int, str, str]:
        """An amount for ``clause_type``, its ISO code, and the money as the clause writes it."""
        rng = self.rng
        low, high = {"payment": (2, 6), "liability_cap": (3, 7)}.get(clause_type, (2, 4))
        amount: float | int = rng.randint(10, 99) * 10 ** rng.randint(low, high - 1)
        codes = list(CURRENCY_WEIGHTS)
        code = rng.choices(codes, weights=[CURRENCY_WEIGHTS[c] for c in codes])[0]
        style = rng.random()
        if clause_type == "payment" and code != "JPY" and amount < 100_000 and rng.random() < 0.1:
            amount += rng.choice((0.5, 0.25, 0.75))
            digits = f"{amount:,.2f}"
        elif style < 0.3:
            digits = str(amount)
        elif style < 0.45 and code != "JPY":
            digits = f"{amount:,.2f}"
        else:
            digits = f"{amount:,}"
        form = rng.random()
        if code in CURRENCY_SYMBOLS and form < 0.35:
            written = f"{rng.choice(CURRENCY_SYMBOLS[code])}{digits}"
        elif code in CURRENCY_NAMES and form < 0.55:
            written = f"{digits} {CURRENCY_NAMES[code]}"
        elif form < 0.7:
            written = f"{digits} {code}"
        else:
            written = f"{code} {digits}"
        return amount, code, written

    def place(self) -> tuple[str, str]:
        """A governing place: its gold name and how the clause names it."""
        gold, written = self.rng.choice(self.places)
        return gold, self.rng.choice(written)

    def boilerplate(self, count: int, names: Mapping[str, str]) -> list[str]:
        """``count`` different sentences of boilerplate or distractors, their slots filled."""
        rng = self.rng
        sentences = []
        for template in rng.sample(BOILERPLATE[self.split], count):
            date = f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(2019, 2027)}"
            sentences.append(
                template.format(
                    X=self.company(),
                    O=names["O"],
                    N=f"{rng.randint(2, 24)}.{rng.randint(1, 9)}",
                    REF=str(rng.randint(10_000, 999_999)),
                    PCT=str(rng.randint(2, 8)),
                    DATE=date,
                )
            )
        return sentences

    def clause(self, clause_type: str, phrasing: str, long: bool) -> tuple[str, dict[str, Any]]:
        """One clause of ``clause_type`` from ``phrasing`` and its gold; ``long`` adds boilerplate."""
        rng = self.rng
        gold: dict[str, Any] = dict.fromkeys(FIELDS)
        gold["clause_type"] = clause_type
        slots: dict[str, str] = {"P": self.company(), "O": self.company(), "Q": self.company()}
        if "{P}" in phrasing:
            gold["party"] = slots["P"]
        if "{D}" in phrasing or "{DA}" in phrasing:
            gold["duration"], slots["D"], slots["DA"] = self.period(clause_type)
            slots["D2"] = self.period("notice", avoid=gold["duration"])[1]
        if "{M}" in phrasing:
            gold["amount"], gold["currency"], slots["M"] = self.money(clause_type)
        text = phrasing
        if "{J}" in phrasing:
            gold["jurisdiction"], slots["J"] = self.place()
        elif rng.random() < EXTRA_JURISDICTION_SHARE:
            gold["jurisdiction"], slots["J"] = self.place()
            text += " " + EXTRA_JURISDICTION[self.split]
        sentences = [text.format(**slots)]
        if long:
            before, *after = self.boilerplate(rng.randint(2, 3), slots)
            sentences = [before, *sentences, *after]
        return " ".join(" ".join(sentences).replace("..", ".").split()), gold


def _items(rng: random.Random, split: str, per_type: int, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """``per_type`` generated clauses of each type for ``split``, phrasings dealt evenly, by type."""
    drafter = _Drafter(rng, split)
    seen: set[str] = set()
    by_type: dict[str, list[dict[str, Any]]] = {}
    number = 0
    for clause_type in CLAUSE_TYPES:
        phrasings = PHRASINGS[split][clause_type]
        rows: list[dict[str, Any]] = []
        while len(rows) < per_type:
            phrasing = phrasings[len(rows) % len(phrasings)]
            clause, gold = drafter.clause(clause_type, phrasing, rng.random() < LONG_SHARE[split])
            if clause in seen:
                continue
            seen.add(clause)
            rows.append(_row("", clause, gold))
        rng.shuffle(rows)
        for row in rows:
            number += 1
            row["id"] = f"{prefix}{number:04d}"
        by_type[clause_type] = rows
    return by_type


def _row(item_id: str, clause: str, gold: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": item_id,
        "clause": clause,
        "gold": gold,
        "clause_type": gold["clause_type"],
        "length": "long" if len(clause) > LONG_CHARS else "short",
    }
    if gold["clause_type"] in CRITICAL_TYPES:
        row["critical"] = True
    row["source"] = "generated"
    return row


def curated() -> list[dict[str, Any]]:
    """The hand-written items of pack version 1, verbatim, each marked ``source: curated``.

    Raises:
        RuntimeError: a curated line is not the shape this generator expects (the file was edited).
    """
    rows = []
    for line in CURATED.read_text("utf-8").splitlines():
        row = json.loads(line)
        if row.get("source", "curated") != "curated":
            continue
        if tuple(row["gold"]) != FIELDS or row["clause_type"] not in CLAUSE_TYPES:
            raise RuntimeError(f"{CURATED}: item {row.get('id')} is not a contract-clauses item")
        rows.append({key: value for key, value in row.items() if key != "source"} | {"source": "curated"})
    return rows


def build(seed: int) -> PackData:
    """The pack's eval items (curated and generated, in stratified order) and the training split.

    Raises:
        RuntimeError: a training clause equals an eval clause (normalised): the splits must be disjoint.
    """
    rng = random.Random(seed)
    kept = curated()
    generated = _items(rng, "eval", EVAL_PER_TYPE, "cc-g")
    train = _items(rng, "train", TRAIN_PER_TYPE, "cc-t")
    strata = {}
    for clause_type in CLAUSE_TYPES:
        own = [row for row in kept if row["clause_type"] == clause_type]
        # curated and generated spread evenly inside each type, so any prefix holds both
        strata[f"{clause_type in CRITICAL_TYPES}/{clause_type}"] = interleave(
            {"curated": own, "generated": generated[clause_type]}
        )
    eval_items = interleave(strata)
    train_rows = interleave({t: train[t] for t in CLAUSE_TYPES})
    for row in train_rows:
        row["response"] = response(row["gold"])
    clashes = disjoint(eval_items, train_rows, lambda row: str(row["clause"]))
    if clashes:
        raise RuntimeError(f"training rows repeat eval clauses: {clashes[:5]}")
    critical = sum(bool(row.get("critical")) for row in eval_items)
    return PackData(
        PACK_ID,
        eval_items,
        train_rows,
        notes={"critical": critical, "curated": len(kept), "generated": len(eval_items) - len(kept)},
    )
