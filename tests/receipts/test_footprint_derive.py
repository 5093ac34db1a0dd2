"""receipts.footprint: a footprint's derived numbers come back from its samples, and an edit is named.

``tests/data/footprint_demo_student.json`` is a real measurement, copied unchanged: ``receipts bench`` of the
demo student (``make demo``, 2026-12-06, fp32 and int8-dynamic, 30 calls of 128 prompt + 32 new tokens each
at one thread), written by the runner's own statistics code before that code moved into the kernel. That it
re-derives to the byte shows the move changed no number. ``tests/data/footprint_minimal.json`` is written
by hand (one failed point, no samples): it has no number the records contradict.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from receipts import footprint as fp
from tests.documents import DATA

DEMO = DATA / "footprint_demo_student.json"
Edit = Callable[[dict[str, Any]], str]


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DEMO.read_bytes())
    return value


def test_a_real_bench_footprint_rederives_to_the_byte(demo: dict[str, Any]) -> None:
    before = copy.deepcopy(demo)
    assert (json.dumps(fp.derive_footprint(demo), indent=1) + "\n").encode() == DEMO.read_bytes()
    assert fp.rederive_footprint(demo) == []
    assert demo == before  # derivation reads the document, never writes it


def test_the_hand_written_fixture_claims_nothing_its_records_contradict() -> None:
    minimal = json.loads((DATA / "footprint_minimal.json").read_bytes())
    assert minimal["points"][0]["status"] == "failed"
    assert fp.rederive_footprint(minimal) == []


def _p50(doc: dict[str, Any]) -> str:
    real = doc["points"][0]["metrics"]["ttft_s"]["p50"]
    doc["points"][0]["metrics"]["ttft_s"]["p50"] = 0.25
    return f"points[0].metrics.ttft_s.p50: signed 0.25, re-derived {real!r}"


def _cost(doc: dict[str, Any]) -> str:
    real = doc["summary"]["cost_per_1k_calls"]
    doc["summary"]["cost_per_1k_calls"] = 0.01
    return f"summary.cost_per_1k_calls: signed 0.01, re-derived {real!r}"


def _sample(doc: dict[str, Any]) -> str:
    signed = doc["points"][1]["metrics"]["e2e_s"]["max"]
    doc["points"][1]["samples"]["e2e_s"][0] = 9.0  # the slowest call, made slower, statistics left alone
    return f"points[1].metrics.e2e_s.max: signed {signed!r}, re-derived 9.0"


def _row(doc: dict[str, Any]) -> str:
    real = doc["summary"]["by_quant"]["int8-dynamic/c1"]["decode_tps_p50"]
    doc["summary"]["by_quant"]["int8-dynamic/c1"]["decode_tps_p50"] = 99.0
    return f"summary.by_quant.int8-dynamic/c1.decode_tps_p50: signed 99.0, re-derived {real!r}"


def _price(doc: dict[str, Any]) -> str:
    doc["settings"]["price"]["per_hour"] = 0.2  # the price changed, the cost it gives did not
    return "summary.cost_per_1k_calls: signed 0.0496"


def _roofline(doc: dict[str, Any]) -> str:
    doc["bandwidth"]["after"]["bytes_per_s"] *= 2
    return "bandwidth.bytes_per_s_used: signed"


def _watts(doc: dict[str, Any]) -> str:
    doc["settings"]["watts"] = 35.0
    return "points[0].energy.status: signed 'unavailable', re-derived 'estimated'"


def _missing(doc: dict[str, Any]) -> str:
    real = doc["summary"].pop("machine_seconds_per_1k_calls")
    return f"summary.machine_seconds_per_1k_calls: derived {real!r}, missing from the signed footprint"


def _extra_row(doc: dict[str, Any]) -> str:
    doc["summary"]["by_quant"]["bf16/c1"] = dict(doc["summary"]["by_quant"]["fp32/c1"], quant="bf16")
    return "summary.by_quant.bf16/c1: signed, but no point has that id"


def _calls(doc: dict[str, Any]) -> str:
    doc["points"][0]["calls"] = 300
    return "points[0].calls: signed 300, re-derived 30"


@pytest.mark.parametrize(
    "edit", [_p50, _cost, _sample, _row, _price, _roofline, _watts, _missing, _extra_row, _calls]
)
def test_an_edit_is_named_with_both_values(demo: dict[str, Any], edit: Edit) -> None:
    doc = copy.deepcopy(demo)
    expected = edit(doc)
    found = fp.rederive_footprint(doc)
    assert any(d.startswith(expected) for d in found), found


def test_work_is_bounded_before_any_bootstrap(demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    many = dict(demo, points=[demo["points"][0]] * (fp.MAX_POINTS + 1))
    with pytest.raises(ValueError, match=r"1,001 points; re-derivation computes at most 1,000"):
        fp.rederive_footprint(many)
    # the demo holds 2 points x (30 x 32 token times + 30 e2e + 30 tokenize + 30 energy readings)
    monkeypatch.setattr(fp, "MAX_SAMPLES", 2_000)
    monkeypatch.setattr(fp, "derive_footprint", pytest.fail)  # refused before anything is computed
    with pytest.raises(ValueError, match=r"2,100 raw samples; re-derivation computes at most 2,000"):
        fp.rederive_footprint(demo)


@pytest.mark.parametrize("seed", ["0", True, -1, 2**64, 1.0])
def test_a_seed_that_is_not_a_whole_number_is_refused(demo: dict[str, Any], seed: object) -> None:
    doc = dict(demo, settings=dict(demo["settings"], seed=seed))
    with pytest.raises(ValueError, match=r"settings\.seed is"):
        fp.derive_footprint(doc)
