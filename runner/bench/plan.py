"""What a ``receipts bench`` measures (DESIGN §8): `BenchConfig`, and the parsing of its options."""

from __future__ import annotations

import re
from dataclasses import dataclass

from receipts.errors import UsageError

__all__ = [
    "MIN_CALLS",
    "MIN_DURATION_S",
    "QUANTS",
    "BenchConfig",
    "parse_ints",
    "parse_quants",
    "parse_size",
]

QUANTS = {"fp32": "fp32", "bf16": "bf16", "int8": "int8-dynamic", "int8-dynamic": "int8-dynamic"}
MIN_DURATION_S = 10.0
MIN_CALLS = 30
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)\s*$", re.IGNORECASE)
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text: str, *, option: str = "--ram-budget") -> int:
    """``16GB`` → 16·10⁹ bytes, ``16GiB`` → 16·2³⁰ (a unit is required: a bare number is ambiguous).

    Raises:
        UsageError: not a size with a unit, or not positive.
    """
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"{option} {text!r} is not a size", hint="write it with a unit: 16GB, 16GiB, 512MiB")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1:
        raise UsageError(f"{option} {text!r} must be positive")
    return int(value)


def parse_quants(text: str) -> tuple[str, ...]:
    """``fp32,bf16,int8`` → the runner's variant names, in order, without repeats.

    Raises:
        UsageError: an unknown quantization, or none.
    """
    out: list[str] = []
    for name in (part.strip() for part in text.split(",")):
        if name not in QUANTS:
            raise UsageError(
                f"--quant {name!r} is not a quantization receipts can bench",
                hint="use fp32, bf16 and/or int8 (int8 = dynamic int8 on CPU), comma-separated",
            )
        if QUANTS[name] not in out:
            out.append(QUANTS[name])
    if not out:
        raise UsageError("--quant is empty", hint="e.g. --quant fp32,int8")
    return tuple(out)


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    """``1,4`` → ``(1, 4)``, for an option such as ``--concurrency``.

    Raises:
        UsageError: a part is not an integer.
    """
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a comma-separated list of integers", hint=f"e.g. {option} 1,4"
        ) from None
    return values


@dataclass(frozen=True)
class BenchConfig:
    """Everything that decides what a bench measures (all of it is recorded in the footprint)."""

    spec: str
    quants: tuple[str, ...] = ()
    """Empty: the model's own (fp32 for ``hf:``/``gguf:``, the file's quantization for ``llamacpp:``)."""
    prompt_tokens: int = 128
    new_tokens: int = 32
    concurrency: tuple[int, ...] = (1,)
    ram_budget_bytes: int | None = None
    ttft_budget_s: float = 10.0
    price_per_hour: float | None = None
    currency: str = "USD"
    watts: float | None = None
    threads: int = 1
    device: str = "cpu"
    warmups: int = 3
    min_duration_s: float = MIN_DURATION_S
    min_calls: int = MIN_CALLS
    context_search: bool = True
    max_context: int | None = None
    page_cache: str = "warm"
    seed: int = 0
    point_timeout_s: float = 1800.0

    def check(self) -> None:
        """Refuse settings that cannot produce a measurement.

        Raises:
            UsageError: naming the option and the range it must lie in.
        """
        if self.prompt_tokens < 1:
            raise UsageError("--prompt-tokens must be at least 1")
        if self.new_tokens < 2:
            raise UsageError(
                "--new-tokens must be at least 2", hint="TPOT needs a second token: (e2e - ttft)/(G - 1)"
            )
        if not self.concurrency or min(self.concurrency) < 1:
            raise UsageError("--concurrency must be positive integers, e.g. 1 or 1,4")
        if self.threads < 1:
            raise UsageError("--threads must be at least 1")
        if self.warmups < 0 or self.min_calls < 1 or self.min_duration_s < 0:
            raise UsageError("--warmups must be ≥ 0, --min-calls ≥ 1 and --min-duration ≥ 0")
        if self.ttft_budget_s <= 0:
            raise UsageError("--ttft-budget must be positive seconds")
        if self.point_timeout_s <= 0:
            raise UsageError("--timeout must be positive seconds", hint="e.g. --timeout 1800")
        if self.max_context is not None and self.max_context < 1:
            raise UsageError("--max-context must be at least 1 token")
        if self.price_per_hour is not None and self.price_per_hour < 0:
            raise UsageError("--price-per-hour must not be negative")
        self._check_device()

    def _check_device(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise UsageError(f"--device {self.device!r}", hint="use cpu or cuda")
        if self.device == "cuda" and "int8-dynamic" in self.quants:
            raise UsageError(
                "int8 (dynamic) runs on CPU only", hint="drop int8 from --quant or use --device cpu"
            )
        if self.page_cache not in ("warm", "cold"):
            raise UsageError(f"--page-cache {self.page_cache!r}", hint="use warm or cold")

    @property
    def short(self) -> bool:
        """Below the DESIGN §8 minimums (≥ 10 s and ≥ 30 calls per point, ≥ 3 warm-ups)."""
        return self.min_duration_s < MIN_DURATION_S or self.min_calls < MIN_CALLS or self.warmups < 3
