"""Answers from model outputs: regex extraction, normalisation, JSON objects and behaviours.

Pure functions with the semantics of lm-evaluation-harness (regex filter) and SQuAD
(``normalize_answer``), so a pack's declared rule means the same thing here as there.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BEHAVIOURS",
    "NORMALISERS",
    "SQUAD_STEPS",
    "Behaviour",
    "BehaviourRules",
    "behaviour_matches",
    "extract_answer",
    "extract_json",
    "field_text",
    "normalise",
    "observed_behaviours",
]

Behaviour = Literal["answer", "clarify", "abstain", "refuse"]
BEHAVIOURS: tuple[Behaviour, ...] = ("answer", "clarify", "abstain", "refuse")

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)


def _strip_punctuation(text: str) -> str:
    # SQuAD removes string.punctuation (ASCII punctuation *and* symbols such as $ + < = > ^ ` | ~);
    # Unicode punctuation (curly quotes, dashes, ellipses) goes too, so curly quotes do not defeat a match.
    return "".join(
        ch for ch in text if ch not in _ASCII_PUNCTUATION and not unicodedata.category(ch).startswith("P")
    )


def _first_line(text: str) -> str:
    return text.lstrip().split("\n", 1)[0]


NORMALISERS: Mapping[str, Callable[[str], str]] = {
    "nfkc": lambda text: unicodedata.normalize("NFKC", text),
    "first_line": _first_line,
    "lower": str.lower,
    "strip": str.strip,
    "strip_punctuation": _strip_punctuation,
    "strip_articles": lambda text: _ARTICLES.sub(" ", text),
    "collapse_whitespace": lambda text: " ".join(text.split()),
}

# SQuAD's normalize_answer: lower, remove punctuation, remove articles, fix whitespace
SQUAD_STEPS = ("lower", "strip_punctuation", "strip_articles", "collapse_whitespace")


def normalise(text: str, steps: Sequence[str]) -> str:
    """Apply normalisation ``steps`` in order (names from `NORMALISERS`).

    Raises:
        ValueError: a step is unknown.
    """
    for step in steps:
        try:
            text = NORMALISERS[step](text)
        except KeyError:
            raise ValueError(
                f"unknown normalisation step {step!r}; known: {', '.join(NORMALISERS)}"
            ) from None
    return text


def extract_answer(
    text: str, pattern: str | re.Pattern[str] | None, *, select: Literal["first", "last"] = "first"
) -> str | None:
    """The answer in ``text`` by lm-eval's regex filter; ``None`` when the pattern does not match.

    No pattern: the whole text. Otherwise the first (or last) match: its first non-empty capture
    group, or the whole match when the pattern has no groups; stripped of surrounding whitespace.
    """
    if pattern is None:
        return text
    regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    matches = list(regex.finditer(text)) if select == "last" else [m for m in [regex.search(text)] if m]
    if not matches:
        return None
    match = matches[-1] if select == "last" else matches[0]
    if regex.groups == 0:
        return match.group(0).strip()
    if regex.groups == 1:
        return (match.group(1) or "").strip()
    found = next((group for group in match.groups() if group), None)
    return found.strip() if found is not None else None


def extract_json(text: str, *, max_attempts: int = 64) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (code fences and prose around it are ignored), or ``None``.

    Tries each ``{`` in turn, at most ``max_attempts`` of them, so hostile outputs stay linear-ish.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    attempts = 0
    while start != -1 and attempts < max_attempts:
        attempts += 1
        try:
            value, _ = decoder.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def field_text(value: Any, steps: Sequence[str] = ()) -> str | None:
    """An extracted (or gold) field value as the text it is compared by; ``None`` means not stated.

    JSON null and values that normalise to "" are not stated; numbers take their shortest form
    (``24000.0`` -> ``"24000"``), booleans ``true``/``false``, lists and objects canonical JSON.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return normalise(text, steps) or None


# --- behaviours ----------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Case-folded, U+2019 read as an apostrophe, whitespace collapsed: how markers and outputs compare."""
    return " ".join(text.replace("\u2019", "'").casefold().split())


def _contains(text: str, markers: Sequence[str]) -> bool:
    folded = _fold(text)
    # whole words only: the marker "unknown" must not fire on "unknowns", nor "no" on "know"
    return any(re.search(r"(?<!\w)" + re.escape(_fold(marker)) + r"(?!\w)", folded) for marker in markers)


@dataclass(frozen=True)
class BehaviourRules:
    """How a pack recognises abstentions, clarifying questions and refusals in an output."""

    abstain: tuple[str, ...] = ()
    clarify: tuple[str, ...] = ()
    refuse: tuple[str, ...] = ()
    require_question_mark: bool = True
    clarify_pattern_field: str | None = None


def observed_behaviours(
    text: str, rules: BehaviourRules, *, clarify_pattern: str | None = None
) -> frozenset[Behaviour]:
    """Every non-answer behaviour ``text`` shows under ``rules`` (empty: it is a plain answer).

    abstain / refuse: a marker occurs (whole words, case-insensitive). clarify: the text has a question
    mark (when required) and a clarify marker, or the item's own ``clarify_pattern`` matches.
    """
    found: set[Behaviour] = set()
    if rules.abstain and _contains(text, rules.abstain):
        found.add("abstain")
    if rules.refuse and _contains(text, rules.refuse):
        found.add("refuse")
    asks = (
        ("?" in text or not rules.require_question_mark)
        and bool(rules.clarify)
        and _contains(text, rules.clarify)
    )
    if asks or (clarify_pattern is not None and re.search(clarify_pattern, text, re.IGNORECASE)):
        found.add("clarify")
    return frozenset(found)


def behaviour_matches(
    text: str, expected: Behaviour, rules: BehaviourRules, *, clarify_pattern: str | None = None
) -> bool:
    """Whether ``text`` shows the ``expected`` behaviour; ``answer`` means no other behaviour shows.

    (Whether an answer is *right* is the task scorer's business, not this function's.)
    """
    seen = observed_behaviours(text, rules, clarify_pattern=clarify_pattern)
    return not seen if expected == "answer" else expected in seen
