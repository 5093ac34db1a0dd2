"""Headline figures: pages print generator/figures.py's strings, and `receipts verify SITE` holds them to it.

Browser checks (the signed figures verify.js shows, and its number format) are in
tests/generator/test_browser_figures.py.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from generator.figures import figures, number, role_label, roles
from generator.sitecheck import read_page
from receipts.cli import main
from receipts.formats._shared import Gate, PackRef
from receipts.formats.statement import Predicate, PredicateModel, RunEntry
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root
from tests.generator.test_catalog import DATA, ROOT, cli

MODEL = "models/smollm2-135m-distilled-24l/0.1.0/"
BUNDLE = MODEL + "smollm2-135m-distilled-24l@0.1.0/"
PLAIN = "models/plain-model/0.1.0/"
SUMMARY = {
    "primary_metric": "acc",
    "scores": {
        "teacher": 0.6122632653061224,  # (S - B)/(T - B) is the retention below, exactly enough
        "base": 0.2857,
        "student": 0.42857142857142855,
        "sft": 0.3571,
        "student@int8-dynamic": 0.4,
    },
    "retention": 0.4375,  # exactly between 0.437 and 0.438 in binary: rounds away from zero
    "agreement_rate": 0.7,
    "gate": "fail",
}
TEACHER = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # examples/card.yaml's


def build_figures_site(tmp: Path, out: Path) -> Path:
    """A catalog of two receipts: one with a run whose summary has every headline figure, one without runs.

    The trust root's publisher is the card's ("receipts demo"); returns the trust root file. The summary is
    written by hand (every role and figure a page can show), so the site is built with --no-rederive; its
    examples log is one constructed row whose per-role scores are the summary's, so what verify.js re-derives
    in the browser (the headline scores and retention) agrees, while the CLI's full re-derivation does not.
    """
    run = tmp / "run"
    shutil.copytree(DATA / "run_minimal", run)
    results = json.loads((run / "results.json").read_text("utf-8"))
    results["models"]["teacher"] = {"spec": "hf:teacher", "digest": TEACHER}  # the card's teacher
    results["summary"] = SUMMARY
    row = {"item": "q1", "variant": "original", "roles": {}}
    row["roles"] = {role: {"scores": {"acc": score}} for role, score in SUMMARY["scores"].items()}
    examples = (json.dumps(row, sort_keys=True) + "\n").encode()
    (run / "examples.jsonl").write_bytes(examples)
    results["examples"]["sha256"] = hashlib.sha256(examples).hexdigest()
    (run / "results.json").write_text(json.dumps(results, indent=2), "utf-8")
    card = (ROOT / "examples" / "card.yaml").read_text("utf-8")
    plain = tmp / "plain.card.yaml"
    plain.write_text(card.replace("name: smollm2-135m-distilled-24l", "name: plain-model", 1), "utf-8")
    key = generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp / "receipts"
    sign_receipt(ROOT / "examples" / "card.yaml", [key], receipts, runs=[run])
    sign_receipt(plain, [key], receipts)
    assert main(["build", str(receipts), "--trust-root", str(trust), "--out", str(out), "--no-rederive"]) == 0
    return trust


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the built site, its trust root): never modified; tests that tamper work on a copy."""
    tmp = tmp_path_factory.mktemp("figures")
    trust = build_figures_site(tmp, tmp / "site")
    return tmp / "site", trust


@pytest.fixture
def site(built: tuple[Path, Path], tmp_path: Path) -> Path:
    """A copy of the built site to tamper with."""
    shutil.copytree(built[0], tmp_path / "site")
    return tmp_path / "site"


def verify(
    capsys: pytest.CaptureFixture[str], target: Path | str, trust: Path, *args: str
) -> tuple[int, str]:
    """``receipts verify --no-rederive``: the figures site signs a hand-written summary (see above)."""
    return cli(capsys, "verify", str(target), "--trust-root", str(trust), "--no-rederive", *args)


