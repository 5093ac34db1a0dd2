"""capitals-mc's items: the 105 curated questions plus templated ones, and a disjoint training split.

Every fact comes from the tables in ``capitals_facts``; the templates only phrase them. Each fact (a
country, a multiplication pair, a unit conversion, an element, an object, a science fact) goes to the
eval pack or to the training split, never both, and an eval item's distractors come from the eval side
only, so training never teaches which choice of an eval item is wrong. ``build`` raises when a training
row's question equals an eval question or names an eval country or capital.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from packgen import PackData, disjoint, interleave
from packgen.capitals_facts import (
    ANIMALS,
    CONFUSED_FACTORS,
    CONTRASTS,
    COUNTRIES,
    ELEMENTS,
    FACTS,
    PLANETS,
    UNIT_PAIRS,
)

__all__ = ["PACK_ID", "build"]

PACK_ID = "capitals-mc"
CURATED = Path(__file__).with_name("capitals_curated.jsonl")
EVAL_SHARE = 0.6  # of the facts that can go either way, the share the eval pack gets

Item = dict[str, Any]
Country = tuple[str, str, str, str, tuple[str, ...]]


class _Maker:
    """Makes four-choice items for one side (eval or train): shuffles choices, checks them."""

    def __init__(self, rng: random.Random, *, train: bool) -> None:
        self.rng = rng
        self.train = train
        self.items: list[Item] = []
        self.offered: set[frozenset[str]] = set()  # choice sets of "which of these" items

    def add(
        self, question: str, gold: str, wrong: Iterable[str], domain: str, difficulty: str, *, critical: bool
    ) -> None:
        """One item: ``gold`` and the first three distinct ``wrong`` answers, in seeded order."""
        distractors: list[str] = []
        for choice in wrong:
            if choice != gold and choice not in distractors:
                distractors.append(choice)
        if len(distractors) < 3:
            raise ValueError(f"capitals-mc generator: fewer than 3 distractors for {question!r}")
        choices = [gold, *distractors[:3]]
        self.rng.shuffle(choices)
        item: Item = {"question": question, "choices": choices, "label": choices.index(gold)}
        item |= {"domain": domain, "difficulty": difficulty}
        if critical:
            item["critical"] = True
        self.items.append(item)

    def pick(self, pool: Sequence[Any], k: int) -> list[Any]:
        """``k`` values of ``pool`` (fewer if it is smaller), in seeded order."""
        return self.rng.sample(list(pool), min(k, len(pool)))

    def mix(self, pool: Iterable[Any]) -> list[str]:
        """``pool``'s values as text, in seeded order (``add`` takes the first three distinct)."""
        values = [str(value) for value in pool]
        self.rng.shuffle(values)
        return values


def _split(
    rng: random.Random, values: Sequence[Any], forced: Iterable[Any] = (), least: int = 1
) -> tuple[list[Any], list[Any]]:
    """``values`` dealt to (eval, train): the ``forced`` ones to eval, then ``EVAL_SHARE`` of the rest.

    Each side gets at least ``least`` values (where there are enough).
    """
    must = [v for v in values if v in set(forced)]
    rest = [v for v in values if v not in must]
    rng.shuffle(rest)
    share = min(max(round(len(values) * EVAL_SHARE), least), len(values) - least)
    cut = max(0, share - len(must))
    return must + rest[:cut], rest[cut:]


def _title(text: str) -> str:
    return text[:1].upper() + text[1:]


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" or noun == "hour" else f"a {noun}"


# --- geography -----------------------------------------------------------------------------------


def _geography(
    make: _Maker, countries: Sequence[Country], asked: tuple[set[str], set[str]], *, train: bool
) -> None:
    """Capital questions both ways for ``countries`` (not those curated items ask), distractors from them."""
    pool, (asked_fore, asked_back) = countries, asked
    by_region: dict[str, list[Country]] = defaultdict(list)
    for country in pool:
        by_region[country[2]].append(country)
    forward = [
        "What is the capital of {c}?",
        "{C}'s capital city is which?",
        "Which city is the capital of {c}?",
    ]
    reverse = ["Which country has {cap} as its capital?", "{cap} is the capital of which country?"]
    for name, capital, region, difficulty, cities in countries:
        near = [c for c in by_region[region] if c[0] != name]
        if len(near) < 3:
            near += [c for c in pool if c[2] != region]
        phrasings = forward if train else forward[:2]
        if name.endswith("s"):  # "The Bahamas's capital" reads wrong; ask it another way
            phrasings = [p for p in phrasings if "{C}'s" not in p]
        if name not in asked_fore:
            chosen = make.pick(phrasings, 2 if train else 1)
            for phrasing in chosen:
                wrong = [*cities, *(c[1] for c in make.pick(near, 6))]
                question = phrasing.format(c=name, C=_title(name))
                make.add(question, capital, wrong, "geography", difficulty, critical=False)
        if name in asked_back:
            continue
        for phrasing in make.pick(reverse, 1) if train else reverse[:1]:
            wrong = [c[0] for c in make.pick(near, 6)]
            make.add(phrasing.format(cap=capital), name, wrong, "geography", difficulty, critical=False)


