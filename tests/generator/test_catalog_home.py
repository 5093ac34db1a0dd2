"""The catalog table's numbers, the home page's scatter and the generated home beside a hand-written one.

Pure functions of generator/listings.py and generator/home.py, and the rendered catalog of
tests/generator/catalog_site.py read as HTML (what a reader with JavaScript off sees).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.home import HOME_MARK, Point, points, scatter
from generator.listings import default_pack, smallest_memory
from tests.generator.catalog_site import HOSTILE_TEACHER, build_catalog_site

SITE = Path(__file__).resolve().parents[2] / "site"


def test_smallest_memory_keeps_its_own_quantization_and_speed() -> None:
    cost = [
        {"quant": "fp32", "status": "ok", "peak_rss_bytes": 9e8, "decode_tps_p50": 20.0},
        {"quant": "int8", "status": "ok", "peak_rss_bytes": 1.4e9, "decode_tps_p50": 36.0},
        {"quant": "q2", "status": "failed", "peak_rss_bytes": 1e8, "decode_tps_p50": 99.0},
        {"quant": "q3", "status": "ok", "peak_rss_bytes": None},
    ]
    assert smallest_memory(cost) == {"bytes": 9e8, "quant": "fp32", "decode_tps": 20.0}
    assert smallest_memory([{"status": "ok", "peak_rss_bytes": True}]) is None  # a boolean is no number
    assert smallest_memory([]) is None


def test_default_pack_is_the_one_most_models_have_a_retention_on() -> None:
    def row(**packs: float | None) -> dict[str, Any]:
        return {"packs": {p: {"retention": r} for p, r in packs.items()}}

    rows = [row(a=None, b=0.5), row(a=None, b=None), row(a=0.3)]  # a: 3 ran, 1 with retention; b: 2, 1
    assert default_pack(rows) == "a"
    assert default_pack([row(z=0.1), row(y=None)]) == "z"
    assert default_pack([{"packs": {}}]) is None


def _quant(quant: str, retention: float | None, rss: float | None) -> dict[str, Any]:
    benched = [] if rss is None else [{"status": "ok", "peak_rss_bytes": rss}]
    evaluated = {"capitals-mc@1.0.0": {"retention": retention, "role": "student"}}
    return {"quant": quant, "evaluated": evaluated, "benched": benched}


def test_a_point_pairs_retention_and_memory_of_one_quantization() -> None:
    """The issue's bug in the buyer query, not repeated here: fp32 retention beside int8 memory."""
    row = {
        "name": "m",
        "version": "1",
        "page": "models/m/1/",
        "quantization": [_quant("fp32", 0.46, 8.7e8), _quant("int8", 0.12, 1.43e9), _quant("q4", None, 1e8)],
    }
    plotted, missing = points([row], "capitals-mc")
    assert plotted == [Point("m", "1", "models/m/1/", "fp32", 0.46, 8.7e8)]
    assert not missing
    smaller_int8 = {**row, "quantization": [_quant("fp32", 0.46, 8.7e8), _quant("int8", 0.12, 5e8)]}
    assert points([smaller_int8], "capitals-mc")[0][0].retention == 0.12  # int8's own retention
    assert points([row], "other-pack") == ([], [row])


