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
    similarity: tuple[str, ...] = ()
    """Similarity measures ``--similarity`` adds to the pack's (scored after the run: not in `settings`)."""

    def settings(self) -> dict[str, Any]:
        """The part of the config a resumed run must match."""
        return {
            "limit": self.limit,
            "seed": self.seed,
            "variants": list(self.variants) if self.variants is not None else None,
            "bootstrap_resamples": self.bootstrap_resamples,
        }

    @classmethod
    def signed(cls, settings: Mapping[str, Any] | None) -> RunConfig:
        """The selection and batching a signed results header records (``settings``), for a rerun.

        The inverse of what `runner.eval.report` writes (`settings` plus ``threads`` and ``batch_size``)
        for what decides which instances were posed and with which companions: ``limit``, ``variants`` and
        ``batch_size`` (this class's default where a header from before it was recorded lacks it). Anything
        malformed reads as absent. No roles: a rerun names its own model.
        """
        given = settings or {}
        limit, variants, size = given.get("limit"), given.get("variants"), given.get("batch_size")
        return cls(
            roles={},
            limit=limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None,
            variants=tuple(str(v) for v in variants) if isinstance(variants, list) else None,
            batch_size=size
            if isinstance(size, int) and not isinstance(size, bool) and size > 0
            else cls.batch_size,
        )
