"""The buyer query and compare (catalog.js) in a real headless Chromium, held to the verified receipts.

Every number a result row shows is compared with the number read in Python from the receipt as
`receipts.verify.verify_receipt` returns it (the signed results, the signed footprints), never from the page
or the catalog index. The catalog: a tiny transformers model evaluated at fp32 and int8-dynamic on two packs
and benched at fp32, int8-dynamic and bf16 (bf16 measured but never evaluated), a replayed extraction
model with the card's claimed memory, and a hostile card.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import load_trust_root, new_root
from receipts.verify import VerifiedReceipt, find_receipts, verify_receipt
from tests.generator import test_browser
from tests.generator.test_browser import _card, _precise, _recordings
from tests.generator.test_catalog import DATA, ROOT, hostile_card
from tests.models import tiny_llama

pytestmark = pytest.mark.browser
browser = test_browser.browser  # the module-scoped fixtures, shared
serve = test_browser.serve

SCALE = {"fp32": 1.0, "int8-dynamic": 0.5, "bf16": 0.75}
HOSTILE_LABEL = '<img src=x onerror="window.__pwned=1"> · 2 cores'


def _run(pack: str, out: Path, teacher: str, student: str, *variants: str) -> None:
    limit = "20" if pack == "capitals-mc" else "10"  # the failure modes below name capitals-mc items 1-20
    args = ["run", str(ROOT / "packs" / pack), "--limit", limit, "--variant", "original"]
    args += ["--teacher", teacher, "--base", "fake:b?skill=0.2", "--no-cache", "--student", student]
    args += ["--out", str(out)]
    for variant in variants:
        args += ["--student-variant", variant]
    assert main(args) == 0


def _bench(spec: str, out: Path) -> None:
    args = ["bench", spec, "--quant", "fp32,int8,bf16", "--min-duration", "0.2", "--min-calls", "3"]
    args += ["--warmups", "1", "--prompt-tokens", "16", "--new-tokens", "4", "--no-context-search"]
    assert main([*args, "--out", str(out)]) == 0


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> dict[str, Any]:
    """The signed catalog, built and served: its base URL, its receipts folder and trust root."""
    tmp = tmp_path_factory.mktemp("buyer")
    key = generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp / "receipts"
    tiny = tiny_llama(tmp / "tiny")
    teacher = _recordings(tmp / "teacher.jsonl", lambda gold: gold, model="recorded-teacher")
    runs = [tmp / "runs" / "capitals", tmp / "runs" / "clauses"]
    _run("capitals-mc", runs[0], "fake:t?skill=0.9", f"hf:{tiny}", f"hf:{tiny}@int8-dynamic")
    _run("contract-clauses", runs[1], teacher, f"hf:{tiny}", f"hf:{tiny}@int8-dynamic")
    footprint = tmp / "footprint.json"
    _bench(f"hf:{tiny}", footprint)
    measured = json.loads(footprint.read_text("utf-8"))
    measured["hardware"]["label"] = HOSTILE_LABEL  # free text a publisher controls, shown by the query
    # a tiny model needs about the same memory at every quantization: make each one distinct (points and
    # summary alike, so the receipt still re-derives), so that a row showing another quantization's is caught
    for point in measured["points"]:
        scaled = int(point["memory"]["peak_rss_bytes"] * SCALE[point["quant"]])
        point["memory"]["peak_rss_bytes"] = scaled
        measured["summary"]["by_quant"][point["id"]]["peak_rss_bytes"] = scaled
    footprint.write_text(json.dumps(measured), "utf-8")
    card = _card(tmp, "quant-model", commercial=True, ram_gib=64)
    written = yaml.safe_load(card.read_text("utf-8"))
    # the example card's failure modes name items of the full capitals-mc run; these, of its first 20
    fake = yaml.safe_load((DATA / "card_fake_teacher.yaml").read_text("utf-8"))
    written["failure_modes"] = fake["failure_modes"]
    card.write_text(yaml.safe_dump(written), "utf-8")
    sign_receipt(card, [key], receipts, runs=runs, footprints=[footprint], weights=tiny)
    precise = tmp / "runs" / "precise"
    _run("contract-clauses", precise, teacher, _recordings(tmp / "precise.jsonl", _precise))
    sign_receipt(_card(tmp, "precise-model", commercial=True, ram_gib=2), [key], receipts, runs=[precise])
    sign_receipt(hostile_card(tmp), [key], receipts, runs=[DATA / "run_minimal"])
    out = tmp / "site"
    out.mkdir()
    base = serve(out)
    assert main(["build", str(receipts), "--trust-root", str(trust), "--out", str(out)]) == 0
    root = load_trust_root(trust)
    verified = [verify_receipt(path, root) for path in find_receipts(receipts)]
    return {"base": base, "verified": verified}


# --- what the receipts say, read in Python -------------------------------------------------------------


def _signed_rows(verified: list[VerifiedReceipt], task: str) -> dict[tuple[str, str], dict[str, str]]:
    """(model, quant) -> each figure as the page must print it, from the signed results and footprints."""
    expected = {}
    for entry in verified:
        runs = {r.pack.id: r for r in entry.results}
        if task not in runs:
            continue
        results = runs[task]
        for row in entry.predicate.quantization or []:
            figures = _signed_figures(results, row.evaluated.get(f"{task}@{results.pack.version}"), row.quant)
            figures["memory-value"] = _signed_memory(entry, row.quant)
            expected[(entry.name, row.quant)] = figures
    return expected


def _signed_figures(results: Any, evaluated: Any, quant: str) -> dict[str, str]:
    if evaluated is None:
        return {"score": f"not evaluated on {results.pack.id} at {quant}"}
    role, metric = evaluated.role, results.primary_metric
    entry = results.metrics["all"][metric]
    figures = {
        "score": f"{entry.roles[role].value:.3f} {metric}",
        "teacher": f"{entry.roles['teacher'].value:.3f}",
    }
    kept = (entry.retention or {}).get(role)
    if kept is not None and kept.value is not None:
        lo, hi = kept.ci95
        figures["retention"] = f"{kept.value:.3f} [{lo:.3f}, {hi:.3f}]"
    else:
        figures["retention"] = "n/a"
    counts = (results.extraction or {}).get(role)
    for name in ("precision", "recall") if counts is not None else ():
        value = getattr(counts.micro, name)
        figures[name] = "n/a" if value is None else f"{value:.3f}"
    return figures


def _signed_memory(entry: VerifiedReceipt, quant: str) -> str:
    """The smallest peak RSS the signed footprints measured at ``quant`` (status ok), or the card's claim."""
    measured = [
        point.peak_rss_bytes
        for footprint in entry.footprints
        for point in footprint.summary.by_quant.values()
        if point.quant == quant and point.status == "ok" and point.peak_rss_bytes is not None
    ]
    if measured:
        return f"{min(measured) / 1e9:.2f} GB measured"
    claimed = [p.ram_gib for p in entry.card.hardware_profiles if p.quantization == quant]
    return f"{min(claimed) * 2**30 / 1e9:.2f} GB claimed by the card"


