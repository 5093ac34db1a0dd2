"""generator.charts: the hand-written SVGs parse, stay inside their viewBox, and keep labels inert.

The reliability diagrams are fed calibration entries built with receipts.metrics (the functions
runner.eval.report uses to write results.json), the latency chart a footprint from a real bench of a tiny
model, so both see the shapes real runs write. Charts read the typed documents verify_receipt gives
(receipts.formats); labels the schema constrains (pack ids, quantizations) are made hostile past it, with
``model_copy``, since a chart escapes every label whatever checked it before.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from generator import charts
from generator.figures import role_label
from receipts import schemas
from receipts.cli import main
from receipts.formats import Footprint, Results
from receipts.formats._shared import PackRef
from receipts.metrics import calibration
from receipts.metrics.latency import nearest_rank
from tests.models import tiny_llama

DATA = Path(__file__).parents[1] / "data"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script>"
TICK = re.compile(r"^(\d+(?:\.\d+)?) (ms|s)$")


def parse(svg: str | None) -> ET.Element:
    assert svg is not None
    root = ET.fromstring(svg)  # noqa: S314 - our own output; ElementTree expands no external entities
    assert root.tag == SVG + "svg"
    return root


def find(root: ET.Element, tag: str) -> list[ET.Element]:
    return list(root.iter(SVG + tag))


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in find(root, "text")]


def floats(element: ET.Element, *keys: str) -> list[float]:
    return [float(element.attrib[k]) for k in keys]


def polyline_points(line: ET.Element) -> list[tuple[float, float]]:
    pairs = (p.split(",") for p in line.attrib["points"].split())
    return [(float(x), float(y)) for x, y in pairs]


def assert_inside_viewbox(root: ET.Element) -> None:
    x0, y0, width, height = (float(v) for v in root.attrib["viewBox"].split())
    assert (x0, y0) == (0, 0)
    xs: list[float] = []
    ys: list[float] = []
    for el in root.iter():
        a, tag = el.attrib, el.tag.removeprefix(SVG)
        if tag == "circle":
            cx, cy, r = floats(el, "cx", "cy", "r")
            xs += [cx - r, cx + r]
            ys += [cy - r, cy + r]
        elif tag == "rect":
            x, y, w, h = floats(el, "x", "y", "width", "height")
            xs += [x, x + w]
            ys += [y, y + h]
        elif tag == "polyline":
            for x, y in polyline_points(el):
                xs.append(x)
                ys.append(y)
        elif tag in ("line", "text"):
            xs += [float(a[k]) for k in ("x", "x1", "x2") if k in a]
            ys += [float(a[k]) for k in ("y", "y1", "y2") if k in a]
    assert xs
    assert ys
    assert 0 <= min(xs) <= max(xs) <= width
    assert 0 <= min(ys) <= max(ys) <= height


def typed(results: dict[str, Any]) -> Results:
    """A results document around ``results`` (the parts a chart reads); the other required keys filled in.

    A calibration entry's required keys that a test leaves out are null (the schema does not type them).
    """
    pack = {"id": "tiny-mc", "version": "1.0.0", "digest": "sha256:" + "0" * 64, **results.get("pack", {})}
    calibration = {
        role: {"ece_10_equal_mass": None, "ece_15_equal_width": None, "reliability": None, **entry}
        for role, entry in results.get("calibration", {}).items()
    }
    document = {
        "format": "receipts.results/v1",
        "models": {"student": {"spec": "hf:student", "digest": "sha256:" + "1" * 64}},
        "examples": {"path": "examples.jsonl", "sha256": "2" * 64},
        **results,
        "pack": pack,
        **({"calibration": calibration} if "calibration" in results else {}),
    }
    return Results.parse(document)


def with_pack_id(results: Results, pack_id: str) -> Results:
    """``results`` with a pack id the schema would refuse (set past validation)."""
    return results.model_copy(
        update={"pack": PackRef.model_construct(**{**dict(results.pack), "id": pack_id})}
    )


def assert_inert(svg: str, root: ET.Element) -> None:
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    assert not [el for el in root.iter() if el.tag.removeprefix(SVG).lower() == "script"]


# --- reliability diagram ---------------------------------------------------------------------------


def calibration_entry(rng: random.Random, n: int, overconfidence: float) -> dict[str, Any]:
    """What runner.eval.report writes per role; confidences from 0.3 up, so the low bins stay empty (null)."""
    conf = [rng.uniform(0.3, 1.0) for _ in range(n)]
    correct = [float(rng.random() < c - overconfidence) for c in conf]
    bins = calibration.reliability_bins(conf, correct, n_bins=10, scheme="equal_width")
    return {
        "n": n,
        "confidence": "max softmax over choice log-likelihoods",
        "ece_10_equal_mass": calibration.ece_equal_mass(conf, correct),
        "ece_15_equal_width": calibration.ece_equal_width(conf, correct),
        "reliability": [asdict(b) for b in bins],
    }


def nonempty(entry: dict[str, Any]) -> int:
    return sum(1 for b in entry["reliability"] if b["count"] > 0)


@pytest.fixture
def results() -> dict[str, Any]:
    rng = random.Random(3)
    roles = {"teacher": 0.0, "base": 0.25, "student": 0.1, "student@int8": 0.15}
    return {
        "pack": {"id": "tiny-mc", "version": "1.0.0"},
        "calibration": {role: calibration_entry(rng, 80, skew) for role, skew in roles.items()},
    }


def test_reliability_draws_a_line_and_a_marker_per_nonempty_bin(results: dict[str, Any]) -> None:
    calibration = results["calibration"]
    assert any(b["mean_confidence"] is None for b in calibration["teacher"]["reliability"])  # null bins too
    svg = charts.reliability_diagram(typed(results))
    root = parse(svg)
    lines = find(root, "polyline")
    assert [len(polyline_points(line)) for line in lines] == [nonempty(e) for e in calibration.values()]
    assert len(find(root, "circle")) == sum(nonempty(e) for e in calibration.values())
    assert len({line.attrib["stroke"] for line in lines}) == 4  # one colour per role
    assert lines[0].attrib["stroke"] == charts.COLORS["teacher"]
    shown = texts(root)
    assert "reliability · tiny-mc" in shown
    for role, entry in calibration.items():
        assert f"{role_label(role)} · ECE {entry['ece_10_equal_mass']:.3f}" in shown  # the role in words
    assert {"0", "0.5", "1", "perfect calibration", "mean confidence", "accuracy"} <= set(shown)
    assert_inside_viewbox(root)


def test_reliability_puts_a_calibrated_role_on_the_dashed_diagonal() -> None:
    bins = [
        {"lower": 0.1 * k, "upper": 0.1 * (k + 1), "count": 5, "mean_confidence": c, "accuracy": c}
        for k, c in enumerate([0.05, 0.32, 0.5, 0.77, 0.98])
    ]
    skewed = [dict(b, accuracy=1.0 - b["accuracy"]) for b in bins]
    calibration = {
        "teacher": {"ece_10_equal_mass": 0.0, "reliability": bins},
        "student": {"ece_10_equal_mass": 0.5, "reliability": skewed},
    }
    root = parse(charts.reliability_diagram(typed({"calibration": calibration})))
    diagonal = next(line for line in find(root, "line") if "stroke-dasharray" in line.attrib)
    x1, y1, x2, y2 = floats(diagonal, "x1", "y1", "x2", "y2")

    def off_diagonal(x: float, y: float) -> float:
        return abs((x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)) / math.hypot(x2 - x1, y2 - y1)

    teacher, student = find(root, "polyline")
    assert max(off_diagonal(x, y) for x, y in polyline_points(teacher)) < 0.2  # rounding to 0.1 px
    assert max(off_diagonal(x, y) for x, y in polyline_points(student)) > 50
    assert "reliability · tiny-mc" in texts(root)  # the pack's id


def test_reliability_marker_grows_with_count_but_is_capped() -> None:
    counts = [1, 4, 16, 10**6]
    bins = [
        {"lower": 0.0, "upper": 1.0, "count": n, "mean_confidence": 0.2 * (k + 1), "accuracy": 0.5}
        for k, n in enumerate(counts)
    ]
    root = parse(charts.reliability_diagram(typed({"calibration": {"sft": {"reliability": bins}}})))
    radii = [float(c.attrib["r"]) for c in find(root, "circle")]
    assert radii == sorted(radii)
    assert radii[0] < radii[1] < radii[2] < radii[3] <= 10
    alone = parse(charts.reliability_diagram(typed({"calibration": {"sft": {"reliability": bins[:1]}}})))
    assert float(find(alone, "circle")[0].attrib["r"]) == radii[0]  # one scale, not relative to the biggest
    assert "SFT baseline · ECE n/a" in texts(root)


def test_reliability_keeps_at_most_six_roles(results: dict[str, Any]) -> None:
    entry = results["calibration"]["teacher"]
    many = {f"role{i}": entry for i in range(8)}
    root = parse(charts.reliability_diagram(typed({"calibration": many})))
    assert len(find(root, "polyline")) == 6
    shown = " ".join(texts(root))
    assert "role5" in shown
    assert "role6" not in shown


def test_reliability_labels_stay_inert(results: dict[str, Any]) -> None:
    pack_id = f'x" onload="alert(1)" {HOSTILE}'
    hostile = with_pack_id(typed({"calibration": {HOSTILE: results["calibration"]["teacher"]}}), pack_id)
    svg = charts.reliability_diagram(hostile)
    assert svg is not None
    root = parse(svg)
    assert_inert(svg, root)
    assert "onload" not in root.attrib
    assert root.attrib["aria-label"] == f"reliability · {pack_id}"
    assert any(t.startswith("<script>alert(1)") for t in texts(root))  # back as text, not markup


@pytest.mark.parametrize(
    "results",
    [
        {},
        {"calibration": {}},
        {"calibration": {"teacher": {"reliability": []}}},
        {"calibration": {"teacher": {"reliability": "not a list of bins"}}},
        {"calibration": {"teacher": {"reliability": ["not a bin"]}}},
        {"calibration": {"sft": {"reliability": [{"count": 0, "mean_confidence": 0.5, "accuracy": 0.5}]}}},
        {
            "calibration": {
                "teacher": {
                    "reliability": [
                        {"lower": 0.0, "upper": 0.5, "count": 0, "mean_confidence": None, "accuracy": None},
                        {"lower": 0.5, "upper": 1.0, "count": 0, "mean_confidence": None, "accuracy": None},
                    ]
                }
            }
        },
    ],
)
def test_reliability_is_none_without_a_nonempty_bin(results: dict[str, Any]) -> None:
    assert charts.reliability_diagram(typed(results)) is None


def test_retention_title_with_a_quote_stays_well_formed() -> None:
    teacher = {"value": 0.9, "ci95": [0.8, 1.0], "n": 10, "small_n": False}
    results = typed(
        {"primary_metric": "accuracy", "metrics": {"all": {"accuracy": {"roles": {"teacher": teacher}}}}}
    )
    root = parse(charts.retention_by_slice(with_pack_id(results, 'p" onload="x')))
    assert root.attrib["aria-label"] == 'accuracy per slice · p" onload="x'
    assert "onload" not in root.attrib


# --- latency distribution --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def footprint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real `receipts bench` of a tiny random Llama at concurrency 1 and 2 (about 15 s on 2 cores)."""
    folder = tmp_path_factory.mktemp("bench")
    out = folder / "footprint.json"
    short = ["--min-duration", "0.2", "--min-calls", "4", "--warmups", "1", "--prompt-tokens", "16"]
    args = [*short, "--new-tokens", "4", "--quant", "fp32", "--concurrency", "1,2", "--no-context-search"]
    assert main(["bench", f"hf:{tiny_llama(folder / 'model')}", *args, "--out", str(out)]) == 0
    fp: dict[str, Any] = json.loads(out.read_text())
    schemas.validate(fp, "footprint")
    assert [p["status"] for p in fp["points"]] == ["ok", "ok"]
    return fp


