"""`receipts export hf`: a Hugging Face model card from a verified receipt, read back by huggingface_hub."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import markdown
import pytest
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from markdown_it import MarkdownIt

from receipts.cli import main
from receipts.export.hf import hub_license, model_card
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import load_trust_root, new_root
from receipts.verify import verify_receipt
from tests.generator.test_catalog import HOSTILE, hostile_card, parse

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
DEMO = ROOT / "examples" / "demo"
TRIO = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]
FRONT_KEYS = {
    "license",
    "license_name",
    "license_link",
    "language",
    "base_model",
    "base_model_relation",
    "datasets",
    "pipeline_tag",
    "library_name",
    "tags",
    "model-index",
}


def _card(tmp: Path, name: str, source: Path, edit: Any) -> Path:
    card = yaml.safe_load(source.read_text("utf-8"))
    edit(card)
    path = tmp / f"{name}.card.yaml"
    path.write_text(yaml.safe_dump(card), "utf-8")
    return path


def _distilled(card: dict[str, Any]) -> None:
    card["lineage"]["base"]["name"] = "acme/smollm2-135m-20l-init"
    card["training_data"].append(
        {
            "name": "capitals distillation corpus",
            "source": "https://huggingface.co/datasets/acme/capitals-distill",
            "synthetic": True,
            "closed_model_outputs": False,
            "license": "CC-BY-4.0",
        }
    )


def _hostile(card: dict[str, Any]) -> None:
    card["license"].update(id="LicenseRef-Evil-Terms", name=HOSTILE["md_link"], url=HOSTILE["js_link"])
    card["lineage"]["base"]["source"] = "hf:evil/x\nlicense: mit"
    card["training_data"][0]["source"] = "https://huggingface.co/datasets/evil/x\n---\npwned: true"
    # failure-mode text holds no digit (a typed-in number is refused at sign): the same attack in words
    raw_html = HOSTILE["raw_html"].replace("=5", "=true")
    card["failure_modes"][0]["trigger"] = "a | b\n| c | d |\n" + raw_html
    card["license"]["inherited_terms"][0]["terms"] = "<img src=x> https://evil.example/ www.evil.example"


def _hostile_run(run: Path, out: Path) -> Path:
    """The real run with hostile slice, metric and diagnostic text (results are publisher input too)."""
    shutil.copytree(run, out)
    results = json.loads((out / "results.json").read_text("utf-8"))
    results["metrics"]["domain=<img src=x>|\n| x | y |"] = results["metrics"]["critical"]
    results["metrics"]["all"]["[f1](javascript:x)"] = results["metrics"]["all"]["acc"]
    results["diagnostics"] = [{"id": "x", "message": HOSTILE["md_html"], "evidence": {}}]
    (out / "results.json").write_text(json.dumps(results), "utf-8")
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One trust root, and receipts: distilled with a real (fake-model) run, plain, Gemma, Q4_1, hostile."""
    tmp = tmp_path_factory.mktemp("export-hf")
    key = generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        assert main(["run", str(ROOT / "packs" / "capitals-mc"), *TRIO, "--out", str(tmp / "run")]) == 0
    out = tmp / "receipts"
    distilled = _card(tmp, "distilled", ROOT / "tests" / "data" / "card_fake_teacher.yaml", _distilled)
    runs, footprints = [tmp / "run", DATA / "run_minimal"], [DATA / "footprint_minimal.json"]
    bundles = {
        "distilled": sign_receipt(distilled, [key], out / "a", runs=runs, footprints=footprints),
        "plain": sign_receipt(ROOT / "examples" / "card.yaml", [key], out / "b"),
        "gemma": sign_receipt(DEMO / "gemma-3-270m.card.yaml", [key], out / "c"),
        "q4": sign_receipt(DEMO / "smollm2-135m-instruct-q4_1.card.yaml", [key], out / "d"),
        "hostile": sign_receipt(
            _card(tmp, "hostile", hostile_card(tmp), _hostile),
            [key],
            out / "e",
            runs=[_hostile_run(tmp / "run", tmp / "hostile-run")],
        ),
    }
    return {**bundles, "trust": trust, "run": tmp / "run"}


def export(world: dict[str, Path], which: str, out: Path, *extra: str) -> int:
    return main(
        ["export", "hf", str(world[which]), "--trust-root", str(world["trust"]), "--out", str(out), *extra]
    )


