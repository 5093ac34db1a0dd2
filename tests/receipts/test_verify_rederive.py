"""``receipts verify`` re-derives every signed number: an edit to one, or to its rows, re-signed, is exit 4.

Each receipt signs a real ``receipts run`` (fake models) with the test signing key, as a publisher would:
an edit made before signing keeps every signature and digest valid, so only re-derivation can catch it.
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
from receipts.digests import digest_weights
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"  # names fake:t?skill=0.9 as its teacher
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("rederive")
    key = generate()
    (tmp / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        argv = [
            "run",
            str(ROOT / "packs" / "capitals-mc"),
            *ROLES,
            "--limit",
            "40",
            "--out",
            str(tmp / "run"),
        ]
        assert main([*argv, "--variant", "original", "--variant", "typo"]) == 0
    return {"tmp": tmp, "key": key}


def _signed(world: dict[str, Any], name: str, edit: Any = None) -> Path:
    """The run, edited by ``edit(results, rows)`` (examples digest kept consistent), signed into ``name``."""
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


def _verify(
    capsys: pytest.CaptureFixture[str], world: dict[str, Any], bundle: Path, *flags: str
) -> tuple[int, str]:
    code = main(["verify", str(bundle), "--trust-root", str(world["tmp"] / "trust.json"), *flags])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_an_unedited_run_rederives(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _signed(world, "clean")
    code, text = _verify(capsys, world, bundle)
    assert code == 0, text
    assert "numbers: re-derived from 1 examples log and 0 footprint(s)" in text  # on by default
    code, text = _verify(capsys, world, bundle, "--no-rederive")
    assert code == 0, text
    assert "numbers:" not in text  # --no-rederive: signatures and bindings only


def test_a_re_signed_retention_edit_is_named_with_both_values(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    real: dict[str, float] = {}

    def inflate(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        entry = results["metrics"]["all"]["acc"]["retention"]["student"]
        real["value"] = entry["value"]
        entry["value"] = 0.84

    bundle = _signed(world, "retention", inflate)
    assert _verify(capsys, world, bundle, "--no-rederive")[0] == 0  # every signature and digest holds
    code, text = _verify(capsys, world, bundle)
    assert code == 4, text
    assert "numbers: signed numbers that do not follow from the signed evidence" in text
    assert f"$.metrics.all.acc.retention.student.value: signed 0.84, re-derived {real['value']!r}" in text
    assert "Traceback" not in text


def test_a_re_signed_row_edit_without_its_results_is_named(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def flip(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["variant"] == "original" and r["roles"]["student"]["score"] == 0.0)
        row["roles"]["student"]["score"] = 1.0
        row["roles"]["student"]["scores"]["acc"] = 1.0

    code, text = _verify(capsys, world, _signed(world, "row", flip))
    assert code == 4, text
    assert "runs/capitals-mc/results.json: $.metrics.all.acc." in text
    assert "$.metrics.all.acc.roles.student.value: signed " in text
    assert "more" in text  # every difference is counted, the first few shown


def test_an_unreadable_row_fails_naming_its_line(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def garble(results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        rows[2] = {"item": rows[2]["item"]}  # a row with nothing to derive from

    code, text = _verify(capsys, world, _signed(world, "garbled", garble))
    assert code == 4, text
    assert "its numbers cannot be re-derived from runs/capitals-mc/examples.jsonl (KeyError" in text
    assert "Traceback" not in text


def _signed_footprint(world: dict[str, Any], name: str, edit: Any = None) -> Path:
    """tests/data/weights_golden and a real footprint of them, edited by ``edit``, signed (no run).

    The footprint is tests/data/footprint_demo_student.json re-pointed at the signed weights (which model
    was measured is a recorded fact, not a derived number; fake models have no weights to measure).
    """
    weights = ROOT / "tests" / "data" / "weights_golden"
    footprint = json.loads((ROOT / "tests" / "data" / "footprint_demo_student.json").read_bytes())
    footprint["model"]["digest"] = f"sha256:{digest_weights(weights).root}"
    if edit is not None:
        edit(footprint)
    path = world["tmp"] / f"footprint-{name}" / "student.json"
    path.parent.mkdir()
    path.write_text(json.dumps(footprint, indent=1) + "\n", "utf-8")
    return sign_receipt(CARD, [world["key"]], world["tmp"] / name, footprints=[path], weights=weights)


def test_a_real_footprint_rederives(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _verify(capsys, world, _signed_footprint(world, "footprint-clean"))
    assert code == 0, text
    assert "numbers: re-derived from 0 examples logs and 1 footprint(s)" in text


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("p50", ("points", 0, "metrics", "ttft_s", "p50"), 0.25),
        ("cost", ("summary", "cost_per_1k_calls"), 0.01),
        ("row", ("summary", "by_quant", "int8-dynamic/c1", "tpot_p50_s"), 0.001),
    ],
)
def test_a_re_signed_footprint_number_edit_is_named(
    world: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    name: str,
    path: tuple[Any, ...],
    value: float,
) -> None:
    real: list[Any] = []

    def edit(footprint: dict[str, Any]) -> None:
        *parents, last = path
        for key in parents:
            footprint = footprint[key]
        real.append(footprint[last])
        footprint[last] = value

    bundle = _signed_footprint(world, f"footprint-{name}", edit)
    assert _verify(capsys, world, bundle, "--no-rederive")[0] == 0  # every signature and digest holds
    code, text = _verify(capsys, world, bundle)
    assert code == 4, text
    where = ".".join(f"[{k}]" if isinstance(k, int) else k for k in path).replace(".[", "[")
    assert f"footprints/student.json: {where}: signed {value!r}, re-derived {real[0]!r}" in text
    assert "Traceback" not in text


def test_a_re_signed_sample_edit_is_named(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    def slower(footprint: dict[str, Any]) -> None:
        footprint["points"][0]["samples"]["e2e_s"][3] = 60.0  # one call, a minute long, statistics kept

    code, text = _verify(capsys, world, _signed_footprint(world, "footprint-sample", slower))
    assert code == 4, text
    assert "footprints/student.json: points[0].metrics." in text
    assert "points[0].metrics.e2e_s.max: signed 1.8378317099995911, re-derived 60.0" in text


def test_a_footprint_that_cannot_be_re_derived_fails_naming_why(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    def tokenless(footprint: dict[str, Any]) -> None:
        footprint["points"][0]["samples"]["token_times_s"][0] = []  # a call that made no token

    code, text = _verify(capsys, world, _signed_footprint(world, "footprint-tokenless", tokenless))
    assert code == 4, text
    assert (
        "footprints/student.json: its numbers cannot be re-derived from its samples "
        "(ValueError: a call produced no tokens)" in text
    )
    assert "Traceback" not in text


def test_sign_refuses_numbers_that_do_not_re_derive_unless_told_not_to(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`receipts sign` runs verify's re-derivation first: an edited number is never signed (exit 4)."""
    from receipts.keys import write_keypair

    write_keypair(world["key"], world["tmp"] / "k", b"pw")
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "pw")
    run = world["tmp"] / "run-sign-edited"
    shutil.copytree(world["tmp"] / "run", run)
    results = json.loads((run / "results.json").read_bytes())
    real = results["metrics"]["all"]["acc"]["retention"]["student"]["value"]
    results["metrics"]["all"]["acc"]["retention"]["student"]["value"] = 0.84
    (run / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True), "utf-8")
    out = world["tmp"] / "signed-edited"
    argv = ["sign", "--card", str(CARD), "--key", str(world["tmp"] / "k.key.pem"), "--run", str(run)]
    code = main([*argv, "--out", str(out)])
    text = "".join(capsys.readouterr())
    assert code == 4, text
    assert "not signed: numbers that do not follow from the evidence" in text
    assert f"$.metrics.all.acc.retention.student.value: signed 0.84, re-derived {real!r}" in text
    assert "Traceback" not in text
    assert not out.exists() or not any(out.iterdir())
    code = main([*argv, "--out", str(out), "--no-rederive"])
    text = "".join(capsys.readouterr())
    assert code == 0, text
    (bundle,) = out.iterdir()
    assert _verify(capsys, world, bundle)[0] == 4  # and verify still names it
    clean = world["tmp"] / "signed-clean"
    code = main(["sign", "--card", str(CARD), "--key", str(world["tmp"] / "k.key.pem"), "--run",
                 str(world["tmp"] / "run"), "--out", str(clean)])  # fmt: skip
    assert code == 0, "".join(capsys.readouterr())
