"""Build and sign a receipt bundle: ``<name>@<version>/receipt.json`` plus the files it binds.

Bundle layout (every subject ``name`` is a POSIX path relative to the bundle folder)::

    <name>@<version>/
      receipt.json                 DSSE envelope around the in-toto Statement (RFC 8785 bytes)
      card.yaml                    the publisher's card, byte for byte as given
      weights.manifest.json        per-file digests of the weights (when --weights is given)
      runs/<pack-id>/results.json  each run's results and examples log (when --run is given)
      runs/<pack-id>/examples.jsonl
      footprints/<stem>.json       hardware footprints (when --footprint is given)
      overlap.json                 the eval/corpus overlap check (when --overlap is given; receipts.overlap)
      packs/<pack-id>.manifest.json  a run's pack, published when given with --pack and its licence
      packs/<pack-id>/<path>         permits redistribution (receipts.packfiles)

The weights and the pack are bound by digest (subjects named ``weights`` and ``pack:<id>@<version>``);
they are checked when the verifier is given them. A published pack's files are checked by every verify.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rfc8785

from receipts import gate, licence_claims
from receipts._version import __version__
from receipts.binding import evidence_problems, lineage_problems, matches_teacher
from receipts.digests import FOLDER_RULE, digest_weights, sha256_bytes
from receipts.documents import load_document, read_bytes
from receipts.dsse import check_signatures, parse_envelope, sign_envelope
from receipts.errors import GateError, InputError, UsageError, VerificationError
from receipts.failure_modes import SignedPack, binding_problems, signed_packs
from receipts.keys import PrivateKey
from receipts.output import make_folder
from receipts.paths import name_problem, tree_files
from receipts.quantization import quantization_table
from receipts.trust import format_time

if TYPE_CHECKING:
    from receipts.formats import Card, Footprint, Results
    from receipts.formats.results import ModelIdentity

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Subject",
    "issued_at_default",
    "manifest_bytes",
    "quantization_table",
    "sign_receipt",
    "signed_gate",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://receipts.dev/predicate/distillation-receipt/v1"


@dataclass(frozen=True)
class Subject:
    """One in-toto subject: a file in the bundle, or the weights/pack bound by digest."""

    name: str
    sha256: str
    kind: str
    extra: tuple[tuple[str, str], ...] = ()

    def descriptor(self) -> dict[str, Any]:
        """The in-toto ResourceDescriptor."""
        return {
            "name": self.name,
            "digest": {"sha256": self.sha256},
            "annotations": {"kind": self.kind, **dict(self.extra)},
        }


def issued_at_default() -> datetime:
    """Now, or ``SOURCE_DATE_EPOCH`` when set (reproducible builds)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC)


def manifest_bytes(files: dict[str, str], root: str) -> bytes:
    """RFC 8785 bytes of a weights manifest."""
    from receipts import schemas

    document: dict[str, Any] = {
        "format": schemas.KINDS["weights-manifest"],
        "rule": FOLDER_RULE,
        "root": f"sha256:{root}",
        "files": {name: f"sha256:{digest}" for name, digest in files.items()},
    }
    return bytes(rfc8785.dumps(document))


class _Bundle:
    """Files staged for a bundle, with their subjects."""

    def __init__(self, staging: Path):
        self.staging = staging
        self.subjects: list[Subject] = []

    def add_file(self, name: str, data: bytes, kind: str, **extra: str) -> None:
        problem = name_problem(name)
        if problem is not None:
            raise UsageError(
                f"an input would be stored as {name!r}, which {problem}",
                hint="rename the input file (footprints are stored under their file name)",
            )
        if any(s.name == name for s in self.subjects):
            raise UsageError(f"two inputs would both be stored as {name}", hint="rename one input")
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.subjects.append(Subject(name, sha256_bytes(data), kind, tuple(sorted(extra.items()))))

    def add_digest(self, name: str, sha256: str, kind: str, **extra: str) -> None:
        self.subjects.append(Subject(name, sha256, kind, tuple(sorted(extra.items()))))

    def annotate(self, name: str, **extra: str) -> None:
        for index, subject in enumerate(self.subjects):
            if subject.name == name:
                merged = tuple(sorted({**dict(subject.extra), **extra}.items()))
                self.subjects[index] = Subject(subject.name, subject.sha256, subject.kind, merged)


