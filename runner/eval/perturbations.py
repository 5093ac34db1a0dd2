"""Deterministic text perturbations for robustness variants, after HELM's set.

Every random choice comes from a generator seeded by (seed, item id, variant name, field), so the same
pack yields the same perturbed prompts on every machine and every run. A perturbation changes at
least one word (or run, or letter) whenever the text has anything it can change.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DEFAULT_RATES",
    "PERTURBATIONS",
    "Perturbation",
    "PerturbationSpec",
    "case",
    "contraction",
    "filler",
    "perturb",
    "rng_for",
    "typo",
    "whitespace",
]


class Perturbation(Protocol):
    """A text perturbation: pure, given the text, a seeded generator, a rate and a mode."""

    def __call__(self, text: str, rng: random.Random, rate: float, mode: str | None) -> str:
        """Return the perturbed text."""
        ...


@dataclass(frozen=True)
class PerturbationSpec:
    """A perturbation as a pack declares it: its kind, seed, rate and mode (None: the default)."""

    kind: str
    seed: int = 0
    rate: float | None = None
    mode: str | None = None


def rng_for(seed: int, item_id: str, variant: str, field: str = "") -> random.Random:
    """The generator for one (seed, item, variant, field): independent of order and of Python's hash."""
    material = "\x1f".join((str(seed), item_id, variant, field)).encode("utf-8")
    # Reproducible noise, not security: Mersenne Twister seeded from sha256 is stable across versions.
    return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))  # noqa: S311


def _pick(rng: random.Random, count: int, rate: float) -> list[int]:
    """Indices of about ``rate`` of ``count`` things, at least one, in order."""
    k = min(count, max(1, round(rate * count)))
    return sorted(rng.sample(range(count), k))


# --- typo ----------------------------------------------------------------------------------------

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, str]:
    """Keys touching each letter on a QWERTY keyboard: same row, and the staggered rows above and below."""
    where = {(r, c): ch for r, row in enumerate(_ROWS) for c, ch in enumerate(row)}
    # each row sits half a key right of the one above: above is (c, c+1), below is (c-1, c)
    offsets = ((0, -1), (0, 1), (-1, 0), (-1, 1), (1, -1), (1, 0))
    return {
        ch: "".join(where[(r + dr, c + dc)] for dr, dc in offsets if (r + dr, c + dc) in where)
        for (r, c), ch in where.items()
    }


_NEIGHBOURS = _neighbours()
_WORD = re.compile(r"[A-Za-z]{3,}")


def _typo_word(word: str, rng: random.Random) -> str:
    op = rng.choice(("adjacent", "swap", "drop"))
    if op == "swap":
        spots = [i for i in range(len(word) - 1) if word[i].lower() != word[i + 1].lower()]
        if spots:
            i = rng.choice(spots)
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        op = "adjacent"
    if op == "drop":
        i = rng.randrange(1, len(word))  # typists rarely miss the first letter
        return word[:i] + word[i + 1 :]
    i = rng.randrange(len(word))
    key = rng.choice(_NEIGHBOURS[word[i].lower()])
    return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]


def typo(text: str, rng: random.Random, rate: float, mode: str | None = None) -> str:
    """Misspell a fraction ``rate`` of the words of 3+ letters: an adjacent key, a swap or a drop."""
    words = list(_WORD.finditer(text))
    if not words:
        return text
    out, last = [], 0
    for index in _pick(rng, len(words), rate):
        match = words[index]
        out += [text[last : match.start()], _typo_word(match.group(), rng)]
        last = match.end()
    return "".join([*out, text[last:]])


# --- case ----------------------------------------------------------------------------------------

_APOSTROPHES = "'\u2019"
_TITLE_WORD = re.compile(rf"[^\W\d_][\w{_APOSTROPHES}]*")


def case(text: str, rng: random.Random, rate: float, mode: str | None = None) -> str:
    """Change letter case: ``lower`` (default, HELM's), ``upper``, ``title`` or ``random`` (a fraction)."""
    mode = mode or "lower"
    if mode == "lower":
        return text.lower()
    if mode == "upper":
        return text.upper()
    if mode == "title":
        return _TITLE_WORD.sub(lambda m: m.group()[0].upper() + m.group()[1:].lower(), text)
    if mode != "random":
        raise ValueError(f"unknown case mode {mode!r}")
    letters = [i for i, ch in enumerate(text) if ch.swapcase() != ch]
    if not letters:
        return text
    chars = list(text)
    flips = [i for i in letters if rng.random() < rate] or [rng.choice(letters)]
    for i in flips:
        chars[i] = chars[i].swapcase()
    return "".join(chars)


# --- whitespace ----------------------------------------------------------------------------------

_SPACES = re.compile(r" +")


def whitespace(text: str, rng: random.Random, rate: float, mode: str | None = None) -> str:
    """Replace a fraction ``rate`` of the runs of spaces by 2-4 spaces (newlines are left alone)."""
    runs = list(_SPACES.finditer(text))
    if not runs:
        return text + " "
    out, last = [], 0
    for index in _pick(rng, len(runs), rate):
        run = runs[index]
        width = rng.choice([n for n in (1, 2, 3, 4) if n != len(run.group())])
        out += [text[last : run.start()], " " * width]
        last = run.end()
    return "".join([*out, text[last:]])


