"""Turn a run's per-role outputs into ``examples.jsonl`` (roles side by side) and ``results.json``.

Each role's output is scored here (the task's `Scorer`, with KL to the teacher); every number of
results.json is then derived from those rows by `receipts.derive`, the same code ``receipts verify`` runs
to re-derive them from the signed log.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from receipts import schemas
from receipts.derive import RunFacts, derive_results, role_order
from receipts.derive_quant import FIELD
from receipts.metrics import fidelity
from runner.backends.paths import cache_root
from runner.eval import seqkl, similarity
from runner.eval.config import RunConfig
from runner.eval.judge import JudgeRun
from runner.eval.packs import Pack
from runner.eval.roles import instance_key
from runner.eval.run import RunOutcome, library_versions
from runner.eval.scoring import example_cell, primary_metric, scorer_for

__all__ = ["RESULTS_FORMAT", "write_reports"]

RESULTS_FORMAT = "receipts.results/v1"


def _examples(pack: Pack, outcome: RunOutcome, judged: JudgeRun | None = None) -> list[dict[str, Any]]:
    """One row per prompt instance: its item, slices and gold, and each role's output and scored fields."""
    scored: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    rows = []
    roles = sorted(outcome.rows, key=role_order)
    for inst in outcome.instances:
        key = instance_key(inst)
        cells: dict[str, Any] = {}
        for role in roles:
            raw = outcome.rows[role][key]
            cell = example_cell(pack, inst, raw["output"])
            if (
                "logliks" in raw["output"]
                and role != "teacher"
                and "logliks" in outcome.rows["teacher"][key]["output"]
            ):
                teacher_ll = outcome.rows["teacher"][key]["output"]["logliks"]
                cell["kl_choice"] = round(fidelity.choice_kl(teacher_ll, raw["output"]["logliks"]), 8)
            for extra in ("kl_token", "kl_positions", *seqkl.FIELDS):
                if extra in raw:
                    cell[extra] = raw[extra]
            if judged is not None and key in judged.cells.get(role, {}):  # issue #20 part 2
                cell["judge"] = judged.cells[role][key]
            scored[role][key] = cell
            cells[role] = cell
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
    return rows


def _quant_fidelity(rows: list[dict[str, Any]], outcome: RunOutcome, config: RunConfig) -> dict[str, Any]:
    """Each llama.cpp quantization role's ``quant_kld`` evidence into its cells; return the bases compared."""
    from runner.llamacpp.fidelity import quantized_roles

    if not quantized_roles(outcome.identities):
        return {}
    from runner.llamacpp.fidelity import measure

    keys = [instance_key(inst) for inst in outcome.instances]
    records, bases = measure(
        outcome.identities, outcome.instances, keys, threads=config.threads, use_cache=config.use_cache
    )
    for row in rows:
        key = f"{row['item']}\x1f{row['variant']}"
        for role, found in records.items():
            if key in found:
                row["roles"][role][FIELD] = found[key]
    return bases


def write_reports(
    pack: Pack, config: RunConfig, outcome: RunOutcome, judged: JudgeRun | None = None
) -> dict[str, Any]:
    """Write examples.jsonl and results.json into the run folder (atomically); return the results.

    ``judged``: the judge's verdicts (`runner.eval.judge`), logged per cell and bound in the header.
    """
    run_dir = outcome.run_dir
    rows = _examples(pack, outcome, judged)
    # --- similarity (issue #20 part 3): scores added to the rows' role cells before they are written ---
    measures = similarity.measures_of(
        [*similarity.pack_measures(pack.spec), *config.similarity], "--similarity"
    )
    cache = cache_root() if config.use_cache else None
    similarity_settings = similarity.scored_settings(rows, measures, cache=cache) if measures else None
    quant_bases = _quant_fidelity(rows, outcome, config)  # issue #21: llama.cpp quantizations vs their base
    tmp = run_dir / "examples.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, run_dir / "examples.jsonl")
    digest = hashlib.sha256((run_dir / "examples.jsonl").read_bytes()).hexdigest()

    roles = sorted(outcome.rows, key=role_order)
    header: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "pack": {"id": pack.id, "version": pack.version, "digest": f"sha256:{pack.digest}"},
        "models": {role: outcome.identities[role] for role in roles},
        "examples": {"path": "examples.jsonl", "sha256": digest},
        "task": pack.task,
        "primary_metric": primary_metric(pack),
        "settings": {
            **config.settings(),
            "threads": config.threads,
            "batch_size": config.batch_size,
            # what else can move a model's last bits: `verify --rerun` holds a rerun to these
            "library_versions": library_versions(),
        },
    }
    if judged is not None:
        header["judge"] = judged.header()
    if similarity_settings is not None:
        header["settings"]["similarity"] = similarity_settings
    if quant_bases:
        header["settings"]["quant_fidelity"] = quant_bases
    scorer = scorer_for(pack.task)
    facts = RunFacts(
        primary_metric=primary_metric(pack),
        seed=config.seed,
        bootstrap_resamples=config.bootstrap_resamples,
        gate=dict(pack.gate),
        confidence=scorer.confidence,
        per_field=scorer.per_field,
    )
    results = derive_results(header, rows, facts)
    out = run_dir / "results.json"
    schemas.validate(results, "results", file=out)  # what we write must be what the schema promises
    tmp_results = out.with_name("results.json.tmp")
    tmp_results.write_text(json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n", "utf-8")
    os.replace(tmp_results, out)
    return results
