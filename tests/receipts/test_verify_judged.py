"""``receipts verify`` re-derives judged equivalence and the judge's kappa from the signed verdicts.

A real ``receipts run --judge replay:...`` (fake roles) is edited, then signed with the test key, so every
signature and digest holds and only re-derivation can catch the edit (exit 4, naming it).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.errors import InputError
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root
from tests import judging

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("judged")
    key = generate()
    (tmp / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        argv = ["run", str(judging.PACK), *ROLES, "--out", str(tmp / "run")]
        assert main(argv) == 0
        judge = judging.record(tmp / "run", tmp / "judge.jsonl")
        assert main([*argv, "--force", "--judge", f"replay:{judge}"]) == 0
    return {"tmp": tmp, "key": key}


def _signed(world: dict[str, Any], name: str, edit: Any = None) -> Path:
    run = world["tmp"] / f"run-{name}"
    shutil.copytree(world["tmp"] / "run", run)
    results = json.loads((run / "results.json").read_bytes())
    rows = [json.loads(line) for line in (run / "examples.jsonl").read_bytes().splitlines()]
    if edit is not None:
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


def test_a_judged_run_rederives(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _verify(capsys, world, _signed(world, "clean"))
    assert code == 0, text


def test_a_forged_kappa_is_caught(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    def forge(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        results["judged"]["certificate"]["kappa"]["value"] = 0.93

    code, text = _verify(capsys, world, _signed(world, "kappa", forge))
    assert code == 4, text
    assert "$.judged.certificate.kappa.value: signed 0.93, re-derived 1.0" in text


def test_a_forged_verdict_count_is_caught(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    def forge(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        counts = results["judged"]["verdicts"]["student"]["teacher"]
        counts["unparseable"] += 1  # one more reply than there are items

    code, text = _verify(capsys, world, _signed(world, "count", forge))
    assert code == 4, text
    assert "$.judged.verdicts.student.teacher.unparseable: signed 1, re-derived 0" in text


def test_a_verdict_its_reply_does_not_say_is_caught(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def forge(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        cells = [c for r in rows for cell in r["roles"].values() for c in cell["judge"].values()]
        next(c for c in cells if c["verdict"] == "different")["verdict"] = "equivalent"

    code, text = _verify(capsys, world, _signed(world, "verdict", forge))
    assert code == 4, text
    assert "the logged judge verdict is 'equivalent', its reply says 'different'" in text
    assert "Traceback" not in text


def test_a_forged_validation_is_caught(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    def forge(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        # another judge's identity, the certificate still claiming validation
        results["judge"]["model"]["digest"] = "sha256:" + "2" * 64

    code, text = _verify(capsys, world, _signed(world, "identity", forge))
    assert code == 4, text
    # the gate's judged rule now fails, naming why (the certificate's own difference is among the rest)
    assert (
        "min_judged_agreement fail: judge not validated: the validation sample was judged by another" in text
    )


def _lower_threshold(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    # a consistent forgery: the run's threshold and the certificate derived from it both say 0.3
    results["judge"]["kappa_threshold"] = 0.3
    results["judged"]["certificate"]["threshold"] = 0.3


def test_a_threshold_that_is_not_the_packs_is_caught_against_the_pack(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _signed(world, "threshold", _lower_threshold)
    # re-derivation alone cannot see it: every number follows from the signed (forged) set-up
    code, text = _verify(capsys, world, bundle)
    assert code == 0, text
    code = main(
        ["verify", str(bundle), "--trust-root", str(world["tmp"] / "trust.json"), "--pack", str(judging.PACK)]
    )
    text = capsys.readouterr().out
    assert code == 4, text
    assert "the run's kappa threshold 0.3 is not the pack's 0.6" in text


def test_sign_refuses_a_run_whose_judge_set_up_is_not_its_packs(world: dict[str, Any]) -> None:
    run = world["tmp"] / "run-threshold"  # written by the test above or here
    if not run.exists():
        _signed(world, "threshold", _lower_threshold)
    with pytest.raises(InputError, match=r"kappa threshold 0\.3 is not the pack's 0\.6"):
        sign_receipt(CARD, [world["key"]], world["tmp"] / "refused", runs=[run], packs=[judging.PACK])
    assert list((world["tmp"] / "refused").iterdir()) == []  # no bundle, not even a staging folder


def test_a_published_pack_catches_a_run_whose_rubric_is_not_the_packs(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "3" * 64

    def forge(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        for part in (results["judge"]["rubric"], results["judge"]["validation"]):
            part["sha256" if part is results["judge"]["rubric"] else "rubric_sha256"] = other
        results["judged"]["certificate"]["rubric_sha256"] = other

    _signed(world, "rubric-unpublished", forge)  # leaves the forged run in run-rubric-unpublished/
    # a hand-made statement: sign's own check switched off, the pack published in the bundle
    monkeypatch.setattr("receipts.packfiles.judge_problems", lambda pack, runs: [])
    bundle = sign_receipt(
        CARD,
        [world["key"]],
        world["tmp"] / "rubric",
        runs=[world["tmp"] / "run-rubric-unpublished"],
        packs=[judging.PACK],
    )
    assert (bundle / "packs" / "judge-capitals" / "pack.yaml").is_file()
    monkeypatch.undo()
    code, text = _verify(capsys, world, bundle)
    assert code == 4, text
    assert "the judge rubric 'judge/rubric.txt' digests to" in text
    assert f"the run signed {other}" in text
