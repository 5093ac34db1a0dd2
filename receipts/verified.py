"""What verification returns: each check's outcome, the per-receipt report and the verified receipt.

`receipts.verify` produces them (and re-exports them); the renderer, the exporters and the CLI read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from receipts.formats import Card, Footprint, Overlap, Results, Statement, WeightsManifest
    from receipts.formats.statement import Predicate, Subject, SubjectKind

__all__ = ["Check", "Report", "VerifiedReceipt"]


@dataclass(frozen=True)
class Check:
    """One verification step's outcome."""

    name: str
    status: Literal["pass", "fail", "not checked"]
    detail: str


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt that verified, and everything verification read, parsed once (the sigstore pattern).

    `verify_receipt` returns one or raises; the renderer and the exporters take it and never read, hash or
    parse a verified file again, so a file changed or added after its check can never be published.

    Attributes:
        path: the ``receipt.json`` file.
        envelope: the DSSE envelope bytes as verified.
        statement: the in-toto Statement parsed from the verified payload bytes.
        files: each file subject's bytes (checked against its signed digest), by subject name.
        results: each run's ``results.json``, in the predicate's ``runs`` order.
        footprints: each footprint document, in the predicate's ``footprints`` order.
        manifest: the weights manifest, when the receipt binds weights.
        overlap: the eval/corpus overlap check, when the receipt binds one (``receipts sign --overlap``).
        trust_root_sha256: the pinned trust root it verified against.
        checks: every check, each passed or "not checked".
    """

    path: Path
    envelope: bytes
    statement: Statement
    files: Mapping[str, bytes]
    results: tuple[Results, ...]
    footprints: tuple[Footprint, ...]
    manifest: WeightsManifest | None
    trust_root_sha256: str
    checks: tuple[Check, ...]
    overlap: Overlap | None = None

    @property
    def ok(self) -> bool:
        """True when no check failed (always, for a receipt `verify_receipt` returned)."""
        return all(c.status != "fail" for c in self.checks)

    @property
    def bundle(self) -> Path:
        """The bundle folder (``<name>@<version>/``)."""
        return self.path.parent

    @property
    def predicate(self) -> Predicate:
        """The receipts predicate (model, card, runs, footprints, gate, ...)."""
        return self.statement.predicate

    @property
    def card(self) -> Card:
        """The signed card."""
        return self.statement.predicate.card

    @property
    def name(self) -> str:
        """The model name (from the signed statement)."""
        return self.statement.predicate.model.name

    @property
    def version(self) -> str:
        """The model version (from the signed statement)."""
        return self.statement.predicate.model.version

    @property
    def bundle_name(self) -> str:
        """``<name>@<version>``: the bundle folder's name (verify holds it to the statement)."""
        return f"{self.name}@{self.version}"

    def subject(self, kind: SubjectKind) -> list[Subject]:
        """The statement's subjects of one kind (``weights``, ``card``, ``results``, ``pack``, ...)."""
        return self.statement.subjects(kind)

    def pack_files(self, pack_id: str) -> dict[str, bytes]:
        """The verified files the bundle publishes of a pack (path in the pack -> bytes); empty if none."""
        from receipts.packfiles import split_pack_file

        named = ((split_pack_file(s.name), s.name) for s in self.subject("pack-file"))
        return {where[1]: self.files[name] for where, name in named if where and where[0] == pack_id}


@dataclass
class Report:
    """Per-check report for one receipt; ``verified`` is set when every check passed.

    `verify_many` returns these for a folder of receipts (failures included); page checks of a built or
    published catalog are appended to them.
    """

    receipt: str
    checks: list[Check] = field(default_factory=list)
    model: str = ""
    verified: VerifiedReceipt | None = None

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(c.status != "fail" for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        """Machine-readable form for ``--json``."""
        return {
            "receipt": self.receipt,
            "model": self.model,
            "ok": self.ok,
            "checks": [c.__dict__ for c in self.checks],
        }
