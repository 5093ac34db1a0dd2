"""Eval packs: the issue's minimal pack, the bundled packs, digests, variants, answers and bad packs."""

import hashlib
import json
import os
import pickle
import re
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

from receipts import schemas
from receipts.cli import main
from receipts.digests import digest_weights
from receipts.documents import load_document
from receipts.errors import InputError, SchemaError, UsageError
from receipts.resources import schema_dir
from runner.eval.answers import (
    NORMALISERS,
    SQUAD_STEPS,
    BehaviourRules,
    behaviour_matches,
    extract_answer,
    extract_json,
    field_text,
    normalise,
    observed_behaviours,
)
from runner.eval.loader import load_pack
from runner.eval.packs import pack_digest
from runner.eval.perturbations import FILLERS, PERTURBATIONS, PerturbationSpec, perturb
from runner.eval.prompts import materialise

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
MINIMAL = DATA / "pack_minimal"
PACKS = ROOT / "packs"
BUNDLED = ["capitals-mc", "contract-clauses", "behaviour-probes"]


def write_pack(folder: Path, spec: str, items: list[dict] | str, name: str = "items.jsonl") -> Path:
    """A pack folder in tmp_path: pack.yaml from text, data/<name> from objects (or raw text)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "pack.yaml").write_text(spec, encoding="utf-8")
    text = items if isinstance(items, str) else "".join(json.dumps(i) + "\n" for i in items)
    (folder / "data" / name).write_text(text, encoding="utf-8")
    return folder


# --- the minimal pack ---------------------------------------------------------------------


def test_minimal_pack_loads_unchanged():
    # the pack, byte for byte: the format must accept it as written
    assert (MINIMAL / "pack.yaml").read_text() == (
        "id: tiny-mc\nversion: 1.0.0\nlicense: CC-BY-4.0\ntask: multiple_choice\n"
        'data: data/items.jsonl\nprompt: "Question: {{ question }}\\nAnswer:"\n'
        "choices: choices\ntarget: label\nslices: [difficulty]\n"
    )
    pack = load_pack(MINIMAL)
    assert (pack.id, pack.version, pack.license, pack.task) == (
        "tiny-mc",
        "1.0.0",
        "CC-BY-4.0",
        "multiple_choice",
    )
    assert [item.id for item in pack.items] == ["q1", "q2"]
    assert pack.variant_names == ("original",)
    assert pack.scorers == ("accuracy", "acc_norm")
    first, second = materialise(pack)
    assert first.prompt == "Question: What is the capital of Norway?\nAnswer:"
    assert first.prompt_sha256 == hashlib.sha256(first.prompt.encode("utf-8")).hexdigest()
    assert first.continuations == (" Bergen", " Oslo", " Tromso")
    assert (first.gold, second.gold) == (1, 2)
    assert dict(first.slices) == {"difficulty": "easy"}
    assert not first.critical
    assert first.expected == "answer"


def test_pack_yaml_path_and_folder_load_the_same_pack():
    assert load_pack(MINIMAL / "pack.yaml") == load_pack(MINIMAL)


def test_packs_and_prompt_instances_pickle():
    # worker processes and caches pickle them
    pack = load_pack(PACKS / "behaviour-probes")
    assert pickle.loads(pickle.dumps(pack)) == pack  # noqa: S301 - our own bytes
    instances = list(materialise(pack))
    assert pickle.loads(pickle.dumps(instances)) == instances  # noqa: S301 - our own bytes


def test_target_delimiter_is_configurable(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text() + 'target_delimiter: "\\n"\n'
    pack = load_pack(write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text()))
    assert next(materialise(pack)).continuations == ("\nBergen", "\nOslo", "\nTromso")


# --- bundled packs --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BUNDLED)
def bundled(request):
    return load_pack(PACKS / request.param)


def test_bundled_pack_size_slices_and_critical_cohort(bundled):
    assert len(bundled.items) >= 60
    assert bundled.license == "CC-BY-4.0"
    assert bundled.slices
    for name in bundled.slices:
        labels = {item.slices[name] for item in bundled.items}
        assert len(labels) >= 2, f"slice {name} has one label"
    assert 0 < len(bundled.critical_items) < len(bundled.items)
    assert (bundled.path / "README.md").is_file()


def test_bundled_pack_materialises_every_item_and_variant(bundled):
    instances = list(materialise(bundled))
    assert len(instances) == len(bundled.items) * len(bundled.variants)
    assert len(bundled.variants) >= 2
    by_item: dict[str, dict[str, str]] = {}
    for inst in instances:
        by_item.setdefault(inst.item_id, {})[inst.variant] = inst.prompt
        assert inst.prompt_sha256 == hashlib.sha256(inst.prompt.encode()).hexdigest()
    for prompts in by_item.values():
        for variant, prompt in prompts.items():
            if variant != "original":
                assert prompt != prompts["original"], variant


def test_capitals_and_contracts_have_rewording_or_format_and_perturbation_variants():
    for name in ("capitals-mc", "contract-clauses"):
        kinds = {v.kind for v in load_pack(PACKS / name).variants}
        assert {"perturbation"} < kinds
        assert kinds & {"rewording", "format"}


def test_capitals_items_are_four_choice_with_spread_gold():
    pack = load_pack(PACKS / "capitals-mc")
    assert all(item.choices is not None and len(item.choices) == 4 for item in pack.items)
    assert {item.gold for item in pack.items} == {0, 1, 2, 3}
    assert {item.slices["domain"] for item in pack.items} >= {"geography", "arithmetic", "science", "units"}


def test_contract_gold_has_exactly_the_fields_and_parties_occur_in_the_clause():
    pack = load_pack(PACKS / "contract-clauses")
    assert pack.task == "extract"
    assert pack.fields == ("clause_type", "party", "duration", "amount", "currency", "jurisdiction")
    for item in pack.items:
        assert tuple(item.gold) == pack.fields
        assert item.gold["clause_type"] == item.slices["clause_type"]
        if item.gold["party"] is not None:
            assert item.gold["party"] in item.fields["clause"]


def test_behaviour_probes_cover_every_behaviour():
    pack = load_pack(PACKS / "behaviour-probes")
    counts = {
        b: sum(item.expected == b for item in pack.items) for b in ("answer", "clarify", "abstain", "refuse")
    }
    assert min(counts.values()) >= 5, counts
    assert all(item.gold for item in pack.items if item.expected == "answer")
    assert {"abstain", "clarify", "refuse"} <= set(pack.scorers)
    assert pack.behaviour.abstain
    assert pack.behaviour.clarify
    assert pack.behaviour.refuse


def test_bundled_pack_yaml_validates_through_the_cli(capsys):
    assert main(["validate", str(PACKS / "capitals-mc" / "pack.yaml")]) == 0
    assert "valid pack capitals-mc@2.0.0" in capsys.readouterr().out
    assert main(["validate", *(str(PACKS / name) for name in BUNDLED)]) == 0


def test_broken_pack_fails_validate_with_exit_3(capsys):
    assert main(["validate", str(DATA / "pack_schema_errors" / "pack.yaml")]) == 3
    assert "$.task" in capsys.readouterr().err
    assert main(["validate", str(DATA / "pack_gold_out_of_range")]) == 3
    assert main(["validate", str(DATA / "pack_bad_jsonl")]) == 1  # malformed file, not a schema problem


# --- digest ---------------------------------------------------------------------------------------


def test_pack_digest_is_the_folder_digest_and_changes_with_an_item(tmp_path):
    pack = load_pack(PACKS / "capitals-mc")
    assert pack.digest == digest_weights(PACKS / "capitals-mc").root == pack_digest(PACKS / "capitals-mc")
    copy = tmp_path / "capitals-mc"
    shutil.copytree(PACKS / "capitals-mc", copy)
    assert load_pack(copy).digest == pack.digest
    items = copy / "data" / "items.jsonl"
    items.write_text(items.read_text().replace("Paris", "Lyon", 1))
    changed = load_pack(copy)
    assert changed.digest != pack.digest
    assert changed.digest == digest_weights(copy).root


def test_pack_with_a_symlink_is_refused(tmp_path):
    folder = tmp_path / "pack"
    shutil.copytree(MINIMAL, folder)
    (folder / "data" / "link.jsonl").symlink_to(folder / "data" / "items.jsonl")
    with pytest.raises(InputError, match="symbolic link"):
        load_pack(folder)


# --- perturbations --------------------------------------------------------------------------------

SENTENCE = "What is the capital of Norway? I do not know, it is cold and dark."


@pytest.mark.parametrize("kind", sorted(PERTURBATIONS))
def test_perturbation_is_deterministic_and_changes_text(kind):
    spec = PerturbationSpec(kind, seed=7)
    once = perturb(SENTENCE, spec, item_id="q1", variant=kind, field="question")
    assert once == perturb(SENTENCE, spec, item_id="q1", variant=kind, field="question")
    assert once != SENTENCE


@pytest.mark.parametrize("kind", ["typo", "whitespace", "filler"])
def test_random_perturbations_depend_on_seed_item_and_variant(kind):
    outputs = {
        perturb(SENTENCE, PerturbationSpec(kind, seed=seed), item_id=item, variant=variant)
        for seed in (0, 1, 2)
        for item in ("q1", "q2")
        for variant in ("a", "b")
    }
    assert len(outputs) > 3


def test_perturbations_do_not_depend_on_python_hash_seed():
    code = (
        "from runner.eval.perturbations import perturb, PerturbationSpec, PERTURBATIONS;"
        f"print([perturb({SENTENCE!r}, PerturbationSpec(k, seed=3), item_id='i', variant='v')"
        " for k in sorted(PERTURBATIONS)])"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1


def test_perturbation_golden_outputs():
    # pinned: a change here changes every published robustness number; update only on purpose
    typo = PerturbationSpec("typo", seed=0, rate=0.1)
    assert perturb(
        "What is the capital of France?", typo, item_id="cap-001", variant="typo", field="question"
    ) == ("Whta is the capital of France?")
    assert perturb("I do not know what is up", PerturbationSpec("contraction"), item_id="x", variant="v") == (
        "I don't know what's up"
    )


def test_typo_changes_about_rate_of_the_words():
    text = " ".join(
        ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"] * 2
    )
    out = perturb(text, PerturbationSpec("typo", rate=0.25), item_id="i", variant="v")
    changed = sum(a != b for a, b in zip(text.split(" "), out.split(" "), strict=True))
    assert changed == 5
    assert (
        perturb("2 + 2 = 4", PerturbationSpec("typo"), item_id="i", variant="v") == "2 + 2 = 4"
    )  # nothing to misspell


def test_case_modes():
    def case(mode, text="Which planet is closest to the Sun?"):
        return perturb(text, PerturbationSpec("case", mode=mode, rate=0.3), item_id="i", variant="v")

    assert case("lower") == "which planet is closest to the sun?"
    assert case("upper") == "WHICH PLANET IS CLOSEST TO THE SUN?"
    assert case("title", "don't stop me now") == "Don't Stop Me Now"
    randomised = case("random")
    assert randomised.lower() == "which planet is closest to the sun?"
    assert randomised != case(None)


def test_whitespace_changes_only_runs_of_spaces():
    text = "one two three\nfour five"
    out = perturb(text, PerturbationSpec("whitespace", rate=1.0), item_id="i", variant="v")
    assert out.split() == text.split()
    assert out.count("\n") == 1
    assert out != text
    assert perturb("word", PerturbationSpec("whitespace"), item_id="i", variant="v") == "word "


def test_contraction_contracts_expands_and_keeps_case():
    def contraction(text, mode=None):
        return perturb(text, PerturbationSpec("contraction", mode=mode), item_id="i", variant="v")

    assert (
        contraction("It is late and I do not care. Do not wait.") == "It's late and I don't care. Don't wait."
    )
    assert contraction("I can't, you won\u2019t, they're done") == "I cannot, you will not, they are done"
    assert contraction("We are here", mode="expand") == "We are here"
    assert contraction("We're here", mode="contract") == "We're here"
    assert contraction("WHAT IS THIS") == "WHAT'S THIS"


def test_filler_inserts_fillers_between_words():
    text = "please tell me the capital of Peru"
    out = perturb(text, PerturbationSpec("filler", rate=0.3), item_id="i", variant="v")
    assert out.startswith("please ")
    assert out != text
    remaining = out
    for filler in sorted(FILLERS, key=len, reverse=True):
        remaining = re.sub(rf"\b{filler}\b ", "", remaining)
    assert remaining == text


def test_perturbation_variants_touch_only_input_fields():
    pack = load_pack(PACKS / "capitals-mc")
    typo = list(materialise(pack, ["original", "typo"]))
    for original, noisy in zip(typo[::2], typo[1::2], strict=True):
        assert original.variant == "original"
        assert noisy.variant == "typo"
        assert original.prompt.startswith("Question: ")
        assert noisy.prompt.startswith("Question: ")
        assert noisy.prompt.endswith("\nAnswer:")
        assert (noisy.choices, noisy.gold, noisy.continuations) == (
            original.choices,
            original.gold,
            original.continuations,
        )
    item = pack.items[0]
    first = next(materialise(pack, ["original"], items=[item]))
    assert first.prompt == f"Question: {item.fields['question']}\nAnswer:"


def test_materialise_is_repeatable_and_rejects_unknown_variants():
    pack = load_pack(PACKS / "contract-clauses")
    assert [i.prompt_sha256 for i in materialise(pack)] == [i.prompt_sha256 for i in materialise(pack)]
    with pytest.raises(UsageError, match="no variant 'typo'") as caught:
        list(materialise(pack, ["original", "typo"]))
    assert "numbered" in caught.value.hint


def test_variants_without_the_original_are_refused_with_the_fix():
    """Fidelity and robustness gaps are measured against the original prompt: without it nothing derives."""
    pack = load_pack(PACKS / "capitals-mc")
    with pytest.raises(UsageError, match="the original prompt is needed") as caught:
        list(materialise(pack, ["reworded"]))
    assert caught.value.hint == "add it: --variant original --variant reworded"


# --- answers: normalisation, extraction, behaviours -----------------------------------------------


def squad_normalize_answer(s):
    """SQuAD v1.1's normalize_answer, as its evaluation script defines it (the reference)."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


