"""receipts.metrics.similarity and its place in re-derivation: per-slice CIs from signed per-item scores.

The CI reference is an independent numpy bootstrap (the documented index rule of
`receipts.metrics.uncertainty.bootstrap_indices`); forged aggregates and hostile per-item scores are caught
by ``receipts verify`` (exit 4, naming the number), and results without a similarity section still verify.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from receipts.cli import main
from receipts.derive import rederive
from receipts.keys import generate
from receipts.metrics.similarity import KNOWN_ENCODERS, check_scores, encoder_identity, estimates, section
from receipts.sign import sign_receipt
from receipts.trust import new_root

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
PACK = ROOT / "tests" / "data" / "pack_similarity"  # opts into chrf and rouge_l
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]


def _scores(values: dict[str, list[float]], reference: str = "teacher") -> dict[str, Any]:
    return {r: {f"k{i}": {reference: {"chrf": v}} for i, v in enumerate(vs)} for r, vs in values.items()}


def test_estimates_are_a_paired_bootstrap_on_the_same_resampled_items() -> None:
    rng = np.random.default_rng(7)
    student, base = rng.random(40), rng.random(40)
    scores = _scores({"teacher": [], "student": list(student), "base": list(base)})
    found = estimates([f"k{i}" for i in range(40)], scores, ["teacher", "base", "student"],
                      n_resamples=1000, seed=3)["chrf"]["teacher"]  # fmt: skip
    index = np.random.Generator(np.random.PCG64(3)).integers(0, 40, size=(1000, 40))
    for name, replicates, value in (
        ("student", student[index].mean(axis=1), student.mean()),
        ("base", base[index].mean(axis=1), base.mean()),
        (
            "student-base",
            student[index].mean(axis=1) - base[index].mean(axis=1),
            student.mean() - base.mean(),
        ),
    ):
        low, high = np.percentile(replicates, [2.5, 97.5])
        assert found[name].value == pytest.approx(value)
        assert (found[name].low, found[name].high) == (pytest.approx(low), pytest.approx(high))
        assert found[name].n == 40
        assert not found[name].small_n
    assert "teacher" not in found  # the teacher is the reference, not a comparing role


def test_only_items_every_comparing_role_scored_are_used() -> None:
    scores = _scores({"student": [0.5, 1.0, 0.0], "base": [0.5, 1.0]})
    found = estimates(["k0", "k1", "k2"], scores, ["teacher", "base", "student"], n_resamples=1000, seed=0)
    assert found["chrf"]["teacher"]["student"].n == 2
    assert found["chrf"]["teacher"]["student"].value == 0.75


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ({"similarity": {"teacher": {"chrf": float("nan")}}}, r"similarity\.teacher\.chrf is nan"),
        ({"similarity": {"teacher": {"chrf": 1.5}}}, r"similarity\.teacher\.chrf is 1\.5"),
        ({"similarity": {"teacher": {"rouge_l": -0.1}}}, r"rouge_l is -0\.1"),
        ({"similarity": {"teacher": {"cosine": -1.01}}}, r"cosine is -1\.01"),
        ({"similarity": {"teacher": {"chrf": True}}}, r"chrf is True"),
        ({"similarity": {"teacher": {"chrf": "0.5"}}}, r"chrf is '0\.5'"),
        ({"similarity": {"teacher": {"bleu": 0.5}}}, r"bleu is 0\.5"),
        ({"similarity": {"oracle": {"chrf": 0.5}}}, r"similarity\.oracle is not one of teacher, gold"),
        ({"similarity": [0.5]}, r"similarity is not an object"),
    ],
)
def test_hostile_per_item_scores_are_refused_naming_where(cell: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"^row 3: (similarity\.teacher\.)?{message}"):
        check_scores(cell, "row 3")


def test_a_negative_cosine_is_a_score_and_no_scores_is_no_section() -> None:
    assert check_scores({"similarity": {"gold": {"cosine": -0.2}}}, "x") == {"gold": {"cosine": -0.2}}
    cells = {"teacher": {"k": {"score": 1.0}}, "student": {"k": {"score": 0.0}}}
    assert section({"all": ["k"]}, cells, ["teacher", "student"], None, n_resamples=1000, seed=0) is None


def test_cosine_scores_need_a_named_encoder_and_a_known_digest_is_recognised() -> None:
    with pytest.raises(ValueError, match="names no encoder"):
        encoder_identity({})
    with pytest.raises(ValueError, match="needs a name and a digest"):
        encoder_identity({"similarity": {"encoder": {"name": 3, "digest": "sha256:00"}}})
    known = {"name": "all-MiniLM-L6-v2", "digest": KNOWN_ENCODERS["all-MiniLM-L6-v2"]}
    assert encoder_identity({"similarity": {"encoder": known}})["recognised"] is True
    other = {**known, "digest": "sha256:" + "0" * 64}
    assert encoder_identity({"similarity": {"encoder": other}})["recognised"] is False


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("similarity")
    key = generate()
    (tmp / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        assert main(["run", str(PACK), *ROLES, "--out", str(tmp / "run")]) == 0
    return {"tmp": tmp, "key": key}


def _load(run: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    results = json.loads((run / "results.json").read_bytes())
    return results, [json.loads(line) for line in (run / "examples.jsonl").read_bytes().splitlines()]


def test_a_forged_aggregate_or_score_is_named_by_rederive(world: dict[str, Any]) -> None:
    results, rows = _load(world["tmp"] / "run")
    assert rederive(results, rows) == []
    entry = results["similarity"]["slices"]["region=south"]["rouge_l"]["gold"]["roles"]["student"]
    real = entry["ci95"][1]
    entry["ci95"][1] = 0.99
    assert rederive(results, rows) == [
        "$.similarity.slices.region=south.rouge_l.gold.roles.student.ci95[1]: "
        f"signed 0.99, re-derived {real!r}"
    ]
    results, rows = _load(world["tmp"] / "run")
    rows[0]["roles"]["student"]["similarity"]["teacher"]["chrf"] = 1.0  # a per-item score raised alone
    assert any(
        d.startswith("$.similarity.slices.all.chrf.teacher.roles.student.value")
        for d in rederive(results, rows)
    )
    results, rows = _load(world["tmp"] / "run")
    del results["similarity"]  # a run with scores must say what they add up to
    assert any(d.startswith("$.similarity: signed None") for d in rederive(results, rows))


def _signed(world: dict[str, Any], name: str, edit: Any) -> Path:
    run = world["tmp"] / f"run-{name}"
    shutil.copytree(world["tmp"] / "run", run)
    results, rows = _load(run)
    edit(results, rows)
    data = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows).encode()
    (run / "examples.jsonl").write_bytes(data)
    results["examples"]["sha256"] = hashlib.sha256(data).hexdigest()
    (run / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True), "utf-8")
    return sign_receipt(CARD, [world["key"]], world["tmp"] / name, runs=[run])


def _verify(capsys: pytest.CaptureFixture[str], world: dict[str, Any], bundle: Path) -> tuple[int, str]:
    code = main(["verify", str(bundle), "--trust-root", str(world["tmp"] / "trust.json")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_verify_passes_a_clean_run_and_fails_a_re_signed_forged_mean(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _verify(capsys, world, _signed(world, "clean", lambda results, rows: None))
    assert code == 0, text

    def inflate(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        results["similarity"]["slices"]["all"]["chrf"]["teacher"]["roles"]["student"]["value"] = 0.97

    code, text = _verify(capsys, world, _signed(world, "forged", inflate))
    assert code == 4, text
    assert "$.similarity.slices.all.chrf.teacher.roles.student.value: signed 0.97, re-derived" in text
    assert "Traceback" not in text


def test_verify_fails_a_hostile_per_item_score_with_one_message(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def poison(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        rows[1]["roles"]["base"]["similarity"]["gold"]["chrf"] = 7.5

    code, text = _verify(capsys, world, _signed(world, "hostile", poison))
    assert code == 4, text
    assert "similarity.gold.chrf is 7.5" in text
    assert "Traceback" not in text


def test_verify_fails_cosine_scores_without_their_encoder(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def smuggle(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        rows[0]["roles"]["student"]["similarity"]["teacher"]["cosine"] = 0.9

    code, text = _verify(capsys, world, _signed(world, "no-encoder", smuggle))
    assert code == 4, text
    assert "settings.similarity.encoder names no encoder" in text