def axis(root: ET.Element) -> tuple[float, float, str]:
    """(x of 0, pixels per second, unit) read back from the tick labels."""
    labels = ((float(t.attrib["x"]), TICK.match("".join(t.itertext()))) for t in find(root, "text"))
    ticks = [(x, m) for x, m in labels if m]
    (x_zero, zero), (x_end, end) = ticks[0], ticks[-1]
    assert float(zero[1]) == 0
    scale = 1000 if end[2] == "ms" else 1
    return x_zero, (x_end - x_zero) / (float(end[1]) / scale), end[2]


def rows(root: ET.Element) -> list[ET.Element]:
    return [g for g in find(root, "g") if g.attrib.get("class") == "row"]


def test_latency_draws_a_box_row_per_ok_point_on_one_axis(footprint: dict[str, Any]) -> None:
    fp = copy.deepcopy(footprint)
    fp["points"].append({**fp["points"][0], "id": "bf16/c1", "quant": "bf16", "status": "failed"})
    root = parse(charts.latency_distribution(Footprint.parse(fp)))
    assert "end-to-end latency per call (s)" in texts(root)
    x_zero, per_second, unit = axis(root)
    assert unit == "ms"  # a 4-token call of a tiny model takes milliseconds
    drawn = rows(root)
    assert len(drawn) == 2  # the failed point has no row
    ok = [p for p in fp["points"] if p["status"] == "ok"]
    for point, row in zip(ok, drawn, strict=True):
        e2e = point["samples"]["e2e_s"]
        label, note = ("".join(t.itertext()) for t in find(row, "text"))
        assert label == f"fp32 c{point['concurrency']}"
        assert note.endswith(f" · n {len(e2e)}")
        dots = find(row, "circle")
        assert len(dots) == len(e2e)
        assert sorted(float(d.attrib["cx"]) for d in dots) == pytest.approx(
            [x_zero + per_second * s for s in sorted(e2e)], abs=0.1
        )
        median = next(ln for ln in find(row, "line") if ln.attrib.get("stroke-width") == "2")
        expected = x_zero + per_second * nearest_rank(e2e, 50)
        assert float(median.attrib["x1"]) == pytest.approx(expected, abs=0.1)
        box = find(row, "rect")[0]
        left, width = floats(box, "x", "width")
        assert left == pytest.approx(x_zero + per_second * nearest_rank(e2e, 25), abs=0.1)
        assert left - 0.1 <= float(median.attrib["x1"]) <= left + width + 0.1
        whisker = find(row, "line")[0]
        assert float(whisker.attrib["x1"]) == pytest.approx(x_zero + per_second * min(e2e), abs=0.1)
        assert float(whisker.attrib["x2"]) == pytest.approx(x_zero + per_second * max(e2e), abs=0.1)
    assert_inside_viewbox(root)


