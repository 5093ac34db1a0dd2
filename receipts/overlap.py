"""Contamination check: n-gram and MinHash overlap between an eval pack's items and a distillation corpus.

The n-gram rule is lm-evaluation-harness's decontamination (``lm_eval/decontamination``), itself GPT-3's:
text is normalised as lm-eval's ``Janitor`` does (ASCII letters lower-cased, ASCII punctuation deleted,
split on white space) and an item overlaps when any of its word ``n``-grams (default 13) occurs in a
corpus document. As lm-eval does, the eval side is indexed and the corpus streamed past it once, so memory
grows with the pack, not the corpus.

What an item's text is (decided here, recorded in ``overlap.json``): the fields its prompt templates read,
in the item's field order, followed by its gold answer (the correct choice of a multiple-choice item, the
reference of a generated one); distractor choices are left out (they are single words that say nothing
about the item). Eval questions are often shorter than 13 words and would then never overlap at 13-grams
(lm-eval's rule skips them silently); GPT-3 shrank ``n`` per task instead. Here an item whose inputs have
fewer than ``n`` words also overlaps when its whole input word sequence occurs in a corpus document
(``short_inputs: whole``).

Near-duplicates (a reworded copy shares few 13-grams) are found with MinHash (``datasketch``, imported
only when asked for): each item's and each document's word ``shingle``-grams are hashed with ``num_perm``
permutations, candidates come from MinHash LSH at ``threshold`` and are kept when their estimated Jaccard
similarity reaches it.
"""

from __future__ import annotations

import string
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from receipts._version import __version__
from receipts.corpus import CorpusFile, Document, read_corpus, unique_names
from receipts.errors import InputError

__all__ = [
    "FORMAT",
    "ITEM_TEXT",
    "NORMALISATION",
    "ItemText",
    "MinHashSettings",
    "check_overlap",
    "consistency_problems",
    "ngrams",
    "normalise",
    "overlap_problems",
    "run_problems",
]

FORMAT = "receipts.overlap/v1"
NORMALISATION = "lm-eval-janitor"
"""ASCII A-Z lower-cased, ASCII punctuation deleted, split on white space (lm-eval's Janitor)."""
ITEM_TEXT = "inputs+gold"
"""An item's text: its prompt inputs followed by its gold answer (distractor choices left out)."""
MAX_EXAMPLES = 5
"""Matched n-grams listed per item (all are counted)."""
MAX_SNIPPET = 400
"""Characters of a matched n-gram or input listed."""

_TABLE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)


def normalise(text: str) -> list[str]:
    """The words of ``text`` as lm-eval's decontamination sees them."""
    return text.translate(_TABLE).split()


