"""What ``receipts bench`` writes: a model's hardware footprint (``schema/footprint.schema.json``).

Every object in this schema allows properties it does not list, so every model here is `Open`. A
measured point (``status: ok``) must carry its measurements; a point that could not be measured need
not, which the schema says with if/then and these models with a union tagged by ``status``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from receipts.formats._base import DateTime, Digest, Document, Integer, NoLineBreak, Omittable, Open

__all__ = [
    "Bandwidth",
    "BandwidthMeasure",
    "BenchModel",
    "BenchSettings",
    "Energy",
    "Fingerprint",
    "Footprint",
    "FootprintSummary",
    "Hardware",
    "Load",
    "MaxUsableContext",
    "MeasuredPoint",
    "Memory",
    "ModelFile",
    "Point",
    "PointMetrics",
    "Price",
    "Probe",
    "QuantPoint",
    "Reason",
    "Samples",
    "Stats",
    "UnmeasuredPoint",
    "Verdict",
]

GgufType = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,15}$(?!\n)")]
Quant = Literal["fp32", "bf16", "int8-dynamic"] | GgufType
"""``$defs/quant``: a transformers variant, or the GGUF type of a ``llamacpp:`` file (Q8_0, Q4_K_M, ...)."""
Count = Annotated[Integer, Field(ge=0)]
Positive = Annotated[Integer, Field(ge=1)]
NonNegative = Annotated[float, Field(ge=0)]


class ModelFile(Open):
    """One file of the benched model."""

    path: str
    bytes: Count


class BenchModel(Open):
    """``model``: what was benched."""

    spec: str
    digest: Digest
    kind: Literal["hf", "gguf", "llamacpp"]
    params: Count | None = None
    file_bytes: Count
    files: Omittable[list[ModelFile]] = None
    storage_quant: str | None
    tokenizer: str | None = None
    loaded_from_bytes: Omittable[Count] = None
    extra: Omittable[dict[str, Any]] = None


class Fingerprint(Open):
    """The environment fingerprint (the schema requires these keys, not their types)."""

    cpu_model: Any
    cpu_flags: Any
    logical_cpus: Any
    affinity: Any
    mem_total_bytes: Any
    os: Any
    kernel: Any
    gpus: Any
    python: Any
    libraries: Any
    threads_used: Any


class Hardware(Open):
    """``hardware``: the hardware class and its fingerprint."""

    hw_class: Annotated[str, Field(min_length=1)]
    label: str
    device: Literal["cpu", "cuda"]
    fingerprint: Fingerprint


class Price(Open):
    """The price inputs of ``cost_per_1k_calls``, as given (keys required, types free)."""

    per_hour: Any
    currency: Any
    source: Any


class BenchSettings(Open):
    """``settings``: how the bench was configured."""

    quants: Annotated[list[Quant], Field(min_length=1)]
    prompt_tokens: Positive
    new_tokens: Annotated[Integer, Field(ge=2)]
    concurrency: Annotated[list[Positive], Field(min_length=1)]
    threads: Positive
    warmups: Count
    min_duration_s: NonNegative
    min_calls: Positive
    short_run: bool
    ram_budget_bytes: Positive | None
    ttft_budget_s: Annotated[float, Field(gt=0)]
    price: Price


class BandwidthMeasure(Open):
    """One memory-bandwidth measurement (``$defs/bandwidth``)."""

    bytes_per_s: Annotated[float, Field(gt=0)] | None
    method: str
    threads: Positive


class Bandwidth(Open):
    """``bandwidth``: measured before and after all points, and their drift."""

    before: BandwidthMeasure
    after: BandwidthMeasure
    drift: NonNegative | None
    bytes_per_s_used: Annotated[float, Field(gt=0)] | None


class Reason(Open):
    """Why a verdict is what it is (``$defs/reason``)."""

    code: str
    severity: Literal["invalid", "info"]
    point: str | None = None
    detail: str


class Verdict(Open):
    """VALID or INVALID, with machine-readable reasons (``$defs/verdict``)."""

    status: Literal["VALID", "INVALID"]
    reasons: list[Reason]


class Stats(Open):
    """Statistics of one per-call measurement (``$defs/stats``)."""

    n: Count
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    median_ci95: Annotated[list[float], Field(min_length=2, max_length=2)] | None
    null_reasons: dict[str, str]


class Load(Open):
    """How long loading took and how warm the page cache was."""

    load_time_s: NonNegative
    page_cache_state: Literal["warm", "cold", "partial", "unknown"]


class Memory(Open):
    """Resident weights and peak memory of a point."""

    weights_bytes_resident: Count
    peak_rss_bytes: Count
    peak_vram_bytes: Integer | None


class PointMetrics(Open):
    """Latency and throughput statistics of a point."""

    ttft_s: Stats
    tpot_s: Stats
    e2e_s: Stats
    itl_s: Stats
    prefill_tps: Stats
    decode_tps: Stats
    tokenize_s: Stats
    throughput_rps: NonNegative | None


class Energy(Open):
    """Whether energy was measured, estimated or unavailable."""

    status: Literal["measured", "estimated", "unavailable"]


class Samples(Open):
    """The raw per-call samples the statistics are recomputed from."""

    e2e_s: list[float]
    token_times_s: list[list[float]]
    tokenize_s: list[float]


class _PointBase(Open):
    id: str
    quant: Quant
    concurrency: Positive
    detail: str | None = None
    verdict: Verdict


class MeasuredPoint(_PointBase):
    """A point that ran (``status: ok``): the schema's ``then`` makes its measurements required."""

    status: Literal["ok"]
    compute_dtype: Any
    threads: Any
    load: Load
    memory: Memory
    calls: Positive
    duration_s: Any
    metrics: PointMetrics
    roofline_decode_tps: Any
    roofline_fraction: Any
    energy: Energy
    host: Any
    samples: Samples