def front_and_body(path: Path) -> tuple[dict[str, Any], str]:
    """The exported bytes as written (ModelCard's str() would re-serialise the metadata)."""
    text = path.read_text("utf-8")
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def test_metadata_round_trips_through_huggingface_hub(world: dict[str, Path], tmp_path: Path) -> None:
    assert export(world, "distilled", tmp_path / "README.md", "--receipt-url", "https://example.org/r/") == 0
    data = ModelCard.load(tmp_path / "README.md").data
    assert data.license == "apache-2.0"
    assert data.base_model == "acme/smollm2-135m-20l-init"
    assert data["base_model_relation"] == "finetune"  # distilled: the base's weights were trained
    assert data.datasets == ["acme/capitals-distill"]
    assert {"receipts", "distillation"} <= set(data.tags)
    signed = {}  # pack id -> its results, for both signed runs
    for run in (world["run"], DATA / "run_minimal"):
        results = json.loads((run / "results.json").read_text("utf-8"))
        signed[results["pack"]["id"]] = results
    student = {
        (pack, m): e["roles"]["student"]["value"]
        for pack, results in signed.items()
        for m, e in results["metrics"]["all"].items()
    }
    got = {(r.dataset_type, r.metric_name.split(" ")[0]): r.metric_value for r in data.eval_results}
    assert got == student  # every student metric of every signed run, and nothing else
    assert len(data.eval_results) == len(student)
    for result in data.eval_results:
        assert result.verified is False
        assert (result.task_type, result.dataset_split) == ("multiple-choice", "test")
        assert result.dataset_revision == signed[result.dataset_type]["pack"]["digest"]
        assert result.source_url == "https://example.org/r/"
    front, _ = front_and_body(tmp_path / "README.md")
    assert set(front) <= FRONT_KEYS
    name, evals = model_index_to_eval_results(front["model-index"])
    assert name == "smollm2-135m-distilled-24l"
    assert eval_results_to_model_index(name, evals) == front["model-index"]
    assert data.to_dict() == front
    assert ModelCardData(**data.to_dict()).to_dict() == front


def test_body_states_self_reported_and_how_to_verify(world: dict[str, Path], tmp_path: Path) -> None:
    assert export(world, "distilled", tmp_path / "README.md") == 0
    _, body = front_and_body(tmp_path / "README.md")
    root_sha = hashlib.sha256(world["trust"].read_bytes()).hexdigest()
    assert "self-reported by the publisher" in body
    assert "Hugging Face has not verified them" in body
    assert f"trust root with sha256 ` {root_sha} `" in body
    assert "pip install receipts" not in body  # that PyPI name is another project: never send users there
    assert "receipts verify " in body
    assert "tiny\\-mc" in body  # run_minimal is signed too: its scorecard is there
    assert "receipts verify smollm2-135m-distilled-24l@0.1.0/ --trust-root trust.json" in body
    assert f"--trust-root-sha256 {root_sha} --weights" in body
    acc = json.loads((world["run"] / "results.json").read_text("utf-8"))["metrics"]["all"]["acc"]["roles"]
    assert f"| acc | {acc['student']['value']:.3f} [" in body  # the scorecard shows the signed numbers
    assert "<a " not in markdown.markdown(body, extensions=["tables"])  # no receipt_url: no link at all
    assert export(world, "distilled", tmp_path / "linked.md", "--receipt-url", "https://example.org/r/") == 0
    html = markdown.markdown(front_and_body(tmp_path / "linked.md")[1], extensions=["tables"])
    assert [a.get("href") for t, a in parse(html).tags if t == "a"] == ["https://example.org/r/"]


def test_same_receipt_same_bytes(world: dict[str, Path]) -> None:
    verified = verify_receipt(world["distilled"], load_trust_root(world["trust"]))
    assert model_card(verified, receipt_url="https://x.example/") == model_card(
        verify_receipt(world["distilled"], load_trust_root(world["trust"])), receipt_url="https://x.example/"
    )


