"""Every number of a run from its per-example log: the one implementation behind results.json.

``receipts run`` scores each role's output and writes one ``examples.jsonl`` row per prompt instance
(the item, its variant, slices, gold and each role's scored fields side by side); `derive_results` turns
those rows into the numbers of ``results.json``. Nothing else computes them, so anyone holding the signed
rows can recompute every metric, CI (the bootstrap is seeded), retention, fidelity, calibration,
diagnostic, the pack's gate verdict and the summary, and compare (DESIGN §11: numbers re-derive).

Headline numbers are on the ``original`` variant; every other variant is its own slice, and
``robustness.worst_case`` counts an item right only if it is right under every variant. Items where
any role failed are left out of the paired statistics and counted under ``errors``. Every metric
carries a 95% paired-bootstrap CI (the same resampled items for all roles) and a ``small_n`` flag.

The rows' fields each section reads (per role, under ``roles``): ``score``, ``scores``, ``confidence``,
``probs`` (multiple choice: Brier), ``abstained``, ``answer``, ``fields`` (extraction ``[tp, fp, fn]``),
``kl_token``/``kl_choice`` and ``error``; flips and the sequence divergence (`receipts.derive_seqkl`) read
``score``, the teacher's ``text`` and ``seq_logprob``/``seq_source``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from receipts import derive_quant, derive_seqkl, gate
from receipts.errors import InputError
from receipts.judged import derive_judged
from receipts.metrics import calibration, diagnostics, fidelity, retention, uncertainty
from receipts.metrics import similarity as similarity_metrics

__all__ = [
    "DERIVED",
    "MAX_METRICS",
    "MAX_RESAMPLES",
    "MAX_SLICES",
    "OPTIONAL_DERIVED",
    "ORIGINAL",
    "ROLE_ORDER",
    "TOLERANCE",
    "RunFacts",
    "derive_results",
    "differences",
    "facts_of",
    "rederive",
    "role_order",
]

ORIGINAL = "original"
"""The variant that is the item as written: headline numbers are computed on it."""

ROLE_ORDER = ("teacher", "base", "student", "sft")
"""Roles in the order they are reported (a ``student@VARIANT`` sorts with ``student``)."""

DERIVED = (
    "metrics",
    "robustness",
    "calibration",
    "abstention",
    "fidelity",
    "extraction",
    "similarity",  # issue #20 part 3: absent from runs without similarity scores
    "errors",
    "gate",
    "diagnostics",
    "summary",
    "flips",  # issue #20 part 5 (absent in results signed before it)
    "sequence_divergence",  # issue #20 part 4 (absent in results signed before it)
)
"""The sections of results.json computed from the rows (the rest says what ran: pack, models, settings)."""

OPTIONAL = frozenset({"flips", "sequence_divergence"})
"""Sections results signed before issue #20 do not have: `rederive` checks them only where signed."""
OPTIONAL_DERIVED = ("judged", "quant_fidelity")
"""Sections computed from the rows only for some runs: ``judged`` where a judge ran (issue #20 part 2),
``quant_fidelity`` where a role is a llama.cpp quantization with its base (issue #21)."""

MAX_RESAMPLES = 100_000
MAX_SLICES = 10_000
MAX_METRICS = 100
MAX_RESAMPLED_CELLS = 100_000_000
"""What `rederive` computes at most for a signed run: each CI costs resamples x rows, per slice and metric,
and one bootstrap holds a resamples x instances index matrix (MAX_RESAMPLED_CELLS: 800 MB of int64, e.g.
1,000 resamples of 100,000 instances).

Far above any pack's (1,000 resamples, tens of slices, a few metrics); far below what would let a hostile
receipt hold a verifier for hours.
"""

Row = Mapping[str, Any]
Scored = Mapping[str, Mapping[str, Mapping[str, Any]]]  # role -> instance key -> scored fields


