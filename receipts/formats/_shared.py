"""Definitions one schema takes from another by ``$ref``: the gate verdict and the pack identity."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from receipts.formats._base import Closed, Digest, JsonObject, Omittable

__all__ = ["Gate", "GateVerdict", "PackRef"]

GateVerdict = Literal["pass", "fail", "inconclusive", "underpowered", "not_evaluated"]


class Gate(Closed):
    """A release gate's verdict (statement ``#/$defs/gate``; results ``gate`` refers to it)."""

    verdict: GateVerdict
    reason: Omittable[str] = None
    rules: Omittable[list[JsonObject]] = None


class PackRef(Closed):
    """Which eval pack a run used (results ``#/$defs/pack``; a statement's runs refer to it)."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$(?!\n)")]
    version: Annotated[str, Field(min_length=1)]
    digest: Digest
