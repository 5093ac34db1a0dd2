"""A reproduction statement (``schema/reproduction.schema.json``): a third party re-ran a receipt's items."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from receipts.formats._base import Closed, Digest, Document, Hex64, Integer, JsonObject
from receipts.formats.statement import IssuedAt

__all__ = ["MAX_ITEMS", "PLAIN_TEXT", "CheckedItem", "ReproductionStatement"]

PLAIN_TEXT = r"^[^\u0000-\u001f\u007f-\u009f]*$(?!\n)"
"""No C0 control, DEL or C1 control: a reproducer's words reach terminals (ESC sequences) and pages."""

MAX_ITEMS = 10_000
"""The most items a statement lists (``verify --rerun N`` refuses a larger N)."""

Text = Annotated[str, Field(pattern=PLAIN_TEXT)]
"""A string of the statement's own: printable, no control characters."""


class ReceiptDigest(Closed):
    """The receipt envelope's digest set."""

    sha256: Hex64


class ReceiptSubject(Closed):
    """The one subject: the receipt's ``receipt.json`` bytes."""

    name: Annotated[str, Field(min_length=1, max_length=512, pattern=PLAIN_TEXT)]
    digest: ReceiptDigest


class ReceiptRef(Closed):
    """Which receipt was reproduced, as its statement names it."""

    name: Annotated[str, Field(min_length=1, pattern=PLAIN_TEXT)]
    version: Annotated[str, Field(min_length=1, pattern=PLAIN_TEXT)]
    publisher: Annotated[str, Field(min_length=1, pattern=PLAIN_TEXT)]


class Reproducer(Closed):
    """Who reproduced it: a name and the key that signs this statement."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)]
    keyid: Digest


class ToleranceText(Closed):
    """The tolerance the log-likelihoods were compared within (``0`` and ``0``: bit for bit)."""

    atol: Text
    rtol: Text


class CheckedItem(Closed):
    """One re-executed item and what differed."""

    pack: Text
    item: Text
    variant: Text
    reproduced: bool
    max_abs_delta: Text | None
    problems: list[Text]


class ReproductionPredicate(Closed):
    """``predicate``: what was re-run, how, and the outcome per item."""

    receipt: ReceiptRef
    reproducer: Reproducer
    issuedAt: IssuedAt  # the JSON key, as signed
    role: Annotated[str, Field(min_length=1, pattern=PLAIN_TEXT)]
    model: JsonObject
    same_model: bool
    packs: dict[str, Digest]
    asked: Annotated[Integer, Field(ge=1)]
    seed: Integer
    n: Annotated[Integer, Field(ge=0)]
    reproduced: Annotated[Integer, Field(ge=0)]
    mode: Literal["exact", "tolerance"]
    tolerance: ToleranceText
    label: Text
    host: JsonObject
    items: Annotated[list[CheckedItem], Field(max_length=MAX_ITEMS)]


class ReproductionStatement(Document):
    """An in-toto Statement v1 whose predicate is a reproduction of a receipt."""

    KIND: ClassVar[str] = "reproduction"

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: Annotated[list[ReceiptSubject], Field(min_length=1, max_length=1)]
    predicateType: Literal["https://receipts.dev/predicate/reproduction/v1"]
    predicate: ReproductionPredicate
