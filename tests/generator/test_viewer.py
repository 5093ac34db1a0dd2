"""The per-example viewer (generator/viewer.py, site/assets/viewer.js) on a real run with hostile pack items.

Rendered pages are checked as text; the built catalog (``receipts build``, mkdocs) in real Chromium: filters
against counts made here from the examples log, the failure-mode links of the card page, JavaScript off, and
hostile pack text staying text in the server-rendered rows and in the rows viewer.js makes.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.render import collect, render
from generator.viewer import MAX_TEXT, PAGE_ROWS
from receipts.cli import main
from receipts.trust import trust_root_from_bytes
from tests.generator.viewer_site import BIG, HOSTILE_TEXTS, examples, make_receipts

MODEL = "models/smollm2-135m-distilled-24l"
VIEWER = "examples/capitals-mc/"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, Path]:
    return make_receipts(tmp_path_factory.mktemp("viewer"))


@pytest.fixture(scope="module")
def rendered(made: tuple[Path, bytes, Path]) -> dict[str, bytes]:
    receipts, root_bytes, _ = made
    root = trust_root_from_bytes(root_bytes)
    return render(collect(receipts, root), root, root_bytes).files


@pytest.fixture(scope="module")
def rows(made: tuple[Path, bytes, Path]) -> list[dict[str, Any]]:
    return examples(made[2])


def page_rows(files: dict[str, bytes], version: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    number = 1
    while (name := f"{MODEL}/{version}/{VIEWER}rows-{number}.json") in files:
        out += json.loads(files[name])["rows"]
        number += 1
    return out


def student_wrong_teacher_right(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Counted here from the examples log, independently of generator/viewer.py."""
    return [
        (r["item"], r["variant"])
        for r in rows
        if r["roles"]["teacher"].get("score") == 1 and r["roles"]["student"].get("score", 1) < 1
    ]


