"""examples/packgen/probes.py: behaviour-probes generated big enough to decide, with a disjoint train split.

The committed pack and training split are the generator's output (``make_packs --check``); the eval order
is stratified so any prefix holds the critical cohort and every behaviour; the training responses are what
the pack's own scorers count as right; and no training request meets an eval item.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main as receipts_main
from runner.eval.answers import behaviour_matches, observed_behaviours
from runner.eval.loader import load_pack
from runner.eval.prompts import materialise
from runner.eval.scoring import score_output

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "packs" / "behaviour-probes"
TRAIN = ROOT / "examples" / "train" / "behaviour-probes.jsonl"
sys.path.insert(0, str(ROOT / "examples"))
make_packs = importlib.import_module("make_packs")
packgen = importlib.import_module("packgen")
probes = importlib.import_module("packgen.probes")
templates = importlib.import_module("packgen.probe_templates")

BEHAVIOURS = ("answer", "clarify", "abstain", "refuse")
FORMATS = ("plain", "structured", "noisy", "unicode", "long", "empty")


@pytest.fixture(scope="module")
def data() -> Any:
    return probes.build(0)


@pytest.fixture(scope="module")
def pack() -> Any:
    return load_pack(PACK)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_the_build_is_deterministic_under_its_seed(data: Any) -> None:
    again = probes.build(0)
    assert packgen.jsonl(again.eval_items) == packgen.jsonl(data.eval_items)
    assert packgen.jsonl(again.train_items) == packgen.jsonl(data.train_items)
    assert packgen.jsonl(probes.build(1).eval_items) != packgen.jsonl(data.eval_items)


def test_the_committed_files_are_the_generators_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert make_packs.main(["--check", "--pack", "behaviour-probes"]) == 0
    items = tmp_path / "packs" / "behaviour-probes" / "data" / "items.jsonl"
    train = tmp_path / "examples" / "train" / "behaviour-probes.jsonl"
    for source, copy in ((PACK / "data" / "items.jsonl", items), (TRAIN, train)):
        copy.parent.mkdir(parents=True)
        shutil.copyfile(source, copy)
    assert make_packs.main(["--check", "--pack", "behaviour-probes", "--out", str(tmp_path)]) == 0
    lines = items.read_text("utf-8").splitlines(keepends=True)
    items.write_text("".join(lines[:-1]), "utf-8")  # one item dropped
    capsys.readouterr()
    assert make_packs.main(["--check", "--pack", "behaviour-probes", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"stale: {items}" in err
    assert str(train) not in err


def test_counts_and_the_critical_cohort(data: Any) -> None:
    items = data.eval_items
    assert len(items) == 1000
    assert Counter(i["source"] for i in items) == {"curated": 70, "generated": 930}
    expect = Counter(i["expect"] for i in items)
    assert set(expect) == set(BEHAVIOURS)
    assert min(expect.values()) >= 150, expect
    critical = [i for i in items if i.get("critical")]
    assert len(critical) >= 250
    assert len(critical) >= 0.25 * len(items)
    assert {i["expect"] for i in critical} == {"refuse", "abstain"}
    assert all(i.get("critical") for i in items if i["expect"] == "refuse")
    answers = Counter(i["input_format"] for i in items if i["expect"] == "answer")
    assert all(answers[fmt] >= 30 for fmt in FORMATS), answers
    assert len(data.train_items) == 600
    assert set(Counter(r["expect"] for r in data.train_items)) == set(BEHAVIOURS)


def test_curated_items_are_kept_verbatim(data: Any) -> None:
    curated = _rows(probes.CURATED)
    kept = {i["id"]: i for i in data.eval_items if i["source"] == "curated"}
    assert len(curated) == 70
    for item in curated:
        assert kept[item["id"]] == {**item, "source": "curated"}


def test_every_prefix_holds_the_critical_cohort_and_every_behaviour(data: Any) -> None:
    items = data.eval_items
    assert sum(bool(i.get("critical")) for i in items[:120]) >= 30
    critical = 0
    seen: set[str] = set()
    for n, item in enumerate(items, start=1):
        critical += bool(item.get("critical"))
        seen.add(item["expect"])
        if n >= 120:
            assert critical >= 0.25 * n, (n, critical)
            assert seen == set(BEHAVIOURS), n
    # the training order deals the behaviours evenly too
    assert {r["expect"] for r in data.train_items[:8]} == set(BEHAVIOURS)


def test_ids_and_requests_are_unique(data: Any) -> None:
    ids = [i["id"] for i in data.eval_items] + [r["id"] for r in data.train_items]
    assert len(ids) == len(set(ids))
    generated = [i["id"] for i in data.eval_items if i["source"] == "generated"]
    assert generated == [f"bp-g{n:04d}" for n in range(1, 931)]
    assert [r["id"] for r in data.train_items] == [f"bp-t{n:04d}" for n in range(1, 601)]
    requests = [probes.norm(row["request"]) for row in [*data.eval_items, *data.train_items]]
    assert len(requests) == len(set(requests))  # no request is asked twice, in either split


@pytest.mark.parametrize("split", ["eval", "train"])
def test_every_clarify_pattern_compiles_and_the_right_question_matches_it(split: str, pack: Any) -> None:
    generated = [p for group in templates.groups("clarify", split) for p in group]
    assert len(generated) >= 140
    for probe in generated:
        assert re.search(probe.pattern, probe.response, re.IGNORECASE), probe
        assert probe.response.endswith("?"), probe
        assert behaviour_matches(probe.response, "clarify", pack.behaviour), probe  # a marker and "?"
    for item in pack.items:
        if item.expected == "clarify":
            assert item.clarify_pattern is not None, item.id
            re.compile(item.clarify_pattern)


def test_train_and_eval_do_not_meet(data: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert packgen.disjoint(data.eval_items, data.train_items, lambda row: row["request"]) == []
    out = tmp_path / "overlap.json"
    argv = ["overlap", str(PACK), str(TRAIN), "--field", "request", "--out", str(out)]
    assert receipts_main(argv) == 0, capsys.readouterr()
    report = json.loads(out.read_text("utf-8"))
    assert report["items_checked"] == 1000
    assert report["items_overlapping"] == 0
    assert report["method"]["minhash"] is not None  # near-duplicates were looked for too


def test_a_shared_request_is_refused(data: Any) -> None:
    train = [dict(row) for row in data.train_items[:3]]
    train[1]["request"] = "  " + data.eval_items[5]["request"].upper() + " "
    with pytest.raises(ValueError, match=re.escape(train[1]["id"])):
        probes.check(data.eval_items, train)


def test_the_pack_loads_and_validates(pack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert pack.version == "2.0.0"
    assert len(pack.items) == 1000
    assert "source" in pack.slices
    assert receipts_main(["validate", str(PACK)]) == 0, capsys.readouterr()


def test_the_packs_scorers_count_every_training_response_right(data: Any, tmp_path: Path) -> None:
    """Each training row, posed as an item of the pack, scores 1 on the pack's scorer with its response."""
    folder = tmp_path / "train-pack"
    (folder / "data").mkdir(parents=True)
    shutil.copyfile(PACK / "pack.yaml", folder / "pack.yaml")
    (folder / "data" / "items.jsonl").write_text(packgen.jsonl(data.train_items), "utf-8")
    train_pack = load_pack(folder)
    responses = {r["id"]: r["response"] for r in data.train_items}
    scored = 0
    for inst in materialise(train_pack, ["original"]):
        text = responses[inst.item_id]
        row = score_output(train_pack, inst, {"text": text})
        assert row["score"] == 1.0, (inst.item_id, text, row)
        if inst.expected == "answer":  # a right answer shows no other behaviour either
            assert not observed_behaviours(text, train_pack.behaviour), (inst.item_id, text)
        scored += 1
    assert scored == 600
