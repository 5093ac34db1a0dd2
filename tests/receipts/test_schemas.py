"""Schema layer: every schema is valid 2020-12 with an $id and version; every violation is reported."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from receipts import schemas
from receipts.documents import load_document, parse_json, parse_yaml
from receipts.errors import InputError, SchemaError
from receipts.resources import schema_dir

ROOT = Path(__file__).parents[2]
CARDS = Path(__file__).parents[1] / "data" / "cards"


@pytest.mark.parametrize("path", sorted(schema_dir().glob("*.schema.json")), ids=lambda p: p.name)
def test_every_schema_is_valid_with_id_and_version(path):
    document = json.loads(path.read_text())
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"].startswith("https://receipts.dev/schema/")
    assert document["version"]


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "examples" / "card.yaml",
        ROOT / "examples" / "demo" / "smollm2-135m-instruct-q4_1.card.yaml",
        CARDS / "card_valid_minimal.yaml",
    ],
    ids=lambda p: p.name,
)
def test_good_cards_validate(path):
    _, card = load_document(path)
    assert schemas.detect_kind(card) == "card"
    schemas.validate(card, "card", file=path)


def test_missing_license_is_named_with_its_path_and_hint():
    path = CARDS / "card_missing_license.yaml"
    _, card = load_document(path)
    with pytest.raises(SchemaError) as caught:
        schemas.validate(card, "card", file=path)
    (violation,) = caught.value.violations
    assert violation.path == "$"
    assert "'license' is a required property" in violation.message
    assert violation.hint.startswith("add `license`")
    assert str(path) in caught.value.diagnostics()


def test_many_errors_are_all_reported_with_json_paths():
    path = CARDS / "card_many_errors.yaml"
    _, card = load_document(path)
    with pytest.raises(SchemaError) as caught:
        schemas.validate(card, "card", file=path)
    paths = {v.path for v in caught.value.violations}
    assert {
        "$.model.name",
        "$.model.version",
        "$.lineage",
        "$.lineage.base.parameters",
        "$.license.permissions.commercial_use",
        "$.failure_modes[0].severity",
        "$.task_boundary",
        "$.gate.min_retention",
    } <= paths
    assert len(caught.value.violations) >= 10
    typo = next(v for v in caught.value.violations if "not_claming" in v.message)
    assert "did you mean `not_claiming`" in typo.hint
    enum = next(v for v in caught.value.violations if v.path == "$.failure_modes[0].severity")
    assert '"critical"' in enum.hint


def test_bad_yaml_names_the_line():
    with pytest.raises(InputError) as caught:
        load_document(CARDS / "card_bad_yaml.yaml")
    assert caught.value.where.startswith("line 7")
    assert "card_bad_yaml.yaml:line 7" in caught.value.summary()


def test_duplicate_yaml_key_is_refused_with_its_line():
    with pytest.raises(InputError, match="duplicate key 'license'") as caught:
        load_document(CARDS / "card_duplicate_key.yaml")
    assert caught.value.where == "line 39"


def test_yaml_dates_stay_strings():
    assert parse_yaml(b"date: 2026-11-23\nat: 2026-11-23T10:00:00Z\n") == {
        "date": "2026-11-23",
        "at": "2026-11-23T10:00:00Z",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1, "a": 2}', "duplicate JSON key 'a'"),
        (b'\xef\xbb\xbf{"a": 1}', "byte-order mark"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b'{"a": ', "malformed JSON"),
        (b"[" * 100 + b"]" * 100, "nested deeper"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
        (b'{"a": "\xff"}', "not UTF-8"),
    ],
)
def test_strict_json(data, message):
    with pytest.raises(InputError, match=message):
        parse_json(data, file="x.json")


def test_detect_kind():
    assert schemas.detect_kind({"format": "receipts.trust-root/v1"}) == "trust-root"
    assert schemas.detect_kind({"payloadType": "x", "payload": "", "signatures": []}) == "receipt"
    assert schemas.detect_kind({"format": "nope"}) is None
    assert schemas.detect_kind([]) is None


def _patterns(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


@pytest.mark.parametrize("path", sorted(schema_dir().glob("*.schema.json")), ids=lambda p: p.name)
def test_anchored_patterns_end_where_the_text_ends(path):
    r"""`$` also matches before a final newline in Python's re (jsonschema's), not in ECMA-262's.

    `$(?!\n)` is the end of the text in both, so the CLI and a browser give one answer.
    """
    anchored = [p for p in _patterns(json.loads(path.read_text())) if "$" in p]
    for pattern in anchored:
        assert pattern.startswith("^"), pattern
        assert pattern.endswith("$(?!\\n)"), pattern
        assert pattern.count("$") == 1, pattern


# Classes whose meaning differs between Python's re (jsonschema, the CLI) and ECMA-262 (JSON Schema's own
# dialect, a browser) on text beyond ASCII: \s (U+001C-U+001F and U+0085 in Python only, U+FEFF in
# ECMA-262 only), \d and \w (any Unicode digit or letter in Python, ASCII in ECMA-262), \b by \w.
ENGINE_DEPENDENT = frozenset("sSwWdDbB")


def escaped_letters(pattern: str) -> list[str]:
    r"""What follows each escaping backslash (``\\s``, an escaped backslash then an s, gives ``\``)."""
    found, escaped = [], False
    for char in pattern:
        if escaped:
            found.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
    return found


def test_escaped_letters_reads_escaped_backslashes():
    assert escaped_letters(r"^[^\s]+$") == ["s"]
    assert escaped_letters(r"^[^/\\][^\\]*$(?!\n)") == ["\\", "\\", "n"]
    assert escaped_letters(r"\\s") == ["\\"]


@pytest.mark.parametrize("path", sorted(schema_dir().glob("*.schema.json")), ids=lambda p: p.name)
def test_no_pattern_uses_a_class_python_and_ecma_262_read_differently(path):
    r"""`\s \S \w \W \d \D \b \B` are spelt out as explicit classes (white space: formats._base.SPACE)."""
    for pattern in _patterns(json.loads(path.read_text())):
        assert not ENGINE_DEPENDENT & set(escaped_letters(pattern)), pattern


# Strings each pattern matches, then the same with a character the two engines could read differently
# (white space to one of them only, a non-ASCII digit or letter, a line break) appended, prepended and
# inserted; Python's re.search and ECMA-262's RegExp(pattern, "u").test must give one answer on each.
PATTERN_SEEDS = [
    "openai:gpt-4o-2024-08-06",
    "sha256:" + "a" * 64,
    "a" * 64,
    "2026-11-23T10:00:00Z",
    "2026-11-23",
    "tiny-mc",
    "1.0.0",
    "en-GB",
    "Apache-2.0 OR MIT",
    "student@int8-dynamic",
    "data/items.jsonl",
    "models/x/",
    "models/x/receipt.json",
    "runs/tiny-mc/results.json",
    "clarify_pattern",
    "-----BEGIN PUBLIC KEY-----",
    "hf/Model-1",
]
ODD_CHARACTERS = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
    "\u0660\uff10\u00e9\u212a\u017f_\x00\x7f"
)


def pattern_probes() -> list[str]:
    probes = list(PATTERN_SEEDS)
    for seed in PATTERN_SEEDS:
        middle = len(seed) // 2
        for char in ODD_CHARACTERS:
            probes += [seed + char, char + seed, seed[:middle] + char + seed[middle:]]
    return probes


def ecma_262_answers(patterns: list[str], probes: list[str]) -> list[list[bool]]:
    """Node's answers: for each pattern, RegExp(pattern, "u").test(probe) for each probe."""
    script = (
        'const [patterns, probes] = JSON.parse(require("fs").readFileSync(0, "utf8"));'
        'process.stdout.write(JSON.stringify(patterns.map(p => { const re = new RegExp(p, "u");'
        " return probes.map(s => re.test(s)); })));"
    )
    node = shutil.which("node")
    assert node is not None
    stdin = json.dumps([patterns, probes])
    done = subprocess.run([node, "-e", script], input=stdin, capture_output=True, text=True, check=True)
    answers: list[list[bool]] = json.loads(done.stdout)
    return answers


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js for an ECMA-262 regex engine")
def test_every_pattern_gives_python_and_ecma_262_one_answer():
    patterns = sorted(
        {p for path in schema_dir().glob("*.schema.json") for p in _patterns(json.loads(path.read_text()))}
    )
    probes = pattern_probes()
    found = []
    for pattern, ecma in zip(patterns, ecma_262_answers(patterns, probes), strict=True):
        for probe, ecma_match in zip(probes, ecma, strict=True):
            if bool(re.search(pattern, probe)) != ecma_match:
                found.append(f"{pattern}: {probe!r}: Python {not ecma_match}, ECMA-262 {ecma_match}")
    assert not found, f"{len(found)} disagreements:\n" + "\n".join(found[:40])


