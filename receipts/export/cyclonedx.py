"""CycloneDX 1.6 ML-BOM (JSON) from a verified receipt: the model, its lineage, licences and metrics.

The BOM describes one ``machine-learning-model`` (``metadata.component``) and lists the eval packs
its numbers were measured on as ``data`` components. Everything in it comes from the signed
statement and the files it binds by digest; card text is carried as JSON strings, never
interpreted, and a URL is emitted as a URL only when it is a plain ``https://`` URL. Numbers are
copied as strings (``repr`` of the signed value, so they round-trip exactly). The same receipt
always gives the same bytes: the serial number is derived from the envelope's sha256.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from receipts._version import __version__
from receipts.digests import FOLDER_RULE, sha256_bytes
from receipts.failure_modes import SignedPack, filled, verified_packs
from receipts.gate import describe
from receipts.verify import VerifiedReceipt

if TYPE_CHECKING:
    from pydantic import BaseModel

    from receipts.formats import Card
    from receipts.formats._shared import Gate, PackRef
    from receipts.formats.card import Base, Factor, LicenseTerms, Lineage, Teacher, TrainingData
    from receipts.formats.footprint import FootprintSummary
    from receipts.formats.results import Calibration, Counts, Fidelity, Metric
    from receipts.formats.statement import RunEntry

__all__ = ["SPDX_IDS", "SPEC_VERSION", "ml_bom", "serial_number"]

SPEC_VERSION = "1.6"

# Long-standing SPDX ids that every CycloneDX 1.6 validator knows (a test checks each against the
# official list); anything else is carried by name, with the id under licensing.altIds.
SPDX_IDS = frozenset(
    {
        "0BSD", "AFL-3.0", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-2.0", "Artistic-2.0",
        "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0", "CC-BY-2.0", "CC-BY-3.0", "CC-BY-4.0",
        "CC-BY-NC-2.0", "CC-BY-NC-3.0", "CC-BY-NC-4.0", "CC-BY-NC-ND-3.0", "CC-BY-NC-ND-4.0",
        "CC-BY-NC-SA-2.0", "CC-BY-NC-SA-3.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0", "CC-BY-SA-3.0",
        "CC-BY-SA-4.0", "CC0-1.0", "CDLA-Permissive-1.0", "CDLA-Permissive-2.0", "CDLA-Sharing-1.0",
        "ECL-2.0", "EPL-2.0", "EUPL-1.2", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only",
        "GPL-3.0-or-later", "ISC", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only",
        "LGPL-3.0-or-later", "MIT", "MPL-2.0", "ODC-By-1.0", "ODbL-1.0", "OFL-1.1", "PDDL-1.0",
        "PostgreSQL", "Unlicense", "UPL-1.0", "WTFPL", "Zlib",
    }
)  # fmt: skip

# RFC 3986 characters only, each %-escape complete: what CycloneDX's `iri-reference` format accepts.
_PCHAR = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})"
_HTTPS = re.compile(
    rf"https://{_PCHAR}+(?:/(?:{_PCHAR}|/)*)?(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
)
# transformers class suffix -> the task the model performs (the card names the class, not the task)
_TASKS = {"CausalLM": "text-generation", "SequenceClassification": "text-classification"}
_ABSTENTION = ("coverage", "accuracy_on_answered", "overall_accuracy", "abstain_agreement_with_teacher")
# A footprint summary's headline figures, in the order `receipts bench` writes them; others follow, sorted.
_HEADLINE = (
    "quant", "concurrency", "status", "verdict", "peak_rss_bytes", "peak_vram_bytes",
    "weights_bytes_resident", "load_time_s", "ttft_p50_s", "tpot_p50_s", "e2e_p50_s", "decode_tps_p50",
    "prefill_tps_p50", "throughput_rps", "roofline_fraction", "max_usable_context",
    "machine_seconds_per_1k_calls", "cost_per_1k_calls", "currency",
)  # fmt: skip
Json = dict[str, Any]


def ml_bom(verified: VerifiedReceipt) -> Json:
    """The CycloneDX 1.6 ML-BOM of a verified receipt, as a JSON-ready dict (from what verified only)."""
    predicate = verified.predicate
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial_number(verified.envelope),
        "version": 1,
        "metadata": {
            "timestamp": predicate.issuedAt,
            "lifecycles": [{"phase": "post-build"}],
            "tools": {"components": [{"type": "application", "name": "receipts", "version": __version__}]},
            "component": _model(verified),
        },
        "components": [_pack(run.pack) for run in predicate.runs],
    }


def serial_number(envelope: bytes) -> str:
    """``urn:uuid:`` + a UUIDv5 of the envelope's sha256: one receipt, one serial number."""
    name = f"https://receipts.dev/receipt/sha256/{sha256_bytes(envelope)}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