# --- what the page shows ----------------------------------------------------------------------------------


def _page_rows(page: Any) -> list[dict[str, str]]:
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('tr.rc-match')).map(tr => {
          const row = {model: tr.querySelector('td[data-col=model] a').textContent,
                       rank: tr.querySelector('td[data-col=rank]').textContent,
                       value: tr.querySelector('td[data-col=value]').textContent};
          tr.querySelectorAll('.rc-figure[data-col]').forEach(f => {
            row[f.dataset.col] = f.querySelector('.rc-figure-value').textContent; });
          return row; })"""
    )


def test_every_row_is_one_quantization_with_its_own_signed_numbers(
    catalog: dict[str, Any], browser: Any
) -> None:
    page = browser.new_page()
    for task in ("contract-clauses", "capitals-mc"):
        page.goto(catalog["base"] + f"/buyer/?ram_gb=64&task={task}&priority=quality")
        rows = _page_rows(page)
        expected = _signed_rows(catalog["verified"], task)
        shown = {(r["model"].split()[0], r["quant"]): r for r in rows}
        assert set(shown) == set(expected), task
        assert ("quant-model", "int8-dynamic") in shown
        assert ("quant-model", "bf16") in shown
        for key, figures in expected.items():
            for col, text in figures.items():
                if col == "memory-value" or text != "n/a":
                    assert shown[key][col] == text, (task, key, col)
                else:
                    assert shown[key][col].startswith("n/a"), (task, key, col)
    page.close()


def test_a_quantization_only_benched_ranks_last_and_says_why(catalog: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    page.goto(catalog["base"] + "/buyer/?ram_gb=64&task=capitals-mc&priority=quality")
    rows = _page_rows(page)
    bf16 = next(r for r in rows if r["quant"] == "bf16")
    assert bf16["rank"] == "last"
    assert bf16["value"] == "n/a: not evaluated at this quantization (bf16 has memory measured only)"
    ranks = [r["rank"] for r in rows]
    assert ranks == sorted(ranks, key=lambda r: (r == "last", int(r) if r != "last" else 0))
    values = [float(r["value"].split()[0]) for r in rows if r["rank"] != "last"]
    assert values == sorted(values, reverse=True)
    assert len(values) >= 2
    page.close()


def test_precision_ranks_the_precise_model_and_says_why_others_are_na(
    catalog: dict[str, Any],
    browser: Any,
) -> None:
    page = browser.new_page()
    page.goto(catalog["base"] + "/buyer/?ram_gb=16&task=contract-clauses&commercial=1&priority=precision")
    rows = _page_rows(page)
    assert rows[0]["model"] == "precise-model 0.1.0"
    assert rows[0]["rank"] == "1"
    assert rows[0]["precision"] == "1.000"
    for row in rows[1:]:
        assert row["rank"] == "last"
        if "precision" in row:  # evaluated here: extraction counts signed, precision undefined
            assert row["precision"] == "n/a"
            assert row["value"].startswith("n/a: no precision measured for contract-clauses")
        else:
            assert row["value"].startswith("n/a: not evaluated")
    page.close()


def test_floor_pack_and_missing_values_rank_last_with_reasons(catalog: dict[str, Any], browser: Any) -> None:
    """The query itself (window.receiptsCatalog.query) over an index where every role scores 0 on a pack."""
    page = browser.new_page()
    page.goto(catalog["base"] + "/buyer/")
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    result = page.evaluate(
        """() => {
          const pack = (score, floor, extraction) => ({score: score, teacher: floor ? 0 : 0.9, floor: floor,
            metric: 'field_f1', retention: null, retention_reason: 'r', extraction: extraction});
          const model = (name, p) => ({name: name, version: '1', evals: {t: {}}, hardware_profiles: [],
            quants: [{quant: 'fp32', packs: {t: p}, memory: [{status: 'ok', peak_rss_bytes: 1e9}]}]});
          const index = {models: [
            model('zero', pack(0, true, {precision: null, recall: 0, tp: 0, fp: 0, fn: 3})),
            model('good', pack(0.5, false, {precision: 0.5, recall: 0.5, tp: 1, fp: 1, fn: 1})),
            model('empty', pack(0, false, {precision: null, recall: 0, tp: 0, fp: 0, fn: 3}))]};
          const out = window.receiptsCatalog.query(index, {ram_gb: 16, task: 't', priority: 'precision'});
          return out.rows.map(r => [r.model.name, r.value, r.missing || null]);
        }"""
    )
    assert result == [
        ["good", 0.5, None],
        ["empty", None, "no precision measured for t: the student at fp32 extracted no fields (tp 0, fp 0)"],
        ["zero", None, "every role scores 0 on t: this pack says nothing about these models"],
    ]
    page.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("ram_gb=abc", "RAM budget “abc” is not a number of GB"),
        ("ram_gb=-4", "RAM budget must be more than 0 GB (got -4)."),
        ("ram_gb=", "RAM budget is empty"),
        ("ram_gb=16&task=nope", "No task “nope” in this catalog: choose one of "),
        ("ram_gb=16&priority=cheapest", "No priority “cheapest”: choose one of quality"),
        ("ram_gb=16&commercial=yes", "commercial must be 1 (required) or 0"),
    ],
)
def test_invalid_query_shows_a_message_not_results(
    catalog: dict[str, Any],
    browser: Any,
    query: str,
    message: str,
) -> None:
    page = browser.new_page()
    page.goto(catalog["base"] + "/buyer/?" + query)
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    errors = page.locator("ul.rc-errors")
    assert errors.is_visible()
    assert message in (errors.text_content() or "")
    assert page.locator("tr.rc-match").count() == 0
    assert page.locator(".rc-summary").text_content() == "No results: fix the query above."
    page.close()


def test_the_url_is_the_query_back_and_forward_restore_it(catalog: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    first = "?ram_gb=64&task=capitals-mc&priority=retention"
    page.goto(catalog["base"] + "/buyer/" + first)
    before = _page_rows(page)
    assert page.locator("a.rc-permalink").text_content() == first
    page.fill("input[name=ram_gb]", "32")
    page.select_option("select[name=task]", "contract-clauses")
    page.select_option("select[name=priority]", "precision")
    page.click("button[type=submit]")
    second = "?ram_gb=32&task=contract-clauses&priority=precision"
    page.wait_for_function(f"() => location.search === {json.dumps(second)}")
    assert page.locator("a.rc-permalink").text_content() == second
    after = _page_rows(page)
    assert after != before
    assert after[0]["model"] == "precise-model 0.1.0"
    page.go_back()
    page.wait_for_function(f"() => location.search === {json.dumps(first)}")
    # the page may be drawn afresh first (instant navigation): wait for the form to show the restored query
    page.wait_for_function(
        "() => document.querySelector('input[name=ram_gb]').value === '64'"
        " && document.querySelector('select[name=task]').value === 'capitals-mc'"
    )
    assert page.input_value("input[name=ram_gb]") == "64"
    assert page.input_value("select[name=priority]") == "retention"
    assert _page_rows(page) == before
    assert page.locator("a.rc-permalink").text_content() == first
    page.go_forward()
    page.wait_for_function("() => document.querySelector('select[name=task]').value === 'contract-clauses'")
    assert _page_rows(page) == after
    shared = browser.new_page()  # the same address in a fresh tab reproduces the same results
    shared.goto(catalog["base"] + "/buyer/" + second)
    assert _page_rows(shared) == after
    page.close()
    shared.close()


def test_compare_shows_teacher_student_and_the_smallest_measured_memory(
    catalog: dict[str, Any],
    browser: Any,
) -> None:
    page = browser.new_page()
    page.goto(catalog["base"] + "/compare/?m=quant-model@0.1.0&m=precise-model@0.1.0")
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    assert not page.locator("ul.rc-errors").is_visible()
    table = {
        row[0]: row[1:]
        for row in page.evaluate(
            "() => Array.from(document.querySelectorAll('table.rc-compare tr'))"
            ".map(tr => Array.from(tr.children).map(c => c.textContent))"
        )
    }
    entry = next(e for e in catalog["verified"] if e.name == "quant-model")
    for results in entry.results:
        metric = results.metrics["all"][results.primary_metric]
        pack = results.pack.id
        assert table[f"{pack}: teacher score"][0].startswith(f"{metric.roles['teacher'].value:.3f}")
        student = table[f"{pack}: student score"][0]
        for quant, role in (("fp32", "student"), ("int8-dynamic", "student@int8-dynamic")):
            assert f"{quant} {metric.roles[role].value:.3f}" in student
    points = [p for f in entry.footprints for p in f.summary.by_quant.values() if p.status == "ok"]
    smallest = min(points, key=lambda p: p.peak_rss_bytes or math.inf)
    assert table["smallest measured peak RSS"][0].startswith(
        f"{smallest.peak_rss_bytes / 1e9:.2f} GB at {smallest.quant} (measured on "
    )
    page.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("m=quant-model@0.1.0&m=smollm2@9", "No model smollm2@9 in this catalog"),
        ("m=a@1&m=b@1&m=c@1&m=d@1&m=e@1", "Compare shows at most 4 models; this address names 5"),
        ("", "No models named"),
    ],
)
def test_compare_refuses_unknown_models_visibly(
    catalog: dict[str, Any],
    browser: Any,
    query: str,
    message: str,
) -> None:
    page = browser.new_page()
    page.goto(catalog["base"] + "/compare/?" + query)
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    assert page.locator("ul.rc-errors").is_visible()
    assert message in (page.locator("ul.rc-errors").text_content() or "")
    page.close()


def test_hostile_index_text_stays_text(catalog: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    query = "?ram_gb=64&task=&priority=speed"  # any task: every model's rows
    page.goto(catalog["base"] + "/buyer/" + query)
    rows = _page_rows(page)
    assert {r["model"].split()[0] for r in rows} >= {"hostile-model", "quant-model"}
    measured = [r for r in rows if r["model"].startswith("quant-model")]
    assert measured
    assert all(r["hardware"] == HOSTILE_LABEL for r in measured)
    page.goto(catalog["base"] + "/compare/?m=hostile-model@0.1.0&m=" + "%3Cimg%20src%3Dx%3E@1")
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    assert "No model <img src=x>@1 in this catalog" in (page.locator("ul.rc-errors").text_content() or "")
    for url in (catalog["base"] + "/buyer/" + query, page.url):
        page.goto(url)
        page.wait_for_selector("[data-rc-app][data-ready=true]")
        assert page.locator("[data-rc-app] img").count() == 0
        assert page.evaluate("() => window.__pwned === undefined")
        hrefs = page.eval_on_selector_all("[data-rc-app] a", "els => els.map(a => a.getAttribute('href'))")
        assert all(h.startswith(("../models/", "?")) for h in hrefs), hrefs
    page.close()


def test_the_link_names_every_value_the_query_ran_with(catalog: dict[str, Any], browser: Any) -> None:
    page = browser.new_page()
    page.goto(catalog["base"] + "/buyer/")
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    # no task in the address: the pack most models have a signed retention for (then by name), in the link
    index = page.evaluate("async () => (await fetch('../catalog/index.json')).json()")
    counts: dict[str, int] = {}
    for model in index["models"]:
        for pack, ev in model["evals"].items():
            counts[pack] = counts.get(pack, 0) + isinstance(ev.get("retention"), int | float)
    task = min(counts, key=lambda p: (-counts[p], p))
    assert page.locator("a.rc-permalink").text_content() == f"?ram_gb=16&task={task}&priority=quality"
    assert page.locator("select[name=task]").input_value() == task
    assert f" ranked by student score on {task}" in (page.locator(".rc-summary").text_content() or "")
    assert any(r["value"] != "n/a" and not r["value"].startswith("n/a:") for r in _page_rows(page))
    page.goto(catalog["base"] + "/buyer/?ram_gb=16&task=&priority=quality")  # task= empty: any task, said so
    page.wait_for_selector("[data-rc-app][data-ready=true]")
    assert page.locator("a.rc-permalink").text_content() == "?ram_gb=16&task=&priority=quality"
    assert ", 0 ranked by student score, 5 n/a" in (page.locator(".rc-summary").text_content() or "")
    unranked = {r["value"] for r in _page_rows(page)}
    assert unranked == {"n/a: choose a task to rank by student score"}
    page.close()