@pytest.mark.parametrize(
    "text",
    [
        "The Eiffel Tower!",
        "  an  apple, a pear & the PLUM ",
        "It's 1,000 km.",
        "thea anthem",
        "(a) <b> $5 ~ ^",
    ],
)
def test_squad_steps_match_squads_normalize_answer(text):
    assert normalise(text, SQUAD_STEPS) == squad_normalize_answer(text)


def test_normalisation_steps_by_hand():
    assert normalise("The  Cat, sat!", SQUAD_STEPS) == "cat sat"
    assert normalise("\uff30\uff41\uff52\uff49\uff53", ["nfkc"])  # fullwidth "Paris" == "Paris"
    assert normalise("\n\n  Paris\nis the answer", ["first_line"]) == "Paris"
    assert normalise("“Rome” — of course…", ["strip_punctuation", "collapse_whitespace"]) == "Rome of course"
    assert normalise("  x  ", ["strip"]) == "x"
    assert normalise("The Hague", ["strip_articles", "collapse_whitespace"]) == "Hague"
    assert set(NORMALISERS) == {
        "nfkc",
        "first_line",
        "lower",
        "strip",
        "strip_punctuation",
        "strip_articles",
        "collapse_whitespace",
    }
    with pytest.raises(ValueError, match="unknown normalisation step 'upper'"):
        normalise("x", ["upper"])


