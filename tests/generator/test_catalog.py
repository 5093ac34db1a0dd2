"""The catalog: receipts rendered into pages by a real mkdocs build; hostile card text stays inert.

Browser checks (verify.js under Chromium) are in tests/generator/test_browser.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml

from receipts.cli import main
from receipts.keys import generate, write_keypair
from receipts.sign import sign_receipt
from receipts.trust import new_root

ROOT = Path(__file__).parents[2]
VECTORS = ROOT / "tests" / "vectors"
GOLDEN = VECTORS / "golden" / "v1"
MAIN_ROOT = VECTORS / "roots" / "main.json"
DATA = ROOT / "tests" / "data"

HOSTILE = {
    "script": "<script>window.__pwned = 1</script>",
    "close_json": "</script><script>window.__pwned = 2</script>",
    "js_link": "javascript:window.__pwned=3",
    "md_link": "[click me](javascript:window.__pwned=4)",
    "raw_html": '<img src=x onerror="window.__pwned=5">',
    "md_html": "**bold** <b>tag</b> `code` ![img](http://evil.example/x.png)",
    "long": "A" * 1500,
}


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def hostile_card(tmp_path: Path) -> Path:
    card = yaml.safe_load((ROOT / "tests" / "data" / "card_fake_teacher.yaml").read_text("utf-8"))
    card["model"]["name"] = "hostile-model"
    card["model"]["description"] = HOSTILE["script"] + " " + HOSTILE["close_json"]
    card["model"]["homepage"] = "https://example.com/"
    card["intended_use"]["primary_uses"] = [HOSTILE["md_link"], HOSTILE["raw_html"], HOSTILE["long"]]
    card["caveats"] = [HOSTILE["md_html"], HOSTILE["js_link"]]
    # failure-mode text holds no digits (a typed-in number is refused at sign): the same attack in words
    card["failure_modes"][0]["description"] = "</script><script>window.__pwned = true</script>"
    path = tmp_path / "hostile.card.yaml"
    path.write_text(yaml.safe_dump(card), "utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A publisher key, its trust root, and a folder with one honest and one hostile receipt."""
    tmp = tmp_path_factory.mktemp("catalog")
    key = generate()
    write_keypair(key, tmp / "keys" / "release", b"pw")
    root = tmp / "trust.json"
    root.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp / "receipts"
    sign_receipt(ROOT / "examples" / "card.yaml", [key], receipts)
    sign_receipt(hostile_card(tmp), [key], receipts, runs=[DATA / "run_minimal"])
    return {"receipts": receipts, "trust": root, "tmp": tmp}


