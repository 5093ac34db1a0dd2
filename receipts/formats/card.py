"""The model card a publisher writes (``schema/card.schema.json``, ``receipts.card/v1``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from receipts.formats._base import (
    SPACE,
    Closed,
    Date,
    Digest,
    Document,
    Integer,
    NoLineBreak,
    Omittable,
    Unique,
)

__all__ = [
    "Base",
    "Card",
    "Distillation",
    "Evidence",
    "Factor",
    "FailureMode",
    "GateOverrides",
    "HardwareProfile",
    "InheritedTerm",
    "IntendedUse",
    "LicenseOverride",
    "LicenseTerms",
    "Lineage",
    "ModelDetails",
    "Permissions",
    "Quantization",
    "Release",
    "TaskBoundary",
    "Teacher",
    "TeacherPrice",
    "TrainingData",
    "UserThresholds",
]


def _text(low: int, high: int) -> object:
    return Field(min_length=low, max_length=high)


Sentence = Annotated[str, _text(1, 2000)]
"""One entry of a list of claims: a non-empty sentence or phrase."""

_LICENSE_TERM = r"(?:LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.+-]*)"
LicenseId = Annotated[
    str, Field(max_length=200, pattern=rf"^{_LICENSE_TERM}(?: (?:AND|OR|WITH) {_LICENSE_TERM})*$(?!\n)")
]
"""An SPDX licence expression (``$defs/license_id``)."""

Version = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$(?!\n)"), NoLineBreak]
"""``$defs/version``."""

Url = Annotated[str, _text(1, 2000)]
"""``$defs/url``: untrusted text, not checked as a URL."""

Description = Annotated[str, _text(1, 4000)]
"""``model.description``: what the model is, in a few sentences."""

Tags = Annotated[list[Annotated[str, Field(max_length=50, pattern=r"^[a-z0-9][a-z0-9_-]*$(?!\n)")]], Unique]
"""``model.tags``: catalog tags."""

Slug = Annotated[str, Field(max_length=100, pattern=r"^[a-z0-9][a-z0-9_-]*$(?!\n)")]
"""Lowercase letters, digits, _ and - (failure mode ids, hardware profile names)."""

Fraction = Annotated[float, Field(ge=0, le=1)]

GateRule = Literal[
    "max_global_regression",
    "max_critical_regression",
    "max_cohort_excess_regression",
    "min_retention",
    "max_cost_ratio",
    "max_ece_increase",
    "min_judged_agreement",  # issue #20 part 2
]


class ModelDetails(Closed):
    """``model``: what the model is and who publishes it."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$(?!\n)"), NoLineBreak]
    version: Version
    publisher: Annotated[str, _text(1, 200)]
    description: Description
    homepage: Omittable[Url] = None
    contact: Omittable[Annotated[str, _text(1, 300)]] = None
    languages: Omittable[
        Annotated[list[Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$(?!\n)")]], Unique]
    ] = None
    tags: Omittable[Tags] = None


class Base(Closed):
    """``lineage.base``: the weights training or quantization started from."""

    name: Annotated[str, _text(1, 200)]
    architecture: Annotated[str, _text(1, 200)]
    parameters: Annotated[Integer, Field(ge=1)]
    context_length: Annotated[Integer, Field(ge=1)]
    license: LicenseId
    weights_digest: Omittable[Digest] = None
    source: Omittable[Annotated[str, _text(1, 500)]] = None


class TeacherPrice(Closed):
    """``price_per_1k_calls``: what 1,000 calls to an API teacher cost, as the publisher declares it."""

    usd: Annotated[float, Field(gt=0)]
    source: Annotated[str, _text(1, 500)]


class Teacher(Closed):
    """One teacher: open weights (``weights_digest``) or a closed API (``api_identifier``), not both."""

    name: Annotated[str, _text(1, 200)]
    weights_digest: Omittable[Digest] = None
    api_identifier: Omittable[
        Annotated[str, Field(max_length=200, pattern=rf"^[a-z0-9][a-z0-9._-]*:[^{SPACE}]+$(?!\n)")]
    ] = None
    license: LicenseId
    terms_of_service: Omittable[Url] = None
    terms_restrict_distillation: Omittable[bool] = None
    price_per_1k_calls: Omittable[TeacherPrice] = None

    @model_validator(mode="after")
    def _one_identity(self) -> Self:
        # oneOf [required weights_digest, required api_identifier]: exactly one is given
        given = {"weights_digest", "api_identifier"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError("give exactly one of weights_digest and api_identifier")
        return self


class Distillation(Closed):
    """``lineage.distillation``: how the student was distilled."""

    method: Literal["output", "logit", "mixed"]
    objective: Annotated[str, _text(1, 500)]
    steps: Omittable[Annotated[Integer, Field(ge=1)]] = None
    corpus: Annotated[str, _text(1, 2000)]


class Quantization(Closed):
    """``lineage.quantization``: how the model was quantized from its base."""

    scheme: Annotated[str, _text(1, 100)]
    format: Annotated[str, _text(1, 100)]
    tool: Omittable[Annotated[str, _text(1, 300)]] = None
    notes: Omittable[Annotated[str, _text(1, 2000)]] = None


class Lineage(Closed):
    """``lineage``: where the model comes from."""

    relation: Literal["distilled", "quantized", "finetuned", "original"]
    base: Base
    teachers: Omittable[list[Teacher]] = None
    distillation: Omittable[Distillation] = None
    quantization: Omittable[Quantization] = None

    @model_validator(mode="after")
    def _relation_needs(self) -> Self:
        # the schema's allOf of if/then: what each relation requires
        if self.relation == "distilled":
            if self.teachers is None or self.distillation is None:
                raise ValueError("relation distilled needs teachers and distillation")
            if not self.teachers:
                raise ValueError("relation distilled needs at least one teacher")
        if self.relation == "quantized" and self.quantization is None:
            raise ValueError("relation quantized needs quantization")
        return self


class TrainingData(Closed):
    """One dataset used at any stage."""

    name: Annotated[str, _text(1, 300)]
    source: Annotated[str, _text(1, 500)]
    stage: Omittable[Annotated[str, _text(1, 100)]] = None
    synthetic: bool | None
    closed_model_outputs: bool | None
    license: LicenseId
    digest: Omittable[Digest] = None
    description: Omittable[Annotated[str, _text(1, 4000)]] = None
    through_base: Omittable[bool] = None


class UserThresholds(Closed):
    """``license.permissions.user_thresholds``: usage levels that change the terms."""

    max_monthly_active_users: Omittable[Annotated[Integer, Field(ge=0)]] = None
    notes: Omittable[Annotated[str, _text(1, 2000)]] = None


class Permissions(Closed):
    """``license.permissions``: what the licence allows."""

    commercial_use: bool
    redistribution: bool
    derivatives: bool
    attribution_required: bool
    output_use_restrictions: list[Sentence]
    user_thresholds: Omittable[UserThresholds] = None


class InheritedTerm(Closed):
    """One term inherited from a teacher, the base or a dataset (``from`` is ``from_`` in Python)."""

    from_: Annotated[str, _text(1, 200)] = Field(alias="from")
    terms: Annotated[str, _text(1, 2000)]
    effect: Annotated[str, _text(1, 2000)]


OverridablePermission = Literal[
    "commercial_use", "redistribution", "derivatives", "attribution_required", "output_use_restrictions",
    "user_thresholds", "model_name_prefix", "license_id",
]  # fmt: skip


class LicenseOverride(Closed):
    """One declared permission beyond the computed terms, with the reason it may be claimed."""

    permission: OverridablePermission
    reason: Annotated[str, _text(1, 2000)]
    evidence_url: Omittable[Url] = None


class LicenseTerms(Closed):
    """``license`` (``$defs/license_terms``): the licence of this model."""

    id: LicenseId
    name: Omittable[Annotated[str, _text(1, 200)]] = None
    url: Omittable[Url] = None
    permissions: Permissions
    inherited_terms: list[InheritedTerm]
    overrides: Omittable[Annotated[list[LicenseOverride], Field(max_length=16)]] = None


Claims = Annotated[list[Sentence], Field(min_length=1)]


class TaskBoundary(Closed):
    """``task_boundary``: what is claimed and what is not."""

    good_at: Claims
    not_claiming: Claims


class IntendedUse(Closed):
    """``intended_use`` (Mitchell et al.)."""

    primary_uses: Annotated[list[Sentence], Field(min_length=1)]
    primary_users: Annotated[list[Sentence], Field(min_length=1)]
    out_of_scope: Annotated[list[Sentence], Field(min_length=1)]


class Factor(Closed):
    """One relevant factor and the pack slices that measure it."""

    name: Annotated[str, _text(1, 200)]
    description: Sentence
    pack_slices: Omittable[list[Annotated[str, _text(1, 200)]]] = None


PackItem = Annotated[
    str, Field(max_length=300, pattern=r"^[a-z0-9][a-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._:-]*$(?!\n)")
]
"""``<pack-id>/<item-id>``."""


class Evidence(Closed):
    """``$defs/evidence``: one measured number of a signed run (``receipts.failure_modes`` resolves it)."""

    pack: Annotated[str, Field(max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$(?!\n)")]
    role: Annotated[
        str,
        Field(
            max_length=100,
            pattern=r"^(teacher|base|student|sft)(@[a-z0-9_-]+)?(-(teacher|base|student|sft)(@[a-z0-9_-]+)?)?$(?!\n)",
        ),
    ]
    metric: Annotated[str, Field(max_length=100, pattern=r"^[a-z][a-z0-9_]*$(?!\n)")]
    slice: Omittable[
        Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^{}\u0000-\u001f\u007f]+$(?!\n)")]
    ] = None


class FailureMode(Closed):
    """One known or suspected failure mode; its text holds numbers only as placeholders (failure_modes)."""

    id: Slug
    description: Annotated[str, _text(1, 4000)]
    trigger: Sentence
    pack_items: Annotated[list[PackItem], Unique]
    evidence: Omittable[Annotated[list[Evidence], Unique, Field(max_length=50)]] = None
    severity: Literal["low", "medium", "high", "critical"]
    mitigation: Sentence


class HardwareProfile(Closed):
    """One hardware profile the publisher targets."""

    name: Slug
    ram_gib: Annotated[float, Field(gt=0)]
    accelerator: Annotated[str, _text(1, 100)]
    quantization: Annotated[str, _text(1, 100)]
    compute_dtype: Omittable[Annotated[str, _text(1, 100)]] = None
    runtime: Omittable[Annotated[str, _text(1, 200)]] = None
    notes: Omittable[Annotated[str, _text(1, 2000)]] = None


HardwareProfiles = Annotated[list[HardwareProfile], Field(min_length=1)]


class GateOverrides(Closed):
    """``gate``: overrides of the packs' release gates, and the rules that may go unevaluated."""

    max_global_regression: Omittable[Fraction] = None
    max_critical_regression: Omittable[Fraction] = None
    max_cohort_excess_regression: Omittable[Fraction] = None
    min_retention: Omittable[Fraction] = None
    max_cost_ratio: Omittable[Annotated[float, Field(ge=0)]] = None
    max_ece_increase: Omittable[Fraction] = None
    min_judged_agreement: Omittable[Fraction] = None  # issue #20 part 2
    optional: Omittable[Annotated[list[GateRule], Unique]] = None


class Release(Closed):
    """One entry of ``update_history``."""

    version: Version
    date: Annotated[Date, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$(?!\n)")]
    summary: Sentence


class Card(Document):
    """A model card (``receipts.card/v1``): the publisher's claims, after Mitchell et al."""

    KIND: ClassVar[str] = "card"

    format: Literal["receipts.card/v1"]
    model: ModelDetails
    lineage: Lineage
    training_data: Annotated[list[TrainingData], Field(min_length=1)]
    license: LicenseTerms
    task_boundary: TaskBoundary
    intended_use: IntendedUse
    factors: Omittable[list[Factor]] = None
    ethical_considerations: Omittable[list[Sentence]] = None
    caveats: Omittable[list[Sentence]] = None
    failure_modes: Annotated[list[FailureMode], Field(min_length=1)]
    hardware_profiles: HardwareProfiles
    gate: Omittable[GateOverrides] = None
    update_history: Annotated[list[Release], Field(min_length=1)]
