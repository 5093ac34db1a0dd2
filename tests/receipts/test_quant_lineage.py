"""A quantized student's lineage is signed and re-derived; the quantization table joins it (issue #21).

The runs are real ``receipts run`` outputs (fake models); the ``student@Q4_K_M`` role is the student's
rows under a second role, with the identity a ``llamacpp:`` run of a ``receipts quantize`` file records
(its own file digest, ``extra.lineage``), and every derived section recomputed from the rows, so the
numbers re-derive and only the lineage is under test.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.derive import DERIVED, OPTIONAL_DERIVED, derive_results, facts_of
from receipts.errors import InputError
from receipts.formats import Footprint, Results
from receipts.keys import generate
from receipts.quantization import as_signed_before_21, quantization_table
from receipts.sign import sign_receipt
from receipts.trust import new_root

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]
Q4 = "sha256:" + "4" * 64
OTHER = "sha256:" + "9" * 64
STUDENT = "sha256:" + "5" * 64
TOOLCHAIN = {"llama_cpp_python": "0.3.36", "llama_cpp_commit": "0c1e570", "build_flags_sha256": "f" * 64}
FIDELITY = {"mean_kld": 0.0123, "mean_kld_unc": 0.0011, "same_top_rate": 0.951, "same_top_rate_unc": 0.004}
_ESTIMATE = {"value": 0.075, "ci95": [0.0, 0.15], "n": 40, "small_n": False}
MEASURED = FIDELITY | {
    "base": {"file": "student.F16.gguf", "quant": "F16"},
    "tokens": 400,
    "items": 40,
    "missing": 0,
    **dict.fromkeys(
        ("kld_median", "kld_p90", "kld_p95", "kld_p99", "kld_max", "delta_p_mean", "delta_p_rms"), 0.01
    ),
    **dict.fromkeys(("delta_p_mean_unc", "delta_p_rms_unc", "ln_ppl_ratio_unc"), 0.001),
    "ln_ppl_ratio": 0.002,
    "flips": {
        "against": "student",
        "n": 40,
        "lost": 3,
        "gained": 1,
        "lost_rate": _ESTIMATE,
        "gained_rate": _ESTIMATE,
        "mcnemar": {"p_value": 0.625, "method": "exact"},
    },
}
"""A ``quant_fidelity`` entry as ``receipts run`` writes one (the numbers are made up: tables only, never
signed, since the rows here carry no KLD evidence for verify to re-derive them from)."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("lineage")
    key = generate()
    (tmp / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        argv = [
            "run",
            str(ROOT / "packs" / "capitals-mc"),
            *ROLES,
            "--limit",
            "40",
            "--out",
            str(tmp / "run"),
        ]
        assert main(argv) == 0
    return {"tmp": tmp, "key": key}


def lineage(source: str, quant: str = "Q4_K_M") -> dict[str, Any]:
    return {
        "quantized_from": source,
        "quant": quant,
        "base": "F16",
        "bytes": 12_803_296,
        "manifest_sha256": "sha256:" + "c" * 64,
        "toolchain": TOOLCHAIN,
    }


def quantized_run(world: dict[str, Any], name: str, source: str | None = None, **extra: Any) -> Path:
    """The run with a ``student@Q4_K_M`` role quantized from ``source`` (default: the run's student)."""
    run = world["tmp"] / f"run-{name}"
    shutil.copytree(world["tmp"] / "run", run)
    results = json.loads((run / "results.json").read_bytes())
    rows = [json.loads(line) for line in (run / "examples.jsonl").read_bytes().splitlines()]
    student = results["models"]["student"]
    student["digest"] = STUDENT  # the fake student has an endpoint only; a real one has its weights digest
    for row in rows:
        row["roles"]["student@Q4_K_M"] = copy.deepcopy(row["roles"]["student"])
    results["models"]["student@Q4_K_M"] = {
        "spec": "llamacpp:q/student.Q4_K_M.gguf",
        "digest": Q4,
        "storage_quant": "Q4_K_M",
        "compute_dtype": "native",
        "tokenizer": student.get("tokenizer"),
        "extra": {"lineage": lineage(source or student["digest"]), "runtime": TOOLCHAIN},
    }
    header = {k: v for k, v in results.items() if k not in DERIVED and k not in OPTIONAL_DERIVED}
    results |= derive_results(header, rows, facts_of(results), bounded=True) | extra
    data = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows).encode()
    (run / "examples.jsonl").write_bytes(data)
    import hashlib

    results["examples"]["sha256"] = hashlib.sha256(data).hexdigest()
    (run / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True), "utf-8")
    return run


