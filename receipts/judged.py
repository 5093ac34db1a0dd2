"""results.json's ``judged`` section, derived from the signed judge verdicts (issue #20 part 2).

A run with a judge logs, in each role's examples cell, ``judge.teacher`` (the role's output against the
teacher's) and ``judge.gold`` (against the gold answer): the judge's reply tail and its verdict. Its
results header ``judge`` names the judge, the rubric digest, the kappa threshold and the human-rated
validation sample with the judge's replies. From those alone this module computes:

- ``agreement``: per slice, the share of items each role's output is judged equivalent to the teacher's,
  and ``correct``: judged equivalent to the gold answer, each with a paired-bootstrap CI;
- ``verdicts``: the counts per role and comparison (``unparseable`` never counts as agreement);
- ``certificate``: the judge's Cohen's kappa against the human labels, with its CI, and whether it is
  validated: the sample was judged by this judge identity with this rubric digest, and the lower bound of
  kappa's 95% CI reaches the pack's threshold. Every judged number of an unvalidated judge is shown as
  "judge not validated", and the gate's ``min_judged_agreement`` fails.

Every verdict is read again from its logged reply (`parse_verdict`): a logged verdict its reply does not
say is an error, so a forged verdict cannot be re-derived.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from receipts.metrics import uncertainty
from receipts.metrics.agreement import VERDICTS, kappa_estimate, parse_verdict

__all__ = [
    "AGAINST",
    "JUDGED_METRICS",
    "MAX_RESAMPLED_PAIRS",
    "derive_judged",
    "identity_key",
    "judge_pack_problems",
]

AGAINST = {"teacher": "agreement", "gold": "correct"}
"""What each comparison is reported as: judged equivalent to the teacher's output, and to the gold answer."""

JUDGED_METRICS = ("agreement", "correct")

MAX_RESAMPLED_PAIRS = 100_000_000
"""The most rated pairs x bootstrap resamples a signed certificate may ask to re-derive (as `receipts.derive`
bounds the rows' bootstrap): 1,000 resamples of 100,000 rated pairs, far above any pack's sample."""


