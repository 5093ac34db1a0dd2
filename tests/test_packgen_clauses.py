"""contract-clauses 2.0 from examples/packgen/clauses.py: counts, order, gold, the splits (issue #22)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

import pytest

from receipts.cli import main as cli
from runner.eval.loader import load_pack
from runner.eval.prompts import materialise
from runner.eval.scoring import score_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import make_packs  # noqa: E402
from packgen import clauses  # noqa: E402

PACK = ROOT / "packs" / "contract-clauses"
ITEMS = PACK / "data" / "items.jsonl"
TRAIN = ROOT / "examples" / "train" / "contract-clauses.jsonl"
FIELDS = ["clause_type", "party", "duration", "amount", "currency", "jurisdiction"]
TYPES = {
    "governing_law",
    "termination",
    "payment",
    "liability_cap",
    "confidentiality",
    "auto_renewal",
    "assignment",
}
# sha256 of packs/contract-clauses/data/items.jsonl at version 1.0.0 (the 63 hand-written items)
CURATED_V1_SHA256 = "318e6853d1430fcb13bc13ecdbb44d85a60d261ae764cfdbc65f6ec9742d1308"
# how a clause may write each currency besides its ISO code (an independent reading, not the generator's)
CURRENCY_WORDS = {
    "EUR": ("€", "euro"),
    "USD": ("$", "us dollar"),
    "GBP": ("£", "pounds sterling"),
    "CHF": ("swiss franc",),
    "JPY": ("japanese yen",),
    "CAD": ("canadian dollar",),
    "AUD": ("australian dollar",),
    "SEK": ("swedish kronor",),
    "NOK": ("norwegian kroner",),
}
NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
MONEY = re.compile(
    r"[€$£]|\b(?:EUR|USD|GBP|CHF|JPY|CAD|AUD|SEK|NOK|DKK|SGD|NZD|PLN|ZAR)\b"
    r"|\b(?:euros|dollars|sterling|francs|yen|kronor|kroner)\b"
)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def data():
    return clauses.build(0)


def test_build_is_deterministic_and_the_committed_files_are_its_output(data):
    again = clauses.build(0)
    assert again.eval_items == data.eval_items
    assert again.train_items == data.train_items
    assert clauses.build(1).eval_items != data.eval_items
    assert _rows(ITEMS) == data.eval_items
    assert _rows(TRAIN) == data.train_items
    assert make_packs.main(["--check", "--pack", "contract-clauses"]) == 0


def test_check_names_a_file_that_differs_from_the_generator(tmp_path, capsys):
    assert make_packs.main(["--pack", "contract-clauses", "--out", str(tmp_path)]) == 0
    assert make_packs.main(["--check", "--pack", "contract-clauses", "--out", str(tmp_path)]) == 0
    copy = tmp_path / "packs" / "contract-clauses" / "data" / "items.jsonl"
    lines = copy.read_text("utf-8").splitlines(keepends=True)
    copy.write_text("".join(lines[:-1]), "utf-8")
    capsys.readouterr()
    assert make_packs.main(["--check", "--pack", "contract-clauses", "--out", str(tmp_path)]) == 1
    assert f"stale: {copy}" in capsys.readouterr().err


def test_the_curated_items_are_version_one_verbatim(data):
    curated = [row for row in data.eval_items if row["source"] == "curated"]
    assert [row["id"] for row in sorted(curated, key=lambda r: r["id"])] == [
        f"cc-{i:03d}" for i in range(1, 64)
    ]
    v1 = "".join(
        json.dumps({k: v for k, v in row.items() if k != "source"}, ensure_ascii=False) + "\n"
        for row in sorted(curated, key=lambda r: r["id"])
    )
    assert hashlib.sha256(v1.encode()).hexdigest() == CURATED_V1_SHA256


def test_counts_and_the_critical_cohort(data):
    items = data.eval_items
    assert 950 <= len(items) <= 1100
    assert len({row["id"] for row in items}) == len(items)
    assert {row["source"] for row in items} == {"curated", "generated"}
    generated = [row["id"] for row in items if row["source"] == "generated"]
    assert sorted(generated) == [f"cc-g{i:04d}" for i in range(1, len(generated) + 1)]
    critical = [row for row in items if row.get("critical")]
    assert len(critical) >= 250
    assert len(critical) >= 0.25 * len(items)
    assert {row["clause_type"] for row in critical} == {"payment", "liability_cap"}
    assert all(
        row.get("critical") is True for row in items if row["clause_type"] in ("payment", "liability_cap")
    )
    assert all(
        "critical" not in row for row in items if row["clause_type"] not in ("payment", "liability_cap")
    )
    for clause_type in TYPES:
        assert sum(row["clause_type"] == clause_type for row in items) >= 120
    lengths = [len(row["clause"]) for row in items]
    assert all((n > 200) == (row["length"] == "long") for n, row in zip(lengths, items, strict=True))
    assert sum(row["length"] == "long" for row in items) >= 200
    assert sum(row["gold"]["party"] is None for row in items) >= 100  # clauses binding both parties


def test_every_prefix_from_120_items_is_stratified(data):
    items = data.eval_items
    for k in range(120, len(items) + 1):
        prefix = items[:k]
        assert sum(bool(row.get("critical")) for row in prefix) >= max(30, 0.25 * k), k
        if k == 120:
            assert {row["clause_type"] for row in prefix} == TYPES
            assert {row["source"] for row in prefix} == {"curated", "generated"}


def _gold_problems(row: dict) -> list[str]:
    """What in ``row``'s gold the clause text does not support (an independent reading of the rules)."""
    clause, gold, problems = row["clause"], row["gold"], []
    text = clause.lower()
    if list(gold) != FIELDS or gold["clause_type"] != row["clause_type"]:
        problems.append("keys or clause_type")
    for key in ("party", "jurisdiction"):
        if gold[key] is not None and gold[key] not in clause:
            problems.append(key)
    if gold["duration"] is not None:
        match = re.fullmatch(r"(\d+) (days|weeks|months|years)", gold["duration"])
        n = int(match.group(1)) if match else 0
        spelled = n - 2 < len(NUMBER_WORDS) and NUMBER_WORDS[n - 2] in text if n >= 2 else False
        if not match or not (re.search(rf"\b{n}\b", clause) or spelled) or match.group(2)[:-1] not in text:
            problems.append("duration")
    if gold["amount"] is not None:
        numbers = {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", clause)}
        if not isinstance(gold["amount"], int | float) or float(gold["amount"]) not in numbers:
            problems.append("amount")
    if gold["currency"] is not None:
        code = gold["currency"]
        if code not in clause and not any(w in text for w in CURRENCY_WORDS.get(code, ())):
            problems.append("currency")
    if (gold["amount"] is None) != (gold["currency"] is None):
        problems.append("amount without currency")
    return problems


def test_gold_is_what_the_clause_says(data):
    rows = [*data.eval_items, *data.train_items]
    bad = {row["id"]: problems for row in rows if (problems := _gold_problems(row))}
    assert not bad


def test_absent_fields_are_absent_from_generated_clauses(data):
    for row in [*data.eval_items, *data.train_items]:
        if row["source"] != "generated":
            continue
        gold, clause = row["gold"], row["clause"]
        assert len(MONEY.findall(clause)) == (gold["amount"] is not None), row["id"]
        governed = re.search(r"\blaws?\b", clause, re.IGNORECASE) is not None
        assert governed == (gold["jurisdiction"] is not None), row["id"]


def test_the_training_split_is_disjoint_and_short(data):
    train, items = data.train_items, data.eval_items
    assert 550 <= len(train) <= 650
    assert {row["id"] for row in train}.isdisjoint(row["id"] for row in items)
    assert {row["clause"].lower() for row in train}.isdisjoint(row["clause"].lower() for row in items)
    assert statistics.median(len(row["clause"].split()) for row in train) <= 45
    assert {row["clause_type"] for row in train} == TYPES
    eval_parties = {row["gold"]["party"] for row in items} - {None}
    assert not eval_parties & {row["gold"]["party"] for row in train}
    for row in train:
        answer = json.loads(row["response"])
        assert list(answer) == FIELDS
        assert answer == row["gold"]
        assert row["response"] == json.dumps(row["gold"])


def test_a_training_clause_equal_to_an_eval_clause_is_refused(monkeypatch):
    real = clauses.disjoint
    monkeypatch.setattr(clauses, "disjoint", lambda e, t, text: [*real(e, t, text), "cc-t0001"])
    with pytest.raises(RuntimeError, match="training rows repeat eval clauses: \\['cc-t0001'\\]"):
        clauses.build(0)


def test_the_pack_loads_and_validates(capsys):
    pack = load_pack(PACK)
    assert pack.version == "2.0.0"
    assert len(pack.items) == len(_rows(ITEMS))
    assert {"clause_type", "length", "source"} <= set(pack.slices)
    assert {v.name for v in pack.variants} >= {"detailed", "numbered", "skeleton"}
    assert cli(["validate", str(PACK)]) == 0
    assert "valid pack contract-clauses@2.0.0" in capsys.readouterr().out


def test_the_default_prompt_is_short_and_names_every_key():
    pack = load_pack(PACK)
    first = next(materialise(pack, ["original"], items=[pack.items[0]]))
    instruction = first.prompt.split("\n\nClause:")[0]
    assert len(instruction.split()) <= 40
    for word in [*FIELDS, *TYPES, "null"]:
        assert word in instruction


def test_the_scorer_gives_the_training_responses_full_marks(tmp_path, data):
    """The training rows as a pack of their own: they load, and each response scores field F1 1.0."""
    shutil.copy(PACK / "pack.yaml", tmp_path / "pack.yaml")
    (tmp_path / "data").mkdir()
    rows = data.train_items[::20]
    by_id = {row["id"]: row for row in rows}
    lines = [json.dumps({k: v for k, v in row.items() if k != "response"}) for row in rows]
    (tmp_path / "data" / "items.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    pack = load_pack(tmp_path)
    scored = [
        score_output(pack, inst, {"text": by_id[inst.item_id]["response"]})
        for inst in materialise(pack, ["original"])
    ]
    assert len(scored) == len(rows)
    assert all(row["scores"] == {"field_f1": 1.0, "json_valid": 1.0} for row in scored)
    first = next(materialise(pack, ["original"], items=[pack.items[0]]))
    wrong = json.dumps(by_id[first.item_id]["gold"] | {"party": "Someone Else Ltd"})
    assert score_output(pack, first, {"text": wrong})["score"] < 1.0


def test_receipts_overlap_finds_no_eval_item_in_the_training_split(tmp_path, capsys):
    out = tmp_path / "overlap.json"
    args = ["overlap", str(PACK), str(TRAIN), "--field", "clause", "--field", "response", "--out", str(out)]
    assert cli(args) == 0
    report = json.loads(out.read_text("utf-8"))
    assert report["items_checked"] == len(_rows(ITEMS))
    assert report["items_overlapping"] == 0


def test_the_demo_cards_cite_items_the_smallest_demo_runs():
    """A card's failure modes may only name items its signed runs hold: the demo runs the first N items.

    Gemma's card is signed over its own runs (GEMMA_GEN, full demo only); every other card over GEN's.
    """
    demo = (ROOT / "examples" / "demo.sh").read_text("utf-8")
    rows = _rows(ITEMS)
    checked = 0
    for card in sorted((ROOT / "examples" / "demo").glob("*.card.yaml")):
        cited = set(re.findall(r"contract-clauses/([A-Za-z0-9._:-]+)", card.read_text("utf-8")))
        runs = "GEMMA_GEN" if card.name.startswith("gemma") else "GEN"
        limits = [int(n) for n in re.findall(rf"(?<![A-Z_]){runs}=\(--limit (\d+)", demo)]
        assert limits, f"{runs} sets no --limit in examples/demo.sh"
        first = {row["id"] for row in rows[: min(limits)]}
        assert cited <= first, f"{card.name}: cite items among the first {min(limits)}: {sorted(first)}"
        checked += bool(cited)
    assert checked >= 2
