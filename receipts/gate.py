"""The release gate (DESIGN §4): rules, the numbers they read, and the verdict.

Pure Python (no numpy, no torch) so that both ``receipts run`` (the pack's rules on one run) and
``receipts sign`` (the pack's rules with the card's overrides, plus cost from footprints) judge with
the same code. The observed numbers are always recomputed from a results document, never copied
from its recorded verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from receipts.errors import GateError

if TYPE_CHECKING:
    from receipts.formats import Footprint, Results
    from receipts.formats._shared import Gate
    from receipts.verify import Report

__all__ = [
    "COST_KEY",
    "GATE_RULES",
    "GATE_TOLERANCE",
    "GateResult",
    "GateStatus",
    "RuleResult",
    "combine",
    "cost_ratio",
    "evaluate_gate",
    "observed_inputs",
    "release_decision",
    "require_gates",
]

GateStatus = Literal["pass", "fail", "not_evaluated"]

GATE_RULES: Mapping[str, tuple[str, Literal["max", "min"]]] = {
    "max_global_regression": ("global_regression", "max"),
    "max_critical_regression": ("critical_regression", "max"),
    "min_retention": ("retention", "min"),
    "max_cost_ratio": ("cost_ratio", "max"),
    "max_ece_increase": ("ece_increase", "max"),
}
"""Rule -> (the observed number it reads, whether the rule is an upper or a lower bound).

Observed numbers: ``global_regression`` = teacher - student on the headline metric;
``critical_regression`` = the same on critical items; ``retention`` = (S - B)/(T - B);
``cost_ratio`` = student cost / teacher cost; ``ece_increase`` = student ECE - teacher ECE.
"""

GATE_TOLERANCE = 1e-9
"""Slack on every bound, so that e.g. 0.80 - 0.77 = 0.030000000000000027 passes a 0.03 limit."""


@dataclass(frozen=True)
class RuleResult:
    """One gate rule with the numbers it was judged on."""

    rule: str
    status: GateStatus
    threshold: float
    observed: float | None
    input: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "status": self.status,
            "threshold": self.threshold,
            "observed": self.observed,
            "input": self.input,
        }


@dataclass(frozen=True)
class GateResult:
    """The verdict (``fail`` if any rule fails, else ``not_evaluated`` if any could not be, else ``pass``)."""

    verdict: GateStatus
    rules: tuple[RuleResult, ...]
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, the statement schema's ``gate`` object."""
        out: dict[str, object] = {"verdict": self.verdict, "rules": [r.as_dict() for r in self.rules]}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _judge(rule: str, threshold: float, observed: Mapping[str, float | None]) -> RuleResult:
    if rule not in GATE_RULES:
        raise ValueError(f"unknown gate rule {rule!r}; known: {', '.join(GATE_RULES)}")
    if not math.isfinite(threshold):
        raise ValueError(f"gate rule {rule}: threshold must be a finite number, got {threshold}")
    key, bound = GATE_RULES[rule]
    value = observed.get(key)
    if value is None or not math.isfinite(value):
        return RuleResult(rule, "not_evaluated", threshold, None, key)
    ok = value <= threshold + GATE_TOLERANCE if bound == "max" else value >= threshold - GATE_TOLERANCE
    return RuleResult(rule, "pass" if ok else "fail", threshold, value, key)


def evaluate_gate(rules: Mapping[str, float], observed: Mapping[str, float | None]) -> GateResult:
    """Judge each configured rule against the observed numbers (see :data:`GATE_RULES`).

    A rule passes when ``observed <= threshold`` (``max_*``) or ``observed >= threshold``
    (``min_retention``), each with :data:`GATE_TOLERANCE` of slack; it is ``not_evaluated`` when its
    input is missing, ``None`` or not finite (e.g. retention was null). No rules at all gives
    ``not_evaluated``.

    Raises:
        ValueError: an unknown rule name or a non-finite threshold.
    """
    results = tuple(_judge(rule, threshold, observed) for rule, threshold in rules.items())
    failed = [r for r in results if r.status == "fail"]
    missing = [r for r in results if r.status == "not_evaluated"]
    if failed:
        bounds = "; ".join(
            f"{r.rule}: {r.input} = {r.observed:.4g} vs {r.threshold:.4g}"
            for r in failed
            if r.observed is not None
        )
        return GateResult("fail", results, f"failed {bounds}")
    if not results:
        return GateResult("not_evaluated", results, "no gate rules configured")
    if missing:
        return GateResult("not_evaluated", results, "missing inputs: " + ", ".join(r.input for r in missing))
    return GateResult("pass", results)


