"""The card page says each gate outcome in plain words, and shows retention with its CI (text and chart)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rfc8785
import yaml

from generator.render import collect, render
from receipts.cli import main
from receipts.dsse import sign_envelope
from receipts.keys import generate
from receipts.sign import PAYLOAD_TYPE, sign_receipt
from receipts.trust import new_root, trust_root_from_bytes

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The rendered files of one receipt whose run leaves the pack's rules short of a pass."""
    tmp = tmp_path_factory.mktemp("gate-page")
    roles = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.85"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        argv = ["run", str(ROOT / "packs" / "capitals-mc"), *roles, "--limit", "60", "--variant", "original"]
        assert main([*argv, "--out", str(tmp / "run")]) == 0
    card = yaml.safe_load(CARD.read_text("utf-8"))
    card.pop("gate", None)  # the pack's own rules
    (tmp / "card.yaml").write_text(yaml.safe_dump(card), "utf-8")
    key = generate()
    sign_receipt(tmp / "card.yaml", [key], tmp / "receipts", runs=[tmp / "run"])
    root_bytes = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    root = trust_root_from_bytes(root_bytes)
    result = render(collect(tmp / "receipts", root), root, root_bytes)
    return {name: data.decode("utf-8") for name, data in result.files.items() if name.startswith("models/")}


def _markdown(files: dict[str, str]) -> str:
    (name,) = [n for n in files if n.count("/") == 3 and n.endswith("/index.md")]
    return files[name]


def test_the_gate_table_says_each_outcome_in_words(page: dict[str, str]) -> None:
    text = _markdown(page)
    assert "<th>observed (95% CI)</th>" in text
    assert "max global regression" in text
    # capitals-mc 2.0.0's first 60 items hold 24 critical ones: the cohort rule fails; 60 items are too few
    assert "underpowered: this pack cannot detect a 5% regression on all items (n=60)" in text
    assert "fail: the drop on cohort critical is between" in text
    assert "(95% CI); the threshold is" in text  # a rule judged on its CI says between which bounds


def test_retention_is_shown_with_its_ci_in_text_and_chart(page: dict[str, str]) -> None:
    text = _markdown(page)
    headline = text.split("### Retention", 1)[1].split("###", 1)[0]
    assert '<th scope="col">student retention (95% CI)</th>' in headline
    assert '<span data-rc-figure="runs.capitals-mc.retention">' in headline
    ci = r'<span class="rc-ci">\[[-0-9.]+, [-0-9.]+\]</span>'
    assert re.search(r'data-rc-figure="runs.capitals-mc.retention">[^<]*</span></strong> ' + ci, headline)
    charts = [data for name, data in page.items() if name.endswith(".svg") and "student retention" in data]
    assert charts
    assert "<line " in charts[0]  # the CI whisker


@pytest.mark.parametrize("ci95", [{"low": 0, "high": 1}, "ab", [0, 1, 2], [True, False], ["0", "1"], None])
def test_a_signed_gate_record_whose_ci_is_not_two_numbers_renders_a_dash_not_an_error(
    tmp_path: Path, ci95: object
) -> None:
    """Gate records are free-form in the statement; with --no-rederive nothing recomputes them."""
    key = generate()
    sign_receipt(CARD, [key], tmp_path / "receipts", runs=[ROOT / "tests" / "data" / "run_minimal"])
    (bundle,) = (tmp_path / "receipts").iterdir()
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    rules = statement["predicate"]["gate"]["rules"]
    judged = next(r for r in rules if r.get("basis") == "ci")
    judged["ci95"] = ci95
    (bundle / "receipt.json").write_bytes(sign_envelope(PAYLOAD_TYPE, rfc8785.dumps(statement), [key]))
    root_bytes = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    root = trust_root_from_bytes(root_bytes)
    result = render(collect(tmp_path / "receipts", root, rederive=False), root, root_bytes)
    text = _markdown({n: d.decode("utf-8") for n, d in result.files.items() if n.startswith("models/")})
    table = text.split("<th>observed (95% CI)</th>", 1)[1].split("</table>", 1)[0]
    row = next(r for r in table.split("<tr>") if f"<td>{judged['rule'].replace('_', ' ')}</td>" in r)
    observed = row.split("<td>")[5].split("</td>")[0]  # pack, rule, cohort, threshold, observed
    assert observed == f"{judged['observed']:.3f} —"  # no bounds made up from what is not a pair
