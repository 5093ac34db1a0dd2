"""Reproduction statements: a third party's signed word that a receipt's items re-executed as signed.

``receipts verify RECEIPT --rerun N --sign-with KEY --out FILE`` writes one: a DSSE envelope around an
in-toto Statement (`PREDICATE_TYPE`, ``schema/reproduction.schema.json``) whose one subject is the receipt's
``receipt.json`` by the sha256 of its bytes, and whose predicate says who reproduced it (name, keyid), when,
on which model (digest or endpoint and a label, no local path: `public_identity`) and packs, N, the seed,
the sampled items, how many reproduced, bit for bit or within which tolerance, and the host's threads,
dtype and library versions.

Trust: a reproducer is not the publisher. `verify_reproduction` takes the reproducer's public key pinned by
the caller (``--reproducer-key PUB``), never a key from the statement or the publisher's trust root, and
refuses a statement signed by one of the publisher's own keys (that is not a third-party reproduction).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from receipts.dsse import check_signatures, parse_envelope, sign_envelope
from receipts.errors import InputError, SchemaError, VerificationError

if TYPE_CHECKING:
    from receipts.formats import ReproductionStatement
    from receipts.keys import PrivateKey, PublicKey
    from receipts.trust import TrustRoot
    from receipts.verify import VerifiedReceipt

__all__ = [
    "PREDICATE_TYPE",
    "public_identity",
    "reproduction_statement",
    "sign_reproduction",
    "verify_reproduction",
]

PREDICATE_TYPE = "https://receipts.dev/predicate/reproduction/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

_OUTCOME_KEYS = (
    "role",
    "same_model",
    "packs",
    "asked",
    "seed",
    "n",
    "reproduced",
    "mode",
    "tolerance",
    "label",
)


_PUBLIC_IDENTITY = (
    "kind",
    "digest",
    "endpoint",
    "storage_quant",
    "compute_dtype",
    "runtime_quant",
    "tokenizer",
    "params",
)
"""What a statement says of the model that ran: what identifies its outputs, not where it sat on disk."""


def public_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """The rerun model's identity without local paths: its digest (or endpoint), dtype and a plain label.

    The ``spec`` the reproducer typed (``hf:/home/alice/models/student``) names a folder on their machine,
    and a backend's ``extra`` may too (a replay file's metadata); a signed, published statement keeps
    neither. ``label`` says what kind of model it was (``hf weights``, ``openai endpoint``) in their place.
    """
    kept = {k: identity[k] for k in _PUBLIC_IDENTITY if identity.get(k) is not None}
    spec = identity.get("spec")
    kind = kept.get("kind") or (spec.partition(":")[0] if isinstance(spec, str) and ":" in spec else "model")
    kept["label"] = f"{kind} {'weights' if kept.get('digest') else 'endpoint'}"
    return kept


def reproduction_statement(
    verified: VerifiedReceipt, outcome: Mapping[str, Any], *, name: str, keyid: str, issued_at: datetime
) -> dict[str, Any]:
    """The statement for a rerun ``outcome`` (``Reproduction.as_json()`` of `runner.eval.rerun`).

    The model is named by `public_identity`: no local path of the reproducer's goes into it.
    """
    from receipts.trust import format_time

    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {
                "name": f"{verified.bundle_name}/receipt.json",
                "digest": {"sha256": hashlib.sha256(verified.envelope).hexdigest()},
            }
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "receipt": {
                "name": verified.name,
                "version": verified.version,
                "publisher": verified.predicate.model.publisher,
            },
            "reproducer": {"name": name, "keyid": keyid},
            "issuedAt": format_time(issued_at),
            **{key: outcome[key] for key in _OUTCOME_KEYS},
            "model": public_identity(outcome["identity"]),
            "host": outcome["host"],
            "items": outcome["items"],
        },
    }


def sign_reproduction(statement: Mapping[str, Any], key: PrivateKey) -> bytes:
    """The statement (validated against its schema) as RFC 8785 bytes in a DSSE envelope signed by ``key``.

    Raises:
        SchemaError: the statement does not match ``schema/reproduction.schema.json``.
    """
    import rfc8785

    from receipts.formats import ReproductionStatement

    ReproductionStatement.parse(statement, file="<reproduction statement>")
    return sign_envelope(PAYLOAD_TYPE, rfc8785.dumps(dict(statement)), [key])


def verify_reproduction(
    data: bytes, verified: VerifiedReceipt, reproducer: PublicKey, root: TrustRoot, *, file: object
) -> ReproductionStatement:
    """A reproduction statement signed by the pinned ``reproducer`` key about exactly ``verified``.

    Returns the statement parsed from the verified payload bytes.

    Raises:
        VerificationError: not a DSSE envelope, no valid signature by the reproducer key, signed by one of
            the publisher's keys, not a reproduction statement, or about another receipt (its envelope
            bytes, or its name and version).
    """
    from receipts.formats import ReproductionStatement

    envelope = parse_envelope(data, file=file)
    checks = check_signatures(envelope, {reproducer.keyid: reproducer})
    if not any(c.status == "valid" for c in checks):
        raise VerificationError(
            f"no valid signature by the reproducer key {reproducer.keyid}",
            file=file,
            hint="pin the key the reproducer published (--reproducer-key PUB); was the file changed?",
        )
    if reproducer.keyid in root.keys:
        raise VerificationError(
            f"the reproducer key {reproducer.keyid} is one of the publisher's keys: "
            "that is the publisher's own rerun, not a third-party reproduction",
            file=file,
        )
    if envelope.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"payloadType {envelope.payload_type!r} is not {PAYLOAD_TYPE}", file=file)
    try:
        statement = ReproductionStatement.from_json_bytes(envelope.payload, file=file)
    except (SchemaError, InputError) as exc:
        raise VerificationError(f"not a reproduction statement: {exc.summary()}", file=file) from None
    subject = statement.subject[0]
    digest = hashlib.sha256(verified.envelope).hexdigest()
    if subject.digest.sha256 != digest:
        raise VerificationError(
            f"the statement is about the receipt with sha256 {subject.digest.sha256}, "
            f"not this one ({digest})",
            file=file,
            hint="check it against the receipt it names",
        )
    named = statement.predicate.receipt
    if (named.name, named.version) != (verified.name, verified.version):
        raise VerificationError(
            f"the statement names {named.name}@{named.version}, not {verified.bundle_name}", file=file
        )
    if statement.predicate.reproducer.keyid != reproducer.keyid:
        raise VerificationError(
            "the statement names another reproducer key than the one that signed it", file=file
        )
    p = statement.predicate
    if not 1 <= p.n == len(p.items) or p.reproduced != sum(1 for i in p.items if i.reproduced):
        raise VerificationError(
            f"the statement's counts do not add up: {p.reproduced}/{p.n} over {len(p.items)} item(s), "
            f"{sum(1 for i in p.items if i.reproduced)} of them reproduced",
            file=file,
        )
    return statement
