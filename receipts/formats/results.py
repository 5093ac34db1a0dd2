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
    Unique,
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
    "FlipCounts",
    "Flips",
    "JudgeCertificate",
    "JudgeSetup",
    "Judged",
    "McNemar",
    "Metric",
    "ModelIdentity",
    "QuantFidelity",
    "Results",
    "Retention",
    "SeqEstimate",
    "SequenceDivergence",
    "Similarity",
]

Role = Annotated[str, Field(pattern=r"^(teacher|base|student|sft)(@[a-z0-9._-]+)?$(?!\n)")]
"""A role name: teacher, base, student or sft, optionally ``@<variant>`` (``student@int8-dynamic``)."""


class ModelIdentity(Open):
    """Who played a role: the spec given, and the weights digest or the API endpoint (at least one)."""

    spec: str
    digest: Omittable[Digest] = None
    endpoint: Omittable[str] = None
    kind: Omittable[Literal["hf", "gguf", "llamacpp", "openai", "replay", "fake"]] = None
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


# --- issue #20 parts 4 and 5 (seqkl): flips and sequence-level divergence ----------------------------

NonTeacher = Annotated[str, Field(pattern=r"^(base|student|sft)(@[a-z0-9._-]+)?$(?!\n)")]


class FlipTest(Closed):
    """McNemar's test of lost vs gained."""

    p_value: Annotated[float, Field(ge=0, le=1)]
    method: Literal["exact", "chi2"]


class FlipCounts(Closed):
    """One role's flips on one slice: answers lost (teacher right, role wrong) and gained, with rates."""

    n: Count
    lost: Count
    gained: Count
    lost_rate: Estimate
    gained_rate: Estimate
    mcnemar: FlipTest


class Flips(Closed):
    """``flips``: slice -> role -> `FlipCounts` (absent in results written before issue #20)."""

    definition: Omittable[str] = None
    slices: Omittable[dict[str, dict[NonTeacher, FlipCounts]]] = None


class SeqEstimate(Estimate):
    """A mean per-byte sequence log-ratio with its CI, and the slice's items it could not be measured on."""

    missing: Count


class SequenceDivergence(Closed):
    """``sequence_divergence``: slice -> role -> per-byte KL(teacher||role) estimate at the teacher's mode."""

    definition: Omittable[str] = None
    teacher_logprob: Omittable[Annotated[list[Literal["teacher_forced", "served"]], Unique]] = None
    slices: Omittable[dict[str, dict[NonTeacher, SeqEstimate]]] = None


# --- end of issue #20 parts 4 and 5 --------------------------------------------------------------------
# --- judge (issue #20 part 2): the judge that scored equivalence, and what its verdicts give ---
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$(?!\n)")]
JudgeVerdict = Literal["equivalent", "different", "unparseable"]


class JudgeReply(Open):
    """``$defs/judge_verdict``: one logged judge reply and the verdict read from its last line."""

    verdict: JudgeVerdict
    raw: Annotated[str, Field(max_length=2000)]
    truncated: Omittable[Literal[True]] = None
    prompt_sha256: Omittable[str] = None
    error: Omittable[str] = None
    id: Omittable[str] = None
    human: Omittable[Literal["equivalent", "different"]] = None


class JudgeRubric(Closed):
    """The rubric file: its path in the pack and its sha256 (the rubric digest)."""

    path: str
    sha256: Sha256Hex


class JudgeValidation(Open):
    """The human-rated sample as judged, with the judge key and rubric digest it was judged under."""

    path: str
    sha256: Sha256Hex
    judge: str
    rubric_sha256: Sha256Hex
    samples: list[JudgeReply]


class JudgeSetup(Open):
    """``judge``: who judged, with which rubric and kappa threshold, and the validation sample."""

    model: JsonObject
    rubric: JudgeRubric
    kappa_threshold: Annotated[float, Field(ge=-1, le=1)]
    max_new_tokens: Omittable[Annotated[Integer, Field(ge=1)]] = None
    validation: Omittable[JudgeValidation] = None


class JudgeCertificate(Open):
    """The judge's certificate: kappa against the human labels and whether the judge is validated."""

    validated: bool
    reason: str | None
    threshold: float
    rubric_sha256: str
    kappa: Omittable[JsonObject] = None
    agreement: Omittable[JsonObject] = None
    n: Omittable[Count] = None
    unparseable: Omittable[Count] = None


class Judged(Open):
    """``judged``: judged equivalence per slice and role (to teacher, to gold), counts, certificate."""

    certificate: JudgeCertificate
    verdicts: dict[str, dict[str, dict[str, Count]]]
    agreement: dict[str, dict[str, Estimate]]
    correct: dict[str, dict[str, Estimate]]


# --- end judge ---
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


# --- quant fidelity (issue #21): each llama.cpp quantization against its full-precision base ---


class QuantFlips(FlipCounts):
    """The answers a quantization lost and gained against the full-precision student it was made from."""

    against: Literal["student"]


class QuantFidelity(Closed):
    """``quant_fidelity.<role>``: llama-perplexity's KL-divergence statistics against the role's base GGUF."""

    base: JsonObject
    tokens: Annotated[Integer, Field(ge=1)]
    items: Annotated[Integer, Field(ge=1)]
    missing: Count
    mean_kld: float
    mean_kld_unc: float | None
    kld_median: float
    kld_p90: float
    kld_p95: float
    kld_p99: float
    kld_max: float
    delta_p_mean: float
    delta_p_mean_unc: float | None
    delta_p_rms: float
    delta_p_rms_unc: float | None
    same_top_rate: float
    same_top_rate_unc: float | None
    ln_ppl_ratio: float
    ln_ppl_ratio_unc: float | None
    flips: Omittable[QuantFlips] = None


# --- end quant fidelity ---


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
    flips: Omittable[Flips] = None  # issue #20 part 5
    sequence_divergence: Omittable[SequenceDivergence] = None  # issue #20 part 4
    judge: Omittable[JudgeSetup] = None  # issue #20 part 2
    judged: Omittable[Judged] = None  # issue #20 part 2
    quant_fidelity: Omittable[dict[NonTeacher, QuantFidelity]] = None  # issue #21
