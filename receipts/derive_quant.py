"""The ``quant_fidelity`` section of results.json: each llama.cpp quantization against its base (issue #21).

A role whose model is a GGUF that ``receipts quantize`` made (role ``student@Q4_K_M``) is compared token
by token with the full-precision GGUF it was made from (its base, e.g. the F16 file, named by the
quantize manifest): both models read each item's text teacher-forced, and every next-token position
is scored as ``llama-perplexity --kl-divergence`` scores one (`runner.llamacpp.kld`). The runner signs
per item, in the role's examples cell, ``quant_kld``:

- ``kld``: the per-token KL(base || quant) values, in order;
- ``delta_p``: the per-token ``p_quant - p_base`` of the actual next token;
- ``same_top``: how many of those tokens both models rank first;
- ``nll_sums``: ``[sum nll, sum nll^2, sum nll_base, sum nll_base^2, sum nll * nll_base]``.

This module pools them over the run's items (the ``original`` prompts without a failed role) and
computes llama-perplexity's statistics (`receipts.metrics.quant_kld.summarize`); ``receipts verify``
recomputes the section from the signed rows with this code. The base's identity comes from the signed
header (``settings.quant_fidelity``), where the runner recorded what it compared against. Where that base
was converted from the run's own student (the student's weights digest is the base's ``quantized_from``),
``flips`` counts the answers the quantization lost (student right, quantization wrong) and gained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from receipts.metrics import flips, uncertainty
from receipts.metrics.quant_kld import NllSums, summarize, sums_of

Scored = Mapping[str, Mapping[str, Mapping[str, Any]]]  # role -> instance key -> scored fields

__all__ = ["DEFINITION", "FIELD", "MAX_TOKENS", "REPORTED", "quant_fidelity_section"]

FIELD = "quant_kld"
"""The examples-cell field holding an item's per-token evidence."""
MAX_TOKENS = 5_000_000
"""The most scored tokens pooled per role (a hostile receipt cannot make verify sort more)."""
DIGITS = 8
"""Decimal places of every statistic (a Q8_0's mean KLD is ~1e-5: six places would keep one digit)."""
REPORTED = (
    "mean_kld",
    "mean_kld_unc",
    "kld_median",
    "kld_p90",
    "kld_p95",
    "kld_p99",
    "kld_max",
    "delta_p_mean",
    "delta_p_mean_unc",
    "delta_p_rms",
    "delta_p_rms_unc",
    "same_top_rate",
    "same_top_rate_unc",
    "ln_ppl_ratio",
    "ln_ppl_ratio_unc",
)
"""The statistics of `receipts.metrics.quant_kld.summarize` a results document carries, per role."""
DEFINITION = (
    "llama-perplexity --kl-divergence statistics of the quantized role against the full-precision GGUF it "
    "was made from, both teacher-forced on each item's prompt followed by its gold answer, every next-token "
    "position scored: mean KL(base||quant) per token with its standard error, KLD percentiles, Δp = "
    "p_quant - p_base of the actual next token, RMS Δp, the share of positions where both rank the same "
    "token first, ln(PPL(quant)/PPL(base)); fractions, nats"
)