GOLDEN_STATEMENT = Path(__file__).parents[1] / "data" / "golden_statement.json"


@pytest.mark.parametrize(
    ("where", "keys", "value"),
    [
        ("$.subject[0].digest.sha256", ("subject", 0, "digest", "sha256"), None),
        ("$.predicate.signer.keyids[0]", ("predicate", "signer", "keyids", 0), None),
        ("$.predicate.model.name", ("predicate", "model", "name"), None),
        ("$.predicate.model.version", ("predicate", "model", "version"), None),
        ("$.predicate.weights.root", ("predicate", "weights", "root"), None),
        ("$.predicate.runs[0].pack.id", ("predicate", "runs", 0, "pack", "id"), None),
        ("$.predicate.issuedAt", ("predicate", "issuedAt"), None),
        ("$.predicate.issuedAt", ("predicate", "issuedAt"), "2026-02-30T12:00:00Z"),
    ],
)
def test_a_statement_field_with_a_final_newline_is_refused(where, keys, value):
    from receipts.formats import Statement

    statement = json.loads(GOLDEN_STATEMENT.read_bytes())
    schemas.validate(statement, "statement")
    node = statement
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = node[keys[-1]] + "\n" if value is None else value
    with pytest.raises(SchemaError) as caught:
        schemas.validate(statement, "statement")
    assert {v.path for v in caught.value.violations} == {where}
    with pytest.raises(SchemaError) as caught:
        Statement.parse(statement)
    assert {v.path for v in caught.value.violations} == {where}
