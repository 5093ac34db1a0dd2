"""How a re-executed item is held to its signed row: exact fields, and log-likelihoods within a tolerance.

The prompt's sha256, the answer, the text and any error must be equal; log-likelihoods (choices) and token
log-probabilities (generation) must be within a `Tolerance`: `EXACT` in the signed setup, else the signed
compute dtype's (`TOLERANCES`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from receipts.formats.results import ModelIdentity
    from runner.eval.packs import PromptInstance
    from runner.eval.sample import Sampled

__all__ = ["EXACT", "TOLERANCES", "ItemCheck", "Tolerance", "compare", "tolerance_for"]


@dataclass(frozen=True)
class Tolerance:
    """How far a re-computed log-likelihood may be from the signed one: ``|Δ| <= atol + rtol·|signed|``."""

    atol: float
    rtol: float

    def allows(self, signed: float, now: float) -> bool:
        """Whether ``now`` is within tolerance of ``signed``."""
        return abs(now - signed) <= self.atol + self.rtol * abs(signed)

    def __str__(self) -> str:
        return f"atol {self.atol:g}, rtol {self.rtol:g}"


EXACT = Tolerance(0.0, 0.0)

TOLERANCES: Mapping[str, Tolerance] = {
    # DESIGN §4's parity target for float32 log-likelihoods (a sum over a few tokens of log-softmax)
    "float32": Tolerance(1e-4, 1e-5),
    # 8 bits of mantissa: reduction order alone moves a summed log-likelihood by hundredths of a nat
    "bfloat16": Tolerance(0.1, 1e-2),
    "float16": Tolerance(0.05, 5e-3),
    # int8-dynamic quantises activations per call; the float32 accumulations around it reorder with threads
    "int8-dynamic": Tolerance(0.05, 5e-3),
}
"""Tolerance per compute dtype (runtime quantization first) when the setup is not the signed one."""


def tolerance_for(model: ModelIdentity) -> Tolerance:
    """The tolerance of a signed model's compute dtype (runtime quantization first); float32's if unknown.

    Unknown gets the strictest tolerance, never a looser one: a dtype this table does not name has no
    stated reason to move the last bits, so a rerun that differs beyond float32's tolerance is reported.
    """
    key = model.runtime_quant or model.compute_dtype or "float32"
    return TOLERANCES.get(key, TOLERANCES["float32"])


@dataclass(frozen=True)
class ItemCheck:
    """One sampled item re-executed and compared with its signed row."""

    name: str
    pack: str
    item: str
    variant: str
    problems: tuple[str, ...]
    max_delta: float | None
    """The largest |Δ| over the item's log-likelihoods (None: it has none)."""

    @property
    def reproduced(self) -> bool:
        """True when nothing differed beyond what the comparison allows."""
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        """The check as ``--json`` and the reproduction statement write it."""
        return {
            "pack": self.pack,
            "item": self.item,
            "variant": self.variant,
            "reproduced": self.reproduced,
            "max_abs_delta": None if self.max_delta is None else f"{self.max_delta:.3g}",
            "problems": list(self.problems),
        }


_NUMBERS = ("logliks", "token_logprobs")
_EXACT = ("answer", "text", "error")


def _numbers(value: Any) -> list[float] | None:
    if not isinstance(value, list) or not all(isinstance(v, int | float) for v in value):
        return None
    return [float(v) for v in value]


def compare(
    sampled: Sampled,
    inst: PromptInstance | None,
    signed: Mapping[str, Any],
    now: Mapping[str, Any],
    tol: Tolerance,
) -> ItemCheck:
    """Hold a re-computed examples cell ``now`` (empty: the item is not in the pack) to its ``signed`` one."""
    problems: list[str] = []
    deltas: list[float] = []
    if inst is None or inst.prompt_sha256 != sampled.row.get("prompt_sha256"):
        now_sha = "no such item in the pack" if inst is None else inst.prompt_sha256[:12] + "…"
        problems.append(f"prompt sha256 {str(sampled.row.get('prompt_sha256'))[:12]}… now {now_sha}")
    for key in _EXACT:
        if signed.get(key) != now.get(key):
            problems.append(f"{key} {json.dumps(signed.get(key))[:60]} now {json.dumps(now.get(key))[:60]}")
    for key in _NUMBERS:
        a, b = _numbers(signed.get(key)), _numbers(now.get(key))
        if a is None and b is None:
            continue
        if a is None or b is None or len(a) != len(b):
            problems.append(f"{key}: {len(a or [])} signed, {len(b or [])} now")
            continue
        deltas += [abs(x - y) for x, y in zip(a, b, strict=True)]
        if not all(tol.allows(x, y) for x, y in zip(a, b, strict=True)):
            problems.append(f"max |Δ{key}| {max(abs(x - y) for x, y in zip(a, b, strict=True)):.3g}")
    worst = max(deltas) if deltas else None
    if worst is not None and math.isnan(worst):
        problems.append("a log-likelihood is NaN")
    return ItemCheck(sampled.name, sampled.run.pack_id, sampled.item, sampled.variant, tuple(problems), worst)