def test_every_signed_example_is_published_in_pages(rendered: dict[str, bytes], rows: list[dict[str, Any]]):
    shown = page_rows(rendered, "0.1.0")
    assert [(r["item"], r["variant"]) for r in shown] == [(r["item"], r["variant"]) for r in rows]
    first = json.loads(rendered[f"{MODEL}/0.1.0/{VIEWER}rows-1.json"])
    assert (first["total"], first["pages"], len(first["rows"])) == (
        len(rows),
        -(-len(rows) // PAGE_ROWS),
        PAGE_ROWS,
    )
    flagged = [(r["item"], r["variant"]) for r in shown if r["student_wrong_teacher_right"]]
    assert flagged == student_wrong_teacher_right(rows)
    assert flagged  # the fake student is wrong where the teacher is right somewhere
    disagree = [(r["item"], r["variant"]) for r in shown if r["disagreement"]]
    assert disagree == [(r["item"], r["variant"]) for r in rows if r["agreement"]["student"] is False]


def test_slices_hold_the_rows_the_scorecard_counted(
    made: tuple[Path, bytes, Path], rendered: dict[str, bytes]
):
    results = json.loads((made[2] / "results.json").read_bytes())
    shown = page_rows(rendered, "0.1.0")
    for name, metrics in results["metrics"].items():
        n = metrics["acc"]["roles"]["student"]["n"]
        assert sum(name in r["slices"] for r in shown) == n, name


def test_published_pack_gives_inputs_and_unpublished_gives_the_hash(rendered: dict[str, bytes]):
    published = {r["item"]: r for r in page_rows(rendered, "0.1.0")}
    assert ["question", HOSTILE_TEXTS["evil-script"]] in published["evil-script"]["input"]
    assert published["cap-028"]["gold"] == "Canberra (choice 3)"
    withheld = {r["item"]: r for r in page_rows(rendered, "0.2.0")}
    assert withheld["cap-028"]["input"] is None
    assert len(withheld["cap-028"]["prompt_sha256"]) == 64
    page = rendered[f"{MODEL}/0.2.0/{VIEWER}index.md"].decode()
    assert "<em>input not published</em>" in page
    assert (
        "inputs not published: signed with --no-pack (CC-BY-4.0 permits redistribution, commercial use "
        "included (licence table))." in page
    )
    assert "input not published" not in rendered[f"{MODEL}/0.1.0/{VIEWER}index.md"].decode()


def test_a_1_mib_field_is_cut_with_a_note(rendered: dict[str, bytes]):
    big = next(r for r in page_rows(rendered, "0.1.0") if r["item"] == "evil-big")
    notes = dict(big["input"])["notes"]
    assert len(notes) < MAX_TEXT + 100
    assert notes.endswith(
        f"[cut here: {BIG + len('<script>window.__pwned = 4</script>'):,} characters in all]"
    )
    assert len(rendered[f"{MODEL}/0.1.0/{VIEWER}index.md"]) < 200_000


def test_line_separators_inside_json_strings_do_not_split_rows(rendered: dict[str, bytes]):
    """A raw U+2028/U+2029/U+0085 in a pack item, a CR between JSON tokens of an examples row: one line.

    The viewer splits JSON Lines on LF only, as verify does (str.splitlines split both).
    """
    shown = page_rows(rendered, "0.1.0")
    item = next(r for r in shown if r["item"] == "evil-linesep")
    assert dict(item["input"])["question"] == HOSTILE_TEXTS["evil-linesep"]


def test_hostile_text_is_escaped_on_one_line_of_the_html_block(rendered: dict[str, bytes]):
    page = rendered[f"{MODEL}/0.1.0/{VIEWER}index.md"].decode()
    block = next(line for line in page.splitlines() if line.startswith('<div class="rc-viewer"'))
    assert page.count("<script") == 1  # viewer.js, nothing from the pack
    assert "<img" not in page
    assert '<a href="javascript' not in page
    assert "<b>Rome" not in page
    assert "line one&#10;&#10;&lt;img src=x onerror=&#34;window.__pwned = 3&#34;&gt;" in block
    assert "{{ 7*7 }}" in block  # as written, never evaluated
    assert "\u202egnp.exe\u202c" in block


def test_card_links_failure_modes_slices_and_runs_to_the_viewer(rendered: dict[str, bytes]):
    card = rendered[f"{MODEL}/0.1.0/index.md"].decode()
    assert f'href="{VIEWER}?items=evil-script,evil-img">see these items in the capitals-mc viewer</a>' in card
    assert f'href="{VIEWER}?items=cap-028,cap-008">see these items' in card
    assert f'href="{VIEWER}?slice=domain%3Dgeography"' in card
    assert f'<a href="{VIEWER}">every example' in card


# ---- in Chromium, on the built catalog -------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(
    made: tuple[Path, bytes, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """The catalog built by ``receipts build`` (mkdocs), served on 127.0.0.1."""
    receipts, root_bytes, _ = made
    tmp = tmp_path_factory.mktemp("viewer-site")
    trust = tmp / "trust.json"
    trust.write_bytes(root_bytes)
    out = tmp / "site"
    out.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    saved = os.environ.get("RECEIPTS_SITE_URL")
    os.environ["RECEIPTS_SITE_URL"] = base + "/"
    try:
        assert main(["build", str(receipts), "--trust-root", str(trust), "--out", str(out)]) == 0
    finally:
        if saved is None:
            os.environ.pop("RECEIPTS_SITE_URL", None)
        else:
            os.environ["RECEIPTS_SITE_URL"] = saved
    yield out, base
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:  # pragma: no cover - `make setup` installs it
        pytest.fail(
            "chromium is not installed: run `make setup` (apt-get install -y chromium)", pytrace=False
        )
    with api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def open_page(
    browser: Any, url: str, *, javascript: bool = True, width: int = 1280, viewer: bool = True
) -> tuple[Any, list[str]]:
    """A page at ``url``; the list collects every dialog (alert, confirm, ...) that opens."""
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": width, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(url)
    if javascript and viewer:
        page.wait_for_selector("[data-rc-viewer-state=filtered]", timeout=20000)
    return page, dialogs


def shown_rows(page: Any) -> list[tuple[str, str]]:
    cells = page.locator("table.rc-examples tbody tr").evaluate_all(
        "rows => rows.map(r => [r.getAttribute('data-item'), r.getAttribute('data-variant')])"
    )
    return [(a, b) for a, b in cells]


def inert(page: Any, dialogs: list[str]) -> None:
    """No dialog opened, no planted code ran, and the rows hold no element made from pack text."""
    assert dialogs == []
    assert page.evaluate("() => window.__pwned") is None
    made = page.locator("table.rc-examples tbody").evaluate(
        "b => Array.from(b.querySelectorAll('script, img, a, iframe, b, strong a, [onerror]')).length"
    )
    assert made == 0


@pytest.mark.browser
def test_student_wrong_teacher_right_filter_shows_exactly_those_rows(browser, site, rows):
    _, base = site
    page, dialogs = open_page(browser, f"{base}/{MODEL}/0.1.0/{VIEWER}")
    assert len(shown_rows(page)) == PAGE_ROWS
    page.check("input[name=swtr]")
    page.wait_for_function("() => location.search.includes('filter=swtr')")
    expected = student_wrong_teacher_right(rows)
    seen: list[tuple[str, str]] = []
    while True:
        seen += shown_rows(page)
        following = page.locator(".rc-x-next")
        if following.count() == 0 or following.is_disabled():
            break
        following.click()
    assert seen == expected
    assert f"of {len(expected)} matching" in page.locator(".rc-viewer-summary").text_content()
    page.uncheck("input[name=swtr]")
    page.select_option("select[name=variant]", "typo")
    page.check("input[name=disagreement]")
    typo = [
        (r["item"], r["variant"]) for r in rows if r["variant"] == "typo" and not r["agreement"]["student"]
    ]
    assert f"of {len(typo)} matching" in page.locator(".rc-viewer-summary").text_content()
    inert(page, dialogs)


@pytest.mark.browser
def test_a_failure_mode_link_on_the_card_lands_on_its_items(browser, site, rows):
    _, base = site
    page, dialogs = open_page(browser, f"{base}/{MODEL}/0.1.0/", viewer=False)
    page.get_by_role("link", name="see these items in the capitals-mc viewer").first.click()
    page.wait_for_selector("[data-rc-viewer-state=filtered]", timeout=20000)
    assert "?items=evil-script,evil-img" in page.url
    expected = [(r["item"], r["variant"]) for r in rows if r["item"] in ("evil-script", "evil-img")]
    assert shown_rows(page) == expected
    assert page.locator("input[name=items]").input_value() == "evil-script,evil-img"
    text = page.locator("table.rc-examples").text_content()
    assert HOSTILE_TEXTS["evil-script"] in text
    assert HOSTILE_TEXTS["evil-img"] in text
    inert(page, dialogs)


@pytest.mark.browser
def test_a_slice_link_lands_on_the_slice(browser, site, made):
    _, base = site
    results = json.loads((made[2] / "results.json").read_bytes())
    page, dialogs = open_page(browser, f"{base}/{MODEL}/0.1.0/{VIEWER}?slice=variant%3Dtypo")
    n = results["metrics"]["variant=typo"]["acc"]["roles"]["student"]["n"]
    assert f"of {n} matching" in page.locator(".rc-viewer-summary").text_content()
    inert(page, dialogs)


@pytest.mark.browser
def test_javascript_off_shows_the_first_page_and_hostile_text_as_text(browser, site, rows):
    _, base = site
    page, dialogs = open_page(browser, f"{base}/{MODEL}/0.1.0/{VIEWER}", javascript=False)
    assert shown_rows(page) == [(r["item"], r["variant"]) for r in rows[:PAGE_ROWS]]
    assert page.locator("form.rc-viewer-filters").is_hidden()
    text = page.locator("table.rc-examples").text_content()
    for item, question in HOSTILE_TEXTS.items():
        if item != "evil-blank":  # its line breaks are shown as line breaks
            assert question in text, item
    blank = page.locator("tr[data-item=evil-blank] .rc-x-input bdi").nth(1).inner_text()
    assert "line one\n\n<img src=x" in blank
    inert(page, dialogs)


@pytest.mark.browser
def test_hostile_rows_rendered_by_the_script_stay_text(browser, site):
    _, base = site
    items = ",".join(HOSTILE_TEXTS)
    page, dialogs = open_page(browser, f"{base}/{MODEL}/0.1.0/{VIEWER}?items={items}&variant=original")
    assert [item for item, _ in shown_rows(page)] == list(HOSTILE_TEXTS)
    text = page.locator("table.rc-examples").text_content()
    for item, question in HOSTILE_TEXTS.items():
        assert question in text, item
    inert(page, dialogs)
    withheld, dialogs = open_page(browser, f"{base}/{MODEL}/0.2.0/{VIEWER}?items=evil-script")
    assert "input not published" in withheld.locator("table.rc-examples").text_content()
    inert(withheld, dialogs)


@pytest.mark.browser
def test_rows_rendered_by_the_script_read_exactly_as_the_server_rendered_rows(browser, site):
    _, base = site
    url = f"{base}/{MODEL}/0.1.0/{VIEWER}"
    static, _ = open_page(browser, url, javascript=False)
    scripted, dialogs = open_page(browser, url)  # more than one page of rows: the script redraws page 1
    assert scripted.locator(".rc-viewer-summary").text_content().startswith(f"Rows 1\u2013{PAGE_ROWS} of ")
    tbody = "table.rc-examples tbody"
    assert scripted.locator(tbody).inner_text() == static.locator(tbody).inner_text()
    inert(scripted, dialogs)


@pytest.mark.browser
def test_the_card_page_verifies_its_published_pack_in_the_browser(browser, site):
    out, base = site
    bundle = out / MODEL / "0.1.0" / "smollm2-135m-distilled-24l@0.1.0"
    signed = [p for p in bundle.rglob("*") if p.is_file() and p.name != "receipt.json"]
    assert len([p for p in signed if "packs" in p.parts]) == 3  # the manifest, pack.yaml, data/items.jsonl
    page, dialogs = open_page(browser, f"{base}/{MODEL}/0.1.0/", viewer=False)
    page.wait_for_function(
        "() => { const s = document.querySelector('.rc-status');"
        " return s && s.dataset.state && s.dataset.state !== 'pending'; }",
        timeout=20000,
    )
    status = page.locator(".rc-status")
    assert status.get_attribute("data-state") == "verified", status.text_content()
    assert f"{len(signed)} bound file(s) match" in str(status.text_content())
    assert dialogs == []


@pytest.mark.browser
def test_an_edited_published_pack_file_fails_in_the_browser(browser, site, tmp_path):
    out, base = site
    items = (
        out
        / MODEL
        / "0.1.0"
        / "smollm2-135m-distilled-24l@0.1.0"
        / "packs"
        / "capitals-mc"
        / "data"
        / "items.jsonl"
    )
    original = items.read_bytes()
    items.write_bytes(original.replace(b"capital of France", b"capital of Spain", 1))
    try:
        page, _ = open_page(browser, f"{base}/{MODEL}/0.1.0/", viewer=False)
        page.wait_for_function(
            "() => { const s = document.querySelector('.rc-status');"
            " return s && s.dataset.state && s.dataset.state !== 'pending'; }",
            timeout=20000,
        )
        status = page.locator(".rc-status")
        assert status.get_attribute("data-state") == "failed"
        assert "packs/capitals-mc/data/items.jsonl does not match its signed sha256" in str(
            status.text_content()
        )
    finally:
        items.write_bytes(original)


def test_verify_the_built_site_and_its_published_url_with_pack_files(site, made, tmp_path, capsys):
    """`receipts verify SITE` and `receipts verify URL` download and check the published pack files too."""
    out, base = site
    trust = tmp_path / "trust.json"
    trust.write_bytes(made[1])
    for target in (out, f"{base}/"):
        code = main(["verify", str(target), "--trust-root", str(trust), "--json"])
        text = capsys.readouterr().out
        assert code == 0, text
        report = json.loads(text)
        assert len(report["receipts"]) == 2
        subjects = [c for r in report["receipts"] for c in r["checks"] if c["name"] == "subjects"]
        assert subjects[0]["detail"] == "6 file(s) match their signed digests"  # card, run x2, pack x3