def _add_packs(bundle: _Bundle, folders: Sequence[Path], run_docs: Sequence[Results], publish: bool) -> None:
    """Each given pack folder: held to a run's pack digest, and published when its licence permits it."""
    from receipts.packfiles import (
        judge_problems,
        manifest_name,
        pack_file_name,
        pack_redistributable,
        read_pack,
    )

    used = {r.pack.digest.removeprefix("sha256:"): r.pack for r in run_docs}
    for folder in folders:
        pack = read_pack(folder)
        ref = used.get(pack.root)
        if ref is None or (ref.id, ref.version) != (pack.id, pack.version):
            raise InputError(
                f"pack folder digests to sha256:{pack.root} ({pack.id}@{pack.version}), which no --run used",
                file=folder,
                hint="pass the pack folder each run was made with (receipts run records its digest)",
            )
        judged = judge_problems(pack, [(f"the {r.pack.id} run", r) for r in run_docs])
        if judged:
            raise InputError(
                "; ".join(judged),
                file=folder,
                hint="a run's judge set-up (rubric, validation, kappa threshold) must be its pack's; re-run",
            )
        subject = f"pack:{pack.id}@{pack.version}"
        allowed, why = pack_redistributable(pack.license)
        if not publish:
            bundle.annotate(subject, published=f"no: signed with --no-pack ({why})")
            continue
        if not allowed:
            bundle.annotate(subject, published=f"no: {why}")
            continue
        manifest = manifest_bytes(dict(pack.digests), pack.root)
        bundle.add_file(manifest_name(pack.id), manifest, "pack-manifest", pack=subject)
        for path, data in pack.published.items():
            bundle.add_file(pack_file_name(pack.id, path), data, "pack-file", pack=subject)
        withheld = (
            f"; not published, bound by the manifest: {', '.join(pack.withheld)}" if pack.withheld else ""
        )
        bundle.annotate(subject, published=f"yes: {why}{withheld}")


def _add_run(bundle: _Bundle, run_dir: Path, docs: list[Results], logs: list[bytes]) -> dict[str, Any]:
    from receipts import schemas
    from receipts.formats import Results

    results_path = run_dir / "results.json"
    results_bytes, value = load_document(results_path, what="results file")
    schemas.validate(value, "results", file=results_path)  # jsonschema's words for a publisher's mistake
    results = Results.parse(value, file=results_path)
    examples_path = run_dir / results.examples.path
    examples_bytes = read_bytes(examples_path, what="examples log")
    if sha256_bytes(examples_bytes) != results.examples.sha256:
        raise InputError(
            "examples log does not match the sha256 recorded in results.json",
            file=examples_path,
            hint="the run folder was edited after the run; re-run it",
        )
    pack = results.pack
    docs.append(results)
    logs.append(examples_bytes)
    folder = f"runs/{pack.id}"
    bundle.add_file(f"{folder}/results.json", results_bytes, "results")
    bundle.add_file(f"{folder}/examples.jsonl", examples_bytes, "examples")
    bundle.add_digest(f"pack:{pack.id}@{pack.version}", pack.digest.removeprefix("sha256:"), "pack")
    return {
        "pack": value["pack"],
        "results": f"{folder}/results.json",
        "examples": f"{folder}/examples.jsonl",
        "summary": value.get("summary", {}),
    }


def _add_footprint(bundle: _Bundle, path: Path, docs: list[Footprint]) -> dict[str, Any]:
    from receipts import schemas
    from receipts.formats import Footprint

    data, value = load_document(path, what="footprint file")
    schemas.validate(value, "footprint", file=path)
    docs.append(Footprint.parse(value, file=path))
    name = f"footprints/{path.stem}.json"
    bundle.add_file(name, data, "footprint")
    return {"file": name, "summary": value["summary"]}


def _add_overlap(bundle: _Bundle, path: Path, runs: Sequence[dict[str, Any]]) -> None:
    """Bind ``receipts overlap``'s output: it must add up and be about a signed run's pack (by digest)."""
    from receipts import schemas
    from receipts.documents import parse_json
    from receipts.formats import Overlap, Results
    from receipts.overlap import consistency_problems, run_problems

    data, value = load_document(path, what="overlap file")
    schemas.validate(value, "overlap", file=path)
    document = Overlap.parse(value, file=path)
    problems = consistency_problems(document)
    if problems:
        raise InputError(
            "the overlap check does not add up: " + "; ".join(problems),
            file=path,
            hint="run `receipts overlap` again; do not edit its output",
        )
    checked = document.pack
    used = [run["pack"] for run in runs]
    entry = next((run for run in runs if run["pack"] == checked.model_dump()), None)
    if entry is None:
        signed = ", ".join(f"{p['id']}@{p['version']} {p['digest']}" for p in used) or "no run at all"
        raise VerificationError(
            f"the overlap check is about {checked.id}@{checked.version} {checked.digest}, but the signed "
            f"runs used {signed}",
            check="bindings",
            hint="run `receipts overlap` on the pack folder the runs evaluated, and sign it with those runs",
        )
    # the run as staged: its results and examples log, the bytes this bundle signs
    results = Results.parse(
        parse_json((bundle.staging / entry["results"]).read_bytes()), file=entry["results"]
    )
    log = (bundle.staging / entry["examples"]).read_bytes()
    items = signed_packs([(entry["results"], entry["examples"])], [results], [log])[checked.id].items
    problems = run_problems(document, items, (results.settings or {}).get("limit"))
    if problems:
        raise InputError(
            f"the overlap check does not hold to the signed run of {checked.id}: " + "; ".join(problems),
            file=path,
            hint="run `receipts overlap` again on the pack the run evaluated; do not edit its output",
        )
    bundle.add_file("overlap.json", data, "overlap")