@dataclass(frozen=True)
class RunFacts:
    """What the numbers depend on besides the rows.

    Attributes:
        primary_metric: the pack's headline metric.
        seed: the bootstrap seed.
        bootstrap_resamples: resamples per CI.
        gate: the pack's gate rules, rule -> threshold, in the pack's order.
        confidence: what a row's ``confidence`` is (the task scorer's definition), for calibration.
        per_field: whether the task scores fields (extraction precision/recall/F1 per field).
    """

    primary_metric: str
    seed: int
    bootstrap_resamples: int
    gate: Mapping[str, float]
    confidence: str | None
    per_field: bool


@dataclass(frozen=True)
class _Instance:
    key: str
    item: str
    variant: str
    slices: Mapping[str, Any]
    critical: bool | str  # True, or the name of the item's critical cohort
    gold: Any


def role_order(role: str) -> tuple[int, str]:
    """Sort key: `ROLE_ORDER`, then the variant name."""
    return ROLE_ORDER.index(role.split("@")[0]), role


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _est(e: uncertainty.Estimate) -> dict[str, Any]:
    return {"value": _r(e.value), "ci95": [_r(e.low), _r(e.high)], "n": e.n, "small_n": e.small_n}


def _instances(rows: Sequence[Row]) -> tuple[list[_Instance], dict[str, dict[str, Mapping[str, Any]]]]:
    """Each row as an instance, and each role's cell by instance key.

    Raises:
        InputError: two rows of one (item, variant): the runner logs each once, and a repeated row would
            count twice in a mean here and once per row in the browser's check (verify.js refuses it too).
    """
    instances: list[_Instance] = []
    scored: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    first: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        key = f"{row['item']}\x1f{row['variant']}"
        if key in first:
            raise InputError(
                f"row {number} repeats item {row['item']!r}, variant {row['variant']!r} (first at row "
                f"{first[key]})",
                hint="an examples log has one row per item and variant",
            )
        first[key] = number
        instances.append(
            _Instance(key, row["item"], row["variant"], row["slices"], row["critical"], row["gold"])
        )
        for role, cell in row["roles"].items():
            scored[role][key] = cell
    return instances, dict(scored)


def _slices(instances: Sequence[_Instance]) -> dict[str, list[str]]:
    """Slice name -> instance keys: ``all``, ``<field>=<label>``, ``critical``, ``variant=<name>``.

    An item whose ``critical`` names a cohort (``critical: pii``) is also in ``critical=<cohort>``.
    """
    out: dict[str, list[str]] = defaultdict(list)
    for inst in instances:
        if inst.variant == ORIGINAL:
            out["all"].append(inst.key)
            for name, label in inst.slices.items():
                out[f"{name}={label}"].append(inst.key)
            if inst.critical:
                out["critical"].append(inst.key)
            if isinstance(inst.critical, str):
                out[f"critical={inst.critical}"].append(inst.key)
        else:
            out[f"variant={inst.variant}"].append(inst.key)
    return dict(out)


def _metric_names(primary: str, scored: Scored) -> list[str]:
    names: dict[str, None] = {}
    for per_role in scored.values():
        for result in per_role.values():
            names.update(dict.fromkeys(result.get("scores", {})))
    return [primary, *sorted(n for n in names if n != primary)]


def _statistics(roles: Sequence[str]) -> dict[str, uncertainty.Statistic]:
    stats: dict[str, uncertainty.Statistic] = {r: uncertainty.role_mean(r) for r in roles}
    for r in roles:
        if r != "teacher":
            stats[f"{r}-teacher"] = uncertainty.role_difference(r, "teacher")
        if r not in ("teacher", "base") and "base" in roles:
            stats[f"{r}-base"] = uncertainty.role_difference(r, "base")
    if "base" in roles:
        stats["teacher-base"] = uncertainty.role_difference("teacher", "base")
    if "sft" in roles and "student" in roles:
        stats["student-sft"] = uncertainty.role_difference("student", "sft")
    return stats


