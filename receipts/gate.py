"""The release gate (DESIGN §4, §11 "Gate outcomes"): rules, the numbers they read, and the verdict.

Pure Python (no numpy, no torch) so that both ``receipts run`` (the pack's rules on one run) and
``receipts sign`` (the pack's rules with the card's overrides, plus cost from footprints) judge with
the same code. The observed numbers are always recomputed from a results document, never copied
from its recorded verdict.

Rules are judged on 95% paired-bootstrap CIs where the run has them (DESIGN §11):

- a ``max_*`` regression rule (the drop = teacher - student) *fails* when the CI's lower bound exceeds
  the threshold, else is *underpowered* when the minimum detectable effect at the slice's n exceeds the
  threshold, else *passes* when the CI's upper bound is within it, else is *inconclusive*;
- ``min_retention`` passes when the retention CI's lower bound reaches the threshold, fails when its upper
  bound is below it, and is inconclusive otherwise, or when the run recorded its CI as null (too unstable
  to bound: the point estimate alone does not pass);
- a rule whose input has no CI (``max_cost_ratio``, ``max_ece_increase``, or a run recorded without CIs)
  is judged on the point estimate, and its record says ``basis: point``;
- a rule whose input is missing is *not evaluated*.

Only pass passes (`release_decision`); a card may accept a rule that is not passed, but not one that
failed, by listing it in ``gate.optional``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from receipts.errors import GateError
from receipts.gate_inputs import COST_KEY, MDE_Z, TIME_KEY, Observation, cost_ratio, observed_inputs

if TYPE_CHECKING:
    from receipts.formats._shared import Gate
    from receipts.verify import Report

__all__ = [
    "COST_KEY",
    "GATE_RULES",
    "GATE_TOLERANCE",
    "MDE_Z",
    "TIME_KEY",
    "GateResult",
    "GateStatus",
    "Observation",
    "RuleResult",
    "combine",
    "cost_ratio",
    "describe",
    "evaluate_gate",
    "observed_inputs",
    "release_decision",
    "require_gates",
]

GateStatus = Literal["pass", "fail", "inconclusive", "underpowered", "not_evaluated"]

SEVERITY: tuple[GateStatus, ...] = ("fail", "inconclusive", "underpowered", "not_evaluated", "pass")
"""A verdict is the first of these any rule has: one failed rule fails the gate, and so on."""

GATE_RULES: Mapping[str, tuple[str, Literal["max", "min"]]] = {
    "max_global_regression": ("global_regression", "max"),
    "max_critical_regression": ("critical_regression", "max"),
    "max_cohort_excess_regression": ("cohort_excess_regression", "max"),
    "min_retention": ("retention", "min"),
    "max_cost_ratio": ("cost_ratio", "max"),
    "max_ece_increase": ("ece_increase", "max"),
    "min_judged_agreement": ("judged_agreement", "min"),  # issue #20 part 2
}
"""Rule -> (the observed number it reads, whether the rule is an upper or a lower bound).