# --- the model --------------------------------------------------------------------------------------


def _model(verified: VerifiedReceipt) -> Json:
    card = verified.card
    model = card.model
    ref = f"model/{verified.bundle_name}"
    component: Json = {
        "type": "machine-learning-model",
        "bom-ref": ref,
        "supplier": _entity(model.publisher, model.homepage),
        "publisher": model.publisher,
        "name": model.name,
        "version": model.version,
        "description": model.description,
    }
    hashes, props = _weights(verified)
    terms = card.license
    permissions = _permissions(terms)
    licenses = _licenses(terms.id, terms.name, terms.url, permissions)
    if "expression" in licenses[0]:  # that form has no properties: the permissions go on the model
        props += permissions
    component |= {
        "hashes": hashes,
        "licenses": licenses,
        "pedigree": _pedigree(card.lineage, ref),
        "externalReferences": _references(verified, terms.url),
        "components": _weight_files(verified, ref),
        "modelCard": _model_card(verified, ref),
        "properties": [*props, *_lineage_props(card), *_receipt_props(verified)],
        "tags": list(model.tags or []),
    }
    return {k: v for k, v in component.items() if v not in ([], None)}


def _weights(verified: VerifiedReceipt) -> tuple[list[Json], list[Json]]:
    """SHA-256 of the weights: the statement's ``weights`` subject, else the runs' student digest."""
    subjects = verified.subject("weights")
    signed = subjects[0].digest.sha256 if subjects else None  # verify refuses a subject without one
    if signed is not None:
        digest, source = signed, "statement subject 'weights'"
    else:
        students = {
            student.digest
            for r in verified.results
            if (student := r.models.get("student")) is not None and student.digest is not None
        }
        if len(students) != 1:
            return [], []
        digest, source = students.pop(), "results.json models.student.digest"
    covers = (
        "model_signing v1.0 root digest of the weights folder: sha256 over the concatenated sha256 "
        "of each file, files sorted by POSIX path; not the digest of one file"
    )
    props = _props(
        "receipts:weights", {"digest-rule": FOLDER_RULE, "digest-covers": covers, "source": source}
    )
    return [_hash(digest)], props


def _weight_files(verified: VerifiedReceipt, ref: str) -> list[Json]:
    """Each weights file with its own sha256, from the signed ``weights.manifest.json``."""
    if verified.manifest is None:
        return []
    files: Mapping[str, str] = verified.manifest.files
    return [
        {"type": "file", "bom-ref": f"{ref}#file/{name}", "name": name, "hashes": [_hash(digest)]}
        for name, digest in files.items()
    ]


def _references(verified: VerifiedReceipt, license_url: str | None) -> list[Json]:
    predicate_type = verified.statement.predicateType
    refs: list[Json] = [
        {
            "url": f"{verified.bundle_name}/receipt.json",
            "type": "attestation",
            "comment": f"DSSE-signed in-toto Statement v1 ({predicate_type}) this BOM was exported from. "
            "Check it with `receipts verify` against a trust root you pinned; the BOM itself is not signed.",
            "hashes": [_hash(sha256_bytes(verified.envelope))],
        }
    ]
    model = verified.card.model
    for url, kind in ((model.homepage, "website"), (license_url, "license"), (model.contact, "support")):
        if _https(url):
            refs.append({"url": url, "type": kind})
    return refs


