"""Reproduction statements on the card pages: shown when they verify against a pinned reproducer key."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.keys import PrivateKey, generate, write_keypair
from receipts.reproduction import reproduction_statement, sign_reproduction
from receipts.sign import sign_receipt
from receipts.trust import load_trust_root, new_root
from receipts.verify import VerifiedReceipt, verify_receipt

ROOT = Path(__file__).parents[2]
NAME = "smollm2-135m-distilled-24l"


def _outcome(k: int, n: int) -> dict[str, Any]:
    """What `runner.eval.rerun.Reproduction.as_json` gives, for a rerun that was not run here."""
    item = {"pack": "tiny-mc", "item": "q1", "variant": "original", "reproduced": True}
    return {
        "role": "student",
        "identity": {"spec": "hf:models/student", "digest": "sha256:" + "a" * 64},
        "same_model": True,
        "packs": {"tiny-mc": "sha256:" + "b" * 64},
        "asked": n,
        "seed": 0,
        "n": n,
        "reproduced": k,
        "mode": "exact",
        "tolerance": {"atol": "0", "rtol": "0"},
        "label": "bit-exact",
        "host": {"threads": 1},
        "items": [{**item, "max_abs_delta": "0", "problems": []}] * n,
    }


def _statement(verified: VerifiedReceipt, key: PrivateKey, into: Path, *, k: int = 20, n: int = 20) -> Path:
    when = datetime(2026, 12, 6, 12, tzinfo=UTC)
    statement = reproduction_statement(
        verified, _outcome(k, n), name="lab", keyid=key.public.keyid, issued_at=when
    )
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_bytes(sign_reproduction(statement, key))
    return into


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A signed receipt, its publisher's trust root, and a reproducer's key pair."""
    tmp = tmp_path_factory.mktemp("reproductions")
    publisher, lab = generate(), generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [publisher.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp / "receipts"
    sign_receipt(ROOT / "examples" / "card.yaml", [publisher], receipts)
    write_keypair(lab, tmp / "keys" / "lab", b"pw")
    verified = verify_receipt(receipts / f"{NAME}@0.1.0", load_trust_root(trust))
    return {
        "tmp": tmp,
        "trust": trust,
        "receipts": receipts,
        "lab": lab,
        "publisher": publisher,
        "verified": verified,
    }


def _pin(world: dict[str, Any], name: str = "lab") -> str:
    """``--reproducer-key NAME=PUB`` for the lab's key."""
    return f"{name}={world['tmp'] / 'keys' / 'lab.pub.pem'}"


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_card_page_shows_a_verified_reproduction_and_publishes_it(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statement = _statement(world["verified"], world["lab"], tmp_path / "repro" / "lab.json")
    code, text = cli(
        capsys, "build", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "site",
        "--reproductions", statement.parent, "--reproducer-key", _pin(world),
    )  # fmt: skip
    assert code == 0, text
    page_dir = tmp_path / "site" / "models" / NAME / "0.1.0"
    html = (page_dir / "index.html").read_text("utf-8")
    assert "reproduced by <strong>lab</strong> on 2026-12-06: <strong>20/20</strong>, bit-exact ·" in html
    published = list(page_dir.glob("reproduction-*.json"))
    assert [p.read_bytes() for p in published] == [statement.read_bytes()]
    assert published[0].name in html
    code, text = cli(capsys, "verify", tmp_path / "site", "--trust-root", world["trust"])
    assert code == 0, text


def test_a_catalog_without_reproductions_shows_none(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = cli(
        capsys, "render", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "d"
    )
    assert code == 0, text
    page = (tmp_path / "d" / "models" / NAME / "0.1.0" / "index.md").read_text("utf-8")
    assert "reproduced by" not in page


@pytest.mark.parametrize(
    ("signer", "key", "message"),
    [
        ("lab", "other", "no pinned reproducer key verifies it"),
        ("publisher", "publisher", "is one of the publisher's keys"),
        ("lab", None, "--reproductions needs --reproducer-key NAME=PUB"),
    ],
)
def test_a_reproduction_that_does_not_verify_stops_the_render(
    world: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    signer: str,
    key: str | None,
    message: str,
) -> None:
    statement = _statement(world["verified"], world[signer], tmp_path / "repro" / "r.json")
    keys = {"other": generate(), "publisher": world["publisher"]}
    pins = []
    if key is not None:
        write_keypair(keys[key], tmp_path / key, b"pw")
        pins = ["--reproducer-key", f"{key}={tmp_path / f'{key}.pub.pem'}"]
    code, text = cli(
        capsys, "render", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "d",
        "--reproductions", statement.parent, *pins,
    )  # fmt: skip
    assert code in (2, 4), text
    assert message in text
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_a_statement_about_no_receipt_of_the_catalog_is_refused(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    sign_receipt(
        ROOT / "examples" / "card.yaml",
        [world["publisher"]],
        other,
        issued_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    verified = verify_receipt(other / f"{NAME}@0.1.0", load_trust_root(world["trust"]))
    statement = _statement(verified, world["lab"], tmp_path / "repro" / "r.json")
    code, text = cli(
        capsys, "render", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "d",
        "--reproductions", statement.parent, "--reproducer-key", _pin(world),
    )  # fmt: skip
    assert code == 4, text
    assert "not a reproduction statement about a receipt of this catalog" in text


def test_the_page_names_the_reproducer_as_the_catalog_pins_it_not_as_the_statement_claims(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A statement's own name is whatever its signer typed: the page leads with the operator's name."""
    when = datetime(2026, 12, 6, 12, tzinfo=UTC)
    key = world["lab"]
    claimed = reproduction_statement(
        world["verified"], _outcome(20, 20), name="ACME Labs", keyid=key.public.keyid, issued_at=when
    )
    folder = tmp_path / "repro"
    folder.mkdir()
    (folder / "r.json").write_bytes(sign_reproduction(claimed, key))
    pub = world["tmp"] / "keys" / "lab.pub.pem"
    code, text = cli(
        capsys, "render", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "d",
        "--reproductions", folder, "--reproducer-key", f"Example University Lab={pub}",
    )  # fmt: skip
    assert code == 0, text
    page = (tmp_path / "d" / "models" / NAME / "0.1.0" / "index.md").read_text("utf-8")
    assert "reproduced by <strong>Example University Lab</strong> (the name this catalog pins" in page
    assert "self-declared name: “ACME Labs”" in page
    assert "<strong>ACME Labs</strong>" not in page


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("{pub}", "--reproducer-key takes NAME=PUB"),
        ("={pub}", "NAME and PUB must both be given"),
        ("lab=", "NAME and PUB must both be given"),
        ("la\x1b[31mb={pub}", "without control characters"),
        ("x" * 101 + "={pub}", "1 to 100 characters"),
    ],
)
def test_a_reproducer_key_without_an_honest_name_is_refused(
    world: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    given: str,
    message: str,
) -> None:
    pub = world["tmp"] / "keys" / "lab.pub.pem"
    statement = _statement(world["verified"], world["lab"], tmp_path / "repro" / "r.json")
    for command in ("render", "build"):
        code, text = cli(
            capsys, command, world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / command,
            "--reproductions", statement.parent, "--reproducer-key", given.format(pub=pub),
        )  # fmt: skip
        assert code == 2, text
        assert message in text
        assert "Traceback" not in text
        assert not (tmp_path / command).exists()


def test_one_key_pinned_under_two_names_is_refused(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = world["tmp"] / "keys" / "lab.pub.pem"
    statement = _statement(world["verified"], world["lab"], tmp_path / "repro" / "r.json")
    code, text = cli(
        capsys, "render", world["receipts"], "--trust-root", world["trust"], "--out", tmp_path / "d",
        "--reproductions", statement.parent, "--reproducer-key", f"Lab A={pub}",
        "--reproducer-key", f"Lab B={pub}",
    )  # fmt: skip
    assert code == 2, text
    assert "is pinned under two names: 'Lab A' and 'Lab B'" in text


@pytest.mark.parametrize(
    ("where", "value"),
    [
        ("name", "lab\x1b]0;pwned\x07"),
        ("label", "bit-exact\x1b[2J"),
        ("item", "q1\r\x1b[32mreproduced 20/20"),
        ("label", "bit-exact\x9b31m"),  # C1 CSI
    ],
)
def test_a_statement_with_control_characters_is_refused_by_schema_and_model(
    world: dict[str, Any], where: str, value: str
) -> None:
    from jsonschema import Draft202012Validator

    from receipts.errors import SchemaError
    from receipts.formats import ReproductionStatement

    key = world["lab"]
    outcome = _outcome(1, 1)
    if where == "label":
        outcome["label"] = value
    if where == "item":
        outcome["items"] = [{**outcome["items"][0], "item": value}]
    name = value if where == "name" else "lab"
    when = datetime(2026, 12, 6, 12, tzinfo=UTC)
    statement = reproduction_statement(
        world["verified"], outcome, name=name, keyid=key.public.keyid, issued_at=when
    )
    schema = json.loads((ROOT / "schema" / "reproduction.schema.json").read_bytes())
    assert not Draft202012Validator(schema).is_valid(statement)
    with pytest.raises(SchemaError, match="reproduction statement"):
        sign_reproduction(statement, key)
    with pytest.raises(SchemaError):
        ReproductionStatement.parse(statement)


def test_a_statement_lists_at_most_max_items_and_rerun_refuses_more(
    world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from receipts.errors import SchemaError
    from receipts.formats.reproduction import MAX_ITEMS

    key = world["lab"]
    when = datetime(2026, 12, 6, 12, tzinfo=UTC)
    big = reproduction_statement(
        world["verified"],
        _outcome(MAX_ITEMS + 1, MAX_ITEMS + 1),
        name="lab",
        keyid=key.public.keyid,
        issued_at=when,
    )
    with pytest.raises(SchemaError):
        sign_reproduction(big, key)
    bundle = world["receipts"] / f"{NAME}@0.1.0"
    code, text = cli(
        capsys,
        "verify",
        bundle,
        "--trust-root",
        world["trust"],
        "--rerun",
        MAX_ITEMS + 1,
        "--model",
        "fake:s",
    )
    assert code == 2, text
    assert f"--rerun N must be at most {MAX_ITEMS}" in text


def test_verify_reproduction_prints_what_the_schema_lets_through_escaped(
    world: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A right-to-left override passes the schema (it is not a control character) but not to the terminal."""
    key = world["lab"]
    outcome = {**_outcome(20, 20), "label": "bit-exact \u202eTIXE"}
    when = datetime(2026, 12, 6, 12, tzinfo=UTC)
    statement = reproduction_statement(
        world["verified"], outcome, name="lab [bold]\u2067", keyid=key.public.keyid, issued_at=when
    )
    path = tmp_path / "r.json"
    path.write_bytes(sign_reproduction(statement, key))
    code, text = cli(
        capsys, "verify-reproduction", path, "--receipt", world["receipts"] / f"{NAME}@0.1.0",
        "--trust-root", world["trust"], "--reproducer-key", world["tmp"] / "keys" / "lab.pub.pem",
    )  # fmt: skip
    assert code == 0, text
    assert "\u202e" not in text
    assert "\u2067" not in text
    assert "bit-exact \\u202eTIXE" in text
    assert "'lab [bold]\\u2067'" in text


def test_shown_escapes_control_and_bidi_characters_and_markup() -> None:
    from receipts.cli.app import shown

    assert shown("a\x1b[31m\x85\u202eb [red]x[/red]") == "a\\x1b[31m\\x85\\u202eb \\[red]x\\[/red]"
    assert shown("plain ünïcode") == "plain ünïcode"


def test_a_statement_names_the_model_by_digest_and_label_never_by_the_reproducers_local_path(
    world: dict[str, Any],
) -> None:
    key = world["lab"]
    home = "/home/alice/private-models/student"
    identity = {
        "spec": f"hf:{home}",
        "kind": "hf",
        "digest": "sha256:" + "a" * 64,
        "compute_dtype": "float32",
        "extra": {"source": f"{home}/replay.jsonl"},
    }
    outcome = {**_outcome(1, 1), "identity": identity}
    when = datetime(2026, 12, 6, 12, tzinfo=UTC)
    statement = reproduction_statement(
        world["verified"], outcome, name="lab", keyid=key.public.keyid, issued_at=when
    )
    model = statement["predicate"]["model"]
    assert model == {
        "kind": "hf",
        "digest": "sha256:" + "a" * 64,
        "compute_dtype": "float32",
        "label": "hf weights",
    }
    payload = base64.b64decode(json.loads(sign_reproduction(statement, key))["payload"])
    assert b"alice" not in payload
    assert "alice" not in json.dumps(statement)