Observed numbers: ``global_regression`` = teacher - student on the headline metric;
``critical_regression`` = the same on each critical cohort; ``cohort_excess_regression`` = a cohort's drop
minus the global drop, for each cohort; ``retention`` = (S - B)/(T - B); ``cost_ratio`` = student cost /
teacher cost; ``ece_increase`` = student ECE - teacher ECE; ``judged_agreement`` = the share of items the
judge finds the student's output equivalent to the teacher's (a judge that is not validated fails the rule).
"""

GATE_TOLERANCE = 1e-9
"""Slack on every bound, so that e.g. 0.80 - 0.77 = 0.030000000000000027 passes a 0.03 limit."""

Observed = Mapping[str, float | Observation | Sequence[Observation] | None]
"""Input -> its observation(s); a bare number is a point estimate (e.g. ``cost_ratio`` from footprints)."""


@dataclass(frozen=True)
class RuleResult:
    """One gate rule (on one cohort) with the numbers it was judged on."""

    rule: str
    status: GateStatus
    threshold: float
    observed: float | None
    input: str
    ci95: tuple[float, float] | None = None
    n: int | None = None
    mde: float | None = None
    cohort: str | None = None
    ci_null: str | None = None
    invalid: str | None = None  # why the input cannot be trusted (a judge not validated): the rule fails

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: ``basis`` once judged, ``ci95``/``n``/``mde`` on a CI, ``cohort`` per cohort.

        A record whose CI the run recorded as null has ``basis: ci`` with ``ci_null`` (why) and no ``ci95``.
        """
        out: dict[str, object] = {
            "rule": self.rule,
            "status": self.status,
            "threshold": self.threshold,
            "observed": self.observed,
            "input": self.input,
        }
        if self.status != "not_evaluated":
            out["basis"] = "point" if self.ci95 is None and self.ci_null is None else "ci"
        if self.ci_null is not None:
            out["ci_null"] = self.ci_null
        if self.ci95 is not None:
            out.update(ci95=list(self.ci95), n=self.n, mde=self.mde)
        if self.cohort is not None:
            out["cohort"] = self.cohort
        if self.invalid is not None:
            out["invalid"] = self.invalid
        return out


@dataclass(frozen=True)
class GateResult:
    """The verdict: the most severe status of any rule (`SEVERITY`); no rules at all is ``not_evaluated``."""

    verdict: GateStatus
    rules: tuple[RuleResult, ...]
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, the statement schema's ``gate`` object."""
        out: dict[str, object] = {"verdict": self.verdict, "rules": [r.as_dict() for r in self.rules]}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _status_on_ci(bound: Literal["max", "min"], threshold: float, seen: Observation) -> GateStatus:
    """Pass/fail/inconclusive/underpowered from the CI (`seen.ci95` is set and finite).

    A fail stays a fail whatever the power: a CI wholly beyond the threshold shows the regression. Short
    of that, too little power beats pass and inconclusive: a pack that cannot detect a regression of the
    threshold's size at this n cannot vouch that there is none, even when its CI happens to sit inside
    the threshold (the CI is as wide as the n allows; the MDE says what the design could ever show).
    """
    assert seen.ci95 is not None  # noqa: S101 -- the caller checked
    low, high = seen.ci95
    if bound == "min":
        if high < threshold - GATE_TOLERANCE:
            return "fail"
        return "pass" if low >= threshold - GATE_TOLERANCE else "inconclusive"
    if low > threshold + GATE_TOLERANCE:
        return "fail"
    if seen.mde is not None and seen.mde > threshold + GATE_TOLERANCE:
        return "underpowered"
    return "pass" if high <= threshold + GATE_TOLERANCE else "inconclusive"


def _judge_one(rule: str, threshold: float, seen: Observation) -> RuleResult:
    key, bound = GATE_RULES[rule]
    if seen.invalid is not None:  # e.g. a judge below its kappa threshold: its numbers cannot pass
        value = float(seen.value) if _finite(seen.value) else None  # type: ignore[arg-type]
        return RuleResult(rule, "fail", threshold, value, key, seen.ci95, seen.n, None, invalid=seen.invalid)
    if not _finite(seen.value):
        return RuleResult(rule, "not_evaluated", threshold, None, key, cohort=seen.cohort)
    value = float(seen.value)  # type: ignore[arg-type]
    ci = seen.ci95 if seen.ci95 is not None and all(_finite(b) for b in seen.ci95) else None
    if ci is None and seen.ci_null is not None:  # a CI was due and is null: the point cannot pass
        return RuleResult(
            rule, "inconclusive", threshold, value, key, n=seen.n, cohort=seen.cohort, ci_null=seen.ci_null
        )
    if ci is None:  # no CI recorded: the point estimate, as the record's basis says
        ok = value <= threshold + GATE_TOLERANCE if bound == "max" else value >= threshold - GATE_TOLERANCE
        return RuleResult(rule, "pass" if ok else "fail", threshold, value, key, cohort=seen.cohort)
    mde = seen.mde if _finite(seen.mde) else None
    status = _status_on_ci(bound, threshold, Observation(value, ci, seen.n, mde, seen.cohort))
    return RuleResult(rule, status, threshold, value, key, ci, seen.n, mde, seen.cohort)


