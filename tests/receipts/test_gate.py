"""The release gate: `receipts run --gate` exits 5; `receipts sign` recomputes the signed verdict.

The signed verdict comes from the run's metrics, the pack's rules, the card's overrides and the footprints.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from receipts import gate
from receipts.cli import main
from receipts.formats import Card, Footprint, Results
from receipts.keys import generate
from receipts.sign import sign_receipt, signed_gate
from tests import documents
from tests.documents import estimate

ROOT = Path(__file__).parents[2]
CAPITALS = ROOT / "packs" / "capitals-mc"
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"  # the runs' teacher
TEACHER, BASE = "fake:t?skill=0.9", "fake:b?skill=0.3"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], student: str, *extra: str) -> tuple[int, Path]:
    out = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    argv = ["run", str(CAPITALS), "--teacher", TEACHER, "--base", BASE, "--student", student]
    code = main([*argv, "--limit", "60", "--variant", "original", *extra, "--out", str(out)])
    capsys.readouterr()
    return code, out


def _results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text("utf-8"))


def test_gate_flag_exits_5_only_when_the_gate_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, weak = _run(tmp_path, capsys, "fake:s?skill=0.35", "--gate")
    assert code == 5
    verdict = _results(weak)["gate"]
    assert verdict["verdict"] == "fail"
    failed = {r["rule"] for r in verdict["rules"] if r["status"] == "fail"}
    assert "max_global_regression" in failed
    assert "min_retention" in failed
    assert (weak / "results.json").is_file()  # a failed gate still writes everything

    code, same = _run(tmp_path, capsys, TEACHER, "--gate")  # the teacher as its own student
    assert code == 0
    assert _results(same)["gate"]["verdict"] == "pass"

    code, _ = _run(tmp_path, capsys, "fake:s?skill=0.35")  # without --gate a failing gate is not an error
    assert code == 0


def test_run_gate_reads_the_numbers_it_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, run_dir = _run(tmp_path, capsys, "fake:s?skill=0.6")
    results = _results(run_dir)
    acc = results["metrics"]["all"]["acc"]
    by_rule = {r["rule"]: r for r in results["gate"]["rules"]}
    teacher, student = acc["roles"]["teacher"]["value"], acc["roles"]["student"]["value"]
    assert by_rule["max_global_regression"]["observed"] == pytest.approx(teacher - student)
    assert by_rule["min_retention"]["observed"] == acc["retention"]["student"]["value"]
    cal = results["calibration"]
    expected_ece = cal["student"]["ece_10_equal_mass"] - cal["teacher"]["ece_10_equal_mass"]
    assert by_rule["max_ece_increase"]["observed"] == pytest.approx(expected_ece)


def _card(tmp_path: Path, overrides: dict[str, float] | None) -> Path:
    card = yaml.safe_load(CARD.read_text("utf-8"))
    if overrides is None:
        card.pop("gate", None)
    else:
        card["gate"] = overrides
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card, sort_keys=False), "utf-8")
    return path


def _signed_gate(bundle: Path) -> dict[str, Any]:
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    return json.loads(base64.b64decode(envelope["payload"]))["predicate"]["gate"]


def test_sign_recomputes_the_gate_with_the_card_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = _run(tmp_path, capsys, "fake:s?skill=0.6")
    results = _results(run_dir)
    observed = gate.observed_inputs(Results.parse(results))
    key = generate()

    # The pack's own rules only: the signed verdict is the run's.
    bundle = sign_receipt(_card(tmp_path, None), [key], tmp_path / "a", runs=[run_dir])
    assert _signed_gate(bundle)["verdict"] == results["gate"]["verdict"]

    # A card override just below / above the observed regression flips the verdict.
    regression = observed["global_regression"]
    assert regression is not None
    assert regression > 0.05
    strict = {"max_global_regression": regression - 0.01, "max_ece_increase": 1.0, "min_retention": 0.0}
    lenient = {"max_global_regression": regression + 0.01, "max_ece_increase": 1.0, "min_retention": 0.0}
    lenient["max_critical_regression"] = strict["max_critical_regression"] = 1.0
    signed = _signed_gate(sign_receipt(_card(tmp_path, strict), [key], tmp_path / "b", runs=[run_dir]))
    assert signed["verdict"] == "fail"
    assert {r["rule"]: r["status"] for r in signed["rules"]}["max_global_regression"] == "fail"
    assert all(r["pack"] == "capitals-mc@" + results["pack"]["version"] for r in signed["rules"])
    signed = _signed_gate(sign_receipt(_card(tmp_path, lenient), [key], tmp_path / "c", runs=[run_dir]))
    assert signed["verdict"] == "pass"

    # Adding a cost rule without footprints cannot pass: the verdict says what is missing.
    costly = {**lenient, "max_cost_ratio": 0.5}
    signed = _signed_gate(sign_receipt(_card(tmp_path, costly), [key], tmp_path / "d", runs=[run_dir]))
    assert signed["verdict"] == "not_evaluated"
    assert "cost_ratio" in signed["reason"]


def test_sign_ignores_a_verdict_edited_into_the_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = _run(tmp_path, capsys, "fake:s?skill=0.35")
    path = run_dir / "results.json"
    results = json.loads(path.read_text("utf-8"))
    assert results["gate"]["verdict"] == "fail"
    results["gate"]["verdict"] = "pass"
    for rule in results["gate"]["rules"]:
        rule["status"] = "pass"
    path.write_text(json.dumps(results), "utf-8")
    bundle = sign_receipt(_card(tmp_path, None), [generate()], tmp_path / "out", runs=[run_dir])
    assert _signed_gate(bundle)["verdict"] == "fail"


def _footprint(digest: str, hw: str, cost: float | None) -> Footprint:
    summary = {gate.COST_KEY: cost}
    return documents.footprint(model={"digest": digest}, hardware={"hw_class": hw}, summary=summary)


def test_cost_ratio_pairs_student_and_teacher_on_the_same_hardware() -> None:
    s, t = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    footprints = [_footprint(s, "cpu-a", 0.2), _footprint(t, "cpu-a", 1.0), _footprint(s, "gpu-b", 0.5)]
    assert gate.cost_ratio(footprints, s, t) == pytest.approx(0.2)  # gpu-b has no teacher footprint
    footprints.append(_footprint(t, "gpu-b", 2.0))
    assert gate.cost_ratio(footprints, s, t) == pytest.approx(0.25)  # worst shared class counts
    assert gate.cost_ratio(footprints, s, None) is None  # an API teacher has no local cost
    assert gate.cost_ratio([_footprint(s, "x", 1.0), _footprint(t, "x", 0.0)], s, t) is None
    assert gate.cost_ratio([_footprint(s, "x", None), _footprint(t, "x", 1.0)], s, t) is None


def test_signed_gate_evaluates_cost_from_footprints() -> None:
    s, t = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    teacher, student = {"spec": "fake:t", "digest": t}, {"spec": "fake:s", "digest": s}
    results = documents.results(
        primary_metric="acc",
        models={"teacher": teacher, "student": student},
        metrics={"all": {"acc": {"roles": {"teacher": estimate(0.8), "student": estimate(0.78)}}}},
        gate={"verdict": "pass", "rules": [{"rule": "max_global_regression", "threshold": 0.03}]},
    )
    value = yaml.safe_load((ROOT / "tests" / "data" / "card_fake_teacher.yaml").read_text("utf-8"))
    card = Card.parse({**value, "gate": {"max_cost_ratio": 0.15}})
    cheap = [_footprint(s, "cpu", 0.1), _footprint(t, "cpu", 1.0)]
    dear = [_footprint(s, "cpu", 0.2), _footprint(t, "cpu", 1.0)]
    assert signed_gate(card, [results], cheap)["verdict"] == "pass"
    verdict = signed_gate(card, [results], dear)
    assert verdict["verdict"] == "fail"
    assert "cost_ratio = 0.2 vs 0.15" in str(verdict["reason"])
    assert signed_gate(card, [], cheap)["verdict"] == "not_evaluated"


def test_combine_takes_the_worst_run() -> None:
    passing = gate.evaluate_gate({"min_retention": 0.5}, {"retention": 0.9})
    failing = gate.evaluate_gate({"min_retention": 0.5}, {"retention": 0.1})
    unknown = gate.evaluate_gate({"min_retention": 0.5}, {"retention": None})
    assert gate.combine([("a", passing), ("b", passing)])["verdict"] == "pass"
    assert gate.combine([("a", passing), ("b", unknown)])["verdict"] == "not_evaluated"
    assert gate.combine([("a", unknown), ("b", failing)])["verdict"] == "fail"


# ----------------------------------------------------------------------- the rules on their own, unit by unit

RULES = {
    "max_global_regression": 0.03,
    "max_critical_regression": 0.01,
    "min_retention": 0.8,
    "max_cost_ratio": 0.15,
    "max_ece_increase": 0.02,
}


def test_gate_passes_with_all_inputs_within_bounds():
    observed = {
        "global_regression": 0.80 - 0.77,  # 0.030000000000000027: within the documented tolerance
        "critical_regression": 0.0,
        "retention": 0.8,
        "cost_ratio": 0.1,
        "ece_increase": -0.01,
    }
    result = gate.evaluate_gate(RULES, observed)
    assert result.verdict == "pass"
    assert [r.status for r in result.rules] == ["pass"] * 5
    assert result.reason is None


def test_gate_fails_when_any_rule_fails_even_with_missing_inputs():
    observed = {"global_regression": 0.05, "retention": None, "cost_ratio": 0.1}
    result = gate.evaluate_gate(RULES, observed)
    assert result.verdict == "fail"
    by_rule = {r.rule: r for r in result.rules}
    assert by_rule["max_global_regression"] == gate.RuleResult(
        "max_global_regression", "fail", 0.03, 0.05, "global_regression"
    )
    assert by_rule["min_retention"].status == "not_evaluated"
    assert by_rule["max_ece_increase"].status == "not_evaluated"
    assert "max_global_regression" in (result.reason or "")


def test_gate_not_evaluated_when_inputs_are_missing():
    result = gate.evaluate_gate(
        {"min_retention": 0.8, "max_cost_ratio": 0.15}, {"cost_ratio": 0.1, "retention": None}
    )
    assert result.verdict == "not_evaluated"
    assert result.reason == "missing inputs: retention"
    assert gate.evaluate_gate({}, {}).verdict == "not_evaluated"
    assert gate.evaluate_gate({"min_retention": 0.8}, {"retention": 0.79}).verdict == "fail"


def test_gate_rejects_unknown_rules_and_bad_thresholds():
    with pytest.raises(ValueError, match="unknown gate rule 'max_regression'"):
        gate.evaluate_gate({"max_regression": 0.1}, {})
    with pytest.raises(ValueError, match="finite"):
        gate.evaluate_gate({"min_retention": float("nan")}, {})


def test_gate_dict_validates_against_the_statement_schema():
    schema = json.loads((ROOT / "schema" / "statement.schema.json").read_text())["$defs"]["gate"]
    for observed in ({"global_regression": 0.5}, {}, dict.fromkeys(["global_regression", "cost_ratio"], 0.0)):
        jsonschema.validate(gate.evaluate_gate(RULES, observed).as_dict(), schema)