def _lineage_props(card: Card) -> list[Json]:
    lineage = card.lineage
    props = _props("receipts:lineage", {"relation": lineage.relation})
    props += _props("receipts:distillation", _signed(lineage.distillation))
    props += _props("receipts:quantization", _signed(lineage.quantization))
    if not _https(contact := card.model.contact):  # else it is the "support" reference
        props += _props("receipts:model", {"contact": contact})
    props += [{"name": "receipts:model:language", "value": lang} for lang in card.model.languages or []]
    for profile in card.hardware_profiles:
        props += _props(f"receipts:hardware_profile:{profile.name}", _signed(profile), skip=("name",))
    return props


def _receipt_props(verified: VerifiedReceipt) -> list[Json]:
    predicate = verified.predicate
    props = _props("receipts:receipt", {"predicateType": verified.statement.predicateType})
    props += [{"name": "receipts:receipt:signer-keyid", "value": k} for k in predicate.signer.keyids]
    props += _props("receipts:receipt", {"verified-with-trust-root-sha256": verified.trust_root_sha256})
    for entry, footprint in zip(predicate.footprints, verified.footprints, strict=True):
        stem = PurePosixPath(entry.file).stem
        props += _props(f"receipts:footprint:{stem}", {"hardware": footprint.hardware.label})
        props += _props(f"receipts:footprint:{stem}", _headline(footprint.summary))
    return props


def _headline(summary: FootprintSummary) -> Json:
    """A footprint summary's figures: the headline ones in `_HEADLINE` order, then any others sorted."""
    facts = dict(sorted(_fields(summary).items()))
    return {key: facts.pop(key) for key in _HEADLINE if key in facts} | facts


# --- licences and lineage ---------------------------------------------------------------------------


def _licenses(
    license_id: str, name: str | None = None, url: str | None = None, properties: Iterable[Json] = ()
) -> list[Json]:
    """A licenseChoice: an SPDX ``id``, a ``name`` (LicenseRef-..., NOASSERTION) or an expression."""
    if " " in license_id:  # AND / OR / WITH: only the expression form can say it
        return [{"expression": license_id, "acknowledgement": "declared"}]
    license: Json = {"id": license_id} if license_id in SPDX_IDS else {"name": name or license_id}
    license["acknowledgement"] = "declared"
    if "name" in license:
        license["licensing"] = {"altIds": [license_id]}
    if _https(url):
        license["url"] = url
    if props := list(properties):
        license["properties"] = props
    return [{"license": license}]


def _permissions(terms: LicenseTerms) -> list[Json]:
    permissions = terms.permissions
    skip = ("output_use_restrictions", "user_thresholds")
    props = _props("receipts:license", _signed(permissions), skip=skip)
    props += _props("receipts:license:user_thresholds", _signed(permissions.user_thresholds))
    for text in permissions.output_use_restrictions:
        props.append({"name": "receipts:license:output_use_restriction", "value": text})
    for term in terms.inherited_terms:
        value = f"From {term.from_}: {term.terms} Effect: {term.effect}"
        props.append({"name": "receipts:license:inherited_terms", "value": value})
    if not _https(terms.url):
        props += _props("receipts:license", {"url": terms.url})
    return props


def _pedigree(lineage: Lineage, ref: str) -> Json | None:
    relation = lineage.relation
    ancestors = [
        _ancestor(t, f"{ref}#teacher-{i}", "teacher", (None, t.terms_of_service))
        for i, t in enumerate(lineage.teachers or [])
    ]
    if relation != "original":  # an original model's "base" describes the model itself
        ancestors.append(_ancestor(lineage.base, f"{ref}#base", "base", (lineage.base.source, None)))
    if not ancestors:
        return None
    return {"ancestors": ancestors, "notes": f"relation: {relation} (the card's lineage.relation)"}