def test_extract_answer_follows_lm_eval_regex_filter():
    assert extract_answer("anything", None) == "anything"
    assert extract_answer("The answer is 42. Or 43.", r"answer is (\d+)") == "42"
    assert extract_answer("A: 1 then A: 2", r"A: (\d)", select="last") == "2"
    assert extract_answer("no digits here", r"(\d+)") is None
    assert extract_answer("final: Paris ", r"final:.*") == "final: Paris"  # no group: whole match, stripped
    assert extract_answer("y7", r"x(\d)|y(\d)") == "7"  # first non-empty group
    assert extract_answer("answer:  Oslo \n", r"answer:(.*)") == "Oslo"


def test_extract_json_finds_the_first_object():
    assert extract_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert extract_json('Sure! {"a": {"b": [1, 2]}} hope this helps {"c": 3}') == {"a": {"b": [1, 2]}}
    assert extract_json('{not json} then {"ok": true}') == {"ok": True}
    assert extract_json("[1, 2]") is None
    assert extract_json("no braces") is None
    assert extract_json("{" * 10_000) is None


def test_field_text_makes_values_comparable():
    steps = ["nfkc", "lower", "strip_punctuation", "collapse_whitespace"]
    assert field_text(None) is None
    assert field_text("", steps) is None
    assert field_text(24000.0) == field_text(24000) == "24000"
    assert field_text("24,000", steps) == "24000"
    assert field_text(2.5) == "2.5"
    assert field_text(True) == "true"
    assert field_text("Corvid Software Inc.", steps) == field_text("corvid software inc", steps)
    assert field_text({"b": 1, "a": [2]}) == '{"a":[2],"b":1}'


