"""A card page's failure modes in a real mkdocs build: signed numbers in the text, items side by side, inert.

The receipt signs examples/card.yaml (with the fake teacher the run scored) and a real ``receipts run`` of
capitals-mc's first 24 items under every prompt variant, as the small demo does.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from receipts.cli import main
from receipts.keys import generate, write_keypair
from receipts.trust import new_root

ROOT = Path(__file__).parents[2]
FAKE_CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
HOSTILE_SLICE = "note=<img/src=x/onerror=alert(1)>"  # FIELD=LABEL: a label holds no white space
HOSTILE_TEXT = "</div><script>alert(document.domain)</script> a [link](javascript:alert(document.domain))"


def _card(tmp: Path) -> Path:
    card = yaml.safe_load((ROOT / "examples" / "card.yaml").read_text("utf-8"))
    fake = yaml.safe_load(FAKE_CARD.read_text("utf-8"))
    card["lineage"]["teachers"] = fake["lineage"]["teachers"]
    # the fake teacher is no provider in the licence table: the fake card's overrides say why it is free
    card["license"]["overrides"] = fake["license"]["overrides"]
    hostile = card["failure_modes"][0]
    hostile["description"] += f" {HOSTILE_TEXT} elsewhere {{other-pack.student.acc@{HOSTILE_SLICE}}}."
    hostile["pack_items"].append("other-pack/item-1")
    path = tmp / "card.yaml"
    path.write_text(yaml.safe_dump(card, sort_keys=False), "utf-8")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("failure-mode-page")
    key = generate()
    write_keypair(key, tmp / "keys" / "release", b"pw")
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    run = tmp / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        patch.setenv("RECEIPTS_PASSPHRASE", "pw")
        roles = ["--teacher", "fake:teacher", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]
        argv = ["run", ROOT / "packs" / "capitals-mc", *roles, "--sft", "fake:f?skill=0.5", "--limit", "24"]
        assert main([str(a) for a in [*argv, "--out", run]]) == 0
        sign = ["sign", "--card", _card(tmp), "--run", run, "--key", tmp / "keys" / "release.key.pem"]
        assert main([str(a) for a in [*sign, "--out", tmp / "receipts"]]) == 0
        build = ["build", tmp / "receipts", "--trust-root", trust, "--out", tmp / "site"]
        assert main([str(a) for a in build]) == 0
    folder = tmp / "site" / "models" / "smollm2-135m-distilled-24l" / "0.1.0"
    return {
        "page": (folder / "index.html").read_text("utf-8"),
        "results": json.loads((run / "results.json").read_bytes()),
        "exports": [
            (folder / "README.md.txt").read_text("utf-8"),
            next(folder.glob("*.cdx.json")).read_text("utf-8"),
        ],
    }


def _section(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    return page[start : page.index("</div>", start)]


def test_placeholders_render_the_signed_numbers_with_their_labels(site: dict[str, Any]) -> None:
    section = _section(site["page"], "fm-phrasing-sensitivity")
    metrics = site["results"]["metrics"]
    for slice_, role in (("variant=lowercase", "student"), ("variant=typo", "teacher"), ("all", "student")):
        value = metrics[slice_]["acc"]["roles"][role]["value"]
        n = metrics[slice_]["acc"]["roles"][role]["n"]
        where = "all items" if slice_ == "all" else f"slice {slice_}"
        label = f"capitals-mc · {role} · acc · {where} · n={n}"
        assert f'<abbr class="rc-measured" title="{label}">{value:.3f}</abbr>' in section, label
    assert "{capitals-mc" not in section  # no placeholder left raw
    ece = site["results"]["calibration"]["student"]["ece_10_equal_mass"]
    overconfident = _section(site["page"], "fm-overconfident-wrong-answers")
    assert f">{ece:.3f}</abbr>" in overconfident
    assert "expected calibration error (10 equal-mass bins)" in overconfident  # the evidence, labelled


def test_each_failure_mode_lists_its_items_with_teacher_and_student_side_by_side(
    site: dict[str, Any],
) -> None:
    page = site["page"]
    for anchor in ("fm-weak-rare-countries", "fm-inherits-teacher-errors", "fm-overconfident-wrong-answers"):
        assert f'id="{anchor}"' in page
    start = page.index('id="fm-phrasing-sensitivity"')
    table = page[start : page.index("</table>", start)]
    assert "<th>teacher</th><th>student</th>" in table
    rows = re.findall(r"<tr><td><code>(cap-g?\d+)</code></td><td class=\"rc-nowrap\">([a-z]+)</td>", table)
    assert ("cap-g0078", "lowercase") in rows  # every prompt variant of a named item is a row
    assert len(rows) == 16  # MAX_ROWS of 6 items x 4 prompt variants, in the card's order
    assert {item for item, _ in rows} == {"cap-g0078", "cap-g0895", "cap-g0112", "cap-g0636"}
    assert "and 8 more row(s) in the signed examples log" in page[start:]
    assert re.search(
        r"choice \d<br><span class=\"rc-fm-(right|wrong)\">(right|wrong)</span> · conf 0\.\d\d", table
    )


def test_hostile_failure_mode_text_stays_inert(site: dict[str, Any]) -> None:
    page = site["page"]
    section = page[page.index('id="fm-weak-rare-countries"') : page.index('id="fm-inherits-teacher-errors"')]
    assert "<script>alert(" not in page
    assert "<img/src" not in page
    assert 'href="javascript' not in page
    assert html.escape(HOSTILE_SLICE, quote=False) in section  # shown, as text
    assert "not evaluated in this receipt (no signed run of other-pack)" in section
    assert "<code>other-pack/item-1</code>" in section


def test_exports_carry_the_signed_numbers_not_the_placeholders(site: dict[str, Any]) -> None:
    ece = site["results"]["calibration"]["student"]["ece_10_equal_mass"]
    for written in site["exports"]:
        text = written.replace("\\", "")  # the Hugging Face card escapes Markdown punctuation
        assert "{capitals-mc." not in text
        assert f"{ece:.3f} (capitals-mc · student · expected calibration error (10 equal-mass bins)" in text