def _ancestor(model: Teacher | Base, ref: str, role: str, links: tuple[str | None, str | None]) -> Json:
    """A teacher or the base; ``links`` are its source (a website) and its terms of service (a licence)."""
    component: Json = {"type": "machine-learning-model", "bom-ref": ref, "name": model.name}
    if digest := model.weights_digest:
        component["hashes"] = [_hash(digest)]
    component["licenses"] = _licenses(model.license)
    pairs = zip(links, ("website", "license"), strict=True)
    if refs := [{"url": url, "type": kind} for url, kind in pairs if _https(url)]:
        component["externalReferences"] = refs
    props = _props("receipts:lineage", {"role": role})
    if model.weights_digest is not None:
        covers = "sha256 of the weights file, or the model_signing v1.0 root digest of a folder (card)"
        props += _props("receipts:weights", {"digest-covers": covers})
    props += _props(f"receipts:{role}", _signed(model), skip=("name", "license", "weights_digest"))
    component["properties"] = props
    return component


# --- the model card ---------------------------------------------------------------------------------


def _model_card(verified: VerifiedReceipt, ref: str) -> Json:
    card = verified.card
    return {
        "bom-ref": f"{ref}#model-card",
        "modelParameters": _parameters(card, verified.predicate.runs),
        "quantitativeAnalysis": {"performanceMetrics": list(_metrics(verified))},
        "considerations": _considerations(card, verified.predicate.gate, verified_packs(verified)),
        "properties": _run_props(verified),
    }


def _parameters(card: Card, runs: list[RunEntry]) -> Json:
    lineage = card.lineage
    architecture = lineage.base.architecture
    params: Json = {}
    # Distillation fits the student to the teacher's outputs, labels it is given: supervised. For other
    # relations the card does not say how the weights were learned, so no approach is claimed.
    if lineage.relation == "distilled":
        params["approach"] = {"type": "supervised"}
    family, _, head = architecture.partition("For")  # LlamaForCausalLM: the Llama family, a causal LM
    if task := _TASKS.get(head):
        params["task"] = task
    if head and family:
        params["architectureFamily"] = family
    params["modelArchitecture"] = architecture
    params["datasets"] = [_training_set(d) for d in card.training_data]
    params["datasets"] += [{"ref": _pack_ref(run.pack)} for run in runs]
    if task:
        params["inputs"] = [{"format": "text"}]
        params["outputs"] = [{"format": "text"}]
    return params


def _training_set(data: TrainingData) -> Json:
    contents: Json = {"url": data.source} if _https(data.source) else {}
    facts = {k: v for k, v in _signed(data).items() if k not in ("name", "description")}
    facts |= {k: "unknown" for k in ("synthetic", "closed_model_outputs") if facts[k] is None}
    contents["properties"] = _props("receipts:training_data", facts)
    dataset: Json = {"type": "dataset", "name": data.name, "contents": contents}
    if data.description is not None:
        dataset["description"] = data.description
    return dataset


def _considerations(card: Card, gate: Gate, packs: Mapping[str, SignedPack]) -> Json:
    use, boundary = card.intended_use, card.task_boundary
    limitations = [*boundary.not_claiming, *(card.caveats or [])]
    limitations += [f"Out of scope: {text}" for text in use.out_of_scope]
    limitations += [
        f"Failure mode {f.id} ({f.severity}): {filled(f.description, packs)} "
        f"Trigger: {filled(f.trigger, packs)} Mitigation: {filled(f.mitigation, packs)}"
        for f in card.failure_modes
    ]
    considerations: Json = {
        "users": list(use.primary_users),
        "useCases": [*use.primary_uses, *boundary.good_at],
        "technicalLimitations": limitations,
        "performanceTradeoffs": [_tradeoff(rule) for rule in gate.rules or []],
        "ethicalConsiderations": [{"name": text} for text in card.ethical_considerations or []],
        "fairnessAssessments": [_fairness(f) for f in card.factors or []],
    }
    return {k: v for k, v in considerations.items() if v}