def _check_evidence(
    card: Card,
    runs: Sequence[dict[str, Any]],
    run_docs: Sequence[Results],
    footprints: Sequence[dict[str, Any]],
    footprint_docs: Sequence[Footprint],
    weights_root: str | None,
) -> None:
    wrong_lineage = lineage_problems([(run["results"], doc) for run, doc in zip(runs, run_docs, strict=True)])
    if wrong_lineage:
        raise InputError(
            "a quantized student is not a quantization of the signed student: " + "; ".join(wrong_lineage),
            hint="evaluate the GGUF files receipts quantize made from the student these runs evaluated, "
            "with that student in the same run",
        )
    problems = evidence_problems(
        card,
        [(run["results"], doc) for run, doc in zip(runs, run_docs, strict=True)],
        [(fp["file"], doc) for fp, doc in zip(footprints, footprint_docs, strict=True)],
        weights_root,
    )
    if problems:
        raise VerificationError(
            "the card contradicts the evidence: " + "; ".join(problems),
            check="bindings",
            hint="sign with the weights that were evaluated, and name in the card the teacher and base the "
            "runs used (or leave them unstated)",
        )


def signed_gate(card: Card, runs: Sequence[Results], footprints: Sequence[Footprint]) -> dict[str, object]:
    """The gate verdict a receipt signs (DESIGN §6, §11), recomputed here rather than copied from a run.

    Per run: the pack's rules (as the run recorded them) overridden or extended by the card's
    ``gate`` section, judged on numbers recomputed from the run's metrics, with ``cost_ratio`` from
    the footprints of the run's student and teacher, or, for a teacher with no footprint, from the
    student's footprint and the price per 1k calls the card declares for that teacher
    (``not_evaluated`` when neither exists).
    """
    overrides = {
        rule: float(threshold)
        for rule, threshold in (card.gate.model_dump(exclude_none=True) if card.gate else {}).items()
        if rule != "optional"
    }
    judged = []
    for results in runs:
        recorded = results.gate.rules if results.gate and results.gate.rules else []
        rules = {r["rule"]: float(r["threshold"]) for r in recorded}
        rules.update(overrides)
        observed = dict(gate.observed_inputs(results))
        student, teacher = results.models.get("student"), results.models.get("teacher")
        observed["cost_ratio"] = gate.cost_ratio(
            footprints,
            student.digest if student else None,
            teacher.digest if teacher else None,
            _declared_price(card, teacher),
        )
        judged.append((f"{results.pack.id}@{results.pack.version}", gate.evaluate_gate(rules, observed)))
    return gate.combine(judged)


def _declared_price(card: Card, teacher: ModelIdentity | None) -> float | None:
    """The USD price per 1k calls the card declares for the run's teacher (``None`` when it declares none)."""
    if teacher is None:
        return None
    for claim in card.lineage.teachers or []:
        if claim.price_per_1k_calls is not None and matches_teacher(claim, teacher):
            return claim.price_per_1k_calls.usd
    return None


@dataclass(frozen=True)
class _Inputs:
    runs: Sequence[Path]
    footprints: Sequence[Path]
    weights: Path | None
    packs: Sequence[Path] = ()
    publish_packs: bool = True


def _check_failure_modes(card: Card, packs: Mapping[str, SignedPack], card_file: Path) -> None:
    problems = binding_problems(card, packs)
    if not problems:
        return
    path, first = problems[0]
    more = "".join(f"; {p}: {m}" for p, m in problems[1:])
    raise InputError(
        f"{first}{more}" if not more else f"{len(problems)} failure-mode problems: {path}: {first}{more}",
        file=card_file,
        where=path if not more else "",
        hint="name only items, slices and metrics the signed runs hold (or sign with the run that has them); "
        "write every measurement as a placeholder such as {capitals-mc.student.acc@variant=lowercase} and "
        "anything else in words",
    )