def ngrams(words: Sequence[str], n: int) -> Iterable[str]:
    """Every run of ``n`` consecutive words, joined by one space."""
    return (" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass(frozen=True)
class ItemText:
    """One eval item's text to check: its id, its prompt inputs and its gold answer."""

    id: str
    inputs: str
    gold: str = ""


@dataclass(frozen=True)
class MinHashSettings:
    """MinHash near-duplicate detection: LSH threshold (Jaccard), permutations, shingle size, seed."""

    threshold: float = 0.8
    num_perm: int = 128
    shingle: int = 3
    seed: int = 1


@dataclass
class _Hit:
    grams: dict[str, str] = field(default_factory=dict)  # matched n-gram -> where first seen
    whole: tuple[str, str] | None = None  # (the input words, where)
    minhash: tuple[float, str] | None = None  # (estimated Jaccard, where)


class _Index:
    """The eval side: n-gram -> items, whole short inputs by length, and MinHash LSH of the items."""

    def __init__(self, items: Sequence[ItemText], n: int, minhash: MinHashSettings | None):
        self.n = n
        self.grams: dict[str, list[int]] = defaultdict(list)
        self.short: dict[str, list[int]] = defaultdict(list)
        # first word -> the lengths of the n-grams and short inputs that start with it: a corpus position
        # is joined into text only for the lengths some item could match there (most positions: none)
        self.starts: dict[str, set[int]] = defaultdict(set)
        for index, item in enumerate(items):
            words = normalise(f"{item.inputs} {item.gold}")
            for gram in set(ngrams(words, n)):
                self.grams[gram].append(index)
                self.starts[gram.split(" ", 1)[0]].add(n)
            inputs = normalise(item.inputs)
            if 0 < len(inputs) < n:
                self.short[" ".join(inputs)].append(index)
                self.starts[inputs[0]].add(len(inputs))
        self.minhash = minhash
        self.lsh: Any = None
        self.hashes: list[Any] = []
        if minhash is not None:
            from datasketch import MinHashLSH  # lazily: `receipts verify` never pays for it

            self.lsh = MinHashLSH(threshold=minhash.threshold, num_perm=minhash.num_perm)
            for index, item in enumerate(items):
                signature = self.signature(normalise(f"{item.inputs} {item.gold}"))
                self.hashes.append(signature)
                if signature is not None:
                    self.lsh.insert(index, signature)

    def signature(self, words: Sequence[str]) -> Any:
        from datasketch import MinHash

        settings = self.minhash or MinHashSettings()
        k = settings.shingle
        shingles = set(ngrams(words, k)) if len(words) >= k else ({" ".join(words)} if words else set())
        if not shingles:
            return None
        signature = MinHash(num_perm=settings.num_perm, seed=settings.seed)
        signature.update_batch([s.encode("utf-8") for s in sorted(shingles)])
        return signature

    def scan(self, document: Document, hits: dict[int, _Hit]) -> None:
        words = normalise(document.text)
        for start, word in enumerate(words):
            for length in self.starts.get(word, ()):
                if start + length > len(words):
                    continue
                run = " ".join(words[start : start + length])
                if length == self.n:
                    for index in self.grams.get(run, ()):
                        hits.setdefault(index, _Hit()).grams.setdefault(run, document.where)
                for index in self.short.get(run, ()):
                    hit = hits.setdefault(index, _Hit())
                    if hit.whole is None:
                        hit.whole = (run, document.where)
        if self.lsh is not None:
            self._near(words, document.where, hits)

    def _near(self, words: Sequence[str], where: str, hits: dict[int, _Hit]) -> None:
        signature = self.signature(words)
        if signature is None or self.minhash is None:
            return
        for index in self.lsh.query(signature):
            jaccard = float(self.hashes[index].jaccard(signature))
            if jaccard < self.minhash.threshold:
                continue
            hit = hits.setdefault(index, _Hit())
            if hit.minhash is None or jaccard > hit.minhash[0]:
                hit.minhash = (jaccard, where)


def _snippet(text: str) -> str:
    return text if len(text) <= MAX_SNIPPET else text[: MAX_SNIPPET - 1] + "…"


def _item_record(item: ItemText, hit: _Hit) -> dict[str, Any]:
    shown = sorted(hit.grams.items())[:MAX_EXAMPLES]
    return {
        "id": item.id,
        "ngram_matches": len(hit.grams),
        "ngrams": [{"text": _snippet(g), "where": where} for g, where in shown],
        "whole_input": None if hit.whole is None else {"text": _snippet(hit.whole[0]), "where": hit.whole[1]},
        "minhash": None
        if hit.minhash is None
        else {"jaccard": f"{hit.minhash[0]:.3f}", "where": hit.minhash[1]},
    }


def _method(n: int, minhash: MinHashSettings | None) -> dict[str, Any]:
    method: dict[str, Any] = {
        "item_text": ITEM_TEXT,
        "ngram": {"n": n, "normalisation": NORMALISATION, "short_inputs": "whole"},
        "minhash": None,
    }
    if minhash is not None:
        from importlib.metadata import version

        method["minhash"] = {
            "library": f"datasketch {version('datasketch')}",
            "threshold": f"{minhash.threshold:.3f}",
            "num_perm": minhash.num_perm,
            "shingle": minhash.shingle,
            "seed": minhash.seed,
        }
    return method


def check_overlap(
    pack: dict[str, str],
    items: Sequence[ItemText],
    corpus: Sequence[CorpusFile],
    *,
    n: int = 13,
    minhash: MinHashSettings | None = MinHashSettings(),
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """The ``overlap.json`` document (``schema/overlap.schema.json``) for ``items`` against ``corpus``.

    ``pack`` is the pack's identity as a run records it (``id``, ``version``, ``digest``). Every
    overlapping item is listed (with at most `MAX_EXAMPLES` of its matched n-grams); the others are only
    counted.

    Raises:
        InputError: a corpus file is refused (see receipts.corpus), or two share a name.
        UsageError: ``n`` or the MinHash settings are out of range.
    """
    from receipts.errors import UsageError

    if not 1 <= n <= 64:
        raise UsageError(f"--ngram {n} is out of range", hint="use 1 to 64 words (13 is lm-eval's default)")
    if minhash is not None and not (0.001 <= minhash.threshold <= 1 and 16 <= minhash.num_perm <= 1024):
        raise UsageError(
            "MinHash settings out of range", hint="--minhash-threshold 0.001 to 1, --num-perm 16 to 1024"
        )
    if not corpus:
        raise UsageError("no corpus file given", hint="pass one or more JSON Lines or text files")
    unique_names(corpus)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise InputError("the pack lists an item id twice", hint="item ids must be unique")
    index = _Index(items, n, minhash)
    hits: dict[int, _Hit] = {}
    for source in corpus:
        for document in read_corpus(source, max_bytes=max_bytes):
            index.scan(document, hits)
    listed = [_item_record(items[i], hits[i]) for i in sorted(hits)]
    return {
        "format": FORMAT,
        "generator": {"name": "receipts", "version": __version__},
        "pack": dict(pack),
        "corpus": [
            {
                "name": source.name,
                "sha256": f"sha256:{source.sha256}",
                "bytes": source.bytes,
                "format": source.format,
                "fields": None if source.fields is None else list(source.fields),
                "documents": source.documents,
            }
            for source in corpus
        ],
        "method": _method(n, minhash),
        "items_checked": len(items),
        "items_overlapping": len(listed),
        "items": listed,
    }


def consistency_problems(document: Any) -> list[str]:
    """What does not add up in a typed overlap document (``receipts.formats.Overlap``).

    The counts must equal the listed items, each listed item must say why it is listed, and each n-gram
    count must cover the n-grams it lists.
    """
    problems = []
    listed = document.items
    if document.items_overlapping != len(listed):
        problems.append(f"items_overlapping is {document.items_overlapping}, but {len(listed)} listed")
    if document.items_overlapping > document.items_checked:
        problems.append(
            f"items_overlapping {document.items_overlapping} exceeds items_checked {document.items_checked}"
        )
    ids = [item.id for item in listed]
    if len(set(ids)) != len(ids):
        problems.append("an item is listed twice")
    for item in listed:
        if item.ngram_matches < len(item.ngrams):
            problems.append(f"item {item.id}: ngram_matches {item.ngram_matches} < {len(item.ngrams)} listed")
        if not item.ngram_matches and item.whole_input is None and item.minhash is None:
            problems.append(f"item {item.id} is listed without a match")
        if item.minhash is not None and document.method.minhash is None:
            problems.append(f"item {item.id} has a MinHash match, but MinHash was not run")
    return problems


def overlap_problems(document: Any, packs: Sequence[Any]) -> list[str]:
    """`consistency_problems`, and whether the document's pack is one of ``packs`` (the signed runs')."""
    problems = consistency_problems(document)
    pack = document.pack
    if not any(p == pack for p in packs):
        problems.append(f"is about {pack.id}@{pack.version} {pack.digest}, a pack no signed run used")
    return problems


def run_problems(document: Any, items: Collection[str], limit: object) -> list[str]:
    """Whether an overlap document's counts hold to the signed run of its pack.

    ``items`` are the distinct item ids of that run's signed examples log, ``limit`` the run's
    ``settings.limit`` (``None``: the run evaluated the whole pack). Every listed item must be one the run
    evaluated. The overlap check covers the whole pack: when the run did too, ``items_checked`` must be the
    run's item count; a ``--limit`` run evaluated part of the pack, so ``items_checked`` is at least that.
    """
    problems = []
    unknown = [item.id for item in document.items if item.id not in items]
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        problems.append(f"lists item(s) the signed run of {document.pack.id} never evaluated: {shown}")
    checked, evaluated = document.items_checked, len(items)
    if limit is None and checked != evaluated:
        problems.append(
            f"items_checked is {checked}, but the signed run evaluated the whole pack: {evaluated} item(s)"
        )
    elif checked < evaluated:
        problems.append(
            f"items_checked is {checked}, fewer than the {evaluated} item(s) the signed run evaluated"
        )
    return problems
