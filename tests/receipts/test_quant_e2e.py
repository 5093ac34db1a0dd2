"""End to end on real llama.cpp: quantize → run the Q4_K_M file as ``student@Q4_K_M`` → sign → verify.

A real tiny model (``tests.models.tiny_smol``), llama.cpp's converter and llama-quantize through
``receipts quantize``, the ``llamacpp:`` backend, the real signer and verifier.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.digests import digest_weights
from receipts.keys import generate
from receipts.quantization import FIDELITY_KEYS
from receipts.sign import sign_receipt
from receipts.trust import new_root
from tests.models import tiny_smol

ROOT = Path(__file__).parents[2]
MINIMAL = ROOT / "tests" / "data" / "pack_minimal"
CARD = ROOT / "tests" / "vectors" / "inputs" / "card-vector-card-1.0.0.yaml"  # an original model, no teacher


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.slow
def test_a_native_quantization_is_run_signed_and_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    folder = tiny_smol(tmp_path / "tiny")
    code, text = run(capsys, "quantize", folder, "--to", "Q8_0,Q4_K_M", "--out", tmp_path / "q")
    assert code == 0, text
    q4 = tmp_path / "q" / "tiny.Q4_K_M.gguf"
    roles = ["--teacher", f"hf:{folder}", "--student", f"hf:{folder}", "--student-variant", f"llamacpp:{q4}"]
    code, text = run(capsys, "run", MINIMAL, *roles, "--threads", "1", "--out", tmp_path / "run")
    assert code == 0, text
    results: dict[str, Any] = json.loads((tmp_path / "run" / "results.json").read_text("utf-8"))
    source = "sha256:" + digest_weights(folder).root
    native = results["models"]["student@Q4_K_M"]
    assert (native["kind"], native["extra"]["lineage"]["quantized_from"]) == ("llamacpp", source)
    assert results["models"]["student"]["digest"] == source

    key = generate()
    trust = tmp_path / "trust.json"
    trust.write_bytes(new_root("Vector Lab", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    bundle = sign_receipt(CARD, [key], tmp_path / "receipts", runs=[tmp_path / "run"], weights=folder)
    code, text = run(capsys, "verify", bundle, "--trust-root", trust, "--weights", folder)
    assert code == 0, text
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    table = {
        r["quant"]: r for r in json.loads(base64.b64decode(envelope["payload"]))["predicate"]["quantization"]
    }
    assert list(table) == ["fp32", "Q4_K_M"]
    assert table["Q4_K_M"]["quantized_from"] == source
    assert table["Q4_K_M"]["file_bytes"] == os.path.getsize(q4)
    (entry,) = table["Q4_K_M"]["evaluated"].values()
    assert (entry["role"], entry["kind"]) == ("student@Q4_K_M", "llamacpp")
    measured = results["quant_fidelity"]["student@Q4_K_M"]  # receipts run measured it against the F16 file
    assert entry["fidelity"] == {key: measured[key] for key in FIDELITY_KEYS}
    assert entry["fidelity"]["mean_kld"] > 0
    if "flips" in measured:  # the run's student is the folder the Q4_K_M file was quantized from
        assert entry["flips"] == {"against": "student"} | {
            k: measured["flips"][k] for k in ("n", "lost", "gained")
        }

    # the lineage edited in the signed bundle: the results no longer match their signed digest
    signed = next(bundle.glob("runs/*/results.json"))
    value = json.loads(signed.read_bytes())
    value["models"]["student@Q4_K_M"]["extra"]["lineage"]["quantized_from"] = "sha256:" + "0" * 64
    signed.write_text(json.dumps(value), "utf-8")
    code, text = run(capsys, "verify", bundle, "--trust-root", trust)
    assert code == 4, text
    assert signed.relative_to(bundle).as_posix() in text
