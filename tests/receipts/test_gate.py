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


def _run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], student: str, *extra: str, pack: Path = CAPITALS
) -> tuple[int, Path]:
    out = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    argv = ["run", str(pack), "--teacher", TEACHER, "--base", BASE, "--student", student]
    code = main([*argv, "--limit", "60", "--variant", "original", *extra, "--out", str(out)])
    capsys.readouterr()
    return code, out


def _pack_with_gate(tmp_path: Path, rules: dict[str, float]) -> Path:
    """A copy of capitals-mc with other gate rules."""
    import shutil

    pack = tmp_path / "pack"
    if not pack.exists():
        shutil.copytree(CAPITALS, pack)
    spec = yaml.safe_load((pack / "pack.yaml").read_text("utf-8"))
    spec["gate"] = rules
    (pack / "pack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")
    return pack


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

    # The teacher as its own student: on the pack's own rules its 16 critical items (2 of them in the
    # first 60) cannot detect a 5% regression, so even a perfect copy is underpowered, not a pass ...
    code, same = _run(tmp_path, capsys, TEACHER, "--gate")
    assert code == 5
    assert _results(same)["gate"]["verdict"] == "underpowered"
    # ... and passes a pack whose rule its 60 items can judge (MDE 2.8 x sqrt(3)/60 = 0.081 <= 0.1).
    code, same = _run(
        tmp_path, capsys, TEACHER, "--gate", pack=_pack_with_gate(tmp_path, {"max_global_regression": 0.1})
    )
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
    low, high = acc["differences"]["student-teacher"]["ci95"]
    assert by_rule["max_global_regression"]["ci95"] == [-high, -low]
    se = acc["differences"]["student-teacher"]["se"]
    assert by_rule["max_global_regression"]["mde"] == pytest.approx(gate.MDE_Z * se)
    assert by_rule["min_retention"]["observed"] == acc["retention"]["student"]["value"]
    assert by_rule["min_retention"]["ci95"] == acc["retention"]["student"]["ci95"]
    cal = results["calibration"]
    expected_ece = cal["student"]["ece_10_equal_mass"] - cal["teacher"]["ece_10_equal_mass"]
    assert by_rule["max_ece_increase"]["observed"] == pytest.approx(expected_ece)


def _card(tmp_path: Path, overrides: dict[str, Any] | None) -> Path:
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

    # A card override below the CI of the observed regression fails; above its CI and its MDE passes.
    regression = observed["global_regression"]
    assert isinstance(regression, gate.Observation)
    assert regression.ci95 is not None
    assert regression.mde is not None
    low, high = regression.ci95
    assert low > 0.02
    strict = {"max_global_regression": low - 0.01, "max_ece_increase": 1.0, "min_retention": 0.0}
    loose = max(high, regression.mde) + 0.01
    lenient = {"max_global_regression": loose, "max_ece_increase": 1.0, "min_retention": 0.0}
    lenient["max_critical_regression"] = strict["max_critical_regression"] = 1.0
    signed = _signed_gate(sign_receipt(_card(tmp_path, strict), [key], tmp_path / "b", runs=[run_dir]))
    assert signed["verdict"] == "fail"
    assert {r["rule"]: r["status"] for r in signed["rules"]}["max_global_regression"] == "fail"
    assert all(r["pack"] == "capitals-mc@" + results["pack"]["version"] for r in signed["rules"])
    signed = _signed_gate(sign_receipt(_card(tmp_path, lenient), [key], tmp_path / "c", runs=[run_dir]))
    statuses = {r["rule"]: r["status"] for r in signed["rules"]}
    assert statuses["max_global_regression"] == "pass", signed["reason"]
    assert statuses["max_critical_regression"] == "pass"  # 24 critical items in the first 60, a 1.0 bound

    # Adding a cost rule without footprints cannot pass: the verdict says what is missing.
    costly = {**lenient, "max_cost_ratio": 0.5}
    signed = _signed_gate(sign_receipt(_card(tmp_path, costly), [key], tmp_path / "d", runs=[run_dir]))
    assert {r["rule"]: r["status"] for r in signed["rules"]}["max_cost_ratio"] == "not_evaluated"
    assert "max_cost_ratio not evaluated: no footprints of student and teacher" in signed["reason"]


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


def test_cost_ratio_takes_the_worst_footprint_of_each_model_not_the_last_listed() -> None:
    """Two bench sessions of one model on one class: the student's dearest over the teacher's cheapest."""
    s, t = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    dear_first = [_footprint(s, "cpu", 0.4), _footprint(s, "cpu", 0.1), _footprint(t, "cpu", 1.0)]
    assert gate.cost_ratio(dear_first, s, t) == pytest.approx(0.4)
    assert gate.cost_ratio(list(reversed(dear_first)), s, t) == pytest.approx(0.4)
    cheap_teacher_first = [_footprint(s, "cpu", 0.2), _footprint(t, "cpu", 0.5), _footprint(t, "cpu", 2.0)]
    assert gate.cost_ratio(cheap_teacher_first, s, t) == pytest.approx(0.4)
    assert gate.cost_ratio(list(reversed(cheap_teacher_first)), s, t) == pytest.approx(0.4)
    # a teacher footprint with no positive cost is no denominator; another on the class still is
    assert gate.cost_ratio([*dear_first, _footprint(t, "cpu", 0.0)], s, t) == pytest.approx(0.4)


