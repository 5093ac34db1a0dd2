"""The signed figures verify.js shows in Chromium, and its formatter against generator/figures.py's.

The catalog is tests/generator/test_site_figures.py's (one receipt with every headline figure, one without
runs), served from 127.0.0.1 by tests/generator/test_browser.py's ``serve`` fixture (its servers shut down
at the end).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from generator.figures import figures, number
from receipts.formats.statement import Predicate
from tests.generator.test_browser import browser, serve, status_of  # noqa: F401 - fixtures, used by name
from tests.generator.test_site_figures import MODEL, PLAIN, build_figures_site, edit

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def figures_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser-figures")
    build_figures_site(tmp, tmp / "site")
    return tmp / "site"


def signed_predicate(site: Path, page: str) -> dict[str, Any]:
    receipt = next((site / page).glob("*@*/receipt.json"))
    predicate: dict[str, Any] = json.loads(base64.b64decode(json.loads(receipt.read_bytes())["payload"]))[
        "predicate"
    ]
    return predicate


def typed(predicate: dict[str, Any]) -> Predicate:
    """A predicate's JSON as the typed model generator/figures.py reads (as verify_receipt gives it)."""
    return Predicate.model_validate(predicate, by_alias=True, by_name=False)


def signed_box(page: Any) -> dict[str, Any]:
    """What the verification box says under the label: its summary line, the signed figures, any warning."""
    page.wait_for_selector(".rc-verify .rc-signed", timeout=20000)
    result: dict[str, Any] = page.evaluate(
        """() => {
             const box = document.querySelector('.rc-verify .rc-signed');
             const text = el => el.textContent;
             return {
               title: text(box.querySelector('summary')),
               open: box.open,
               facts: Array.from(box.querySelectorAll('.rc-signed-facts > dt'),
                                 dt => [text(dt), text(dt.nextElementSibling)]),
               warning: (w => w && text(w))(box.querySelector('.rc-signed-warning')),
             };
           }"""
    )
    return result


def signed_files(site: Path, page: str) -> dict[str, str]:
    """The published bundle's signed JSON files as text, by subject name (what verify.js fetched)."""
    bundle = next((site / page).glob("*@*/receipt.json")).parent
    statement = json.loads(base64.b64decode(json.loads((bundle / "receipt.json").read_bytes())["payload"]))
    names = [s["name"] for s in statement["subject"] if s["name"].endswith(".json")]
    return {name: (bundle / name).read_text("utf-8") for name in names if (bundle / name).is_file()}


