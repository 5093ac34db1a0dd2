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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import PurePosixPath
from typing import Any

from receipts._version import __version__
from receipts.digests import FOLDER_RULE, sha256_bytes
from receipts.verify import VerifiedReceipt

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
            "timestamp": predicate["issuedAt"],
            "lifecycles": [{"phase": "post-build"}],
            "tools": {"components": [{"type": "application", "name": "receipts", "version": __version__}]},
            "component": _model(verified),
        },
        "components": [_pack(run["pack"]) for run in predicate["runs"]],
    }


def serial_number(envelope: bytes) -> str:
    """``urn:uuid:`` + a UUIDv5 of the envelope's sha256: one receipt, one serial number."""
    name = f"https://receipts.dev/receipt/sha256/{sha256_bytes(envelope)}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


# --- the model --------------------------------------------------------------------------------------


def _model(verified: VerifiedReceipt) -> Json:
    card = verified.card
    model = card["model"]
    ref = f"model/{verified.bundle_name}"
    component: Json = {
        "type": "machine-learning-model",
        "bom-ref": ref,
        "supplier": _entity(model["publisher"], model.get("homepage")),
        "publisher": model["publisher"],
        "name": model["name"],
        "version": model["version"],
        "description": model["description"],
    }
    hashes, props = _weights(verified)
    terms = card["license"]
    permissions = _permissions(terms)
    licenses = _licenses(terms["id"], terms.get("name"), terms.get("url"), permissions)
    if "expression" in licenses[0]:  # that form has no properties: the permissions go on the model
        props += permissions
    component |= {
        "hashes": hashes,
        "licenses": licenses,
        "pedigree": _pedigree(card["lineage"], ref),
        "externalReferences": _references(verified, terms.get("url")),
        "components": _weight_files(verified, ref),
        "modelCard": _model_card(verified, ref),
        "properties": [*props, *_lineage_props(card), *_receipt_props(verified)],
        "tags": list(model.get("tags", [])),
    }
    return {k: v for k, v in component.items() if v not in ([], None)}


def _weights(verified: VerifiedReceipt) -> tuple[list[Json], list[Json]]:
    """SHA-256 of the weights: the statement's ``weights`` subject, else the runs' student digest."""
    subjects = verified.subject("weights")
    if subjects:
        digest, source = subjects[0]["digest"]["sha256"], "statement subject 'weights'"
    else:
        students = {r["models"].get("student", {}).get("digest") for r in verified.results} - {None}
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
    files: Mapping[str, str] = verified.manifest["files"]
    return [
        {"type": "file", "bom-ref": f"{ref}#file/{name}", "name": name, "hashes": [_hash(digest)]}
        for name, digest in files.items()
    ]


def _references(verified: VerifiedReceipt, license_url: str | None) -> list[Json]:
    predicate_type = verified.statement["predicateType"]
    refs: list[Json] = [
        {
            "url": f"{verified.bundle_name}/receipt.json",
            "type": "attestation",
            "comment": f"DSSE-signed in-toto Statement v1 ({predicate_type}) this BOM was exported from. "
            "Check it with `receipts verify` against a trust root you pinned; the BOM itself is not signed.",
            "hashes": [_hash(sha256_bytes(verified.envelope))],
        }
    ]
    model = verified.card["model"]
    for url, kind in (
        (model.get("homepage"), "website"),
        (license_url, "license"),
        (model.get("contact"), "support"),
    ):
        if _https(url):
            refs.append({"url": url, "type": kind})
    return refs


def _lineage_props(card: Json) -> list[Json]:
    lineage = card["lineage"]
    props = _props("receipts:lineage", {"relation": lineage["relation"]})
    props += _props("receipts:distillation", lineage.get("distillation", {}))
    props += _props("receipts:quantization", lineage.get("quantization", {}))
    if not _https(contact := card["model"].get("contact")):  # else it is the "support" reference
        props += _props("receipts:model", {"contact": contact})
    props += [
        {"name": "receipts:model:language", "value": lang} for lang in card["model"].get("languages", [])
    ]
    for profile in card.get("hardware_profiles", []):
        props += _props(f"receipts:hardware_profile:{profile['name']}", profile, skip=("name",))
    return props


def _receipt_props(verified: VerifiedReceipt) -> list[Json]:
    predicate = verified.predicate
    props = _props("receipts:receipt", {"predicateType": verified.statement["predicateType"]})
    props += [{"name": "receipts:receipt:signer-keyid", "value": k} for k in predicate["signer"]["keyids"]]
    props += _props("receipts:receipt", {"verified-with-trust-root-sha256": verified.trust_root_sha256})
    for entry, footprint in zip(predicate["footprints"], verified.footprints, strict=True):
        stem = PurePosixPath(entry["file"]).stem
        hardware = footprint.get("hardware", {})
        props += _props(f"receipts:footprint:{stem}", {"hardware": hardware.get("label")})
        props += _props(f"receipts:footprint:{stem}", footprint.get("summary", {}))
    return props


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


