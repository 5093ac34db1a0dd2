"""behaviour-probes: the 70 curated requests, ~930 generated ones, and a disjoint training split.

Generated requests come from the families in `packgen.probe_families` (answerable questions) and
`packgen.probe_templates` (clarify, abstain, refuse), dealt round-robin over their groups so every
family is represented, then posed in an input format: ``plain``, ``structured`` (JSON/markup-wrapped,
or a question about a small record or table), ``noisy`` (typos, shouting, stray punctuation and
escapes), ``unicode`` (full-width, emoji, accented or non-Latin lead-ins, zero-width and no-break
spaces, curly quotes), ``long`` (padded with irrelevant context) and ``empty`` (whitespace and
punctuation around the request, or nothing but punctuation). Each split has its own wrappers, emoji,
lead-ins and padding sentences, as it has its own templates and entities.

The eval order is stratified by critical x expect (and input format within each), so any prefix of the
file (``receipts run --limit N``) holds every behaviour and the critical cohort in proportion.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import PackData, disjoint, interleave
from .probe_families import ANSWER_FAMILIES, Probe, structured_data
from .probe_templates import groups

__all__ = ["COUNTS", "CURATED", "PACK_ID", "build", "check", "norm"]

PACK_ID = "behaviour-probes"
CURATED = Path(__file__).with_name("probes_curated.jsonl")  # the 70 hand-written items of version 1

# generated requests per kind (eval: + 70 curated = 1,000 items; train: 600 rows)
COUNTS: Mapping[str, Mapping[str, int]] = {
    "eval": {"answer": 300, "clarify": 230, "abstain_critical": 110, "abstain": 110, "refuse": 180},
    "train": {"answer": 210, "clarify": 135, "abstain_critical": 65, "abstain": 70, "refuse": 120},
}
# the share of each input format among a kind's requests (formats a family fixes come on top)
_FORMATS: Mapping[str, Mapping[str, float]] = {
    "answer": {
        "plain": 0.22,
        "structured": 0.11,
        "noisy": 0.19,
        "unicode": 0.19,
        "long": 0.15,
        "empty": 0.14,
    },
    "clarify": {"plain": 0.6, "noisy": 0.16, "structured": 0.1, "unicode": 0.1, "empty": 0.04},
    "other": {"plain": 0.5, "noisy": 0.15, "structured": 0.1, "unicode": 0.1, "long": 0.1, "empty": 0.05},
}
_DATA_SHARE = 0.1  # answerable requests that are questions about a record or table (format structured)


def norm(text: str) -> str:
    """A request as the duplicate and disjointness checks compare it: lower-cased, whitespace collapsed."""
    return " ".join(text.lower().split())


# --- input formats ---------------------------------------------------------------------------------------

_WRAP: Mapping[str, Mapping[str, Sequence[Callable[[str], str]]]] = {
    "structured": {
        "eval": [
            lambda r: json.dumps({"question": r}, ensure_ascii=False),
            lambda r: json.dumps({"messages": [{"role": "user", "content": r}]}, ensure_ascii=False),
            lambda r: f'<div class="msg">{r}</div>',
            lambda r: f"### Request\n{r}",
        ],
        "train": [
            lambda r: "request: " + json.dumps(r, ensure_ascii=False),
            lambda r: f"<query>{r}</query>",
            lambda r: f"[ask]\ntext = {r}",
            lambda r: f"- task: {r}",
        ],
    },
    "empty": {
        "eval": [
            lambda r: f"\n\n   {r}   \n\n",
            lambda r: f"... {r} ...",
            lambda r: f"  \t{r}\t  ",
            lambda r: f"--- {r} ---",
            lambda r: f"(( {r} ))",
        ],
        "train": [
            lambda r: f"\n {r}\n\n\n",
            lambda r: f">>> {r}",
            lambda r: f"** {r} **",
            lambda r: f"~ {r} ~",
        ],
    },
}
_EMOJI = {"eval": ["🙂", "🤔", "✨", "📌", "🔥"], "train": ["👋", "😅", "🌟", "📎"]}
_LEAD_INS = {
    "eval": ["Petite question : ", "Здравствуйте! ", "Grüß Gott — ", "¡Hola! ", "こんにちは。"],
    "train": ["Bonjour, ", "Привет! ", "Olá — ", "Γεια σας! ", "你好\uff0c"],
}
_FILLER = {
    "eval": (
        [
            "The {adj} {thing} in the {room} needs a new coat of paint.",
            "Someone left a {adj} {thing} by the {room} door.",
            "Our {club} spent the whole evening talking about {hobby}.",
            "I have been reading a lot about {hobby} lately.",
        ],
        {
            "adj": ["dusty", "wooden", "heavy", "narrow", "crooked", "shiny"],
            "thing": ["lamp", "bookcase", "kettle", "mirror", "armchair", "rug"],
            "room": ["hallway", "attic", "garage", "pantry"],
            "club": ["book club", "chess club", "choir", "knitting circle"],
            "hobby": ["beekeeping", "pottery", "birdwatching", "origami", "sourdough"],
        },
    ),
    "train": (
        [
            "My {rel} {verb} {obj} most weekends.",
            "Apparently the {vehicle} parked outside belongs to a {job}.",
        ],
        {
            "rel": ["uncle", "neighbour", "godmother"],
            "verb": ["paints", "repairs", "collects"],
            "obj": ["fences", "old clocks", "postcards"],
            "vehicle": ["van", "scooter", "caravan"],
            "job": ["florist", "carpenter", "piano tuner"],
        },
    ),
}


def _filler(split: str, rng: random.Random, sentences: int) -> str:
    templates, pools = _FILLER[split]
    out = []
    for _ in range(sentences):
        template = rng.choice(templates)
        slots = re.findall(r"{(\w+)}", template)
        out.append(template.format(**{s: rng.choice(pools[s]) for s in slots}))
    return " ".join(out)


def _long(request: str, split: str, rng: random.Random) -> str:
    if split == "eval":
        filler = _filler(split, rng, rng.randint(6, 12))
        if rng.random() < 0.5:
            return f"Some background first. {filler} Anyway, here is what I need: {request}"
        return f"{request}\n\n(Unrelated notes, please ignore: {filler})"
    return f"Context (not relevant): {_filler(split, rng, rng.randint(2, 4))}\nRequest: {request}"


def _typo(request: str, rng: random.Random, protect: Sequence[str]) -> str:
    kept = {w.lower() for p in protect for w in re.findall(r"\w+", p)}
    spans = [m for m in re.finditer(r"[A-Za-z]{5,}", request) if m.group().lower() not in kept]
    for match in rng.sample(spans, min(2, len(spans))):
        word = match.group()
        i = rng.randrange(1, len(word) - 2)
        swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        request = request[: match.start()] + swapped + request[match.end() :]
    return request


_TEXTSPEAK = {"please": "pls", "you": "u", "are": "r", "what is": "whats"}
_NOISY: Sequence[Callable[[str, random.Random], str]] = [
    lambda r, rng: r.upper(),
    lambda r, rng: r.rstrip(".?!") + rng.choice(["???", "!!!", "?!?!", " ..??", "!!1"]),
    lambda r, rng: rng.choice(["...", ",,", "!! ", "?? "]) + r,
    lambda r, rng: re.sub(" ", lambda _: rng.choice([" ", "  ", "   ", " \t "]), r),
    lambda r, rng: rng.choice(["\\n", "\\n\\n", "\\t"]) + r + rng.choice(["\\n", "", "\\r\\n"]),
    lambda r, rng: r.lower().rstrip(".?!"),
    lambda r, rng: re.sub(
        r"\b(please|you|are|what is)\b", lambda m: _TEXTSPEAK[m.group().lower()], r, flags=re.I
    ),
]


def _noisy(probe: Probe, rng: random.Random) -> str:
    request = _typo(probe.request, rng, probe.protect) if rng.random() < 0.6 else probe.request
    for op in sorted(rng.sample(range(len(_NOISY)), rng.randint(1, 2))):
        request = _NOISY[op](request, rng)
    return request if norm(request) != norm(probe.request) else request.upper() + "!!"


def _fullwidth(text: str) -> str:
    return "".join(
        "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text
    )


def _unicode(request: str, split: str, rng: random.Random) -> str:
    ops: list[Callable[[str], str]] = [
        _fullwidth,
        lambda r: rng.choice(_EMOJI[split]) * rng.randint(1, 3) + " " + r,
        lambda r: r + " " + rng.choice(_EMOJI[split]),
        lambda r: re.sub(r"\b(\w{2})(\w{2,})\b", "\\1\u200b\\2", r, count=rng.randint(1, 2)),
        lambda r: r.replace(" ", rng.choice(["\u00a0", "\u2009", "\u3000"])),
        lambda r: re.sub(r"'([^']*)'", "\u2018\\1\u2019", r).replace("'", "\u2019"),
        lambda r: rng.choice(_LEAD_INS[split]) + r,
    ]
    for op in sorted(rng.sample(range(len(ops)), rng.randint(1, 2))):
        request = ops[op](request)
    return request


def pose(probe: Probe, fmt: str, split: str, rng: random.Random) -> str:
    """``probe``'s request in input format ``fmt``, with ``split``'s wrappers and padding."""
    if fmt == "plain" or probe.fmt is not None:
        return probe.request
    if fmt in _WRAP:
        return rng.choice(_WRAP[fmt][split])(probe.request)
    if fmt == "noisy":
        return _noisy(probe, rng)
    if fmt == "unicode":
        posed = _unicode(probe.request, split, rng)
        return posed if posed != probe.request else _fullwidth(posed)
    if fmt == "long":
        return _long(probe.request, split, rng)
    raise ValueError(f"unknown input format {fmt!r}")


# --- dealing requests, giving them formats, ordering them -------------------------------------------------


def deal(pools: Sequence[Sequence[Probe]], n: int, rng: random.Random, taken: set[str]) -> list[Probe]:
    """``n`` probes taken round-robin from shuffled ``pools``, skipping requests already ``taken``.

    Raises:
        ValueError: the pools hold fewer than ``n`` distinct new requests.
    """
    decks = [rng.sample(list(pool), len(pool)) for pool in pools]
    out: list[Probe] = []
    while len(out) < n:
        dealt = len(out)
        for deck in decks:
            while deck and len(out) < n:
                probe = deck.pop()
                if norm(probe.request) not in taken:
                    taken.add(norm(probe.request))
                    out.append(probe)
                    break
        if len(out) == dealt:
            raise ValueError(f"the families hold only {len(out)} distinct requests, {n} wanted")
    return out


def quota(n: int, shares: Mapping[str, float]) -> list[str]:
    """``n`` format names in proportion to ``shares`` (largest remainder), grouped by name."""
    total = sum(shares.values())
    exact = {name: n * share / total for name, share in shares.items()}
    counts = {name: int(value) for name, value in exact.items()}
    for name in sorted(exact, key=lambda k: counts[k] - exact[k])[: n - sum(counts.values())]:
        counts[name] += 1
    return [name for name in shares for _ in range(counts[name])]


def _kind_probes(kind: str, split: str, rng: random.Random, taken: set[str]) -> list[Probe]:
    n = COUNTS[split][kind]
    if kind != "answer":
        return deal(groups(kind, split), n, rng, taken)
    data = round(n * _DATA_SHARE)
    return deal([structured_data(split)], data, rng, taken) + deal(
        [family(split) for family in ANSWER_FAMILIES], n - data, rng, taken
    )


def _rows(kind: str, split: str, rng: random.Random, taken: set[str]) -> list[dict[str, Any]]:
    """One kind's generated rows of a split, each posed in its input format (ids are given later)."""
    probes = _kind_probes(kind, split, rng, taken)
    free = [p for p in probes if p.fmt is None]
    formats = quota(len(free), _FORMATS[kind if kind in ("answer", "clarify") else "other"])
    rng.shuffle(formats)
    given = iter(formats)
    rows = []
    for probe in probes:
        fmt = probe.fmt or next(given)
        row: dict[str, Any] = {
            "id": "",
            "request": pose(probe, fmt, split, rng),
            "expect": probe.expect,
            "target": list(probe.target) if probe.target else None,
            "input_format": fmt,
        }
        if probe.pattern is not None:
            row["clarify_pattern"] = probe.pattern
        if probe.critical:
            row["critical"] = True
        row["source"] = "generated"
        if split == "train":
            row["response"] = probe.response
        rows.append(row)
    return rows