def _countries(rng: random.Random, curated: Sequence[Item]) -> tuple[list[Country], list[Country], Any]:
    """(eval countries, train countries, (countries curated items ask the capital of, and the reverse)).

    A country any curated item mentions (asked, or offered as a choice) is an eval country.
    """
    text = " ".join(item["question"] for item in curated)
    mentioned = {choice for item in curated for choice in item["choices"]}
    fore = {c[0] for c in COUNTRIES if f"the capital of {c[0]}?" in text}
    back = {c[0] for c in COUNTRIES if f"{c[1]} is the capital of which country?" in text}
    forced = [c for c in COUNTRIES if c[0] in fore or {c[0], c[1], *c[4]} & mentioned]
    eval_countries, train_countries = _split(rng, COUNTRIES, forced)
    return sorted(eval_countries), sorted(train_countries), (fore, back)


# --- arithmetic ----------------------------------------------------------------------------------

CURATED_FACTS = {
    ("+", 1, 1), ("+", 2, 3), ("+", 7, 8), ("+", 12, 12), ("+", 15, 27),
    ("-", 10, 4), ("-", 9, 3), ("-", 20, 7),
}  # fmt: skip
CURATED_PAIRS = {
    (3, 4),
    (5, 5),
    (6, 7),
    (8, 9),
    (2, 5),
    (10, 10),
}  # times, and divided by (half of 10, 100 / 10)
WORD = (
    ("One {item} costs {a} euros. How many euros do {b} {items} cost?", "*"),
    ("A box holds {a} {items}. How many {items} are in {b} boxes?", "*"),
    ("If {p} {items} are shared equally among {b} people, how many {items} does each person get?", "/"),
    ("Chairs are set out in {a} rows of {b}. How many chairs are there?", "*"),
)
THINGS = (
    ("apple", "apples"),
    ("pencil", "pencils"),
    ("egg", "eggs"),
    ("biscuit", "biscuits"),
    ("stamp", "stamps"),
)


def _near(gold: int, *candidates: int) -> list[int]:
    return [c for c in candidates if c > 0 and c != gold]


def _table_items(make: _Maker, pairs: Sequence[tuple[int, int]]) -> None:
    """Per multiplication-table pair: the product, a division and a word problem (all critical)."""
    for a, b in pairs:
        if make.rng.random() < 0.5:
            a, b = b, a
        p = a * b
        level = "medium" if max(a, b) <= 10 else "hard"
        times = make.rng.choice(["What is {a} times {b}?", "What is {a} multiplied by {b}?"])
        wrong = _near(p, p + a, p - b, p + b, a + b, p + 10, p - 1)
        make.add(times.format(a=a, b=b), str(p), make.mix(wrong), "arithmetic", level, critical=True)
        wrong = _near(b, b + 1, b - 1, b + 2, a, b * 2)
        make.add(f"What is {p} divided by {a}?", str(b), make.mix(wrong), "arithmetic", level, critical=True)
        template, op = make.rng.choice(WORD)
        item, items = make.rng.choice(THINGS)
        question = template.format(a=a, b=b, p=p, item=item, items=items)
        gold = p if op == "*" else a
        wrong = (
            _near(gold, gold + a, gold - b, gold + b, a + b, gold + 1)
            if op == "*"
            else _near(a, a + 1, a - 1, b, a * 2)
        )
        make.add(question, str(gold), make.mix(wrong), "arithmetic", level, critical=True)


