"""`receipts export cyclonedx`: a CycloneDX 1.6 ML-BOM that the official schema accepts, from signed data."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from receipts.cli import main
from receipts.digests import FOLDER_RULE, digest_weights
from receipts.export.cyclonedx import SPDX_IDS
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root
from tests.generator.test_catalog import HOSTILE, hostile_card

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
CARD = ROOT / "examples" / "card.yaml"
TEACHER = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # the card's teacher
GEMMA = ROOT / "examples" / "demo" / "gemma-3-270m.card.yaml"
ISSUED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def schema_dir() -> Path:
    import cyclonedx.schema._res as res

    return Path(res.__file__).parent


# --- inputs: weights, a run with metrics, a footprint, all of one student --------------------------


def estimate(value: float | None, low: float | None, high: float | None, n: int) -> dict[str, Any]:
    return {"value": value, "ci95": [low, high], "n": n, "small_n": n < 30}


def metric(base: float, n: int) -> dict[str, Any]:
    """One metric in one slice as runner.eval.report writes it, numbers shifted by ``base``."""
    roles = {"teacher": base + 0.3, "base": base, "student": base + 0.2, "student@int8-dynamic": base + 0.1}
    return {
        "roles": {
            r: estimate(round(v, 6), round(v - 0.05, 6), round(v + 0.05, 6), n) for r, v in roles.items()
        },
        "differences": {
            "student-teacher": estimate(-0.1, -0.2, 0.01, n),
            "student-base": estimate(0.2, 0.1, 0.3, n),
            "teacher-base": estimate(0.3, None, None, n),  # no CI: the entry carries none
            # receipts <= 0.1.0 filed a role whose name has "-" under differences; it is not one
            "student@int8-dynamic": estimate(base + 0.1, base, base + 0.2, n),
        },
        "retention": {
            "student": {"value": 0.666667, "reason": None, "student_over_teacher": 0.8125},
            "student@int8-dynamic": {"value": None, "reason": "teacher-base gap CI contains 0"},
        },
        "mcnemar": {"student-vs-teacher": {"statistic": 1.5, "p_value": 0.22, "method": "chi2"}},
    }


def make_run(folder: Path, student: str) -> Path:
    folder.mkdir()
    shutil.copy(DATA / "run_minimal" / "examples.jsonl", folder)
    results = json.loads((DATA / "run_minimal" / "results.json").read_text("utf-8"))
    results["models"] = {
        "teacher": {"spec": "gguf:teacher.gguf", "digest": TEACHER},
        "base": {"spec": "fake:base", "endpoint": "fake:base"},
        "student": {"spec": "hf:w", "digest": student, "params": 1000},
        "student@int8-dynamic": {
            "spec": "hf:w@int8-dynamic",
            "digest": student,
            "runtime_quant": "int8-dynamic",
        },
    }
    results |= {
        "task": "multiple_choice",
        "primary_metric": "acc",
        "settings": {"bootstrap_resamples": 1000, "seed": 0},
        "metrics": {
            "all": {"acc": metric(0.401, 80), "acc_norm": metric(0.412, 80)},
            "critical": {"acc": metric(0.303, 31)},
            "domain=geography": {"acc": metric(0.25, 40)},
            "variant=typo": {"acc": metric(0.123457, 12)},
        },
        "robustness": {"variants": ["original", "typo"], "worst_case": metric(0.2, 80)},
        "fidelity": {
            "student": {
                "agreement_rate": 0.7375,
                "cells": {},
                "kl": {"level": "token", "value": 1.631136, "n": 80},
            },
            "base": {"agreement_rate": 0.4, "cells": {}, "kl": {"level": "choice", "value": 7.9, "n": 80}},
        },
        "calibration": {
            role: {
                "ece_10_equal_mass": ece,
                "ece_15_equal_width": ece + 0.01,
                "brier": 0.5,
                "reliability": [],
            }
            for role, ece in (("teacher", 0.109), ("student", 0.324417))
        },
        "abstention": {
            "student": {"coverage": 0.9, "accuracy_on_answered": 0.611111, "answered": 72, "n": 80},
        },
        "extraction": {
            "student": {
                "micro": {"tp": 2, "fp": 2, "fn": 6, "precision": 0.5, "recall": 0.25, "f1": 0.333333},
                "per_field": {
                    "city": {"tp": 2, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
                },
                "n": 80,
            },
        },
    }
    (folder / "results.json").write_text(json.dumps(results, indent=2), "utf-8")
    return folder


def make_weights(folder: Path) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}', "utf-8")
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "tokenizer.json").write_text('{"version": "1.0"}', "utf-8")
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("cyclonedx")
    key = generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    weights = make_weights(tmp / "weights")
    student = f"sha256:{digest_weights(weights).root}"
    run = make_run(tmp / "run", student)
    footprint = json.loads((DATA / "footprint_minimal.json").read_text("utf-8"))
    footprint["model"]["digest"] = student
    (tmp / "footprint_cpu.json").write_text(json.dumps(footprint), "utf-8")

    def sign(card: Path, out: Path, *, with_weights: bool = True) -> Path:
        inputs = {"runs": [run], "footprints": [tmp / "footprint_cpu.json"]}
        return sign_receipt(
            card, [key], out, issued_at=ISSUED, weights=weights if with_weights else None, **inputs
        )

    return {"tmp": tmp, "trust": trust, "sign": sign, "bundle": sign(CARD, tmp / "receipts")}


def export(world: dict[str, Any], bundle: Path, out: Path, *flags: str) -> int:
    """Export, with --no-rederive unless ``flags`` say otherwise.

    make_run signs hand-written numbers on purpose (every shape and edge case the exporter must carry,
    legacy ones included), which no examples log could give.
    """
    args = ["export", "cyclonedx", str(bundle), "--trust-root", str(world["trust"]), "--out", str(out)]
    return main([*args, *(flags or ("--no-rederive",))])


def test_numbers_that_do_not_follow_from_the_examples_are_not_exported(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """By default the export re-derives every signed number first: make_run's hand-written ones fail."""
    out = world["tmp"] / "refused.json"
    assert export(world, world["bundle"], out, "--rederive") == 4
    text = capsys.readouterr().err
    assert "signed numbers that do not follow from the signed evidence" in text
    assert not out.exists()


