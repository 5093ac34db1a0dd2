"""Reproduction statements on the card pages: "reproduced by X on DATE: 20/20", verified at build.

``receipts render|build --reproductions DIR --reproducer-key NAME=PUB`` (the mkdocs plugin's
``reproductions`` and ``reproducer_keys: [NAME=PUB, ...]``): every ``*.json`` in DIR must be a reproduction
statement (`receipts.reproduction`) signed by one of the pinned reproducer keys — never a publisher's key —
about a receipt of this catalog, else the build stops. Each card page then shows its reproductions and
publishes the statements beside it.

Who reproduced it is the NAME the catalog operator gave the key that verified the statement: a statement's
own ``reproducer.name`` is whatever its signer typed ("ACME Labs" costs nothing to claim), so the page shows
it only labelled as self-declared.
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

__all__ = [
    "PinnedReproducer",
    "Shown",
    "collect_reproductions",
    "load_reproducer_keys",
    "parse_reproducer_key",
]

MAX_NAME = 100
"""The longest reproducer name a catalog operator may give a key (it is shown in a sentence)."""


@dataclass(frozen=True)
class PinnedReproducer:
    """A reproducer key the catalog operator trusts, and the name the operator gives its holder."""

    name: str
    key: PublicKey


@dataclass(frozen=True)
class Shown:
    """One verified reproduction as a card page shows it."""

    name: str
    """The name the catalog operator pinned the verifying key under (``--reproducer-key NAME=PUB``)."""
    declared_name: str
    """The name the statement gives itself (``reproducer.name``): self-declared, shown as such."""
    keyid: str
    date: str
    reproduced: int
    n: int
    label: str
    same_model: bool
    file: str
    """The statement's file name beside the page."""
    data: bytes


def _control(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def parse_reproducer_key(text: str, *, where: str = "--reproducer-key") -> tuple[str, str]:
    """``NAME=PUB`` into (the name, the key file as given); a bare ``PUB`` is refused.

    The name is who the catalog says reproduced a receipt, so it must come from whoever pins the key: a
    statement's own name is not evidence of anything. Split at the first ``=`` (a name has none).

    Raises:
        UsageError: no ``=``, an empty or blank name or key, a name with control characters or longer
            than `MAX_NAME`.
    """
    name, sep, key = text.partition("=")
    if not sep:
        raise UsageError(
            f"{where} takes NAME=PUB, got {text!r}",
            hint="give the name this catalog shows for the reproducer, then '=', then their public key "
            "file (e.g. 'Example Lab=keys/lab.pub.pem'); the name a statement gives itself is not trusted",
        )
    name = name.strip()
    if not name or not key.strip():
        raise UsageError(f"{where} {text!r}: NAME and PUB must both be given (NAME=PUB)")
    if _control(name) or len(name) > MAX_NAME:
        raise UsageError(
            f"{where} {text!r}: the name must be 1 to {MAX_NAME} characters without control characters"
        )
    return name, key


def load_reproducer_keys(pinned: Sequence[tuple[str, Path]]) -> list[PinnedReproducer]:
    """The pinned reproducer public keys, each under the name the catalog operator gave it.

    Raises:
        KeyFileError: a key file is missing or not a public key.
        UsageError: one key pinned under two names.
    """
    keys = [PinnedReproducer(name, load_public_key(path)) for name, path in pinned]
    names: dict[str, str] = {}
    for p in keys:
        if names.setdefault(p.key.keyid, p.name) != p.name:
            raise UsageError(
                f"the reproducer key {p.key.keyid} is pinned under two names: "
                f"{names[p.key.keyid]!r} and {p.name!r}; give it one"
            )
    return keys


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
    folder: Path, keys: Sequence[PinnedReproducer], entries: Sequence[VerifiedReceipt], root: TrustRoot
) -> dict[str, list[Shown]]:
    """Every statement in ``folder`` verified against ``keys`` and its receipt; by receipt bundle name.

    Each is shown under the name its verifying key was pinned with (`Shown.name`), its own name beside it.

    Raises:
        UsageError: no reproducer key is pinned, or ``folder`` is not a folder.
        VerificationError: a statement is unreadable, signed by no pinned reproducer key (or by a publisher
            key), or about no receipt of this catalog.
    """
    from receipts.dsse import MAX_ENVELOPE_BYTES
    from receipts.paths import read_regular
    from receipts.reproduction import verify_reproduction

    if not keys:
        raise UsageError("--reproductions needs --reproducer-key NAME=PUB (the reproducers you trust)")
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
        for pinned in keys:
            try:
                predicate = verify_reproduction(data, entry, pinned.key, root, file=path).predicate
            except VerificationError as exc:
                problems.append(exc.summary())
                continue
            digest = hashlib.sha256(data).hexdigest()
            shown.setdefault(entry.bundle_name, []).append(
                Shown(
                    name=pinned.name,
                    declared_name=predicate.reproducer.name,
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
