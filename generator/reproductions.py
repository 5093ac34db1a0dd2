"""Reproduction statements on the card pages: "reproduced by X on DATE: 20/20", verified at build.

``receipts render|build --reproductions DIR --reproducer-key PUB`` (the mkdocs plugin's ``reproductions``
and ``reproducer_keys``): every ``*.json`` in DIR must be a reproduction statement (`receipts.reproduction`)
signed by one of the pinned reproducer keys — never a publisher's key — about a receipt of this catalog,
else the build stops. Each card page then shows its reproductions and publishes the statements beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from receipts.errors import ReceiptsError, UsageError, VerificationError
from receipts.keys import PublicKey, load_public_key
from receipts.trust import TrustRoot
from receipts.verify import VerifiedReceipt

__all__ = ["Shown", "collect_reproductions", "load_reproducer_keys"]


@dataclass(frozen=True)
class Shown:
    """One verified reproduction as a card page shows it."""

    name: str
    keyid: str
    date: str
    reproduced: int
    n: int
    label: str
    same_model: bool
    file: str
    """The statement's file name beside the page."""
    data: bytes


def load_reproducer_keys(paths: Sequence[Path]) -> list[PublicKey]:
    """The pinned reproducer public keys.

    Raises:
        KeyFileError: a key file is missing or not a public key.
    """
    return [load_public_key(path) for path in paths]


def _about(data: bytes, entries: Mapping[str, VerifiedReceipt]) -> VerifiedReceipt | None:
    from receipts.dsse import parse_envelope
    from receipts.formats import ReproductionStatement

    try:
        payload = parse_envelope(data).payload
        statement = ReproductionStatement.from_json_bytes(payload)
    except ReceiptsError:  # unreadable: refused below, as about no receipt of this catalog
        return None
    return entries.get(statement.subject[0].digest.sha256)


def collect_reproductions(
    folder: Path, keys: Sequence[PublicKey], entries: Sequence[VerifiedReceipt], root: TrustRoot
) -> dict[str, list[Shown]]:
    """Every statement in ``folder`` verified against ``keys`` and its receipt; by receipt bundle name.

    Raises:
        UsageError: no reproducer key is pinned, or ``folder`` is not a folder.
        VerificationError: a statement is unreadable, signed by no pinned reproducer key (or by a publisher
            key), or about no receipt of this catalog.
    """
    from receipts.dsse import MAX_ENVELOPE_BYTES
    from receipts.paths import read_regular
    from receipts.reproduction import verify_reproduction

    if not keys:
        raise UsageError("--reproductions needs --reproducer-key PUB (the reproducers you trust)")
    if not folder.is_dir():
        raise UsageError(f"--reproductions {folder} is not a folder")
    by_digest = {hashlib.sha256(e.envelope).hexdigest(): e for e in entries}
    shown: dict[str, list[Shown]] = {}
    for path in sorted(folder.glob("*.json")):
        # a regular file reached without a link (a FIFO or a link to elsewhere is refused, never opened)
        data = read_regular(folder, path.name, limit=MAX_ENVELOPE_BYTES)
        entry = _about(data, by_digest)
        if entry is None:
            raise VerificationError(
                "not a reproduction statement about a receipt of this catalog",
                file=path,
                check="reproduction",
            )
        problems = []
        for key in keys:
            try:
                predicate = verify_reproduction(data, entry, key, root, file=path).predicate
            except VerificationError as exc:
                problems.append(exc.summary())
                continue
            digest = hashlib.sha256(data).hexdigest()
            shown.setdefault(entry.bundle_name, []).append(
                Shown(
                    name=predicate.reproducer.name,
                    keyid=predicate.reproducer.keyid,
                    date=predicate.issuedAt[:10],
                    reproduced=predicate.reproduced,
                    n=predicate.n,
                    label=predicate.label,
                    same_model=predicate.same_model,
                    file=f"reproduction-{digest[:16]}.json",
                    data=data,
                )
            )
            break
        else:
            raise VerificationError(
                f"no pinned reproducer key verifies it: {'; '.join(problems)}",
                file=path,
                check="reproduction",
            )
    return shown
