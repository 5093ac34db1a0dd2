"""Turn a run's per-role rows into ``examples.jsonl`` (roles side by side) and ``results.json``.

Headline numbers are on the ``original`` variant; every other variant is its own slice, and
``robustness.worst_case`` counts an item right only if it is right under every variant. Items where
any role failed are left out of the paired statistics and counted under ``errors``. Every metric
carries a 95% paired-bootstrap CI (the same resampled items for all roles) and a ``small_n`` flag.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from receipts import gate, schemas
from runner.eval.config import ROLE_ORDER, RunConfig
from runner.eval.metrics import calibration, diagnostics, fidelity, retention, uncertainty
from runner.eval.packs import ORIGINAL, Pack, PromptInstance
from runner.eval.roles import instance_key
from runner.eval.run import RunOutcome
from runner.eval.scoring import primary_metric, score_output, scorer_for

__all__ = ["RESULTS_FORMAT", "write_reports"]

RESULTS_FORMAT = "receipts.results/v1"
Scored = Mapping[str, Mapping[str, Mapping[str, Any]]]  # role -> instance key -> scored fields


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _est(e: uncertainty.Estimate) -> dict[str, Any]:
    return {"value": _r(e.value), "ci95": [_r(e.low), _r(e.high)], "n": e.n, "small_n": e.small_n}


def _role_order(role: str) -> tuple[int, str]:
    return ROLE_ORDER.index(role.split("@")[0]), role


def _examples(
    pack: Pack, outcome: RunOutcome
) -> tuple[list[dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    scored: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    rows = []
    roles = sorted(outcome.rows, key=_role_order)
    for inst in outcome.instances:
        key = instance_key(inst)
        cells: dict[str, Any] = {}
        for role in roles:
            raw = outcome.rows[role][key]
            result = score_output(pack, inst, raw["output"])
            if (
                "logliks" in raw["output"]
                and role != "teacher"
                and "logliks" in outcome.rows["teacher"][key]["output"]
            ):
                teacher_ll = outcome.rows["teacher"][key]["output"]["logliks"]
                result["kl_choice"] = round(fidelity.choice_kl(teacher_ll, raw["output"]["logliks"]), 8)
            for extra in ("kl_token", "kl_positions"):
                if extra in raw:
                    result[extra] = raw[extra]
            scored[role][key] = result
            output = {k: v for k, v in raw["output"].items() if k != "greedy"}
            cells[role] = {**output, **{k: v for k, v in result.items() if k != "probs"}}
        teacher_answer = scored["teacher"][key].get("answer")
        rows.append(
            {
                "item": inst.item_id,
                "variant": inst.variant,
                "prompt_sha256": inst.prompt_sha256,
                "gold": dict(inst.gold) if isinstance(inst.gold, Mapping) else inst.gold,
                "slices": dict(inst.slices),
                "critical": inst.critical,
                "expected": inst.expected,
                "roles": cells,
                "agreement": {
                    r: fidelity.agrees(scored[r][key].get("answer"), teacher_answer)
                    for r in roles
                    if r != "teacher"
                },
            }
        )
    return rows, scored


def _slices(instances: Sequence[PromptInstance], pack: Pack) -> dict[str, list[str]]:
    """Slice name -> instance keys: ``all``, ``<field>=<label>``, ``critical``, ``variant=<name>``."""
    out: dict[str, list[str]] = defaultdict(list)
    for inst in instances:
        if inst.variant == ORIGINAL:
            out["all"].append(instance_key(inst))
            for name in pack.slices:
                if name in inst.slices:
                    out[f"{name}={inst.slices[name]}"].append(instance_key(inst))
            if inst.critical:
                out["critical"].append(instance_key(inst))
        else:
            out[f"variant={inst.variant}"].append(instance_key(inst))
    return dict(out)


def _metric_names(pack: Pack, scored: Scored) -> list[str]:
    names: dict[str, None] = {}
    for per_role in scored.values():
        for result in per_role.values():
            names.update(dict.fromkeys(result.get("scores", {})))
    primary = primary_metric(pack)
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


def _metric(
    arrays: Mapping[str, np.ndarray[Any, Any]], roles: Sequence[str], config: RunConfig
) -> dict[str, Any]:
    est = uncertainty.paired_bootstrap(
        arrays, _statistics(roles), n_resamples=config.bootstrap_resamples, seed=config.seed
    )
    entry: dict[str, Any] = {
        "roles": {r: _est(est[r]) for r in roles},
        # role names may hold "-" themselves (student@int8-dynamic): a difference is any non-role key
        "differences": {k: _est(v) for k, v in est.items() if k not in roles},
    }
    if "base" in roles:
        gap = est["teacher-base"]
        entry["retention"] = {}
        for r in roles:
            if r in ("teacher", "base"):
                continue
            ret = retention.retention(
                est[r].value, est["teacher"].value, est["base"].value, gap_ci=(gap.low, gap.high)
            )
            ratio = retention.teacher_ratio(est[r].value, est["teacher"].value)
            entry["retention"][r] = {
                "value": _r(ret.value),
                "reason": ret.reason,
                "student_over_teacher": _r(ratio.value),
            }
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
    slices: Mapping[str, Sequence[str]],
    scored: Scored,
    roles: Sequence[str],
    names: Sequence[str],
    config: RunConfig,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for slice_name, keys in slices.items():
        section: dict[str, Any] = {}
        for name in names:
            usable = [k for k in keys if all(name in scored[r][k].get("scores", {}) for r in roles)]
            if usable:
                arrays = {
                    r: np.array([scored[r][k]["scores"][name] for k in usable], dtype=np.float64)
                    for r in roles
                }
                section[name] = _metric(arrays, roles, config)
        if section:
            out[slice_name] = section
    return out


def _robustness(
    instances: Sequence[PromptInstance], scored: Scored, roles: Sequence[str], config: RunConfig
) -> dict[str, Any]:
    by_item: dict[str, list[str]] = defaultdict(list)
    for inst in instances:
        by_item[inst.item_id].append(instance_key(inst))
    if all(len(keys) == 1 for keys in by_item.values()):
        return {}
    arrays = {
        r: np.array([min(float(scored[r][k]["score"]) for k in keys) for keys in by_item.values()])
        for r in roles
    }
    return {"worst_case": _metric(arrays, roles, config), "variants": sorted({i.variant for i in instances})}


def _calibration(
    pack: Pack, instances: Sequence[PromptInstance], scored: Scored, roles: Sequence[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = [instance_key(i) for i in instances if i.variant == ORIGINAL]
    for r in roles:
        usable = [k for k in keys if scored[r][k].get("confidence") is not None]
        if len(usable) < 2:
            continue
        conf = [float(scored[r][k]["confidence"]) for k in usable]
        correct = [float(float(scored[r][k]["score"]) >= 0.5) for k in usable]
        entry: dict[str, Any] = {
            "n": len(usable),
            "confidence": scorer_for(pack.task).confidence,
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
        by_key = {instance_key(i): i for i in instances}
        with_probs = [k for k in usable if "probs" in scored[r][k] and isinstance(by_key[k].gold, int)]
        if with_probs and len(with_probs) == len(usable):
            probs = [list(scored[r][k]["probs"]) for k in with_probs]
            gold = [int(by_key[k].gold) for k in with_probs]  # type: ignore[arg-type]
            entry["brier"] = _r(calibration.brier_score(probs, gold))
        out[r] = entry
    return out


def _abstention(instances: Sequence[PromptInstance], scored: Scored, roles: Sequence[str]) -> dict[str, Any]:
    keys = [instance_key(i) for i in instances if i.variant == ORIGINAL]
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
    pack: Pack, instances: Sequence[PromptInstance], scored: Scored, roles: Sequence[str]
) -> dict[str, Any]:
    """Extraction packs: per role, precision/recall/F1 per field and micro-averaged.

    Micro pools the per-item tp/fp/fn counts of all fields over the original prompts; tasks whose
    scorer keeps no per-field counts get an empty mapping.
    """
    if not scorer_for(pack.task).per_field:
        return {}
    keys = [instance_key(i) for i in instances if i.variant == ORIGINAL]
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


def _fidelity(
    pack: Pack, instances: Sequence[PromptInstance], scored: Scored, roles: Sequence[str]
) -> dict[str, Any]:
    keys = [instance_key(i) for i in instances if i.variant == ORIGINAL]
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
        token = [float(scored[r][k]["kl_token"]) for k in keys if "kl_token" in scored[r][k]]
        choice = [float(scored[r][k]["kl_choice"]) for k in keys if "kl_choice" in scored[r][k]]
        if token and len(token) == len(keys):
            entry["kl"] = {
                "level": "token",
                "value": _r(float(np.mean(token))),
                "n": len(token),
                "definition": "KL(teacher||role) per token at teacher-forced positions, averaged",
            }
        elif choice:
            entry["kl"] = {
                "level": "choice",
                "value": _r(float(np.mean(choice))),
                "n": len(choice),
                "definition": "KL(teacher||role) over each item's choice distribution "
                "(tokenizers differ, or no token distributions)",
            }
        out[r] = entry
    return out


def _gate(pack: Pack, results: Mapping[str, Any]) -> dict[str, Any]:
    # cost_ratio needs footprints: `receipts sign` evaluates it with the card's overrides.
    from receipts.formats import Results

    typed = Results.parse(results, file="<results being written>")
    return gate.evaluate_gate(dict(pack.gate), gate.observed_inputs(typed)).as_dict()


def _diagnostics(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    primary = results["primary_metric"]
    overall = results["metrics"].get("all", {}).get(primary, {})
    roles = overall.get("roles", {})
    if "student" not in roles:
        return []
    critical = {
        name: section[primary]["roles"]["student"]["value"]
        for name, section in results["metrics"].items()
        if name == "critical" and primary in section
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
    )
    return [
        {"id": f.id, "message": f.message, "evidence": dict(f.evidence)} for f in diagnostics.diagnose(inputs)
    ]


def write_reports(pack: Pack, config: RunConfig, outcome: RunOutcome) -> dict[str, Any]:
    """Write examples.jsonl and results.json into the run folder (atomically); return the results."""
    run_dir = outcome.run_dir
    rows, scored = _examples(pack, outcome)
    tmp = run_dir / "examples.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, run_dir / "examples.jsonl")
    digest = hashlib.sha256((run_dir / "examples.jsonl").read_bytes()).hexdigest()

    roles = sorted(outcome.rows, key=_role_order)
    failed = {
        instance_key(i) for i in outcome.instances for r in roles if "error" in scored[r][instance_key(i)]
    }
    instances = [i for i in outcome.instances if instance_key(i) not in failed]
    slices = {name: keys for name, keys in _slices(instances, pack).items() if keys}
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "pack": {"id": pack.id, "version": pack.version, "digest": f"sha256:{pack.digest}"},
        "models": {role: outcome.identities[role] for role in roles},
        "examples": {"path": "examples.jsonl", "sha256": digest},
        "task": pack.task,
        "primary_metric": primary_metric(pack),
        "settings": {**config.settings(), "threads": config.threads, "batch_size": config.batch_size},
        "metrics": _metrics(slices, scored, roles, _metric_names(pack, scored), config),
        "robustness": _robustness(instances, scored, roles, config),
        "calibration": _calibration(pack, instances, scored, roles),
        "abstention": _abstention(instances, scored, roles),
        "fidelity": _fidelity(pack, instances, scored, roles),
        "extraction": _extraction(pack, instances, scored, roles),
        "errors": {
            "instances": len(failed),
            "by_role": {r: sum(1 for k in scored[r].values() if "error" in k) for r in roles},
        },
    }
    results["gate"] = _gate(pack, results)
    results["diagnostics"] = _diagnostics(results)
    teacher_all = results["metrics"].get("all", {}).get(results["primary_metric"], {})
    results["summary"] = {
        "primary_metric": results["primary_metric"],
        "scores": {r: v["value"] for r, v in teacher_all.get("roles", {}).items()},
        "retention": teacher_all.get("retention", {}).get("student", {}).get("value"),
        "agreement_rate": results["fidelity"].get("student", {}).get("agreement_rate"),
        "gate": results["gate"]["verdict"],
    }
    out = run_dir / "results.json"
    schemas.validate(results, "results", file=out)  # what we write must be what the schema promises
    tmp_results = out.with_name("results.json.tmp")
    tmp_results.write_text(json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n", "utf-8")
    os.replace(tmp_results, out)
    return results