def _predicate(
    bundle: _Bundle,
    card: Card,
    value: dict[str, Any],
    keys: Sequence[PrivateKey],
    inputs: _Inputs,
    issued_at: datetime | None,
    card_file: Path,
) -> dict[str, Any]:
    """The predicate for ``card`` (``value`` is the card as written: it is signed as it is)."""
    runs, footprints, weights = inputs.runs, inputs.footprints, inputs.weights
    run_docs: list[Results] = []
    logs: list[bytes] = []
    footprint_docs: list[Footprint] = []
    run_entries = [_add_run(bundle, run, run_docs, logs) for run in runs]
    named = [(str(e["results"]), str(e["examples"])) for e in run_entries]
    _check_failure_modes(card, signed_packs(named, run_docs, logs), card_file)
    _add_packs(bundle, inputs.packs, run_docs, inputs.publish_packs)
    footprint_entries = [_add_footprint(bundle, f, footprint_docs) for f in footprints]
    predicate: dict[str, Any] = {
        "model": {k: value["model"][k] for k in ("name", "version", "publisher")},
        "issuedAt": format_time(issued_at or issued_at_default()),
        "signer": {"keyids": sorted({k.public.keyid for k in keys})},
        "card": value,
        "runs": run_entries,
        "footprints": footprint_entries,
        "gate": signed_gate(card, run_docs, footprint_docs),
        "licence": licence_claims.licence_record(card),
        "generator": {"name": "receipts", "version": __version__},
    }
    table = quantization_table(run_docs, footprint_docs)
    if table:
        predicate["quantization"] = table
    root = None
    if weights is not None:
        digest = digest_weights(weights)
        manifest = manifest_bytes(dict(digest.files), digest.root)
        bundle.add_file("weights.manifest.json", manifest, "weights-manifest")
        bundle.add_digest("weights", digest.root, "weights", rule=FOLDER_RULE)
        root = f"sha256:{digest.root}"
        predicate["weights"] = {"rule": FOLDER_RULE, "root": root, "files": len(digest.files)}
    _check_evidence(card, run_entries, run_docs, footprint_entries, footprint_docs, root)
    return predicate


def _place(
    staging: Path,
    target: Path,
    payload: bytes,
    keys: Sequence[PrivateKey],
    *,
    if_changed: bool,
    kept: list[Path] | None,
) -> None:
    """Rename the staged bundle into place; with ``if_changed``, keep a ``target`` that already is it."""
    if if_changed and _same_receipt(staging, target, payload, keys):
        shutil.rmtree(staging)
        if kept is not None:
            kept.append(target)
        return
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def _same_receipt(staging: Path, target: Path, payload: bytes, keys: Sequence[PrivateKey]) -> bool:
    """Whether ``target`` already is the staged receipt, signed at another time.

    The same regular files, byte for byte, and nothing else; a receipt.json signed validly by exactly
    ``keys``, each once, over a statement equal to ``payload`` once both drop ``predicate.issuedAt``.
    Anything unreadable or unexpected is "not the same" (the caller then replaces it).
    """
    import json

    if target.is_symlink() or not target.is_dir():
        return False
    new, new_other = tree_files(staging)
    old, old_other = tree_files(target)
    if new_other or old_other or sorted(new) != sorted(old):
        return False
    try:
        if any((staging / n).read_bytes() != (target / n).read_bytes() for n in new if n != "receipt.json"):
            return False
        envelope = parse_envelope((target / "receipt.json").read_bytes(), file=target / "receipt.json")
        public = {key.public.keyid: key.public for key in keys}
        checks = check_signatures(envelope, public)
        if sorted(c.keyid for c in checks) != sorted(public) or any(c.status != "valid" for c in checks):
            return False
        if envelope.payload_type != PAYLOAD_TYPE:
            return False
        before, after = json.loads(envelope.payload), json.loads(payload)
    except (OSError, ValueError, VerificationError):
        return False
    if not isinstance(before, dict) or not isinstance(before.get("predicate"), dict):
        return False
    before["predicate"].pop("issuedAt", None)
    after["predicate"].pop("issuedAt", None)
    return bool(before == after)


