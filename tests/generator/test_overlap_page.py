"""The card page shows the signed overlap check (or says it was not checked); its text stays inert."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from generator.render import collect, render
from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
DATA = ROOT / "tests" / "data"
HOSTILE_TEXT = "<script>alert(1)</script>"
CORPUS_TEXT = "Notes.\n\nWhat is the capital of Norway?\n"
HOSTILE_FILE = "<img src=x onerror=alert(1)>.txt"


def _pages(result_files: dict[str, bytes]) -> dict[str, str]:
    return {
        name.split("/")[1] + "@" + name.split("/")[2]: data.decode("utf-8")
        for name, data in result_files.items()
        if name.startswith("models/") and name.count("/") == 3 and name.endswith("/index.md")
    }


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two receipts of one run: version 0.1.0 with a signed overlap check, 0.2.0 without.

    The overlap check's corpus has a hostile file name, and its matched text is edited to hostile HTML
    before signing (a publisher's file is as untrusted as any other input).
    """
    tmp = tmp_path_factory.mktemp("overlap-page")
    corpus = tmp / HOSTILE_FILE
    corpus.write_text(CORPUS_TEXT, "utf-8")
    overlap = tmp / "overlap.json"
    assert main(["overlap", str(DATA / "pack_minimal"), str(corpus), "--out", str(overlap)]) == 0
    document = json.loads(overlap.read_text("utf-8"))
    document["items"][0]["whole_input"]["text"] = HOSTILE_TEXT
    overlap.write_text(json.dumps(document), "utf-8")
    key = generate()
    card = yaml.safe_load(CARD.read_text("utf-8"))
    for version, bound in (("0.1.0", overlap), ("0.2.0", None)):
        card["model"]["version"] = version
        (tmp / "card.yaml").write_text(yaml.safe_dump(card), "utf-8")
        sign_receipt(tmp / "card.yaml", [key], tmp / "receipts", runs=[DATA / "run_minimal"], overlap=bound)
    root_bytes = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    root = trust_root_from_bytes(root_bytes)
    return _pages(render(collect(tmp / "receipts", root), root, root_bytes).files)


def _section(text: str) -> str:
    return text.split("## Evaluation data", 1)[1].split("## Training data", 1)[0]


def test_the_signed_overlap_check_is_shown_with_its_corpus_digest_and_items(pages: dict[str, str]) -> None:
    text = _section(pages["smollm2-135m-distilled-24l@0.1.0"])
    assert "<strong>Contamination: 1 of 2 items overlap</strong> the distillation corpus at 13-grams" in text
    assert "or as MinHash near-duplicates (Jaccard ≥ 0.800). This is the signed overlap check" in text
    digest = text.split("(sha256 <code>", 1)[1].split("</code>", 1)[0]
    assert digest == hashlib.sha256(CORPUS_TEXT.encode("utf-8")).hexdigest()  # the corpus file's bytes
    assert "<tr><td><code>q1</code></td><td>whole input, MinHash 0.859</td>" in text


def test_untrusted_names_in_the_overlap_check_stay_text(pages: dict[str, str]) -> None:
    text = _section(pages["smollm2-135m-distilled-24l@0.1.0"])
    assert "<code>&lt;img src=x onerror=alert(1)&gt;.txt</code>" in text
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in text
    assert "<img src=x" not in text
    assert "<script>" not in text


def test_the_next_heading_still_starts_its_own_markdown_block(pages: dict[str, str]) -> None:
    for page in pages.values():
        assert "</div>\n\n## Training data\n" in page  # else Markdown swallows the heading into the HTML


def test_a_receipt_without_an_overlap_check_says_not_checked(pages: dict[str, str]) -> None:
    text = _section(pages["smollm2-135m-distilled-24l@0.2.0"])
    assert "<strong>Contamination</strong>: not checked (this receipt binds no overlap check" in text
    assert "items overlap" not in text
