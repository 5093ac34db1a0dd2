"""The catalog table, the home page and site search in Chromium, checked against the signed receipts.

The catalog is tests/generator/catalog_site.py's (four models on two packs, hostile teacher names and
descriptions), served from 127.0.0.1 by tests/generator/test_browser.py's ``serve`` fixture. Expected
numbers are read from each receipt's signed statement, not from the page or the catalog index.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.generator.catalog_site import HOSTILE_TEACHER, MODELS, QUILL, build_catalog_site
from tests.generator.test_browser import browser, serve  # noqa: F401 - fixtures, used by name

pytestmark = pytest.mark.browser

CATALOG = "table.rc-catalog"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> tuple[str, Path]:  # noqa: F811
    """(the served site's base URL, the signed receipts folder)."""
    tmp = tmp_path_factory.mktemp("browser-catalog")
    out = tmp / "site"
    out.mkdir()
    base = serve(out)
    saved = os.environ.get("RECEIPTS_SITE_URL")
    os.environ["RECEIPTS_SITE_URL"] = base + "/"  # Material's instant navigation needs it
    try:
        receipts = build_catalog_site(tmp, out)
    finally:
        if saved is None:
            os.environ.pop("RECEIPTS_SITE_URL", None)
        else:
            os.environ["RECEIPTS_SITE_URL"] = saved
    return base, receipts


def signed(receipts: Path) -> dict[str, dict[str, Any]]:
    """Per model: its signed predicate (from the receipt's DSSE payload)."""
    out = {}
    for receipt in receipts.glob("*@*/receipt.json"):
        statement = json.loads(base64.b64decode(json.loads(receipt.read_bytes())["payload"]))
        out[statement["predicate"]["model"]["name"]] = statement["predicate"]
    return out


def signed_pack(predicate: dict[str, Any], pack: str) -> dict[str, Any] | None:
    """The signed summary of the run on ``pack``, or None where the model did not run it."""
    return next((r["summary"] for r in predicate["runs"] if r["pack"]["id"] == pack), None)


def shown(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def rows(page: Any) -> list[dict[str, str]]:
    result: list[dict[str, str]] = page.locator(f"{CATALOG} tbody tr").evaluate_all(
        """trs => trs.map(tr => ({
             name: tr.querySelector('a.rc-model').textContent,
             score: tr.querySelector('td[data-rc-col=score]').textContent,
             retention: tr.querySelector('td[data-rc-col=retention]').textContent,
             key: tr.querySelector('td[data-rc-col=retention]').dataset.sort,
           }))"""
    )
    return result


def open_catalog(browser: Any, base: str, width: int = 1280) -> Any:  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(base + "/models/")
    page.wait_for_selector(f"{CATALOG}[data-rc-sortable=ready]")
    return page


def expect_pack(page: Any, predicates: dict[str, dict[str, Any]], pack: str) -> None:
    """Every row shows the signed student score and retention of ``pack`` (or says it did not run it)."""
    for row in rows(page):
        summary = signed_pack(predicates[row["name"]], pack)
        if summary is None:
            assert row["score"] == row["retention"] == "n/a (not run)", row
            continue
        assert row["score"].split()[0] == shown(summary["scores"]["student"]), row
        assert row["retention"] == shown(summary["retention"]), row
        assert (float(row["key"]) if row["key"] else None) == summary["retention"], row


def test_pack_selector_switches_the_numbers(catalog: tuple[str, Path], browser: Any) -> None:  # noqa: F811
    base, receipts = catalog
    predicates = signed(receipts)
    page = open_catalog(browser, base)
    assert page.locator("select.rc-pack-select").input_value() == "capitals-mc"  # the default pack
    expect_pack(page, predicates, "capitals-mc")
    page.select_option("select.rc-pack-select", "tiny-mc")
    expect_pack(page, predicates, "tiny-mc")
    assert set(page.locator(".rc-pack-name").all_text_contents()) == {"tiny-mc"}
    page.select_option("select.rc-pack-select", "capitals-mc")
    expect_pack(page, predicates, "capitals-mc")
    page.close()


@pytest.mark.parametrize("pack", ["capitals-mc", "tiny-mc"])
def test_sort_by_retention_orders_rows_on_the_chosen_pack(
    catalog: tuple[str, Path],
    browser: Any,  # noqa: F811
    pack: str,
) -> None:
    base, receipts = catalog
    predicates = signed(receipts)
    retention = {
        name: (signed_pack(p, pack) or {}).get("retention") for name, p in predicates.items()
    }  # fmt: skip
    missing = {name for name, value in retention.items() if value is None}
    assert len(set(retention.values()) - {None}) > 1
    assert missing
    page = open_catalog(browser, base)
    page.select_option("select.rc-pack-select", pack)
    header = f"{CATALOG} thead th:nth-child(4)"
    for direction in ("ascending", "descending"):
        page.click(f"{header} button")
        assert page.locator(header).get_attribute("aria-sort") == direction
        names = [r["name"] for r in rows(page)]
        values = [retention[name] for name in names]
        known = [v for v in values if v is not None]
        assert known == sorted(known, reverse=direction == "descending"), (names, values)
        assert set(names[len(known) :]) == missing  # n/a last both ways
    # switching the pack while sorted by retention re-sorts by the new pack's numbers
    other = "tiny-mc" if pack == "capitals-mc" else "capitals-mc"
    page.select_option("select.rc-pack-select", other)
    values = [(signed_pack(predicates[r["name"]], other) or {}).get("retention") for r in rows(page)]
    known = [v for v in values if v is not None]
    assert known == sorted(known, reverse=True)
    assert values[len(known) :] == [None] * (len(values) - len(known))
    page.close()


def test_catalog_has_the_columns_and_keeps_hostile_text_inert(
    catalog: tuple[str, Path],
    browser: Any,  # noqa: F811
) -> None:
    base, _ = catalog
    for width in (1280, 390):
        page = open_catalog(browser, base, width)
        heads = page.locator(f"{CATALOG} thead th").evaluate_all("ths => ths.map(t => t.innerText)")
        assert [h.split()[0] for h in heads] == [
            "model", "teacher(s)", "student", "retention", "memory",
            "decode", "licence", "gate", "tags", "compare",
        ]  # fmt: skip
        teachers = page.locator(f"{CATALOG} tbody tr td:nth-child(2)").all_text_contents()
        assert all(HOSTILE_TEACHER in t for t in teachers), teachers  # shown as text
        assert page.locator(f"{CATALOG} img").count() == 0
        memory = page.locator(f"{CATALOG} tbody tr td:nth-child(5)").all_text_contents()
        assert "2.00 GB fp32" in memory
        assert "n/a (not measured)" in memory
        page.select_option("select.rc-pack-select", "tiny-mc")
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.close()


def test_home_scatter_has_one_point_per_model_with_the_signed_numbers(
    catalog: tuple[str, Path],
    browser: Any,  # noqa: F811
) -> None:
    base, receipts = catalog
    predicates = signed(receipts)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(base + "/")
    counts = dict(zip(
        page.locator("[data-rc-count]").evaluate_all("ds => ds.map(d => d.dataset.rcCount)"),
        page.locator("[data-rc-count]").all_text_contents(),
        strict=True,
    ))  # fmt: skip
    assert counts == {"models": "4", "receipts": "4", "publishers": "1", "packs": "2"}
    for pack in ("capitals-mc", "tiny-mc"):
        drawn = page.locator(f'.rc-scatter-wrap[data-rc-pack="{pack}"] svg a').evaluate_all(
            "as => as.map(a => [a.dataset.model, +a.dataset.retention, +a.dataset.peakRss,"
            " a.getAttribute('href')])"
        )
        expected = []
        for name, predicate in predicates.items():
            for row in predicate.get("quantization") or []:
                kept = [v["retention"] for k, v in row["evaluated"].items() if k.startswith(pack + "@")]
                sizes = [b["peak_rss_bytes"] for b in row["benched"] if b["status"] == "ok"]
                if kept and kept[0] is not None and sizes:
                    expected.append([f"{name}@0.1.0", kept[0], min(sizes), f"models/{name}/0.1.0/"])
        assert sorted(drawn) == sorted(expected)
        assert len(drawn) == len({d[0] for d in drawn})  # one point per model
    assert (
        "delta-model" in page.locator('.rc-scatter-wrap[data-rc-pack="tiny-mc"]').text_content()
    )  # not plotted
    newest = page.locator("table.rc-newest tbody td:nth-child(2) a").all_text_contents()
    assert newest == sorted(MODELS, key=lambda n: -MODELS[n]["issued"])
    page.click('.rc-scatter-wrap[data-rc-pack="capitals-mc"] svg a[data-model="beta-model@0.1.0"]')
    page.wait_for_url("**/models/beta-model/0.1.0/")
    page.close()


@pytest.mark.parametrize("width", [390, 1280])
def test_home_scatter_text_overlaps_no_other_text(
    catalog: tuple[str, Path],
    browser: Any,  # noqa: F811
    width: int,
) -> None:
    """Axis titles, tick labels and point labels stay clear of each other (a phone gets larger text)."""
    base, _ = catalog
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.goto(base + "/")
    boxes = page.locator(".rc-scatter text").evaluate_all(
        "ts => ts.map(t => { const r = t.getBoundingClientRect();"
        " return [t.textContent, r.left, r.top, r.right, r.bottom]; })"
    )
    assert len(boxes) > 5
    clashes = [
        (a[0], b[0])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if min(a[3], b[3]) - max(a[1], b[1]) > 1 and min(a[4], b[4]) - max(a[2], b[2]) > 1
    ]
    assert clashes == []
    page.close()


def test_search_finds_a_model_by_its_teacher_and_leads_to_its_card(
    catalog: tuple[str, Path],
    browser: Any,  # noqa: F811
) -> None:
    base, _ = catalog
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(base + "/")
    page.click(".md-search__input")
    page.keyboard.type("Quillfeather", delay=20)
    page.wait_for_selector(".md-search-result__item")
    links = page.locator(".md-search-result__link").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert [link.removeprefix(base + "/") for link in links] == ["models/beta-model/0.1.0/"]
    assert QUILL.split()[1] in page.locator(".md-search-result").text_content()
    assert HOSTILE_TEACHER in page.locator(".md-search-result").text_content()  # as text
    # the hostile teacher is found as text, never as markup
    page.fill(".md-search__input", "")
    page.keyboard.type("Evil", delay=20)  # Material searches on key events, not on fill()
    page.wait_for_function("document.querySelectorAll('.md-search-result__item').length === 4")
    assert page.locator(".md-search-result img").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.locator(".md-search-result__link").first.click()
    page.wait_for_url("**/models/*/0.1.0/")
    page.close()
