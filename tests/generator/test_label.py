"""The label atop a card page: golden HTML, signed numbers, hostile names, the floor pack, one screen.

The catalog is tests/generator/label_site.py's (one receipt: a pack with every role scored, a pack where
every role scores zero, student and teacher footprints; the teacher's and base's names are attacks).
Browser checks run in Chromium against that site served from 127.0.0.1 (test_browser.py's fixtures).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from generator.figures import figures, number
from generator.label import FLOOR_WORDS
from generator.sitecheck import read_page
from receipts.formats.statement import Predicate
from tests.generator.label_site import BASE_NAME, BUNDLE, MODEL, build_label_site
from tests.generator.test_browser import browser, serve, status_of  # noqa: F401 - fixtures, used by name
from tests.generator.test_catalog import DATA, cli

GOLDEN_LABEL = DATA / "golden_label.html"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the built site, its trust root); never modified."""
    tmp = tmp_path_factory.mktemp("label")
    trust = build_label_site(tmp, tmp / "site")
    return tmp / "site", trust


def page_html(site: Path) -> str:
    return (site / MODEL / "index.html").read_text("utf-8")


def label_html(site: Path) -> str:
    """The label's HTML as built, the receipt's and trust root's digests (new keys each run) blanked."""
    html = page_html(site)
    label = html[html.index('<section class="rc-label"') : html.index("</section>") + len("</section>")]
    return re.sub(r'(data-(?:trust-sha256|trust-root|receipt-sha256))="[^"]*"', r'\1="…"', label)