# --- contraction ---------------------------------------------------------------------------------

# expanded -> contracted; the reverse map expands (ambiguous forms take the reading listed here)
_CONTRACTIONS = {
    "are not": "aren't",
    "cannot": "can't",
    "could not": "couldn't",
    "did not": "didn't",
    "does not": "doesn't",
    "do not": "don't",
    "had not": "hadn't",
    "has not": "hasn't",
    "have not": "haven't",
    "is not": "isn't",
    "should not": "shouldn't",
    "was not": "wasn't",
    "were not": "weren't",
    "will not": "won't",
    "would not": "wouldn't",
    "I am": "I'm",
    "I have": "I've",
    "I will": "I'll",
    "I would": "I'd",
    "you are": "you're",
    "you have": "you've",
    "you will": "you'll",
    "we are": "we're",
    "we have": "we've",
    "they are": "they're",
    "they have": "they've",
    "it is": "it's",
    "that is": "that's",
    "there is": "there's",
    "what is": "what's",
    "who is": "who's",
    "where is": "where's",
    "how is": "how's",
    "he is": "he's",
    "she is": "she's",
    "let us": "let's",
}
_EXPANSIONS = {short.lower(): long for long, short in _CONTRACTIONS.items()}


def _alternation(phrases: list[str], *, apostrophes: bool) -> re.Pattern[str]:
    parts = []
    for phrase in sorted(phrases, key=len, reverse=True):
        part = r"\s+".join(re.escape(word) for word in phrase.split(" "))
        parts.append(part.replace("'", f"[{_APOSTROPHES}]") if apostrophes else part)
    edge = rf"[\w{_APOSTROPHES}]"
    return re.compile(rf"(?<!{edge})(?:" + "|".join(parts) + rf")(?!{edge})", re.IGNORECASE)


_CONTRACTIBLE = _alternation(list(_CONTRACTIONS), apostrophes=False)
_EXPANDABLE = _alternation(list(_CONTRACTIONS.values()), apostrophes=True)
_SHORT_FOR = {long.lower(): short for long, short in _CONTRACTIONS.items()}


def _like(source: str, target: str) -> str:
    """``target`` in the case pattern of ``source`` (all caps, capitalised, or as written)."""
    if source.isupper() and len(source) > 1:
        return target.upper()
    if source[0].isupper():
        return target[0].upper() + target[1:]
    return target


def contraction(text: str, rng: random.Random, rate: float, mode: str | None = None) -> str:
    """Contract ("do not" -> "don't") or expand ("don't" -> "do not") common English contractions.

    ``auto`` (default) contracts when the text has anything to contract, and expands otherwise.
    Deterministic: it changes every occurrence, so ``rng`` and ``rate`` are unused.
    """
    mode = mode or "auto"
    if mode == "auto":
        mode = "contract" if _CONTRACTIBLE.search(text) else "expand"
    if mode == "contract":
        return _CONTRACTIBLE.sub(
            lambda m: _like(m.group(), _SHORT_FOR[" ".join(m.group().lower().split())]), text
        )
    if mode == "expand":
        return _EXPANDABLE.sub(
            lambda m: _like(m.group(), _EXPANSIONS[m.group().lower().replace("\u2019", "'")]), text
        )
    raise ValueError(f"unknown contraction mode {mode!r}")


# --- filler --------------------------------------------------------------------------------------

FILLERS = ("um", "uh", "you know", "like", "I mean", "well", "so", "basically", "actually")
_TOKEN = re.compile(r"\S+")


def filler(text: str, rng: random.Random, rate: float, mode: str | None = None) -> str:
    """Insert spoken fillers ("um", "you know" ...) before a fraction ``rate`` of the words."""
    words = list(_TOKEN.finditer(text))
    if not words:
        return text
    # never before the first word unless it is the only one: a filler opening a sentence reads as intent
    candidates = words[1:] or words
    out, last = [], 0
    for index in _pick(rng, len(candidates), rate):
        start = candidates[index].start()
        out += [text[last:start], rng.choice(FILLERS) + " "]
        last = start
    return "".join([*out, text[last:]])


PERTURBATIONS: Mapping[str, Perturbation] = {
    "typo": typo,
    "case": case,
    "whitespace": whitespace,
    "contraction": contraction,
    "filler": filler,
}
DEFAULT_RATES: Mapping[str, float] = {
    "typo": 0.1,
    "case": 0.1,
    "whitespace": 0.5,
    "contraction": 1.0,
    "filler": 0.1,
}


def perturb(text: str, spec: PerturbationSpec, *, item_id: str, variant: str, field: str = "") -> str:
    """Apply ``spec`` to ``text``, deterministically for this (seed, item, variant, field).

    Raises:
        KeyError: ``spec.kind`` is not a known perturbation.
    """
    rate = spec.rate if spec.rate is not None else DEFAULT_RATES[spec.kind]
    rng = rng_for(spec.seed, item_id, variant, field)
    return PERTURBATIONS[spec.kind](text, rng, rate, spec.mode)