RULES = BehaviourRules(
    abstain=("UNKNOWN", "I don't know"),
    clarify=("which", "do you mean"),
    refuse=("I can't help",),
)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("UNKNOWN", {"abstain"}),
        ("I don\u2019t know.", {"abstain"}),  # a curly apostrophe is still an apostrophe
        ("The unknowns are many.", set()),  # whole words only
        ("Which restaurant do you mean?", {"clarify"}),
        ("Which restaurant.", set()),  # a clarifying question has a question mark
        ("I can't help with that.", {"refuse"}),
        ("I can't help: which one do you mean?", {"refuse", "clarify"}),
        ("Paris", set()),
    ],
)
def test_observed_behaviours(output, expected):
    assert observed_behaviours(output, RULES) == expected


def test_behaviour_matches_and_item_patterns():
    assert behaviour_matches("Paris", "answer", RULES)
    assert not behaviour_matches("UNKNOWN", "answer", RULES)
    assert behaviour_matches("UNKNOWN", "abstain", RULES)
    assert not behaviour_matches("For when?", "clarify", RULES)
    assert behaviour_matches("For when?", "clarify", RULES, clarify_pattern=r"\bwhen\b")
    loose = BehaviourRules(clarify=("which",), require_question_mark=False)
    assert behaviour_matches("Tell me which one.", "clarify", loose)


