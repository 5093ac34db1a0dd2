"""The in-toto Statement a receipt signs and its distillation-receipt predicate (statement.schema.json)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from receipts.formats._base import (
    Closed,
    DateTime,
    Digest,
    Document,
    Hex64,
    Integer,
    JsonObject,
    NoLineBreak,
    Omittable,
    Open,
    Unique,
)
from receipts.formats._shared import Gate, PackRef
from receipts.formats.card import Card

__all__ = [
    "ComputedTerms",
    "FootprintEntry",
    "Generator",
    "LicenceRecord",
    "Predicate",
    "PredicateModel",
    "QuantFidelity",
    "QuantFlips",
    "QuantizationEvaluated",
    "QuantizationRow",
    "RunEntry",
    "Signer",
    "Statement",
    "Subject",
    "SubjectAnnotations",
    "SubjectDigest",
    "WeightsBinding",
]

SubjectKind = Literal[
    "card",
    "results",
    "examples",
    "footprint",
    "weights-manifest",
    "weights",
    "pack",
    "pack-manifest",
    "pack-file",
    "overlap",
]


class SubjectDigest(Open):
    """An in-toto digest set: algorithm -> lowercase hex; ``sha256`` (64 digits) is the one receipts use."""

    __pydantic_extra__: dict[str, Annotated[str, Field(pattern=r"^[0-9a-f]+$(?!\n)")]]

    sha256: Omittable[Hex64] = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("a digest set names at least one digest")
        return self


class SubjectAnnotations(Open):
    """What a subject is (``kind``), and for the weights the digest rule; other annotations are kept."""

    kind: SubjectKind
    rule: Omittable[str] = None
    role: Omittable[str] = None
    pack: Omittable[str] = None
    published: Omittable[str] = None


class Subject(Closed):
    """One in-toto subject: a file of the bundle, or the weights or pack bound by digest."""

    name: Annotated[str, Field(min_length=1, max_length=512)]
    digest: SubjectDigest
    annotations: SubjectAnnotations


ModelName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$(?!\n)"), NoLineBreak]
ModelVersion = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$(?!\n)")]
Publisher = Annotated[str, Field(min_length=1)]


class PredicateModel(Closed):
    """``predicate.model``: the identity the receipt is for (copied from the card at signing)."""

    name: ModelName
    version: ModelVersion
    publisher: Publisher


class Signer(Closed):
    """``predicate.signer``: the keys the signer says signed the statement."""

    keyids: Annotated[list[Digest], Field(min_length=1, max_length=8), Unique]


class WeightsBinding(Closed):
    """``predicate.weights``: the weights' root digest under the model_signing files rule."""

    rule: Literal["model_signing/v1.0/files/sha256"]
    root: Digest
    files: Annotated[Integer, Field(ge=1)]


class RunEntry(Closed):
    """One signed run: its pack, the bundle paths of its results and examples, and its summary."""

    pack: PackRef
    results: str
    examples: str
    summary: JsonObject


class FootprintEntry(Closed):
    """One signed footprint: its bundle path and summary."""

    file: str
    summary: JsonObject


QuantizationCi = Annotated[list[float | None], Field(min_length=2, max_length=2)] | None
"""``$defs/quantization_ci``: a 95% interval, or null."""
Count = Annotated[Integer, Field(ge=0)]


class QuantFidelity(Closed):
    """Fidelity to the full-precision student in llama-perplexity's terms (mean KLD, same-top-token rate)."""

    mean_kld: float | None
    mean_kld_unc: float | None
    same_top_rate: float | None
    same_top_rate_unc: float | None


class QuantFlips(Closed):
    """Answers flipped on all items, against the full-precision student or the teacher."""

    against: Literal["student", "teacher"]
    n: Count
    lost: Count
    gained: Count


class QuantizationEvaluated(Closed):
    """``$defs/quantization_evaluated``: what one quantization scored and kept on one pack.

    Receipts signed before issue #21 carry role, metric, score and retention only: the other keys may be
    left out (``model_fields_set`` tells a key left out from one written as null).
    """

    role: str
    metric: str
    score: float | None
    retention: float | None
    kind: str | None = None
    score_ci95: QuantizationCi = None
    retention_ci95: QuantizationCi = None
    retention_reason: str | None = None
    fidelity: QuantFidelity | None = None
    flips: QuantFlips | None = None


