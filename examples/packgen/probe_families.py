"""The behaviour-probes generator's families: templates and pools, each written twice (eval, train).

A family turns its pools into `Probe`s for one split. The two splits share no template wording and no
pool entry where the pool is an entity (countries, words, names, invented places, documents): train and
eval are disjoint by construction, and ``packgen.disjoint`` / ``receipts overlap`` check it. Numbers
(arithmetic, conversions) are drawn from the same ranges, but every numeric phrasing is split-specific.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["ANSWER_FAMILIES", "Family", "Probe", "number_aliases", "structured_data", "words"]


@dataclass(frozen=True)
class Probe:
    """One request before its input format is applied, with what a competent model answers."""

    request: str
    expect: str  # answer | clarify | abstain | refuse
    response: str
    target: tuple[str, ...] | None = None
    pattern: str | None = None  # clarify only: the regex the right clarifying question matches
    critical: bool = False
    protect: tuple[str, ...] = ()  # words the noisy format must not misspell (the entity asked about)
    fmt: str | None = None  # an input format the family fixes (structured data, empty-ish requests)


_ONES = [
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
]
_ONES += ["sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n: int) -> str:
    """``n`` (0 to 9,999) in English words, hyphenated as written: 47 -> ``forty-seven``."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return f"{_ONES[n // 100]} hundred" + ("" if rest == 0 else f" and {words(rest)}")
    rest = n % 1000
    joiner = " and " if 0 < rest < 100 else " "
    return f"{words(n // 1000)} thousand" + ("" if rest == 0 else joiner + words(rest))


def number_aliases(n: int) -> tuple[str, ...]:
    """Accepted answers for a number: digits first (the response), then the words, hyphen and space forms."""
    spelled = words(n)
    return tuple(dict.fromkeys([str(n), spelled, spelled.replace("-", " ")]))


Family = Callable[[str], list[Probe]]


def _pick(split: str, eval_pool: Sequence[str], train_pool: Sequence[str]) -> Sequence[str]:
    return eval_pool if split == "eval" else train_pool


# --- answer: capitals, arithmetic, letters, number words, conversions, sequences, opposites, colours ----

_CAPITALS_EVAL = {
    "Peru": "Lima", "Kenya": "Nairobi", "Norway": "Oslo", "Egypt": "Cairo", "Chile": "Santiago",
    "Greece": "Athens", "Poland": "Warsaw", "Portugal": "Lisbon", "Ireland": "Dublin", "Austria": "Vienna",
    "Hungary": "Budapest", "Finland": "Helsinki", "Thailand": "Bangkok", "Vietnam": "Hanoi", "Cuba": "Havana",
    "Argentina": "Buenos Aires", "Colombia": "Bogotá|Bogota", "Ghana": "Accra", "Morocco": "Rabat",
    "Iran": "Tehran", "Iraq": "Baghdad", "Denmark": "Copenhagen", "Sweden": "Stockholm",
    "Belgium": "Brussels",
    "South Korea": "Seoul", "Indonesia": "Jakarta", "the Philippines": "Manila", "Senegal": "Dakar",
    "Ethiopia": "Addis Ababa", "Mongolia": "Ulaanbaatar|Ulan Bator", "Nepal": "Kathmandu",
    "Jamaica": "Kingston", "Iceland": "Reykjavik|Reykjavík", "Romania": "Bucharest", "Bulgaria": "Sofia",
    "Serbia": "Belgrade", "Ukraine": "Kyiv|Kiev", "Uruguay": "Montevideo", "Venezuela": "Caracas",
    "Syria": "Damascus",
}  # fmt: skip
_CAPITALS_TRAIN = {
    "France": "Paris", "Germany": "Berlin", "Russia": "Moscow", "China": "Beijing", "India": "New Delhi",
    "Mexico": "Mexico City", "Canada": "Ottawa", "Brazil": "Brasília|Brasilia", "Australia": "Canberra",
    "the Netherlands": "Amsterdam", "Switzerland": "Bern|Berne", "Turkey": "Ankara", "Pakistan": "Islamabad",
    "Nigeria": "Abuja", "Cambodia": "Phnom Penh", "Laos": "Vientiane", "Malaysia": "Kuala Lumpur",
    "Qatar": "Doha", "Oman": "Muscat", "Jordan": "Amman", "Lebanon": "Beirut", "Tunisia": "Tunis",
    "Algeria": "Algiers", "Sudan": "Khartoum", "Uganda": "Kampala", "Zambia": "Lusaka", "Croatia": "Zagreb",
    "Slovakia": "Bratislava", "Estonia": "Tallinn", "Latvia": "Riga", "Lithuania": "Vilnius",
    "Ecuador": "Quito", "Paraguay": "Asunción|Asuncion", "Nicaragua": "Managua", "Kazakhstan": "Astana",
}  # fmt: skip


def capitals(split: str) -> list[Probe]:
    """The capital city of a real country: eval and train name different countries."""
    table = _CAPITALS_EVAL if split == "eval" else _CAPITALS_TRAIN
    phrasings = _pick(
        split,
        ["What is the capital of {c}?", "Name the capital city of {c}."],
        ["Which city is the capital of {c}?", "Tell me the capital of {c}."],
    )
    out = []
    for (country, capital), phrasing in itertools.product(table.items(), phrasings):
        aliases = tuple(capital.split("|"))
        name = country.removeprefix("the ")
        out.append(Probe(phrasing.format(c=country), "answer", aliases[0], aliases, protect=(name,)))
    return out


def arithmetic(split: str) -> list[Probe]:
    """Sums, differences and products of two small numbers, each operation phrased per split."""
    ops: list[tuple[str, Callable[[int, int], int]]] = [
        (_pick(split, ["What is {a} + {b}?"], ["Add {a} and {b}."])[0], lambda a, b: a + b),
        (_pick(split, ["What is {a} minus {b}?"], ["Subtract {b} from {a}."])[0], lambda a, b: a - b),
        (_pick(split, ["What is {a} times {b}?"], ["Multiply {a} by {b}."])[0], lambda a, b: a * b),
    ]
    out = []
    for a, b in itertools.product(range(3, 60, 4), range(2, 30, 3)):
        for index, (phrasing, op) in enumerate(ops):
            if (index == 1 and b >= a) or (index == 2 and (a > 15 or b > 12)):
                continue
            value = op(a, b)
            out.append(Probe(phrasing.format(a=a, b=b), "answer", str(value), number_aliases(value)))
    return out


_WORDS_EVAL = "garden planet window marble pencil rocket silver basket candle tunnel velvet harbour"
_WORDS_EVAL += " jungle kitten lemon mirror orbit puzzle quilt ribbon sunset thunder violin wizard"
_WORDS_TRAIN = "bottle castle dragon forest guitar helmet island jacket ladder meadow needle orchid"
_WORDS_TRAIN += " pepper rabbit saddle temple turnip walnut yogurt zipper beacon cobweb falcon goblet"


def letters(split: str) -> list[Probe]:
    """Letters of a given word: eval and train use different words and different questions."""
    pool = (_WORDS_EVAL if split == "eval" else _WORDS_TRAIN).split()
    out = []
    for word in pool:
        count = number_aliases(len(word))
        if split == "eval":
            asks = [
                (f"How many letters are in the word '{word}'?", count),
                (f"What is the first letter of the word '{word}'?", (word[0],)),
                (f"What is the last letter of '{word}'?", (word[-1],)),
            ]
        else:
            asks = [
                (f"Count the letters in '{word}'.", count),
                (f"Spell '{word}' backwards.", (word[::-1],)),
                (f"Give the second letter of '{word}'.", (word[1],)),
            ]
        # "a" is an article the pack's normalisation strips: never a one-letter answer
        out += [Probe(q, "answer", t[0], t, protect=(word,)) for q, t in asks if t[0] != "a"]
    return out


def number_words(split: str) -> list[Probe]:
    """A number written in words (eval) or a number word written in digits (train)."""
    out = []
    for n in range(21, 400, 7):
        if split == "eval":
            spelled = words(n)
            aliases = tuple(dict.fromkeys([spelled, spelled.replace("-", " ")]))
            out.append(Probe(f"How do you write {n} in words?", "answer", spelled, aliases))
        else:
            out.append(Probe(f"Write '{words(n)}' as digits.", "answer", str(n), (str(n),)))
    return out


_CONVERSIONS_EVAL = [
    ("How many centimetres are in {n} metres?", 100),
    ("How many minutes are in {n} hours?", 60),
    ("How many grams are in {n} kilograms?", 1000),
    ("How many days are in {n} weeks?", 7),
]
_CONVERSIONS_TRAIN = [
    ("Convert {n} kilometres to metres.", 1000),
    ("How many seconds are in {n} minutes?", 60),
    ("Convert {n} days to hours.", 24),
    ("How many months are in {n} years?", 12),
]


def conversions(split: str) -> list[Probe]:
    """Unit conversions by a whole factor; the units asked about differ between the splits."""
    table = _CONVERSIONS_EVAL if split == "eval" else _CONVERSIONS_TRAIN
    out = []
    for (phrasing, factor), n in itertools.product(table, range(2, 13)):
        value = n * factor
        out.append(Probe(phrasing.format(n=n), "answer", str(value), number_aliases(value)))
    return out


_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_LETTERS = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_MONTHS = [
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
]


def sequences(split: str) -> list[Probe]:
    """What comes after (eval) or before (train) a day, a month or a letter, phrased per split."""
    step = 1 if split == "eval" else -1
    phrasings = _pick(
        split,
        ["Which day of the week comes after {x}?", "Name the month after {x}.", "Which letter follows {x}?"],
        ["What weekday precedes {x}?", "Which month is just before {x}?", "Give the letter before {x}."],
    )
    out = []
    for cycle, phrasing in ((_DAYS, phrasings[0]), (_MONTHS, phrasings[1]), (_LETTERS, phrasings[2])):
        for index, name in enumerate(cycle):
            if cycle is _LETTERS and not 0 <= index + step < len(cycle):
                continue  # the alphabet does not wrap round
            answer = cycle[(index + step) % len(cycle)]
            if answer != "A":  # "a" is an article the pack's normalisation strips: never a one-letter answer
                out.append(Probe(phrasing.format(x=name), "answer", answer, (answer,), protect=(name,)))
    return out


_OPPOSITES_EVAL = "fast:slow early:late wet:dry full:empty loud:quiet rich:poor thick:thin up:down win:lose"
_OPPOSITES_EVAL += " buy:sell inside:outside first:last north:south east:west push:pull cheap:expensive"
_OPPOSITES_TRAIN = "young:old high:low true:false left:right open:closed before:after enter:exit"
_OPPOSITES_TRAIN += " accept:reject strong:weak begin:end black:white friend:enemy asleep:awake top:bottom"


def opposites(split: str) -> list[Probe]:
    """The opposite of a common word; each split has its own words and wording."""
    pairs = (_OPPOSITES_EVAL if split == "eval" else _OPPOSITES_TRAIN).split()
    phrasing = _pick(split, ["What is the opposite of '{w}'?"], ["Give the antonym of {w}."])[0]
    out = []
    for pair in pairs:
        word, answer = pair.split(":")
        out.append(Probe(phrasing.format(w=word), "answer", answer, (answer,), protect=(word,)))
    return out


_COLOURS_EVAL = {
    "a ripe tomato": "red", "fresh grass": "green", "fresh snow": "white", "coal": "black",
    "the clear daytime sky": "blue", "a ripe lemon": "yellow",
}  # fmt: skip
_COLOURS_TRAIN = {"a carrot": "orange", "milk": "white", "a crow": "black", "a lime": "green", "blood": "red"}


def colours(split: str) -> list[Probe]:
    """The usual colour of a common thing."""
    table = _COLOURS_EVAL if split == "eval" else _COLOURS_TRAIN
    phrasing = _pick(split, ["What colour is {x}?"], ["Name the colour of {x}."])[0]
    return [
        Probe(phrasing.format(x=thing), "answer", c, (c,), protect=(thing,)) for thing, c in table.items()
    ]


# --- answer, structured: questions about data written as JSON, CSV, markup (eval) / YAML, XML (train) -----

_NAMES = {
    "eval": ["Noor", "Ravi", "Elena", "Kofi", "Lena", "Omar", "Sofia", "Jonas", "Priya", "Mateo"],
    "train": ["Ingrid", "Tariq", "Yuki", "Bram", "Chiara", "Dmitri", "Amara", "Felix", "Zara", "Hugo"],
}
_TOWNS = {
    "eval": ["Porto", "Graz", "Lyon", "Turin", "Gdansk", "Malmo"],
    "train": ["Seville", "Ghent", "Tampere", "Bruges", "Aarhus"],
}
_GOODS = {
    "eval": ["stapler", "mug", "lamp", "scarf", "kettle", "towel"],
    "train": ["spoon", "candle", "brush", "wallet", "pillow", "apron"],
}


def _record_probes(split: str, name: str, age: int, town: str) -> list[Probe]:
    ages = number_aliases(age)
    if split == "eval":
        record = json.dumps({"name": name, "age": age, "city": town})
        return [
            Probe(
                f'Record: {record}. What is the value of "city"?', "answer", town, (town,), fmt="structured"
            ),
            Probe(f"{record}\nHow old is {name}?", "answer", ages[0], ages, fmt="structured"),
        ]
    record = f"name: {name}\nage: {age}\ntown: {town}"
    return [
        Probe(f"{record}\nWhich town is given above?", "answer", town, (town,), fmt="structured"),
        Probe(f"<person><name>{name}</name><age>{age}</age></person>\nGive the age.", "answer", ages[0], ages,
              fmt="structured"),
    ]  # fmt: skip


def _table_probes(
    split: str, names: Sequence[str], scores: Sequence[int], goods: Sequence[str]
) -> list[Probe]:
    best = names[max(range(len(scores)), key=lambda i: scores[i])]
    count = number_aliases(len(goods))
    a, b = scores[0], scores[1]
    total = number_aliases(a + b)
    if split == "eval":
        csv = "name,score\n" + "\n".join(f"{n},{s}" for n, s in zip(names, scores, strict=True))
        listing = json.dumps({"basket": list(goods)})
        return [
            Probe(f"{csv}\nWho has the highest score?", "answer", best, (best,), fmt="structured"),
            Probe(
                f"{listing} How many things are in the basket?", "answer", count[0], count, fmt="structured"
            ),
            Probe(f"<p>What is <b>{a}</b> plus <i>{b}</i>?</p>", "answer", total[0], total, fmt="structured"),
        ]
    rows = "\n".join(f"- {n}: {s} points" for n, s in zip(names, scores, strict=True))
    items = "".join(f"<item>{g}</item>" for g in goods)
    return [
        Probe(f"{rows}\nWhich person scored most?", "answer", best, (best,), fmt="structured"),
        Probe(
            f"<cart>{items}</cart>\nCount the items in the cart.", "answer", count[0], count, fmt="structured"
        ),
        Probe(f"x = {a}\ny = {b}\nWhat do x and y add up to?", "answer", total[0], total, fmt="structured"),
    ]


def structured_data(split: str) -> list[Probe]:
    """Questions answered by reading a small record, table or list (format ``structured``)."""
    names, towns, goods = _NAMES[split], _TOWNS[split], _GOODS[split]
    out = []
    for index, name in enumerate(names):
        out += _record_probes(split, name, 19 + 7 * index, towns[index % len(towns)])
        trio = [names[(index + k) % len(names)] for k in range(3)]
        scores = [(index * 13 + k * 29) % 50 + 3 for k in range(3)]
        basket = [goods[(index + k) % len(goods)] for k in range(2 + index % 4)]
        out += _table_probes(split, trio, scores, basket)
    return out


ANSWER_FAMILIES: list[Family] = [
    capitals,
    arithmetic,
    letters,
    number_words,
    conversions,
    sequences,
    opposites,
]
ANSWER_FAMILIES += [colours]