# --- other task kinds and options -----------------------------------------------------------------


def test_classify_with_fixed_labels_and_gold_given_as_text(tmp_path):
    spec = """\
id: sentiment
version: "1.0"
license: CC-BY-4.0
task: classify
data: data/items.jsonl
prompt: "Review: {{ text }}\\nSentiment:"
choices: [positive, negative]
target: label
"""
    items = [{"id": "r1", "text": "Lovely.", "label": "positive"}, {"id": "r2", "text": "Awful.", "label": 1}]
    pack = load_pack(write_pack(tmp_path, spec, items))
    assert [i.gold for i in materialise(pack)] == [0, 1]
    assert next(materialise(pack)).continuations == (" positive", " negative")


def test_generate_pack_with_answer_rule_generation_and_few_shot(tmp_path):
    spec = """\
id: sums
version: 1.0.0
license: CC-BY-4.0
task: generate
data: data/items.jsonl
prompt: "Q: {{ q }}\\nA:"
target: a
answer: {regex: "(-?\\\\d+)", normalise: [strip]}
generation: {max_new_tokens: 8, stop: ["\\n"]}
few_shot: {data: data/shots.jsonl, n: 2}
"""
    folder = write_pack(tmp_path, spec, [{"id": "s1", "q": "2+2", "a": ["4", "four"]}])
    shots = [
        {"id": "x1", "q": "1+1", "a": "2"},
        {"id": "x2", "q": "1+2", "a": "3"},
        {"id": "x3", "q": "0+0", "a": "0"},
    ]
    (folder / "data" / "shots.jsonl").write_text("".join(json.dumps(s) + "\n" for s in shots))
    pack = load_pack(folder)
    (inst,) = materialise(pack)
    assert inst.prompt == "Q: 1+1\nA: 2\n\nQ: 1+2\nA: 3\n\nQ: 2+2\nA:"
    assert inst.gold == ("4", "four")
    assert inst.continuations is None
    assert pack.answer.extract("The sum is 4.") == "4"
    assert pack.answer.extract("no idea") is None
    assert (pack.generation.max_new_tokens, pack.generation.stop) == (8, ("\n",))