def _numbers(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ValueError(f"{where} is not a list of finite numbers")
    return [float(v) for v in value]


def _record(cell: Mapping[str, Any], where: str) -> tuple[list[float], list[float], int, NllSums]:
    """An item's evidence, checked: equal-length per-token lists, a count within them, five sums.

    Raises:
        ValueError: naming the item and what is wrong.
    """
    record = cell[FIELD]
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: {FIELD} is not an object")
    kld = _numbers(record.get("kld"), f"{where}: {FIELD}.kld")
    delta_p = _numbers(record.get("delta_p"), f"{where}: {FIELD}.delta_p")
    same = record.get("same_top")
    if len(kld) != len(delta_p) or not kld:
        raise ValueError(f"{where}: {FIELD} holds {len(kld)} kld and {len(delta_p)} delta_p values")
    if not isinstance(same, int) or isinstance(same, bool) or not 0 <= same <= len(kld):
        raise ValueError(f"{where}: {FIELD}.same_top {same!r} is not a count of at most {len(kld)}")
    if any(abs(v) > 1 for v in delta_p):
        raise ValueError(f"{where}: {FIELD}.delta_p holds a difference of probabilities beyond ±1")
    try:
        sums = sums_of(record)
    except ValueError as exc:
        raise ValueError(f"{where}: {FIELD}.{exc}") from None
    return kld, delta_p, same, sums


def _role(keys: Sequence[str], cells: Mapping[str, Mapping[str, Any]], role: str) -> dict[str, Any] | None:
    kld: list[float] = []
    delta_p: list[float] = []
    same, sums, items = 0, [], 0
    for key in keys:
        if FIELD not in cells[key]:
            continue
        where = f"{role}, item " + key.replace("\x1f", ", variant ")
        k, d, s, n = _record(cells[key], where)
        kld += k
        delta_p += d
        same += s
        sums.append(n)
        items += 1
        if len(kld) > MAX_TOKENS:
            raise ValueError(f"{role}: more than {MAX_TOKENS:,} scored tokens; re-derivation stops here")
    if not items:
        return None
    stats = summarize(np.array(kld), np.array(delta_p), same, NllSums.total(sums)).as_dict(digits=DIGITS)
    return {
        "tokens": stats["tokens"],
        "items": items,
        "missing": len(keys) - items,
        **{name: stats[name] for name in REPORTED},
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _est(e: uncertainty.Estimate) -> dict[str, Any]:
    # the shape and rounding of every estimate in results.json (`receipts.derive`)
    return {"value": _r(e.value), "ci95": [_r(e.low), _r(e.high)], "n": e.n, "small_n": e.small_n}


def _flips(keys: Sequence[str], scored: Scored, role: str, resamples: int, seed: int) -> dict[str, Any]:
    """The answers the quantization lost and gained against the full-precision student, on ``keys``."""
    student = [float(scored["student"][k]["score"]) >= flips.CORRECT_AT for k in keys]
    quant = [float(scored[role][k]["score"]) >= flips.CORRECT_AT for k in keys]
    found = flips.flips(student, quant, n_resamples=resamples, seed=seed)
    return {
        "against": "student",
        "n": found.n,
        "lost": found.lost,
        "gained": found.gained,
        "lost_rate": _est(found.lost_rate),
        "gained_rate": _est(found.gained_rate),
        "mcnemar": {"p_value": _r(found.mcnemar.p_value), "method": found.mcnemar.method},
    }


def _of_student(header: Mapping[str, Any], base: Mapping[str, Any], role: str) -> bool:
    """Whether ``role`` quantizes the run's own student: its base was converted from the student's weights."""
    student = (header.get("models") or {}).get("student") or {}
    digest = student.get("digest")
    return role != "student" and digest is not None and digest == base.get("quantized_from")


def quant_fidelity_section(
    keys: Sequence[str], scored: Scored, header: Mapping[str, Any], *, resamples: int, seed: int
) -> dict[str, Any]:
    """Role -> llama-perplexity's statistics against its base, for each role with ``quant_kld`` evidence.

    ``keys`` are the instances pooled (the original prompts no role failed on); ``header`` is the results
    header: its ``settings.quant_fidelity`` names each role's base, and where that base was converted from
    the student's own weights (``models.student.digest``), the section adds the answers the quantization
    lost and gained against the student (``flips``: `receipts.metrics.flips` with the student in the
    teacher's place, on the same items, bootstrap ``resamples`` and ``seed``). Empty when no role has
    evidence.

    Raises:
        ValueError: a record is malformed, or a role with evidence has no base in the settings.
    """
    bases = (header.get("settings") or {}).get("quant_fidelity") or {}
    roles: dict[str, Any] = {}
    for role in sorted(scored):
        found = _role(keys, scored[role], role)
        if found is None:
            continue
        base = bases.get(role) if isinstance(bases, Mapping) else None
        if not isinstance(base, Mapping) or "base" not in base:
            raise ValueError(f"{role}: quant_kld evidence, but settings.quant_fidelity names no base for it")
        roles[role] = {"base": base["base"], **found}
        if keys and isinstance(base["base"], Mapping) and _of_student(header, base["base"], role):
            roles[role]["flips"] = _flips(keys, scored, role, resamples, seed)
    return roles
