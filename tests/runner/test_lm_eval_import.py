"""`receipts pack import lm-eval`: translation, ids, every refusal, the sandbox, and nothing outside --out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from receipts.cli import main
from receipts.errors import InputError, SchemaError, UsageError
from runner.eval.importers import import_lm_eval_task
from runner.eval.loader import load_pack
from runner.eval.prompts import materialise

MC_YAML = """\
task: tiny_arc
dataset_path: json
dataset_kwargs:
  data_files: docs.jsonl
test_split: train
output_type: multiple_choice
description: "Science questions.\\n\\n"
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{choices.label.index(answerKey)}}"
doc_to_choice: "{{choices.text}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
metadata:
  version: 2.0
"""
MC_DOCS = [
    {
        "id": 0,
        "question": "Closest planet to the sun?",
        "choices": {"text": ["Mercury", "Mars"], "label": ["A", "B"]},
        "answerKey": "A",
    },
    {
        "id": "q-1",
        "question": "What do bees make?",
        "choices": {"text": ["Milk", "Honey"], "label": ["A", "B"]},
        "answerKey": "B",
    },
    {
        "question": "Frozen water?",
        "choices": {"text": ["Steam", "Ice"], "label": ["A", "B"]},
        "answerKey": "B",
    },
]
GEN_YAML = """\
task: tiny_gsm
output_type: generate_until
doc_to_text: "Question: {{question}}\\nAnswer:"
doc_to_target: "{{answer.split('####')[-1].strip()}}"
generation_kwargs:
  until: ["Question:", "\\n\\n"]
  do_sample: false
  max_gen_toks: 64
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"
      - function: take_first
  - name: flexible
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[0-9.,]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
"""
GEN_DOCS = [
    {"question": "2 + 3?", "answer": "Add them. #### 5"},
    {"question": "10 - 4?", "answer": "Subtract. #### 6"},
]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _task(tmp_path: Path, yaml_text: str, docs: list[dict[str, object]], name: str = "docs.jsonl") -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / name).write_text("".join(json.dumps(d) + "\n" for d in docs), "utf-8")
    (src / "task.yaml").write_text(yaml_text, "utf-8")
    return src / "task.yaml"


def test_multiple_choice_task_becomes_a_pack_posing_lm_evals_strings(tmp_path: Path) -> None:
    task = _task(tmp_path, MC_YAML, MC_DOCS)
    done = import_lm_eval_task(task, tmp_path / "tiny-arc")
    pack = load_pack(done.path)
    assert (pack.id, pack.version, pack.task, pack.scorers) == (
        "tiny-arc",
        "2.0",
        "multiple_choice",
        ("accuracy", "acc_norm"),
    )
    assert [i.id for i in pack.items] == ["0", "q-1", pack.items[2].id]
    assert pack.items[2].id.startswith("row-2-")
    assert len(pack.items[2].id) == len("row-2-") + 8
    first = next(iter(materialise(pack, ["original"])))
    assert first.prompt == "Science questions.\n\nQuestion: Closest planet to the sun?\nAnswer:"
    assert first.continuations == (" Mercury", " Mars")
    assert first.gold == 0
    assert [i.gold for i in pack.items] == [0, 1, 1]
    record = json.loads((done.path / "lm-eval-import.json").read_text("utf-8"))
    assert record["source"]["sha256"] == __import__("hashlib").sha256(task.read_bytes()).hexdigest()
    assert record["lm_eval_dialect"] == "0.4.9"
    assert record["ids"]["derived"] == 1


def test_derived_ids_are_stable_across_imports(tmp_path: Path) -> None:
    task = _task(tmp_path, MC_YAML, MC_DOCS)
    a = load_pack(import_lm_eval_task(task, tmp_path / "a").path)
    b = load_pack(import_lm_eval_task(task, tmp_path / "b").path)
    assert [i.id for i in a.items] == [i.id for i in b.items]
    assert a.items[2].fields["doc"] == MC_DOCS[2]


def test_generate_task_translates_until_filter_and_normalisation(tmp_path: Path) -> None:
    task = _task(tmp_path, GEN_YAML, GEN_DOCS)
    pack = load_pack(import_lm_eval_task(task, tmp_path / "gsm", data=task.parent / "docs.jsonl").path)
    assert pack.task == "generate"
    assert pack.generation.stop == ("Question:", "\n\n")
    assert pack.generation.max_new_tokens == 64
    assert pack.answer.regex == r"#### (\-?[0-9\.\,]+)"
    assert pack.answer.steps == ("lower",)
    assert [i.gold for i in pack.items] == [("5",), ("6",)]
    assert pack.answer.extract("so #### 5 done") == "5"
    flexible = load_pack(
        import_lm_eval_task(
            task, tmp_path / "gsm2", data=task.parent / "docs.jsonl", filter_name="flexible"
        ).path
    )
    assert flexible.answer.select == "last"
    assert flexible.answer.extract("3 then 5") == "5"


def test_csv_columns_are_typed_as_datasets_reads_them(tmp_path: Path) -> None:
    task = _task(
        tmp_path,
        MC_YAML.replace("docs.jsonl", "docs.csv")
        .replace("dataset_path: json", "dataset_path: csv")
        .replace('"{{choices.label.index(answerKey)}}"', "label")
        .replace('"{{choices.text}}"', '["no", "yes"]'),
        [],
    )
    (task.parent / "docs.csv").write_text("id,question,label\n7,Is ice cold?,1\n8,Is fire cold?,0\n", "utf-8")
    pack = load_pack(import_lm_eval_task(task, tmp_path / "csv").path)
    assert [(i.id, i.gold) for i in pack.items] == [("7", 1), ("8", 0)]


REFUSALS = [
    ("process_docs: !function utils.process_docs\n", "process_docs", "--docs-processed"),
    ("custom_dataset: !function utils.load\n", "custom_dataset", "never runs code"),
    ("include: _base.yaml\n", "include", "beside this one"),
    ("include: ../src/task.yaml\n", "include", "beside this one"),
    ("include: task.yaml\n", "include", "loops"),
    ("process_docs: utils.process_docs\n", "process_docs", "--docs-processed"),
    ("num_fewshot: 5\n", "num_fewshot", "sampler: first_n"),
    ("process_results: foo\n", "process_results", "own scorers"),
    ("unsafe_code: true\n", "unsafe_code", "unsafe_code"),
    ("repeats: 4\n", "repeats", "repeats"),
    ("surprise_key: 1\n", "surprise_key", "not an lm-eval"),
]


@pytest.mark.parametrize(("extra", "key", "words"), REFUSALS)
def test_untranslatable_keys_are_refused_with_key_and_line(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    task = _task(tmp_path, MC_YAML + extra, MC_DOCS)
    line = len(MC_YAML.splitlines()) + 1
    with pytest.raises(InputError) as caught:
        import_lm_eval_task(task, tmp_path / "out")
    assert caught.value.where == f"line {line} ({key})"
    assert words in caught.value.diagnostics()
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("output_type: multiple_choice", "output_type: loglikelihood", "output_type"),
        ("  - metric: acc_norm", "  - metric: acc_mutual_info", "metric_list[1].metric"),
        ('doc_to_choice: "{{choices.text}}"', "doc_to_choice: 3", "doc_to_choice"),
    ],
)
def test_untranslatable_values_are_refused(tmp_path: Path, old: str, new: str, key: str) -> None:
    task = _task(tmp_path, MC_YAML.replace(old, new), MC_DOCS)
    with pytest.raises(InputError, match=r"cannot|must") as caught:
        import_lm_eval_task(task, tmp_path / "out")
    assert key in caught.value.where
    assert caught.value.where.startswith("line ")


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        (
            "      - function: take_first\n  - name: flexible",
            "      - function: lowercase\n      - function: take_first\n  - name: flexible",
            "filter_list[0].filter",
        ),
        ("    ignore_punctuation: false", '    regexes_to_ignore: [","]', "metric_list[0].regexes_to_ignore"),
        ("  do_sample: false", "  do_sample: true", "generation_kwargs.do_sample"),
    ],
)
def test_untranslatable_generation_settings_are_refused(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in GEN_YAML
    task = _task(tmp_path, GEN_YAML.replace(old, new), GEN_DOCS)
    with pytest.raises(InputError) as caught:
        import_lm_eval_task(task, tmp_path / "out", data=task.parent / "docs.jsonl")
    assert f"({key})" in caught.value.where


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.system('touch pwned') }}",
        "{{ question.__class__.__mro__ }}",
        "{{ 'x' * 100000000 }}",
        "{% for i in range(10**9) %}{% endfor %}",
    ],
)
def test_templates_run_sandboxed_and_attacks_are_refused(tmp_path: Path, template: str) -> None:
    task = _task(
        tmp_path, MC_YAML.replace('"Question: {{question}}\\nAnswer:"', json.dumps(template)), MC_DOCS
    )
    before = set(Path.cwd().iterdir())
    with pytest.raises(InputError) as caught:
        import_lm_eval_task(task, tmp_path / "out")
    assert "doc_to_text" in caught.value.where
    assert "is refused" in caught.value.message, caught.value.message
    assert set(Path.cwd().iterdir()) == before
    assert not (tmp_path / "src" / "pwned").exists()
    assert not (tmp_path / "out").exists()


def test_paths_from_the_yaml_never_leave_its_folder_and_nothing_outside_out_is_written(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "secret.jsonl"
    outside.write_text(json.dumps(MC_DOCS[0]) + "\n", "utf-8")
    task = _task(
        tmp_path,
        MC_YAML.replace("data_files: docs.jsonl", "data_files: ../secret.jsonl").replace(
            "task: tiny_arc", "task: ../../escape"
        ),
        MC_DOCS,
    )
    with pytest.raises(InputError, match="leaves the task's folder") as caught:
        import_lm_eval_task(task, tmp_path / "out")
    assert "dataset_kwargs.data_files" in caught.value.where
    # a task name and doc fields that look like paths are only text
    task = _task(
        tmp_path,
        MC_YAML.replace("task: tiny_arc", "task: ../../escape"),
        [{**MC_DOCS[0], "id": "../x", "question": "../../etc/passwd"}],
    )
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    done = import_lm_eval_task(task, tmp_path / "out")
    created = {p for p in tmp_path.rglob("*")} - set(before)
    assert all(p == done.path or done.path in p.parents for p in created)
    assert all(p.stat().st_mtime_ns == m for p, m in before.items())
    assert load_pack(done.path).items[0].id.startswith("row-0-")


def test_an_existing_out_or_a_bad_pack_id_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    task = _task(tmp_path, MC_YAML, MC_DOCS)
    (tmp_path / "taken").mkdir()
    with pytest.raises(UsageError, match="exists"):
        import_lm_eval_task(task, tmp_path / "taken")
    with pytest.raises(UsageError, match="not a valid pack id"):
        import_lm_eval_task(task, tmp_path / "Bad Name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "taken"]


def test_bad_docs_name_the_data_line(tmp_path: Path) -> None:
    docs = [MC_DOCS[0], {**MC_DOCS[1], "answerKey": "Z"}]
    task = _task(tmp_path, MC_YAML, docs)
    with pytest.raises(InputError, match=r"data line 2"):
        import_lm_eval_task(task, tmp_path / "out")
    task = _task(tmp_path, MC_YAML, [MC_DOCS[0], {**MC_DOCS[1], "id": 0}])
    with pytest.raises(InputError, match="used twice"):
        import_lm_eval_task(task, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_imports_and_refuses_with_one_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    task = _task(tmp_path, MC_YAML, MC_DOCS)
    assert (
        main(["pack", "import", "lm-eval", str(task), "--out", str(tmp_path / "p"), "--license", "CC-BY-4.0"])
        == 0
    )
    assert "3 items (1 ids derived)" in capsys.readouterr().out
    assert load_pack(tmp_path / "p").license == "CC-BY-4.0"
    bad = _task(tmp_path, MC_YAML + "doc_to_image: !function utils.img\n", MC_DOCS)
    assert main(["pack", "import", "lm-eval", str(bad), "--out", str(tmp_path / "q")]) == 1
    err = capsys.readouterr().err
    assert "doc_to_image" in err
    assert "Traceback" not in err
    assert not (tmp_path / "q").exists()
    assert os.environ.get("PWNED") is None


def test_the_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pack", "import", "lm-eval", "--help"]) == 0
    text = capsys.readouterr().out
    assert "Example:" in text
    assert "--docs-processed" in text


def test_process_docs_is_recorded_not_run_when_the_docs_are_already_processed(tmp_path: Path) -> None:
    task = _task(tmp_path, MC_YAML + "process_docs: !function utils.process_docs\n", MC_DOCS)
    (task.parent / "utils.py").write_text("raise SystemExit('executed')\n", "utf-8")
    done = import_lm_eval_task(task, tmp_path / "p", docs_processed=True)
    record = json.loads((done.path / "lm-eval-import.json").read_text("utf-8"))
    assert record["process_docs"]["function"] == "utils.process_docs"
    assert len(load_pack(done.path).items) == 3
    with pytest.raises(InputError, match="--docs-processed is for"):
        import_lm_eval_task(_task(tmp_path, MC_YAML, MC_DOCS), tmp_path / "q", docs_processed=True)


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        (0, "0"),
        (42, "42"),
        ("Mercury_7175875", "Mercury_7175875"),
        (-1, None),
        (True, None),
        ("a b", None),
        (None, None),
        ([1], None),
    ],
)
def test_id_rule(value: object, kept: str | None) -> None:
    from runner.eval.importers.lm_eval_data import stable_ids

    doc = {"q": "x"} if value is None else {"id": value, "q": "x"}
    (got,) = stable_ids([(1, doc)], "id", Path("d.jsonl"))
    if kept is not None:
        assert got == kept
    else:
        assert got.startswith("row-0-")
        assert len(got) == 14
        assert got == stable_ids([(1, dict(doc))], "id", Path("d.jsonl"))[0]


def test_parquet_docs_import(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    task = _task(
        tmp_path,
        MC_YAML.replace("dataset_path: json", "dataset_path: parquet").replace("docs.jsonl", "docs.parquet"),
        [],
    )
    docs = [{**MC_DOCS[0], "id": 5}, {**MC_DOCS[1], "id": 6}]
    pq.write_table(pa.Table.from_pylist(docs), task.parent / "docs.parquet")
    pack = load_pack(import_lm_eval_task(task, tmp_path / "pq").path)
    assert [(i.id, i.gold) for i in pack.items] == [("5", 0), ("6", 1)]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: &a [1, 2]\nb: [*a, *a]\n" + MC_YAML, "anchors and aliases"),
        ("task: [unclosed\n", "malformed YAML"),
        ("- just\n- a list\n", "mapping"),
        ("task: x\nbad: !python/object:os.system ls\n", "malformed YAML"),
        ("task: x\ndoc_to_text: 'a'\ndoc_to_text: 'b'\n", "duplicate key"),
        ("x: '" + "a" * 300_000 + "'\n", "over the"),
    ],
)
def test_hostile_yaml_is_refused_with_one_message(tmp_path: Path, text: str, words: str) -> None:
    task = _task(tmp_path, text, MC_DOCS)
    with pytest.raises(InputError, match=words):
        import_lm_eval_task(task, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("use_prompt: promptsource:x\n", "use_prompt"),
        ("gen_prefix: 'So'\n", "gen_prefix"),
        ("doc_to_audio: audio\n", "doc_to_audio"),
        ("generation_kwargs:\n  until: ['x']\n", "generation_kwargs"),
        ("filter_list:\n  - name: a\n    filter: [{function: take_first}]\n", "filter_list"),
    ],
)
def test_more_keys_a_multiple_choice_pack_cannot_hold_are_refused(
    tmp_path: Path, extra: str, key: str
) -> None:
    task = _task(tmp_path, MC_YAML + extra, MC_DOCS)
    with pytest.raises(InputError) as caught:
        import_lm_eval_task(task, tmp_path / "out")
    assert caught.value.where == f"line {len(MC_YAML.splitlines()) + 1} ({key})"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (
            '  until: ["Question:", "\\n\\n"]',
            "  until: [a, b, c, d, e, f, g, h, i]",
            "generation_kwargs.until",
        ),
        ("  max_gen_toks: 64", "  max_gen_toks: 0", "generation_kwargs.max_gen_toks"),
        ("  max_gen_toks: 64", "  top_p: 0.9", "generation_kwargs.top_p"),
        ("        group_select: -1", "        group_select: 1", "filter_list[1].filter[0]"),
        ("    aggregation: mean", "    aggregation: median", "metric_list[0]"),
        ("task: tiny_gsm\n", "", "task"),
        ('doc_to_text: "Question: {{question}}\\nAnswer:"\n', "", "doc_to_text"),
    ],
)
def test_more_generation_settings_are_refused(tmp_path: Path, old: str, new: str, where: str) -> None:
    assert old in GEN_YAML
    task = _task(tmp_path, GEN_YAML.replace(old, new), GEN_DOCS)
    with pytest.raises(InputError) as caught:
        import_lm_eval_task(task, tmp_path / "out", data=task.parent / "docs.jsonl", filter_name="flexible")
    assert where in caught.value.where


def test_an_unknown_filter_name_is_refused(tmp_path: Path) -> None:
    task = _task(tmp_path, GEN_YAML, GEN_DOCS)
    with pytest.raises(InputError, match="no filter named 'nope'"):
        import_lm_eval_task(task, tmp_path / "out", data=task.parent / "docs.jsonl", filter_name="nope")


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ('"Question: {{question}}\\nAnswer:"', '"{{ 1 }}"', "gives int 1, not text"),
        ('"{{choices.text}}"', '"{{ question }}"', "not a list literal"),
        ('"{{choices.text}}"', "\"{{ '[' ~ ('1,' * 60000) ~ ']' }}\"", "too long for a list"),
        ('"{{choices.text}}"', '"{{ [1, 2] }}"', "at least 2 strings"),
    ],
)
def test_docs_lm_eval_reads_differently_are_refused_with_the_line(
    tmp_path: Path, old: str, new: str, words: str
) -> None:
    assert old in MC_YAML
    task = _task(tmp_path, MC_YAML.replace(old, new), MC_DOCS)
    with pytest.raises(InputError, match=words) as caught:
        import_lm_eval_task(task, tmp_path / "out")
    assert "data line 1" in caught.value.message


def test_include_merges_yaml_beside_the_task_as_lm_eval_does(tmp_path: Path) -> None:
    base = MC_YAML.replace("task: tiny_arc\n", "")
    task = _task(tmp_path, "include: _base.yaml\ntask: tiny_arc_child\ndescription: ''\n", MC_DOCS)
    (task.parent / "_base.yaml").write_text(base, "utf-8")
    done = import_lm_eval_task(task, tmp_path / "child")
    first = next(iter(materialise(load_pack(done.path), ["original"])))
    assert first.prompt == "Question: Closest planet to the sun?\nAnswer:"  # this file's description won
    record = json.loads((done.path / "lm-eval-import.json").read_text("utf-8"))
    assert [i["file"] for i in record["includes"]] == ["_base.yaml"]
    (task.parent / "_base.yaml").write_text(base + "process_results: !function utils.score\n", "utf-8")
    with pytest.raises(InputError) as caught:
        import_lm_eval_task(task, tmp_path / "out")
    assert caught.value.where == f"_base.yaml line {len(base.splitlines()) + 1} (process_results)"


def test_first_n_few_shot_is_posed_as_lm_eval_writes_it(tmp_path: Path) -> None:
    extra = "num_fewshot: 1\nfewshot_split: train\nfewshot_config:\n  sampler: first_n\n"
    task = _task(tmp_path, MC_YAML + extra, MC_DOCS)
    pack = load_pack(import_lm_eval_task(task, tmp_path / "fs").path)
    prompts = [i.prompt for i in materialise(pack, ["original"])]
    shot0 = "Question: Closest planet to the sun?\nAnswer: Mercury\n\n"
    shot1 = "Question: What do bees make?\nAnswer: Honey\n\n"
    # the fewshot split is the test split: first n+1 drawn, the doc itself left out (lm-eval's get_context)
    assert prompts[0] == "Science questions.\n\n" + shot1 + "Question: Closest planet to the sun?\nAnswer:"
    assert prompts[1].startswith("Science questions.\n\n" + shot0 + "Question: What do bees make?")
    assert prompts[2].startswith("Science questions.\n\n" + shot0 + "Question: Frozen water?")
    other = MC_YAML.replace("dataset_kwargs:\n  data_files: docs.jsonl\n", "").replace(
        "dataset_path: json\n", ""
    )
    task = _task(tmp_path, other + extra.replace("train", "dev"), MC_DOCS)
    with pytest.raises(UsageError, match="num_fewshot needs the docs of split 'dev'"):
        import_lm_eval_task(task, tmp_path / "fs2", data=task.parent / "docs.jsonl")
    done = import_lm_eval_task(
        task, tmp_path / "fs3", data=task.parent / "docs.jsonl", fewshot_data=task.parent / "docs.jsonl"
    )
    record = json.loads((done.path / "lm-eval-import.json").read_text("utf-8"))
    assert record["few_shot"]["n"] == 1
    assert record["few_shot"]["file"] == "docs.jsonl"
    prompts = [i.prompt for i in materialise(load_pack(done.path), ["original"])]
    # another split name: n drawn, and lm-eval still drops a shot equal to the doc (here: the only one)
    assert "Mercury" not in prompts[0]
    assert prompts[1].startswith("Science questions.\n\n" + shot0)


def test_a_pack_the_loader_refuses_is_named_as_out_and_leaves_nothing(tmp_path: Path) -> None:
    task = _task(tmp_path, MC_YAML, MC_DOCS)
    with pytest.raises(SchemaError) as caught:
        import_lm_eval_task(task, tmp_path / "p", license_id="not a licence!")
    assert caught.value.file == str(tmp_path / "p" / "pack.yaml")
    assert any(v.path == "$.license" for v in caught.value.violations)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