def exported(world: dict[str, Any], bundle: Path, out: Path) -> tuple[str, dict[str, Any]]:
    assert export(world, bundle, out) == 0
    text = out.read_text("utf-8")
    return text, json.loads(text)


@pytest.fixture(scope="module")
def bom(world: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return exported(world, world["bundle"], world["tmp"] / "bom.json")


# --- validation against the official CycloneDX 1.6 schema -------------------------------------------


def strict_error(text: str) -> object:
    """cyclonedx-python-lib's strict validator: None when valid."""
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


def draft7_errors(document: dict[str, Any]) -> list[str]:
    """The same schema files read directly, checked with jsonschema's Draft 7 validator and formats."""
    folder = schema_dir()
    schema = json.loads((folder / "bom-1.6.SNAPSHOT.schema.json").read_text("utf-8"))
    resources = [
        (
            f"http://cyclonedx.org/schema/{name}",
            DRAFT7.create_resource(json.loads((folder / name).read_text())),
        )
        for name in ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json")
    ]
    validator = Draft7Validator(
        schema, registry=Registry().with_resources(resources), format_checker=Draft7Validator.FORMAT_CHECKER
    )
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def assert_valid(text: str) -> None:
    assert strict_error(text) is None
    assert draft7_errors(json.loads(text)) == []


def test_bom_is_valid_cyclonedx_1_6(bom: tuple[str, dict[str, Any]]) -> None:
    text, document = bom
    assert_valid(text)
    assert (document["bomFormat"], document["specVersion"], document["version"]) == ("CycloneDX", "1.6", 1)
    assert document["metadata"]["timestamp"] == "2026-06-01T12:00:00Z"
    assert document["metadata"]["component"]["type"] == "machine-learning-model"


@pytest.mark.parametrize(
    ("where", "broken"),
    [
        (
            "metric value as a number",
            lambda d: mc(d)["quantitativeAnalysis"]["performanceMetrics"][0].update(value=0.5),
        ),
        ("unknown component type", lambda d: d["metadata"]["component"].update(type="neural-network")),
        (
            "URL that is not an IRI",
            lambda d: d["metadata"]["component"]["externalReferences"][0].update(url="a b"),
        ),
        (
            "licence id not in SPDX",
            lambda d: d["metadata"]["component"]["licenses"][0]["license"].update(id="X"),
        ),
    ],
)
def test_validators_reject_a_broken_bom(bom: tuple[str, dict[str, Any]], where: str, broken: Any) -> None:
    document = json.loads(bom[0])
    broken(document)
    assert strict_error(json.dumps(document)) is not None, where
    assert draft7_errors(document), where


def test_curated_spdx_ids_are_all_in_the_official_list() -> None:
    official = set(json.loads((schema_dir() / "spdx.SNAPSHOT.schema.json").read_text("utf-8"))["enum"])
    assert sorted(SPDX_IDS - official) == []


# --- content: every number from the signed files --------------------------------------------------


def mc(document: dict[str, Any]) -> dict[str, Any]:
    card: dict[str, Any] = document["metadata"]["component"]["modelCard"]
    return card


def expected_metrics(results: dict[str, Any]) -> dict[tuple[str, str], tuple[str, list[Any] | None]]:
    """(type, slice) -> (value, ci95) for every non-null estimate of the results file, read independently."""
    pack = results["pack"]["id"]
    out: dict[tuple[str, str], tuple[Any, list[Any] | None]] = {}
    sections = [(f"{pack}/{s}", m, e) for s, per in results["metrics"].items() for m, e in per.items()]
    sections.append((f"{pack}/worst_case_over_variants", "acc", results["robustness"]["worst_case"]))
    for slice_, name, entry in sections:
        for role, est in entry["roles"].items():
            out[(f"{name} [{role}]", slice_)] = (est["value"], est["ci95"])
        for pair, est in entry["differences"].items():
            if pair not in entry["roles"]:
                ci = None if None in est["ci95"] else est["ci95"]
                out[(f"{name} difference [{pair}]", slice_)] = (est["value"], ci)
        for role, ret in entry["retention"].items():
            if ret["value"] is not None:
                out[(f"{name} retention [{role}]", slice_)] = (ret["value"], None)
                out[(f"{name} ratio to teacher [{role}]", slice_)] = (ret["student_over_teacher"], None)
    for role, fid in results["fidelity"].items():
        out[(f"agreement_rate [{role}]", f"{pack}/all")] = (fid["agreement_rate"], None)
        out[(f"kl_{fid['kl']['level']} [{role}]", f"{pack}/all")] = (fid["kl"]["value"], None)
    for role, cal in results["calibration"].items():
        for key in ("ece_10_equal_mass", "ece_15_equal_width", "brier"):
            out[(f"{key} [{role}]", f"{pack}/all")] = (cal[key], None)
    for role, abstention in results["abstention"].items():
        for key in ("coverage", "accuracy_on_answered"):  # counts (answered, n) are not metrics
            out[(f"{key} [{role}]", f"{pack}/all")] = (abstention[key], None)
    for role, extraction in results["extraction"].items():
        fields = [("all", extraction["micro"])] + [
            (f"field={k}", v) for k, v in extraction["per_field"].items()
        ]
        for slice_, prf in fields:
            for key in ("precision", "recall", "f1"):
                out[(f"{key} [{role}]", f"{pack}/{slice_}")] = (prf[key], None)
    return out


def test_metrics_values_cis_and_slices_equal_the_signed_results(
    world: dict[str, Any], bom: tuple[str, dict[str, Any]]
) -> None:
    signed = json.loads((world["bundle"] / "runs" / "tiny-mc" / "results.json").read_text("utf-8"))
    metrics = mc(bom[1])["quantitativeAnalysis"]["performanceMetrics"]
    got = {(m["type"], m["slice"]): m for m in metrics}
    assert len(got) == len(metrics)  # (type, slice) identifies an entry
    expected = expected_metrics(signed)
    assert set(got) == set(expected)
    for key, (value, ci) in expected.items():
        entry = got[key]
        assert isinstance(entry["value"], str)
        assert float(entry["value"]) == value, key
        if ci is None:
            assert "confidenceInterval" not in entry, key
        else:
            bounds = entry["confidenceInterval"]
            assert [float(bounds["lowerBound"]), float(bounds["upperBound"])] == ci, key
    assert got[("acc [student]", "tiny-mc/variant=typo")]["value"] == "0.323457"


def properties(component: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for prop in component.get("properties", []):
        out.setdefault(prop["name"], []).append(prop["value"])
    return out


def statement(bundle: Path) -> dict[str, Any]:
    import base64

    envelope = json.loads((bundle / "receipt.json").read_bytes())
    result: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return result


def test_hashes_are_the_signed_weights_digests(
    world: dict[str, Any], bom: tuple[str, dict[str, Any]]
) -> None:
    import hashlib

    model = bom[1]["metadata"]["component"]
    subjects = {s["annotations"]["kind"]: s for s in statement(world["bundle"])["subject"]}
    assert model["hashes"] == [{"alg": "SHA-256", "content": subjects["weights"]["digest"]["sha256"]}]
    props = properties(model)
    assert props["receipts:weights:digest-rule"] == [FOLDER_RULE]
    assert "not the digest of one file" in props["receipts:weights:digest-covers"][0]
    manifest = json.loads((world["bundle"] / "weights.manifest.json").read_text("utf-8"))["files"]
    files = {c["name"]: c["hashes"][0]["content"] for c in model["components"]}
    assert files == {name: digest.removeprefix("sha256:") for name, digest in manifest.items()}
    weights = world["tmp"] / "weights"
    assert (
        files["model.safetensors"] == hashlib.sha256((weights / "model.safetensors").read_bytes()).hexdigest()
    )
    attestation = next(r for r in model["externalReferences"] if r["type"] == "attestation")
    receipt = (world["bundle"] / "receipt.json").read_bytes()
    assert attestation["hashes"] == [{"alg": "SHA-256", "content": hashlib.sha256(receipt).hexdigest()}]
    assert attestation["url"] == "smollm2-135m-distilled-24l@0.1.0/receipt.json"
    pack = subjects["pack"]
    assert bom[1]["components"][0]["hashes"] == [{"alg": "SHA-256", "content": pack["digest"]["sha256"]}]


def test_lineage_licences_and_considerations_come_from_the_card(bom: tuple[str, dict[str, Any]]) -> None:
    card = yaml.safe_load(CARD.read_text("utf-8"))
    model = bom[1]["metadata"]["component"]
    assert (model["name"], model["version"], model["publisher"]) == (
        "smollm2-135m-distilled-24l",
        "0.1.0",
        "receipts demo",
    )
    teacher, base = model["pedigree"]["ancestors"]
    card_teacher = card["lineage"]["teachers"][0]
    assert teacher["type"] == base["type"] == "machine-learning-model"
    assert teacher["name"] == card_teacher["name"]
    assert teacher["hashes"] == [
        {"alg": "SHA-256", "content": card_teacher["weights_digest"].removeprefix("sha256:")}
    ]
    assert teacher["licenses"] == [{"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}]
    assert base["name"] == card["lineage"]["base"]["name"]
    assert "hashes" not in base  # the card gives no base digest
    (choice,) = model["licenses"]
    assert (choice["license"]["id"], choice["license"]["url"]) == ("Apache-2.0", card["license"]["url"])
    license_props = properties(choice["license"])
    assert license_props["receipts:license:commercial_use"] == ["true"]
    assert license_props["receipts:license:redistribution"] == ["true"]
    parameters = mc(bom[1])["modelParameters"]
    assert parameters["approach"] == {"type": "supervised"}
    assert (parameters["task"], parameters["modelArchitecture"]) == ("text-generation", "LlamaForCausalLM")
    assert {"ref": "pack/tiny-mc@1.0.0"} in parameters["datasets"]
    considerations = mc(bom[1])["considerations"]
    assert considerations["users"] == card["intended_use"]["primary_users"]
    assert [e["name"] for e in considerations["ethicalConsiderations"]] == card["ethical_considerations"]
    assert set(card["caveats"]) <= set(considerations["technicalLimitations"])
    assert [f["groupAtRisk"] for f in considerations["fairnessAssessments"]] == [
        f["name"] for f in card["factors"]
    ]
    footprint = properties(model)
    assert footprint["receipts:footprint:footprint_cpu:verdict"] == ["INVALID"]


# --- bytes, tampering, hostile text, other cards ----------------------------------------------------


def test_exporting_twice_gives_identical_bytes(
    world: dict[str, Any], bom: tuple[str, dict[str, Any]]
) -> None:
    again = world["tmp"] / "again.json"
    assert export(world, world["bundle"], again) == 0
    assert again.read_bytes() == (world["tmp"] / "bom.json").read_bytes()


def test_tampered_receipt_exits_4_and_writes_nothing(world: dict[str, Any], tmp_path: Path) -> None:
    bundle = tmp_path / world["bundle"].name
    shutil.copytree(world["bundle"], bundle)
    card = bytearray((bundle / "card.yaml").read_bytes())
    card[200] ^= 0x01
    (bundle / "card.yaml").write_bytes(bytes(card))
    out = tmp_path / "bom.json"
    assert export(world, bundle, out) == 4
    assert list(tmp_path.glob("bom.json*")) == []


def test_hostile_card_text_is_carried_as_data(world: dict[str, Any], tmp_path: Path) -> None:
    path = hostile_card(tmp_path)
    card = yaml.safe_load(path.read_text("utf-8"))
    card["license"]["url"] = HOSTILE["js_link"]
    card["lineage"]["teachers"] = [{**card["lineage"]["teachers"][0], "weights_digest": TEACHER}]  # as run
    card["lineage"]["teachers"][0].pop("api_identifier")
    card["lineage"]["teachers"][0]["terms_of_service"] = "https://evil.example/<script>x</script>"
    card["model"]["contact"] = HOSTILE["raw_html"]
    path.write_text(yaml.safe_dump(card), "utf-8")
    text, document = exported(world, world["sign"](path, tmp_path / "receipts"), tmp_path / "bom.json")
    assert_valid(text)
    model = document["metadata"]["component"]
    assert model["description"] == HOSTILE["script"] + " " + HOSTILE["close_json"]
    considerations = mc(document)["considerations"]
    assert considerations["useCases"][:3] == [HOSTILE["md_link"], HOSTILE["raw_html"], HOSTILE["long"]]
    assert HOSTILE["md_html"] in considerations["technicalLimitations"]
    urls = [r["url"] for r in model["externalReferences"]]
    urls += [r["url"] for a in model["pedigree"]["ancestors"] for r in a.get("externalReferences", [])]
    assert urls == ["hostile-model@0.1.0/receipt.json", "https://example.com/"]  # the rest stays text
    assert "url" not in model["licenses"][0]["license"]
    assert properties(model["licenses"][0]["license"])["receipts:license:url"] == [HOSTILE["js_link"]]
    assert properties(model)["receipts:model:contact"] == [HOSTILE["raw_html"]]


def test_gemma_card_licenceref_and_quantized_lineage(world: dict[str, Any], tmp_path: Path) -> None:
    text, document = exported(world, world["sign"](GEMMA, tmp_path / "receipts"), tmp_path / "bom.json")
    assert_valid(text)
    card = yaml.safe_load(GEMMA.read_text("utf-8"))
    model = document["metadata"]["component"]
    license = model["licenses"][0]["license"]
    assert license["name"] == card["license"]["name"]
    assert license["licensing"] == {"altIds": ["LicenseRef-Gemma-Terms-of-Use"]}
    assert "id" not in license
    (base,) = model["pedigree"]["ancestors"]  # quantized: no teacher
    assert base["name"] == "google/gemma-3-270m"
    assert base["licenses"][0]["license"]["licensing"] == {"altIds": ["LicenseRef-Gemma-Terms-of-Use"]}
    assert properties(model)["receipts:lineage:relation"] == ["quantized"]
    assert properties(model)["receipts:quantization:scheme"] == ["Q4_K_M"]
    assert "approach" not in mc(document)["modelParameters"]  # quantizing is not learning


@pytest.mark.parametrize(
    ("license_id", "expected"),
    [
        ("MIT AND CC-BY-4.0", [{"expression": "MIT AND CC-BY-4.0", "acknowledgement": "declared"}]),
        ("NOASSERTION", [{"license": {"name": "NOASSERTION", "licensing": {"altIds": ["NOASSERTION"]}}}]),
    ],
)
def test_other_licence_forms_validate(
    world: dict[str, Any], tmp_path: Path, license_id: str, expected: list[dict[str, Any]]
) -> None:
    card = yaml.safe_load(CARD.read_text("utf-8"))
    card["license"]["id"] = license_id
    del card["license"]["name"]
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(card), "utf-8")
    text, document = exported(
        world, world["sign"](tmp_path / "card.yaml", tmp_path / "receipts"), tmp_path / "bom.json"
    )
    assert_valid(text)
    licenses = document["metadata"]["component"]["licenses"]
    for choice in licenses:
        choice.get("license", {}).pop("properties", None)
        choice.get("license", {}).pop("url", None)
        choice.get("license", {}).pop("acknowledgement", None)
    assert licenses == expected
    if "expression" in licenses[0]:  # no properties there: the permissions are the model's
        assert properties(document["metadata"]["component"])["receipts:license:commercial_use"] == ["true"]


def test_without_weights_the_hash_is_the_runs_student_digest(world: dict[str, Any], tmp_path: Path) -> None:
    bundle = world["sign"](CARD, tmp_path / "receipts", with_weights=False)
    text, document = exported(world, bundle, tmp_path / "bom.json")
    assert_valid(text)
    model = document["metadata"]["component"]
    student = json.loads((bundle / "runs" / "tiny-mc" / "results.json").read_text("utf-8"))["models"][
        "student"
    ]
    assert model["hashes"] == [{"alg": "SHA-256", "content": student["digest"].removeprefix("sha256:")}]
    assert properties(model)["receipts:weights:source"] == ["results.json models.student.digest"]
    assert "components" not in model  # no signed manifest, so no per-file hashes


def test_weights_manifest_changed_after_verifying_never_reaches_the_bom(
    world: dict[str, Any], tmp_path: Path
) -> None:
    """The BOM lists the per-file hashes of the manifest that verified, not the file on disk afterwards."""
    from receipts.export.cyclonedx import ml_bom
    from receipts.trust import load_trust_root
    from receipts.verify import verify_receipt

    bundle = tmp_path / world["bundle"].name
    shutil.copytree(world["bundle"], bundle)
    verified = verify_receipt(bundle, load_trust_root(world["trust"]), rederive=False)  # see export()
    signed = json.loads((bundle / "weights.manifest.json").read_bytes())["files"]
    (bundle / "weights.manifest.json").write_bytes(b'{"files": {}}')
    model = ml_bom(verified)["metadata"]["component"]
    listed = {c["name"]: c["hashes"][0]["content"] for c in model["components"]}
    assert signed
    assert listed == {name: digest.removeprefix("sha256:") for name, digest in signed.items()}