def verify(world: dict[str, Any], bundle: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", str(bundle), "--trust-root", str(world["tmp"] / "trust.json")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def statement(bundle: Path) -> dict[str, Any]:
    import base64

    envelope = json.loads((bundle / "receipt.json").read_bytes())
    value: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return value


def test_a_true_lineage_is_signed_verified_and_tabled(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    run = quantized_run(world, "true")
    bundle = sign_receipt(CARD, [world["key"]], world["tmp"] / "true", runs=[run])
    code, text = verify(world, bundle, capsys)
    assert code == 0, text
    table = {row["quant"]: row for row in statement(bundle)["predicate"]["quantization"]}
    assert list(table) == ["fp32", "Q4_K_M"]
    results = json.loads((run / "results.json").read_bytes())
    student = results["models"]["student"]["digest"]
    q4, fp32 = table["Q4_K_M"], table["fp32"]
    assert (q4["quantized_from"], q4["file_bytes"], fp32["quantized_from"]) == (student, 12_803_296, None)
    (pack,) = q4["evaluated"]
    kept = results["metrics"]["all"]["acc"]["retention"]["student@Q4_K_M"]
    assert q4["evaluated"][pack]["retention"] == kept["value"]
    assert q4["evaluated"][pack]["retention_ci95"] == kept["ci95"]
    assert q4["evaluated"][pack]["fidelity"] is None  # no KLD measured in this run: the table says so
    assert fp32["evaluated"][pack]["fidelity"] is None  # the reference itself: nothing to compare
    flips = results["flips"]["slices"]["all"]["student@Q4_K_M"]
    assert q4["evaluated"][pack]["flips"] == {"against": "teacher"} | {
        k: flips[k] for k in ("n", "lost", "gained")
    }


def test_flips_against_the_student_are_taken_where_the_run_measured_them(world: dict[str, Any]) -> None:
    run = quantized_run(world, "flips", quant_fidelity={"student@Q4_K_M": MEASURED})
    results = Results.parse(json.loads((run / "results.json").read_bytes()))
    table = {row["quant"]: row for row in quantization_table([results], [])}
    (q4,) = table["Q4_K_M"]["evaluated"].values()
    (fp32,) = table["fp32"]["evaluated"].values()
    assert q4["flips"] == {"against": "student", "n": 40, "lost": 3, "gained": 1}
    assert q4["fidelity"] == FIDELITY
    assert fp32["flips"]["against"] == "teacher"  # the student itself: flips against the teacher


def test_sign_refuses_a_lineage_to_another_model_naming_both_digests(world: dict[str, Any]) -> None:
    run = quantized_run(world, "other", OTHER)
    student = json.loads((run / "results.json").read_bytes())["models"]["student"]["digest"]
    with pytest.raises(InputError, match="not a quantization of the signed student") as caught:
        sign_receipt(CARD, [world["key"]], world["tmp"] / "other", runs=[run])
    assert f"student@Q4_K_M was quantized from {OTHER}, but the run's student is {student}" in str(
        caught.value
    )
    assert not (world["tmp"] / "other").exists() or not any((world["tmp"] / "other").iterdir())


def test_verify_fails_a_re_signed_false_lineage_naming_it(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signer who skips the check (or edits the lineage and re-signs) gets exit 4 at verify."""
    run = quantized_run(world, "forged", OTHER)
    monkeypatch.setattr("receipts.sign.lineage_problems", lambda runs: [])
    bundle = sign_receipt(CARD, [world["key"]], world["tmp"] / "forged", runs=[run])
    monkeypatch.undo()
    code, text = verify(world, bundle, capsys)
    assert code == 4, text
    assert "quantization lineage" in text
    assert f"student@Q4_K_M was quantized from {OTHER}" in text
    assert "Traceback" not in text


def test_a_malformed_or_mismatched_lineage_is_refused(world: dict[str, Any]) -> None:
    run = quantized_run(world, "malformed")
    results = json.loads((run / "results.json").read_bytes())
    results["models"]["student@Q4_K_M"]["extra"]["lineage"]["quant"] = "Q8_0"
    (run / "results.json").write_text(json.dumps(results), "utf-8")
    with pytest.raises(InputError, match=r"student@Q4_K_M records the lineage of a Q8_0 file"):
        sign_receipt(CARD, [world["key"]], world["tmp"] / "mismatched", runs=[run])
    results["models"]["student@Q4_K_M"]["extra"]["lineage"] = {"quantized_from": "sha256:nope"}
    (run / "results.json").write_text(json.dumps(results), "utf-8")
    with pytest.raises(InputError, match=r"models\.student@Q4_K_M\.extra\.lineage is not a quantize lineage"):
        sign_receipt(CARD, [world["key"]], world["tmp"] / "malformed", runs=[run])


def _footprint(digest: str, extra: dict[str, Any] | None, peak: int) -> Footprint:
    value = json.loads((ROOT / "tests" / "data" / "footprint_minimal.json").read_bytes())
    value["model"] |= {"digest": digest, "kind": "gguf", "file_bytes": 12_803_296}
    if extra is not None:
        value["model"]["extra"] = extra
    point = value["summary"]["by_quant"]["fp32/c1"]
    point |= {
        "status": "ok",
        "verdict": "VALID",
        "peak_rss_bytes": peak,
        "decode_tps_p50": 80.0,
        "ttft_p50_s": 0.05,
    }
    return Footprint.parse(value)


def test_footprints_join_by_digest_or_by_lineage_to_the_student(world: dict[str, Any]) -> None:
    run = quantized_run(world, "join")
    results = Results.parse(json.loads((run / "results.json").read_bytes()))
    student = results.models["student"].digest
    assert student is not None
    own = _footprint(student, None, 600_000_000)
    native = _footprint(Q4, {"lineage": lineage(student)}, 150_000_000)
    stranger = _footprint(OTHER, {"lineage": lineage(OTHER)}, 100_000_000)
    table = {row["quant"]: row for row in quantization_table([results], [own, native, stranger])}
    assert [b["peak_rss_bytes"] for b in table["fp32"]["benched"]] == [600_000_000]
    assert [b["peak_rss_bytes"] for b in table["Q4_K_M"]["benched"]] == [
        150_000_000
    ]  # under its lineage quant
    assert table["Q4_K_M"]["benched"][0]["ttft_p50_s"] == 0.05
    assert set(table) == {"fp32", "Q4_K_M"}  # a footprint quantized from another model never joins


def test_a_table_signed_before_issue_21_is_compared_in_its_own_shape(world: dict[str, Any]) -> None:
    run = quantized_run(world, "legacy")
    results = Results.parse(json.loads((run / "results.json").read_bytes()))
    table = quantization_table([results], [])
    legacy = as_signed_before_21(
        [{"quant": "fp32", "evaluated": {}, "benched": []}], table
    )  # an old receipt's rows carry no file_bytes
    assert all(set(row) == {"quant", "evaluated", "benched"} for row in legacy)
    assert all(
        set(e) == {"role", "metric", "score", "retention"} for r in legacy for e in r["evaluated"].values()
    )
    assert as_signed_before_21(table, table) is table  # today's shape: compared whole


def test_a_student_run_natively_is_its_quantizations_row_and_older_receipts_still_verify(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A student that is itself a GGUF run natively (Gemma in the demo) is evaluated at its quantization.

    Its runs and its footprint share one row, Q4_K_M (the demo's buyer page called it "not evaluated at
    this quantization" when the run was filed under fp32); a receipt signed under the old rule verifies.
    """
    run = world["tmp"] / "run-native"
    shutil.copytree(world["tmp"] / "run", run)
    results = json.loads((run / "results.json").read_bytes())
    results["models"]["student"] |= {"digest": Q4, "storage_quant": "Q4_K_M", "compute_dtype": "native"}
    (run / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True), "utf-8")
    typed = Results.parse(results)
    value = json.loads((ROOT / "tests" / "data" / "footprint_minimal.json").read_bytes())
    value["model"] |= {"digest": Q4, "kind": "llamacpp", "file_bytes": 12_803_296}
    point = value["summary"]["by_quant"]["fp32/c1"]
    point |= {"quant": "Q4_K_M", "status": "ok", "verdict": "VALID", "peak_rss_bytes": 150_000_000}
    table = {row["quant"]: row for row in quantization_table([typed], [Footprint.parse(value)])}
    assert set(table) == {"Q4_K_M"}
    (pack,) = table["Q4_K_M"]["evaluated"]
    assert table["Q4_K_M"]["evaluated"][pack]["role"] == "student"
    assert [b["peak_rss_bytes"] for b in table["Q4_K_M"]["benched"]] == [150_000_000]
    legacy = quantization_table([typed], [], legacy=True)
    assert [row["quant"] for row in legacy] == ["fp32"]
    bundle = sign_receipt(CARD, [world["key"]], world["tmp"] / "native", runs=[run])
    assert [row["quant"] for row in statement(bundle)["predicate"]["quantization"]] == ["Q4_K_M"]
    assert verify(world, bundle, capsys)[0] == 0
    import receipts.sign

    old = functools.partial(quantization_table, legacy=True)
    monkeypatch.setattr(receipts.sign, "quantization_table", old)
    bundle = sign_receipt(CARD, [world["key"]], world["tmp"] / "native-old", runs=[run])
    assert [row["quant"] for row in statement(bundle)["predicate"]["quantization"]] == ["fp32"]
    code, text = verify(world, bundle, capsys)
    assert code == 0, text
