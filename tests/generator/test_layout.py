"""Layout of every page kind in real Chromium: fits a phone, nothing under the sidebars, dark mode, print.

One catalog per module (a run with failure modes and a published pack, so card and per-example viewer pages
exist; the hostile card; a card with a long unbroken name and description), served from 127.0.0.1. The
checks live in ``layout_checks.js`` and are written over what any page has (Material's ``.md-content`` and
``.md-sidebar``, text nodes, ``code``, tables), not over one page's classes, so they keep holding when a
page is redesigned; a page kind the list below does not name is still checked, as "other".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root
from tests.generator.test_browser import browser, serve  # noqa: F401 - fixtures, used by name
from tests.generator.test_catalog import DATA, ROOT, hostile_card
from tests.generator.viewer_site import LIMIT, ROLES, card, hostile_pack

pytestmark = pytest.mark.browser

CHECKS = (Path(__file__).parent / "layout_checks.js").read_text("utf-8")
WIDTHS = (390, 1280)
KINDS = ("home", "catalog", "tags", "tag", "buyer", "compare", "verify", "card", "viewer", "404", "other")
LONG_NAME = "a-distilled-model-whose-name-runs-on-and-on-without-a-space"
LONG_WORD = "x" * 40 + "".join(f"{i:02x}" for i in range(40))  # 120 characters, no break point


def long_card(tmp: Path) -> Path:
    """examples/card.yaml with a long unbroken name, a long unbroken word in its description, tags."""
    value: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "card.yaml").read_text("utf-8"))
    value["model"]["name"] = LONG_NAME
    value["model"]["description"] = f"A card whose description holds {LONG_WORD} as one word."
    path = tmp / "long.card.yaml"
    path.write_text(yaml.safe_dump(value), "utf-8")
    return path


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> tuple[Path, str]:  # noqa: F811
    """(the built site, the URL it is served from): built for that URL (instant navigation needs it)."""
    tmp = tmp_path_factory.mktemp("layout")
    pack, run = hostile_pack(tmp), tmp / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        assert main(["run", str(pack), *ROLES, "--limit", str(LIMIT), "--out", str(run)]) == 0
    key = generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp / "receipts"
    issued = datetime(2026, 6, 1, tzinfo=UTC)
    sign_receipt(card(tmp, "0.1.0"), [key], receipts, runs=[run], packs=[pack], issued_at=issued)
    sign_receipt(hostile_card(tmp), [key], receipts, runs=[DATA / "run_minimal"], issued_at=issued)
    sign_receipt(long_card(tmp), [key], receipts, issued_at=issued)
    out = tmp / "site"
    out.mkdir()
    base = serve(out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_SITE_URL", base + "/")
        assert main(["build", str(receipts), "--trust-root", str(trust), "--out", str(out)]) == 0
    return out, base


def kind_of(page: str) -> str:
    """A built page's kind, from its path (``page`` as served: ``models/x/1.0/``)."""
    patterns = [
        ("home", r""), ("catalog", r"models/"), ("tags", r"tags/"), ("tag", r"tags/[^/]+/"),
        ("buyer", r"buyer/"), ("compare", r"compare/"), ("verify", r"verify/"), ("404", r"404\.html"),
        ("card", r"models/[^/]+/[^/]+/"), ("viewer", r"models/[^/]+/[^/]+/examples/[^/]+/"),
    ]  # fmt: skip
    return next((kind for kind, pattern in patterns if re.fullmatch(pattern, page)), "other")


def pages_of(site: Path, kind: str) -> list[str]:
    """The pages of one kind: every card and every "other" page, the first of each other kind."""
    pages = sorted(
        "" if p.parent == site else p.parent.relative_to(site).as_posix() + "/"
        for p in site.rglob("index.html")
    )
    pages += ["404.html"] if (site / "404.html").exists() else []
    found = [p for p in pages if kind_of(p) == kind]
    if kind == "compare":  # with two models to set side by side
        cards = [p.split("/") for p in pages_of(site, "card")][:2]
        found = [p + "?" + "&".join(f"m={c[1]}@{c[2]}" for c in cards) for p in found]
    return found if kind in ("card", "other") else found[:1]


