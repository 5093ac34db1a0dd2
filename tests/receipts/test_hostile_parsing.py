"""Hostile input is refused cheaply, with one clear message: YAML bombs, huge documents, template bombs.

Bombs run in a child process whose address space is capped (`RLIMIT_AS`), so a regression fails the
test with a MemoryError instead of taking the machine down; the others check the allocation peak.
"""

import json
import re
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from receipts import documents
from receipts.cli import main
from receipts.documents import MAX_DEPTH, MAX_DOCUMENT_BYTES, load_document, parse_json, parse_yaml
from receipts.errors import InputError, SchemaError
from runner.eval.loader import load_pack
from runner.eval.prompts import materialise
from runner.eval.templates import MAX_TEMPLATE_OUTPUT

ROOT = Path(__file__).parents[2]
HOSTILE = Path(__file__).parents[1] / "data" / "hostile"
MINIMAL = Path(__file__).parents[1] / "data" / "pack_minimal"
ADDRESS_SPACE = 768 * 2**20  # `receipts validate` peaks near 300 MiB of address space; a bomb needs GiBs
PATIENCE_S = 10  # generous: bombs are refused in milliseconds; they ran 50 s to hours before


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def run_capped(*argv):
    """The CLI in a child process with its address space capped: exit code, output, seconds."""
    child = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE}))
        from receipts.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", child, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.fixture