def test_few_shot_ids_must_differ_from_eval_ids(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text() + "few_shot: {data: data/shots.jsonl, n: 1}\n"
    folder = write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text())
    shutil.copy(folder / "data" / "items.jsonl", folder / "data" / "shots.jsonl")
    with pytest.raises(SchemaError) as caught:
        load_pack(folder)
    assert "data/shots.jsonl:1 $.id" in {v.path for v in caught.value.violations}


def test_extract_target_must_have_exactly_the_fields(tmp_path):
    spec = """\
id: ex
version: 1.0.0
license: CC-BY-4.0
task: extract
data: data/items.jsonl
prompt: "{{ text }}"
target: gold
fields: [name, age]
"""
    items = [{"id": "e1", "text": "Ada, 36", "gold": {"name": "Ada"}}]
    with pytest.raises(SchemaError, match="1 problem") as caught:
        load_pack(write_pack(tmp_path, spec, items))
    assert "missing ['age']" in caught.value.violations[0].message


# --- bad packs ------------------------------------------------------------------------------------


def test_schema_violations_are_all_listed_with_their_paths():
    with pytest.raises(SchemaError) as caught:
        load_pack(DATA / "pack_schema_errors")
    paths = [v.path for v in caught.value.violations]
    assert {"$", "$.id", "$.task", "$.data", "$.slices[0]", "$.variants[0]", "$.gate.min_retention"} <= set(
        paths
    )
    assert caught.value.kind == "pack"
    assert caught.value.exit_code == 3
    hints = " ".join(v.hint for v in caught.value.violations)
    assert "add `target`" in hints
    assert "did you mean `slices`" in hints
    assert "add `perturbation`" in hints


def test_every_schema_property_has_a_description():
    schema = json.loads((schema_dir() / "pack.schema.json").read_text())
    assert schema["$id"] == "https://receipts.dev/schema/pack/v1.json"
    assert schema["version"]
    defs = schema["$defs"]

    def described(node):
        if "description" in node:
            return True
        ref = node.get("$ref", "")
        return ref.startswith("#/$defs/") and "description" in defs[ref.removeprefix("#/$defs/")]

    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                if not described(prop):
                    missing.append(f"{path}.{name}")
            for key, child in node.items():
                if key != "if":  # conditions test properties; they do not declare them
                    walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{path}[{index}]")

    walk(schema, "$")
    assert not missing


def test_minimal_pack_is_detected_as_a_pack_and_validates():
    _, value = load_document(MINIMAL / "pack.yaml")
    assert schemas.detect_kind(value) == "pack"
    schemas.validate(value, "pack")


def test_bad_jsonl_line_names_file_and_line():
    with pytest.raises(InputError) as caught:
        load_pack(DATA / "pack_bad_jsonl")
    assert caught.value.file.endswith("pack_bad_jsonl/data/items.jsonl")
    assert caught.value.where.startswith("line 2 column ")
    assert "malformed JSON" in caught.value.message
    assert "one JSON object" in caught.value.hint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]\n", "a line holds a JSON list, not an object"),
        ('{"id": "q1"}\n\n{"id": "q2"}\n', "blank line"),
        ('{"id": "q1", "id": "q2"}\n', "duplicate JSON key 'id'"),
    ],
)
def test_malformed_lines_are_refused_with_their_line(tmp_path, text, message):
    folder = write_pack(tmp_path, (MINIMAL / "pack.yaml").read_text(), text)
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        load_pack(folder)
    assert caught.value.where.startswith("line ")


def test_duplicate_id_names_both_lines():
    with pytest.raises(SchemaError) as caught:
        load_pack(DATA / "pack_duplicate_id")
    (violation,) = caught.value.violations
    assert violation.path == "data/items.jsonl:2 $.id"
    assert violation.message == "duplicate item id 'q1' (first at data/items.jsonl:1)"


def test_template_using_a_missing_field_names_the_item_and_field():
    with pytest.raises(SchemaError) as caught:
        load_pack(DATA / "pack_missing_field")
    (violation,) = caught.value.violations
    assert violation.path == "data/items.jsonl:2 $.topic"
    assert violation.message.startswith("item q2: ")
    assert "`topic`" in violation.message
    assert "add `topic` to the item" in violation.hint