class QuantizationRow(Closed):
    """Quantization survival for one student quantization: what it kept, what it costs."""

    quant: str
    evaluated: dict[str, QuantizationEvaluated]
    benched: list[JsonObject]
    file_bytes: Count | None = None
    quantized_from: Digest | None = None


Reasons = list[str]
LicenceVerdictValue = Literal["yes", "no", "unknown"]


class LicenceVerdict(Closed):
    """One computed permission or duty and why (``$defs/licence_verdict``)."""

    verdict: LicenceVerdictValue
    reasons: Reasons


class LicenceTableRef(Closed):
    """``predicate.licence.table``: which licence table version computed the terms, by its sha256."""

    version: Annotated[Integer, Field(ge=1)]
    sha256: Hex64


class MauLimit(Closed):
    """``computed.max_monthly_active_users``."""

    value: Annotated[Integer, Field(ge=1)] | None
    reasons: Reasons


class NamePrefix(Closed):
    """``computed.model_name_prefix``."""

    value: list[str]
    reasons: Reasons


class ComputedTerms(Closed):
    """``predicate.licence.computed``: the effective terms (``receipts.licences.Terms.as_json``)."""

    commercial_use: LicenceVerdict
    redistribution: LicenceVerdict
    derivatives: LicenceVerdict
    attribution: LicenceVerdict
    notice: LicenceVerdict
    use_restrictions: LicenceVerdict
    competing_models: LicenceVerdict
    max_monthly_active_users: MauLimit
    model_name_prefix: NamePrefix
    carried_terms: list[str]
    notes: Reasons


class DeclaredTerms(Closed):
    """``predicate.licence.declared``: the card's claim, as compared."""

    license: str
    commercial_use: bool
    redistribution: bool
    derivatives: bool
    attribution_required: bool
    output_use_restrictions: Annotated[Integer, Field(ge=0)]
    max_monthly_active_users: Annotated[Integer, Field(ge=0)] | None


class OverrideRecord(Closed):
    """One declared permission beyond the computed terms and the card's override that covers it."""

    permission: str
    declared: str
    computed: str
    reasons: Reasons
    reason: str
    evidence_url: Omittable[str] = None


class LicenceRecord(Closed):
    """``predicate.licence``: computed terms, the declared claim and the overrides, signed together."""

    table: LicenceTableRef
    computed: ComputedTerms
    declared: DeclaredTerms
    overrides: list[OverrideRecord]


class Generator(Closed):
    """``predicate.generator``: the software that signed."""

    name: Literal["receipts"]
    version: str


IssuedAt = Annotated[
    DateTime, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$(?!\n)")
]
"""``predicate.issuedAt``: RFC 3339 in UTC to the second (``format: date-time``), a real calendar instant."""


class Predicate(Closed):
    """The distillation-receipt predicate: the card, runs, footprints and gate verdict signed together."""

    model: PredicateModel
    issuedAt: IssuedAt  # the JSON key, as signed
    signer: Signer
    card: Card
    weights: Omittable[WeightsBinding] = None
    runs: list[RunEntry]
    footprints: list[FootprintEntry]
    gate: Gate
    quantization: Omittable[list[QuantizationRow]] = None
    licence: Omittable[LicenceRecord] = None
    generator: Generator


class Statement(Document):
    """An in-toto Statement v1 whose predicate is a distillation receipt."""

    KIND: ClassVar[str] = "statement"

    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: Annotated[list[Subject], Field(min_length=1, max_length=256)]
    predicateType: Literal["https://receipts.dev/predicate/distillation-receipt/v1"]
    predicate: Predicate

    def subjects(self, kind: SubjectKind) -> list[Subject]:
        """The subjects annotated with ``kind``, in signed order."""
        return [s for s in self.subject if s.annotations.kind == kind]