def test_latency_caps_dots_at_400_keeping_both_tails(footprint: dict[str, Any]) -> None:
    fp = copy.deepcopy(footprint)
    rng = random.Random(5)
    fp["points"] = fp["points"][:1]
    fp["points"][0]["samples"]["e2e_s"] = [rng.lognormvariate(0.5, 0.4) for _ in range(1000)]
    e2e = fp["points"][0]["samples"]["e2e_s"]
    root = parse(charts.latency_distribution(Footprint.parse(fp)))
    x_zero, per_second, unit = axis(root)
    assert unit == "s"
    assert max(e2e) <= (float(root.attrib["width"]) - x_zero) / per_second
    dots = sorted(float(d.attrib["cx"]) for d in find(root, "circle"))
    assert len(dots) == 400
    assert dots[0] == pytest.approx(x_zero + per_second * min(e2e), abs=0.1)
    assert dots[-1] == pytest.approx(x_zero + per_second * max(e2e), abs=0.1)
    assert all(label.endswith(" s") for label in texts(root) if TICK.match(label))
    assert_inside_viewbox(root)


def test_latency_labels_stay_inert(footprint: dict[str, Any]) -> None:
    fp = Footprint.parse(footprint)
    hostile = fp.points[0].model_copy(update={"quant": HOSTILE})  # a quantization the schema would refuse
    svg = charts.latency_distribution(fp.model_copy(update={"points": [hostile, *fp.points[1:]]}))
    assert svg is not None
    root = parse(svg)
    assert_inert(svg, root)
    assert texts(rows(root)[0])[0].startswith("<script>")  # back as text, not markup


