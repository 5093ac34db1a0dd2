"""Exports: a verified receipt rewritten in formats other tools read (Hugging Face card, CycloneDX).

An export is only ever made from a receipt that verified against the caller's pinned trust root:
exporting unverified numbers would launder them into formats that carry no signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receipts.digests import sha256_bytes
from receipts.documents import parse_json
from receipts.dsse import parse_envelope
from receipts.errors import VerificationError
from receipts.trust import TrustRoot

__all__ = ["VerifiedReceipt", "load_verified"]


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt whose signature, statement and subject digests all checked out.

    Attributes:
        path: the ``receipt.json`` file.
        bundle: its folder (``<name>@<version>/``).
        envelope_bytes: the DSSE envelope as stored.
        statement: the in-toto Statement (parsed from the verified payload bytes).
        results: each run's ``results.json`` (verified by digest), in the predicate's ``runs`` order.
        footprints: each footprint document (verified by digest), in the predicate's order.
        trust_root_sha256: the pinned trust root it verified against.
    """

    path: Path
    bundle: Path
    envelope_bytes: bytes
    statement: dict[str, Any]
    results: list[dict[str, Any]]
    footprints: list[dict[str, Any]]
    trust_root_sha256: str

    @property
    def predicate(self) -> dict[str, Any]:
        """The receipts predicate (model, card, runs, footprints, gate, ...)."""
        predicate: dict[str, Any] = self.statement["predicate"]
        return predicate

    @property
    def card(self) -> dict[str, Any]:
        """The signed card."""
        card: dict[str, Any] = self.predicate["card"]
        return card

    @property
    def name(self) -> str:
        """``name@version``."""
        model = self.predicate["model"]
        return f"{model['name']}@{model['version']}"

    def subject(self, kind: str) -> list[dict[str, Any]]:
        """The statement's subjects of one kind (``weights``, ``card``, ``results``, ``pack``, ...)."""
        return [s for s in self.statement["subject"] if s.get("annotations", {}).get("kind") == kind]


def load_verified(receipt: Path, root: TrustRoot) -> VerifiedReceipt:
    """Verify ``receipt`` (a ``receipt.json`` or its folder) and return what exporters read.

    Raises:
        VerificationError: a check failed (exporting is refused).
        InputError: the receipt does not exist.
    """
    from receipts.verify import verify_receipt

    path = receipt / "receipt.json" if receipt.is_dir() else receipt
    verify_receipt(path, root)
    data = path.read_bytes()
    envelope = parse_envelope(data, file=path)
    statement = parse_json(envelope.payload, file=f"{path} (payload)")
    bundle = path.parent
    predicate = statement["predicate"]
    digests = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}

    def signed(name: str) -> Any:
        data = (bundle / name).read_bytes()
        if sha256_bytes(data) != digests.get(name):  # changed since it was verified a moment ago
            raise VerificationError(f"{name} changed while exporting", check="subjects", file=bundle / name)
        return parse_json(data, file=bundle / name)

    results = [signed(run["results"]) for run in predicate["runs"]]
    footprints = [signed(fp["file"]) for fp in predicate["footprints"]]
    return VerifiedReceipt(path, bundle, data, statement, results, footprints, root.sha256)