def _observations(found: float | Observation | Sequence[Observation] | None) -> list[Observation]:
    if isinstance(found, Observation):
        return [found]
    if found is None or isinstance(found, int | float):
        return [Observation(None if found is None else float(found))]
    return list(found) or [Observation(None)]


def _judge(rule: str, threshold: float, observed: Observed) -> list[RuleResult]:
    if rule not in GATE_RULES:
        raise ValueError(f"unknown gate rule {rule!r}; known: {', '.join(GATE_RULES)}")
    if not math.isfinite(threshold):
        raise ValueError(f"gate rule {rule}: threshold must be a finite number, got {threshold}")
    found = observed.get(GATE_RULES[rule][0])
    return [_judge_one(rule, threshold, seen) for seen in _observations(found)]


def _worst(statuses: Iterable[str]) -> GateStatus:
    present = set(statuses)
    return next((s for s in SEVERITY if s in present), "not_evaluated")


def evaluate_gate(rules: Mapping[str, float], observed: Observed) -> GateResult:
    """Judge each configured rule against the observed inputs (see :data:`GATE_RULES` and the module).

    A per-cohort input (a sequence of observations) gives one record per cohort. The verdict is the most
    severe status of any record (`SEVERITY`); no rules at all gives ``not_evaluated``. The reason says, in
    words, each record that did not pass.

    Raises:
        ValueError: an unknown rule name or a non-finite threshold.
    """
    results = tuple(r for rule, threshold in rules.items() for r in _judge(rule, threshold, observed))
    if not results:
        return GateResult("not_evaluated", results, "no gate rules configured")
    verdict = _worst(r.status for r in results)
    if verdict == "pass":
        return GateResult("pass", results)
    words = "; ".join(describe(r.as_dict()) for r in results if r.status != "pass")
    return GateResult(verdict, results, words)


_NOUNS: Mapping[str, str] = {
    "global_regression": "the drop",
    "critical_regression": "the drop",
    "cohort_excess_regression": "the drop beyond the global drop",
    "retention": "retention",
    "cost_ratio": "the cost ratio",
    "ece_increase": "the ECE increase",
    "judged_agreement": "judged agreement with the teacher",
}


_MISSING: Mapping[str, str] = {
    "global_regression": "the run has no teacher and student scores to compare",
    "critical_regression": "the run has no critical items (items marked critical: true)",
    "cohort_excess_regression": "the run has no cohorts (slice labels or critical items) to compare",
    "retention": "the run has no retention (no base model, or its null rule applies)",
    "cost_ratio": "no footprints of student and teacher on one hardware class, and no teacher price per 1k "
    "calls in the card",
    "ece_increase": "the run has no calibration of teacher and student",
    "judged_agreement": "the run has no judge (receipts run --judge SPEC, with a pack that has a rubric)",
}
"""Why an input is missing, in words, for a ``not_evaluated`` record."""


