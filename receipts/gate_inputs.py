"""The numbers the release gate reads (DESIGN §11), recomputed from a results document and footprints.

Each input is an `Observation`: the point estimate and, where the run has them, its 95% paired-bootstrap
CI, n and minimum detectable effect (`MDE_Z` x the bootstrap SE). `receipts.gate` judges them. Pure
Python, like the gate: the numbers come from results.json, never from its recorded verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from receipts.formats import Footprint, Results
    from receipts.formats.results import Estimate

__all__ = ["COST_KEY", "MDE_Z", "TIME_KEY", "Observation", "cost_ratio", "observed_inputs"]

MDE_Z = 1.959963984540054 + 0.8416212335729143
"""z(0.975) + z(0.80): the minimum detectable effect is this times the paired bootstrap standard error.

The drop a two-sided 5% test on this slice detects with 80% power (the normal approximation, with the
runner's own bootstrap SE of the paired difference; `_mde` floors the SE by the rule of three).
"""


@dataclass(frozen=True)
class Observation:
    """One observed input of a rule: the point estimate and, where the run has them, its CI, n and MDE.

    ``cohort`` names the slice for the per-cohort rules; ``ci95`` is ``None`` for point-only inputs.
    ``ci_null`` says why a CI the run did record is null (e.g. retention too unstable to bound): such an
    input is not point-only, and a rule on it is inconclusive rather than judged on the point estimate.
    """

    value: float | None
    ci95: tuple[float, float] | None = None
    n: int | None = None
    mde: float | None = None
    cohort: str | None = None
    ci_null: str | None = None
    invalid: str | None = None  # why the number cannot be trusted (issue #20: a judge not validated)


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


def _drop(results: Results, slice_name: str, cohort: str | None = None) -> Observation:
    """Teacher - student on the primary metric of one slice, with the negated paired CI and the MDE.

    From ``differences["student-teacher"]`` (its CI and bootstrap ``se``); a run recorded without it
    gives the point estimate from the two roles' means, and no CI.
    """
    primary = results.primary_metric or ""
    metric = (results.metrics or {}).get(slice_name, {}).get(primary)
    paired: Estimate | None = (metric.differences or {}).get("student-teacher") if metric else None
    if paired is not None and paired.value is not None:
        low, high = paired.ci95
        ci = (-high, -low) if low is not None and high is not None else None
        return Observation(-paired.value, ci, paired.n, _mde(paired.se, paired.n), cohort)
    teacher = _role_value(results, slice_name, primary, "teacher")
    student = _role_value(results, slice_name, primary, "student")
    return Observation(None if teacher is None or student is None else teacher - student, cohort=cohort)


def _mde(se: float | None, n: int) -> float | None:
    """`MDE_Z` x the paired bootstrap SE, floored by the rule of three: `MDE_Z` x max(se, sqrt(3)/n).

    With no discordant pair among n, the bootstrap cannot vary and says nothing about power; up to 3/n of
    the pairs could still disagree (the 95% rule of three), which gives a paired SE of sqrt(3)/n. Without
    this floor two identical answers would "detect" any regression. The floor holds for every SE, not only
    a zero one: one discordant pair gives an SE near 1/n, and must not claim more power than none does.
    """
    if se is None or n < 1:
        return None
    return MDE_Z * max(se, math.sqrt(3) / n)


def _excess(cohort: Observation, overall: Observation) -> Observation:
    """A cohort's drop minus the global drop; its CI is the cohort's CI shifted by the global point value.

    The global drop is taken as the reference, without its own (much smaller, overlapping) uncertainty;
    the MDE is the cohort's.
    """
    if cohort.value is None or overall.value is None:
        return Observation(None, cohort=cohort.cohort)
    ci = cohort.ci95
    shifted = (ci[0] - overall.value, ci[1] - overall.value) if ci is not None else None
    return Observation(cohort.value - overall.value, shifted, cohort.n, cohort.mde, cohort.cohort)


def _cohorts(results: Results) -> list[str]:
    """Every cohort a run reports, by name: each slice label (``<field>=<label>``) and the critical items.

    Sorted, so that the records do not depend on the order a document happens to list its slices in
    (the runner's file and a re-derivation must give the same gate, record for record).
    """
    return sorted(
        name
        for name in (results.metrics or {})
        if name == "critical" or ("=" in name and not name.startswith("variant="))
    )


def _is_critical(slice_name: str) -> bool:
    """The pooled critical slice, or a named critical cohort (``critical=<name>``)."""
    return slice_name == "critical" or slice_name.startswith("critical=")


def _retention(results: Results) -> Observation:
    """The student's retention on all items, with its CI; a recorded but null CI is not a point estimate.

    Three cases: a CI with both bounds (judged on it); no ``ci95`` recorded at all (a run from before
    retention had one: judged on the point, ``basis: point``); a ``ci95`` recorded null beside a value
    (more than 5% of the bootstrap resamples had no retention, so the ratio is too unstable at this n to
    bound): ``ci_null`` says so, and the rule is inconclusive.
    """
    primary = results.primary_metric or ""
    overall = (results.metrics or {}).get("all", {}).get(primary)
    kept = (overall.retention or {}).get("student") if overall is not None else None
    if kept is None:
        return Observation(None)
    n = overall.roles["student"].n if overall is not None and "student" in overall.roles else None
    ci = kept.ci95
    if ci is None:
        return Observation(kept.value, None, n)
    if ci[0] is None or ci[1] is None:
        undefined = kept.undefined_resamples
        why = "its 95% CI is null: retention is too unstable at this n to bound" + (
            f" ({undefined} bootstrap resamples had no retention, more than 5%)" if undefined else ""
        )
        return Observation(kept.value, None, n, ci_null=why)
    return Observation(kept.value, (ci[0], ci[1]), n)


def _ece_increase(results: Results) -> float | None:
    calibration = results.calibration or {}
    teacher_cal, student_cal = calibration.get("teacher"), calibration.get("student")
    teacher_ece = _number(teacher_cal.ece_10_equal_mass) if teacher_cal is not None else None
    student_ece = _number(student_cal.ece_10_equal_mass) if student_cal is not None else None
    return None if teacher_ece is None or student_ece is None else student_ece - teacher_ece


def observed_inputs(results: Results) -> dict[str, float | Observation | Sequence[Observation] | None]:
    """The gate's observed inputs recomputed from a results document (schema/results).

    ``global_regression`` is teacher - student on the run's primary metric over all items, with the
    negated ``student-teacher`` paired CI and MDE; ``critical_regression`` the same for each critical
    cohort (the ``critical`` slice: every item a pack marks ``critical``, and each ``critical=<name>``
    slice: the items marked ``critical: <name>``, judged on its own); ``cohort_excess_regression`` each
    cohort's drop minus the global drop (`_excess`); ``retention`` the student's retention on all items
    with its CI (value ``None`` when the run reported it null; ``ci_null`` set when only its CI is, see
    `_retention`); ``ece_increase`` the 10-bin equal-mass ECE of the student minus the teacher's (a point
    estimate). ``cost_ratio`` needs footprints or a declared teacher price; see :func:`cost_ratio`.
    """
    overall = _drop(results, "all")
    critical = [_drop(results, name, name) for name in _cohorts(results) if _is_critical(name)]
    cohorts = [_excess(_drop(results, name, name), overall) for name in _cohorts(results)]
    return {
        "global_regression": overall,
        "critical_regression": critical,
        "cohort_excess_regression": cohorts,
        "retention": _retention(results),
        "ece_increase": _ece_increase(results),
        "cost_ratio": None,
        "judged_agreement": _judged_agreement(results),  # issue #20 part 2
    }


def _judged_agreement(results: Results) -> Observation | None:
    """The student's judged agreement with the teacher (all items); invalid unless the judge is validated."""
    judged = results.judged
    found = judged.agreement.get("all", {}).get("student") if judged is not None else None
    if judged is None or found is None:
        return None
    low, high = found.ci95
    ci = (float(low), float(high)) if low is not None and high is not None else None
    certificate = judged.certificate
    invalid = None if certificate.validated else f"judge not validated: {certificate.reason}"
    return Observation(found.value, ci, found.n, invalid=invalid)


def cost_ratio(
    footprints: Iterable[Footprint],
    student_digest: str | None,
    teacher_digest: str | None,
    teacher_price_usd: float | None = None,
) -> float | None:
    """Student cost / teacher cost, wherever the inputs exist (footprints of both, or a declared price).

    First from footprints of both models on the same hardware class: ``summary.cost_per_1k_calls`` of a
    footprint whose ``model.digest`` is the student's and one whose digest is the teacher's, on a
    ``hardware.hw_class`` both share; where no such pair has a price, ``summary.machine_seconds_per_1k_calls``
    (same hardware, so the price cancels). The ratio is the worst case, the one least favourable to the
    student: over every student footprint and every teacher footprint on a shared class (a receipt may hold
    several per model and class, e.g. two bench sessions), the student's highest cost over the teacher's
    lowest positive cost, and over several shared classes the largest ratio. Never the footprint that
    happens to be listed last. Else, for a teacher with no footprint (an API), the student's footprint cost
    priced in USD over ``teacher_price_usd`` (the card's ``price_per_1k_calls.usd``), the largest over the
    student's footprints. ``None`` when neither exists, a cost is missing or the teacher's is not positive.
    """
    if not student_digest:
        return None
    footprints = list(footprints)
    for key in (COST_KEY, TIME_KEY):
        student: dict[str, float] = {}  # hw_class -> the student's highest cost there
        teacher: dict[str, float] = {}  # hw_class -> the teacher's lowest positive cost there
        for fp in footprints:
            cost = _number(getattr(fp.summary, key))
            if cost is None or not math.isfinite(cost):
                continue
            hw = fp.hardware.hw_class
            if fp.model.digest == student_digest:
                student[hw] = max(cost, student.get(hw, cost))
            elif fp.model.digest == teacher_digest and cost > 0:
                teacher[hw] = min(cost, teacher.get(hw, cost))
        ratios = [student[hw] / teacher[hw] for hw in student if hw in teacher]
        if ratios:
            return max(ratios)
    return _priced_ratio(footprints, student_digest, teacher_price_usd)


def _priced_ratio(
    footprints: Iterable[Footprint], student_digest: str, teacher_price_usd: float | None
) -> float | None:
    """The student's USD cost per 1k calls over the teacher's declared USD price per 1k calls."""
    if teacher_price_usd is None or not math.isfinite(teacher_price_usd) or teacher_price_usd <= 0:
        return None
    student_costs = [
        cost
        for fp in footprints
        if fp.model.digest == student_digest and str(fp.settings.price.currency).upper() == "USD"
        for cost in [_number(fp.summary.cost_per_1k_calls)]
        if cost is not None and math.isfinite(cost)
    ]
    return max(student_costs) / teacher_price_usd if student_costs else None