def opened(browser: Any, base: str, page: str, width: int, scheme: str = "light") -> tuple[Any, list[str]]:  # noqa: F811
    """(a loaded page, the URLs it requested from anything but the catalog's own host)."""
    tab = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
    foreign: list[str] = []
    own = urlsplit(base).netloc
    tab.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).netloc not in (own, "") else None)
    tab.goto(f"{base}/{page}", wait_until="networkidle")
    if tab.locator(".rc-status").count():  # let verify.js finish: what it adds is laid out too
        tab.wait_for_function(
            "() => document.querySelector('.rc-status').dataset.state !== 'pending'", timeout=20000
        )
    tab.wait_for_timeout(200)
    return tab, foreign


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_page_fits_the_screen_and_nothing_overlaps(
    catalog: tuple[Path, str],
    browser: Any,  # noqa: F811
    kind: str,
    width: int,
) -> None:
    """No sideways page scroll, no text under a sidebar or over text, digests wrap, no letter columns."""
    site, base = catalog
    pages = pages_of(site, kind)
    assert pages or kind == "other", f"the catalog has no {kind} page"
    for page in pages:
        tab, foreign = opened(browser, base, page, width)
        found = tab.evaluate(CHECKS, {"what": "layout"})
        assert found["scrollWidth"] <= found["innerWidth"], (page, width, found)
        for check in ("underSidebars", "collisions", "digests", "letterColumns"):
            assert found[check] == [], (page, width, check, found[check])
        assert foreign == [], (page, "works offline: no font, CDN or other outside request")
        tab.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_text_reads_at_4_5_to_1_in_both_schemes(
    catalog: tuple[Path, str],
    browser: Any,  # noqa: F811
    kind: str,
    scheme: str,
) -> None:
    """WCAG AA over every visible text node (3:1 for large text), against the background it is drawn on."""
    site, base = catalog
    for page in pages_of(site, kind):
        tab, _ = opened(browser, base, page, 1280, scheme)
        expected = "slate" if scheme == "dark" else "default"
        assert tab.evaluate("document.body.dataset.mdColorScheme") == expected
        assert tab.evaluate(CHECKS, {"what": "contrast"}) == [], (page, scheme)
        tab.close()


def test_the_palette_toggle_switches_to_dark_and_the_choice_is_kept(
    catalog: tuple[Path, str],
    browser: Any,  # noqa: F811
) -> None:
    site, base = catalog
    tab, _ = opened(browser, base, "", 390)
    scheme = "document.body.dataset.mdColorScheme"
    assert tab.evaluate(scheme) == "default"
    tab.locator("form[data-md-component=palette] label:visible").click()
    tab.wait_for_function(f"{scheme} === 'slate'")
    assert tab.evaluate(CHECKS, {"what": "contrast"}) == []
    tab.goto(f"{base}/{pages_of(site, 'card')[0]}", wait_until="networkidle")
    assert tab.evaluate(scheme) == "slate", "the choice carries to the next page"
    tab.locator("form[data-md-component=palette] label:visible").click()
    tab.wait_for_function(f"{scheme} === 'default'")
    tab.close()


PRINT = """() => {
  const shown = el => el.checkVisibility({ visibilityProperty: true });
  const chrome = '.md-header, .md-sidebar, .md-footer, .md-search, [data-md-component=palette]';
  const content = document.querySelector('.md-content').getBoundingClientRect();
  return {
    chrome: Array.from(document.querySelectorAll(chrome)).filter(shown).map(el => el.className),
    details: document.querySelectorAll('.md-content details').length,
    hidden: Array.from(document.querySelectorAll('.md-content details > :not(summary)'))
      .filter(el => !shown(el)).map(el => el.textContent.slice(0, 60)),
    cut: Array.from(document.querySelectorAll('.md-content table'))
      .filter(t => shown(t) && (t.scrollWidth > t.clientWidth + 1
                                || t.getBoundingClientRect().right > content.right + 1))
      .map(t => t.className + ' ' + t.textContent.slice(0, 40)),
    links: Array.from(document.querySelectorAll('.md-content a[href]'))
      .filter(a => shown(a) && getComputedStyle(a).color !== getComputedStyle(a.parentElement).color)
      .map(a => a.textContent.slice(0, 40)),
  };
}"""


