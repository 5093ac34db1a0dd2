"""llama.cpp's own ``llama-perplexity --kl-divergence``, run and read back: the quant KLD reference.

`kl_divergence` runs the tool's two passes (``--kl-divergence-base`` with the base model, then
``--kl-divergence`` with the quantized one) on the same text and context, one thread, and returns its
final statistics under the names `receipts.metrics.quant_kld.summarize` gives them (fractions, not
percent), each with the resolution it was printed at.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from runner.llamacpp.toolchain import find

__all__ = ["Printed", "kl_divergence"]

_NUMBER = r"(-?\d+\.\d+)"
_WITH_UNC = re.compile(rf"^(?P<label>[^:]+?)\s*:\s*{_NUMBER}\s*±\s*{_NUMBER}\s*(%?)\s*$")
_PLAIN = re.compile(rf"^(?P<label>[^:]+?)\s*:\s*{_NUMBER}\s*(%?)\s*$")

_NAMES = {
    "Mean PPL(Q)": "ppl",
    "Mean PPL(base)": "ppl_base",
    "Mean ln(PPL(Q)/PPL(base))": "ln_ppl_ratio",
    "Mean    KLD": "mean_kld",
    "Maximum KLD": "kld_max",
    "99.9%   KLD": "kld_p99_9",
    "99.0%   KLD": "kld_p99",
    "95.0%   KLD": "kld_p95",
    "90.0%   KLD": "kld_p90",
    "Median  KLD": "kld_median",
    "10.0%   KLD": "kld_p10",
    " 5.0%   KLD": "kld_p5",
    " 1.0%   KLD": "kld_p1",
    " 0.1%   KLD": "kld_p0_1",
    "Minimum KLD": "kld_min",
    "Mean    Δp": "delta_p_mean",
    "Maximum Δp": "delta_p_max",
    "99.9%   Δp": "delta_p_p99_9",
    "99.0%   Δp": "delta_p_p99",
    "95.0%   Δp": "delta_p_p95",
    "90.0%   Δp": "delta_p_p90",
    "75.0%   Δp": "delta_p_p75",
    "Median  Δp": "delta_p_median",
    "25.0%   Δp": "delta_p_p25",
    "10.0%   Δp": "delta_p_p10",
    " 5.0%   Δp": "delta_p_p5",
    " 1.0%   Δp": "delta_p_p1",
    " 0.1%   Δp": "delta_p_p0_1",
    "Minimum Δp": "delta_p_min",
    "RMS Δp    ": "delta_p_rms",
    "Same top p": "same_top_rate",
}


@dataclass(frozen=True)
class Printed:
    """One statistic as llama-perplexity printed it: value, uncertainty (if any), print resolution."""

    value: float
    unc: float | None
    resolution: float


def _decimals(text: str) -> int:
    return len(text.partition(".")[2])


def _parse(log: str) -> dict[str, Printed]:
    found: dict[str, Printed] = {}
    for line in log.splitlines():
        match = _WITH_UNC.match(line) or _PLAIN.match(line)
        if match is None:
            continue
        label = line.split(":", 1)[0]
        name = _NAMES.get(label.rstrip() if label.rstrip() in _NAMES else label)
        if name is None or name in found:
            continue
        groups = match.groups()
        percent = groups[-1] == "%"
        scale = 0.01 if percent else 1.0
        value = float(groups[1]) * scale
        unc = float(groups[2]) * scale if len(groups) == 4 else None
        found[name] = Printed(value, unc, 10.0 ** -_decimals(groups[1]) * scale)
    return found


def kl_divergence(
    base: Path, quant: Path, text: Path, *, ctx: int, work: Path, batch: int | None = None
) -> dict[str, Printed]:
    """Run both llama-perplexity passes; return its final KL-divergence statistics.

    ``batch``: its ``-b`` (default: the tool's 2048, which evaluates up to 2048 / ctx chunks at once).
    """
    chain = find()
    tool = str(chain.tool("llama-perplexity"))
    saved = work / "base.kld"
    common = ["-f", str(text), "-c", str(ctx), "-t", "1", "--kl-divergence-base", str(saved)]
    if batch is not None:
        common += ["-b", str(batch)]
    for model, extra in ((base, []), (quant, ["--kl-divergence"])):
        done = subprocess.run(
            [tool, "-m", str(model), *common, *extra],
            env=chain.tool_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"llama-perplexity failed ({done.returncode}): {done.stderr[-2000:]}")
    return _parse(done.stdout + done.stderr)