def _tradeoff(rule: Json) -> str:
    """One signed gate record in words (its CI, n and MDE where it was judged on a CI)."""
    return f"{describe(rule)} (publisher's release gate)"


def _fairness(factor: Factor) -> Json:
    assessment = {"groupAtRisk": factor.name, "harms": factor.description}
    if slices := factor.pack_slices:
        assessment["mitigationStrategy"] = (
            f"The signed results report these slices separately: {', '.join(slices)}"
        )
    return assessment


def _run_props(verified: VerifiedReceipt) -> list[Json]:
    gate = verified.predicate.gate
    props = _props("receipts:gate", {"verdict": gate.verdict, "reason": gate.reason})
    for results in verified.results:
        pack = results.pack.id
        settings = results.settings or {}
        facts = {"task": results.task, "primary_metric": results.primary_metric}
        facts["bootstrap_resamples"] = settings.get("bootstrap_resamples")
        facts["seed"] = settings.get("seed")
        props += _props(f"receipts:run:{pack}", facts)
    return props


# --- metrics ----------------------------------------------------------------------------------------


def _metrics(verified: VerifiedReceipt) -> Iterator[Json]:
    """Every signed number with its CI: per run, slice, metric and role, then the per-role sections.

    Slices read ``<pack>/<slice>`` and the role stands in brackets after the metric (``acc [student]``),
    since a CycloneDX performanceMetric has no field for either.
    """
    for results in verified.results:
        pack = results.pack.id
        for slice_name, per_metric in (results.metrics or {}).items():
            for metric, entry in per_metric.items():
                yield from _metric(metric, entry, f"{pack}/{slice_name}")
        if worst := _mapping(_mapping(results.robustness).get("worst_case")):
            primary = results.primary_metric
            yield from _worst_case(
                "score" if primary is None else primary, worst, f"{pack}/worst_case_over_variants"
            )
        for role, fidelity in (results.fidelity or {}).items():
            yield from _estimates(_fidelity_values(fidelity), role, f"{pack}/all")
        for role, calibration in (results.calibration or {}).items():
            yield from _estimates(_calibration_values(calibration), role, f"{pack}/all")
        for role, abstention in _mapping(results.abstention).items():
            yield from _estimates(_abstention_values(_mapping(abstention)), role, f"{pack}/all")
        for role, extraction in (results.extraction or {}).items():
            yield from _estimates(_prf(extraction.micro), role, f"{pack}/all")
            for field, counts in extraction.per_field.items():
                yield from _estimates(_prf(counts), role, f"{pack}/field={field}")


def _metric(metric: str, entry: Metric, slice_: str) -> Iterator[Json]:
    yield from _metric_rows(
        metric,
        slice_,
        {role: (e.value, e.ci95) for role, e in entry.roles.items()},
        {pair: (e.value, e.ci95) for pair, e in (entry.differences or {}).items()},
        {role: (r.value, r.student_over_teacher) for role, r in (entry.retention or {}).items()},
    )


def _worst_case(metric: str, entry: Json, slice_: str) -> Iterator[Json]:
    """``robustness.worst_case``: a metric entry inside a section the results schema leaves untyped."""
    roles = entry["roles"]
    yield from _metric_rows(
        metric,
        slice_,
        {role: (e["value"], e["ci95"]) for role, e in roles.items()},
        {pair: (e["value"], e["ci95"]) for pair, e in entry.get("differences", {}).items()},
        {role: (r["value"], r.get("student_over_teacher")) for role, r in entry.get("retention", {}).items()},
    )


Pairs = Mapping[str, tuple[Any, Any]]


def _metric_rows(
    metric: str, slice_: str, roles: Pairs, differences: Pairs, retention: Pairs
) -> Iterator[Json]:
    """Per role the estimate and its CI, per pair the difference and its CI, per role retention and ratio."""
    for role, (value, ci) in roles.items():
        yield from _performance(f"{metric} [{role}]", value, slice_, ci)
    for pair, (value, ci) in differences.items():
        if pair not in roles:  # a role whose name has a "-" is not a difference
            yield from _performance(f"{metric} difference [{pair}]", value, slice_, ci)
    for role, (value, ratio) in retention.items():
        yield from _performance(f"{metric} retention [{role}]", value, slice_)
        yield from _performance(f"{metric} ratio to teacher [{role}]", ratio, slice_)