@pytest.mark.parametrize("kind", ["card", "viewer", "catalog", "buyer"])
def test_print_shows_the_page_alone_with_tables_whole_and_details_open(
    catalog: tuple[Path, str],
    browser: Any,  # noqa: F811
    kind: str,
    tmp_path: Path,
) -> None:
    """Print media, as a browser's "Save as PDF" lays it out (A4 is 794 CSS px wide), from the dark scheme."""
    site, base = catalog
    shots = Path(os.environ.get("RECEIPTS_SCREENSHOTS") or tmp_path)
    details = 0
    for page in pages_of(site, kind):
        tab, _ = opened(browser, base, page, 794, "dark")
        tab.emulate_media(media="print")
        tab.wait_for_timeout(300)  # Material fades link colours (transition: color 125ms)
        found = tab.evaluate(PRINT)
        assert found["chrome"] == [], (page, "no header, navigation, TOC, search, footer or toggle")
        assert found["hidden"] == [], (page, "a closed <details> prints its content")
        assert found["cut"] == [], (page, "a table prints whole, not in a scroll box")
        assert found["links"] == [], (page, "links print as text")
        assert tab.evaluate(CHECKS, {"what": "contrast"}) == [], (page, "dark readers print dark on white")
        details += found["details"]
        pdf = tab.pdf(format="A4")
        assert pdf.startswith(b"%PDF-")
        (shots / f"print-{kind}-{len(os.listdir(shots))}.pdf").write_bytes(pdf)
        tab.close()
    if kind == "card":
        assert details > 0, "the catalog's cards have <details> to print open"


@pytest.fixture
def card_tab(catalog: tuple[Path, str], browser: Any) -> Iterator[Any]:  # noqa: F811
    site, base = catalog
    tab, _ = opened(browser, base, pages_of(site, "card")[0], 1280)
    yield tab
    tab.close()


@pytest.mark.parametrize(
    ("injected", "check"),
    [
        ('<div style="width: 3000px">wide</div>', "scrollWidth"),
        (f'<table style="display: table"><tr><td style="white-space: pre">{"word " * 200}</td></tr></table>',
         "underSidebars"),
        ('<p style="margin-top: -1.5em">text drawn over the line above</p>', "collisions"),
        ('<p style="width: 3em"><code style="white-space: nowrap">' + "a" * 64 + "</code></p>", "digests"),
        ('<p style="width: 1ch; overflow-wrap: anywhere">letters</p>', "letterColumns"),
        ('<p style="color: #999">grey on white</p>', "contrast"),
    ],
)  # fmt: skip
def test_the_checks_find_what_they_look_for(card_tab: Any, injected: str, check: str) -> None:
    """Each check fails on the fault it is for, added to a real card page (so none passes by not looking)."""
    card_tab.evaluate(
        "html => document.querySelector('.md-content__inner').insertAdjacentHTML('beforeend', html)", injected
    )  # our own constant markup, in a page of our own test catalog
    card_tab.evaluate("() => document.querySelector('.md-content__inner').lastElementChild.scrollIntoView()")
    if check == "contrast":
        assert card_tab.evaluate(CHECKS, {"what": "contrast"}) != []
        return
    found = card_tab.evaluate(CHECKS, {"what": "layout"})
    if check == "scrollWidth":
        assert found["scrollWidth"] > found["innerWidth"]
    else:
        assert found[check] != [], found
