"""Quantization survival: per student quantization, what it keeps next to what it costs (issue #21).

One row per quantization of the student: the fp32/bf16/int8-dynamic variants torch runs and the GGUF
quantizations llama.cpp runs (``student@Q4_K_M``). Per pack, a row carries the role's score and retention
with their 95% CIs (from the run's metrics), the quantization fidelity another step measured against the
full-precision student (``results["quant_fidelity"][role]``: mean KLD, same-top-token rate, each with its
uncertainty; ``null`` when not measured) and the answers it flipped: against the full-precision student
where the run measured that (``quant_fidelity[role].flips``), else against the teacher (``flips``, slice
``all``). Memory and speed come from footprints of the student's weights, or of a file quantized
from them (its ``extra.lineage.quantized_from`` is the student's digest). The signer writes the table and
``verify`` recomputes it with this same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from receipts.binding import lineage

if TYPE_CHECKING:
    from receipts.formats import Footprint, Results
    from receipts.formats.results import Metric, ModelIdentity

__all__ = ["FIDELITY_KEYS", "ORDER", "as_signed_before_21", "quantization_table"]

ORDER = (
    "fp32",
    "bf16",
    "int8-dynamic",
    "F32",
    "F16",
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_1",
    "Q5_0",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_1",
    "Q4_0",
    "Q3_K_L",
    "Q3_K_M",
    "Q3_K_S",
    "Q2_K",
)
"""Rows from full precision down; a quantization not listed comes after these, by name."""
FIDELITY_KEYS = ("mean_kld", "mean_kld_unc", "same_top_rate", "same_top_rate_unc")
"""What the table takes of ``results["quant_fidelity"][role]`` (issue #21 part 3)."""

_DTYPE_QUANT = {"float32": "fp32", "bfloat16": "bf16"}
_BENCHED = (
    "concurrency",
    "status",
    "verdict",
    "peak_rss_bytes",
    "peak_vram_bytes",
    "weights_bytes_resident",
    "ttft_p50_s",
    "tpot_p50_s",
    "decode_tps_p50",
    "throughput_rps",
)
"""What the table shows of each benched point (a footprint summary's ``by_quant`` entry)."""


def _quant_of(role: str, model: ModelIdentity, *, legacy: bool = False) -> str:
    """The row a role belongs in: its variant, else what its identity says it computes in.

    A student run natively from its stored quantization (llama.cpp: ``compute_dtype`` ``native``) is that
    quantization's row, not fp32's. Receipts signed before that rule (``legacy``) filed it under fp32.
    """
    variant = role.partition("@")[2]
    if variant:
        return variant
    if not legacy and str(model.compute_dtype) == "native" and model.storage_quant:
        return str(model.storage_quant)
    return model.runtime_quant or _DTYPE_QUANT.get(str(model.compute_dtype), "fp32")


def _interval(value: Sequence[float | None] | None) -> list[float | None] | None:
    return list(value) if value is not None else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _plain(value: Any) -> Any:
    """A typed section as JSON (the results model may type ``quant_fidelity`` or keep it as written)."""
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


def _quant_section(results: Results) -> Any:
    """``results["quant_fidelity"]``, typed by the results model or kept as written."""
    section: Any = getattr(results, "quant_fidelity", None)
    if section is None and results.model_extra:
        section = results.model_extra.get("quant_fidelity")
    return section


def _fidelity(results: Results, role: str) -> dict[str, float | None] | None:
    """``results["quant_fidelity"][role]``'s four numbers, or ``None`` when the run did not measure them."""
    section = _plain(_quant_section(results))
    entry = _plain(section.get(role)) if isinstance(section, Mapping) else None
    if not isinstance(entry, Mapping) or _number(entry.get("mean_kld")) is None:
        return None
    return {key: _number(entry.get(key)) for key in FIDELITY_KEYS}


def _flips(results: Results, role: str) -> dict[str, Any] | None:
    """Answers flipped on all items, against the full-precision student or else the teacher.

    Against the student where the run measured that (``quant_fidelity[role].flips``), else against the
    teacher (``flips`` on the slice ``all``).
    """
    section = _plain(_quant_section(results))
    entry = _plain(section.get(role)) if isinstance(section, Mapping) else None
    native = _plain(entry.get("flips")) if isinstance(entry, Mapping) else None
    if isinstance(native, Mapping) and all(isinstance(native.get(k), int) for k in ("n", "lost", "gained")):
        return {"against": "student", "n": native["n"], "lost": native["lost"], "gained": native["gained"]}
    counts = ((results.flips.slices if results.flips else None) or {}).get("all", {}).get(role)
    if counts is None:
        return None
    return {"against": "teacher", "n": counts.n, "lost": counts.lost, "gained": counts.gained}


def _evaluated(results: Results, role: str, entry: Metric | None) -> dict[str, Any]:
    score = entry.roles.get(role) if entry else None
    kept = (entry.retention or {}).get(role) if entry else None
    model = results.models[role]
    return {
        "role": role,
        "kind": model.kind,
        "metric": results.primary_metric or "",
        "score": score.value if score else None,
        "score_ci95": _interval(score.ci95) if score else None,
        "retention": kept.value if kept else None,
        "retention_ci95": _interval(kept.ci95) if kept else None,
        "retention_reason": kept.reason if kept else None,
        "fidelity": _fidelity(results, role) if role != "student" else None,
        "flips": _flips(results, role),
    }


def _row(rows: dict[str, dict[str, Any]], quant: str) -> dict[str, Any]:
    return rows.setdefault(
        quant, {"quant": quant, "file_bytes": None, "quantized_from": None, "evaluated": {}, "benched": []}
    )


def _lineage_source(model: Any) -> tuple[str | None, str | None, int | None]:
    """(quantized from, quantization, file bytes) of a model's lineage; all ``None`` without a valid one."""
    try:
        found = lineage(model)
    except ValueError:
        return None, None, None
    return (found.quantized_from, found.quant, found.bytes) if found else (None, None, None)


def _add_runs(rows: dict[str, dict[str, Any]], runs: Sequence[Results], *, legacy: bool) -> str | None:
    """The runs' student roles into ``rows``; returns the student's digest (the first run's)."""
    student_digest = None
    for results in runs:
        primary = results.primary_metric or ""
        entry = (results.metrics or {}).get("all", {}).get(primary)
        pack = f"{results.pack.id}@{results.pack.version}"
        for role, model in results.models.items():
            if role != "student" and not role.startswith("student@"):
                continue
            if role == "student":
                student_digest = student_digest or model.digest
            row = _row(rows, _quant_of(role, model, legacy=legacy))
            row["evaluated"][pack] = _evaluated(results, role, entry)
            source, _, size = _lineage_source(model)
            if source is not None and role != "student":
                row["quantized_from"] = row["quantized_from"] or source
                row["file_bytes"] = row["file_bytes"] if row["file_bytes"] is not None else size
    return student_digest


def quantization_table(
    runs: Sequence[Results], footprints: Sequence[Footprint], *, legacy: bool = False
) -> list[dict[str, Any]]:
    """Quantization survival: per student quantization, what it keeps next to what it costs.

    Score and retention (with CIs), fidelity and flips per pack come from the runs' ``student`` and
    ``student@VARIANT`` roles; memory and speed from the footprints of the student's weights (matched by
    digest) or of a file quantized from them (by its recorded lineage, under that lineage's quantization).
    ``legacy``: the rows as signed before a natively run student got its own quantization's row
    (`_quant_of`), so those receipts keep verifying.
    """
    rows: dict[str, dict[str, Any]] = {}
    student_digest = _add_runs(rows, runs, legacy=legacy)
    for fp in footprints if student_digest else ():
        source, native_quant, size = _lineage_source(fp.model)
        if fp.model.digest != student_digest and source != student_digest:
            continue
        for point in fp.summary.by_quant.values():
            quant = native_quant if fp.model.digest != student_digest and native_quant else str(point.quant)
            row = _row(rows, quant)
            if row["file_bytes"] is None:
                row["file_bytes"] = size if size is not None else fp.model.file_bytes
            if source is not None and fp.model.digest != student_digest:
                row["quantized_from"] = row["quantized_from"] or source
            row["benched"].append(
                {
                    "hw_class": fp.hardware.hw_class,
                    "hardware": fp.hardware.label,
                    **{k: getattr(point, k, None) for k in _BENCHED},
                }
            )
    rank = {quant: index for index, quant in enumerate(ORDER)}
    return sorted(rows.values(), key=lambda r: (rank.get(r["quant"], len(ORDER)), r["quant"]))


_BEFORE_21 = ("role", "metric", "score", "retention")


def as_signed_before_21(signed: object, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``table`` in the shape receipts signed before issue #21, when ``signed`` is in that shape.

    Those tables had no ``file_bytes``, ``quantized_from``, CIs, fidelity or flips; such a receipt keeps
    verifying against the same numbers it signed (its runs hold no lineage, so its rows are the same).
    A table in today's shape is returned as it is.
    """
    rows = signed if isinstance(signed, list) else []
    if not rows or any(isinstance(row, Mapping) and "file_bytes" in row for row in rows):
        return table
    return [
        {
            "quant": row["quant"],
            "evaluated": {
                pack: {key: entry[key] for key in _BEFORE_21} for pack, entry in row["evaluated"].items()
            },
            "benched": row["benched"],
        }
        for row in table
    ]
