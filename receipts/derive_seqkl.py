"""The ``flips`` and ``sequence_divergence`` sections of results.json (issue #20 parts 5 and 4).

Both read only signed per-row fields, so `receipts.derive.rederive` recomputes them like every other
section: each role's ``score`` (flips, `receipts.metrics.flips`), and the teacher's output ``text`` with
each role's ``seq_logprob`` (``log p(teacher's text | prompt)`` under the role's own tokenizer, written by
``runner.eval.seqkl``). Results written before issue #20 have neither section (`receipts.derive.OPTIONAL`).

Per item, the sequence divergence is ``d = (log p_T(y|x) - log p_S(y|x)) / bytes(y)`` with y the
teacher's greedy output in UTF-8; its mean over a slice estimates KL(teacher || student) per byte at the
teacher's mode (not a sample: biased, may be negative per item; see the README).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from receipts.metrics import flips, uncertainty

__all__ = [
    "FLIPS_DEFINITION",
    "SEQ_DEFINITION",
    "critical_flips",
    "flips_section",
    "sequence_section",
]

Scored = Mapping[str, Mapping[str, Mapping[str, Any]]]  # role -> instance key -> scored fields


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _est(e: uncertainty.Estimate) -> dict[str, Any]:
    # the shape of receipts.derive's estimates (rounded to six places)
    return {"value": _r(e.value), "ci95": [_r(e.low), _r(e.high)], "n": e.n, "small_n": e.small_n}


SEQ_DEFINITION = (
    "mean over items of (log p_teacher(y|x) - log p_role(y|x)) / UTF-8 bytes of y, y = the teacher's greedy "
    "output, each model scoring y with its own tokenizer: a per-byte estimate of KL(teacher||role) at the "
    "teacher's mode (biased: y is not a sample); nats per byte"
)
FLIPS_DEFINITION = (
    "lost: teacher right, role wrong; gained: teacher wrong, role right (right: score >= 0.5); rates over "
    "all items of the slice, 95% paired-bootstrap CIs; McNemar's test of lost vs gained"
)


def flips_section(
    slices: Mapping[str, Sequence[str]], scored: Scored, roles: Sequence[str], resamples: int, seed: int
) -> dict[str, Any]:
    """Per slice and non-teacher role: the answers lost and gained against the teacher (`metrics.flips`)."""
    out: dict[str, Any] = {}
    for slice_name, keys in slices.items():
        teacher = [float(scored["teacher"][k]["score"]) >= flips.CORRECT_AT for k in keys]
        section = {}
        for r in roles:
            if r == "teacher":
                continue
            found = flips.flips(
                teacher,
                [float(scored[r][k]["score"]) >= flips.CORRECT_AT for k in keys],
                n_resamples=resamples,
                seed=seed,
            )
            section[r] = {
                "n": found.n,
                "lost": found.lost,
                "gained": found.gained,
                "lost_rate": _est(found.lost_rate),
                "gained_rate": _est(found.gained_rate),
                "mcnemar": {"p_value": _r(found.mcnemar.p_value), "method": found.mcnemar.method},
            }
        if section:
            out[slice_name] = section
    return {"definition": FLIPS_DEFINITION, "slices": out} if out else {}


def _logprob(cell: Mapping[str, Any], where: str) -> float | None:
    """A cell's ``seq_logprob``: None when absent; a finite number <= 0 otherwise.

    Raises:
        ValueError: it is not a finite number at most 0 (a log-probability).
    """
    value = cell.get("seq_logprob")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not -1e12 < value <= 0:
        raise ValueError(f"{where}: seq_logprob is {value!r}, not a log-probability (a finite number <= 0)")
    return float(value)


def _check_served(teacher: Mapping[str, Any], total: float, where: str) -> None:
    """A served teacher's ``seq_logprob`` is the sum of the token log-probabilities its cell carries.

    Raises:
        ValueError: it is not (the signed row contradicts itself).
    """
    values = teacher.get("token_logprobs")
    if not isinstance(values, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"{where}, teacher: served seq_logprob without its token_logprobs")
    if abs(math.fsum(values) - total) > 1e-6 * (1 + len(values)):
        raise ValueError(
            f"{where}, teacher: served seq_logprob {total!r} is not the sum of its token_logprobs "
            f"({math.fsum(values)!r})"
        )


def _seq_values(keys: Sequence[str], scored: Scored, role: str) -> list[float]:
    """Per item with both log-probs: (log p_T(y|x) - log p_role(y|x)) / bytes(y), y the teacher's text."""
    values = []
    for k in keys:
        teacher, cell = scored["teacher"][k], scored[role][k]
        text = teacher.get("text")
        if not isinstance(text, str) or not text:
            continue
        where = "item " + k.replace("\x1f", ", variant ")
        t, s = _logprob(teacher, f"{where}, teacher"), _logprob(cell, f"{where}, {role}")
        if t is not None and teacher.get("seq_source") == "served":
            _check_served(teacher, t, where)
        if t is not None and s is not None:
            values.append((t - s) / len(text.encode("utf-8")))
    return values


def sequence_section(
    slices: Mapping[str, Sequence[str]], scored: Scored, roles: Sequence[str], resamples: int, seed: int
) -> dict[str, Any]:
    """Per slice and non-teacher role: the mean per-byte sequence log-ratio with its bootstrap CI."""
    teacher = scored.get("teacher", {})
    if not any(isinstance(c.get("text"), str) and c["text"] for c in teacher.values()):
        return {}  # no item has a teacher text (multiple choice): nothing to measure
    out: dict[str, Any] = {}
    for slice_name, keys in slices.items():
        texts = sum(1 for k in keys if isinstance(teacher[k].get("text"), str) and teacher[k]["text"])
        section = {}
        for r in roles:
            if r == "teacher" or not texts:
                continue
            values = _seq_values(keys, scored, r)
            if values:
                est = _est(uncertainty.paired_bootstrap({r: values}, n_resamples=resamples, seed=seed)[r])
            else:  # e.g. a served teacher that returned no log-probabilities: unmeasured, not zero
                est = {"value": None, "ci95": [None, None], "n": 0, "small_n": True}
            section[r] = {**est, "missing": texts - len(values)}
        if section:
            out[slice_name] = section
    sources = sorted(
        {c["seq_source"] for c in teacher.values() if c.get("seq_source") in ("teacher_forced", "served")}
    )
    return {"definition": SEQ_DEFINITION, "teacher_logprob": sources, "slices": out}


def critical_flips(results: Mapping[str, Any]) -> dict[str, tuple[int, int, float]]:
    """The student's (lost, gained, McNemar p) on each critical slice, for the diagnostics."""
    out = {}
    for name, section in (results.get("flips") or {}).get("slices", {}).items():
        entry = section.get("student")
        if (name == "critical" or name.startswith("critical=")) and entry is not None:
            out[name] = (int(entry["lost"]), int(entry["gained"]), float(entry["mcnemar"]["p_value"]))
    return out