def test_verified_page_shows_the_signed_figures(
    figures_site: Path,
    serve: Any,  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The box at 1280 and 390 px; screenshots go to $RECEIPTS_SCREENSHOTS (default: the test's tmp_path)."""
    shots = Path(os.environ.get("RECEIPTS_SCREENSHOTS") or tmp_path)
    texts = signed_files(figures_site, MODEL)
    files = {name: text.encode("utf-8") for name, text in texts.items()}
    signed = figures(typed(signed_predicate(figures_site, MODEL)), files)
    assert "runs.tiny-mc.retention.low" in signed  # the files' figures are among them
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.goto(serve(figures_site) + "/" + MODEL)
        state, text = status_of(page)
        assert state == "verified", text
        box = signed_box(page)
        assert box["title"] == f"All {len(signed)} figures on this page are the signed ones"
        assert box["open"] is False  # folded: the label above prints them
        facts = dict(box["facts"])
        assert facts["model name"] == "smollm2-135m-distilled-24l"
        assert facts["gate verdict"] == "fail"
        assert facts["tiny-mc: student score"] == "0.429"
        assert facts["tiny-mc: student retention"] == "0.438"
        assert sorted(facts.values()) == sorted(signed.values())
        assert box["warning"] is None  # the page's own figures are the signed ones
        shown = page.evaluate(
            "([p, t]) => window.receiptsVerify.figures(p, t)", [signed_predicate(figures_site, MODEL), texts]
        )
        assert shown == signed  # the same keys and strings as generator/figures.py
        page.locator(".rc-verify").screenshot(path=str(shots / f"figures-{width}.png"))
        page.close()


def test_a_page_without_runs_shows_model_and_gate(figures_site: Path, serve: Any, browser: Any) -> None:  # noqa: F811
    page = browser.new_page()
    page.goto(serve(figures_site) + "/" + PLAIN)
    assert status_of(page)[0] == "verified"
    box = signed_box(page)
    assert box["facts"] == [
        ["model name", "plain-model"], ["model version", "0.1.0"], ["publisher", "receipts demo"],
        ["gate verdict", "not evaluated"],
    ]  # fmt: skip
    assert (
        page.locator(".rc-label").get_by_text("No evaluation runs in this receipt: nothing measured.").count()
        == 1
    )


def test_edited_html_still_shows_the_signed_figure(
    figures_site: Path,
    serve: Any,  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    copy = tmp_path / "site"
    shutil.copytree(figures_site, copy)
    key = 'data-rc-figure="runs.tiny-mc.scores.student"'
    edit(copy / MODEL / "index.html", f"{key}>0.429<", f"{key}>0.900<")
    page = browser.new_page()
    page.goto(serve(copy) + "/" + MODEL)
    state, text = status_of(page)
    assert state == "verified", text  # the receipt itself is intact
    box = signed_box(page)
    assert ["tiny-mc: student score", "0.429"] in box["facts"]  # the signed value, beside the edited page
    assert box["open"] is True  # a difference unfolds the box
    edited = page.locator(f".rc-label [{key}]")
    assert edited.text_content() == "0.900"
    assert edited.is_visible()
    assert box["warning"] is not None
    assert "tiny-mc: student score reads 0.900 on this page; the receipt signs 0.429" in box["warning"]


def test_a_failed_page_shows_no_figures(figures_site: Path, serve: Any, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    copy = tmp_path / "site"
    shutil.copytree(figures_site, copy)
    results = next((copy / MODEL).glob("*@*/runs/tiny-mc/results.json"))
    results.write_bytes(results.read_bytes().replace(b"0.42857142857142855", b"0.92857142857142855"))
    page = browser.new_page()
    page.goto(serve(copy) + "/" + MODEL)
    state, text = status_of(page)
    assert state == "failed", text
    assert page.locator(".rc-signed").count() == 0
    assert "0.429" not in str(page.locator(".rc-verify").text_content())


def _doubles() -> list[str]:
    """JSON number texts: hand-picked edges, exact binary ties at the third decimal, and random doubles."""
    rng = random.Random(15)
    texts = ["0", "-0", "1", "-1", "0.0005", "0.0015", "0.0625", "-0.0625", "0.4375", "0.1235", "2.0005",
             "1.0005", "-0.0004", "0.9995", "999.9995", "1e21", "1.5e300", "1e400", "-1e400", "5e-324",
             "12345678901234567890", "9007199254740993", "123456.7895"]  # fmt: skip
    texts += [json.dumps(k / 2**n) for n in (4, 5, 7, 11) for k in range(-40, 41)]  # many are exact ties
    texts += [repr((k + 0.5) / 1000) for k in range(0, 1000, 7)]  # the doubles nearest the decimal ties
    for _ in range(1500):
        bits = rng.getrandbits(64)
        value = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
        if value == value and abs(value) != float("inf"):  # finite
            texts.append(repr(value))
    texts += [repr(rng.uniform(-2, 2)) for _ in range(1500)]
    return texts


def test_js_number_format_agrees_with_python(figures_site: Path, serve: Any, browser: Any) -> None:  # noqa: F811
    texts = [*_doubles(), "true", "null", '"0.5"', "[1]", "{}"]
    page = browser.new_page()
    page.goto(serve(figures_site) + "/" + MODEL)
    status_of(page)
    shown = page.evaluate("texts => texts.map(t => window.receiptsVerify.figureNumber(JSON.parse(t)))", texts)
    expected = [number(json.loads(t)) for t in texts]
    assert [(t, s) for t, s, e in zip(texts, shown, expected, strict=True) if s != e] == []
    assert expected[:8] == ["0.000", "0.000", "1.000", "-1.000", "0.001", "0.002", "0.063", "-0.063"]
    for places in (1, 2, 4):  # the label's memory (2), tok/s (1) and price (4) follow the same rule
        shown = page.evaluate(
            "([texts, k]) => texts.map(t => window.receiptsVerify.figureNumber(JSON.parse(t), k))",
            [texts, places],
        )
        expected = [number(json.loads(t), places) for t in texts]
        assert [(t, s) for t, s, e in zip(texts, shown, expected, strict=True) if s != e] == [], places
    # and whole predicates, including free-form summaries the signer could write
    predicate = signed_predicate(figures_site, MODEL)
    run = predicate["runs"][0]  # the rest of a run as signed: only the pack id and the summary vary

    def odd_run(pack: str, summary: dict[str, Any]) -> dict[str, Any]:
        return {**run, "pack": {**run["pack"], "id": pack}, "summary": summary}

    odd = {
        **predicate,
        "model": {"name": "m", "version": "1", "publisher": "p"},
        "gate": {"verdict": "pass"},
        "runs": [
            odd_run("a.b", {"scores": {"student": "0.5", "teacher": None, "x": True}}),
            odd_run("c", {"primary_metric": 3, "scores": [1], "retention": -0.0}),
        ],
    }
    for case in (predicate, odd):
        case_text = json.dumps(case)
        js = page.evaluate("t => window.receiptsVerify.figures(JSON.parse(t))", case_text)
        assert js == figures(typed(json.loads(case_text)))
    # and with the signed files: the real ones, and odd ones a signer could write
    texts = signed_files(figures_site, MODEL)
    odd_files = {
        "runs/a.b/results.json": json.dumps({"primary_metric": "__proto__", "metrics": {"all": {"__proto__": {
            "retention": {"student": {"ci95": [0.5, 0.25]}}}}}}),
        "runs/c/results.json": json.dumps({"primary_metric": ["acc"], "metrics": {"all": {"acc": {}}}}),
        "fp.json": json.dumps({"points": [
            {"status": "ok", "id": "x/c1", "memory": {"peak_rss_bytes": 10**400}, "metrics": {
                "decode_tps": {"p50": 0.05}, "ttft_s": {"p50": "1", "p95": 1e21}}},
            {"status": "failed", "id": "y", "memory": {"peak_rss_bytes": 5}},
            {"status": "ok", "id": 3, "memory": {"peak_rss_bytes": 5}}, "point"],
            "settings": {"price": {"per_hour": 0}}, "summary": {"cost_per_1k_calls": 0.00005}}),
    }  # fmt: skip
    odd_runs = [{**r, "results": f"runs/{r['pack']['id']}/results.json"} for r in odd["runs"]]
    footprints = [{"file": "fp.json", "summary": {}}, {"file": "missing.json", "summary": {}}]
    odd = {**odd, "runs": odd_runs, "footprints": footprints}
    odd_files["broken.json"] = '{"points": [{"status": "ok", "id": "z", "memory": {"peak_rss_bytes": NaN}}]}'
    odd["footprints"].append({"file": "broken.json", "summary": {}})  # not JSON: no figures in either
    for case, files in ((predicate, texts), (odd, odd_files)):
        case_text = json.dumps(case)
        js = page.evaluate("([t, f]) => window.receiptsVerify.figures(JSON.parse(t), f)", [case_text, files])
        raw = {name: text.encode("utf-8") for name, text in files.items()}
        assert js == figures(typed(json.loads(case_text)), raw)
    assert js["runs.a.b.retention.low"] == "0.500"  # "__proto__" is an own member in both languages
    assert js["footprints.0.x/c1.ttft_p95"] == "1000000000000000000000.000"
    assert "footprints.0.x/c1.peak_rss_gb" not in js  # 10**400 bytes: not a number in either
