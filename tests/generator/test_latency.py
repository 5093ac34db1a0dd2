"""Card pages show latency p50/p95/p99 where the footprint publishes them, and why not in words where not.

The footprint is tests/data/footprint_demo_student.json, a real bench at the default settings (30 calls of
32 new tokens per point): TTFT and per-call TPOT have 30 samples (p50 only), the pooled gaps between new
tokens 930 (p50, p95 and p99).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from generator.latency import latency_rows, null_words
from generator.render import collect, render
from receipts.digests import digest_weights
from receipts.formats import Footprint
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes
from tests.documents import DATA

DEMO = DATA / "footprint_demo_student.json"


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DEMO.read_bytes())
    return value


def test_each_measured_point_gets_ttft_tpot_and_per_token_rows(demo: dict[str, Any]) -> None:
    rows = latency_rows([Footprint.parse(demo)])
    assert [(r["quant"], r["measure"], r["n"]) for r in rows[:3]] == [
        ("fp32", "TTFT", 30),
        ("fp32", "TPOT", 30),
        ("fp32", "gap between tokens", 930),
    ]
    assert len(rows) == 6  # and the same three for int8-dynamic
    heads = [(r["first"], r["span"], r["hardware"]) for r in rows[:3]]
    assert heads == [(True, 3, None), (False, 3, None), (False, 3, None)]  # one machine: not repeated
    ttft, _, tokens = rows[:3]
    signed = demo["points"][0]["metrics"]
    assert ttft["cells"] == [
        {"value": signed["ttft_s"]["p50"], "why": None},
        {"value": None, "why": "p95 needs ≥ 130 calls; this run made 30"},
        {"value": None, "why": "p99 needs ≥ 662 calls; this run made 30"},
    ]
    assert [c["value"] for c in tokens["cells"]] == [signed["itl_s"][p] for p in ("p50", "p95", "p99")]
    assert all(c["why"] is None for c in tokens["cells"])


def test_an_unmeasured_point_has_no_row() -> None:
    minimal = json.loads((DATA / "footprint_minimal.json").read_bytes())
    assert latency_rows([Footprint.parse(minimal)]) == []


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("insufficient_samples: 1,0 < 2", "insufficient_samples: 1,0 < 2"),  # not the bench form
        ("no_samples", "no calls measured"),
        (None, "not published"),
    ],
)
def test_other_reasons_are_shown_as_signed_or_in_words(reason: str | None, words: str) -> None:
    assert null_words("p95", reason, "calls") == words


def test_the_card_page_shows_the_percentiles(tmp_path: Path, demo: dict[str, Any]) -> None:
    weights = DATA / "weights_golden"
    footprint = dict(demo, model=dict(demo["model"], digest=f"sha256:{digest_weights(weights).root}"))
    path = tmp_path / "student.json"
    path.write_text(json.dumps(footprint, indent=1) + "\n", "utf-8")
    key = generate()
    root_bytes = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    card = DATA / "card_fake_teacher.yaml"
    sign_receipt(card, [key], tmp_path / "receipts", footprints=[path], weights=weights)
    root = trust_root_from_bytes(root_bytes)
    files = render(collect(tmp_path / "receipts", root), root, root_bytes).files
    page = next(data for name, data in files.items() if name.endswith("/index.md")).decode("utf-8")
    itl = demo["points"][0]["metrics"]["itl_s"]
    assert "<h3>Latency percentiles</h3>" in page
    assert '<td rowspan="3">int8-dynamic c1</td><td>TTFT</td><td>30</td>' in page
    row = (
        "<td>gap between tokens</td><td>930</td>"
        f"<td>{itl['p50']:.4f}</td><td>{itl['p95']:.4f}</td><td>{itl['p99']:.4f}</td>"
    )
    assert row in page
    assert "<td><em>p95 needs ≥ 130 calls; this run made 30</em></td>" in page