def _permissions(terms: Json) -> list[Json]:
    permissions = terms.get("permissions", {})
    props = _props("receipts:license", permissions, skip=("output_use_restrictions", "user_thresholds"))
    props += _props("receipts:license:user_thresholds", permissions.get("user_thresholds", {}))
    for text in permissions.get("output_use_restrictions", []):
        props.append({"name": "receipts:license:output_use_restriction", "value": text})
    for term in terms.get("inherited_terms", []):
        value = f"From {term['from']}: {term['terms']} Effect: {term['effect']}"
        props.append({"name": "receipts:license:inherited_terms", "value": value})
    if not _https(terms.get("url")):
        props += _props("receipts:license", {"url": terms.get("url")})
    return props


def _pedigree(lineage: Json, ref: str) -> Json | None:
    relation = lineage["relation"]
    ancestors = [
        _ancestor(t, f"{ref}#teacher-{i}", "teacher") for i, t in enumerate(lineage.get("teachers", []))
    ]
    if relation != "original":  # an original model's "base" describes the model itself
        ancestors.append(_ancestor(lineage["base"], f"{ref}#base", "base"))
    if not ancestors:
        return None
    return {"ancestors": ancestors, "notes": f"relation: {relation} (the card's lineage.relation)"}


def _ancestor(model: Json, ref: str, role: str) -> Json:
    component: Json = {"type": "machine-learning-model", "bom-ref": ref, "name": model["name"]}
    if digest := model.get("weights_digest"):
        component["hashes"] = [_hash(digest)]
    component["licenses"] = _licenses(model["license"])
    links = [(model.get("source"), "website"), (model.get("terms_of_service"), "license")]
    if refs := [{"url": url, "type": kind} for url, kind in links if _https(url)]:
        component["externalReferences"] = refs
    props = _props("receipts:lineage", {"role": role})
    if "weights_digest" in model:
        covers = "sha256 of the weights file, or the model_signing v1.0 root digest of a folder (card)"
        props += _props("receipts:weights", {"digest-covers": covers})
    props += _props(f"receipts:{role}", model, skip=("name", "license", "weights_digest"))
    component["properties"] = props
    return component


# --- the model card ---------------------------------------------------------------------------------


def _model_card(verified: VerifiedReceipt, ref: str) -> Json:
    card = verified.card
    return {
        "bom-ref": f"{ref}#model-card",
        "modelParameters": _parameters(card, verified.predicate["runs"]),
        "quantitativeAnalysis": {"performanceMetrics": list(_metrics(verified))},
        "considerations": _considerations(card, verified.predicate["gate"]),
        "properties": _run_props(verified),
    }


def _parameters(card: Json, runs: list[Json]) -> Json:
    lineage = card["lineage"]
    architecture: str = lineage["base"]["architecture"]
    params: Json = {}
    # Distillation fits the student to the teacher's outputs, labels it is given: supervised. For other
    # relations the card does not say how the weights were learned, so no approach is claimed.
    if lineage["relation"] == "distilled":
        params["approach"] = {"type": "supervised"}
    family, _, head = architecture.partition("For")  # LlamaForCausalLM: the Llama family, a causal LM
    if task := _TASKS.get(head):
        params["task"] = task
    if head and family:
        params["architectureFamily"] = family
    params["modelArchitecture"] = architecture
    params["datasets"] = [_training_set(d) for d in card["training_data"]]
    params["datasets"] += [{"ref": _pack_ref(run["pack"])} for run in runs]
    if task:
        params["inputs"] = [{"format": "text"}]
        params["outputs"] = [{"format": "text"}]
    return params


def _training_set(data: Json) -> Json:
    contents: Json = {"url": data["source"]} if _https(data["source"]) else {}
    facts = {k: v for k, v in data.items() if k not in ("name", "description")}
    facts |= {k: "unknown" for k in ("synthetic", "closed_model_outputs") if data.get(k) is None}
    contents["properties"] = _props("receipts:training_data", facts)
    dataset: Json = {"type": "dataset", "name": data["name"], "contents": contents}
    if "description" in data:
        dataset["description"] = data["description"]
    return dataset


def _considerations(card: Json, gate: Json) -> Json:
    use, boundary = card["intended_use"], card["task_boundary"]
    limitations = [*boundary["not_claiming"], *card.get("caveats", [])]
    limitations += [f"Out of scope: {text}" for text in use["out_of_scope"]]
    limitations += [
        f"Failure mode {f['id']} ({f['severity']}): {f['description']} Trigger: {f['trigger']} "
        f"Mitigation: {f['mitigation']}"
        for f in card["failure_modes"]
    ]
    considerations: Json = {
        "users": list(use["primary_users"]),
        "useCases": [*use["primary_uses"], *boundary["good_at"]],
        "technicalLimitations": limitations,
        "performanceTradeoffs": [_tradeoff(rule) for rule in gate["rules"]],
        "ethicalConsiderations": [{"name": text} for text in card.get("ethical_considerations", [])],
        "fairnessAssessments": [_fairness(f) for f in card.get("factors", [])],
    }
    return {k: v for k, v in considerations.items() if v}


