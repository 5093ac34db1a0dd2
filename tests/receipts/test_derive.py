"""receipts.derive: results.json follows from its examples log, and an edit to either is named.

Each run here is a real ``receipts run`` (fake models, every bundled pack, several roles and variants),
so the rows are exactly what the runner writes; `rederive` must reproduce its results.json and name the
path of any number edited in the results or the rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.derive import (
    DERIVED,
    MAX_RESAMPLED_CELLS,
    MAX_RESAMPLES,
    MAX_SLICES,
    TOLERANCE,
    differences,
    rederive,
)

ROOT = Path(__file__).parents[2]
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("derive")
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        for pack, extra in (
            ("capitals-mc", ["--sft", "fake:f?skill=0.6", "--variant", "original", "--variant", "typo"]),
            ("contract-clauses", []),
            ("behaviour-probes", []),
        ):
            folder = tmp / pack
            argv = ["run", str(ROOT / "packs" / pack), *ROLES, *extra, "--limit", "40", "--out", str(folder)]
            assert main(argv) == 0, pack
            out[pack] = folder
    return out


def _load(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    results = json.loads((folder / "results.json").read_bytes())
    rows = [json.loads(line) for line in (folder / "examples.jsonl").read_bytes().splitlines()]
    return results, rows


@pytest.mark.parametrize("pack", ["capitals-mc", "contract-clauses", "behaviour-probes"])
def test_a_runs_results_rederive_exactly_from_its_examples(runs: dict[str, Path], pack: str) -> None:
    results, rows = _load(runs[pack])
    assert rederive(results, rows) == []
    # a run without similarity scores has no similarity section
    assert all(section in results for section in DERIVED if section != "similarity")


def test_the_multiple_choice_run_exercises_every_section(runs: dict[str, Path]) -> None:
    results, _ = _load(runs["capitals-mc"])
    overall = results["metrics"]["all"]["acc"]
    assert {"teacher", "base", "student", "sft"} <= set(overall["roles"])
    assert overall["retention"]["student"]["value"] is not None
    assert results["robustness"]["worst_case"]
    assert results["calibration"]["student"]["brier"] is not None  # from the rows' probs
    assert results["fidelity"]["student"]["kl"]["n"] > 0
    assert results["extraction"] == {}
    assert _load(runs["contract-clauses"])[0]["extraction"]["student"]["micro"]


def test_an_edited_retention_is_named_with_both_values(runs: dict[str, Path]) -> None:
    results, rows = _load(runs["capitals-mc"])
    entry = results["metrics"]["all"]["acc"]["retention"]["student"]
    real = entry["value"]
    entry["value"] = round(real + 0.4, 6)
    found = rederive(results, rows)
    assert found == [
        f"$.metrics.all.acc.retention.student.value: signed {entry['value']!r}, re-derived {real!r}"
    ]


def test_edited_summary_gate_and_diagnostics_are_named(runs: dict[str, Path]) -> None:
    results, rows = _load(runs["capitals-mc"])
    results["summary"]["scores"]["student"] = 0.99
    results["gate"]["verdict"] = "pass" if results["gate"]["verdict"] != "pass" else "fail"
    results["diagnostics"] = []
    found = "\n".join(rederive(results, rows))
    assert "$.summary.scores.student: signed 0.99" in found
    assert "$.gate.verdict: signed" in found
    assert "$.diagnostics" in found


def test_an_edited_example_row_changes_what_derives(runs: dict[str, Path]) -> None:
    results, rows = _load(runs["capitals-mc"])
    original = next(r for r in rows if r["variant"] == "original" and r["roles"]["student"]["score"] == 0.0)
    original["roles"]["student"]["score"] = 1.0
    original["roles"]["student"]["scores"]["acc"] = 1.0
    found = rederive(results, rows)
    assert any(d.startswith("$.metrics.all.acc.roles.student.value: signed ") for d in found), found


def test_a_dropped_or_added_section_key_is_named(runs: dict[str, Path]) -> None:
    results, rows = _load(runs["capitals-mc"])
    results["metrics"]["invented=slice"] = results["metrics"]["all"]
    del results["metrics"]["variant=typo"]
    found = rederive(results, rows)
    assert any(d.startswith("$.metrics.invented=slice: signed ") for d in found)
    assert any(d.startswith("$.metrics.variant=typo: derived ") for d in found)


def test_numbers_compare_within_the_tolerance_only() -> None:
    assert differences({"a": 0.5}, {"a": 0.5 + TOLERANCE / 2}) == []
    assert differences({"a": 0.5}, {"a": 0.5 + 3 * TOLERANCE}) != []
    assert differences({"a": None}, {"a": 0.0}) != []
    assert differences({"a": True}, {"a": 1}) != []
    assert differences({"a": [1, 2]}, {"a": [1]}) != []
    assert differences({"a": "x"}, {"a": "y"}) == ["$.a: signed 'x', re-derived 'y'"]


def test_a_hostile_run_cannot_make_rederivation_run_for_hours(runs: dict[str, Path]) -> None:
    """Resamples, slices and metrics are bounded before any bootstrap (a CI costs resamples x rows)."""
    results, rows = _load(runs["capitals-mc"])
    results["settings"]["bootstrap_resamples"] = 10**9
    with pytest.raises(ValueError, match="bootstrap_resamples is 1,000,000,000; re-derivation allows 1 to"):
        rederive(results, rows)
    results["settings"]["bootstrap_resamples"] = 1.5
    with pytest.raises(ValueError, match="not a whole number"):
        rederive(results, rows)
    results, rows = _load(runs["capitals-mc"])
    original = next(r for r in rows if r["variant"] == "original")
    rows += [{**original, "item": f"x{i}", "slices": {"domain": f"label-{i}"}} for i in range(MAX_SLICES)]
    with pytest.raises(ValueError, match=f"slices; re-derivation computes at most {MAX_SLICES:,}"):
        rederive(results, rows)
    results, rows = _load(runs["capitals-mc"])
    results["settings"]["bootstrap_resamples"] = MAX_RESAMPLES  # allowed alone, not times many rows
    rows += [{**original, "item": f"y{i}"} for i in range(MAX_RESAMPLED_CELLS // MAX_RESAMPLES)]
    with pytest.raises(ValueError, match=r"resampled cells .* re-derivation computes at most 100,000,000"):
        rederive(results, rows)
    assert MAX_RESAMPLES >= 1000  # a runner's default run is far inside the bounds


def test_a_repeated_item_and_variant_is_refused_naming_both_rows() -> None:
    """One row per (item, variant): a repeat would count twice in a mean (verify.js refuses it too)."""
    from receipts.derive import rederive
    from receipts.errors import InputError

    run = Path(__file__).parents[1] / "data" / "run_minimal"
    results = json.loads((run / "results.json").read_bytes())
    rows = [json.loads(line) for line in (run / "examples.jsonl").read_bytes().splitlines() if line.strip()]
    assert rederive(results, rows) == []
    with pytest.raises(InputError, match=r"row 3 repeats item 'q1', variant 'original' \(first at row 1\)"):
        rederive(results, [*rows, rows[0]])


def test_a_floor_run_yields_no_diagnostic_and_old_signed_findings_still_verify(tmp_path: Path) -> None:
    """Every role at zero: no finding (the rule since 2026-12-06).

    A receipt signed under the old rule, whose findings were drawn from the zeros, still re-derives; any
    other finding list does not.
    """
    zero = ["--teacher", "fake:t?skill=0", "--base", "fake:b?skill=0", "--student", "fake:s?skill=0"]
    folder = tmp_path / "floor"
    argv = ["run", str(ROOT / "packs" / "capitals-mc"), *zero, "--sft", "fake:f?skill=0", "--limit", "12"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
        assert main([*argv, "--out", str(folder)]) == 0
    results, rows = _load(folder)
    assert set(results["summary"]["scores"].values()) == {0}
    assert results["diagnostics"] == []
    assert rederive(results, rows) == []
    old_rule = [
        {
            "id": "no_distillation_gain",
            "message": "The student does no better than plain fine-tuning on the same data (SFT baseline): "
            "distillation did not earn its keep here.",
            "evidence": {"student_accuracy": 0.0, "sft_accuracy": 0.0, "gain": 0.0},
        }
    ]
    sft_ci = results["metrics"]["all"]["acc"]["differences"]["student-sft"]["ci95"]
    old_rule[0]["evidence"] |= {"gain_ci_low": sft_ci[0], "gain_ci_high": sft_ci[1]}
    assert rederive({**results, "diagnostics": old_rule}, rows) == []
    forged = [{**old_rule[0], "id": "recalibrate"}]
    assert any(d.startswith("$.diagnostics") for d in rederive({**results, "diagnostics": forged}, rows))