class UnmeasuredPoint(_PointBase):
    """A point that could not be measured: its other properties are not constrained."""

    status: Literal["over_ram_budget", "out_of_memory", "failed"]


Point = Annotated[MeasuredPoint | UnmeasuredPoint, Field(discriminator="status")]
"""One quantization x concurrency point (``$defs/point``)."""


class Probe(Open):
    """One prompt length tried by the context search (keys required, types free)."""

    prompt_tokens: Any
    fits: Any


class MaxUsableContext(Open):
    """The largest prompt that fits the RAM and TTFT budgets, or null with its reason."""

    value: Positive | None
    null_reason: str | None
    limited_by: Omittable[Literal["ram_budget", "ttft_budget", "model_limit", "failed"]] = None
    probes: list[Probe]


class QuantPoint(Open):
    """One entry of ``summary.by_quant``: the point's p50 figures, memory and verdict (``receipts bench``).

    The four identifying keys are required with free types; the figures may be left out or null.
    """

    quant: Any
    concurrency: Any
    status: Any
    verdict: Any
    peak_rss_bytes: Count | None = None
    peak_vram_bytes: Count | None = None
    weights_bytes_resident: Count | None = None
    load_time_s: float | None = None
    ttft_p50_s: float | None = None
    tpot_p50_s: float | None = None
    e2e_p50_s: float | None = None
    decode_tps_p50: float | None = None
    prefill_tps_p50: float | None = None
    throughput_rps: float | None = None
    roofline_fraction: float | None = None


class FootprintSummary(Open):
    """Headline numbers for the first quantization and concurrency."""

    quant: str
    verdict: Literal["VALID", "INVALID"]
    peak_rss_bytes: Integer | None
    max_usable_context: Integer | None
    machine_seconds_per_1k_calls: NonNegative | None
    cost_per_1k_calls: NonNegative | None
    by_quant: dict[str, QuantPoint]


class Footprint(Document):
    """A hardware footprint (``receipts.footprint/v1``): raw samples, statistics and a verdict."""

    model_config = ConfigDict(extra="allow")

    KIND: ClassVar[str] = "footprint"

    format: Literal["receipts.footprint/v1"]
    created: Annotated[DateTime, NoLineBreak]
    model: BenchModel
    hardware: Hardware
    settings: BenchSettings
    bandwidth: Bandwidth
    points: Annotated[list[Point], Field(min_length=1)]
    max_usable_context: MaxUsableContext
    verdict: Verdict
    summary: FootprintSummary
