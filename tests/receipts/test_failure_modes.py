"""Failure modes bound to the evidence: placeholders, typed-in numbers, unknown items at sign and verify.

The receipts here sign a real ``receipts run`` of capitals-mc (fake models, the first 24 items, every
prompt variant: what the small demo signs) with a real key through the CLI.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import yaml

from receipts.cli import main
from receipts.dsse import sign_envelope
from receipts.failure_modes import parse_ref, text_problems
from receipts.keys import generate, load_private_key, write_keypair
from receipts.sign import PAYLOAD_TYPE
from receipts.trust import new_root

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "card.yaml"
FAKE_CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
ROLES = ["--teacher", "fake:teacher", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def demo_card(edit: Any = None) -> dict[str, Any]:
    """examples/card.yaml with the fake teacher the test runs score (a card names the evaluated teacher)."""
    card = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    fake = yaml.safe_load(FAKE_CARD.read_text("utf-8"))
    card["lineage"]["teachers"] = fake["lineage"]["teachers"]
    # the fake teacher is no provider in the licence table: the fake card's overrides say why it is free
    card["license"]["overrides"] = fake["license"]["overrides"]
    if edit is not None:
        edit(card)
    return card


def write(card: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(card, sort_keys=False), "utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("failure-modes")
    key = generate()
    write_keypair(key, tmp / "keys" / "release", b"pw")
    (tmp / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        patch.setenv("RECEIPTS_PASSPHRASE", "pw")
        argv = ["run", ROOT / "packs" / "capitals-mc", *ROLES, "--sft", "fake:f?skill=0.5", "--limit", "24"]
        assert main([str(a) for a in [*argv, "--out", tmp / "run"]]) == 0
    return {
        "tmp": tmp,
        "run": tmp / "run",
        "key": tmp / "keys" / "release.key.pem",
        "trust": tmp / "trust.json",
    }


def sign(
    capsys: pytest.CaptureFixture[str], world: dict[str, Path], card: Path, out: Path
) -> tuple[int, str]:
    return cli(capsys, "sign", "--card", card, "--run", world["run"], "--key", world["key"], "--out", out)


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "pw")


# --- the grammar ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("capitals-mc.student.acc", ("capitals-mc", "student", "acc", "all")),
        ("capitals-mc.student.acc@variant=lowercase", ("capitals-mc", "student", "acc", "variant=lowercase")),
        ("capitals-mc.student-teacher.acc", ("capitals-mc", "student-teacher", "acc", "all")),
        (
            "capitals-mc.student@int8-dynamic-teacher.acc",
            ("capitals-mc", "student@int8-dynamic-teacher", "acc", "all"),
        ),
        ("pack.v2.student.ece", ("pack.v2", "student", "ece", "all")),
        ("capitals-mc.student.retention@critical", ("capitals-mc", "student", "retention", "critical")),
        ("capitals-mc.student.acc@critical=pii", ("capitals-mc", "student", "acc", "critical=pii")),
        ("capitals-mc.student.acc@difficulty=hard", ("capitals-mc", "student", "acc", "difficulty=hard")),
    ],
)
def test_placeholders_parse(body: str, expected: tuple[str, str, str, str]) -> None:
    ref = parse_ref(body)
    assert ref is not None
    assert (ref.pack, ref.what, ref.measure, ref.slice) == expected


@pytest.mark.parametrize(
    "body",
    [
        "__class__",
        "capitals-mc.student.__class__",
        "capitals-mc.judge.acc",
        "capitals-mc.student",
        "capitals-mc.student.acc.value",
        "Capitals.student.acc",
        "capitals-mc.student.acc@",
        "capitals-mc.student.acc@" + "x" * 400,
        "0.324",
        "",
        # a slice is all, critical or FIELD=LABEL: no prose, no white space
        "capitals-mc.student.ece@ECE measured 0.324 vs teacher 0.109",
        "capitals-mc.student.acc@difficulty=hard and 0.5",
        "capitals-mc.student.acc@difficulty",
        "capitals-mc.student.acc@=hard",
        "capitals-mc.student.acc@0.324",
    ],
)
def test_text_outside_the_grammar_is_not_a_placeholder(body: str) -> None:
    assert parse_ref(body) is None


def _problems(text: str, field: str = "description") -> list[tuple[str, str]]:
    mode = {"description": "ok", "trigger": "ok", "mitigation": "ok", field: text}
    return text_problems({"failure_modes": [{"id": "x", **mode}]})


@pytest.mark.parametrize(
    "text",
    [
        "Sydney for Australia (cap-028), as GPT-4 and int8 and Q4_1 models do; see SmolLM2-135M.",
        "ECE {capitals-mc.student.ece}, ten equal-mass bins, the second prompt.",
        "Items capitals-mc/cap-005 and cap-019.",
        "Lower case moves it from {capitals-mc.student.acc} to {capitals-mc.student.acc@variant=lowercase}.",
    ],
)
def test_words_identifiers_and_placeholders_are_not_typed_numbers(text: str) -> None:
    assert _problems(text) == []


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("expected calibration error 0.324", "'0.324'"),
        ("15 items lost", "'15'"),
        ("right on 90% of items", "'90%'"),
        ("the 2nd prompt", "'2nd'"),
        ("at n=105", "'n=105'"),
        ("ECE-0.324 against the teacher", "'ECE-0.324'"),
        ("\uff10.\uff13\uff12\uff14 in full-width digits", "'\uff10.\uff13\uff12\uff14'"),
        ("accuracy 0,429 (decimal comma)", "'0,429'"),
        ("10 metres in a kilometre", "'10'"),
        ("right on \u00bd of the items", "'\u00bd'"),
        ("wrong on \u2153 of them", "'\u2153'"),
        ("chapter \u216b", "'\u216b'"),
    ],
)
def test_typed_numbers_are_refused_with_the_json_path(text: str, word: str) -> None:
    for field in ("description", "trigger", "mitigation"):
        [(path, problem)] = _problems(text, field)
        assert path == f"$.failure_modes[0].{field}"
        assert problem.startswith("typed-in number")
        assert word in problem


def test_a_number_hidden_in_a_placeholder_slice_is_refused() -> None:
    """The reviewer's case: measured numbers typed into what looks like a placeholder's slice."""
    problems = _problems("calibration {capitals-mc.student.ece@ECE measured 0.324 vs teacher 0.109}")
    assert [p for _, p in problems if p.startswith("{capitals-mc.student.ece@ECE measured")]
    [typed] = [p for _, p in problems if p.startswith("typed-in number")]
    assert "'0.324', '0.109'" in typed


@pytest.mark.parametrize(
    "text",
    [
        "{__class__}",
        "{capitals-mc.student.acc@" + "x" * 5000 + "}",
        "{{capitals-mc.student.acc}}",
        "{capitals-mc.student.<script>alert(1)</script>}",
        "a lone { brace",
        "a lone } brace",
        "{capitals-mc.student.acc@\x1b[31mred}",
    ],
)
def test_hostile_placeholders_are_refused_by_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    card = demo_card(lambda c: c["failure_modes"][1].update(description=text))
    code, out = cli(capsys, "validate", write(card, tmp_path / "card.yaml"))
    assert code == 3, out
    assert "$.failure_modes[1].description" in out
    assert "Traceback" not in out
    assert "\x1b" not in out  # no terminal escape sequence reaches the terminal
    assert len(out) < 2000  # a 5,000-character placeholder is not echoed whole


def test_committed_cards_validate(capsys: pytest.CaptureFixture[str]) -> None:
    cards = [EXAMPLE, *sorted((ROOT / "examples" / "demo").glob("*.card.yaml"))]
    code, out = cli(capsys, "validate", *cards)
    assert code == 0, out


def test_validate_refuses_a_typed_in_number_in_the_example_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text("utf-8")
    anchor = "Observed in the capitals-mc run: expected calibration error"
    assert anchor in text
    edited = tmp_path / "card.yaml"
    edited.write_text(text.replace(anchor, anchor + " ECE 0.324,"), "utf-8")
    code, out = cli(capsys, "validate", edited)
    assert code == 3
    assert f"{edited}: not a valid card: 1 problem" in out
    assert "$.failure_modes[3].description: typed-in number '0.324'" in out
    assert "placeholder" in out
    assert "in words" in out


# --- sign and verify -----------------------------------------------------------------------------------


def test_the_example_card_signs_with_a_small_run_and_verifies(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = write(demo_card(), tmp_path / "card.yaml")
    code, out = sign(capsys, world, card, tmp_path / "receipts")
    assert code == 0, out
    code, out = cli(capsys, "verify", tmp_path / "receipts", "--trust-root", world["trust"])
    assert code == 0, out


def test_sign_refuses_an_item_not_in_the_signed_run(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = write(
        demo_card(lambda c: c["failure_modes"][2]["pack_items"].insert(1, "capitals-mc/cap-104")),
        tmp_path / "card.yaml",
    )
    code, out = sign(capsys, world, card, tmp_path / "receipts")
    assert code == 1
    assert f"{card}:$.failure_modes[2].pack_items[1]: item 'cap-104' is not in the signed run" in out
    assert "runs/capitals-mc/results.json" in out
    assert "fix: name only items" in out
    assert not (tmp_path / "receipts" / "smollm2-135m-distilled-24l@0.1.0").exists()


@pytest.mark.parametrize(
    ("edit", "where", "says"),
    [
        (
            lambda m: m.update(description="Drops to {capitals-mc.student.acc@variant=lower}."),
            "$.failure_modes[0].description",
            "slice 'variant=lower' is not in the run",
        ),
        (
            lambda m: m.update(evidence=[{"pack": "capitals-mc", "role": "student", "metric": "f1"}]),
            "$.failure_modes[0].evidence[0]",
            "metric 'f1' is not in the run",
        ),
        (
            lambda m: m.update(mitigation="See {capitals-mc.student@int4.acc}."),
            "$.failure_modes[0].mitigation",
            "no role or difference 'student@int4'",
        ),
        (
            lambda m: m.update(trigger="Any {capitals-mc.student.ece@variant=typo} question."),
            "$.failure_modes[0].trigger",
            "ece is recorded for all items only",
        ),
    ],
)
def test_sign_refuses_a_reference_the_signed_run_does_not_hold(
    world: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Any,
    where: str,
    says: str,
) -> None:
    card = write(demo_card(lambda c: edit(c["failure_modes"][0])), tmp_path / "card.yaml")
    code, out = sign(capsys, world, card, tmp_path / "receipts")
    assert code == 1, out
    assert f"{card}:{where}: " in out
    assert says in out


def test_a_pack_without_a_signed_run_is_not_evaluated_not_refused(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(card: dict[str, Any]) -> None:
        card["failure_modes"][0]["pack_items"].append("other-pack/item-1")
        card["failure_modes"][0]["description"] += " Elsewhere {other-pack.student.acc}."

    card = write(demo_card(edit), tmp_path / "card.yaml")
    code, out = sign(capsys, world, card, tmp_path / "receipts")
    assert code == 0, out


def _forge(bundle: Path, key: Path, edit: Any) -> None:
    """The publisher's key signs an edited card by hand (statement and card file agree): what sign refuses."""
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    card = statement["predicate"]["card"]
    edit(card)
    data = yaml.safe_dump(card).encode("utf-8")
    (bundle / "card.yaml").write_bytes(data)
    subject = next(s for s in statement["subject"] if s["name"] == "card.yaml")
    subject["digest"]["sha256"] = hashlib.sha256(data).hexdigest()
    payload = bytes(rfc8785.dumps(statement))
    (bundle / "receipt.json").write_bytes(
        sign_envelope(PAYLOAD_TYPE, payload, [load_private_key(key, b"pw")])
    )


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            lambda c: c["failure_modes"][1]["pack_items"].append("capitals-mc/cap-999"),
            "card $.failure_modes[1].pack_items[3]: item 'cap-999' is not in the signed run",
        ),
        (
            lambda c: c["failure_modes"][1].update(description="ECE 0.324 as typed."),
            "card $.failure_modes[1].description: typed-in number '0.324'",
        ),
        (
            lambda c: c["failure_modes"][1].update(mitigation="{capitals-mc.student.acc@domain=history}"),
            "card $.failure_modes[1].mitigation: {capitals-mc.student.acc@domain=history}: slice 'domain=",
        ),
    ],
)
def test_verify_fails_a_hand_signed_card_bound_to_nothing(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, says: str
) -> None:
    card = write(demo_card(), tmp_path / "card.yaml")
    assert sign(capsys, world, card, tmp_path / "receipts")[0] == 0
    bundle = tmp_path / "receipts" / "smollm2-135m-distilled-24l@0.1.0"
    _forge(bundle, world["key"], edit)
    code, out = cli(capsys, "verify", bundle, "--trust-root", world["trust"])
    assert code == 4, out
    assert "bindings" in out
    assert says in out
