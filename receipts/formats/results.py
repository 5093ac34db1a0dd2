"""What ``receipts run`` writes to ``RUN_DIR/results.json`` (``schema/results.schema.json``).

The schema leaves most of the document open (properties it does not list are allowed at the top and in
most sections), so the models below type what it lists and keep the rest in ``model_extra``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from receipts.formats._base import (
    Closed,
    Digest,
    Document,
    Hex64,
    Integer,
    JsonObject,
    NoLineBreak,
    Omittable,
    Open,
)
from receipts.formats._shared import Gate, PackRef

__all__ = [
    "Calibration",
    "Counts",
    "Diagnostic",
    "Divergence",
    "Errors",
    "Estimate",
    "ExamplesLog",
    "Extraction",
    "Fidelity",
    "McNemar",
    "Metric",
    "ModelIdentity",
    "Results",
    "Retention",
    "Similarity",
]

Role = Annotated[str, Field(pattern=r"^(teacher|base|student|sft)(@[a-z0-9._-]+)?$(?!\n)")]
"""A role name: teacher, base, student or sft, optionally ``@<variant>`` (``student@int8-dynamic``)."""


class ModelIdentity(Open):
    """Who played a role: the spec given, and the weights digest or the API endpoint (at least one)."""

    spec: str
    digest: Omittable[Digest] = None
    endpoint: Omittable[str] = None
    kind: Omittable[Literal["hf", "gguf", "openai", "replay", "fake"]] = None
    storage_quant: Omittable[str] = None
    compute_dtype: Omittable[str] = None
    runtime_quant: Omittable[str] = None
    tokenizer: Omittable[str] = None
    params: Omittable[Annotated[Integer, Field(ge=0)]] = None
    extra: Omittable[JsonObject] = None

    @model_validator(mode="after")
    def _identified(self) -> Self:
        # anyOf [required digest, required endpoint]
        if self.digest is None and self.endpoint is None:
            raise ValueError("a model identity needs a digest or an endpoint")
        return self


class ExamplesLog(Closed):
    """``examples``: the run's per-example log, by path and sha256."""

    path: Annotated[str, Field(pattern=r"^[^/\\][^\\]*$(?!\n)"), NoLineBreak]
    sha256: Hex64


class Estimate(Closed):
    """A mean (or a paired difference of means) with its 95% paired-bootstrap interval."""

    value: float | None
    ci95: Annotated[list[float | None], Field(min_length=2, max_length=2)]
    n: Annotated[Integer, Field(ge=0)]
    small_n: bool
    se: Omittable[Annotated[float, Field(ge=0)]] = None


class Retention(Open):
    """(S-B)/(T-B) for one role with its paired-bootstrap CI; null with a reason when the gap is too small."""

    value: float | None
    reason: str | None
    ci95: Omittable[Annotated[list[float | None], Field(min_length=2, max_length=2)]] = None
    undefined_resamples: Omittable[Annotated[Integer, Field(ge=0)]] = None
    student_over_teacher: float | None = None


class McNemar(Open):
    """McNemar's test between two roles (the schema requires the keys, not their types)."""

    statistic: Any
    p_value: Any
    method: Any


class Metric(Open):
    """One metric on one slice: per-role estimates, differences, retention, McNemar."""

    roles: dict[str, Estimate]
    differences: Omittable[dict[str, Estimate]] = None
    retention: Omittable[dict[str, Retention]] = None
    mcnemar: Omittable[dict[str, McNemar]] = None


Count = Annotated[Integer, Field(ge=0)]


class Calibration(Open):
    """One role's calibration (the schema requires the ECE and reliability keys, not their types)."""

    ece_10_equal_mass: Any
    ece_15_equal_width: Any
    reliability: Any
    n: Omittable[Count] = None
    confidence: Omittable[str] = None
    brier: float | None = None


class Divergence(Open):
    """``kl``: KL(teacher||role) per token at teacher-forced positions, or over each item's choices."""

    level: Literal["token", "choice"]
    value: float | None
    n: Count
    definition: Omittable[str] = None


class Fidelity(Open):
    """One role's agreement with the teacher (the schema requires the keys, not their types), and its KL."""

    agreement_rate: Any
    cells: Any
    kl: Omittable[Divergence] = None


class Counts(Open):
    """``$defs/prf``: pooled tp/fp/fn with precision, recall and F1 (null where undefined)."""

    tp: Count
    fp: Count
    fn: Count
    precision: float | None
    recall: float | None
    f1: float | None


class Extraction(Open):
    """One role's extraction scores: micro-averaged and per field."""

    micro: Counts
    per_field: dict[str, Counts]
    n: Count


class Errors(Open):
    """Instances left out because a role failed on them."""

    instances: Any


class Diagnostic(Open):
    """One reading-the-signal finding."""

    id: Any
    message: Any
    evidence: Any


# --- similarity (issue #20 part 3) ---
class SimilarityEncoder(Closed):
    """The encoder behind the cosine scores, and whether its digest is a known one."""

    name: str
    digest: str
    recognised: bool


class SimilarityComparison(Closed):
    """One measure against one reference on one slice: each role's mean, each role minus base."""

    roles: dict[str, Estimate]
    differences: dict[str, Estimate]


SimilarityMeasure = Literal["chrf", "rouge_l", "cosine"]
SimilarityReference = Literal["teacher", "gold"]


class Similarity(Closed):
    """``similarity``: per slice, measure and reference, the paired-bootstrap estimates."""

    encoder: Omittable[SimilarityEncoder] = None
    slices: dict[str, dict[SimilarityMeasure, dict[SimilarityReference, SimilarityComparison]]]


# --- end similarity ---


class Results(Document):
    """A run's results (``receipts.results/v1``): identities, the examples log, every metric with its CI."""

    model_config = ConfigDict(extra="allow")

    KIND: ClassVar[str] = "results"

    format: Literal["receipts.results/v1"]
    pack: PackRef
    models: Annotated[dict[Role, ModelIdentity], Field(min_length=1)]
    examples: ExamplesLog
    summary: Omittable[JsonObject] = None
    gate: Omittable[Gate] = None
    task: Omittable[Literal["multiple_choice", "generate", "classify", "extract"]] = None
    primary_metric: Omittable[str] = None
    settings: Omittable[JsonObject] = None
    metrics: Omittable[dict[str, dict[str, Metric]]] = None
    robustness: Omittable[JsonObject] = None
    calibration: Omittable[dict[str, Calibration]] = None
    abstention: Omittable[JsonObject] = None
    extraction: Omittable[dict[str, Extraction]] = None
    similarity: Omittable[Similarity] = None  # issue #20 part 3
    fidelity: Omittable[dict[str, Fidelity]] = None
    errors: Omittable[Errors] = None
    diagnostics: Omittable[list[Diagnostic]] = None