def test_signed_gate_evaluates_cost_from_footprints() -> None:
    s, t = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    teacher, student = {"spec": "fake:t", "digest": t}, {"spec": "fake:s", "digest": s}
    results = documents.results(
        primary_metric="acc",
        models={"teacher": teacher, "student": student},
        metrics={"all": {"acc": {"roles": {"teacher": estimate(0.8), "student": estimate(0.78)}}}},
        gate={"verdict": "not_evaluated", "rules": []},  # the cost rule alone: it is the card's
    )
    value = yaml.safe_load((ROOT / "tests" / "data" / "card_fake_teacher.yaml").read_text("utf-8"))
    card = Card.parse({**value, "gate": {"max_cost_ratio": 0.15}})
    cheap = [_footprint(s, "cpu", 0.1), _footprint(t, "cpu", 1.0)]
    dear = [_footprint(s, "cpu", 0.2), _footprint(t, "cpu", 1.0)]
    assert signed_gate(card, [results], cheap)["verdict"] == "pass"
    verdict = signed_gate(card, [results], dear)
    assert verdict["verdict"] == "fail"
    assert "max_cost_ratio fail: the cost ratio is 0.2 (point estimate, no CI)" in str(verdict["reason"])
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
    assert result.reason == (
        "min_retention not evaluated: the run has no retention (no base model, or its null rule applies)"
    )
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


def test_sign_and_verify_gate_flags_exit_0_on_a_pass_and_5_otherwise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One CLI call per exit code: sign --gate and verify --gate pass a passing gate, exit 5 otherwise.

    The teacher as its own student passes a card's lenient rules (every drop is exactly 0; the critical
    rule is optional); a slightly weaker student does not pass: the pack's own rules fail it on the first
    60 items (its ECE increase, its drop on the 24 critical items), and with the card lifting those two
    rules its global regression and retention stay underpowered or inconclusive.
    """
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "pw")
    monkeypatch.chdir(tmp_path)
    assert main(["keygen", "--out", "keys/release"]) == 0
    trust = ["trust", "init", "--publisher", "receipts demo", "--key", "keys/release.pub.pem"]
    assert main([*trust, "--out", "trust.json"]) == 0
    lenient: dict[str, Any] = {"max_global_regression": 0.2, "max_critical_regression": 0.2}
    lenient.update(max_ece_increase=1.0, optional=["max_critical_regression"])

    def sign(run_dir: Path, out: str, *extra: str, rules: dict[str, Any] | None = None) -> tuple[int, str]:
        card = _card(tmp_path, rules or {"max_ece_increase": 1.0, "max_critical_regression": 1.0})
        signing = ["sign", "--card", str(card), "--key", "keys/release.key.pem"]
        code = main([*signing, "--run", str(run_dir), "--out", out, *extra])
        return code, capsys.readouterr().err

    def verify(bundle: Path) -> tuple[int, str]:
        code = main(["verify", str(bundle), "--trust-root", "trust.json", "--gate"])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    _, same = _run(tmp_path, capsys, TEACHER)
    assert sign(same, "passing", "--gate", rules=lenient) == (0, "")
    (bundle,) = (tmp_path / "passing").iterdir()
    assert verify(bundle)[0] == 0

    _, close = _run(tmp_path, capsys, "fake:s?skill=0.85")
    assert _results(close)["gate"]["verdict"] != "pass", _results(close)["gate"]
    code, text = sign(close, "blocked", "--gate")
    assert code == 5
    assert "not signed: the release gate did not pass" in text
    assert not (tmp_path / "blocked").exists() or not any((tmp_path / "blocked").iterdir())
    assert sign(close, "published")[0] == 0  # without --gate the verdict is signed as it is
    (bundle,) = (tmp_path / "published").iterdir()
    verdict = _signed_gate(bundle)["verdict"]
    assert verdict in ("inconclusive", "underpowered"), _signed_gate(bundle)
    assert verdict in text
    code, text = verify(bundle)
    assert code == 5
    assert "only pass passes" in text


def test_signed_gate_evaluates_cost_from_a_declared_teacher_price() -> None:
    """An API teacher has no footprint: the card's price per 1k calls stands in for the teacher's cost."""
    s, t = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    value = yaml.safe_load((ROOT / "tests" / "data" / "card_fake_teacher.yaml").read_text("utf-8"))
    claim = value["lineage"]["teachers"][0]
    teacher = {"spec": claim["api_identifier"], "endpoint": claim["api_identifier"], "kind": "fake"}
    results = documents.results(
        primary_metric="acc",
        models={"teacher": teacher, "student": {"spec": "fake:s", "digest": s}},
        metrics={"all": {"acc": {"roles": {"teacher": estimate(0.8), "student": estimate(0.78)}}}},
        gate={"verdict": "pass", "rules": []},
    )
    price = {"per_hour": 1.0, "currency": "USD", "source": "test"}
    student_cost = [
        documents.footprint(model={"digest": s}, settings={"price": price}, summary={gate.COST_KEY: 0.1})
    ]
    card = Card.parse({**value, "gate": {"max_cost_ratio": 0.15}})
    assert signed_gate(card, [results], student_cost)["verdict"] == "not_evaluated"  # no price declared
    priced = {**claim, "price_per_1k_calls": {"usd": 1.0, "source": "https://example.com/pricing"}}
    value["lineage"]["teachers"] = [priced]
    card = Card.parse({**value, "gate": {"max_cost_ratio": 0.15}})
    verdict = signed_gate(card, [results], student_cost)
    assert verdict["verdict"] == "pass", verdict
    (rule,) = verdict["rules"]
    assert rule["observed"] == pytest.approx(0.1)
    assert gate.cost_ratio(student_cost, s, None, 0.5) == pytest.approx(0.2)
    assert gate.cost_ratio(student_cost, s, t, None) is None
