"""An overlap check between an eval pack and a distillation corpus (``schema/overlap.schema.json``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from receipts.formats._base import Closed, Digest, Document, Integer
from receipts.formats._shared import PackRef

__all__ = ["CorpusEntry", "Location", "MinHashMatch", "Overlap", "OverlapItem", "OverlapMethod"]

Where = Annotated[str, Field(min_length=1, max_length=600)]
Snippet = Annotated[str, Field(max_length=400)]
Similarity = Annotated[str, Field(pattern=r"^(0\.[0-9]{3}|1\.000)$(?!\n)")]
"""A fraction in [0, 1] written with three decimals (``0.800``)."""


class OverlapGenerator(Closed):
    """The software that wrote the check."""

    name: Literal["receipts"]
    version: str


class CorpusEntry(Closed):
    """One corpus file checked: its name, the sha256 of the bytes read, and what was read of it."""

    name: Annotated[str, Field(min_length=1, max_length=255)]
    sha256: Digest
    bytes: Annotated[Integer, Field(ge=0)]
    format: Literal["jsonl", "text"]
    fields: list[str] | None
    documents: Annotated[Integer, Field(ge=0)]


class NgramMethod(Closed):
    """The n-gram rule: ``n`` words after lm-eval's normalisation; short inputs matched whole."""

    n: Annotated[Integer, Field(ge=1, le=64)]
    normalisation: Literal["lm-eval-janitor"]
    short_inputs: Literal["whole"]


class MinHashMethod(Closed):
    """The MinHash near-duplicate rule."""

    library: Annotated[str, Field(min_length=1)]
    threshold: Similarity
    num_perm: Annotated[Integer, Field(ge=16, le=1024)]
    shingle: Annotated[Integer, Field(ge=1, le=64)]
    seed: Integer


class OverlapMethod(Closed):
    """How the check was made."""

    item_text: Literal["inputs+gold"]
    ngram: NgramMethod
    minhash: MinHashMethod | None


class Location(Closed):
    """A matched text and where in the corpus it was found (``<file>:<line>``)."""

    text: Snippet
    where: Where


class MinHashMatch(Closed):
    """The most similar corpus document of a near-duplicate item."""

    jaccard: Similarity
    where: Where


class OverlapItem(Closed):
    """One overlapping item and what matched."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$(?!\n)")]
    ngram_matches: Annotated[Integer, Field(ge=0)]
    ngrams: Annotated[list[Location], Field(max_length=5)]
    whole_input: Location | None
    minhash: MinHashMatch | None


class Overlap(Document):
    """``overlap.json`` (``receipts.overlap/v1``): which items of a pack occur in a corpus."""

    KIND: ClassVar[str] = "overlap"

    format: Literal["receipts.overlap/v1"]
    generator: OverlapGenerator
    pack: PackRef
    corpus: Annotated[list[CorpusEntry], Field(min_length=1, max_length=1000)]
    method: OverlapMethod
    items_checked: Annotated[Integer, Field(ge=0)]
    items_overlapping: Annotated[Integer, Field(ge=0)]
    items: Annotated[list[OverlapItem], Field(max_length=1000000)]