def _sum_items(make: _Maker, facts: Sequence[tuple[str, int, int]]) -> None:
    """Addition, subtraction and two-digit multiplication (not critical: checked before relied on)."""
    for op, a, b in facts:
        if op == "+":
            gold = a + b
            text = make.rng.choice(["What is {a} + {b}?", "What is {a} plus {b}?"])
            wrong = _near(gold, gold + 1, gold - 1, gold + 10, gold - 10, gold + 2)
        elif op == "-":
            gold = a - b
            text = make.rng.choice(["What is {a} - {b}?", "What is {a} minus {b}?"])
            wrong = _near(gold, gold + 1, gold - 1, gold + 10, gold - 10, a + b, gold + 2)
        else:
            gold = a * b
            text = make.rng.choice(["What is {a} times {b}?", "What is {a} multiplied by {b}?"])
            wrong = _near(gold, gold + b, gold - b, gold + 10, gold - 10, gold + a)
        level = "easy" if gold <= 20 and op != "*" else "hard" if op == "*" or gold >= 100 else "medium"
        make.add(text.format(a=a, b=b), str(gold), make.mix(wrong), "arithmetic", level, critical=False)


def _sum_facts(rng: random.Random, n: int) -> list[tuple[str, int, int]]:
    """``n`` distinct +, - and two-digit times facts (none curated), in seeded order."""
    found: list[tuple[str, int, int]] = []
    while len(found) < n:
        op = rng.choice(["+", "+", "-", "-", "*"])
        if op == "*":
            a, b = rng.randint(13, 25), rng.randint(3, 9)
        elif rng.random() < 0.3:
            a, b = rng.randint(2, 9), rng.randint(2, 9)
        else:
            a, b = rng.randint(11, 99), rng.randint(2, 99)
        if op == "-" and a <= b:
            a, b = b, a
        key = (op, *sorted((a, b))) if op != "-" else (op, a, b)
        if a == b or key in CURATED_FACTS or key in found:
            continue
        found.append(key)  # type: ignore[arg-type]
    return found


# --- units ---------------------------------------------------------------------------------------

MULTIPLES = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 16, 20, 24, 25, 30, 40, 50, 75, 100)