def test_latency_is_none_for_the_failed_fixture() -> None:
    fp = json.loads((DATA / "footprint_minimal.json").read_text())
    assert charts.latency_distribution(Footprint.parse(fp)) is None


def test_latency_is_none_without_samples(footprint: dict[str, Any]) -> None:
    fp = copy.deepcopy(footprint)
    assert charts.latency_distribution(Footprint.parse(fp)) is not None
    for point in fp["points"]:
        point["samples"]["e2e_s"] = []
    assert charts.latency_distribution(Footprint.parse(fp)) is None  # a footprint has at least one point


# --- floor packs and robustness ----------------------------------------------------------------------


def _estimate(value: float, n: int = 40) -> dict[str, Any]:
    return {"value": value, "ci95": [max(0.0, value - 0.1), min(1.0, value + 0.1)], "n": n, "small_n": False}


def _scored(values: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A results document whose slices (``all``, ``variant=<name>``) score each role as given."""
    metrics = {
        name: {"acc": {"roles": {r: _estimate(v) for r, v in roles.items()}}}
        for name, roles in values.items()
    }
    bins = [{"lower": 0.0, "upper": 1.0, "count": 4, "mean_confidence": 0.6, "accuracy": 0.0}]
    return {
        "primary_metric": "acc",
        "metrics": metrics,
        "calibration": {"student": {"ece_10_equal_mass": 0.6, "reliability": bins}},
    }


def test_a_floor_pack_draws_no_chart_at_all() -> None:
    """Every role at zero: no per-slice chart, no reliability diagram, no robustness chart (issue #19)."""
    zero = {"teacher": 0.0, "base": 0.0, "student": 0.0}
    floor = typed(_scored({"all": zero, "variant=typo": zero}))
    assert charts.retention_by_slice(floor) is None
    assert charts.reliability_diagram(floor) is None
    assert charts.robustness_by_variant(floor) is None
    one_above = typed(_scored({"all": {**zero, "teacher": 0.1}, "variant=typo": zero}))
    assert charts.retention_by_slice(one_above) is not None
    assert charts.reliability_diagram(one_above) is not None
    assert charts.robustness_by_variant(one_above) is not None


def test_robustness_draws_each_variant_with_the_roles_in_words_and_escapes_names() -> None:
    scores = {"teacher": 0.9, "base": 0.3, "student": 0.7, "sft": 0.6}
    document = _scored({"all": scores, "variant=typo": {r: v - 0.2 for r, v in scores.items()}})
    document["metrics"][f"variant={HOSTILE}"] = document["metrics"]["variant=typo"]
    root = parse(charts.robustness_by_variant(typed(document)))
    shown = texts(root)
    assert {"as written", "typo", HOSTILE} <= set(shown)  # the hostile name is text, not markup
    assert {"teacher", "base model", "student", "SFT baseline"} <= set(shown)
    drawn = [r for r in find(root, "rect") if (r.get("x"), r.get("y")) != ("0", "0")]  # less the background
    assert len(drawn) == 3 * 4 + 4  # a bar per role per variant, and the legend
    assert "0.7" in shown
    assert "0.5" in shown
    assert charts.robustness_by_variant(typed(_scored({"all": scores}))) is None  # no variant: no chart
    assert_inside_viewbox(root)
