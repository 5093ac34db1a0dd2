"""What decides a run's outputs besides the pack and the models: `RunConfig`, and the order of roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from receipts.derive import ROLE_ORDER  # one order for the runner and the derivation
from receipts.metrics.uncertainty import DEFAULT_RESAMPLES

__all__ = ["ROLE_ORDER", "RunConfig"]


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's outputs (besides the pack and the models)."""

    roles: Mapping[str, str]
    limit: int | None = None
    seed: int = 0
    threads: int = 1
    batch_size: int = 64
    variants: tuple[str, ...] | None = None
    max_error_rate: float = 0.1
    bootstrap_resamples: int = DEFAULT_RESAMPLES
    use_cache: bool = True

    def settings(self) -> dict[str, Any]:
        """The part of the config a resumed run must match."""
        return {
            "limit": self.limit,
            "seed": self.seed,
            "variants": list(self.variants) if self.variants is not None else None,
            "bootstrap_resamples": self.bootstrap_resamples,
        }