class _Collect(HTMLParser):
    """Every tag with its attributes, and the text of inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def parse(html: str) -> _Collect:
    collector = _Collect()
    collector.feed(html)
    return collector


def test_mkdocs_build_strict_with_the_repository_config(tmp_path: Path) -> None:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"), strict=True)
    build(config)
    site = tmp_path / "site"
    for name in ("vector-model/0.1.0", "vector-model/0.2.0", "vector-card/1.0.0"):
        page = (site / "models" / name / "index.html").read_text("utf-8")
        assert "Model details" in page
        assert "Distillation scorecard" in page
        named = re.search(r'data-receipt-sha256="([0-9a-f]{64})"', page)
        assert named is not None
        bundle = name.replace("/", "@")
        published = (site / "models" / name / bundle / "receipt.json").read_bytes()
        assert named.group(1) == hashlib.sha256(published).hexdigest()  # the page names what it publishes
        assert published == (GOLDEN / bundle / "receipt.json").read_bytes()
    index = json.loads((site / "catalog" / "index.json").read_text("utf-8"))
    assert index["format"] == "receipts.catalog-index/v1"
    assert sorted(f"{m['name']}@{m['version']}" for m in index["models"]) == sorted(
        p.name for p in GOLDEN.iterdir()
    )
    assert "vector-model" in (site / "models" / "index.html").read_text("utf-8")


def test_build_cli_publishes_verified_receipts(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = cli(
        capsys, "build", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "site"
    )
    assert code == 0, text
    assert "built 2 receipt page(s)" in text
    page = tmp_path / "site" / "models" / "smollm2-135m-distilled-24l" / "0.1.0" / "index.html"
    assert "smollm2-135m-distilled-24l" in page.read_text("utf-8")
    built = b"".join(p.read_bytes() for p in (tmp_path / "site").rglob("*") if p.is_file())
    assert b"PRIVATE KEY" not in built  # no key material leaks into the output


def test_hostile_card_text_renders_inert(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = cli(
        capsys, "build", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "site"
    )
    assert code == 0, text
    html = (tmp_path / "site" / "models" / "hostile-model" / "0.1.0" / "index.html").read_text("utf-8")
    page = parse(html)
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, attrs)  # no event handler from card text
            if name in ("href", "src") and value:
                assert not value.strip().lower().startswith(("javascript:", "http://evil")), (tag, attrs)
    honest = parse(
        (tmp_path / "site" / "models" / "smollm2-135m-distilled-24l" / "0.1.0" / "index.html").read_text()
    )
    assert len(page.scripts) == len(
        honest.scripts
    )  # the theme's own scripts and our two JSON blocks, no more
    for script in page.scripts:
        if "__pwned" in script:
            json.loads(script)  # hostile text only inside inert JSON, and it still parses
            assert "</script" not in script.lower()
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html  # shown as text
    assert "[click me](javascript:window.__pwned=4)" in html  # Markdown did not run on it
    assert "<strong>bold</strong>" not in html
    assert "A" * 1500 in html  # long strings are kept whole
    folder = tmp_path / "site" / "models" / "hostile-model" / "0.1.0"
    assert (folder / "README.md.txt").read_text("utf-8").startswith("---\nlicense: ")  # a file, as exported
    bom = json.loads((folder / "hostile-model-0.1.0.cdx.json").read_text("utf-8"))
    assert bom["metadata"]["component"]["description"] == HOSTILE["script"] + " " + HOSTILE["close_json"]
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html"))
    # the card and its run's viewer; the exports are files, no page
    assert pages == ["examples/tiny-mc/index.html", "index.html"]


def test_card_pages_offer_exports_beside_the_unchanged_bundle(
    world: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from huggingface_hub import ModelCard

    monkeypatch.setenv("RECEIPTS_SITE_URL", "https://catalog.example.org/acme/")  # mkdocs.yml's site_url
    site = tmp_path / "site"
    code, text = cli(capsys, "build", world["receipts"], "--trust-root", world["trust"], "--out", site)
    assert code == 0, text
    pages = sorted((site / "models").glob("*/*/index.html"))
    assert len(pages) == 2
    for page in pages:
        folder, name, version = page.parent, page.parent.parent.name, page.parent.name
        links = {attrs.get("href"): attrs for tag, attrs in parse(page.read_text("utf-8")).tags if tag == "a"}
        bom_file = f"{name}-{version}.cdx.json"
        assert links["README.md.txt"]["download"] == "README.md"  # saved under the name the Hub wants
        assert "download" in links[bom_file]
        assert "carry no signature of their own" in page.read_text("utf-8")
        bom = (folder / bom_file).read_text("utf-8")
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom) is None
        # the HF card links the receipt where the site publishes it (site_url + its path)
        url = f"https://catalog.example.org/acme/models/{name}/{version}/{name}@{version}/receipt.json"
        card = ModelCard.load(folder / "README.md.txt").data
        assert "receipts" in card.tags
        assert {r.source_url for r in card.eval_results or []} <= {url}
        assert f"]({url})\n" in (folder / "README.md.txt").read_text("utf-8")  # "Published receipt" link
        # the same bytes `receipts export` writes from the source bundle
        source = world["receipts"] / f"{name}@{version}"
        for kind, extra, exported in (
            ("hf", ("--receipt-url", url), "README.md.txt"),
            ("cyclonedx", (), bom_file),
        ):
            out = tmp_path / "exports" / f"{name}.{kind}"
            code, text = cli(
                capsys, "export", kind, source, "--trust-root", world["trust"], "--out", out, *extra
            )
            assert code == 0, text
            assert (folder / exported).read_bytes() == out.read_bytes(), kind
        # the bundle is published exactly as signed: nothing added to it, nothing changed
        bundle = folder / f"{name}@{version}"
        published = {p.relative_to(bundle): p.read_bytes() for p in bundle.rglob("*") if p.is_file()}
        assert published == {p.relative_to(source): p.read_bytes() for p in source.rglob("*") if p.is_file()}
    code, text = cli(capsys, "verify", site, "--trust-root", world["trust"])
    assert code == 0, text


def _internal_links(site: Path, page: Path) -> list[tuple[str, Path]]:
    """Every relative href/src of a built page, resolved to the file a static server would send."""
    url_dir = page.parent
    out = []
    for _, attrs in parse(page.read_text("utf-8")).tags:
        for name in ("href", "src"):
            value = attrs.get(name)
            if not value or value.startswith(("#", "http://", "https://", "data:", "mailto:")):
                continue
            target = (url_dir / value.split("#")[0].split("?")[0]).resolve()
            out.append((value, target / "index.html" if target.is_dir() else target))
    return out


def test_listings_split_into_pages_with_tag_pages_and_links_resolve(
    world: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import generator.listings

    monkeypatch.setattr(generator.listings, "PAGE_ROWS", 1)  # 2 receipts -> every listing has 2 pages
    site = tmp_path / "site"
    code, text = cli(capsys, "build", world["receipts"], "--trust-root", world["trust"], "--out", site)
    assert code == 0, text
    first, second = site / "models" / "index.html", site / "catalog" / "2" / "index.html"
    assert 'href="../models/hostile-model/0.1.0/"' in first.read_text("utf-8")  # sorted by name
    assert "models/smollm2-135m-distilled-24l/0.1.0/" not in first.read_text("utf-8")
    assert 'href="../../models/smollm2-135m-distilled-24l/0.1.0/"' in second.read_text("utf-8")
    assert "Page 2 of 2" in second.read_text("utf-8")
    for tag in ("distilled", "demo", "layer-pruned", "cpu"):  # examples/card.yaml's tags, on both cards
        assert (site / "tags" / tag / "index.html").is_file()
        assert (site / "tags" / tag / "2" / "index.html").is_file()
        assert f'href="{tag}/"' in (site / "tags" / "index.html").read_text("utf-8")
    listings = [first, second, site / "tags" / "index.html", *sorted((site / "tags").glob("*/**/index.html"))]
    for page in listings + sorted((site / "models").glob("*/*/index.html")):
        for value, target in _internal_links(site, page):
            assert target.is_file(), f"{page.relative_to(site)}: {value} -> {target} does not exist"
    catalog = first.read_text("utf-8")
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in catalog  # hostile description, as text
    assert "<script>window.__pwned" not in catalog
    # search: one short summary per card page (name, teacher, base, tags, licence, description), leading to
    # the card; not the card's full text, not the catalog's table, not the per-tag listings
    index = json.loads((site / "search" / "search_index.json").read_text("utf-8"))
    by_location: dict[str, list[dict[str, str]]] = {}
    for doc in index["docs"]:
        by_location.setdefault(doc["location"], []).append(doc)
    card = by_location["models/smollm2-135m-distilled-24l/0.1.0/"]
    assert len(card) == 1, card  # one entry: no section of the card's evidence
    assert card[0]["title"] == "smollm2-135m-distilled-24l 0.1.0"
    assert "Teacher: receipts demo specialist teacher" in card[0]["text"]  # examples/card.yaml's teacher
    assert "Licence: Apache-2.0 (commercial use, computed:" in card[0]["text"]
    assert not [loc for loc in by_location if loc.startswith("models/smollm2") and "#" in loc]
    hostile = by_location["models/hostile-model/0.1.0/"][0]["text"]
    assert "&lt;script&gt;window.__pwned" in hostile
    assert "<script>" not in hostile
    assert "smollm2" not in " ".join(d["text"] for d in by_location["models/"])  # the table is not indexed
    assert not [loc for loc in by_location if loc.startswith("tags/d")]
    assert "tags/" in by_location  # the list of tags is searchable; the per-tag listings are not


def test_unverified_receipt_refuses_to_render(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receipts = tmp_path / "receipts"
    shutil.copytree(world["receipts"], receipts)
    card = next(receipts.glob("hostile-model@*/card.yaml"))
    card.write_text(card.read_text("utf-8") + "\n# edited after signing\n", "utf-8")
    code, text = cli(capsys, "render", receipts, "--trust-root", world["trust"], "--out", tmp_path / "docs")
    assert code == 4, text
    assert "refusing to publish an unverified receipt" in text
    assert "hostile-model@0.1.0" in text
    assert not (tmp_path / "docs" / "models").exists()  # nothing half-written


def test_render_writes_engine_neutral_markdown(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = cli(
        capsys, "render", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "docs"
    )
    assert code == 0, text
    page = (tmp_path / "docs" / "models" / "smollm2-135m-distilled-24l" / "0.1.0" / "index.md").read_text(
        "utf-8"
    )
    assert page.startswith("---\ntitle: ")
    for heading in (
        "Model details",
        "Intended use",
        "Factors",
        "Metrics",
        "Evaluation data",
        "Training data",
        "Quantitative analyses",
        "Ethical considerations",
        "Caveats and recommendations",
    ):
        assert f"\n## {heading}\n" in page  # Mitchell's nine sections
    for heading in (
        "Retention",
        "Fidelity",
        "Robustness",
        "Calibration and abstention",
        "Local cost",
        "Provenance and license",
        "Failure modes",
        "Gate",
        "Diagnostics",
        "Version history",
    ):
        assert f"\n### {heading}\n" in page
    bundle = (
        tmp_path
        / "docs"
        / "models"
        / "smollm2-135m-distilled-24l"
        / "0.1.0"
        / "smollm2-135m-distilled-24l@0.1.0"
    )
    assert (bundle / "receipt.json").read_bytes() == next(
        world["receipts"].glob("smollm2*/receipt.json")
    ).read_bytes()
    code, text = cli(capsys, "verify", bundle, "--trust-root", world["trust"])
    assert code == 0, text  # the published copy is a receipt that verifies on its own


def test_verify_a_built_site_checks_receipts_and_pages(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    code, text = cli(capsys, "build", world["receipts"], "--trust-root", world["trust"], "--out", site)
    assert code == 0, text
    code, text = cli(capsys, "verify", site, "--trust-root", world["trust"], "--json")
    assert code == 0, text
    report = json.loads(text)
    assert len(report["receipts"]) == 2
    for receipt in report["receipts"]:
        pages = [c for c in receipt["checks"] if c["name"] == "page"]
        assert len(pages) == 1, receipt
        assert pages[0]["status"] == "pass"
    # a site whose page was built from another receipt than the one it publishes fails
    page = site / "models" / "hostile-model" / "0.1.0" / "index.html"
    honest = next(
        (site / "models" / "smollm2-135m-distilled-24l" / "0.1.0").glob("*@*/receipt.json")
    ).read_bytes()
    text_html = page.read_text("utf-8")
    match = re.search(r'data-receipt-sha256="([0-9a-f]{64})"', text_html)
    assert match is not None
    page.write_text(text_html.replace(match.group(1), hashlib.sha256(honest).hexdigest()), "utf-8")
    code, text = cli(capsys, "verify", site, "--trust-root", world["trust"])
    assert code == 4, text
    assert "was built from another receipt than the one published beside it" in text


def test_pages_workflow_verifies_then_builds(world: dict[str, Path], tmp_path: Path) -> None:
    """Run the `run:` steps of .github/workflows/pages.yml (after the install step) as the job would."""
    import os
    import subprocess
    import sys

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text("utf-8"))
    steps = workflow["jobs"]["build"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in steps] + [
        s.get("uses", "").split("@")[0] for s in workflow["jobs"]["deploy"]["steps"]
    ]
    assert {"actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"} <= set(uses)
    runs = [s for s in steps if "run" in s and not s["run"].startswith("pip install")]
    assert "receipts verify" in runs[0]["run"]  # verification comes before the build
    work = tmp_path / "repo"
    shutil.copytree(world["receipts"], work / "receipts")
    shutil.copy(world["trust"], work / "trust.json")
    env = {**os.environ, **workflow["env"], "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    base_url = "${{ steps.pages.outputs.base_url }}"
    for step in runs:
        step_env = {
            k: str(v).replace(base_url, "http://127.0.0.1:8000") for k, v in step.get("env", {}).items()
        }
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=work, env={**env, **step_env},
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, step["name"] + "\n" + done.stdout + done.stderr
    assert (work / "site-build" / "models" / "hostile-model" / "0.1.0" / "index.html").is_file()
    # a tampered receipt stops the job at the first step
    card = next((work / "receipts").glob("hostile-model@*/card.yaml"))
    card.write_text(card.read_text("utf-8") + "# edited\n", "utf-8")
    done = subprocess.run(
        ["bash", "-e", "-c", runs[0]["run"]], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 4, done.stdout + done.stderr


def test_golden_card_page(tmp_path: Path) -> None:
    """The rendered Markdown and the article HTML of one committed golden receipt must not drift.

    Set RECEIPTS_UPDATE_GOLDEN=1 to rewrite tests/data/golden_page.* after an intended change.
    """
    import os

    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    from generator.render import collect, render
    from receipts.trust import load_trust_root

    root = load_trust_root(MAIN_ROOT)
    result = render(collect(GOLDEN, root), root, MAIN_ROOT.read_bytes())
    markdown = result.files["models/vector-model/0.1.0/index.md"]
    config = load_config(str(ROOT / "mkdocs.yml"), site_dir=str(tmp_path / "site"), strict=True)
    build(config)
    page = (tmp_path / "site" / "models" / "vector-model" / "0.1.0" / "index.html").read_text("utf-8")
    article = page[page.index('<div class="rc-verify"') : page.index("</article>")].encode("utf-8")
    for name, data in (("golden_page.md", markdown), ("golden_page.html", article)):
        if os.environ.get("RECEIPTS_UPDATE_GOLDEN"):
            (DATA / name).write_bytes(data)
        assert data == (DATA / name).read_bytes(), name


def test_verify_a_published_catalog_url(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import functools
    import http.server
    import threading

    site = tmp_path / "site"
    assert cli(capsys, "build", world["receipts"], "--trust-root", world["trust"], "--out", site)[0] == 0

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        code, text = cli(capsys, "verify", url, "--trust-root", world["trust"], "--json")
        assert code == 0, text
        report = json.loads(text)
        assert len(report["receipts"]) == 2
        assert all(
            any(c["name"] == "page" and c["status"] == "pass" for c in r["checks"])
            for r in report["receipts"]
        )
        card = next(site.glob("models/hostile-model/0.1.0/*@*/card.yaml"))
        card.write_bytes(card.read_bytes() + b"#\n")  # the published site is tampered with
        code, text = cli(capsys, "verify", url, "--trust-root", world["trust"])
        assert code == 4, text
        assert "card.yaml" in text
        code, text = cli(capsys, "verify", url + "nothing-here/", "--trust-root", world["trust"])
        assert code == 1, text
        assert "could not fetch" in text
    finally:
        server.shutdown()
        server.server_close()


def test_files_changed_after_verification_are_not_published(
    world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages, bundle copies and exports are the verified bytes, even if a file changes after its check."""
    import generator.render
    from receipts.trust import load_trust_root

    receipts = tmp_path / "receipts"
    shutil.copytree(world["receipts"], receipts)
    verify = generator.render.verify_receipt
    signed: dict[Path, bytes] = {}

    def verify_then_tamper(receipt: Path, root: object, **options: Any) -> object:
        report = verify(receipt, root, **options)  # type: ignore[arg-type]
        for results in receipt.parent.glob("runs/*/results.json"):
            signed[results] = results.read_bytes()
            results.write_bytes(results.read_bytes().replace(b"{", b"{ ", 1))
        (receipt.parent / "late.html").write_text("<script>alert(1)</script>")
        return report

    monkeypatch.setattr(generator.render, "verify_receipt", verify_then_tamper)
    root = load_trust_root(world["trust"])
    entries = generator.render.collect(receipts, root)
    result = generator.render.render(entries, root, world["trust"].read_bytes())
    published = {name: data for name, data in result.files.items() if "@" in name}
    assert signed
    for path, data in signed.items():
        name = path.relative_to(path.parents[2]).as_posix()
        (copy,) = [v for k, v in published.items() if k.endswith(name)]
        assert copy == data != path.read_bytes()
    assert not [name for name in result.files if name.endswith("late.html")]