def _retention_statistics(roles: Sequence[str]) -> dict[str, uncertainty.Statistic]:
    """``retention:<role>`` per student-like role: (S - B)/(T - B) on each resample (NaN where undefined)."""

    def ratio(role: str) -> uncertainty.Statistic:
        return lambda s: retention.replicate_retention(s[role], s["teacher"], s["base"])

    return {f"retention:{r}": ratio(r) for r in roles if r not in ("teacher", "base")}


def _retention(
    est: Mapping[str, uncertainty.Estimate],
    found: Mapping[str, uncertainty.Replicates],
    roles: Sequence[str],
) -> dict[str, Any]:
    gap = est["teacher-base"]
    out = {}
    for r in roles:
        if r in ("teacher", "base"):
            continue
        ret = retention.retention(
            est[r].value, est["teacher"].value, est["base"].value, gap_ci=(gap.low, gap.high)
        )
        interval = retention.retention_interval(ret, found[f"retention:{r}"].replicates)
        ratio = retention.teacher_ratio(est[r].value, est["teacher"].value)
        out[r] = {
            "value": _r(ret.value),
            "reason": ret.reason,
            "ci95": [_r(interval.low), _r(interval.high)],
            "undefined_resamples": interval.undefined,
            "student_over_teacher": _r(ratio.value),
        }
    return out


def _metric(
    arrays: Mapping[str, np.ndarray[Any, Any]], roles: Sequence[str], facts: RunFacts
) -> dict[str, Any]:
    statistics = _statistics(roles)
    if "base" in roles:
        statistics.update(_retention_statistics(roles))
    found = uncertainty.bootstrap_replicates(
        arrays, statistics, n_resamples=facts.bootstrap_resamples, seed=facts.seed
    )
    est = {k: uncertainty.percentile_estimate(v) for k, v in found.items() if not k.startswith("retention:")}
    entry: dict[str, Any] = {
        "roles": {r: _est(est[r]) for r in roles},
        # role names may hold "-" themselves (student@int8-dynamic): a difference is any non-role key;
        # its bootstrap standard error is what the gate's minimum detectable effect is computed from
        "differences": {k: {**_est(v), "se": _r(v.se)} for k, v in est.items() if k not in roles},
    }
    if "base" in roles:
        entry["retention"] = _retention(est, found, roles)
    if all(set(np.unique(a).tolist()) <= {0.0, 1.0} for a in arrays.values()):
        entry["mcnemar"] = {}
        for r in roles:
            for other in ("teacher", "base"):
                if other in roles and r != other and r != "teacher":
                    test = uncertainty.mcnemar(arrays[r], arrays[other])
                    entry["mcnemar"][f"{r}-vs-{other}"] = {
                        "statistic": _r(test.statistic),
                        "p_value": _r(test.p_value),
                        "method": test.method,
                    }
    return entry