COST_KEY = "cost_per_1k_calls"
"""The footprint summary number ``max_cost_ratio`` compares (student / teacher, same hardware class)."""
TIME_KEY = "machine_seconds_per_1k_calls"
"""Its price-free stand-in: on one hardware class at one price, the ratio of costs is the ratio of times."""


def _number(value: object) -> float | None:
    """A finite-or-not JSON number as a float; anything else (null, text, a bool) is no number."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _role_value(results: Results, slice_name: str, metric: str, role: str) -> float | None:
    estimate = (results.metrics or {}).get(slice_name, {}).get(metric)
    found = estimate.roles.get(role) if estimate is not None else None
    return found.value if found is not None else None


def observed_inputs(results: Results) -> dict[str, float | None]:
    """The gate's observed numbers recomputed from a results document (schema/results).

    ``global_regression`` and ``critical_regression`` are teacher - student on the run's primary
    metric (all items / the ``critical`` slice), ``retention`` is the student's retention on all items
    (``None`` when the run reported it null), ``ece_increase`` is the 10-bin equal-mass ECE of the
    student minus the teacher's. ``cost_ratio`` needs footprints; see :func:`cost_ratio`.
    """
    primary = results.primary_metric or ""
    observed: dict[str, float | None] = {}
    for key, slice_name in (("global_regression", "all"), ("critical_regression", "critical")):
        teacher = _role_value(results, slice_name, primary, "teacher")
        student = _role_value(results, slice_name, primary, "student")
        observed[key] = None if teacher is None or student is None else teacher - student
    overall = (results.metrics or {}).get("all", {}).get(primary)
    kept = (overall.retention or {}).get("student") if overall is not None else None
    observed["retention"] = kept.value if kept is not None else None
    calibration = results.calibration or {}
    teacher_cal, student_cal = calibration.get("teacher"), calibration.get("student")
    teacher_ece = _number(teacher_cal.ece_10_equal_mass) if teacher_cal is not None else None
    student_ece = _number(student_cal.ece_10_equal_mass) if student_cal is not None else None
    observed["ece_increase"] = None
    if teacher_ece is not None and student_ece is not None:
        observed["ece_increase"] = student_ece - teacher_ece
    observed["cost_ratio"] = None
    return observed


def cost_ratio(
    footprints: Iterable[Footprint], student_digest: str | None, teacher_digest: str | None
) -> float | None:
    """Student cost / teacher cost from footprints of both models on the same hardware class.

    Reads ``summary.cost_per_1k_calls`` of a footprint whose ``model.digest`` is the student's and one
    whose digest is the teacher's, on a ``hardware.hw_class`` both share; where no such pair has a price,
    ``summary.machine_seconds_per_1k_calls`` (same hardware, so the price cancels). ``None`` when no such pair
    exists (e.g. the teacher is an API with no local footprint), when a cost is missing or the
    teacher's is not positive. With several shared classes the largest ratio counts (the worst case).
    """
    if not student_digest or not teacher_digest:
        return None
    for key in (COST_KEY, TIME_KEY):
        costs: dict[tuple[str, str], float] = {}
        for fp in footprints:
            cost = _number(getattr(fp.summary, key))
            if cost is not None and math.isfinite(cost):
                costs[(fp.model.digest, fp.hardware.hw_class)] = cost
        ratios = [
            costs[(student_digest, hw)] / teacher_cost
            for (digest, hw), teacher_cost in costs.items()
            if digest == teacher_digest and (student_digest, hw) in costs and teacher_cost > 0
        ]
        if ratios:
            return max(ratios)
    return None


def combine(per_run: Iterable[tuple[str, GateResult]]) -> dict[str, object]:
    """One verdict over several runs (one per pack).

    Any failed rule fails; else any rule not evaluated, or no run at all, leaves ``not_evaluated``;
    else pass. Each rule is tagged with its run's ``pack``.
    """
    runs = list(per_run)
    if not runs:
        return {"verdict": "not_evaluated", "reason": "no eval run in this receipt", "rules": []}
    rules: list[dict[str, object]] = []
    for pack, result in runs:
        rules.extend({"pack": pack, **r.as_dict()} for r in result.rules)
    verdicts = {result.verdict for _, result in runs}
    reasons = "; ".join(f"{pack}: {result.reason}" for pack, result in runs if result.reason)
    verdict: GateStatus = "pass"
    if "fail" in verdicts:
        verdict = "fail"
    elif "not_evaluated" in verdicts:
        verdict = "not_evaluated"
    out: dict[str, object] = {"verdict": verdict, "rules": rules}
    if reasons:
        out["reason"] = reasons
    return out


def release_decision(gate: Gate, optional: Iterable[str] = ()) -> tuple[bool, str]:
    """Whether a gate lets a release through, failing closed, and why (for ``--gate`` flags: exit 5).

    Only ``pass`` passes. A rule that could not be evaluated blocks the release unless it is one of the
    ``optional`` rules (the card's ``gate.optional``); a failed rule always blocks; no rules at all, or no
    rule that was evaluated and passed, block.
    """
    rules = gate.rules or []
    if not rules:
        return False, gate.reason or "no gate rules were evaluated"
    allowed = set(optional)
    failed = [r for r in rules if r.get("status") == "fail"]
    missing = [r for r in rules if r.get("status") == "not_evaluated" and r.get("rule") not in allowed]
    if failed:
        return False, "failed " + "; ".join(_rule_text(r) for r in failed)
    if missing:
        names = ", ".join(sorted({f"{_where(r)}{r.get('rule')} (needs {r.get('input')})" for r in missing}))
        return False, f"not evaluated: {names}; a card can accept that by listing the rule in gate.optional"
    skipped = sorted({str(r.get("rule")) for r in rules if r.get("status") == "not_evaluated"})
    if not any(r.get("status") == "pass" for r in rules):  # every rule optional and none evaluated
        return False, f"no rule was evaluated (optional, not evaluated: {', '.join(skipped)})"
    return True, "passed" + (f" (optional, not evaluated: {', '.join(skipped)})" if skipped else "")


def require_gates(reports: Sequence[Report]) -> None:
    """``verify --gate``: every verified receipt's signed gate must let its release through.

    Raises `GateError` (exit 5) naming each receipt whose gate blocks it; reports without a statement
    (a built site's page-only reports: their receipt is listed on its own) are skipped.
    """
    blocked = []
    for report in reports:
        if report.verified is None:
            continue
        predicate = report.verified.predicate
        optional = predicate.card.gate.optional if predicate.card.gate else None
        passed, why = release_decision(predicate.gate, optional or ())
        if not passed:
            blocked.append(f"{report.model}: {why}")
    if blocked:
        raise GateError("the release gate did not pass: " + "; ".join(blocked), hint="see the receipt's gate")


def _where(rule: Mapping[str, Any]) -> str:
    return f"{rule['pack']}: " if rule.get("pack") else ""


def _rule_text(rule: Mapping[str, Any]) -> str:
    observed, threshold = rule.get("observed"), rule.get("threshold")
    numbers = f" = {observed:.4g} vs {threshold:.4g}" if isinstance(observed, int | float) else ""
    return f"{_where(rule)}{rule.get('rule')}{numbers}"