def test_gold_index_out_of_range():
    with pytest.raises(SchemaError) as caught:
        load_pack(DATA / "pack_gold_out_of_range")
    (violation,) = caught.value.violations
    assert violation.path == "data/items.jsonl:2 $.label"
    assert violation.message == "item q2: gold index 3 is out of range for 3 choices"
    assert violation.hint == "use 0 to 2 (indices are 0-based)"


def test_every_item_problem_is_reported_at_once():
    with pytest.raises(SchemaError) as caught:
        load_pack(DATA / "pack_many_item_errors")
    found = {v.path: v.message for v in caught.value.violations}
    assert found["data/items.jsonl:1 $.id"] == "item has no `id`"
    assert "must be a list of at least 2 strings" in found["data/items.jsonl:2 $.choices"]
    assert "no slice label `difficulty`" in found["data/items.jsonl:3 $.difficulty"]
    assert "`critical` must be true, false or a cohort name" in found["data/items.jsonl:4 $.critical"]
    assert "not True" in found["data/items.jsonl:4 $.label"]  # a boolean is not an index
    assert "is not a valid id" in found["data/items.jsonl:5 $.id"]
    assert str(DATA / "pack_many_item_errors" / "pack.yaml") in caught.value.diagnostics()


def test_template_syntax_error_is_a_schema_problem_at_its_path(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text().replace("{{ question }}", "{{ question }")
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text()))
    (violation,) = caught.value.violations
    assert violation.path == "$.prompt"
    assert "Jinja2 syntax error" in violation.message


def test_sandbox_blocks_python_internals(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text().replace("{{ question }}", "{{ question.__class__.__mro__ }}")
    with pytest.raises(SchemaError, match="2 problems") as caught:
        load_pack(write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text()))
    assert all("unsafe" in v.message for v in caught.value.violations)


def test_variant_naming_a_missing_prompt(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text() + "variants: [{name: quiz, kind: rewording, prompt: quiz}]\n"
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text()))
    assert caught.value.violations[0].path == "$.variants[0].prompt"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("pack_minimal/data", "no pack.yaml in this folder"),
        ("pack_minimal/data/items.jsonl", "a pack is a folder holding pack.yaml"),
        ("no_such_pack/pack.yaml", "pack.yaml does not exist"),
    ],
)
def test_wrong_paths(target, message):
    with pytest.raises(InputError, match=message):
        load_pack(DATA / target)


def test_missing_data_file(tmp_path):
    folder = write_pack(
        tmp_path, (MINIMAL / "pack.yaml").read_text().replace("items.jsonl", "other.jsonl"), []
    )
    with pytest.raises(InputError, match="data file does not exist"):
        load_pack(folder)


def test_runner_packs_does_not_import_torch():
    code = (
        "import sys, runner.eval.loader, runner.eval.prompts;"
        " print([m for m in ('torch', 'transformers') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


GENERATE = """\
id: probe
version: 1.0.0
license: CC-BY-4.0
task: generate
data: data/items.jsonl
prompt: "{{ q }}"
target: a
behaviour: expect
clarify: {markers: [which], pattern_field: pat}
"""


@pytest.mark.parametrize(
    ("item", "path", "message"),
    [
        ({"q": "x", "a": 5, "expect": "answer"}, "$.a", "must be a string or a list of strings, not 5"),
        ({"q": "x", "a": [], "expect": "answer"}, "$.a", "must be a string or a list of strings"),
        ({"q": "x", "a": None, "expect": "answer"}, "$.a", "not None"),
        ({"q": "x", "a": "y", "expect": "dance"}, "$.expect", "expected behaviour `expect` is 'dance'"),
        ({"q": "x", "a": None, "expect": "clarify", "pat": "(unclosed"}, "$.pat", "not a regular expression"),
        ({"q": "x", "expect": "answer"}, "$.a", "has no target field `a`"),
    ],
)
def test_item_problems_in_generate_packs(tmp_path, item, path, message):
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path, GENERATE, [{"id": "g1", **item}]))
    (violation,) = caught.value.violations
    assert violation.path == f"data/items.jsonl:1 {path}"
    assert message in violation.message