def peak_mb():
    """The peak of Python allocations made inside the test, in MB (read it after the work)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    yield lambda: tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()


# --- YAML ------------------------------------------------------------------------------------------


def test_billion_laughs_card_is_refused_at_its_first_anchor():
    path = HOSTILE / "card_billion_laughs.yaml"
    code, text, seconds = run_capped("validate", path)
    assert code == 1, text
    assert f"{path}:line 8: YAML anchors and aliases are not allowed in receipts documents" in text
    assert "fix: write the values out in full" in text
    assert "Traceback" not in text
    assert seconds < PATIENCE_S


@pytest.mark.parametrize(
    ("name", "line"),
    [("card_alias_merge_key.yaml", 8), ("card_anchor_only.yaml", 2), ("card_billion_laughs.yaml", 8)],
)
def test_anchors_and_aliases_are_refused_with_their_line(capsys, peak_mb, name, line):
    code, text = run(capsys, "validate", HOSTILE / name)
    assert code == 1
    assert f"{name}:line {line}: YAML anchors and aliases are not allowed in receipts documents" in text
    assert peak_mb() < 50


def test_the_pure_python_loader_refuses_the_same(monkeypatch):
    monkeypatch.setattr(documents, "_FAST", None)  # as on a PyYAML without libyaml
    with pytest.raises(InputError, match="anchors and aliases are not allowed") as caught:
        load_document(HOSTILE / "card_billion_laughs.yaml")
    assert caught.value.where == "line 8"
    with pytest.raises(InputError, match=f"nested deeper than {MAX_DEPTH} levels"):
        parse_yaml(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 1),
        (b"format: receipts.card/v1\n" + b"".join(b"  " * n + b"k:\n" for n in range(100)) + b"  v\n", 65),
    ],
    ids=["flow", "block"],
)
def test_deep_yaml_is_refused_not_crashed(capsys, tmp_path, peak_mb, data, line):
    path = tmp_path / "card_deep_nesting.yaml"
    path.write_bytes(data)
    started = time.monotonic()
    code, text = run(capsys, "validate", path)
    assert code == 1
    assert f"card_deep_nesting.yaml:line {line}: YAML nested deeper than {MAX_DEPTH} levels" in text
    assert time.monotonic() - started < PATIENCE_S
    assert peak_mb() < 50


def test_yaml_as_deep_as_the_limit_still_loads():
    deepest = b"[" * (MAX_DEPTH - 1) + b"1" + b"]" * (MAX_DEPTH - 1)  # MAX_DEPTH levels, the 1 included
    assert parse_yaml(deepest) == parse_json(deepest)


@pytest.mark.parametrize(
    "data", [b"a: " + b"1" * 5000, b"a: " + b"1:" * 20_000 + b"1"], ids=["decimal", "base-60"]
)
def test_overlong_yaml_integers_are_refused(data):
    # Base-60 integers convert in quadratic time; decimal ones past 4,300 digits raise ValueError.
    with pytest.raises(InputError, match=r"integer written with .* characters is too long") as caught:
        parse_yaml(data, file="x.yaml")
    assert caught.value.where == "line 1"
    assert caught.value.hint == "quote it to keep it as text"


def test_stars_and_ampersands_in_text_are_not_anchors():
    data = b"a: '**bold** R&D'\nb: \"*not an alias*\"\nc: plain & simple\n"
    assert parse_yaml(data) == {"a": "**bold** R&D", "b": "*not an alias*", "c": "plain & simple"}


# --- size ------------------------------------------------------------------------------------------


def test_a_document_over_the_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "card_too_large.yaml"
    with path.open("wb") as handle:
        handle.truncate(MAX_DOCUMENT_BYTES + 1)  # sparse: nothing is written, nothing must be read
    with pytest.raises(InputError) as caught:
        load_document(path, what="card")
    assert caught.value.file == str(path)
    assert caught.value.message == (
        f"card is {MAX_DOCUMENT_BYTES + 1:,} bytes, over the {MAX_DOCUMENT_BYTES:,}-byte limit"
    )


@pytest.mark.parametrize(("parse", "kind"), [(parse_yaml, "YAML"), (parse_json, "JSON")])
def test_parsers_take_a_byte_limit(parse, kind):
    with pytest.raises(InputError, match=f"{kind} document is 13 bytes, over the 12-byte limit") as caught:
        parse(b'{"a": "1234"}', file="x.doc", limit=12)
    assert caught.value.file == "x.doc"
    assert parse(b'{"a": "1234"}', limit=None) == {"a": "1234"}


def test_a_legitimate_card_and_the_bundled_packs_still_validate(capsys):
    packs = sorted(p for p in (ROOT / "packs").iterdir() if (p / "pack.yaml").is_file())
    assert packs
    code, text = run(capsys, "validate", ROOT / "examples" / "card.yaml", *packs)
    assert code == 0, text


# --- templates -------------------------------------------------------------------------------------


def test_template_bomb_is_refused_naming_pack_yaml_and_the_line():
    path = HOSTILE / "pack_template_bomb"
    code, text, seconds = run_capped("validate", path)
    assert code == 1, text
    assert f"{path / 'pack.yaml'}:$.prompt, template line 2: a template is refused:" in text
    assert "`*` would build 3,000,000,000 characters or items" in text
    assert "write the text out instead of computing it" in text
    assert "Traceback" not in text
    assert seconds < PATIENCE_S


@pytest.mark.parametrize(
    ("name", "message"),
    [
        # ten references to a 999,999-character string, nested three deep: 1.15 GB once `str()` ran
        ("pack_template_shared_reference_bomb", "a list, tuple or dict would hold more than 1,000,000"),
        ("pack_template_batch_bomb", "the `batch` filter's linecount of 300,000,000 is over the 10,000"),
        ("pack_template_slice_bomb", "the `slice` filter's slices of 30,000,000 is over the 10,000"),
    ],
)
def test_template_bombs_that_cost_gigabytes_are_refused_in_milliseconds(name, message):
    path = HOSTILE / name
    code, text, seconds = run_capped("validate", path)
    assert code == 1, text
    assert f"{path / 'pack.yaml'}:$.prompt, template line 2: a template is refused: {message}" in text
    assert "Traceback" not in text
    assert seconds < PATIENCE_S


@pytest.mark.parametrize(
    ("name", "where", "message"),
    [
        ("pack_template_pow_bomb", "$.variants[0].template, template line 2", "integer of more than"),
        ("pack_template_loop_bomb", "$.prompt, template line 1", "loop steps and calls"),
    ],
)
def test_template_bombs_are_one_input_error(capsys, peak_mb, name, where, message):
    started = time.monotonic()
    code, text = run(capsys, "validate", HOSTILE / name)
    assert code == 1
    assert f"{HOSTILE / name / 'pack.yaml'}:{where}: a template is refused: " in text
    assert message in text
    assert text.count("a template is refused") == 1  # one error, not one per item
    assert time.monotonic() - started < PATIENCE_S
    assert peak_mb() < 50


def test_template_syntax_error_names_pack_yaml_and_the_line(capsys):
    code, text = run(capsys, "validate", HOSTILE / "pack_template_syntax_error")
    assert code == 3  # one problem of the pack's, listed with its JSON path like every other
    assert f"{HOSTILE / 'pack_template_syntax_error' / 'pack.yaml'}: not a valid pack: 1 problem" in text
    assert "$.prompt: Jinja2 syntax error on template line 2: unexpected '}'" in text
    assert "Traceback" not in text


def write_pack(folder: Path, template: str) -> Path:
    spec = (MINIMAL / "pack.yaml").read_text().replace('"Question: {{ question }}\\nAnswer:"', template)
    (folder / "data").mkdir(parents=True)
    (folder / "pack.yaml").write_text(spec)
    (folder / "data" / "items.jsonl").write_text((MINIMAL / "data" / "items.jsonl").read_text())
    return folder


def test_a_template_nested_too_deeply_to_compile_is_a_problem_not_a_crash(capsys, tmp_path):
    folder = write_pack(tmp_path / "pack", json.dumps("{{ " + "(" * 300 + "question" + ")" * 300 + " }}"))
    code, text = run(capsys, "validate", folder)
    assert code == 3
    assert "$.prompt: the template is nested too deeply to compile" in text
    assert "Traceback" not in text


SHARED = "{{% set a = 'x' * 999999 %}}{{% set b = [a] %}}{}"  # `a` is held twice below: 2 MB of text
BLOCK = "{}{{% for i in range(1001) %}}" + "x" * 1000 + "{{% endfor %}}{}"  # 1,001,000 characters
DOUBLING = "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s OP ns.s %}{% endfor %}"
EXPONENTIAL = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (DOUBLING.replace("OP", "~"), "`~`"),
        (DOUBLING.replace("OP", "+"), "`+`"),
        ("{{ ['x' * 100000] * 1000000 }}", "`*`"),
        ("{{ 'x'.ljust(3000000000) }}", "str.ljust()"),
        ("{{ 'x' | center(3000000000) }}", "`center` filter"),
        ("{{ '%3000000000s' % question }}", "`%`"),
        ("{{ '%.3000000000f' | format(1.5) }}", "`format` filter"),
        ("{{ '{:>{}}'.format(question, 3000000000) }}", "str.format()"),
        ("{{ ('x' * 100000) | replace('x', 'y' * 100000) }}", "`replace` filter"),
        ("{{ ('y' * 100000).join(['x'] * 100000) }}", "str.join()"),
        ("{{ ('y' * 999999).join(range(10000) | map('string')) }}", "str.join()"),  # an iterator
        ("{{ range(10000) | map('string') | join('y' * 999999) }}", "`join` filter"),
        ("{{ (['x' * 1000] * 900) | replace('x', 'y' * 1000) }}", "`replace` filter"),  # a list's text
        ("{{ ['%999999999s'] | format('x') }}", "`format` filter"),
        ("{{ range(3000000000) | list }}", "range() of 3,000,000,000 numbers"),
        (EXPONENTIAL, "loop steps and calls"),
        ("{% for i in range(10000) %}{{ 'x' * 999 }}{% endfor %}", "prompt would be longer than"),
        ("{% for i in range(1000) %}{% set s = 'x' * 999999 %}{% endfor %}", "characters in all"),
        # a value is counted each time it is held, and its text bounded before `str()` renders it
        (SHARED.format("{{ [b, b] }}"), "a list, tuple or dict would hold more than 1,000,000"),
        (SHARED.format("{{ (b, b) }}"), "a list, tuple or dict would hold more than 1,000,000"),
        (SHARED.format("{{ {'x': b, 'y': b} }}"), "a list, tuple or dict would hold more than 1,000,000"),
        (SHARED.format("{% set n = namespace(x=b, y=b) %}{{ [n] }}"), "would hold more than 1,000,000"),
        ("{{ [''] * 300000 }}", "an output would render as more than 1,000,000 characters"),
        ("{{ ([''] * 300000) | string }}", "the `string` filter's value would render as more than"),
        ("{{ ([''] * 300000) | replace('a', 'b') }}", "the `replace` filter's value would render as more"),
        ("{{ ([''] * 300000) ~ '' }}", "`~`"),
        ("{{ '%s' % ([''] * 300000,) }}", "`%`"),
        ("{{ '{}'.format([''] * 300000) }}", "str.format()"),
        ("{{ [[''] * 300000] | join }}", "`join` filter"),
        # a buffer (a macro's, a `{% set %}` block's) is joined only if its text fits
        (BLOCK.format("{% macro f() %}", "{% endmacro %}{{ f() | length }}"), "a block's text would build"),
        (BLOCK.format("{% set s %}", "{% endset %}{{ s | length }}"), "a block's text would build"),
        # filters that make as many items as they are asked for, and iterators drawn by a filter
        ("{{ [1] | batch(linecount=20000, fill_with=0) | list }}", "`batch` filter's linecount of 20,000"),
        ("{{ [1] | slice(slices=20000) | list }}", "`slice` filter's slices of 20,000"),
        ("{{ ([0] * 200000) | batch(1) | list | length }}", "loop steps and calls"),
    ],
)
def test_templates_cannot_build_more_than_a_prompt_needs(tmp_path, peak_mb, template, message):
    with pytest.raises(InputError, match="a template is refused") as caught:
        load_pack(write_pack(tmp_path / "pack", json.dumps(template)))
    assert message in caught.value.message
    assert caught.value.file == str(tmp_path / "pack" / "pack.yaml")
    assert caught.value.where.startswith("$.prompt")
    assert peak_mb() < 50


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% set l = [] %}{{ l.append(question) }}", "unsafe"),  # no growing a list across loop steps
        ("{{ lipsum(3) }}", "'lipsum' is undefined"),  # random text would make prompt digests vary
    ],
)
def test_templates_cannot_mutate_values_or_draw_random_text(tmp_path, template, message):
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path / "pack", json.dumps(template)))
    assert all(message in v.message for v in caught.value.violations)


def test_ordinary_template_features_still_render(tmp_path):
    template = (
        "{% set ns = namespace(seen=0) %}{% macro tag(x) %}<{{ x }}>{% endmacro %}"
        "{{ tag(question | upper) }}\n"
        "{% for c in choices if c %}{% set ns.seen = ns.seen + 1 %}{{ 'ABC'[loop.index0] ~ '. ' ~ c }}"
        " ({{ loop.index }}/{{ loop.length }}){% if not loop.last %}, {% endif %}{% endfor %}\n"
        "{{ '%s=%d' % ('n', ns.seen) }} {{ '{:>4}'.format(2 ** 3) }} {{ '-' * 3 }}"
        " {{ choices | join('|') | replace('|', '/') }}"
    )
    pack = load_pack(write_pack(tmp_path / "pack", json.dumps(template)))
    first = next(materialise(pack))
    assert first.prompt == (
        "<WHAT IS THE CAPITAL OF NORWAY?>\n"
        "A. Bergen (1/3), B. Oslo (2/3), C. Tromso (3/3)\n"
        "n=3    8 --- Bergen/Oslo/Tromso"
    )
    assert len(first.prompt) < MAX_TEMPLATE_OUTPUT


def test_ordinary_literals_outputs_and_blocks_still_render(tmp_path):
    template = (
        "{% set pair = (question, choices) %}{% set by = {'q': pair[0]} %}{% set s %}[{{ by.q }}]{% endset %}"
        "{{ s }} {{ [1, 2.5, none, true] }} {{ choices | batch(2, '-') | list }}"
        " {{ choices | slice(2) | list }}"
        "{% for a, b in [(1, 2)] %} {{ a ~ b }}{% endfor %}"
    )
    pack = load_pack(write_pack(tmp_path / "pack", json.dumps(template)))
    assert next(materialise(pack)).prompt == (
        "[What is the capital of Norway?] [1, 2.5, None, True]"
        " [['Bergen', 'Oslo'], ['Tromso', '-']] [['Bergen', 'Oslo'], ['Tromso']] 12"
    )


# --- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "number"),
    [
        ("card_infinite_cost_ratio.yaml", 55, ".inf"),
        ("card_nan_global_regression.yaml", 55, ".nan"),
        ("card_nan_ram.yaml", 47, ".nan"),
    ],
)
def test_a_card_with_a_number_that_is_not_finite_is_refused(capsys, name, line, number):
    # These validated as "ok", then `receipts sign` crashed: the gate compared against NaN and inf, and
    # RFC 8785 cannot canonicalise either.
    code, text = run(capsys, "validate", HOSTILE / name)
    assert code == 1
    assert f"{HOSTILE / name}:line {line}: {number} is not a finite number" in text
    assert "fix: numbers must be finite" in text


@pytest.mark.parametrize(
    "name", ["card_infinite_cost_ratio.yaml", "card_nan_global_regression.yaml", "card_nan_ram.yaml"]
)
def test_signing_a_card_with_a_number_that_is_not_finite_is_one_error(capsys, tmp_path, monkeypatch, name):
    monkeypatch.setenv("RECEIPTS_PASSPHRASE", "correct horse")
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "keygen", "--out", "keys/release")[0] == 0
    code, text = run(capsys, "sign", "--card", HOSTILE / name, "--key", "keys/release.key.pem", "--out", "r")
    assert code == 1
    assert "is not a finite number" in text
    assert "Traceback" not in text
    assert not (tmp_path / "r").exists()


def test_an_integer_too_large_for_a_float_is_refused_where_it_is() -> None:
    """10**400 is valid JSON and a Python int; the readers that turn it into a float would crash."""
    with pytest.raises(InputError) as caught:
        parse_json(b'{"gate": {"rules": [{"threshold": 1' + b"0" * 400 + b"}]}}", file="results.json")
    assert caught.value.where == "$.gate.rules[0].threshold"
    assert "… (401 characters) is not a finite number" in caught.value.summary()
    assert parse_json(b'{"seed": 18446744073709551615}') == {"seed": 2**64 - 1}  # big, yet a float holds it


def test_results_with_a_number_too_large_for_a_float_are_refused(capsys):
    # `1e999` is valid JSON that Python reads as inf; json's `parse_constant` hook never sees it.
    path = HOSTILE / "results_overflowing_float.json"
    code, text = run(capsys, "validate", path)
    assert code == 1
    assert f"{path}:$.summary.accuracy: 1e999 is not a finite number" in text
    assert "fix: numbers must be finite" in text


@pytest.mark.parametrize(
    ("data", "where", "number"),
    [(b'{"a": [1, -1E400]}', "$.a[1]", "-1E400"), (b'[{"b": 1e999, "c": 2e999}]', "$[0].b", "1e999")],
)
def test_json_numbers_that_overflow_are_refused_with_their_path(data, where, number):
    with pytest.raises(InputError, match=f"{number} is not a finite number") as caught:
        parse_json(data, file="x.json")
    assert caught.value.where == where
    assert caught.value.hint == "numbers must be finite"
    assert parse_json(b"[1e308, -0.0, 5e-324]") == [1e308, -0.0, 5e-324]


@pytest.mark.parametrize("fast", [True, False], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize("number", [".inf", "-.Inf", ".NaN", "1.0e+999"])
def test_yaml_numbers_that_are_not_finite_are_refused(monkeypatch, fast, number):
    if not fast:
        monkeypatch.setattr(documents, "_FAST", None)
    with pytest.raises(InputError, match=re.escape(f"{number} is not a finite number")) as caught:
        parse_yaml(f"a: 1\nb: [2.5, {number}]\n".encode(), file="x.yaml")
    assert caught.value.where == "line 2"
    assert parse_yaml(b"a: '.inf'\nb: 1.0e+300\n") == {"a": ".inf", "b": 1.0e300}


# --- a final newline after an anchored pattern -----------------------------------------------------
# Python's `$` also matches before a final "\n"; ECMA-262's (JSON Schema's dialect, verify.js) does not.
# The schemas' anchored patterns end in `$(?!\n)`, so the CLI refuses these as a browser would.

GOLDEN_STATEMENT = Path(__file__).parents[1] / "data" / "golden_statement.json"
VECTOR_CASES = Path(__file__).parents[1] / "vectors" / "cases"
NEWLINE_STATEMENTS = {  # fixture -> the keys to the one value given a final "\n", its JSON path
    "statement_subject_digest_newline.json": (
        ("subject", 0, "digest", "sha256"),
        "$.subject[0].digest.sha256",
    ),
    "statement_model_name_newline.json": (("predicate", "model", "name"), "$.predicate.model.name"),
}


@pytest.mark.parametrize(("name", "keys", "where"), [(n, *v) for n, v in NEWLINE_STATEMENTS.items()])
def test_a_statement_with_a_final_newline_in_an_anchored_field_fails_validate(capsys, name, keys, where):
    expected = json.loads(GOLDEN_STATEMENT.read_bytes())  # the fixture: the golden one, one "\n" added
    node = expected
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] += "\n"
    assert json.loads((HOSTILE / name).read_bytes()) == expected
    code, text = run(capsys, "validate", HOSTILE / name)
    assert code == 3, text
    assert f"{HOSTILE / name}: not a valid statement" in text
    assert f"{where}: '" in text
    assert "\\n' does not match '^" in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("case", "where"),
    [
        ("09-subject-digest-trailing-newline", "$.subject[0].digest.sha256"),
        ("09-model-name-trailing-newline", "$.predicate.model.name"),
        ("09-signer-keyid-trailing-newline", "$.predicate.signer.keyids[0]"),
    ],
)
def test_a_signed_receipt_with_such_a_statement_fails_verify_at_the_schema(capsys, case, where):
    """The committed vectors (tests/vectors/make_vectors.py): validly signed by trusted key A."""
    bundle = VECTOR_CASES / case / "vector-card@1.0.0"
    code, text = run(capsys, "validate", bundle / "receipt.json")
    assert code == 3, text
    assert f"{where}: '" in text
    root = Path(__file__).parents[1] / "vectors" / "roots" / "main.json"
    code, text = run(capsys, "verify", bundle, "--trust-root", root, "--json")
    assert code == 4, text
    checks = json.loads(text)["receipts"][0]["checks"]
    assert [(c["name"], c["status"]) for c in checks] == [
        ("envelope", "pass"),
        ("signatures", "pass"),
        ("statement", "pass"),
        ("schema", "fail"),
    ]
    assert f"first {where}: " in checks[-1]["detail"]