def test_parallel_verification_and_render_match_serial_and_refuse_tampering(tmp_path: Path) -> None:
    from generator.render import collect
    from receipts.errors import VerificationError
    from receipts.trust import trust_root_from_bytes

    key = generate()
    root_bytes = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    root = trust_root_from_bytes(root_bytes)
    card = yaml.safe_load((ROOT / "tests" / "data" / "card_fake_teacher.yaml").read_text("utf-8"))
    for i in range(70):
        card["model"]["name"] = f"model-{i:03d}"
        path = tmp_path / "cards" / f"{i}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(card), "utf-8")
        sign_receipt(path, [key], tmp_path / "receipts")
    parallel = collect(tmp_path / "receipts", root, root_bytes=root_bytes, workers=2)
    serial = collect(tmp_path / "receipts", root, workers=1)
    assert [e.name for e in parallel] == [e.name for e in serial] == [f"model-{i:03d}" for i in range(70)]
    assert [e.checks for e in parallel] == [e.checks for e in serial]
    assert [(e.envelope, e.files, e.results) for e in parallel] == [
        (e.envelope, e.files, e.results) for e in serial
    ]
    # card pages are rendered one process per core too: the same pages and files, byte for byte, in order
    from generator.render import render

    pooled, alone = render(parallel, root, root_bytes, workers=2), render(serial, root, root_bytes, workers=1)
    assert pooled.pages == alone.pages
    assert list(pooled.files) == list(alone.files)
    assert pooled.files == alone.files
    assert len([p for p in pooled.pages if p.startswith("models/model-")]) == 70
    victim = tmp_path / "receipts" / "model-042@0.1.0" / "card.yaml"
    victim.write_bytes(victim.read_bytes() + b"#\n")
    with pytest.raises(VerificationError, match="refusing to publish an unverified receipt") as caught:
        collect(tmp_path / "receipts", root, root_bytes=root_bytes, workers=2)
    assert "model-042@0.1.0" in caught.value.file