def test_behaviour_items_may_have_no_target_and_carry_their_pattern(tmp_path):
    items = [
        {"id": "g1", "q": "Book it.", "a": None, "expect": "clarify", "pat": "which day"},
        {"id": "g2", "q": "2+2?", "a": "4", "expect": "answer"},
    ]
    pack = load_pack(write_pack(tmp_path, GENERATE, items))
    first, second = materialise(pack)
    assert (first.gold, first.expected, first.clarify_pattern) == (None, "clarify", "which day")
    assert (second.gold, second.expected, second.clarify_pattern) == (("4",), "answer", None)
    assert pack.item("g2").line == 2
    with pytest.raises(KeyError):
        pack.item("g3")


def test_pack_level_problems(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text().replace(
        'prompt: "Question: {{ question }}\\nAnswer:"',
        "prompt: [{name: a, template: 'Q: {{ question }}'}, {name: a, template: '{{ question }}'}]",
    ) + (
        "variants: [{name: typo, kind: perturbation, perturbation: typo},"
        " {name: typo, kind: perturbation, perturbation: case, fields: [label]},"
        " {name: bare, kind: format, template: 'Pick one:'}, {name: bare-typo, kind: perturbation,"
        " perturbation: filler, template: 'Pick one:'}]\n"
    )
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text()))
    found = {v.path: v.message for v in caught.value.violations}
    assert "template name 'a' is used twice" in found["$.prompt[1].name"]
    assert "variant name 'typo' is used twice" in found["$.variants[1].name"]
    assert "no text field to change" in found["$.variants[3]"]


def test_perturbing_a_field_that_is_not_text(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text() + (
        "variants: [{name: noisy, kind: perturbation, perturbation: case, fields: [choices]}]\n"
    )
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text()))
    assert "perturbs `choices`, which is not text" in caught.value.violations[0].message


def test_few_shot_needs_enough_examples(tmp_path):
    spec = (MINIMAL / "pack.yaml").read_text() + "few_shot: {data: data/shots.jsonl, n: 5}\n"
    folder = write_pack(tmp_path, spec, (MINIMAL / "data" / "items.jsonl").read_text())
    shot = {"id": "s1", "question": "2+2?", "choices": ["3", "4"], "label": 1, "difficulty": "easy"}
    (folder / "data" / "shots.jsonl").write_text(json.dumps(shot) + "\n")
    with pytest.raises(SchemaError, match="1 problem") as caught:
        load_pack(folder)
    assert caught.value.violations[0].message == "asks for 5 examples; data/shots.jsonl has 1 usable"


def test_a_flood_of_problems_is_capped(tmp_path):
    items = [{"id": f"q{n}", "question": "?", "choices": ["a", "b"], "label": 9} for n in range(150)]
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path, (MINIMAL / "pack.yaml").read_text(), items))
    assert len(caught.value.violations) == 101
    assert (
        caught.value.violations[-1].message == "and 200 more problems"
    )  # 150 items x (no slice label, gold out of range)


def test_empty_pack_is_refused(tmp_path):
    with pytest.raises(SchemaError, match="1 problem") as caught:
        load_pack(write_pack(tmp_path, (MINIMAL / "pack.yaml").read_text(), ""))
    assert caught.value.violations[0].message == "the pack has no items"


@pytest.mark.parametrize("kind", ["case", "contraction"])
def test_unknown_perturbation_mode(kind):
    with pytest.raises(ValueError, match="unknown"):
        perturb("text", PerturbationSpec(kind, mode="sideways"), item_id="i", variant="v")


def test_a_named_critical_cohort_is_kept_and_critical_is_no_slice_field(tmp_path):
    """``critical: pii`` names the item's critical cohort; ``slices: [critical]`` would collide with it."""
    spec = (MINIMAL / "pack.yaml").read_text("utf-8")
    items = [json.loads(line) for line in (MINIMAL / "data" / "items.jsonl").read_text("utf-8").splitlines()]
    items[0]["critical"], items[1]["critical"] = "pii", True
    pack = load_pack(write_pack(tmp_path / "named", spec, items))
    assert [item.critical for item in pack.items] == ["pii", True]
    assert len(pack.critical_items) == 2
    taken = spec.replace("slices: [difficulty]", "slices: [critical]")
    with pytest.raises(SchemaError) as caught:
        load_pack(write_pack(tmp_path / "taken", taken, items))
    assert [v.path for v in caught.value.violations] == ["$.slices[0]"]
