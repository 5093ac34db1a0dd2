"""Flips (issue #20 part 5): where a student departs from its teacher on correctness, which way it goes.

Agreement is one number; it does not say whether the student's disagreements lie where the teacher was
wrong (harmless, even a gain) or right (lost capability) — "volume vs direction" in the quantization and
distillation literature (Dutta et al. 2024, "Accuracy is not all you need": flips). Per item, with
correctness read as ``score >= 0.5``:

- **lost**: the teacher is right and the student wrong;
- **gained**: the teacher is wrong and the student right.

Rates are over all items of the slice (so ``lost_rate - gained_rate`` is exactly the teacher's accuracy
minus the student's), each with a 95% paired-bootstrap percentile CI (`receipts.metrics.uncertainty`:
the same seeded resamples as every other metric of the run). Whether lost and gained differ is McNemar's
test on the same items (exact binomial below 25 discordant items, `uncertainty.mcnemar`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from receipts.metrics import uncertainty
from receipts.metrics.arrays import binary_array, same_length

__all__ = ["CORRECT_AT", "LOST_RATIO", "LOST_SIGNIFICANCE", "Flips", "flips", "lost_dominates"]

CORRECT_AT = 0.5
"""An item counts as right when its score is at least this (the rule fidelity and calibration use)."""

LOST_RATIO = 2.0
"""``lost ≫ gained`` means: lost at least this many times gained ..."""
LOST_SIGNIFICANCE = 0.05
"""... and McNemar's p-value for lost vs gained below this."""


@dataclass(frozen=True)
class Flips:
    """One role's flips against the teacher on one set of items.

    Attributes:
        n: items.
        lost: teacher right, role wrong.
        gained: teacher wrong, role right.
        lost_rate: ``lost / n`` with its paired-bootstrap CI.
        gained_rate: ``gained / n`` with its paired-bootstrap CI.
        mcnemar: McNemar's test of lost vs gained.
    """

    n: int
    lost: int
    gained: int
    lost_rate: uncertainty.Estimate
    gained_rate: uncertainty.Estimate
    mcnemar: uncertainty.McNemar


def flips(
    teacher_correct: npt.ArrayLike,
    role_correct: npt.ArrayLike,
    *,
    n_resamples: int = uncertainty.DEFAULT_RESAMPLES,
    seed: int = uncertainty.DEFAULT_SEED,
) -> Flips:
    """Count and rate the items a role lost and gained against the teacher, with 95% CIs.

    Raises:
        ValueError: mismatched, empty or non-binary inputs, or too few resamples.
    """
    teacher = binary_array(teacher_correct, "teacher_correct")
    role = binary_array(role_correct, "role_correct")
    same_length(teacher, role)
    lost = ((teacher == 1) & (role == 0)).astype(np.float64)
    gained = ((teacher == 0) & (role == 1)).astype(np.float64)
    est = uncertainty.paired_bootstrap({"lost": lost, "gained": gained}, n_resamples=n_resamples, seed=seed)
    return Flips(
        n=int(teacher.size),
        lost=int(lost.sum()),
        gained=int(gained.sum()),
        lost_rate=est["lost"],
        gained_rate=est["gained"],
        # McNemar(teacher, role): only_a = teacher right only = lost, only_b = gained
        mcnemar=uncertainty.mcnemar(teacher, role),
    )


def lost_dominates(lost: int, gained: int, p_value: float) -> bool:
    """The stated rule for ``lost ≫ gained``: lost >= `LOST_RATIO` x gained, McNemar p < `LOST_SIGNIFICANCE`.

    With no discordant items McNemar's p is 1, so the rule cannot fire on a tie or on nothing.
    """
    return lost > 0 and lost >= LOST_RATIO * gained and p_value < LOST_SIGNIFICANCE
