"""examples/packgen/capitals.py: capitals-mc's 1,000 items and its disjoint training split (issue #22)."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main as receipts_main
from runner.eval.loader import load_pack

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "examples"))

import make_packs  # noqa: E402
from packgen import capitals, disjoint  # noqa: E402
from packgen.capitals_facts import COUNTRIES, UNIT_PAIRS  # noqa: E402

PACK = ROOT / "packs" / "capitals-mc"
FIELDS = {"id", "question", "choices", "label", "domain", "difficulty", "source"}
DOMAINS = {"geography", "arithmetic", "units", "science", "physical"}


@pytest.fixture(scope="module")
def data() -> capitals.PackData:
    return capitals.build(0)


def _critical(items: list[dict[str, Any]]) -> int:
    return sum(item.get("critical") is True for item in items)


def test_build_is_deterministic(data: capitals.PackData) -> None:
    again = capitals.build(0)
    assert again.eval_items == data.eval_items
    assert again.train_items == data.train_items
    other = capitals.build(1)
    assert other.eval_items != data.eval_items
    assert len(other.eval_items) == len(data.eval_items)


def test_committed_files_are_the_generator_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert make_packs.main(["--check", "--pack", "capitals-mc"]) == 0
    assert "capitals-mc: 1000 eval items" in capsys.readouterr().out


def test_check_names_a_changed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert make_packs.main(["--out", str(tmp_path), "--pack", "capitals-mc"]) == 0
    assert make_packs.main(["--check", "--out", str(tmp_path), "--pack", "capitals-mc"]) == 0
    items = tmp_path / "packs" / "capitals-mc" / "data" / "items.jsonl"
    items.write_text(items.read_text("utf-8").replace("Canberra", "Sydney", 1), "utf-8")
    capsys.readouterr()
    assert make_packs.main(["--check", "--out", str(tmp_path), "--pack", "capitals-mc"]) == 1
    err = capsys.readouterr().err
    assert f"stale: {items}" in err
    assert "capitals-mc.jsonl" not in err  # the training split was left alone and is not named


def test_counts_and_critical_share(data: capitals.PackData) -> None:
    items = data.eval_items
    assert 950 <= len(items) <= 1050
    assert 500 <= len(data.train_items) <= 700
    critical = _critical(items)
    assert critical >= 250
    assert critical >= 0.25 * len(items)
    assert Counter(item["source"] for item in items) == {"curated": 105, "generated": len(items) - 105}
    assert {item["domain"] for item in items if item.get("critical")} >= {"arithmetic", "units", "physical"}


def test_every_prefix_is_stratified(data: capitals.PackData) -> None:
    items = data.eval_items
    assert {item["domain"] for item in items[:120]} == DOMAINS
    assert {item["source"] for item in items[:120]} == {"curated", "generated"}
    running = 0
    for n, item in enumerate(items, 1):
        running += item.get("critical") is True
        if n >= 120:
            assert running >= 30 * n / 120, f"the first {n} items hold only {running} critical"


def test_items_are_well_formed(data: capitals.PackData) -> None:
    items = data.eval_items
    assert len({item["id"] for item in items}) == len(items)
    assert len({(item["question"], frozenset(item["choices"])) for item in items}) == len(items)
    for item in [*items, *data.train_items]:
        keys = set(item) - {"critical", "response"}
        assert keys == FIELDS, item["id"]
        assert item.get("critical", True) is True, item["id"]  # present only when true
        choices = item["choices"]
        assert len(set(choices)) == len(choices) == 4, item["id"]
        assert 0 <= item["label"] < 4, item["id"]
        assert item["question"] != item["question"].lower(), item["id"]  # the lowercase variant changes it
    positions = Counter(item["label"] for item in items)
    assert min(positions.values()) >= 0.2 * len(items)


def test_curated_items_are_kept_verbatim(data: capitals.PackData) -> None:
    lines = (ROOT / "examples" / "packgen" / "capitals_curated.jsonl").read_text("utf-8").splitlines()
    curated = {row["id"]: row for row in map(json.loads, lines)}
    assert sorted(curated) == [f"cap-{n:03d}" for n in range(1, 106)]
    assert _critical(list(curated.values())) == 16
    kept = {item["id"]: item for item in data.eval_items if item["source"] == "curated"}
    assert kept == {key: row | {"source": "curated"} for key, row in curated.items()}
    generated = [item["id"] for item in data.eval_items if item["source"] == "generated"]
    assert sorted(generated) == [f"cap-g{n:04d}" for n in range(1, len(generated) + 1)]


def test_train_split_is_disjoint_from_the_pack(data: capitals.PackData) -> None:
    assert disjoint(data.eval_items, data.train_items, lambda row: row["question"]) == []
    choices = {choice for item in data.eval_items for choice in item["choices"]}
    questions = " ".join(item["question"] for item in data.eval_items)
    trained = {row["choices"][row["label"]] for row in data.train_items if row["domain"] == "geography"}
    countries = [(country, capital) for country, capital, *_ in COUNTRIES if {country, capital} & trained]
    assert len(countries) >= 40
    for country, capital in countries:
        assert not {country, capital} & choices, country
        for asked in (f"capital of {country}?", f"{capital} as its capital", f"{capital} is the capital"):
            assert asked not in questions
    for row in data.train_items:
        assert row["response"] == row["choices"][row["label"]]
    assert len({row["id"] for row in data.train_items}) == len(data.train_items)


def test_generator_refuses_an_overlap(data: capitals.PackData) -> None:
    leaked = [
        *data.train_items,
        {**data.train_items[0], "id": "cap-t9999", "question": data.eval_items[5]["question"]},
    ]
    with pytest.raises(ValueError, match="train rows overlap the eval pack: \\['cap-t9999'\\]"):
        capitals._checked(data.eval_items, leaked, [])


def test_arithmetic_and_unit_answers_recompute(data: capitals.PackData) -> None:
    factor = {(big, small): f for big, small, f, _ in UNIT_PAIRS}
    ops = {"+": int.__add__, "plus": int.__add__, "-": int.__sub__, "minus": int.__sub__}
    ops |= {"times": int.__mul__, "multiplied by": int.__mul__, "divided by": int.__floordiv__}

    def convert(n: int, have: str, want: str) -> str:
        value = n * factor[(have, want)] if (have, want) in factor else n / factor[(want, have)]
        return str(value).removesuffix(".0")

    checked = 0
    for item in [*data.eval_items, *data.train_items]:
        gold, question = item["choices"][item["label"]], item["question"]
        if m := re.fullmatch(r"What is (\d+) (\D+) (\d+)\?", question):
            assert str(ops[m[2]](int(m[1]), int(m[3]))) == gold, question
            checked += 1
        elif m := re.fullmatch(r"How many (\w+)s are in (\d+) (\w+)s\?", question):
            assert convert(int(m[2]), m[3], m[1]) == gold, question
            checked += 1
        elif m := re.fullmatch(r"In (\d+) (\w+)s, how many (\w+)s are there\?", question):
            assert convert(int(m[1]), m[2], m[3]) == gold, question
            checked += 1
    assert checked > 400


def test_pack_loads_and_validates(capsys: pytest.CaptureFixture[str]) -> None:
    pack = load_pack(PACK)
    assert len(pack.items) == 1000
    lines = (PACK / "data" / "items.jsonl").read_text("utf-8").splitlines()
    assert len(pack.critical_items) == _critical([json.loads(line) for line in lines]) == 423
    assert "source" in pack.slices
    assert receipts_main(["validate", str(PACK)]) == 0
    assert "valid pack capitals-mc@2.0.0: 1000 items" in capsys.readouterr().out