def test_scatter_escapes_every_label() -> None:
    hostile = '<script>window.__pwned=1</script>"&'
    svg = str(scatter([Point(hostile, hostile, "models/x/1/", hostile, 0.5, 1e9)], hostile, ""))
    assert "<script>" not in svg
    assert hostile not in svg  # the quote cannot close an attribute: it is &#34;
    assert svg.count("<a ") == svg.count("<circle ") == 1
    assert "&lt;script&gt;" in svg
    assert "\n\n" not in svg  # a blank line would end the raw HTML block in Markdown


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the tmp folder, the built site) of tests/generator/catalog_site.py."""
    tmp = tmp_path_factory.mktemp("catalog-home")
    build_catalog_site(tmp, tmp / "site")
    return tmp, tmp / "site"


def test_the_table_reads_with_javascript_off(built: tuple[Path, Path]) -> None:
    """Server-rendered rows show the default pack's signed numbers; hostile text is escaped."""
    tmp, site = built
    html = (site / "models" / "index.html").read_text("utf-8")
    assert "Student score and retention on pack <strong" in html
    assert re.search(r'class="rc-pack-choose" hidden', html)  # the selector needs JavaScript: hidden
    for receipt in (tmp / "receipts").glob("*@*/receipt.json"):
        predicate = json.loads(base64.b64decode(json.loads(receipt.read_bytes())["payload"]))["predicate"]
        name = predicate["model"]["name"]
        row = re.search(rf'<tr data-rc-packs=\'[^\']*\'><td data-sort="{name} [^"]*">.*?</tr>', html)
        assert row, name
        run = next((r for r in predicate["runs"] if r["pack"]["id"] == "capitals-mc"), None)
        cell = re.search(r'<td data-rc-col="retention" data-sort="([^"]*)">([^<]*)</td>', row.group(0))
        assert cell, row.group(0)
        if run is None:
            assert cell.groups() == ("", "n/a (not run)")
        else:
            assert float(cell.group(1)) == run["summary"]["retention"]
            assert cell.group(2) == f"{run['summary']['retention']:.3f}"
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=" in html
    assert HOSTILE_TEACHER not in html  # only escaped


def test_write_keeps_a_hand_written_home(
    built: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from receipts.cli import main

    tmp, _ = built
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Our own home\n", "utf-8")
    argv = ["render", str(tmp / "receipts"), "--trust-root", str(tmp / "trust.json"), "--out", str(docs)]
    assert main([*argv, "--no-rederive"]) == 0
    assert (docs / "index.md").read_text("utf-8") == "# Our own home\n"
    assert (docs / "models" / "index.md").is_file()
    (docs / "index.md").unlink()
    assert main([*argv, "--no-rederive"]) == 0
    generated = (docs / "index.md").read_text("utf-8")
    assert HOME_MARK in generated  # a generated home, which the next render may replace
    assert main([*argv, "--no-rederive"]) == 0
    assert (docs / "index.md").read_text("utf-8") == generated
    capsys.readouterr()


def test_build_keeps_a_docs_folder_home(built: tuple[Path, Path], tmp_path: Path) -> None:
    from receipts.cli import main
    from receipts.resources import site_dir

    tmp, _ = built
    pages = tmp_path / "pages"
    shutil.copytree(site_dir() / "pages", pages)
    (pages / "index.md").write_text("# Our own home\n\nWritten by hand.\n", "utf-8")
    config = {"INHERIT": str(site_dir() / "mkdocs.yml"), "docs_dir": str(pages)}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config), "utf-8")
    out = tmp_path / "site"
    argv = ["build", str(tmp / "receipts"), "--trust-root", str(tmp / "trust.json"), "--out", str(out)]
    assert main([*argv, "--config-file", str(tmp_path / "mkdocs.yml"), "--no-rederive"]) == 0
    home = (out / "index.html").read_text("utf-8")
    assert "Written by hand." in home
    assert "rc-scatter" not in home
    assert (out / "models" / "index.html").is_file()


def test_built_pages_are_what_plain_mkdocs_makes_of_the_rendered_markdown(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    """Pages built with their HTML lifted out of Markdown (generator/lift.py) are plain mkdocs' pages.

    Every page ``receipts build`` makes is, byte for byte, the page plain mkdocs makes of the Markdown
    ``receipts render`` writes.
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    from receipts.cli import main
    from tests.generator.htmldom import plain_config, site_differences

    tmp, site = built
    docs = tmp_path / "docs"
    shutil.copytree(SITE / "pages", docs)
    argv = ["render", str(tmp / "receipts"), "--trust-root", str(tmp / "trust.json"), "--out", str(docs)]
    assert main([*argv, "--no-rederive"]) == 0
    config = plain_config(SITE / "mkdocs.yml", docs, tmp_path / "plain.yml")
    build(load_config(str(config), site_dir=str(tmp_path / "plain"), strict=True))
    cards = list((tmp_path / "plain" / "models").glob("*/*/index.html"))
    assert len(cards) == 4
    assert all("rc-label" in page.read_text("utf-8") for page in cards)
    assert site_differences(site, tmp_path / "plain") == []