def _seal(staging: Path, subjects: Sequence[Subject]) -> None:
    """The staged bundle holds exactly receipt.json and its file subjects; folders follow the umask.

    ``mkdtemp`` makes the staging folder 0700; a bundle is meant to be published, so it gets the mode any
    new folder would get (0755 under the usual umask 022). Key files are never in a bundle.
    """
    regular, other = tree_files(staging)
    expected = {s.name for s in subjects if s.kind not in ("weights", "pack")} | {"receipt.json"}
    if other or set(regular) != expected:
        raise InputError("the staged bundle is not exactly its signed subjects", file=staging)
    umask = os.umask(0)
    os.umask(umask)
    for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir() and not p.is_symlink())]:
        folder.chmod(0o777 & ~umask)


def _require_gate(card: Card, signed_gate: Mapping[str, Any], card_path: Path) -> None:
    """Raise GateError unless the gate about to be signed lets the release through (sign --gate)."""
    from receipts.formats._shared import Gate

    optional = card.gate.optional if card.gate else None
    passed, why = gate.release_decision(Gate.model_validate(signed_gate), optional or ())
    if not passed:
        raise GateError(
            f"not signed: the release gate did not pass: {why}",
            file=card_path,
            hint="sign without --gate to publish the failing verdict, or fix what the gate names",
        )


def sign_receipt(
    card_path: Path,
    keys: Sequence[PrivateKey],
    out_dir: Path,
    *,
    runs: Sequence[Path] = (),
    footprints: Sequence[Path] = (),
    weights: Path | None = None,
    packs: Sequence[Path] = (),
    publish_packs: bool = True,
    issued_at: datetime | None = None,
    force: bool = False,
    require_gate: bool = False,
    overlap: Path | None = None,
    if_changed: bool = False,
    kept: list[Path] | None = None,
) -> Path:
    """Validate the inputs, write the bundle and sign it. Returns the bundle folder.

    With ``if_changed`` an existing bundle is replaced only when what it signs changed: one holding the
    same files, validly signed by exactly ``keys`` over the same statement but for its signing time, is
    kept as it is (its bytes, so a reproduction of it still applies) and appended to ``kept``.

    Each of ``packs`` is held to its run's digest; published if ``publish_packs`` and its licence permit.

    With ``require_gate`` nothing is written unless the signed gate lets the release through
    (:func:`receipts.gate.release_decision`: only pass passes, except rules the card marks optional).

    Raises:
        InputError: an input is missing, malformed or inconsistent with another.
        SchemaError: the card, a results file or a footprint fails its schema.
        UsageError: no key, or the bundle exists and ``force`` is false.
        VerificationError: the card contradicts the runs, footprints or weights (receipts.binding), or
            ``overlap`` (a `receipts overlap` file) is about a pack no run used (same id, version, digest).
        GateError: ``require_gate`` and the gate did not pass.
    """
    from receipts import schemas

    if not keys:
        raise UsageError("no signing key given", hint="pass --key KEY.pem")
    from receipts.formats import Card

    card_bytes, value = load_document(card_path, what="card")
    schemas.validate(value, "card", file=card_path)
    card = Card.parse(value, file=card_path)
    licence_claims.check_card(card, file=card_path)  # declared permissions beyond the computed terms: refused
    target = out_dir / f"{card.model.name}@{card.model.version}"
    if target.exists() and not (force or if_changed):
        raise UsageError("receipt folder already exists", file=target, hint="pass --force to replace it")
    if weights is not None and not weights.exists():  # before anything is created
        raise InputError("weights path does not exist", file=weights, hint="pass a folder or a file")
    make_folder(out_dir, what="the receipt folder")
    # Stage next to the target and rename into place: a crash never leaves a half-written receipt.
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".signing-"))
    try:
        bundle = _Bundle(staging)
        bundle.add_file("card.yaml", card_bytes, "card")
        inputs = _Inputs(runs, footprints, weights, packs, publish_packs)
        predicate = _predicate(bundle, card, value, keys, inputs, issued_at, card_path)
        if overlap is not None:
            _add_overlap(bundle, overlap, predicate["runs"])
        if require_gate:
            _require_gate(card, predicate["gate"], card_path)
        statement: dict[str, Any] = {
            "_type": STATEMENT_TYPE,
            "subject": [s.descriptor() for s in bundle.subjects],
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        }
        # The card inside is the object validated above; walking it again would double the schema cost.
        schemas.validate(statement, "statement", file="<statement being signed>", prevalidated=("card",))
        # RFC 8785: the bytes are produced once; verifiers check them as received, never re-serialise.
        payload = bytes(rfc8785.dumps(statement))
        (staging / "receipt.json").write_bytes(sign_envelope(PAYLOAD_TYPE, payload, keys))
        _seal(staging, bundle.subjects)
        _place(staging, target, payload, keys, if_changed=if_changed, kept=kept)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
