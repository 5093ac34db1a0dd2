"""The card's quantization-survival section: native rows, their signed numbers, and computed sentences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator.quantization import quantization_rows, quantization_sentences
from generator.render import collect, render
from receipts.formats import Results
from receipts.formats.statement import QuantizationRow
from receipts.quantization import quantization_table
from receipts.sign import sign_receipt
from receipts.trust import trust_root_from_bytes
from tests.receipts.test_quant_lineage import CARD, MEASURED, Q4, STUDENT, _footprint, lineage, quantized_run
from tests.receipts.test_quant_lineage import world as world


def _rows(table: list[dict[str, Any]]) -> list[QuantizationRow]:
    return [QuantizationRow.model_validate(row) for row in json.loads(json.dumps(table))]


def test_sentences_compute_the_share_of_retention_and_of_memory(world: dict[str, Any]) -> None:
    run = quantized_run(world, "card-units", quant_fidelity={"student@Q4_K_M": MEASURED})
    results = Results.parse(json.loads((run / "results.json").read_bytes()))
    own = _footprint(STUDENT, None, 600_000_000)
    native = _footprint(Q4, {"lineage": lineage(STUDENT)}, 150_000_000)
    rows = _rows(quantization_table([results], [own, native]))
    kept = results.metrics["all"]["acc"].retention["student@Q4_K_M"].value  # type: ignore[index,union-attr]
    (sentence,) = quantization_sentences(rows)
    assert sentence.startswith("Q4_K_M keeps 100% of the fp32 student's retention on capitals-mc@")
    assert f"({kept:.3f} [" in sentence
    assert "at 1/4.0 of the memory (150.0 MB against 600.0 MB peak RSS)" in sentence
    shown = {row["quant"]: row for row in quantization_rows(rows)}
    q4 = shown["Q4_K_M"]
    assert q4["file"] == "12.8 MB"
    assert q4["memory"] == ["150.0 MB"]
    assert q4["speed"] == ["80.0"]
    assert q4["ttft"] == ["0.050 s"]
    (ev,) = q4["evaluated"]
    assert (ev["kld"], ev["same_top"]) == ("0.0123 ± 0.0011", "0.951 ± 0.004")
    assert ev["flips"] == "3 lost, 1 gained of 40 (vs the full-precision student)"
    assert shown["fp32"]["evaluated"][0]["kld"] == "reference"


def test_a_quantization_without_numbers_says_what_is_missing(world: dict[str, Any]) -> None:
    run = quantized_run(world, "card-missing")
    results = Results.parse(json.loads((run / "results.json").read_bytes()))
    rows = _rows(quantization_table([results], []))
    (sentence,) = quantization_sentences(rows)
    assert "its memory was not measured (no benched point at Q4_K_M)" in sentence
    (ev,) = next(r for r in quantization_rows(rows) if r["quant"] == "Q4_K_M")["evaluated"]
    assert (ev["kld"], ev["same_top"]) == ("not measured", "not measured")
    legacy = QuantizationRow.model_validate(
        {
            "quant": "int8-dynamic",
            "evaluated": {
                "p@1": {"role": "student@int8-dynamic", "metric": "acc", "score": 0.5, "retention": None}
            },
            "benched": [],
        }
    )
    (old,) = quantization_rows([legacy])[0]["evaluated"]
    assert (old["kld"], old["flips"], old["retention_ci"]) == (
        "not in this receipt",
        "not in this receipt",
        "",
    )


def test_the_card_page_shows_the_native_row_from_the_verified_receipt(
    world: dict[str, Any],
    tmp_path: Path,
) -> None:
    run = quantized_run(world, "card-page")
    sign_receipt(CARD, [world["key"]], tmp_path / "receipts", runs=[run])
    root_bytes = (world["tmp"] / "trust.json").read_bytes()
    root = trust_root_from_bytes(root_bytes)
    files = render(collect(tmp_path / "receipts", root), root, root_bytes).files
    (name,) = [n for n in files if n.startswith("models/") and n.count("/") == 3 and n.endswith("/index.md")]
    page = files[name].decode()
    section = page.split("<h3>Quantization survival</h3>", 1)[1].split("</table>", 1)[0]
    assert "Q4_K_M keeps 100% of the fp32 student&#39;s retention" in section
    assert '<th scope="row" rowspan="1">Q4_K_M</th><td rowspan="1">12.8 MB</td>' in section
    assert "<td>llama.cpp</td>" not in section  # the fixture's identity names no backend kind
    assert "<td>not measured</td><td>not measured</td>" in section  # no KLD in this run
    assert "(vs the teacher)" in section
    assert "not benched" in section
    assert "<script" not in section