@pytest.mark.parametrize(
    "render",
    [
        lambda text: markdown.markdown(text, extensions=["tables"]),
        lambda text: MarkdownIt("commonmark").enable("table").render(text),
    ],
    ids=["python-markdown", "commonmark"],
)
def test_hostile_card_exports_inert(world: dict[str, Path], tmp_path: Path, render: Any) -> None:
    # --no-rederive: the hostile slice and metric names were written into a real run's results by hand
    assert export(world, "hostile", tmp_path / "README.md", "--no-rederive") == 0
    front, body = front_and_body(tmp_path / "README.md")
    assert ModelCard.load(tmp_path / "README.md").data.to_dict() == front  # still parses, same keys
    assert set(front) <= FRONT_KEYS
    assert front["license"] == "other"
    assert front["license_name"] == "evil-terms"
    assert "license_link" not in front  # a javascript: URL is never a link
    assert not {"base_model", "datasets", "pwned"} & set(front)  # hostile sources are no Hub ids
    assert "\n---\n" not in body
    html = render(body)
    allowed = {"h1", "h2", "h3", "p", "ul", "li", "strong", "code", "pre", "blockquote"}
    allowed |= {"table", "thead", "tbody", "tr", "th", "td"}
    for tag, attrs in parse(html).tags:
        assert tag in allowed, (tag, attrs)  # no <script>, <img>, <a>, <b> or any tag from the card
        assert set(attrs) <= {"class"}, (tag, attrs)  # no href, src or event handler
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html  # shown as text
    assert "A" * 1500 in html
    for table in re.findall(r"(?:^\|.*\n)+", body, flags=re.MULTILINE):
        cells = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(cells) == 1, table  # untrusted text never adds or splits a table cell
    assert "javascript" not in json.dumps(front)  # a metric id that is no plain token stays out


def test_tampered_receipt_exits_4_and_writes_nothing(world: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / world["distilled"].name
    shutil.copytree(world["distilled"], bundle)
    card = bundle / "card.yaml"
    data = bytearray(card.read_bytes())
    data[200] ^= 0x01
    card.write_bytes(bytes(data))
    out = tmp_path / "README.md"
    code = main(["export", "hf", str(bundle), "--trust-root", str(world["trust"]), "--out", str(out)])
    assert code == 4
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bundle]


def test_receipt_url_must_be_http(world: dict[str, Path], tmp_path: Path) -> None:
    assert export(world, "distilled", tmp_path / "README.md", "--receipt-url", "javascript:alert(1)") == 2
    assert not (tmp_path / "README.md").exists()


def _exported(world: dict[str, Path], which: str, tmp_path: Path) -> ModelCardData:
    assert export(world, which, tmp_path / f"{which}.md") == 0
    data: ModelCardData = ModelCard.load(tmp_path / f"{which}.md").data
    return data


def test_lineage_and_license_of_real_cards(world: dict[str, Path], tmp_path: Path) -> None:
    gemma = _exported(world, "gemma", tmp_path)
    assert (gemma.license, gemma.license_name) == ("other", "gemma-terms-of-use")
    assert gemma.license_link == "https://ai.google.dev/gemma/terms"
    assert (gemma.base_model, gemma["base_model_relation"]) == ("google/gemma-3-270m", "quantized")
    assert gemma.eval_results is None  # signed without runs: no model-index
    q4 = _exported(world, "q4", tmp_path)
    assert (q4.base_model, q4["base_model_relation"]) == ("HuggingFaceTB/SmolLM2-135M-Instruct", "quantized")
    assert "HuggingFaceH4/ultrafeedback_binarized" in q4.datasets
    plain = _exported(world, "plain", tmp_path)
    assert plain.base_model is None  # smollm2-135m-instruct-24of30-layers is no Hub repo id: not guessed
    assert "base_model_relation" not in plain


@pytest.mark.parametrize(
    ("spdx", "url", "expected"),
    [
        ("Apache-2.0", None, {"license": "apache-2.0"}),
        ("GPL-3.0-only", None, {"license": "gpl-3.0"}),
        ("ODbL-1.0", None, {"license": "odbl"}),
        ("NOASSERTION", None, {"license": "unknown"}),
        ("GPL-3.0-or-later", None, {"license": "other", "license_name": "gpl-3.0-or-later"}),
        ("MIT AND CC-BY-4.0", None, {"license": "other", "license_name": "mit-and-cc-by-4.0"}),
        ("LicenseRef-X", "http://x.example/terms", {"license": "other", "license_name": "x"}),
        (
            "LicenseRef-Gemma-Terms-of-Use",
            "https://ai.google.dev/gemma/terms",
            {
                "license": "other",
                "license_name": "gemma-terms-of-use",
                "license_link": "https://ai.google.dev/gemma/terms",
            },
        ),
    ],
)
def test_hub_license(spdx: str, url: str | None, expected: dict[str, str]) -> None:
    assert hub_license(spdx, url) == expected