def signed(site: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The published receipt's predicate and its bundle's files, read from the bundle (not the page)."""
    bundle = site / MODEL / BUNDLE
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    files = {
        s["name"]: (bundle / s["name"]).read_bytes()
        for s in statement["subject"]
        if (bundle / s["name"]).is_file()
    }
    return statement["predicate"], files


def typed(predicate: dict[str, Any]) -> Predicate:
    return Predicate.model_validate(predicate, by_alias=True, by_name=False)


def test_golden_label(built: tuple[Path, Path]) -> None:
    """The label's HTML must not drift; RECEIPTS_UPDATE_GOLDEN=1 rewrites tests/data/golden_label.html."""
    shown = label_html(built[0]).encode("utf-8")
    if os.environ.get("RECEIPTS_UPDATE_GOLDEN"):
        GOLDEN_LABEL.write_bytes(shown)
    assert shown == GOLDEN_LABEL.read_bytes()


def test_label_numbers_are_the_signed_ones(built: tuple[Path, Path]) -> None:
    site = built[0]
    predicate, files = signed(site)
    results = json.loads(files["runs/tiny-mc/results.json"])
    acc = results["metrics"]["all"]["acc"]
    footprint = json.loads(files[predicate["footprints"][0]["file"]])
    point = footprint["points"][0]
    expected = {  # each read from the signed files, formatted by the rule, never taken from the page
        "runs.tiny-mc.retention": number(predicate["runs"][0]["summary"]["retention"]),
        "runs.tiny-mc.retention.low": number(acc["retention"]["student"]["ci95"][0]),
        "runs.tiny-mc.retention.high": number(acc["retention"]["student"]["ci95"][1]),
        "runs.tiny-mc.vs_sft": number(acc["differences"]["student-sft"]["value"]),
        "runs.tiny-mc.vs_sft.low": number(acc["differences"]["student-sft"]["ci95"][0]),
        "runs.tiny-mc.vs_sft.high": number(acc["differences"]["student-sft"]["ci95"][1]),
        f"footprints.0.{point['id']}.peak_rss_gb": f"{point['memory']['peak_rss_bytes'] / 1e9:.2f}",
        f"footprints.0.{point['id']}.decode_tps": f"{point['metrics']['decode_tps']['p50']:.1f}",
        f"footprints.0.{point['id']}.ttft_p50": f"{point['metrics']['ttft_s']['p50']:.3f}",
        "footprints.0.cost_per_1k": f"{footprint['summary']['cost_per_1k_calls']:.4f}",
    }
    assert expected["runs.tiny-mc.retention.low"] == "0.438"  # the fixture's CI, 0.4375 half away from zero
    assert expected["runs.tiny-mc.vs_sft.high"] == "0.188"
    page = read_page(page_html(site))
    assert page is not None
    on_label = dict(page.figures)
    for key, text in expected.items():
        assert on_label.get(key) == text, key
    assert "footprints.0.fp32/c1.ttft_p95" not in on_label  # null in the signed bench: not shown as a number
    assert figures(typed(predicate), files) == {key: text for key, text in page.figures}


def test_verify_site_holds_the_label_to_the_receipt(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site, trust = built
    code, text = cli(capsys, "verify", str(site), "--trust-root", str(trust), "--no-rederive")
    assert code == 0, text
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    index = copy / MODEL / "index.html"
    key = 'data-rc-figure="runs.tiny-mc.vs_sft.low">0.063<'
    html = index.read_text("utf-8")
    assert html.count(key) == 1
    index.write_text(html.replace(key, key.replace("0.063", "0.163")), "utf-8")
    code, text = cli(capsys, "verify", str(copy), "--trust-root", str(trust), "--no-rederive")
    assert code != 0
    assert "runs.tiny-mc.vs_sft.low shows '0.163' but the receipt signs '0.063'" in text


class _Label(HTMLParser):
    """Tags and attributes inside the label section of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.tags = 0, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "section" and found.get("class") == "rc-label":
            self.depth = 1
        elif self.depth:
            self.tags.append((tag, found))

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.depth = 0


def test_hostile_names_stay_text(built: tuple[Path, Path]) -> None:
    label = _Label()
    label.feed(page_html(built[0]))
    assert label.tags
    assert not [t for t, _ in label.tags if t in ("script", "img", "iframe", "object", "b")]
    hrefs = [a.get("href") or "" for t, a in label.tags if t == "a"]
    assert hrefs
    assert not [h for h in hrefs if not h.startswith(("#", "examples/", "reproduction-", "../../../models/"))]
    assert not [a for _, a in label.tags if any(k.startswith("on") for k in a)]
    html = label_html(built[0])
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert BASE_NAME in html  # shown, as text: no tag of the label carries it as a link


def test_floor_pack_says_so_and_draws_no_bar(built: tuple[Path, Path]) -> None:
    html = label_html(built[0])
    floor = html[html.index('<div class="rc-pack rc-pack-floor">') :]
    floor = floor[: floor.index("</details></div>")]
    assert (
        f'floor-mc</strong> · <span data-rc-figure="runs.floor-mc.primary_metric">acc</span>: {FLOOR_WORDS}.'
        in floor
    )
    assert "rc-lbar" not in floor
    assert html.count('class="rc-lbar"') == 1  # tiny-mc's only


# --- in Chromium --------------------------------------------------------------------------------------

_BOXES = """() => {
  const label = document.querySelector('.rc-label');
  const box = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  // an inline element that wraps is one box per line (its bounding box would cover the lines between)
  const lines = el => Array.from(el.getClientRects(), r => [r.left, r.top, r.right, r.bottom]);
  const parts = '.rc-label-cell, .rc-label-head';
  const cells = Array.from(label.querySelectorAll(parts), box);
  const children = Array.from(label.querySelectorAll(parts),
    cell => Array.from(cell.children).filter(c => c.getClientRects().length).map(lines));
  const all = Array.from(label.querySelectorAll('*')).filter(e => e.getClientRects().length).map(box);
  return {label: box(label), cells, children, all, inner: innerWidth, scroll: label.scrollWidth,
          client: label.clientWidth, pwned: window.__pwned === undefined ? null : String(window.__pwned)};
}"""


def _apart(a: list[float], b: list[float]) -> bool:
    return a[2] <= b[0] + 0.5 or b[2] <= a[0] + 0.5 or a[3] <= b[1] + 0.5 or b[3] <= a[1] + 0.5


def _overlaps(boxes: list[list[float]]) -> list[tuple[int, int]]:
    pairs = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))]
    return [(i, j) for i, j in pairs if not _apart(boxes[i], boxes[j])]


def _lines_overlap(elements: list[list[list[float]]]) -> list[tuple[int, int]]:
    """Pairs of sibling elements some line box of which overlaps a line box of the other."""
    pairs = [(i, j) for i in range(len(elements)) for j in range(i + 1, len(elements))]
    return [(i, j) for i, j in pairs if any(not _apart(a, b) for a in elements[i] for b in elements[j])]


@pytest.mark.browser
def test_the_label_fits_one_laptop_screen_and_a_phone(
    built: tuple[Path, Path],
    serve: Any,  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """1280x800: the whole label above the fold, nothing overlapping; 390 px: stacked, no sideways scroll.

    Screenshots go to $RECEIPTS_SCREENSHOTS (default: the test's tmp_path).
    """
    shots = Path(os.environ.get("RECEIPTS_SCREENSHOTS") or tmp_path)
    url = serve(built[0]) + "/" + MODEL
    for width in (1280, 390):
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.goto(url)
        state, text = status_of(page)
        assert state == "verified", text
        boxes = page.evaluate(_BOXES)
        assert boxes["pwned"] is None
        if width == 1280:
            assert boxes["label"][3] <= 800, boxes["label"]
        else:  # a phone's first screen starts with the buyer's answers (the gate's reasons come later)
            tops = page.evaluate(
                "() => Object.fromEntries(Array.from(document.querySelectorAll('.rc-label-cell'),"
                " c => [c.classList[1], c.getBoundingClientRect().top]))"
            )
            assert [c for c in ("survived", "sft", "cost", "licence") if tops[f"rc-label-{c}"] >= 800] == []
            assert tops["rc-label-verdict"] > tops["rc-label-fails"]
        # each role's score reads "teacher 0.648" on one line (a table cell's column layout must not reach it)
        stacked = page.evaluate(
            "() => Array.from(document.querySelectorAll('.rc-label .rc-pack-scores .rc-score'), s => {"
            " const r = s.getBoundingClientRect(), line = parseFloat(getComputedStyle(s).lineHeight);"
            " return r.height > 1.5 * line ? s.textContent : null; }).filter(Boolean)"
        )
        assert stacked == []
        assert _overlaps(boxes["cells"]) == []
        for inside in boxes["children"]:
            assert _lines_overlap(inside) == []
        assert boxes["scroll"] <= boxes["client"]
        assert max(b[2] for b in boxes["all"]) <= boxes["inner"], width
        page.screenshot(path=str(shots / f"label-{width}.png"))
        page.close()


@pytest.mark.browser
def test_the_browser_says_the_label_is_the_signed_one(
    built: tuple[Path, Path],
    serve: Any,  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """verify.js computes the label's figures from the statement and files it verified; an edit shows up."""
    copy = tmp_path / "site"
    shutil.copytree(built[0], copy)
    page = browser.new_page()
    page.goto(serve(copy) + "/" + MODEL)
    assert status_of(page)[0] == "verified"
    shown = read_page(page_html(copy))
    assert shown is not None
    keys = {key for key, _ in shown.figures}
    assert len(keys) >= 30
    summary = page.locator(".rc-signed > summary").text_content()
    assert summary == f"All {len(keys)} figures on this page are the signed ones"
    assert page.locator(".rc-signed").get_attribute("open") is None  # folded: the label already shows them
    index = copy / MODEL / "index.html"
    key = 'data-rc-figure="runs.tiny-mc.retention.high">1.063<'
    index.write_text(index.read_text("utf-8").replace(key, key.replace("1.063", "0.999")), "utf-8")
    page.goto(serve(copy) + "/" + MODEL + "?edited")
    assert status_of(page)[0] == "verified"  # the receipt itself is intact
    warning = page.locator(".rc-signed-warning").text_content() or ""
    assert (
        "tiny-mc: student retention, 95% CI high reads 0.999 on this page; the receipt signs 1.063" in warning
    )
    assert page.locator(".rc-signed").get_attribute("open") is not None


def test_the_plain_answer_and_the_bar_follow_the_signed_interval() -> None:
    from generator.label import _answer, _bar, _why

    assert _answer(0.01, 0.2) == "yes"  # the CI of student - SFT lies above zero
    assert _answer(-0.2, -0.01) == "no"
    assert _answer(-0.1, 0.1) == "can't tell"
    assert _answer(0.0, 0.1) == "can't tell"  # touching zero is not excluding it
    assert _answer(None, 0.1) is None
    bar = _bar(0.2, 0.6, 0.4)
    assert (bar.base, bar.teacher, bar.low, bar.high, bar.point, bar.clipped) == (25, 75, 35, 55, 45, False)
    wide = _bar(-2.0, 3.0, 0.5)  # drawn to the axis' ends, and said so
    assert (wide.low, wide.high, wide.point, wide.clipped) == (0, 100, 50, True)
    assert _why(["commercial use: yes under every source (licence table v2)"], "commercial use") == (
        "under every source (licence table v2)"
    )
    assert _why([], "redistribution") == "no source sets one"