def _tradeoff(rule: Json) -> str:
    observed = "not evaluated" if rule["observed"] is None else _number(rule["observed"])
    where = f"{rule['pack']}: " if "pack" in rule else ""
    return (
        f"{where}{rule['rule']} (publisher's release gate): {rule['input']} = {observed} "
        f"against threshold {_number(rule['threshold'])}, {rule['status']}"
    )


def _fairness(factor: Json) -> Json:
    assessment = {"groupAtRisk": factor["name"], "harms": factor["description"]}
    if slices := factor.get("pack_slices"):
        assessment["mitigationStrategy"] = (
            f"The signed results report these slices separately: {', '.join(slices)}"
        )
    return assessment


def _run_props(verified: VerifiedReceipt) -> list[Json]:
    gate = verified.predicate["gate"]
    props = _props("receipts:gate", {"verdict": gate["verdict"], "reason": gate.get("reason")})
    for results in verified.results:
        pack = results["pack"]["id"]
        settings = results.get("settings", {})
        facts = {"task": results.get("task"), "primary_metric": results.get("primary_metric")}
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
        pack = results["pack"]["id"]
        for slice_name, per_metric in results.get("metrics", {}).items():
            for metric, entry in per_metric.items():
                yield from _metric(metric, entry, f"{pack}/{slice_name}")
        if worst := _mapping(_mapping(results.get("robustness")).get("worst_case")):
            yield from _metric(
                results.get("primary_metric", "score"), worst, f"{pack}/worst_case_over_variants"
            )
        yield from _per_role(results.get("fidelity", {}), f"{pack}/all", _fidelity_values)
        yield from _per_role(results.get("calibration", {}), f"{pack}/all", _calibration_values)
        yield from _per_role(results.get("abstention"), f"{pack}/all", _abstention_values)
        for role, extraction in _mapping(results.get("extraction")).items():
            yield from _estimates(_prf(_mapping(extraction).get("micro")), role, f"{pack}/all")
            for field, counts in _mapping(_mapping(extraction).get("per_field")).items():
                yield from _estimates(_prf(counts), role, f"{pack}/field={field}")


def _metric(metric: str, entry: Json, slice_: str) -> Iterator[Json]:
    roles = entry["roles"]
    for role, estimate in roles.items():
        yield from _performance(f"{metric} [{role}]", estimate["value"], slice_, estimate["ci95"])
    for pair, estimate in entry.get("differences", {}).items():
        if pair not in roles:  # a role whose name has a "-" is not a difference
            yield from _performance(
                f"{metric} difference [{pair}]", estimate["value"], slice_, estimate["ci95"]
            )
    for role, retention in entry.get("retention", {}).items():
        yield from _performance(f"{metric} retention [{role}]", retention["value"], slice_)
        ratio = retention.get("student_over_teacher")
        yield from _performance(f"{metric} ratio to teacher [{role}]", ratio, slice_)


def _per_role(section: Any, slice_: str, values: Callable[[Json], Json]) -> Iterator[Json]:
    for role, entry in _mapping(section).items():
        yield from _estimates(values(_mapping(entry)), role, slice_)


def _estimates(values: Mapping[str, Any], role: str, slice_: str) -> Iterator[Json]:
    for name, value in values.items():
        yield from _performance(f"{name} [{role}]", value, slice_)


def _fidelity_values(entry: Json) -> Json:
    values: Json = {"agreement_rate": entry.get("agreement_rate")}
    if isinstance(kl := entry.get("kl"), dict):
        values[f"kl_{kl.get('level')}"] = kl.get("value")
    return values


def _calibration_values(entry: Json) -> Json:
    return {k: entry.get(k) for k in ("ece_10_equal_mass", "ece_15_equal_width", "brier")}


def _abstention_values(entry: Json) -> Json:
    return {k: entry.get(k) for k in _ABSTENTION}


def _prf(counts: Any) -> Json:
    return {k: _mapping(counts).get(k) for k in ("precision", "recall", "f1")}


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


def _pack_ref(pack: Json) -> str:
    return f"pack/{pack['id']}@{pack['version']}"


def _pack(pack: Json) -> Json:
    return {
        "type": "data",
        "bom-ref": _pack_ref(pack),
        "name": pack["id"],
        "version": pack["version"],
        "description": "Eval pack the signed results were measured on (hash: model_signing v1.0 folder root)",
        "hashes": [_hash(pack["digest"])],
        "data": [{"type": "dataset", "name": pack["id"]}],
        "properties": _props("receipts:pack", {"digest-rule": FOLDER_RULE}),
    }


def _mapping(value: Any) -> Json:
    """``value`` if it is an object: the results schema leaves these sections' shape open."""
    return value if isinstance(value, dict) else {}


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