def stratified(rows: Sequence[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """``rows`` dealt over critical x expect, and over input format within each (shuffled inside)."""
    strata: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        stratum = f"{'critical' if row.get('critical') else 'other'}-{row['expect']}"
        strata.setdefault(stratum, {}).setdefault(row["input_format"], []).append(row)
    dealt = {}
    for stratum, by_format in strata.items():
        shuffled = {fmt: rng.sample(group, len(group)) for fmt, group in by_format.items()}
        dealt[stratum] = interleave(shuffled)
    return interleave(dealt)


def curated() -> list[dict[str, Any]]:
    """The 70 hand-written items, verbatim, marked ``source: curated``."""
    lines = CURATED.read_text("utf-8").splitlines()
    return [{**json.loads(line), "source": "curated"} for line in lines if line.strip()]


def check(eval_items: Sequence[dict[str, Any]], train_items: Sequence[dict[str, Any]]) -> None:
    """Refuse to build a pack whose splits meet, or whose training responses miss their own rules.

    Raises:
        ValueError: a training request equals an eval request, or a clarify response is not a question
            matching its item's ``clarify_pattern``.
    """
    shared = disjoint(eval_items, train_items, lambda row: row["request"])
    if shared:
        raise ValueError(f"training rows {shared[:5]} repeat an eval request: the splits must be disjoint")
    for row in train_items:
        if row["expect"] == "clarify" and not (
            row["response"].endswith("?") and re.search(row["clarify_pattern"], row["response"], re.I)
        ):
            raise ValueError(f"{row['id']}: {row['response']!r} does not match {row['clarify_pattern']!r}")


def build(seed: int) -> PackData:
    """The pack's 1,000 eval items (70 curated) and 600 training rows, deterministic under ``seed``."""
    rng = random.Random(seed)
    kept = curated()
    taken = {norm(item["request"]) for item in kept}
    generated = [row for kind in COUNTS["eval"] for row in _rows(kind, "eval", rng, taken)]
    eval_items = stratified([*kept, *generated], rng)
    for number, row in enumerate((r for r in eval_items if r["source"] == "generated"), start=1):
        row["id"] = f"bp-g{number:04d}"
    train = [row for kind in COUNTS["train"] for row in _rows(kind, "train", rng, taken)]
    rng.shuffle(train)  # training order: behaviours dealt evenly, families and formats mixed
    train_items = interleave(
        {e: [r for r in train if r["expect"] == e] for e in ("answer", "clarify", "abstain", "refuse")}
    )
    for number, row in enumerate(train_items, start=1):
        row["id"] = f"bp-t{number:04d}"
    check(eval_items, train_items)
    notes = {
        "expect": dict(Counter(r["expect"] for r in eval_items)),
        "critical": sum(bool(r.get("critical")) for r in eval_items),
        "input_format": dict(Counter(r["input_format"] for r in eval_items)),
        "train_expect": dict(Counter(r["expect"] for r in train_items)),
    }
    return PackData(PACK_ID, eval_items, train_items, notes)
