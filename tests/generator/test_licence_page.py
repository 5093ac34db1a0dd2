"""The card page's licence section and the catalog index's licence fields, from verified receipts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.render import collect, render
from receipts.formats import CatalogIndex
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "vectors" / "golden" / "v1"
MAIN_ROOT = ROOT / "tests" / "vectors" / "roots" / "main.json"
HOSTILE_NAME = "<img src=x onerror=window.__pwned=2> corpus"
HOSTILE_REASON = "<script>window.__pwned = 1</script> [x](javascript:alert(1))"


def _gemma_student(tmp: Path) -> Path:
    """A student distilled from a Gemma teacher on an Apache base, claiming commercial use by override."""
    card: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "card.yaml").read_text("utf-8"))
    card["model"]["name"] = "gemma-taught-student"
    card["lineage"]["teachers"] = [
        {
            "name": "google/gemma-3-1b-it",
            "weights_digest": "sha256:" + "cd" * 32,
            "license": "LicenseRef-Gemma-Terms-of-Use",
        }
    ]
    card["training_data"][1]["license"] = "CC-BY-NC-4.0"  # computed: no commercial use
    card["training_data"][1]["name"] = HOSTILE_NAME  # card text reaches the computed reasons
    card["license"]["permissions"]["output_use_restrictions"] = ["Gemma Prohibited Use Policy"]
    card["license"]["id"] = "Apache-2.0 AND LicenseRef-Gemma-Terms-of-Use"  # the carried terms, named
    card["license"]["overrides"] = [
        {"permission": "commercial_use", "reason": HOSTILE_REASON, "evidence_url": "javascript:alert(2)"}
    ]
    path = tmp / "gemma-student.card.yaml"
    path.write_text(yaml.safe_dump(card), "utf-8")
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], CatalogIndex]:
    tmp = tmp_path_factory.mktemp("licence-page")
    key = generate()
    trust = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    receipts = tmp / "receipts"
    sign_receipt(_gemma_student(tmp), [key], receipts)
    sign_receipt(ROOT / "examples" / "card.yaml", [key], receipts)
    root = trust_root_from_bytes(trust)
    result = render(collect(receipts, root), root, trust)
    index = CatalogIndex.from_json_bytes(result.files["catalog/index.json"])
    return result.files, index


def test_the_card_page_shows_computed_terms_declared_claim_and_override_side_by_side(rendered):
    files, _ = rendered
    page = files["models/gemma-taught-student/0.1.0/index.md"].decode("utf-8")
    section = page[page.index("### Provenance and license") : page.index("### Failure modes")]
    assert "Licence terms, computed</strong> by receipts from its reviewed licence table v2" in section
    row = section[section.index('<td data-label="term">commercial use</td>') :].split("</tr>")[0]
    # computed no, declared yes
    assert '<td data-label="computed"><strong>no</strong></td><td data-label="declared">yes</td>' in row
    assert "<strong>claimed by override</strong>: &lt;script&gt;" in row  # the reason, escaped
    assert "CC-BY-NC-4.0" in row  # the reason for the computed value
    assert "<code>javascript:alert(2)</code>" in row  # evidence URL shown as code, never a link
    assert "<script>window" not in page
    assert 'href="javascript' not in page
    assert "&lt;img src=x onerror=window.__pwned=2&gt; corpus" in row  # a reason quoting card text, escaped
    assert "<img src=x" not in page
    assert "<code>LicenseRef-Gemma-Terms-of-Use</code>" in section  # Gemma's terms carried into the student
    assert "use restrictions" in section
    assert "Gemma Terms of Use" in section
    assert "reaches this model only through the base weights" in section  # the through_base note
    label = page[page.index('<section class="rc-label"') : page.index("</section>")]  # the label's line
    term = '<strong class="rc-term rc-term-no">no</strong> <em>(publisher override)</em>'
    assert f"commercial use: {term}" in label
    assert "the card declares <strong>Apache-2.0 AND LicenseRef-Gemma-Terms-of-Use</strong>" in label


def test_the_catalog_index_carries_computed_terms_and_overrides(rendered):
    _, index = rendered
    rows = {m.name: m for m in index.models}
    gemma, honest = rows["gemma-taught-student"], rows["smollm2-135m-distilled-24l"]
    assert gemma.commercial_use is True  # the card's claim, kept as a claim
    assert gemma.licence_terms is not None
    assert gemma.licence_terms.commercial_use == "no"
    assert gemma.licence_overrides == ["commercial_use"]
    assert honest.licence_terms is not None
    assert honest.licence_terms.commercial_use == "yes"
    assert honest.licence_overrides == []


def test_a_receipt_signed_before_terms_were_recorded_shows_terms_computed_at_verification():
    root_bytes = MAIN_ROOT.read_bytes()
    root = trust_root_from_bytes(root_bytes)
    result = render(collect(GOLDEN, root), root, root_bytes)
    page = result.files["models/vector-model/0.1.0/index.md"].decode("utf-8")
    assert "signed before terms were recorded, so they were computed from its signed card" in page
    index = json.loads(result.files["catalog/index.json"])
    assert {m["licence_terms"]["commercial_use"] for m in index["models"]} <= {"yes", "no", "unknown"}
