"""The static catalog index a built site publishes (``schema/catalog-index.schema.json``).

``generator.render`` writes it from verified receipts only; ``generator.remote`` reads a (hostile)
server's copy to find what to download. Parts copied from signed documents reuse those documents' models.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from receipts.formats._base import Closed, Document, Hex64, NoLineBreak, Omittable, Open
from receipts.formats._shared import GateVerdict
from receipts.formats.card import Claims, Description, HardwareProfiles, LicenseId, Tags
from receipts.formats.statement import IssuedAt, ModelName, ModelVersion, Publisher, QuantizationRow
from receipts.formats.trust_root import RootPublisher, RootVersion

__all__ = [
    "CatalogEval",
    "CatalogIndex",
    "CatalogLicenceTerms",
    "CatalogModel",
    "CatalogQuant",
    "CatalogQuantPack",
    "CatalogTrustRoot",
    "CostPoint",
]

_SEGMENT = r"(?!\.\.?/)[A-Za-z0-9._@+-]+/"  # a safe name segment (receipts.paths): never . or ..

PagePath = Annotated[str, Field(max_length=512, pattern=rf"^(?:{_SEGMENT})+$(?!\n)"), NoLineBreak]
ReceiptPath = Annotated[
    str, Field(max_length=512, pattern=rf"^(?:{_SEGMENT})+receipt\.json$(?!\n)"), NoLineBreak
]


class CatalogTrustRoot(Closed):
    """``trust_root``: the pinned root every listed receipt verified against."""

    publisher: RootPublisher
    version: RootVersion
    sha256: Hex64


class CatalogEval(Closed):
    """One signed run of a model, by pack id (values from the run's free-form summary stay free)."""

    primary_metric: Any
    scores: Any
    retention: Any
    student_metrics: dict[str, float | None]
    task: Literal["multiple_choice", "generate", "classify", "extract"] | None
    extraction: Any


class CostPoint(Open):
    """One footprint point's summary with the footprint's hardware (keys required, types free)."""

    hw_class: Any
    hardware: Any
    quant: Any
    concurrency: Any
    status: Any
    verdict: Any


class CatalogQuantPack(Open):
    """What one student quantization scored on one signed run, beside teacher and base (generator.index)."""

    pack: str
    role: str
    metric: str
    score: float | None
    teacher: float | None
    base: float | None
    retention: float | None
    retention_ci: Annotated[list[float], Field(min_length=2, max_length=2)] | None
    retention_reason: str | None
    floor: bool
    extraction: Omittable[dict[str, Any]] = None


class CatalogQuant(Closed):
    """One student quantization with its own scores per pack and its own measured memory."""

    quant: str
    packs: dict[str, CatalogQuantPack]
    memory: list[dict[str, Any]]


LicenceVerdictValue = Literal["yes", "no", "unknown"]


class CatalogLicenceTerms(Closed):
    """``licence_terms``: the signed, computed terms the buyer query filters on."""

    commercial_use: LicenceVerdictValue
    redistribution: LicenceVerdictValue
    derivatives: LicenceVerdictValue


class CatalogModel(Closed):
    """One verified receipt, as the buyer query and compare read it."""

    name: ModelName
    version: ModelVersion
    publisher: Publisher
    description: Description
    tags: Tags
    good_at: Claims
    license: LicenseId
    commercial_use: bool
    redistribution: bool
    licence_terms: Omittable[CatalogLicenceTerms] = None
    licence_overrides: Omittable[
        Annotated[
            list[Annotated[str, Field(max_length=50, pattern=r"^[a-z_]+$(?!\n)")]], Field(max_length=16)
        ]
    ] = None
    hardware_profiles: HardwareProfiles
    evals: dict[str, CatalogEval]
    cost: list[CostPoint]
    quantization: list[QuantizationRow]
    quants: Omittable[list[CatalogQuant]] = None
    gate: GateVerdict
    issued_at: IssuedAt
    page: PagePath
    receipt: ReceiptPath
    receipt_sha256: Hex64


class CatalogIndex(Document):
    """A catalog index (``receipts.catalog-index/v1``)."""

    KIND: ClassVar[str] = "catalog-index"

    format: Literal["receipts.catalog-index/v1"]
    trust_root: CatalogTrustRoot
    models: Annotated[list[CatalogModel], Field(max_length=100_000)]