def test_by_default_verify_site_re_derives_the_hand_written_summary(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site, trust = built
    code, text = cli(capsys, "verify", str(site), "--trust-root", str(trust))
    assert code == 4, text
    assert "numbers: signed numbers that do not follow from the signed evidence" in text
    assert "its numbers cannot be re-derived from runs/tiny-mc/examples.jsonl" in text  # a one-row stand-in


def edit(page: Path, old: str, new: str) -> None:
    """Replace every occurrence (a figure may be shown twice: on the label and in a table below it)."""
    text = page.read_text("utf-8")
    assert text.count(old) >= 1, old
    page.write_text(text.replace(old, new), "utf-8")


# --- the formatting rule ----------------------------------------------------------------------------

NUMBERS = [
    (0.42857142857142855, "0.429"),
    (0.4375, "0.438"),  # a binary tie: half away from zero
    (0.0625, "0.063"),
    (-0.0625, "-0.063"),
    (0.1235, "0.123"),  # the double is 0.12349999...: no tie, rounds down
    (2.0005, "2.001"),  # the double is 2.00050000000000007...: rounds up
    (1, "1.000"),
    (0, "0.000"),
    (-0.0, "0.000"),
    (-0.0004, "0.000"),  # rounds to zero: no sign
    (12345.6789, "12345.679"),
    (1e21, "1000000000000000000000.000"),
    (None, "n/a"),
    (True, "n/a"),
    ("0.5", "n/a"),
    (10**400, "n/a"),  # beyond a double (the browser reads Infinity)
    (float("inf"), "n/a"),
]


@pytest.mark.parametrize(("value", "shown"), NUMBERS)
def test_numbers_follow_the_rule(value: Any, shown: str) -> None:
    assert number(value) == shown


def figures_predicate(
    model: dict[str, str], verdict: Any, runs: list[tuple[str, dict[str, Any]]]
) -> Predicate:
    """A predicate with what figures() reads (model, gate, each run's pack id and summary), nothing else."""
    entries = [
        RunEntry(
            pack=PackRef(id=pack, version="1.0.0", digest="sha256:" + "0" * 64),
            results=f"runs/{pack}/results.json",
            examples=f"runs/{pack}/examples.jsonl",
            summary=summary,
        )
        for pack, summary in runs
    ]
    return Predicate.model_construct(model=PredicateModel(**model), gate=Gate(verdict=verdict), runs=entries)


def test_figures_of_a_predicate() -> None:
    predicate = figures_predicate(
        {"name": "m", "version": "1.0", "publisher": "Acme"},
        "not_evaluated",
        [
            ("capitals-mc", SUMMARY),
            ("odd", {"scores": ["not", "a", "mapping"], "retention": "high"}),
        ],
    )
    assert figures(predicate) == {
        "model.name": "m",
        "model.version": "1.0",
        "model.publisher": "Acme",
        "gate": "not evaluated",  # in words
        "runs.capitals-mc.primary_metric": "acc",
        "runs.capitals-mc.scores.teacher": "0.612",
        "runs.capitals-mc.scores.base": "0.286",
        "runs.capitals-mc.scores.student": "0.429",
        "runs.capitals-mc.scores.sft": "0.357",
        "runs.capitals-mc.scores.student@int8-dynamic": "0.400",
        "runs.capitals-mc.retention": "0.438",
        "runs.odd.primary_metric": "n/a",  # a free-form summary is read defensively
        "runs.odd.retention": "n/a",
    }
    assert roles(predicate) == ["teacher", "base", "student", "sft", "student@int8-dynamic"]
    assert [role_label(r) for r in roles(predicate)] == [
        "teacher", "base model", "student", "SFT baseline", "student (int8-dynamic)"
    ]  # fmt: skip


def test_pages_are_read_as_html_not_patterns() -> None:
    page = read_page(
        '<p class="x rc-verify" data-name="a&amp;b">box</p><div class="rc-verify" data-name="second"></div>'
        '<td><span data-rc-figure="k1"> 0.4<b>29</b><br>\n</span></td>'
        "<span data-rc-figure='k2'>&lt;script&gt;</span><img data-rc-figure=\"k3\"/>"
        '<script>\'<span data-rc-figure="k4">1</span>\'</script><span data-rc-figure="k5">open'
    )
    assert page is not None
    assert page.attrs == {"class": "x rc-verify", "data-name": "a&b"}  # the first, as querySelector finds
    assert page.figures == [("k1", "0.429"), ("k2", "<script>"), ("k3", ""), ("k5", "open")]  # no k4: script
    assert read_page("<html><p>no box</p></html>") is None


# --- receipts verify SITE ---------------------------------------------------------------------------


def test_verify_site_checks_every_page_figure(
    built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site, trust = built
    html = (site / MODEL / "index.html").read_text("utf-8")
    assert '<span data-rc-figure="runs.tiny-mc.scores.student">0.429</span>' in html
    assert '<span data-rc-figure="gate">fail</span>' in html  # retention 0.5 < the card's min 0.7
    code, text = verify(capsys, site, trust, "--json")
    assert code == 0, text
    report = {r["model"]: r for r in json.loads(text)["receipts"]}
    assert len(report) == 2
    checks = {c["name"]: c for c in report["smollm2-135m-distilled-24l@0.1.0"]["checks"]}
    assert checks["figures"]["status"] == "pass"
    assert "shows its 13 headline figure(s) as signed" in checks["figures"]["detail"]  # and the retention CI
    checks = {c["name"]: c for c in report["plain-model@0.1.0"]["checks"]}
    assert checks["figures"]["status"] == "pass"  # name, version, publisher and gate; no runs
    assert "shows its 4 headline figure(s)" in checks["figures"]["detail"]


def test_an_edited_figure_fails_naming_page_key_and_both_values(
    site: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    edit(
        site / MODEL / "index.html",
        'data-rc-figure="runs.tiny-mc.scores.student">0.429<',
        'data-rc-figure="runs.tiny-mc.scores.student">0.900<',
    )
    code, text = verify(capsys, site, built[1])
    assert code == 4, text
    assert (
        "✗ figures: models/smollm2-135m-distilled-24l/0.1.0/index.html: runs.tiny-mc.scores.student" in text
    )
    assert "shows '0.900' but the receipt signs '0.429'" in text
    assert "1 verified, 1 failed" in text  # the other page still passes


def test_a_deleted_or_unknown_figure_fails(
    site: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    page = site / MODEL / "index.html"
    edit(page, '<span data-rc-figure="runs.tiny-mc.retention">0.438</span>', "<!--gone-->0.438")
    code, text = verify(capsys, site, built[1])
    assert code == 4, text
    assert "runs.tiny-mc.retention is not shown (the receipt signs '0.438')" in text
    edit(page, "<!--gone-->0.438", '<span data-rc-figure="runs.tiny-mc.retention">0.438</span>')
    assert verify(capsys, site, built[1])[0] == 0  # put back: passes again
    cell = '<p class="rc-label-h">Better than plain fine-tuning?</p>'
    edit(page, cell, cell + '<span data-rc-figure="runs.tiny-mc.scores.oracle">0.999</span>')
    code, text = verify(capsys, site, built[1])
    assert code == 4, text
    assert "'runs.tiny-mc.scores.oracle' is not a figure of this receipt (the page shows '0.999')" in text


def test_an_unsigned_file_in_a_published_bundle_fails(
    site: Path, built: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (site / BUNDLE / "evil.html").write_text("<script>alert(1)</script>", "utf-8")
    code, text = verify(capsys, site, built[1])
    assert code == 4, text
    assert "evil.html" in text
    assert "1 verified, 1 failed" in text


@pytest.fixture
def serve_site() -> Iterator[Any]:
    servers = []

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    def start(folder: Path) -> str:
        handler = functools.partial(Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_verify_a_published_catalog_checks_its_figures(
    site: Path, built: tuple[Path, Path], serve_site: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve_site(site)
    code, text = verify(capsys, url, built[1])
    assert code == 0, text
    assert text.count("✓ figures: the page of ") == 2
    gate = '<span data-rc-figure="gate">{}</span>'
    edit(site / MODEL / "index.html", gate.format("fail"), gate.format("pass"))
    code, text = verify(capsys, url, built[1])
    assert code == 4, text
    assert "the page of smollm2-135m-distilled-24l@0.1.0: gate shows 'pass' but the receipt signs" in text


def test_figures_come_from_the_bytes_that_verified(tmp_path: Path) -> None:
    """A receipt swapped after it verified is never the source of the figures a page is held to."""
    from generator.sitecheck import check_published_pages
    from receipts.formats import Statement
    from receipts.verify import Check, Report, VerifiedReceipt

    receipt = tmp_path / "m@1" / "receipt.json"
    receipt.parent.mkdir()
    receipt.write_bytes(b"the receipt now on disk")
    named = hashlib.sha256(receipt.read_bytes()).hexdigest()
    page = (
        f'<div class="rc-verify" data-receipt-sha256="{named}"></div><span data-rc-figure="gate">pass</span>'
    )
    checks = [Check("signatures", "pass", "")]
    predicate = figures_predicate({"name": "m", "version": "1", "publisher": "p"}, "pass", [])
    statement = Statement.model_construct(predicate=predicate)
    verified = VerifiedReceipt(receipt, b"the one verified", statement, {}, (), (), None, "", tuple(checks))
    report = Report(receipt=str(receipt), checks=checks, verified=verified)
    check_published_pages([(receipt, page)], [report])
    assert [(c.name, c.status) for c in report.checks][-2:] == [("page", "pass"), ("figures", "fail")]
    assert "the receipt changed after it verified" in report.checks[-1].detail


def test_pages_read_in_worker_processes_give_what_one_process_reads(tmp_path: Path) -> None:
    """A large site's pages are parsed one process per core: the claims are the same, in the same order."""
    from generator.sitecheck import catalog_pages

    for k in range(70):
        page = tmp_path / "models" / f"m{k:02d}" / "0.1.0" / "index.html"
        page.parent.mkdir(parents=True)
        figure = f'<span data-rc-figure="model.name">m{k:02d}<b> &lt;x&gt;</b></span>'
        if k % 7 == 0:  # not a card page: no verification box
            page.write_text("<p>no box</p>", "utf-8")
        elif k % 5 == 0:  # hostile markup: unclosed elements, stray end tags, bytes that are not UTF-8
            hostile = b'<div class="rc-verify" data-name="\xff"><span data-rc-figure="gate">fail</i></div>'
            page.write_bytes(hostile)
        else:
            page.write_text(f'<div class="rc-verify" data-name="m{k:02d}"></div>{figure}', "utf-8")
    alone, pooled = catalog_pages(tmp_path, workers=1), catalog_pages(tmp_path, workers=2)
    assert pooled == alone
    assert len(alone) == 60
    assert alone[0][1].figures == [("model.name", "m01 <x>")]