def _metrics(
    slices: Mapping[str, Sequence[str]], scored: Scored, roles: Sequence[str], facts: RunFacts
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = _metric_names(facts.primary_metric, scored)
    for slice_name, keys in slices.items():
        section: dict[str, Any] = {}
        for name in names:
            usable = [k for k in keys if all(name in scored[r][k].get("scores", {}) for r in roles)]
            if usable:
                arrays = {
                    r: np.array([scored[r][k]["scores"][name] for k in usable], dtype=np.float64)
                    for r in roles
                }
                section[name] = _metric(arrays, roles, facts)
        if section:
            out[slice_name] = section
    return out


def _robustness(
    instances: Sequence[_Instance], scored: Scored, roles: Sequence[str], facts: RunFacts
) -> dict[str, Any]:
    by_item: dict[str, list[str]] = defaultdict(list)
    for inst in instances:
        by_item[inst.item].append(inst.key)
    if all(len(keys) == 1 for keys in by_item.values()):
        return {}
    arrays = {
        r: np.array([min(float(scored[r][k]["score"]) for k in keys) for keys in by_item.values()])
        for r in roles
    }
    return {"worst_case": _metric(arrays, roles, facts), "variants": sorted({i.variant for i in instances})}


def _calibration(
    instances: Sequence[_Instance], scored: Scored, roles: Sequence[str], facts: RunFacts
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    originals = [i for i in instances if i.variant == ORIGINAL]
    gold = {i.key: i.gold for i in originals}
    for r in roles:
        usable = [i.key for i in originals if scored[r][i.key].get("confidence") is not None]
        if len(usable) < 2:
            continue
        conf = [float(scored[r][k]["confidence"]) for k in usable]
        correct = [float(float(scored[r][k]["score"]) >= 0.5) for k in usable]
        entry: dict[str, Any] = {
            "n": len(usable),
            "confidence": facts.confidence,
            "ece_10_equal_mass": _r(calibration.ece_equal_mass(conf, correct)),
            "ece_15_equal_width": _r(calibration.ece_equal_width(conf, correct)),
            "reliability": [
                {
                    "lower": _r(b.lower),
                    "upper": _r(b.upper),
                    "count": b.count,
                    "mean_confidence": _r(b.mean_confidence),
                    "accuracy": _r(b.accuracy),
                }
                for b in calibration.reliability_bins(conf, correct, n_bins=10, scheme="equal_width")
            ],
        }
        with_probs = [k for k in usable if "probs" in scored[r][k] and isinstance(gold[k], int)]
        if with_probs and len(with_probs) == len(usable):
            probs = [list(scored[r][k]["probs"]) for k in with_probs]
            entry["brier"] = _r(calibration.brier_score(probs, [int(gold[k]) for k in with_probs]))
        out[r] = entry
    return out


def _abstention(instances: Sequence[_Instance], scored: Scored, roles: Sequence[str]) -> dict[str, Any]:
    keys = [i.key for i in instances if i.variant == ORIGINAL]
    if not any(scored[r][k].get("abstained") for r in roles for k in keys):
        return {}
    out: dict[str, Any] = {}
    teacher = [bool(scored["teacher"][k].get("abstained")) for k in keys]
    for r in roles:
        abstained = [bool(scored[r][k].get("abstained")) for k in keys]
        stats = calibration.abstention_stats(abstained, [float(scored[r][k]["score"]) for k in keys])
        entry = {
            "coverage": _r(stats.coverage),
            "accuracy_on_answered": _r(stats.selective_accuracy),
            "overall_accuracy": _r(stats.overall_accuracy),
            "answered": stats.answered,
            "n": stats.n,
        }
        if r != "teacher":
            agree = calibration.abstain_agreement(abstained, teacher)
            entry["abstain_agreement_with_teacher"] = _r(agree.rate)
        out[r] = entry
    return out


def _extraction(
    instances: Sequence[_Instance], scored: Scored, roles: Sequence[str], facts: RunFacts
) -> dict[str, Any]:
    """Extraction packs: per role, precision/recall/F1 per field and micro-averaged.

    Micro pools the per-item tp/fp/fn counts of all fields over the original prompts; tasks whose
    scorer keeps no per-field counts get an empty mapping.
    """
    if not facts.per_field:
        return {}
    keys = [i.key for i in instances if i.variant == ORIGINAL]
    out: dict[str, Any] = {}
    for r in roles:
        per_field: dict[str, list[int]] = {}
        for k in keys:
            for name, counts in (scored[r][k].get("fields") or {}).items():
                total = per_field.setdefault(name, [0, 0, 0])
                for i in range(3):
                    total[i] += int(counts[i])
        pooled = [sum(c[i] for c in per_field.values()) for i in range(3)]
        out[r] = {
            "micro": _prf(*pooled),
            "per_field": {name: _prf(*c) for name, c in sorted(per_field.items())},
            "n": len(keys),
        }
    return out


def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None
    return {"tp": tp, "fp": fp, "fn": fn, "precision": _r(precision), "recall": _r(recall), "f1": _r(f1)}


def _divergence(keys: Sequence[str], cells: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    token = [float(cells[k]["kl_token"]) for k in keys if "kl_token" in cells[k]]
    choice = [float(cells[k]["kl_choice"]) for k in keys if "kl_choice" in cells[k]]
    if token and len(token) == len(keys):
        return {
            "level": "token",
            "value": _r(float(np.mean(token))),
            "n": len(token),
            "definition": "KL(teacher||role) per token at teacher-forced positions, averaged",
        }
    if choice:
        return {
            "level": "choice",
            "value": _r(float(np.mean(choice))),
            "n": len(choice),
            "definition": "KL(teacher||role) over each item's choice distribution "
            "(tokenizers differ, or no token distributions)",
        }
    return None


def _fidelity(instances: Sequence[_Instance], scored: Scored, roles: Sequence[str]) -> dict[str, Any]:
    keys = [i.key for i in instances if i.variant == ORIGINAL]
    teacher_answers = [scored["teacher"][k].get("answer") for k in keys]
    teacher_correct = [float(scored["teacher"][k]["score"]) >= 0.5 for k in keys]
    out: dict[str, Any] = {}
    for r in roles:
        if r == "teacher":
            continue
        answers = [scored[r][k].get("answer") for k in keys]
        cells = fidelity.fidelity_cells(answers, teacher_answers, teacher_correct)
        entry: dict[str, Any] = {
            "agreement_rate": _r(cells.agreement_rate),
            # neither answer could be read (invalid JSON, no match): counted as disagreement, shown apart
            "both_unreadable": sum(
                s is None and t is None for s, t in zip(answers, teacher_answers, strict=True)
            ),
            "cells": {
                "agree_teacher_correct": cells.agree_teacher_correct,
                "agree_teacher_wrong": cells.agree_teacher_wrong,
                "disagree_teacher_correct": cells.disagree_teacher_correct,
                "disagree_teacher_wrong": cells.disagree_teacher_wrong,
            },
        }
        kl = _divergence(keys, scored[r])
        if kl is not None:
            entry["kl"] = kl
        out[r] = entry
    return out


def _gate(results: Mapping[str, Any], facts: RunFacts) -> dict[str, Any]:
    # cost_ratio needs footprints: `receipts sign` evaluates it with the card's overrides.
    from receipts.formats import Results

    typed = Results.parse(results, file="<results being derived>")
    return gate.evaluate_gate(dict(facts.gate), gate.observed_inputs(typed)).as_dict()


def _diagnostics(results: Mapping[str, Any], *, floor_rule: bool = True) -> list[dict[str, Any]]:
    """The run's findings; ``floor_rule=False`` is the rule before 2026-12-06, which read all-zero packs.

    Receipts signed under that rule carry findings drawn from zeros; `rederive` accepts either list.
    """
    primary = results["primary_metric"]
    overall = results["metrics"].get("all", {}).get(primary, {})
    roles = overall.get("roles", {})
    if "student" not in roles:
        return []
    critical = {
        name: section[primary]["roles"]["student"]["value"]
        for name, section in results["metrics"].items()
        if (name == "critical" or name.startswith("critical=")) and primary in section
    }
    sft_ci = overall.get("differences", {}).get("student-sft", {}).get("ci95")
    inputs = diagnostics.DiagnosticInputs(
        student_accuracy=roles["student"]["value"],
        teacher_accuracy=roles.get("teacher", {}).get("value"),
        agreement_rate=results.get("fidelity", {}).get("student", {}).get("agreement_rate"),
        student_ece=results.get("calibration", {}).get("student", {}).get("ece_10_equal_mass"),
        critical_slices=critical,
        sft_accuracy=roles.get("sft", {}).get("value"),
        student_minus_sft_ci=tuple(sft_ci) if sft_ci else None,
        at_floor=floor_rule and diagnostics.at_floor(role.get("value") for role in roles.values()),
        critical_flips=derive_seqkl.critical_flips(
            results
        ),  # issue #20: absent (no rule) in results signed before it
    )
    return [
        {"id": f.id, "message": f.message, "evidence": dict(f.evidence)} for f in diagnostics.diagnose(inputs)
    ]


def _summary(results: Mapping[str, Any]) -> dict[str, Any]:
    overall = results["metrics"].get("all", {}).get(results["primary_metric"], {})
    return {
        "primary_metric": results["primary_metric"],
        "scores": {r: v["value"] for r, v in overall.get("roles", {}).items()},
        "retention": overall.get("retention", {}).get("student", {}).get("value"),
        "agreement_rate": results["fidelity"].get("student", {}).get("agreement_rate"),
        "gate": results["gate"]["verdict"],
    }


def _bound(what: str, count: int, most: int) -> None:
    if count > most:
        raise ValueError(f"the rows hold {count:,} {what}; re-derivation computes at most {most:,}")


def derive_results(
    header: Mapping[str, Any], rows: Sequence[Row], facts: RunFacts, *, bounded: bool = False
) -> dict[str, Any]:
    """results.json: ``header`` and every section of `DERIVED`, computed from ``rows``.

    ``header`` says what ran (format, pack, models, examples, task, primary_metric, settings); ``rows`` are
    the examples log, one parsed line each. ``bounded`` refuses more than `MAX_SLICES` slices or
    `MAX_METRICS` metrics (`rederive`: the rows are someone else's).

    Raises:
        KeyError, TypeError, ValueError: a row lacks a field a section reads, or holds the wrong type
            (the caller says which file; a row the runner wrote always has them).
    """
    instances, scored = _instances(rows)
    roles = sorted(scored, key=role_order)
    failed = {i.key for i in instances for r in roles if "error" in scored[r][i.key]}
    usable = [i for i in instances if i.key not in failed]
    slices = {name: keys for name, keys in _slices(usable).items() if keys}
    if bounded:
        _bound("slices", len(slices), MAX_SLICES)
        _bound("metrics", len(_metric_names(facts.primary_metric, scored)), MAX_METRICS)
        _bound("resampled cells (bootstrap resamples x instances)", facts.bootstrap_resamples * len(usable),
               MAX_RESAMPLED_CELLS)  # fmt: skip
    results: dict[str, Any] = {
        **header,
        "metrics": _metrics(slices, scored, roles, facts),
        "robustness": _robustness(usable, scored, roles, facts),
        "calibration": _calibration(usable, scored, roles, facts),
        "abstention": _abstention(usable, scored, roles),
        "fidelity": _fidelity(usable, scored, roles),
        "extraction": _extraction(usable, scored, roles, facts),
        "errors": {
            "instances": len(failed),
            "by_role": {r: sum(1 for k in scored[r].values() if "error" in k) for r in roles},
        },
        # issue #20 parts 4 and 5 (receipts.derive_seqkl)
        "flips": derive_seqkl.flips_section(slices, scored, roles, facts.bootstrap_resamples, facts.seed),
        "sequence_divergence": derive_seqkl.sequence_section(
            slices, scored, roles, facts.bootstrap_resamples, facts.seed
        ),
    }
    # --- judge (issue #20 part 2): judged equivalence and the judge's certificate, from the verdicts ---
    judged = derive_judged(
        header.get("judge"), slices, scored, seed=facts.seed, resamples=facts.bootstrap_resamples
    )
    if judged is not None:
        results["judged"] = judged
    # --- end judge ---
    # --- similarity (issue #20 part 3): per-slice chrF / ROUGE-L / cosine from the rows' signed scores ---
    found = similarity_metrics.section(
        slices, scored, roles, header.get("settings"), n_resamples=facts.bootstrap_resamples, seed=facts.seed
    )
    if found is not None:
        results["similarity"] = found
    # --- end similarity ---
    originals = [i.key for i in usable if i.variant == ORIGINAL]  # issue #21: quantization vs its base
    quant = derive_quant.quant_fidelity_section(
        originals, scored, header, resamples=facts.bootstrap_resamples, seed=facts.seed
    )
    if quant:
        results["quant_fidelity"] = quant
    results["gate"] = _gate(results, facts)
    results["diagnostics"] = _diagnostics(results)
    results["summary"] = _summary(results)
    return results


TOLERANCE = 1e-6
"""How far a signed number may sit from its re-derived value: one unit in the sixth decimal.

Results round to six places, and a different numpy may round the last place the other way.
"""


def facts_of(results: Mapping[str, Any]) -> RunFacts:
    """The `RunFacts` a signed results document states: its primary metric, bootstrap settings and gate rules.

    Raises:
        KeyError, TypeError, ValueError: the document does not state them (no runner-written results lacks
            them).
    """
    settings = results["settings"]
    resamples, seed = settings["bootstrap_resamples"], settings["seed"]
    for name, value in (("bootstrap_resamples", resamples), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"settings.{name} is {value!r}, not a whole number")
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise ValueError(
            f"settings.bootstrap_resamples is {resamples:,}; re-derivation allows 1 to {MAX_RESAMPLES:,}"
        )
    rules = results["gate"].get("rules", [])
    confidences = {e.get("confidence") for e in results.get("calibration", {}).values()}
    return RunFacts(
        primary_metric=str(results["primary_metric"]),
        seed=seed,
        bootstrap_resamples=resamples,
        gate={str(r["rule"]): float(r["threshold"]) for r in rules},
        confidence=next(iter(confidences)) if len(confidences) == 1 else None,
        per_field=bool(results.get("extraction")),
    )


def differences(signed: Any, derived: Any, path: str = "$") -> list[str]:
    """Where two JSON values differ, each as ``path: signed X, re-derived Y``; numbers within `TOLERANCE`."""
    if isinstance(signed, bool) or isinstance(derived, bool) or signed is None or derived is None:
        return [] if signed is derived else [f"{path}: signed {signed!r}, re-derived {derived!r}"]
    if isinstance(signed, int | float) and isinstance(derived, int | float):
        close = abs(signed - derived) <= TOLERANCE + 1e-9 * abs(derived)
        return [] if close else [f"{path}: signed {signed!r}, re-derived {derived!r}"]
    if isinstance(signed, Mapping) and isinstance(derived, Mapping):
        found = []
        for key in sorted(set(signed) | set(derived), key=str):
            where = f"{path}.{key}"
            if key not in derived:
                found.append(f"{where}: signed {signed[key]!r}, not derived from the examples")
            elif key not in signed:
                found.append(f"{where}: derived {derived[key]!r}, missing from the signed results")
            else:
                found += differences(signed[key], derived[key], where)
        return found
    if isinstance(signed, list) and isinstance(derived, list) and len(signed) == len(derived):
        return [
            d
            for i, (s, v) in enumerate(zip(signed, derived, strict=True))
            for d in differences(s, v, f"{path}[{i}]")
        ]
    return [] if signed == derived else [f"{path}: signed {signed!r}, re-derived {derived!r}"]


def rederive(results: Mapping[str, Any], rows: Sequence[Row]) -> list[str]:
    """Every way the signed ``results`` differ from what its examples ``rows`` give (empty: they agree).

    Raises:
        KeyError, TypeError, ValueError: the results or a row lack what derivation reads.
    """
    header = {k: v for k, v in results.items() if k not in DERIVED and k not in OPTIONAL_DERIVED}
    derived = derive_results(header, rows, facts_of(results), bounded=True)
    for section in OPTIONAL - set(results):  # signed before the section existed: it stays unclaimed
        derived.pop(section)
        derived["diagnostics"] = _diagnostics(derived)
    signed_findings = results.get("diagnostics")
    if differences(signed_findings, _diagnostics(derived, floor_rule=False)) == []:
        derived["diagnostics"] = signed_findings  # signed under the rule that still read all-zero packs
    return [
        d
        for section in (*DERIVED, *OPTIONAL_DERIVED)
        if section in derived or section not in OPTIONAL  # an OPTIONAL section signed before it existed
        for d in differences(results.get(section), derived.get(section), f"$.{section}")
    ]