def identity_key(identity: Mapping[str, Any]) -> str:
    """A judge's cache key, as `runner.backends.base.ModelIdentity.key` computes it (spec left out)."""
    body = {k: v for k, v in identity.items() if k != "spec"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _r(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 6)


def _read(cell: Mapping[str, Any], where: str) -> str:
    """A logged verdict, checked against the reply it was parsed from.

    Raises:
        ValueError: the verdict is not what its reply says.
    """
    raw, verdict = cell["raw"], cell["verdict"]
    if not isinstance(raw, str) or verdict not in VERDICTS:
        raise ValueError(f"{where}: a judge verdict needs a text reply and one of {', '.join(VERDICTS)}")
    said = "unparseable" if "error" in cell else parse_verdict(raw, truncated=bool(cell.get("truncated")))
    if said != verdict:
        raise ValueError(f"{where}: the logged judge verdict is {verdict!r}, its reply says {said!r}")
    return str(verdict)


def _verdicts(scored: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, dict[str, str]]]:
    """Role -> against -> instance key -> verdict, each read again from its reply."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for role, cells in scored.items():
        for key, cell in cells.items():
            for against, found in (cell.get("judge") or {}).items():
                if against not in AGAINST:
                    raise ValueError(f"role {role}: unknown judge comparison {against!r}")
                item = key.replace("\x1f", " / ")
                out.setdefault(role, {}).setdefault(against, {})[key] = _read(found, f"{role} on {item}")
    return out


def _estimates(
    slices: Mapping[str, Sequence[str]], by_role: Mapping[str, Mapping[str, str]], seed: int, resamples: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, keys in slices.items():
        usable = [k for k in keys if all(k in verdicts for verdicts in by_role.values())]
        if not usable or not by_role:
            continue
        arrays = {
            role: np.array([float(v[k] == "equivalent") for k in usable]) for role, v in by_role.items()
        }
        found = uncertainty.paired_bootstrap(arrays, n_resamples=resamples, seed=seed)
        out[name] = {
            role: {"value": _r(e.value), "ci95": [_r(e.low), _r(e.high)], "n": e.n, "small_n": e.small_n}
            for role, e in found.items()
        }
    return out


def _certificate(judge: Mapping[str, Any], seed: int, resamples: int) -> dict[str, Any]:
    threshold = float(judge["kappa_threshold"])
    out: dict[str, Any] = {"threshold": threshold, "rubric_sha256": judge["rubric"]["sha256"]}
    validation = judge.get("validation")
    if not validation or not validation["samples"]:
        return out | {"validated": False, "reason": "the pack ships no human-rated validation sample"}
    samples = validation["samples"]
    if len(samples) * resamples > MAX_RESAMPLED_PAIRS:
        raise ValueError(f"the validation sample holds {len(samples):,} pairs; too many to re-derive kappa")
    human = [str(s["human"]) for s in samples]
    verdicts = [_read(s, f"validation sample {s['id']!r}") for s in samples]
    found = kappa_estimate(human, verdicts, n_resamples=resamples, seed=seed)
    out |= found.as_json() | {"unparseable": verdicts.count("unparseable")}
    low = found.kappa_ci95[0]
    if validation["judge"] != identity_key(judge["model"]):
        reason: str | None = "the validation sample was judged by another judge than the run's"
    elif validation["rubric_sha256"] != judge["rubric"]["sha256"]:
        reason = "the rubric changed since the judge was validated (its digest differs)"
    elif low is None:
        reason = "kappa's confidence interval is undefined (the labels barely vary)"
    elif low < threshold - 1e-9:
        reason = f"the lower bound of kappa's 95% CI, {low:.3f}, is below the pack's threshold {threshold:g}"
    else:
        reason = None
    return out | {"validated": reason is None, "reason": reason}


def _counts(verdicts: Any) -> dict[str, int]:
    found = list(verdicts)
    return {v: found.count(v) for v in VERDICTS}


def derive_judged(
    judge: Mapping[str, Any] | None,
    slices: Mapping[str, Sequence[str]],
    scored: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    seed: int,
    resamples: int,
) -> dict[str, Any] | None:
    """The ``judged`` section from the header's ``judge`` and the rows' verdicts; None for a run without one.

    Raises:
        KeyError, TypeError, ValueError: a verdict its reply does not say, or a field missing.
    """
    verdicts = _verdicts(scored)
    if judge is None:
        if verdicts:
            raise ValueError("the examples hold judge verdicts but the results name no judge")
        return None
    out: dict[str, Any] = {"certificate": _certificate(judge, seed, resamples)}
    out["verdicts"] = {
        role: {against: _counts(found.values()) for against, found in per.items()}
        for role, per in sorted(verdicts.items())
    }
    for against, metric in AGAINST.items():
        by_role = {role: per[against] for role, per in verdicts.items() if against in per}
        out[metric] = _estimates(slices, by_role, seed, resamples)
    return out


def judge_pack_problems(judge: Any, files: Mapping[str, str], judge_section: Any, *, where: str) -> list[str]:
    """Why a run's signed judge set-up is not its pack's (the pack published in the bundle, or ``--pack``).

    ``judge`` is the results' `receipts.formats.results.JudgeSetup` (None for a run without a judge),
    ``files`` the pack's files (path -> sha256 hex, bound by the pack digest the run records), and
    ``judge_section`` the pack's own ``judge`` section (`receipts.formats.pack.JudgeSection`; None when
    pack.yaml has none or is not at hand). A publisher who edits a run's kappa threshold, rubric or
    validation sample after the run — and signs — is caught here, since the pack digest binds the files.
    """
    if judge is None:
        return []
    problems = []
    signed = [("rubric", judge.rubric.path, judge.rubric.sha256)]
    if judge.validation is not None:
        signed.append(("validation sample", judge.validation.path, judge.validation.sha256))
    for what, path, sha in signed:
        actual = files.get(path)
        if actual is None:
            problems.append(f"{where}: the judge {what} {path!r} is not a file of the pack")
        elif actual != sha:
            problems.append(f"{where}: the judge {what} {path!r} digests to {actual}, the run signed {sha}")
    if judge_section is not None:
        if judge_section.rubric != judge.rubric.path:
            problems.append(
                f"{where}: the pack's rubric is {judge_section.rubric!r}, the run's {judge.rubric.path!r}"
            )
        validation = judge.validation.path if judge.validation is not None else None
        if (judge_section.validation or None) != validation:
            problems.append(
                f"{where}: the pack's validation sample is {judge_section.validation!r}, "
                f"the run's {validation!r}"
            )
        if abs(float(judge_section.kappa_threshold) - float(judge.kappa_threshold)) > 1e-12:
            problems.append(
                f"{where}: the run's kappa threshold {judge.kappa_threshold:g} is not the pack's "
                f"{judge_section.kappa_threshold:g}"
            )
    return problems