ZENSICAL_CONFIG = """\
site_name: receipts
site_url: http://127.0.0.1:8000/
docs_dir: docs
site_dir: site
theme:
  name: material
  features: [navigation.instant]
nav:
  - Home: index.md
  - Catalog: models/index.md
  - Find a model: buyer/index.md
  - Compare: compare/index.md
  - Tags: tags/index.md
  - How to verify: verify.md
extra_javascript: [assets/receipts/verify.js, assets/receipts/catalog.js]
extra_css: [assets/receipts/receipts.css]
plugins: [search]
"""


def test_render_output_builds_with_zensical(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Engine-neutral: `receipts render` + Zensical (no receipts plugin) makes a site that verifies."""
    shutil.copytree(ROOT / "site" / "pages", tmp_path / "docs")
    code, text = cli(
        capsys, "render", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "docs"
    )
    assert code == 0, text
    (tmp_path / "mkdocs.yml").write_text(ZENSICAL_CONFIG, "utf-8")
    zensical = Path(sys.executable).parent / "zensical"
    proc = subprocess.run(
        [str(zensical), "build"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = tmp_path / "site"
    code, text = cli(capsys, "verify", site, "--trust-root", world["trust"])
    assert code == 0, text
    assert "2 verified, 0 failed" in text
    assert text.count("names exactly this receipt") == 2  # both card pages found and matched
    html = (site / "models" / "hostile-model" / "0.1.0" / "index.html").read_text("utf-8")
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "<script>window.__pwned" not in html
    folder = site / "models" / "hostile-model" / "0.1.0"
    rendered = tmp_path / "docs" / "models" / "hostile-model" / "0.1.0"
    for export in ("README.md.txt", "hostile-model-0.1.0.cdx.json"):
        assert (folder / export).read_bytes() == (rendered / export).read_bytes()  # copied as a file
    pages = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.html"))
    assert pages == ["examples/tiny-mc/index.html", "index.html"]
    search = json.loads((site / "search.json").read_text("utf-8"))
    locations = {item["location"].split("#")[0] for item in search["items"]}
    assert "models/" in locations
    assert not [loc for loc in locations if loc.startswith("models/h")]
