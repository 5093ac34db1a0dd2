"""Verify a receipt bundle against a pinned trust root (DESIGN §6, the algorithm verify.js shares).

Steps, in order; the first failing step stops verification and raises `VerificationError` carrying
the report so far (a failed check cannot be ignored by accident):

 1. envelope    strict DSSE parse (see receipts.dsse)
 2. signatures  each signature against the trusted key its keyid names (crypto only)
 3. statement   parse the *verified bytes* (never re-serialised): ``_type``, ``predicateType``
 4. schema      the statement as its typed format (``receipts.formats.Statement``, held to
                schema/statement by tests/receipts/test_formats.py), and ``issuedAt`` a real instant
 5. trust       keys usable at ``issuedAt`` (status, window), claimed by the predicate, >= threshold
 6. identity    card name/version = statement = bundle folder (or ``expect``)
 7. subjects    unique names, sha256 present, every file subject present with its digest
 8. bindings    card file = predicate card; results ↔ examples, pack, student digest; manifest root;
                an overlap check (overlap.json) adds up and is about a signed run's pack (by digest)
                (each signed results, footprint and manifest parsed once, as its typed format)
    numbers     every signed number re-derived from the signed evidence (not with --no-rederive)
                (receipts.evidence): each run's results from its examples log, the statement's
                summaries, gate and quantization table
 9. weights     recomputed from the given folder/file (else "not checked")
    model.sig   with --weights: an OpenSSF model_signing signature (the given file, else the folder's
                ``model.sig`` if present) by a trusted key over exactly the signed manifest (modelsig)
10. pack        recomputed from the given pack folder (else "not checked")
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from receipts.binding import evidence_problems, publisher_problem
from receipts.digests import digest_weights, sha256_bytes
from receipts.documents import parse_json, parse_yaml, read_bytes
from receipts.dsse import MAX_ENVELOPE_BYTES, Envelope, check_signatures, parse_envelope
from receipts.errors import InputError, ReceiptsError, SchemaError, UsageError, VerificationError
from receipts.evidence import SignedDocument
from receipts.failure_modes import SignedPack, binding_problems, signed_packs
from receipts.keys import PublicKey
from receipts.paths import name_problem, read_regular, tree_files
from receipts.sign import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE
from receipts.trust import TrustRoot, parse_time
from receipts.verified import Check, Report, VerifiedReceipt

if TYPE_CHECKING:
    from receipts.formats import Overlap, Results, Statement, WeightsManifest
    from receipts.formats._base import Document
    from receipts.formats.statement import Predicate, Subject

_D = TypeVar("_D", bound="Document")

__all__ = ["Check", "Report", "VerifiedReceipt", "find_receipts", "verify_many", "verify_receipt"]

CLOCK_SKEW = timedelta(minutes=5)
FILE_KINDS = frozenset(
    {"card", "results", "examples", "footprint", "weights-manifest", "overlap", "pack-manifest", "pack-file"}
)
RECEIPT_FILE = "receipt.json"
MAX_SUBJECT_BYTES = 1024 * 1024 * 1024
"""The largest subject file read (an examples log of a large run is tens of MB; 1 GiB is far above)."""


class _Run:
    """Accumulates checks; ``fail`` raises with the report attached."""

    def __init__(self, report: Report, file: Path):
        self.report, self.file = report, file

    def ok(self, name: str, detail: str) -> None:
        self.report.checks.append(Check(name, "pass", detail))

    def skip(self, name: str, detail: str) -> None:
        self.report.checks.append(Check(name, "not checked", detail))

    def fail(self, name: str, detail: str, hint: str = "") -> VerificationError:
        self.report.checks.append(Check(name, "fail", detail))
        error = VerificationError(detail, check=name, file=self.file, hint=hint)
        error.report = self.report
        return error


def _check_subjects(run: _Run, bundle: Path, subjects: Sequence[Subject]) -> dict[str, bytes]:
    names = [s.name for s in subjects]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise run.fail("subjects", f"duplicate subject names: {duplicates}")
    kinds = [s.annotations.kind for s in subjects]
    if kinds.count("card") != 1:
        raise run.fail("subjects", f"expected exactly one card subject, found {kinds.count('card')}")
    for kind in ("weights", "weights-manifest", "overlap"):
        if kinds.count(kind) > 1:
            raise run.fail("subjects", f"more than one {kind} subject")
    if ("weights" in kinds) != ("weights-manifest" in kinds):
        raise run.fail("subjects", "a weights subject needs its weights manifest and vice versa")
    files: dict[str, bytes] = {}
    problems = []
    for subject in subjects:
        name, kind, sha256 = subject.name, subject.annotations.kind, subject.digest.sha256
        if sha256 is None:
            raise run.fail("subjects", f"{name}: no sha256 digest (only sha256 is supported)")
        if kind not in FILE_KINDS:
            continue
        problem = name_problem(name) or _layout_problem(kind, name)
        if problem is not None:
            raise run.fail(
                "subjects",
                f"subject {name!r} {problem}",
                hint="subject names are safe relative POSIX paths, spelled one way, in the bundle layout "
                "receipts sign writes",
            )
        try:
            data = read_regular(bundle, name, limit=MAX_SUBJECT_BYTES)
        except InputError as exc:
            problems.append(exc.message)
            continue
        if sha256_bytes(data) != sha256:
            problems.append(f"{name}: digest mismatch (file modified or swapped)")
            continue
        files[name] = data
    if problems:
        raise run.fail("subjects", "; ".join(problems), hint="the files are not the ones that were signed")
    run.ok("subjects", f"{len(files)} file(s) match their signed digests")
    return files


_LAYOUT = {
    "card": re.compile(r"card\.yaml"),
    "weights-manifest": re.compile(r"weights\.manifest\.json"),
    "results": re.compile(r"runs/[A-Za-z0-9._@+-]+/results\.json"),
    "examples": re.compile(r"runs/[A-Za-z0-9._@+-]+/examples\.jsonl"),
    "footprint": re.compile(r"footprints/[A-Za-z0-9._@+-]+\.json"),
    "overlap": re.compile(r"overlap\.json"),
    "pack-manifest": re.compile(r"packs/[a-z0-9][a-z0-9._-]*\.manifest\.json"),
    # a published pack's data files only (receipts.packfiles.DATA_SUFFIXES): never a page or a script
    "pack-file": re.compile(
        r"packs/[a-z0-9][a-z0-9._-]*(/[A-Za-z0-9._@+-]+)+\.(yaml|yml|json|jsonl|txt|csv|tsv)"
    ),
}
"""Where each kind of subject lives in a bundle (receipts.sign): only data files, never a page or a script."""


def _layout_problem(kind: str, name: str) -> str | None:
    """Why a subject of ``kind`` may not be called ``name`` (a signed ``.html`` would be published live)."""
    pattern = _LAYOUT.get(kind)
    if pattern is not None and not pattern.fullmatch(name):
        return f"is not where a {kind} subject lives ({pattern.pattern})"
    if name.rsplit("/", 1)[-1] == RECEIPT_FILE:
        return "would be found as a receipt of its own"
    return None


def _check_bundle(run: _Run, bundle: Path, files: Mapping[str, bytes]) -> None:
    """A bundle is exactly its signed subjects (DESIGN §11): anything else in the folder fails."""
    regular, other = tree_files(bundle)
    unsigned = [n for n in regular if n not in files and n != RECEIPT_FILE]
    if other or unsigned:
        listed = [f"{n} (not a regular file)" for n in other] + unsigned
        shown = ", ".join(listed[:10]) + (f" and {len(listed) - 10} more" if len(listed) > 10 else "")
        raise run.fail(
            "bundle",
            f"files the receipt does not sign: {shown}",
            hint="a bundle holds receipt.json and its signed subjects only; remove anything else",
        )
    run.ok("bundle", f"holds receipt.json and its {len(files)} signed file(s), nothing else")


def _by_kind(subjects: Sequence[Subject], kind: str) -> Iterator[Subject]:
    return (s for s in subjects if s.annotations.kind == kind)


@dataclass(frozen=True)
class _Evidence:
    """The signed documents `_check_bindings` parsed: kept, so nothing is parsed twice."""

    results: tuple[SignedDocument, ...]
    footprints: tuple[SignedDocument, ...]
    manifest: WeightsManifest | None
    overlap: Overlap | None = None


def _parse(run: _Run, model: type[_D], files: Mapping[str, bytes], name: str) -> SignedDocument:
    """A signed file as written and as its typed format; any problem fails the bindings check naming it."""
    try:
        value = parse_json(files[name], file=name)
        return SignedDocument(name, value, model.parse(value, file=name))
    except ReceiptsError as exc:
        raise run.fail("bindings", f"{name}: {exc.summary()}") from None


def _run_name_problem(pack_id: str, results: str, examples: str, seen: dict[str, str]) -> str | None:
    """Why a run entry is not where ``receipts sign`` puts it (``runs/<pack id>/``), or repeats a pack.

    Failure-mode placeholders, item checks, the quantization table and the viewer are keyed by pack id:
    two runs of one pack would let the last one win, so a statement holds one run per pack.
    """
    if pack_id in seen:
        return f"two runs of pack {pack_id}: {seen[pack_id]} and {results} (one run per pack)"
    seen[pack_id] = results
    folder = f"runs/{pack_id}"
    if (results, examples) != (f"{folder}/results.json", f"{folder}/examples.jsonl"):
        return (
            f"run {results} (examples {examples}) of pack {pack_id} is not named "
            f"{folder}/results.json and {folder}/examples.jsonl"
        )
    return None


def _check_runs(run: _Run, statement: Statement, files: Mapping[str, bytes]) -> list[SignedDocument]:
    from receipts.formats import Results

    packs = {s.name: s.digest.sha256 for s in statement.subjects("pack")}
    evaluated = []
    seen: dict[str, str] = {}
    for entry in statement.predicate.runs:
        results_name, examples_name = entry.results, entry.examples
        problem = _run_name_problem(entry.pack.id, results_name, examples_name, seen)
        if problem:
            raise run.fail(
                "bindings", problem, hint="receipts sign writes one run per pack, under runs/<pack id>/"
            )
        if results_name not in files or examples_name not in files:
            raise run.fail("bindings", f"run {results_name} is not among the signed subjects")
        document = _parse(run, Results, files, results_name)
        results: Results = document.typed
        if sha256_bytes(files[examples_name]) != results.examples.sha256:
            raise run.fail("bindings", f"{examples_name} is not the examples log {results_name} names")
        pack = results.pack
        signed = packs.get(f"pack:{pack.id}@{pack.version}")
        if pack != entry.pack or signed != pack.digest.removeprefix("sha256:"):
            raise run.fail("bindings", f"{results_name}: pack identity differs from the signed pack subject")
        evaluated.append(document)
    return evaluated


def _check_overlap(
    run: _Run, statement: Statement, files: Mapping[str, bytes], packs: Mapping[str, SignedPack]
) -> Overlap | None:
    """The signed overlap check, if any: schema, counts, pack among the signed runs', held to that run.

    Its listed items and ``items_checked`` are held to the run's examples log (receipts.overlap.run_problems).
    """
    from receipts.formats import Overlap
    from receipts.overlap import overlap_problems, run_problems

    subject = next(_by_kind(statement.subject, "overlap"), None)
    if subject is None:
        return None
    document: Overlap = _parse(run, Overlap, files, subject.name).typed
    problems = overlap_problems(document, [entry.pack for entry in statement.predicate.runs])
    signed = packs.get(document.pack.id)
    if not problems and signed is not None:
        problems = run_problems(document, signed.items, (signed.results.settings or {}).get("limit"))
    if problems:
        raise run.fail("bindings", f"{subject.name}: " + "; ".join(problems))
    return document


def _check_bindings(
    run: _Run, statement: Statement, signed_card: object, files: Mapping[str, bytes]
) -> _Evidence:
    """Cross-file consistency; returns the runs' results, the footprints and the weights manifest.

    ``signed_card`` is the predicate's card as the verified payload wrote it: the card file must parse to
    exactly that JSON value.
    """
    from receipts.formats import Footprint, WeightsManifest

    card_name = next(_by_kind(statement.subject, "card")).name
    try:
        card = parse_yaml(files[card_name], file=card_name)
    except InputError as exc:
        raise run.fail("bindings", f"card: {exc.message}") from None
    if card != signed_card:
        raise run.fail("bindings", "the card file differs from the card inside the signed statement")
    evaluated = _check_runs(run, statement, files)
    measured = []
    for entry in statement.predicate.footprints:
        if entry.file not in files:
            raise run.fail("bindings", f"footprint {entry.file} is not among the signed subjects")
        measured.append(_parse(run, Footprint, files, entry.file))
    weights = next(_by_kind(statement.subject, "weights"), None)
    root = f"sha256:{weights.digest.sha256}" if weights else None
    contradictions = evidence_problems(
        statement.predicate.card,
        [(d.name, d.typed) for d in evaluated],
        [(d.name, d.typed) for d in measured],
        root,
    )
    if contradictions:
        raise run.fail(
            "bindings",
            "the card contradicts the signed evidence: " + "; ".join(contradictions),
            hint="the card must name the models that were evaluated (or leave a role unstated)",
        )
    packs = _check_failure_modes(run, statement, evaluated, files)
    manifest = None
    if weights is not None:
        manifest_name = next(_by_kind(statement.subject, "weights-manifest")).name
        manifest = _parse(run, WeightsManifest, files, manifest_name).typed
        from receipts.digests import root_of

        total = root_of({k: v.removeprefix("sha256:") for k, v in manifest.files.items()})
        if manifest.root != f"sha256:{total}" or total != weights.digest.sha256:
            raise run.fail("bindings", "weights manifest does not add up to the signed weights digest")
    from receipts.packfiles import published_judge_problems, published_pack_problem

    problem = published_pack_problem(statement, files)
    if problem:
        raise run.fail("bindings", problem, hint="the published pack is not the one the runs used; re-sign")
    judged = published_judge_problems(files, [(d.name, d.typed) for d in evaluated])
    if judged:
        raise run.fail("bindings", "; ".join(judged), hint="a run's judge set-up must be its pack's; re-run")
    overlap = _check_overlap(run, statement, files, packs)
    bound = "pack, weights manifest and overlap check" if overlap else "pack and weights manifest"
    run.ok("bindings", f"card, runs, footprints, {bound} agree with the statement")
    return _Evidence(tuple(evaluated), tuple(measured), manifest, overlap)


def _check_licence(run: _Run, statement: Statement, predicate: Mapping[str, Any]) -> None:
    """The licence terms recomputed from the signed card with the signed table version (receipts.licences)."""
    from receipts.licence_claims import check_record

    try:
        run.ok("licence", check_record(statement.predicate.card, predicate.get("licence")))
    except VerificationError as exc:
        raise run.fail("licence", exc.message, exc.hint) from None


def _check_failure_modes(
    run: _Run, statement: Statement, evaluated: Sequence[SignedDocument], files: Mapping[str, bytes]
) -> dict[str, SignedPack]:
    """Failure modes name only what the signed runs hold, as ``sign`` requires (a hand-made statement too).

    Returns the signed runs by pack id (`receipts.failure_modes.signed_packs`).
    """
    runs = statement.predicate.runs
    logs = [files[e.examples] for e in runs]
    try:
        packs = signed_packs([(e.results, e.examples) for e in runs], [d.typed for d in evaluated], logs)
    except InputError as exc:
        raise run.fail("bindings", exc.summary()) from None
    problems = binding_problems(statement.predicate.card, packs)
    if problems:
        found = "; ".join(f"card {path}: {problem}" for path, problem in problems)
        raise run.fail(
            "bindings",
            f"the card's failure modes are not bound to the signed runs: {found}",
            hint="re-sign with `receipts sign`, which refuses such a card",
        )
    return packs


def _check_numbers(
    run: _Run,
    statement: Statement,
    predicate: Mapping[str, Any],
    evidence: _Evidence,
    files: Mapping[str, bytes],
) -> None:
    """The signed numbers re-derived from the signed evidence (receipts.evidence)."""
    from receipts.evidence import number_problems

    runs = [
        (d, files[entry.examples])
        for entry, d in zip(statement.predicate.runs, evidence.results, strict=True)
    ]
    problems = number_problems(predicate, statement.predicate.card, runs, evidence.footprints)
    if problems:
        raise run.fail(
            "numbers",
            "signed numbers that do not follow from the signed evidence: " + "; ".join(problems),
            hint="results.json, each footprint's statistics and summary, the statement's summaries, gate and "
            "quantization must be what the signed examples and samples give; re-run or re-bench (or re-sign "
            "from the unedited files)",
        )
    rows = "examples log" if len(runs) == 1 else "examples logs"
    run.ok("numbers", f"re-derived from {len(runs)} {rows} and {len(evidence.footprints)} footprint(s)")


def _diff_weights(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    missing = {k: v for k, v in expected.items() if k not in actual}
    extra = {k: v for k, v in actual.items() if k not in expected}
    problems = []
    for name, digest in sorted(missing.items()):
        moved = [n for n, d in extra.items() if d == digest]
        problems.append(f"{name} renamed/moved to {moved[0]}" if moved else f"{name} missing")
        if moved:
            extra.pop(moved[0])
    problems += [f"{name} not in the signed manifest" for name in sorted(extra)]
    problems += [
        f"{name} modified" for name in sorted(expected) if name in actual and actual[name] != expected[name]
    ]
    return problems


def _check_weights(run: _Run, manifest: WeightsManifest | None, weights: Path | None) -> None:
    if weights is None:
        run.skip("weights", "not checked (pass --weights DIR|FILE to check the model files)")
        return
    if manifest is None:
        raise run.fail("weights", "the receipt binds no weights, but --weights was given")
    try:
        actual = digest_weights(weights)
    except InputError as exc:
        raise run.fail("weights", exc.summary(), hint=exc.hint) from None
    expected = {k: v.removeprefix("sha256:") for k, v in manifest.files.items()}
    problems = _diff_weights(expected, actual.files)
    if problems or f"sha256:{actual.root}" != manifest.root:
        raise run.fail("weights", "; ".join(problems) or "root digest differs")
    run.ok("weights", f"{len(actual.files)} file(s), root sha256:{actual.root}")


def _check_model_sig(
    run: _Run, keys: Mapping[str, PublicKey], manifest: WeightsManifest | None, sig: Path | None
) -> None:
    from receipts.modelsig import MAX_MODEL_SIG_BYTES, check_model_sig

    if sig is None:
        return
    if manifest is None:
        raise run.fail("model.sig", "the receipt binds no weights to check model.sig against")
    try:
        data = read_bytes(sig, what="model signature", limit=MAX_MODEL_SIG_BYTES)
        run.ok("model.sig", check_model_sig(data, keys, manifest.files, manifest.root, file=sig))
    except (InputError, VerificationError) as exc:
        raise run.fail("model.sig", exc.summary(), hint=exc.hint) from None


def _check_pack(run: _Run, subjects: Sequence[Subject], pack: Path | None, evidence: _Evidence) -> None:
    from receipts.packfiles import judge_problems, read_pack

    packs = list(_by_kind(subjects, "pack"))
    if pack is None:
        detail = "not checked (pass --pack DIR)" if packs else "not checked (no run attached)"
        run.skip("pack", detail)
        return
    try:
        files = read_pack(pack)
    except InputError as exc:  # a missing folder, or a symbolic link in it (refused, as for weights)
        raise run.fail("pack", exc.summary(), hint=exc.hint) from None
    actual = files.root
    if not any(s.digest.sha256 == actual for s in packs):
        raise run.fail("pack", f"pack folder digests to sha256:{actual}, which no run used")
    judged = judge_problems(files, [(d.name, d.typed) for d in evidence.results])
    if judged:
        raise run.fail("pack", "; ".join(judged), hint="a run's judge set-up must be its pack's; re-run")
    run.ok("pack", f"sha256:{actual}")


def _check_trust(
    run: _Run,
    root: TrustRoot,
    valid: set[str],
    predicate: Predicate,
    issued: datetime,
    now: datetime,
    allow_retired: bool,
) -> None:
    if issued > now + CLOCK_SKEW:
        raise run.fail("trust", f"issuedAt {predicate.issuedAt} is in the future")
    claimed = set(predicate.signer.keyids)
    reasons, counted = [], set()
    for keyid in sorted(valid):
        reason = root.keys[keyid].unusable_reason(issued, allow_retired=allow_retired)
        if reason is None and keyid not in claimed:
            reason = f"key {keyid} signed, but the statement claims {sorted(claimed)}"
        if reason:
            reasons.append(reason)
        else:
            counted.add(keyid)
    if len(counted) < root.threshold:
        detail = f"{len(counted)} of {root.threshold} required trusted key(s)"
        raise run.fail("trust", "; ".join([detail, *reasons]))
    problem = publisher_problem(predicate.card.model.publisher, root.publisher)
    if problem is None and predicate.model.publisher != predicate.card.model.publisher:
        problem = "the statement's publisher differs from its card's"
    if problem:
        raise run.fail("trust", problem, hint="verify with the trust root of the publisher the card names")
    run.ok(
        "trust",
        f"{len(counted)} trusted key(s) of {root.publisher} v{root.version} (threshold {root.threshold})",
    )


def _check_envelope(run: _Run, receipt: Path, root: TrustRoot) -> tuple[bytes, Envelope, set[str]]:
    """Steps 1-2: the envelope bytes, the parsed envelope and the keyids whose signatures are valid."""
    try:  # a regular file, never through a link, its size checked before it is read (no FIFO, no /dev/zero)
        data = read_regular(receipt.parent, receipt.name, limit=MAX_ENVELOPE_BYTES)
    except InputError as exc:
        raise run.fail("envelope", exc.message) from None
    try:
        envelope = parse_envelope(data, file=receipt)
    except VerificationError as exc:
        raise run.fail("envelope", exc.message) from None
    if envelope.payload_type != PAYLOAD_TYPE:
        raise run.fail("envelope", f"payloadType is {envelope.payload_type!r}, expected {PAYLOAD_TYPE!r}")
    run.ok("envelope", f"DSSE, {len(envelope.signatures)} signature(s)")

    checks = check_signatures(envelope, root.public_keys())
    valid = {c.keyid for c in checks if c.status == "valid"}
    summary = ", ".join(f"#{c.index} {c.status}" for c in checks)
    if not valid:
        raise run.fail("signatures", f"no valid signature by a key of the trust root ({summary})")
    run.ok("signatures", summary)
    return data, envelope, valid


def _check_statement(run: _Run, receipt: Path, payload: bytes) -> tuple[Statement, dict[str, Any], datetime]:
    """Steps 3-4: the statement parsed from the verified payload bytes, and its ``issuedAt``.

    The statement is also returned as the JSON value the payload wrote: the card file must equal its card,
    and the numbers are re-derived against the values as signed.
    """
    from receipts.formats import Statement

    try:
        value = parse_json(payload, file=f"{receipt} (payload)")
    except InputError as exc:
        raise run.fail("statement", exc.message) from None
    if not isinstance(value, dict) or value.get("_type") != STATEMENT_TYPE:
        raise run.fail("statement", f"not an in-toto Statement v1 (_type must be {STATEMENT_TYPE})")
    if value.get("predicateType") != PREDICATE_TYPE:
        raise run.fail("statement", f"predicateType {value.get('predicateType')!r} is not {PREDICATE_TYPE}")
    run.ok("statement", "in-toto Statement v1, distillation receipt v1")

    try:
        statement = Statement.parse(value, file=f"{receipt} (statement)")
    except SchemaError as exc:
        first = exc.violations[0]
        raise run.fail(
            "schema", f"{len(exc.violations)} problem(s), first {first.path}: {first.message}"
        ) from None
    try:
        # The schema's format check already refuses 2026-02-30T12:00:00Z; parsing is what gives the instant.
        issued = parse_time(statement.predicate.issuedAt)
    except ValueError as exc:
        raise run.fail("schema", f"predicate.issuedAt is not a valid UTC time: {exc}") from None
    run.ok("schema", "statement matches schema/statement")
    return statement, value, issued


def _check_identity(run: _Run, predicate: Predicate, location: str) -> None:
    """Step 6: card name/version = statement = where the receipt was found (or ``--expect``)."""
    model, card_model = predicate.model, predicate.card.model
    if (card_model.name, card_model.version) != (model.name, model.version):
        raise run.fail("identity", "card name/version differ from the statement's")
    if location != run.report.model:
        raise run.fail(
            "identity",
            f"receipt is for {run.report.model} but was served as {location}",
            hint="an older or different receipt was substituted (rollback / mix-and-match)",
        )
    run.ok("identity", run.report.model)


def verify_receipt(
    receipt: Path,
    root: TrustRoot,
    *,
    weights: Path | None = None,
    pack: Path | None = None,
    allow_retired: bool = False,
    expect: str | None = None,
    now: datetime | None = None,
    model_sig: Path | None = None,
    rederive: bool = True,
) -> VerifiedReceipt:
    """Verify one receipt (``receipt.json`` inside its bundle folder, or the folder).

    ``model_sig`` (default: ``weights/model.sig`` when that exists) is checked as an OpenSSF
    model_signing signature by a key usable at ``issuedAt`` over exactly the signed weights manifest.
    Every signed number is re-derived from the signed evidence (receipts.evidence, DESIGN §11);
    ``rederive=False`` skips that (``--no-rederive``: the report then has no "numbers" check).

    Returns:
        What verified: the bytes read, the statement and the signed documents parsed once, and the checks
        (each passed or "not checked").

    Raises:
        VerificationError: a check failed; ``error.report`` holds the report up to that check.
        InputError: ``receipt`` itself does not exist.
    """
    if receipt.is_dir() and not receipt.is_symlink():
        receipt = receipt / RECEIPT_FILE
    bundle = receipt.parent
    report = Report(receipt=str(receipt))
    run = _Run(report, receipt)
    if not receipt.exists() and not receipt.is_symlink():
        raise InputError("receipt does not exist", file=receipt, hint="check the path")
    data, envelope, valid = _check_envelope(run, receipt, root)
    statement, value, issued = _check_statement(run, receipt, envelope.payload)
    predicate = statement.predicate
    report.model = f"{predicate.model.name}@{predicate.model.version}"
    _check_trust(run, root, valid, predicate, issued, now or datetime.now(UTC), allow_retired)
    _check_identity(run, predicate, expect or bundle.name)

    files = _check_subjects(run, bundle, statement.subject)
    _check_bundle(run, bundle, files)
    evidence = _check_bindings(run, statement, value["predicate"]["card"], files)
    _check_licence(run, statement, value["predicate"])
    if rederive:
        _check_numbers(run, statement, value["predicate"], evidence, files)
    _check_weights(run, evidence.manifest, weights)
    if model_sig is None and weights is not None and (weights / "model.sig").is_file():
        model_sig = weights / "model.sig"
    usable = {
        k: t.public
        for k, t in root.keys.items()
        if t.unusable_reason(issued, allow_retired=allow_retired) is None
    }
    _check_model_sig(run, usable, evidence.manifest, model_sig)
    _check_pack(run, statement.subject, pack, evidence)
    verified = VerifiedReceipt(
        path=receipt,
        envelope=data,
        statement=statement,
        files=files,
        results=tuple(d.typed for d in evidence.results),
        footprints=tuple(d.typed for d in evidence.footprints),
        manifest=evidence.manifest,
        trust_root_sha256=root.sha256,
        checks=tuple(report.checks),
        overlap=evidence.overlap,
    )
    report.verified = verified
    return verified


def verify_many(
    receipts: Sequence[Path],
    root: TrustRoot,
    *,
    weights: Path | None = None,
    pack: Path | None = None,
    expect: str | None = None,
    **options: Any,
) -> list[Report]:
    """Verify each receipt; a receipt that fails comes back as its failing report instead of raising.

    ``weights``, ``pack`` and ``expect`` describe one model, so they need exactly one receipt; other
    ``options`` (``allow_retired``, ``model_sig``) go to `verify_receipt` as given.
    """
    if (weights or pack or expect) and len(receipts) > 1:
        raise UsageError("--weights/--pack/--expect apply to one receipt", hint="point at one receipt folder")
    reports = []
    for receipt in receipts:
        try:
            verified = verify_receipt(receipt, root, weights=weights, pack=pack, expect=expect, **options)
        except VerificationError as exc:
            reports.append(exc.report)
            continue
        reports.append(Report(str(verified.path), list(verified.checks), verified.bundle_name, verified))
    return reports


def find_receipts(path: Path) -> list[Path]:
    """The receipt files under ``path``: itself if a file, else every ``receipt.json`` below it.

    Folders are walked without following symbolic links, so a link in a folder of receipts cannot pull a
    bundle (or a secret) from elsewhere into a catalog.

    Raises:
        InputError: the path does not exist or holds no receipt.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("does not exist", file=path, hint="pass a receipt.json or a folder of receipts")
    found = []
    for here, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        if RECEIPT_FILE in files:
            found.append(Path(here) / RECEIPT_FILE)
    if not found:
        raise InputError("no receipt.json found in this folder", file=path)
    return sorted(found)