def _estimates(values: Mapping[str, Any], role: str, slice_: str) -> Iterator[Json]:
    for name, value in values.items():
        yield from _performance(f"{name} [{role}]", value, slice_)


def _fidelity_values(entry: Fidelity) -> Json:
    values: Json = {"agreement_rate": entry.agreement_rate}
    if entry.kl is not None:
        values[f"kl_{entry.kl.level}"] = entry.kl.value
    return values


def _calibration_values(entry: Calibration) -> Json:
    return {
        "ece_10_equal_mass": entry.ece_10_equal_mass,
        "ece_15_equal_width": entry.ece_15_equal_width,
        "brier": entry.brier,
    }


def _abstention_values(entry: Json) -> Json:
    return {k: entry.get(k) for k in _ABSTENTION}


def _prf(counts: Counts) -> Json:
    return {"precision": counts.precision, "recall": counts.recall, "f1": counts.f1}


def _performance(kind: str, value: Any, slice_: str, ci: Any = None) -> Iterator[Json]:
    """A performanceMetric, or nothing when the signed value is missing (null, not a number)."""
    text = _number(value)
    if text is None:
        return
    metric: Json = {"type": kind, "value": text, "slice": slice_}
    if isinstance(ci, list) and len(ci) == 2 and None not in (bounds := [_number(b) for b in ci]):
        metric["confidenceInterval"] = {"lowerBound": bounds[0], "upperBound": bounds[1]}
    yield metric


# --- eval packs and small helpers --------------------------------------------------------------------


def _pack_ref(pack: PackRef) -> str:
    return f"pack/{pack.id}@{pack.version}"


def _pack(pack: PackRef) -> Json:
    return {
        "type": "data",
        "bom-ref": _pack_ref(pack),
        "name": pack.id,
        "version": pack.version,
        "description": "Eval pack the signed results were measured on (hash: model_signing v1.0 folder root)",
        "hashes": [_hash(pack.digest)],
        "data": [{"type": "dataset", "name": pack.id}],
        "properties": _props("receipts:pack", {"digest-rule": FOLDER_RULE}),
    }


def _mapping(value: Any) -> Json:
    """``value`` if it is an object: the results schema leaves these sections' shape open."""
    return value if isinstance(value, dict) else {}


def _fields(model: BaseModel | None) -> Json:
    """A model's properties by their JSON names, the ones the schema lists and the ones it kept."""
    if model is None:
        return {}
    listed = {info.alias or name: getattr(model, name) for name, info in type(model).model_fields.items()}
    return listed | (model.model_extra or {})


def _signed(model: BaseModel | None) -> Json:
    """A card object's properties as the signed statement holds them.

    RFC 8785 (how receipts signs the statement) sorts the keys and writes an integral number without a
    fraction, so ``ram_gib: 4.0`` reads back as ``4``.
    """
    return {
        key: int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 1e21 else value
        for key, value in sorted(_fields(model).items())
    }


def _entity(name: str, url: Any) -> Json:
    return {"name": name, "url": [url]} if _https(url) else {"name": name}


def _hash(hex_digest: str) -> Json:
    return {"alg": "SHA-256", "content": hex_digest.removeprefix("sha256:")}


def _https(url: Any) -> bool:
    return isinstance(url, str) and _HTTPS.fullmatch(url) is not None


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return repr(value)


def _props(prefix: str, facts: Mapping[str, Any], skip: Iterable[str] = ()) -> list[Json]:
    """``prefix:key`` properties for the scalar facts (booleans as true/false); None and nesting left out."""
    props = []
    for key, value in facts.items():
        if key in skip or value is None or isinstance(value, dict | list):
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        props.append({"name": f"{prefix}:{key}", "value": text})
    return props