def _n(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else "?"


def _percent(value: object) -> str:
    return f"{value * 100:.3g}%" if isinstance(value, int | float) and not isinstance(value, bool) else "?"


def describe(rule: Mapping[str, Any]) -> str:
    """One gate record in plain words, e.g. "inconclusive: the drop is between 0.01 and 0.09 (95% CI); ...".

    Reads a record as `RuleResult.as_dict` writes it (``pack`` prefixes it where a statement has one);
    the schema leaves records free-form, so every field is read defensively.
    """
    where = f"{rule['pack']}: " if rule.get("pack") else ""
    name, status, key = rule.get("rule"), rule.get("status"), str(rule.get("input"))
    cohort = f" on cohort {rule['cohort']}" if rule.get("cohort") else ""
    noun, threshold = _NOUNS.get(key, key) + cohort, _n(rule.get("threshold"))
    ci = rule.get("ci95") if isinstance(rule.get("ci95"), list) else None
    if isinstance(rule.get("invalid"), str):
        text = f"{status}: {rule['invalid']}"
    elif status == "not_evaluated":
        text = f"not evaluated: {_MISSING.get(key, 'the run has no ' + key.replace('_', ' '))}"
    elif status == "underpowered":
        text = (
            f"underpowered: this pack cannot detect a {_percent(rule.get('threshold'))} regression"
            f"{cohort or ' on all items'} (n={rule.get('n')}); it can detect {_percent(rule.get('mde'))}"
        )
    elif ci is not None and len(ci) == 2:
        text = f"{status}: {noun} is between {_n(ci[0])} and {_n(ci[1])} (95% CI)"
    elif isinstance(rule.get("ci_null"), str):
        text = f"{status}: {noun} is {_n(rule.get('observed'))} but {rule['ci_null']}"
    else:
        text = f"{status}: {noun} is {_n(rule.get('observed'))} (point estimate, no CI)"
    if status != "not_evaluated" and status != "underpowered":
        text += f"; the threshold is {threshold}"
    return f"{where}{name} {text}"


def combine(per_run: Iterable[tuple[str, GateResult]]) -> dict[str, object]:
    """One verdict over several runs (one per pack): the most severe of the runs' verdicts (`SEVERITY`).

    No run at all is ``not_evaluated``. Each rule is tagged with its run's ``pack``.
    """
    runs = list(per_run)
    if not runs:
        return {"verdict": "not_evaluated", "reason": "no eval run in this receipt", "rules": []}
    rules: list[dict[str, object]] = []
    for pack, result in runs:
        rules.extend({"pack": pack, **r.as_dict()} for r in result.rules)
    reasons = "; ".join(f"{pack}: {result.reason}" for pack, result in runs if result.reason)
    out: dict[str, object] = {"verdict": _worst(result.verdict for _, result in runs), "rules": rules}
    if reasons:
        out["reason"] = reasons
    return out


_NOT_PASSED = ("inconclusive", "underpowered", "not_evaluated")


def release_decision(gate: Gate, optional: Iterable[str] = ()) -> tuple[bool, str]:
    """Whether a gate lets a release through, failing closed, and why (for ``--gate`` flags: exit 5).

    Only ``pass`` passes. A failed rule always blocks; an inconclusive, underpowered or not evaluated
    rule blocks unless it is one of the ``optional`` rules (the card's ``gate.optional``); no rules at
    all, or no rule that passed, block. The reason says each blocking rule in words (`describe`).
    """
    rules = gate.rules or []
    if not rules:
        return False, gate.reason or "no gate rules were evaluated"
    allowed = set(optional)
    failed = [r for r in rules if r.get("status") == "fail"]
    if failed:
        return False, "; ".join(describe(r) for r in failed)
    blocking = [r for r in rules if r.get("status") in _NOT_PASSED and r.get("rule") not in allowed]
    if blocking:
        words = "; ".join(describe(r) for r in blocking)
        return False, f"{words}; only pass passes (a card may list a rule in gate.optional to accept that)"
    if any(r.get("status") not in ("pass", *_NOT_PASSED) for r in rules):
        return False, "a gate rule has an unknown status"
    accepted = sorted({str(r.get("rule")) for r in rules if r.get("status") != "pass"})
    if not any(r.get("status") == "pass" for r in rules):  # every rule optional and none passed
        return False, f"no rule passed (optional, not passed: {', '.join(accepted)})"
    return True, "passed" + (f" (optional, not passed: {', '.join(accepted)})" if accepted else "")


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
