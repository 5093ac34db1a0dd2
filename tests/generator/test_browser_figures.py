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
    """What the verification box shows as signed: facts, and per run its caption and rows."""
    page.wait_for_selector(".rc-verify .rc-signed", timeout=20000)
    result: dict[str, Any] = page.evaluate(
        """() => {
             const box = document.querySelector('.rc-verify .rc-signed');
             const text = el => el.textContent;
             return {
               title: text(box.querySelector('.rc-signed-title')),
               facts: Array.from(box.querySelectorAll('.rc-signed-facts > dd'), text),
               runs: Array.from(box.querySelectorAll('table.rc-signed-run'), t => ({
                 caption: text(t.querySelector('caption')),
                 rows: Array.from(t.querySelectorAll('tr'), r => [text(r.cells[0]), text(r.cells[1])]),
               })),
               warning: (w => w && text(w))(box.querySelector('.rc-signed-warning')),
             };
           }"""
    )
    return result


def test_verified_page_shows_the_signed_figures(
    figures_site: Path,
    serve: Any,  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The box at 1280 and 390 px; screenshots go to $RECEIPTS_SCREENSHOTS (default: the test's tmp_path)."""
    shots = Path(os.environ.get("RECEIPTS_SCREENSHOTS") or tmp_path)
    signed = figures(typed(signed_predicate(figures_site, MODEL)))
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.goto(serve(figures_site) + "/" + MODEL)
        state, text = status_of(page)
        assert state == "verified", text
        box = signed_box(page)
        assert box["title"] == "Signed figures (from the verified receipt)"
        assert box["facts"] == ["smollm2-135m-distilled-20l 0.1.0", "receipts demo", "fail"]
        assert box["runs"] == [
            {
                "caption": "tiny-mc · acc",
                "rows": [
                    ["teacher", "0.612"],
                    ["base model", "0.286"],
                    ["student", "0.429"],
                    ["SFT baseline", "0.357"],
                    ["student (int8-dynamic)", "0.400"],
                    ["student retention", "0.438"],
                ],
            }
        ]
        assert box["warning"] is None  # the page's own figures are the signed ones
        shown = page.evaluate("p => window.receiptsVerify.figures(p)", signed_predicate(figures_site, MODEL))
        assert shown == signed  # the same keys and strings as generator/figures.py
        page.locator(".rc-verify").screenshot(path=str(shots / f"figures-{width}.png"))
        page.close()


def test_a_page_without_runs_shows_model_and_gate(figures_site: Path, serve: Any, browser: Any) -> None:  # noqa: F811
    page = browser.new_page()
    page.goto(serve(figures_site) + "/" + PLAIN)
    assert status_of(page)[0] == "verified"
    box = signed_box(page)
    assert box["facts"] == ["plain-model 0.1.0", "receipts demo", "not evaluated"]
    assert box["runs"] == []
    assert page.locator(".rc-signed").get_by_text("No evaluation runs in this receipt.").count() == 1


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
    assert ["student", "0.429"] in box["runs"][0]["rows"]  # the signed value, beside the edited page
    edited = page.locator(f"[{key}]")
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
