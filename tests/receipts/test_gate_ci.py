"""The gate judged on CIs (DESIGN §11): pass, fail, inconclusive, underpowered, optional, and the MDE.

Every case is constructed paired data run through `receipts.derive` (the runner's own bootstrap), so the
rules read exactly what a signed results document holds; the MDE is checked against a simulation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from receipts import gate
from receipts.derive import RunFacts, derive_results, rederive
from receipts.formats import Results
from receipts.formats._shared import Gate
from receipts.metrics import uncertainty
from tests.documents import DATA

FACTS = RunFacts("acc", seed=0, bootstrap_resamples=1000, gate={}, confidence=None, per_field=False)


def _header() -> dict[str, Any]:
    value = json.loads((DATA / "run_minimal" / "results.json").read_bytes())
    keep = ("format", "pack", "models", "examples", "task")
    settings = {"seed": 0, "bootstrap_resamples": 1000}
    return {**{k: value[k] for k in keep if k in value}, "primary_metric": "acc", "settings": settings}


def _rows(
    teacher: Sequence[int],
    student: Sequence[int],
    base: Sequence[int] | None = None,
    cohorts: Sequence[str] | None = None,
    critical: Sequence[bool | str] | None = None,
) -> list[dict[str, Any]]:
    scores = {"teacher": teacher, "student": student, **({"base": base} if base is not None else {})}
    return [
        {
            "item": f"i{i:04d}",
            "variant": "original",
            "slices": {"cohort": cohorts[i]} if cohorts is not None else {},
            "critical": critical[i] if critical is not None else False,
            "gold": 0,
            "roles": {role: {"score": s[i], "scores": {"acc": s[i]}} for role, s in scores.items()},
        }
        for i in range(len(teacher))
    ]


def _derive(rows: list[dict[str, Any]], rules: dict[str, float]) -> dict[str, Any]:
    facts = RunFacts("acc", 0, 1000, rules, None, False)
    return derive_results(_header(), rows, facts)


def _paired(n: int, lost: int, won: int = 0) -> tuple[list[int], list[int]]:
    """Teacher and student scores whose drop is (lost - won) / n.

    The teacher is right on every item but ``won``; the student is wrong on ``lost`` and right on ``won``.
    """
    teacher = [1] * (n - won) + [0] * won
    student = [0] * lost + [1] * (n - lost - won) + [1] * won
    return teacher, student


def _rule(results: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [r for r in results["gate"]["rules"] if r["rule"] == name]
    return found


def test_a_drop_whose_ci_sits_inside_the_threshold_passes() -> None:
    results = _derive(_rows(*_paired(400, 4)), {"max_global_regression": 0.05})
    rule = _rule(results, "max_global_regression")
    assert rule["status"] == "pass"
    assert rule["basis"] == "ci"
    assert rule["observed"] == pytest.approx(0.01)
    assert rule["ci95"][1] <= 0.05
    assert rule["n"] == 400
    assert rule["mde"] < 0.05
    assert results["gate"]["verdict"] == "pass"


def test_a_drop_whose_ci_lies_beyond_the_threshold_fails() -> None:
    results = _derive(_rows(*_paired(400, 60)), {"max_global_regression": 0.05})
    rule = _rule(results, "max_global_regression")
    assert rule["status"] == "fail"
    assert rule["ci95"][0] > 0.05
    assert results["gate"]["verdict"] == "fail"


def test_a_ci_across_the_threshold_is_inconclusive_and_says_so_in_words() -> None:
    results = _derive(_rows(*_paired(400, 20)), {"max_global_regression": 0.06})
    rule = _rule(results, "max_global_regression")
    assert rule["status"] == "inconclusive"
    low, high = rule["ci95"]
    assert low < 0.06 < high
    assert rule["mde"] < 0.06  # enough power: the data, not the design, leave it open
    assert gate.describe(rule) == (
        f"max_global_regression inconclusive: the drop is between {low:.4g} and {high:.4g} (95% CI); "
        "the threshold is 0.06"
    )
    assert results["gate"]["verdict"] == "inconclusive"


def test_a_slice_too_small_to_detect_the_threshold_is_underpowered() -> None:
    teacher, student = _paired(16, 2, 2)  # drop 0, but 4 of 16 pairs disagree: SE 0.125
    results = _derive(_rows(teacher, student), {"max_global_regression": 0.05})
    rule = _rule(results, "max_global_regression")
    assert rule["status"] == "underpowered"
    assert rule["mde"] == pytest.approx(gate.MDE_Z * 0.125, rel=0.15)
    assert gate.describe(rule) == (
        "max_global_regression underpowered: this pack cannot detect a 5% regression on all items (n=16); "
        f"it can detect {rule['mde'] * 100:.3g}%"
    )
    assert results["gate"]["verdict"] == "underpowered"


def test_underpowered_beats_a_ci_inside_the_threshold_but_a_clear_fail_stays_a_fail() -> None:
    within = gate.Observation(0.0, (-0.05, 0.05), 30, 0.2)
    assert gate.evaluate_gate({"max_global_regression": 0.1}, {"global_regression": within}).verdict == (
        "underpowered"
    )
    beyond = gate.Observation(0.5, (0.3, 0.7), 16, 0.6)
    assert gate.evaluate_gate({"max_global_regression": 0.1}, {"global_regression": beyond}).verdict == "fail"


def test_each_critical_cohort_is_judged_on_its_own_ci() -> None:
    n = 200
    teacher, student = _paired(n, 20)  # the first 20 items: the student is wrong
    critical = [i < 40 for i in range(n)]  # half of the critical items lost
    results = _derive(_rows(teacher, student, critical=critical), {"max_critical_regression": 0.05})
    rule = _rule(results, "max_critical_regression")
    assert rule["cohort"] == "critical"
    assert rule["n"] == 40
    assert rule["observed"] == pytest.approx(0.5)
    assert rule["status"] == "fail"


def test_each_named_critical_cohort_is_judged_on_its_own() -> None:
    """Items marked ``critical: <name>`` form slice ``critical=<name>``: each is judged, and the pool."""
    n = 400
    teacher, student = _paired(n, 20)  # the first 20 items: the student is wrong
    critical: list[bool | str] = ["pii" if i < 40 else "safety" if i < 240 else False for i in range(n)]
    results = _derive(_rows(teacher, student, critical=critical), {"max_critical_regression": 0.05})
    assert {"critical", "critical=pii", "critical=safety"} <= set(results["metrics"])
    by_cohort = {r["cohort"]: r for r in results["gate"]["rules"]}
    assert set(by_cohort) == {"critical", "critical=pii", "critical=safety"}
    assert (by_cohort["critical=pii"]["n"], by_cohort["critical=pii"]["observed"]) == (40, pytest.approx(0.5))
    assert by_cohort["critical=pii"]["status"] == "fail"  # half the pii items lost
    assert by_cohort["critical=safety"]["observed"] == pytest.approx(0.0)  # none lost: the pool hid where
    assert by_cohort["critical"]["n"] == 240
    assert results["gate"]["verdict"] == "fail"
    assert "on cohort critical=pii" in results["gate"]["reason"]


def test_a_cohort_dropping_beyond_the_global_drop_by_the_margin_is_flagged() -> None:
    n = 400
    teacher, student = _paired(n, 60)  # every loss in cohort b
    cohorts = ["b" if i < 100 else "a" for i in range(n)]
    results = _derive(_rows(teacher, student, cohorts=cohorts), {"max_cohort_excess_regression": 0.2})
    by_cohort = {r["cohort"]: r for r in results["gate"]["rules"]}
    assert set(by_cohort) == {"cohort=a", "cohort=b"}
    assert by_cohort["cohort=b"]["observed"] == pytest.approx(0.6 - 0.15)
    assert by_cohort["cohort=b"]["status"] == "fail"
    assert by_cohort["cohort=a"]["observed"] == pytest.approx(-0.15)
    assert by_cohort["cohort=a"]["status"] == "pass"
    assert (
        "max_cohort_excess_regression fail: the drop beyond the global drop on cohort cohort=b"
        in (results["gate"]["reason"])
    )


def test_retention_is_judged_on_its_ci() -> None:
    n = 400
    base = [1] * 100 + [0] * 300  # teacher 1.0, base 0.25, student 0.25 + kept share of the gap
    teacher = [1] * n

    def judged(kept: int, threshold: float) -> dict[str, Any]:
        student = [1] * (100 + kept) + [0] * (300 - kept)
        results = _derive(_rows(teacher, student, base=base), {"min_retention": threshold})
        return _rule(results, "min_retention")

    assert judged(285, 0.8)["status"] == "pass"  # retention 0.95
    assert judged(150, 0.8)["status"] == "fail"  # retention 0.5
    close = judged(240, 0.8)  # retention 0.8: the CI straddles the threshold
    assert close["status"] == "inconclusive"
    assert close["ci95"][0] < 0.8 < close["ci95"][1]


def test_retention_carries_a_paired_bootstrap_ci_that_rederives() -> None:
    n = 200
    base = [1] * 50 + [0] * 150
    student = [1] * 150 + [0] * 50
    rows = _rows([1] * n, student, base=base)
    results = _derive(rows, {"min_retention": 0.5})
    kept = results["metrics"]["all"]["acc"]["retention"]["student"]
    assert kept["value"] == pytest.approx(2 / 3)
    low, high = kept["ci95"]
    assert low < kept["value"] < high
    assert kept["undefined_resamples"] == 0
    assert Results.parse(results)  # the schema and the model take it
    assert rederive(results, rows) == []


def test_retention_ci_is_null_when_retention_is() -> None:
    same = [1] * 50 + [0] * 50  # teacher = base: nothing to retain
    kept = _derive(_rows(same, same, base=same), {})["metrics"]["all"]["acc"]["retention"]["student"]
    assert kept["value"] is None
    assert kept["reason"] == "teacher_base_gap_below_min"
    assert kept["ci95"] == [None, None]


def test_retention_whose_ci_is_null_because_unstable_is_inconclusive_not_passed_on_its_point() -> None:
    """A retention CI recorded null does not let the point estimate pass.

    Teacher and base differ on 46 of 400 items (gap 0.035, its CI above 0): the point retention is 1.0,
    but more than 5% of the resamples have a gap under 0.01, so the run records its CI as null.
    """
    n, wins, losses = 400, 30, 16
    teacher = [1] * wins + [0] * losses + [1] * 100 + [0] * (n - wins - losses - 100)
    base = [0] * wins + [1] * losses + [1] * 100 + [0] * (n - wins - losses - 100)
    results = _derive(_rows(teacher, teacher, base=base), {"min_retention": 0.5})
    kept = results["metrics"]["all"]["acc"]["retention"]["student"]
    assert kept["value"] == pytest.approx(1.0)
    assert kept["ci95"] == [None, None]
    assert kept["undefined_resamples"] > 50  # of 1000
    rule = _rule(results, "min_retention")
    assert rule["status"] == "inconclusive"
    assert rule["basis"] == "ci"
    assert "ci95" not in rule
    assert "too unstable" in rule["ci_null"]
    assert gate.describe(rule).startswith("min_retention inconclusive: retention is 1 but its 95% CI is null")
    assert results["gate"]["verdict"] == "inconclusive"


def test_retention_recorded_without_any_ci_is_judged_on_its_point_and_says_so() -> None:
    """A run from before retention had a CI (no ``ci95`` key) is point-basis; a null CI is inconclusive."""
    n = 400
    base = [1] * 100 + [0] * 300
    student = [1] * 385 + [0] * 15
    results = _derive(_rows([1] * n, student, base=base), {"min_retention": 0.8})
    kept = results["metrics"]["all"]["acc"]["retention"]["student"]
    del kept["ci95"]
    observed = gate.observed_inputs(Results.parse(results))
    (rule,) = gate.evaluate_gate({"min_retention": 0.8}, observed).rules
    assert (rule.status, rule.as_dict()["basis"]) == ("pass", "point")
    kept["ci95"] = [None, None]
    observed = gate.observed_inputs(Results.parse(results))
    (rule,) = gate.evaluate_gate({"min_retention": 0.8}, observed).rules
    assert (rule.status, rule.as_dict()["basis"]) == ("inconclusive", "ci")


def test_rules_without_a_ci_are_judged_on_the_point_estimate_and_say_so() -> None:
    result = gate.evaluate_gate({"max_cost_ratio": 0.15}, {"cost_ratio": 0.2})
    (rule,) = result.rules
    assert rule.status == "fail"
    assert rule.as_dict()["basis"] == "point"
    assert "ci95" not in rule.as_dict()
    assert gate.describe(rule.as_dict()) == (
        "max_cost_ratio fail: the cost ratio is 0.2 (point estimate, no CI); the threshold is 0.15"
    )


def test_the_verdict_is_the_most_severe_status() -> None:
    inconclusive = gate.Observation(0.05, (0.01, 0.09), 400, 0.03)
    underpowered = gate.Observation(0.0, (-0.1, 0.1), 16, 0.35)
    rules = {"max_global_regression": 0.05, "max_critical_regression": 0.05}
    observed: gate.Observed = {"global_regression": inconclusive, "critical_regression": [underpowered]}
    assert gate.evaluate_gate(rules, observed).verdict == "inconclusive"
    observed = {"global_regression": 0.0, "critical_regression": [underpowered]}
    assert gate.evaluate_gate(rules, observed).verdict == "underpowered"
    assert gate.evaluate_gate(rules, {"global_regression": 0.0}).verdict == "not_evaluated"
    assert gate.evaluate_gate(rules, {"global_regression": 0.9}).verdict == "fail"


def _decide(statuses: dict[str, str], optional: Sequence[str] = ()) -> tuple[bool, str]:
    rules = [
        {"rule": rule, "status": status, "threshold": 0.05, "input": "x"} for rule, status in statuses.items()
    ]
    verdict = gate._worst(statuses.values())
    return gate.release_decision(Gate(verdict=verdict, rules=rules), optional)


@pytest.mark.parametrize("status", ["inconclusive", "underpowered", "not_evaluated"])
def test_only_pass_passes_unless_the_card_marks_the_rule_optional(status: str) -> None:
    statuses = {"max_global_regression": "pass", "max_critical_regression": status}
    passed, why = _decide(statuses)
    assert not passed
    assert "gate.optional" in why
    passed, why = _decide(statuses, ["max_critical_regression"])
    assert passed
    assert why == "passed (optional, not passed: max_critical_regression)"


def test_an_optional_rule_that_fails_still_fails() -> None:
    passed, why = _decide({"max_global_regression": "pass", "max_cost_ratio": "fail"}, ["max_cost_ratio"])
    assert not passed
    assert why.startswith("max_cost_ratio fail")


def test_the_reported_mde_is_detected_with_80_percent_power() -> None:
    """Simulate paired binary scores with the true drop at the reported MDE: ~80% of CIs exclude 0."""
    n, discordant = 200, 0.2  # a fifth of the pairs disagree, half each way: no drop
    results = _derive(_rows(*_paired(n, 20, 20)), {"max_global_regression": 0.5})
    mde = _rule(results, "max_global_regression")["mde"]
    assert mde == pytest.approx(gate.MDE_Z * (discordant / n) ** 0.5, rel=0.15)

    p_loss, p_win = (discordant + mde) / 2, (discordant - mde) / 2
    detected, trials = 0, 400
    for seed in range(trials):
        draw = np.random.default_rng(1000 + seed).choice(
            [1, 0, -1], size=n, p=[p_loss, 1 - discordant, p_win]
        )
        scores = {"teacher": (draw == 1).astype(float), "student": (draw == -1).astype(float)}
        stats = {"drop": uncertainty.role_difference("teacher", "student")}
        found = uncertainty.paired_bootstrap(scores, stats, seed=seed)["drop"]
        detected += found.low > 0
    # 0.82 here: the percentile CI and the slightly smaller SE under the alternative lean a little above 0.8
    assert detected / trials == pytest.approx(0.8, abs=0.07)


def test_a_slice_where_no_pair_disagrees_is_floored_by_the_rule_of_three() -> None:
    """Identical answers give a bootstrap SE of 0; the MDE then is 2.8 x sqrt(3)/n, not 0."""
    same = [1] * 10 + [0] * 6
    rule = _rule(_derive(_rows(same, same), {"max_global_regression": 0.05}), "max_global_regression")
    assert rule["ci95"] == [0.0, 0.0]
    assert rule["mde"] == pytest.approx(gate.MDE_Z * 3**0.5 / 16)
    assert rule["status"] == "underpowered"
    big = [1] * 300 + [0] * 100  # at n = 400 the floor is 0.012: a copy of the teacher passes
    rule = _rule(_derive(_rows(big, big), {"max_global_regression": 0.05}), "max_global_regression")
    assert rule["status"] == "pass"


def test_one_discordant_pair_never_detects_less_than_none_does() -> None:
    """One pair that disagrees gives a bootstrap SE near 1/n: the rule-of-three floor still applies."""
    same = [1] * 10 + [0] * 6
    none = _rule(_derive(_rows(same, same), {"max_global_regression": 0.05}), "max_global_regression")
    one = _rule(_derive(_rows(*_paired(16, 1)), {"max_global_regression": 0.05}), "max_global_regression")
    assert one["mde"] >= none["mde"] == pytest.approx(gate.MDE_Z * 3**0.5 / 16)
    for n, lost in ((16, 1), (40, 2), (400, 1)):
        mde = _rule(
            _derive(_rows(*_paired(n, lost)), {"max_global_regression": 0.5}), "max_global_regression"
        )
        assert mde["mde"] >= gate.MDE_Z * 3**0.5 / n - 1e-9


def test_cohort_records_do_not_depend_on_the_order_slices_are_listed_in() -> None:
    """The runner's file and a re-derivation list slices in different orders; the gate must not care."""
    n = 120
    teacher, student = _paired(n, 30)
    cohorts = ["b" if i < 40 else "a" if i < 80 else "c" for i in range(n)]
    rows = _rows(teacher, student, cohorts=cohorts, critical=[i % 3 == 0 for i in range(n)])
    results = _derive(rows, {"max_cohort_excess_regression": 0.2})
    assert [r["cohort"] for r in results["gate"]["rules"]] == ["cohort=a", "cohort=b", "cohort=c", "critical"]
    shuffled = json.loads(json.dumps(results, sort_keys=True))
    shuffled["metrics"] = dict(reversed(list(shuffled["metrics"].items())))
    rules = {"max_cohort_excess_regression": 0.2}
    judged = gate.evaluate_gate(rules, gate.observed_inputs(Results.parse(shuffled)))
    assert judged.as_dict()["rules"] == results["gate"]["rules"]
    assert rederive(shuffled, rows) == []
