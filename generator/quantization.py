"""The card's quantization-survival table and its computed sentences (issue #21), from the signed table only.

Each row of ``predicate.quantization`` is one quantization of the student: torch's fp32/bf16/int8-dynamic
or a GGUF llama.cpp ran (``student@Q4_K_M``). A row shows, per pack, the score and retention with their
95% CIs, the fidelity to the full-precision student (mean KLD, same-top-token rate; "not measured" where
the run has none) and the answers flipped against the teacher; and, once per quantization, the file
size, peak RSS, decode speed and TTFT of its benched points. The sentences under the table compare each
quantization with the full-precision student on the numbers in the table: the share of the student's
retention it keeps and the share of its memory it needs; where a number is missing they say which.
Every value is a signed number formatted here; names from the receipt are escaped by the template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from generator.scorecard import signed_number
from generator.words import role_words

if TYPE_CHECKING:
    from receipts.formats.statement import QuantizationEvaluated, QuantizationRow

__all__ = ["quantization_rows", "quantization_sentences"]

NOT_MEASURED = "not measured"
NOT_RECORDED = "not in this receipt"
"""A key the signed table has no place for (receipts signed before issue #21)."""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _ci(values: Sequence[Any] | None) -> str:
    low, high = (_number(v) for v in values) if values and len(values) == 2 else (None, None)
    if low is None or high is None:
        return ""
    return f"[{signed_number(low)}, {signed_number(high)}]"


def _bytes(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    return f"{number / 1e9:.2f} GB" if number >= 1e9 else f"{number / 1e6:.1f} MB"


def _ok(row: QuantizationRow) -> list[Mapping[str, Any]]:
    """The row's benched points that measured something (status ok)."""
    return [b for b in row.benched if isinstance(b, Mapping) and b.get("status") == "ok"]


def _fidelity(ev: QuantizationEvaluated) -> tuple[str, str]:
    if ev.role == "student":
        return "reference", "reference"
    if "fidelity" not in ev.model_fields_set:
        return NOT_RECORDED, NOT_RECORDED
    if ev.fidelity is None:
        return NOT_MEASURED, NOT_MEASURED
    kld, kld_unc = ev.fidelity.mean_kld, ev.fidelity.mean_kld_unc
    top, top_unc = ev.fidelity.same_top_rate, ev.fidelity.same_top_rate_unc
    kld_text = signed_number(kld, 4) + (f" ± {signed_number(kld_unc, 4)}" if kld_unc is not None else "")
    top_text = signed_number(top, 3) + (f" ± {signed_number(top_unc, 3)}" if top_unc is not None else "")
    return kld_text, top_text


def _flips_words(ev: QuantizationEvaluated) -> str:
    if "flips" not in ev.model_fields_set:
        return NOT_RECORDED
    flips = ev.flips
    if flips is None:
        return NOT_MEASURED
    against = "the full-precision student" if flips.against == "student" else "the teacher"
    return f"{flips.lost} lost, {flips.gained} gained of {flips.n} (vs {against})"


def _evaluated(pack: str, ev: QuantizationEvaluated) -> dict[str, str]:
    kld, same_top = _fidelity(ev)
    return {
        "pack": pack,
        "role": role_words(ev.role),
        "runtime": "llama.cpp" if ev.kind == "llamacpp" else (ev.kind or "n/a"),
        "score": signed_number(_number(ev.score)),
        "score_ci": _ci(ev.score_ci95),
        "retention": signed_number(_number(ev.retention)),
        "retention_ci": _ci(ev.retention_ci95),
        "kld": kld,
        "same_top": same_top,
        "flips": _flips_words(ev),
    }


def quantization_rows(quantization: Sequence[QuantizationRow]) -> list[dict[str, Any]]:
    """The signed quantization table as the card's rows: per pack quality, once per quant its cost."""
    rows = []
    for q in quantization:
        benched = _ok(q)
        rows.append(
            {
                "quant": q.quant,
                "file": _bytes(q.file_bytes),
                "evaluated": [_evaluated(pack, ev) for pack, ev in sorted(q.evaluated.items())],
                "memory": [_bytes(b.get("peak_rss_bytes")) for b in benched],
                "speed": [signed_number(_number(b.get("decode_tps_p50")), 1) for b in benched],
                "ttft": [
                    f"{signed_number(_number(b.get('ttft_p50_s')), 3)} s"
                    for b in benched
                    if _number(b.get("ttft_p50_s")) is not None
                ],
            }
        )
    return rows


def _reference(quantization: Sequence[QuantizationRow]) -> QuantizationRow | None:
    """The row of the full-precision student itself (its ``student`` role)."""
    return next((q for q in quantization if any(ev.role == "student" for ev in q.evaluated.values())), None)


def _peak(row: QuantizationRow, hw_class: str | None) -> float | None:
    values = [_number(b.get("peak_rss_bytes")) for b in _ok(row) if b.get("hw_class") == hw_class]
    found = [v for v in values if v]
    return min(found) if found else None


def _memory_words(reference: QuantizationRow, row: QuantizationRow) -> str:
    """``at 1/3.1 of the memory`` from peak RSS on one hardware class both were benched on, or why not."""
    classes = [b.get("hw_class") for b in _ok(reference)]
    common = [c for c in classes if c in {b.get("hw_class") for b in _ok(row)}]
    for hw_class in common:
        ref_peak, peak = _peak(reference, hw_class), _peak(row, hw_class)
        if ref_peak and peak:
            ratio = ref_peak / peak
            share = f"1/{ratio:.1f} of the" if ratio >= 1 else f"{1 / ratio:.1f} times the"
            return f"at {share} memory ({_bytes(peak)} against {_bytes(ref_peak)} peak RSS)"
    if not _ok(row):
        return f"its memory was not measured (no benched point at {row.quant})"
    return "its memory was not measured on the same hardware as the student's"


def quantization_sentences(quantization: Sequence[QuantizationRow]) -> list[str]:
    """One sentence per quantization and pack: the share of the student's retention kept, at what memory.

    Computed from the signed table: retention of the quantization over retention of the full-precision
    student on the same pack, and peak RSS of the student over that of the quantization on one hardware
    class. Where either number is missing the sentence says so instead.
    """
    reference = _reference(quantization)
    if reference is None:
        return []
    base = {pack: ev for pack, ev in reference.evaluated.items() if ev.role == "student"}
    sentences = []
    for row in quantization:
        if row is reference:
            continue
        memory = _memory_words(reference, row)
        for pack, ev in sorted(row.evaluated.items()):
            ref = base.get(pack)
            kept, ref_kept = _number(ev.retention), _number(ref.retention) if ref else None
            if kept is None or not ref_kept:
                why = "its retention" if kept is None else "the student's retention"
                sentences.append(
                    f"{row.quant} on {pack}: {why} is undefined, so its share is unknown; {memory}."
                )
                continue
            share = kept / ref_kept
            ci = _ci(ev.retention_ci95)
            kept_text = signed_number(kept) + (f" {ci}" if ci else "")
            sentences.append(
                f"{row.quant} keeps {share:.0%} of the {reference.quant} student's retention on {pack} "
                f"({kept_text} against {signed_number(ref_kept)}), {memory}."
            )
    return sentences