def _unit_items(make: _Maker, facts: Sequence[tuple[int, int | str]]) -> None:
    """One conversion per (unit pair, multiple): forward, backward, or a half / a quarter (all critical)."""
    for index, n in facts:
        big, small, factor, _ = UNIT_PAIRS[index]
        confused = CONFUSED_FACTORS[factor]
        if isinstance(n, str):  # "half" or "a quarter"
            gold = factor // 2 if n == "half" else factor // 4
            text = f"How many {small}s are in {n} {_article(big)}?" if n == "half" else None
            text = text or f"How many {small}s are in a quarter of {_article(big)}?"
            wrong = _near(gold, *(f // (2 if n == "half" else 4) for f in confused), gold * 2, gold + 10)
            make.add(text, str(gold), make.mix(wrong), "units", "hard", critical=True)
            continue
        total = n * factor
        hard = factor > 1000 or factor in (168,)
        if make.rng.random() < 0.5:
            text = make.rng.choice(
                ["How many {s}s are in {n} {b}s?", "In {n} {b}s, how many {s}s are there?"]
            )
            wrong = _near(total, *(n * f for f in confused), total + factor, total * 10)
            level = "hard" if hard else "easy" if factor in (60, 24, 7) and n <= 5 else "medium"
            question = text.format(s=small, b=big, n=n)
            make.add(question, str(total), make.mix(wrong), "units", level, critical=True)
        else:
            text = make.rng.choice(
                ["How many {b}s are in {t} {s}s?", "In {t} {s}s, how many {b}s are there?"]
            )
            wrong = _near(n, *(total // f for f in confused if total % f == 0), n + 1, n - 1, n * 10, n * 2)
            question = text.format(s=small, b=big, t=total)
            make.add(question, str(n), make.mix(wrong), "units", "hard" if hard else "medium", critical=True)


def _unit_facts() -> list[tuple[int, int | str]]:
    facts: list[tuple[int, int | str]] = []
    for index, (_, _, factor, _) in enumerate(UNIT_PAIRS):
        multiples = MULTIPLES if factor <= 1000 else MULTIPLES[:9]
        facts += [(index, n) for n in multiples]
        if factor % 4 == 0:
            facts += [(index, "half"), (index, "a quarter")]
    return facts


# --- science and physical ------------------------------------------------------------------------

ORDINALS = (
    "closest to",
    *(f"{n} from" for n in ("second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")),
)


def _science_items(make: _Maker, elements: Sequence[tuple[str, str, str]], planets: Sequence[int]) -> None:
    """Chemical symbols both ways (distractors: this side's symbols, same initial first) and planets."""
    for name, symbol, level in elements:
        same = [s for _, s, _ in elements if s[0] == name[0].upper()]
        other = [s for _, s, _ in elements if s not in same]
        wrong = make.pick(same, 3) + make.pick(other, 5)
        make.add(f"What is the chemical symbol for {name}?", symbol, wrong, "science", level, critical=False)
        wrong = [n for n, _, _ in make.pick(elements, 5)]
        make.add(
            f"Which element has the chemical symbol {symbol}?", name, wrong, "science", level, critical=False
        )
    for index in planets:
        wrong = make.pick([p for p in PLANETS if p != PLANETS[index]], 3)
        level = "easy" if index in (0, 2) else "medium"
        question = f"Which planet is {ORDINALS[index]} the Sun?"
        make.add(question, PLANETS[index], wrong, "science", level, critical=False)


def _animal_items(make: _Maker, animals: dict[str, list[str]], per_gold: int) -> None:
    """Items like "Which of these animals is a bird?"; the others from this side's other classes."""
    for kind in sorted(animals):
        others = [a for k in sorted(animals) if k != kind for a in animals[k]]
        for gold in animals[kind]:
            for _ in range(per_gold):
                choices = [_article(a) for a in _fresh(make, gold, others)]
                head = f"Which of these animals is {_article(kind)}"
                _which(make, head, _article(gold), choices, "science", "medium", critical=False)


def _which(
    make: _Maker, head: str, gold: str, wrong: list[str], domain: str, level: str, *, critical: bool
) -> None:
    """A "which of these" item: the question is the head alone, as the curated ones ask it.

    Several eval items share a head (with different choices); a training row words it "Which one of
    these", so no training question equals an eval question. (Listing the choices in the question was
    tried: a small model then picks the last-listed choice, and the item measures that, not the fact.)
    """
    question = f"{head.replace('Which of these', 'Which one of these') if make.train else head}?"
    make.add(question, gold, wrong, domain, level, critical=critical)


def _fresh(make: _Maker, gold: str, pool: Sequence[str]) -> list[str]:
    """Three of ``pool`` never offered beside ``gold`` together before (so no question repeats)."""
    for _ in range(100):
        wrong = make.pick(pool, 3)
        key = frozenset([gold, *wrong])
        if key not in make.offered:
            make.offered.add(key)
            return wrong
    raise ValueError(f"capitals-mc generator: too few distractors left for {gold!r}")


def _contrast_items(make: _Maker, sides: dict[str, tuple[list[str], list[str]]], per_gold: int) -> None:
    """Items like "Which of these floats on water?": one object with the property, three without."""
    for head, domain, critical, _, _ in CONTRASTS:
        yes, no = sides[head]
        for gold in yes:
            for _ in range(min(per_gold, math.comb(len(no), 3))):
                _which(make, head, gold, _fresh(make, gold, no), domain, "easy", critical=critical)


def _contrast_sides(rng: random.Random, forced: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each contrast's objects dealt to eval and train; mirrored contrasts (floats / sinks) share a deal."""
    dealt: dict[frozenset[str], dict[str, str]] = {}
    eval_side: dict[str, tuple[list[str], list[str]]] = {}
    train_side: dict[str, tuple[list[str], list[str]]] = {}
    for head, _, _, yes, no in CONTRASTS:
        key = frozenset(yes) | frozenset(no)
        if key not in dealt:
            deal: dict[str, str] = {}
            for group in (yes, no):
                ev, tr = _split(rng, group, forced, least=3)
                deal |= dict.fromkeys(ev, "eval") | dict.fromkeys(tr, "train")
            dealt[key] = deal
        deal = dealt[key]
        eval_side[head] = ([o for o in yes if deal[o] == "eval"], [o for o in no if deal[o] == "eval"])
        train_side[head] = ([o for o in yes if deal[o] == "train"], [o for o in no if deal[o] == "train"])
    return eval_side, train_side


def _fact_items(make: _Maker, facts: Sequence[tuple[str, str, tuple[str, str, str], str, str, bool]]) -> None:
    for question, gold, wrong, domain, level, critical in facts:
        make.add(question, gold, wrong, domain, level, critical=critical)


# --- the pack ------------------------------------------------------------------------------------


def _side(make: _Maker, rng: random.Random, plan: dict[str, Any], *, train: bool) -> list[Item]:
    """Every generated item of one side, from that side's share of the facts in ``plan``."""
    _geography(make, plan["countries"], plan["asked"], train=train)
    _table_items(make, plan["pairs"])
    _sum_items(make, plan["sums"])
    _unit_items(make, plan["units"])
    _science_items(make, plan["elements"], plan["planets"])
    _animal_items(make, plan["animals"], per_gold=2)
    _contrast_items(make, plan["contrasts"], per_gold=2 if train else 3)
    _fact_items(make, plan["facts"])
    return make.items


def _plans(rng: random.Random, curated: Sequence[Item]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The facts dealt to the eval pack and to the training split (each fact to one side)."""
    ev: dict[str, Any] = {}
    tr: dict[str, Any] = {}
    ev["countries"], tr["countries"], asked = _countries(rng, curated)
    ev["asked"], tr["asked"] = asked, (set(), set())
    pairs = [(a, b) for a in range(2, 13) for b in range(a, 13) if (a, b) not in CURATED_PAIRS]
    ev["pairs"], tr["pairs"] = _split(rng, pairs)
    sums = _sum_facts(rng, 310)
    ev["sums"], tr["sums"] = sums[:225], sums[225:]
    ev["units"], tr["units"] = _split(rng, _unit_facts())
    ev["elements"], tr["elements"] = _split(rng, ELEMENTS)
    ev["planets"], tr["planets"] = _split(rng, range(len(ORDINALS)))
    ev["animals"], tr["animals"] = {}, {}
    for kind, names in ANIMALS.items():
        ev["animals"][kind], tr["animals"][kind] = _split(rng, names)
    forced = {choice for item in curated for choice in item["choices"]}
    ev["contrasts"], tr["contrasts"] = _contrast_sides(rng, forced)
    critical = [f for f in FACTS if f[5]]
    ev_facts, tr["facts"] = _split(rng, [f for f in FACTS if not f[5]])
    ev["facts"] = critical + ev_facts  # the safety facts are all measured, none trained on
    return ev, tr


def _checked(
    eval_items: Sequence[Item], train_items: Sequence[Item], train_countries: Sequence[Country]
) -> None:
    """Raise on a malformed item, a repeated eval item, or any train/eval overlap."""
    seen: set[tuple[str, frozenset[str]]] = set()
    for item in [*eval_items, *train_items]:
        choices = item["choices"]
        if len(choices) != 4 or len(set(choices)) != 4 or not 0 <= item["label"] < 4:
            raise ValueError(f"capitals-mc generator: bad choices in {item['id']}: {choices}")
    for item in eval_items:
        key = (" ".join(item["question"].lower().split()), frozenset(item["choices"]))
        if key in seen:
            raise ValueError(f"capitals-mc generator: item twice in the eval pack: {item['question']!r}")
        seen.add(key)
    overlap = disjoint(eval_items, train_items, lambda row: row["question"])
    named = {str(text) for item in eval_items for text in [item["question"], *item["choices"]]}
    named_twice = [c[0] for c in train_countries if c[0] in named or c[1] in named]
    if overlap or named_twice:
        raise ValueError(f"capitals-mc generator: train rows overlap the eval pack: {overlap or named_twice}")


def build(seed: int) -> PackData:
    """The eval items (curated, then generated, stratified) and the training split, under ``seed``."""
    rng = random.Random(seed)
    curated = [json.loads(line) | {"source": "curated"} for line in CURATED.read_text("utf-8").splitlines()]
    ev, tr = _plans(rng, curated)
    make = _Maker(rng, train=False)
    make.offered = {frozenset(item["choices"]) for item in curated}
    generated = _side(make, rng, ev, train=False)
    train = _side(_Maker(rng, train=True), rng, tr, train=True)
    for number, item in enumerate(generated, 1):
        generated[number - 1] = {"id": f"cap-g{number:04d}", **item, "source": "generated"}
    for number, item in enumerate(train, 1):
        gold = item["choices"][item["label"]]
        train[number - 1] = {"id": f"cap-t{number:04d}", **item, "source": "generated", "response": gold}
    strata: dict[str, list[Item]] = defaultdict(list)
    for item in [*curated, *generated]:
        strata[f"{bool(item.get('critical'))}|{item['domain']}|{item['source']}"].append(item)
    for key in sorted(strata):
        rng.shuffle(strata[key])
    eval_items = interleave(strata)
    _checked(eval_items, train, tr["countries"])
    notes = {"critical": sum(bool(item.get("critical")) for item in eval_items)}
    return PackData(PACK_ID, eval_items, train, notes)
