"""An lm-eval 0.4.9 task YAML, read as data: what receipts can translate, or a refusal naming the key.

The YAML is untrusted. It is read with the strict safe loader (`receipts.documents.parse_yaml`), and lm-eval's
``!function module.name`` tag, which lm-eval resolves by importing and running Python next to the YAML, is
never resolved: the event stream is scanned first and any ``!function`` is refused with its key and line.

Translated (``output_type`` multiple_choice or generate_until): ``doc_to_text``, ``doc_to_target``,
``doc_to_choice`` (field names or Jinja), ``description``, ``target_delimiter``, ``fewshot_delimiter``,
``generation_kwargs`` (``until``, ``max_gen_toks``, greedy only), one ``filter_list`` entry that is a plain
``regex`` (group_select 0 or -1) then ``take_first``, ``metric_list`` (acc, acc_norm; exact_match with
``ignore_case`` / ``ignore_punctuation``), and local data (``dataset_path: json|csv|parquet`` with
``dataset_kwargs.data_files``), ``num_fewshot`` with ``fewshot_config: {sampler: first_n}`` and
``fewshot_split``, and ``include`` of YAML files beside the task (a plain file name, at
most 4 deep, merged as ``lm_eval.utils.load_yaml_config`` merges: the including file's keys win).
Everything else that changes what is posed or scored is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from receipts.digests import sha256_bytes
from receipts.documents import parse_yaml, read_bytes
from receipts.errors import InputError

__all__ = ["MAX_TASK_YAML", "TaskSpec", "read_task"]

MAX_TASK_YAML = 256 * 1024
_MAX_EVENTS = 100_000
_FUNCTION_HINT = (
    "receipts never runs code from a task YAML. Apply the function yourself, once, to write plain docs "
    "(e.g. `python -c 'import json, utils; ...'` over your data), pass them with --data, and replace "
    "the key with a Jinja template or a field name"
)
_PROCESS_DOCS_HINT = (
    "process_docs is Python code; receipts never runs it. Run it once yourself over your data, write the "
    "processed docs as JSON Lines, and import them with `--data FILE --docs-processed` "
    "(the YAML's process_docs is then recorded, not run)"
)
# Keys that only name, group or describe the task: they change nothing posed or scored.
_INFORMATIONAL = {
    "task",
    "task_alias",
    "tag",
    "group",
    "group_alias",
    "dataset_name",
    "training_split",
    "validation_split",
    "test_split",
    "fewshot_split",
    "should_decontaminate",
    "doc_to_decontamination_query",
    "metadata",
}
_TRANSLATED = {
    "output_type",
    "dataset_path",
    "dataset_kwargs",
    "process_docs",
    "doc_to_text",
    "doc_to_target",
    "doc_to_choice",
    "description",
    "target_delimiter",
    "fewshot_delimiter",
    "num_fewshot",
    "fewshot_config",
    "generation_kwargs",
    "filter_list",
    "metric_list",
    "repeats",
    "unsafe_code",
}
_REFUSED_HINTS = {
    "process_results": "receipts scores with its own scorers; remove it and use metric_list acc/exact_match",
    "custom_dataset": "write the docs to a local file and pass it with --data",
    "use_prompt": "write the promptsource prompt out as doc_to_text / doc_to_target Jinja",
    "gen_prefix": "put the prefix at the end of doc_to_text",
    "doc_to_image": "receipts packs are text-only",
    "doc_to_audio": "receipts packs are text-only",
}
_MAX_INCLUDE_DEPTH = 4
_INCLUDE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.ya?ml")
_LOCAL_FORMATS = {"json": "json", "csv": "csv", "parquet": "parquet"}
_MC_METRICS = {"acc": "accuracy", "acc_norm": "acc_norm"}
OutputType = Literal["multiple_choice", "generate_until"]


@dataclass(frozen=True)
class TaskSpec:
    """What an lm-eval task YAML asks, in the terms the importer translates."""

    file: Path
    sha256: str
    name: str
    output_type: OutputType
    doc_to_text: str
    doc_to_target: str | int | list[Any]
    doc_to_choice: str | list[Any] | dict[str, Any] | None
    description: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    filter_name: str | None = None
    regex: str | None = None
    select: Literal["first", "last"] = "first"
    scorers: tuple[str, ...] = ()
    normalise: tuple[str, ...] = ()
    data_format: str | None = None
    data_files: str | None = None
    split: str = "test"
    version: str = "1.0"
    process_docs: str | None = None
    num_fewshot: int = 0
    fewshot_split: str | None = None
    fewshot_files: str | None = None
    test_split: str | None = None  # as written: lm-eval compares fewshot_split with it, not with `split`
    lines: dict[str, str] | None = None
    sources: tuple[tuple[str, str], ...] = ()  # (file name, sha256): the YAML, then each file it includes

    def where(self, key: str) -> str:
        """``line 7 (doc_to_text)``: where a key is written in the YAML (or in a file it includes)."""
        return _where(self.lines or {}, key)


def _where(lines: dict[str, str], key: str) -> str:
    place = lines.get(key)
    if place is None:
        place = lines.get(key.split(".", 1)[0].split("[", 1)[0])
    return f"{place} ({key})" if place is not None else key


class _Refusal:
    """Raises one `InputError` naming the YAML file, the key and its line."""

    def __init__(self, file: Path, lines: dict[str, str]):
        self.file, self.lines = file, lines

    def __call__(self, key: str, message: str, hint: str = "") -> InputError:
        return InputError(message, file=self.file, where=_where(self.lines, key), hint=hint)


@dataclass
class _Frame:
    path: str
    mapping: bool
    key: str | None = None
    index: int = 0
    expect_key: bool = True

    def child(self) -> str:
        if self.mapping:
            name = self.key or "?"
            return f"{self.path}.{name}" if self.path else name
        path = f"{self.path}[{self.index}]"
        self.index += 1
        return path


_Function = tuple[str, int, str, int]  # key path, line, reference, character offset of the tag


def _scan(data: bytes, file: Path) -> tuple[dict[str, int], list[_Function]]:
    """Key path -> line, and every ``!function`` (key path, line, reference), from the event stream only."""
    lines: dict[str, int] = {}
    functions: list[_Function] = []
    stack: list[_Frame] = []
    try:
        events = yaml.parse(data, Loader=yaml.SafeLoader)
        for count, event in enumerate(events):
            if count > _MAX_EVENTS:
                raise InputError("the task YAML is too large to be a task", file=file)
            if not isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                stack.pop()
                continue
            line = event.start_mark.line + 1 if event.start_mark else 0
            top = stack[-1] if stack else None
            if top is not None and top.mapping and top.expect_key:
                if not isinstance(event, yaml.ScalarEvent):
                    raise InputError("a mapping key must be plain text", file=file, where=f"line {line}")
                top.key, top.expect_key = event.value, False
                lines.setdefault(top.child(), line)
                continue
            path = "" if top is None else top.child()
            if top is not None and top.mapping:
                top.expect_key = True
            tag = getattr(event, "tag", None)
            if tag == "!function":
                offset = event.start_mark.index if event.start_mark else -1
                functions.append((path, line, getattr(event, "value", ""), offset))
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append(_Frame(path, isinstance(event, yaml.MappingStartEvent)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise InputError(f"malformed YAML: {exc.problem or exc.context}", file=file, where=where) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=file) from None
    return lines, functions


def _text(config: dict[str, Any], key: str, refuse: _Refusal, default: str) -> str:
    value = config.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise refuse(key, f"`{key}` must be text, not {type(value).__name__}")
    return value


def _check_keys(config: dict[str, Any], refuse: _Refusal) -> None:
    for key in config:
        if key in _REFUSED_HINTS:
            raise refuse(key, f"`{key}` cannot be translated to a receipts pack", _REFUSED_HINTS[key])
        if key not in _INFORMATIONAL and key not in _TRANSLATED:
            raise refuse(
                key,
                f"`{key}` is not an lm-eval 0.4.9 task key receipts translates",
                "remove it, or import a task that does not need it",
            )
    if config.get("unsafe_code"):
        raise refuse("unsafe_code", "the task declares unsafe_code: it runs model output as code", "")
    if config.get("repeats", 1) != 1:
        raise refuse("repeats", "repeats other than 1 (sampling several answers) cannot be translated")


def _output_type(config: dict[str, Any], refuse: _Refusal) -> OutputType:
    kind = config.get("output_type", "generate_until")
    if kind not in ("multiple_choice", "generate_until"):
        raise refuse(
            "output_type",
            f"output_type {kind!r} cannot be imported",
            "the importer translates multiple_choice and generate_until tasks",
        )
    return "multiple_choice" if kind == "multiple_choice" else "generate_until"


def _doc_fields(config: dict[str, Any], kind: OutputType, refuse: _Refusal) -> dict[str, Any]:
    text = config.get("doc_to_text")
    if not isinstance(text, str) or not text:
        raise refuse("doc_to_text", "doc_to_text must be a field name or a Jinja template", "")
    target = config.get("doc_to_target")
    if isinstance(target, bool) or not isinstance(target, str | int | list):
        raise refuse("doc_to_target", "doc_to_target must be a field name, a Jinja template or an index")
    choice = config.get("doc_to_choice")
    if kind == "multiple_choice" and choice is None:
        raise refuse("doc_to_choice", "a multiple_choice task needs doc_to_choice", "")
    if choice is not None and not isinstance(choice, str | list | dict):
        raise refuse("doc_to_choice", "doc_to_choice must be a field name, a Jinja template, a list or a map")
    return {"doc_to_text": text, "doc_to_target": target, "doc_to_choice": choice}


def _generation(config: dict[str, Any], kind: OutputType, refuse: _Refusal) -> dict[str, Any]:
    fewshot_delimiter = _text(config, "fewshot_delimiter", refuse, "\n\n")
    kwargs = config.get("generation_kwargs")
    if kind == "multiple_choice":
        if kwargs is not None:
            raise refuse("generation_kwargs", "generation_kwargs apply only to generate_until tasks")
        return {}
    kwargs = {} if kwargs is None else kwargs
    if not isinstance(kwargs, dict):
        raise refuse("generation_kwargs", "generation_kwargs must be a mapping")
    for key, value in kwargs.items():
        known = key in ("until", "max_gen_toks", "do_sample", "temperature")
        greedy_ok = key not in ("do_sample", "temperature") or not value
        if not known or not greedy_ok:
            raise refuse(
                f"generation_kwargs.{key}",
                f"generation_kwargs.{key}: {value!r} cannot be translated; receipts decodes greedily",
                "keep until and max_gen_toks; use do_sample: false, temperature: 0",
            )
    until = kwargs.get("until", [fewshot_delimiter])  # lm-eval's default stop: the fewshot delimiter
    until = [until] if isinstance(until, str) else until
    if not isinstance(until, list) or not all(isinstance(u, str) and u for u in until) or len(until) > 8:
        raise refuse("generation_kwargs.until", "until must be at most 8 non-empty stop strings")
    max_toks = kwargs.get("max_gen_toks", 256)  # lm-eval HFLM's default
    if isinstance(max_toks, bool) or not isinstance(max_toks, int) or not 1 <= max_toks <= 4096:
        raise refuse("generation_kwargs.max_gen_toks", "max_gen_toks must be an integer from 1 to 4096")
    return {"until": tuple(dict.fromkeys(until)), "max_gen_toks": max_toks}


def _filter(config: dict[str, Any], kind: OutputType, refuse: _Refusal, name: str | None) -> dict[str, Any]:
    entries = config.get("filter_list")
    if entries is None:
        if name is not None:
            raise refuse("filter_list", f"no filter named {name!r}: the task has no filter_list")
        return {}
    if kind == "multiple_choice":
        raise refuse("filter_list", "filters apply to generated text; a multiple_choice task has none")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise refuse("filter_list", "filter_list must be a list of {name, filter} entries")
    names = [e.get("name") for e in entries]
    index = 0 if name is None else (names.index(name) if name in names else -1)
    if index < 0:
        raise refuse("filter_list", f"no filter named {name!r}", f"choose one of: {names}")
    key = f"filter_list[{index}]"
    steps = entries[index].get("filter")
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise refuse(f"{key}.filter", "a filter is a list of {function: ...} steps")
    functions = [s.get("function") for s in steps]
    if functions not in (["take_first"], ["regex", "take_first"]):
        raise refuse(
            f"{key}.filter",
            f"filter {names[index]!r} is {functions}; only a plain regex then take_first translates",
            "use [{function: regex, regex_pattern: ...}, {function: take_first}], or --filter NAME",
        )
    out: dict[str, Any] = {"filter_name": str(names[index])}
    if functions[0] == "regex":
        step = steps[0]
        extra = set(step) - {"function", "regex_pattern", "group_select", "fallback"}
        pattern = step.get("regex_pattern", r"#### (\-?[0-9\.\,]+)")  # lm-eval's RegexFilter default
        select = step.get("group_select", 0)
        if extra or not isinstance(pattern, str) or select not in (0, -1):
            raise refuse(
                f"{key}.filter[0]",
                "the regex step must have regex_pattern (text) and group_select 0 or -1, nothing else",
            )
        out |= {"regex": pattern, "select": "first" if select == 0 else "last"}
    return out


def _metrics(config: dict[str, Any], kind: OutputType, refuse: _Refusal) -> dict[str, Any]:
    entries = config.get("metric_list")
    if entries is None:  # lm-eval's defaults by output type
        return {"scorers": ("accuracy", "acc_norm") if kind == "multiple_choice" else ("exact_match",)}
    if not isinstance(entries, list) or not entries:
        raise refuse("metric_list", "metric_list must be a list of {metric: ...} entries")
    scorers: list[str] = []
    normalise: list[str] = []
    for index, entry in enumerate(entries):
        key = f"metric_list[{index}]"
        metric = entry.get("metric") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or entry.get("aggregation", "mean") != "mean":
            raise refuse(key, "each metric must be {metric: NAME} with aggregation mean")
        options = set(entry) - {"metric", "aggregation", "higher_is_better"}
        if kind == "multiple_choice" and metric in _MC_METRICS and not options:
            scorers.append(_MC_METRICS[metric])
        elif kind == "generate_until" and metric == "exact_match":
            unknown = options - {"ignore_case", "ignore_punctuation"}
            if unknown:
                raise refuse(
                    f"{key}.{sorted(unknown)[0]}",
                    f"exact_match option {sorted(unknown)[0]!r} cannot be translated",
                    "receipts normalises with ignore_case and ignore_punctuation only; "
                    "fold regexes_to_ignore into doc_to_target and the filter regex",
                )
            scorers.append("exact_match")
            normalise += ["lower"] if entry.get("ignore_case") else []
            normalise += ["strip_punctuation"] if entry.get("ignore_punctuation") else []
        else:
            raise refuse(
                f"{key}.metric",
                f"metric {metric!r} with options {sorted(options)} cannot be translated for {kind}",
                "multiple_choice: acc, acc_norm; generate_until: exact_match",
            )
    return {"scorers": tuple(dict.fromkeys(scorers)), "normalise": tuple(dict.fromkeys(normalise))}


def _data(config: dict[str, Any], refuse: _Refusal) -> dict[str, Any]:
    path = config.get("dataset_path")
    kwargs = config.get("dataset_kwargs") or {}
    split = config.get("test_split") or config.get("validation_split") or "train"
    if not isinstance(split, str):
        raise refuse("test_split", "the split must be a name")
    if path is None or path not in _LOCAL_FORMATS:
        return {
            "data_format": None,
            "data_files": None,
            "split": split,
            "test_split": config.get("test_split"),
        }
    if not isinstance(kwargs, dict) or set(kwargs) - {"data_files"}:
        raise refuse("dataset_kwargs", "dataset_kwargs may hold only data_files for a local dataset")
    files = kwargs.get("data_files")
    shots = config.get("fewshot_split")
    fewshot_files = None
    if isinstance(files, dict):
        fewshot_files = files.get(shots) if isinstance(shots, str) else None
        files = files.get(split)
    if isinstance(fewshot_files, list) and len(fewshot_files) == 1:
        fewshot_files = fewshot_files[0]
    if fewshot_files is not None and not isinstance(fewshot_files, str):
        raise refuse("dataset_kwargs.data_files", f"name one local file for split {shots!r}")
    if isinstance(files, list) and len(files) == 1:
        files = files[0]
    if files is not None and not isinstance(files, str):
        raise refuse("dataset_kwargs.data_files", f"name one local file for split {split!r}")
    return {
        "data_format": _LOCAL_FORMATS[path],
        "data_files": files,
        "split": split,
        "fewshot_files": fewshot_files,
        "test_split": config.get("test_split"),
    }


def _fewshot(config: dict[str, Any], refuse: _Refusal) -> dict[str, Any]:
    """``num_fewshot`` with lm-eval's ``first_n`` sampler: the first n docs of the few-shot split, in order.

    lm-eval's default sampler draws shots with a seeded ``random.Random`` per task, in the order docs are
    requested; only ``first_n`` is deterministic per doc, so only it is translated.
    """
    n = config.get("num_fewshot") or 0
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 64:
        raise refuse("num_fewshot", "num_fewshot must be an integer from 0 to 64")
    if n == 0:
        return {}
    options = config.get("fewshot_config") or {}
    if not isinstance(options, dict) or options.get("sampler") != "first_n" or set(options) != {"sampler"}:
        raise refuse(
            "num_fewshot",
            "few-shot examples are translated only with fewshot_config: {sampler: first_n}; lm-eval's "
            "default sampler draws them with a seeded random generator in the order docs are requested",
            "set fewshot_config: {sampler: first_n} (the first n docs of fewshot_split), or num_fewshot: 0",
        )
    split = config.get("fewshot_split")
    if not isinstance(split, str):
        raise refuse("fewshot_split", "few-shot examples need a fewshot_split")
    return {"num_fewshot": n, "fewshot_split": split}


def _version(config: dict[str, Any]) -> str:
    metadata = config.get("metadata")
    version = metadata.get("version") if isinstance(metadata, dict) else None
    return "1.0" if version is None or isinstance(version, bool) else str(version)


@dataclass
class _Loaded:
    """One task YAML merged with what it includes, as lm_eval.utils.load_yaml_config merges them."""

    config: dict[str, Any]
    lines: dict[str, str]
    process_docs: str | None = None
    sources: list[tuple[str, str]] = field(default_factory=list)


def _function_refs(
    data: bytes, functions: list[_Function], refuse: _Refusal, ok: bool
) -> tuple[bytes, str | None]:
    """The YAML with a `process_docs` ``!function`` read as text when ``ok``; any other is refused."""
    text, process_docs = data, None
    for key, _line, reference, offset in functions:
        if key == "process_docs" and ok:
            process_docs = reference
            # the one tag read as text, in place (same lines and columns); nothing else is rewritten
            chars = data.decode("utf-8")
            if chars[offset : offset + 9] == "!function":
                text = (chars[:offset] + "!!str    " + chars[offset + 9 :]).encode("utf-8")
            continue
        hint = _PROCESS_DOCS_HINT if key == "process_docs" else _FUNCTION_HINT
        raise refuse(key, f"`{key}` is `!function {reference}`: Python code from the task's folder", hint)
    return text, process_docs


def _include_paths(value: Any, path: Path, chain: list[Path], refuse: _Refusal) -> list[Path]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise refuse("include", "include must name a YAML file, or a list of them")
    out = []
    for name in names:
        target = path.parent / name
        if not _INCLUDE_NAME.fullmatch(name) or not target.is_file() or target.is_symlink():
            raise refuse(
                "include",
                f"include {name!r} is not a YAML file beside this one",
                "receipts reads included YAML only from the task's own folder (a plain file name)",
            )
        if len(chain) > _MAX_INCLUDE_DEPTH or target.resolve() in chain:
            raise refuse("include", f"include {name!r} loops or nests more than {_MAX_INCLUDE_DEPTH} deep")
        out.append(target)
    return out


def _load(path: Path, chain: list[Path], main: Path, docs_processed: bool) -> _Loaded:
    data = read_bytes(path, what="task YAML", limit=MAX_TASK_YAML)
    label = "" if path == main else f"{path.name} "
    scanned, functions = _scan(data, path)
    lines = {key: f"{label}line {n}" for key, n in scanned.items()}
    refuse = _Refusal(main, lines)
    text, process_docs = _function_refs(data, functions, refuse, docs_processed)
    config = parse_yaml(text, file=path, limit=MAX_TASK_YAML)
    if not isinstance(config, dict):
        raise InputError("an lm-eval task YAML is a mapping of keys", file=path)
    loaded = _Loaded({}, {}, None, [(path.name, sha256_bytes(data))])
    if "include" in config:  # lm-eval: included keys first, then this file's own keys win
        for target in _include_paths(config.pop("include"), path, chain, refuse):
            inner = _load(target, [*chain, target.resolve()], main, docs_processed)
            loaded.config.update(inner.config)
            loaded.lines.update(inner.lines)
            loaded.process_docs = inner.process_docs or loaded.process_docs
            loaded.sources += inner.sources
        for key in config:  # nested key paths of an overridden key come from this file only
            loaded.lines = {k: v for k, v in loaded.lines.items() if k.split(".")[0].split("[")[0] != key}
    loaded.config.update(config)
    loaded.lines.update(lines)
    loaded.process_docs = process_docs or loaded.process_docs
    return loaded


def read_task(path: Path, *, filter_name: str | None = None, docs_processed: bool = False) -> TaskSpec:
    """Read and check an lm-eval task YAML (and the YAML files beside it that it ``include``s).

    Raises:
        InputError: the YAML is malformed, over `MAX_TASK_YAML`, uses ``!function`` (code), or asks for
            something the importer cannot translate; the message names the key and its line.
    """
    loaded = _load(path, [path.resolve()], path, docs_processed)
    config, lines, process_docs = loaded.config, loaded.lines, loaded.process_docs
    refuse = _Refusal(path, lines)
    if docs_processed and process_docs is None:
        raise InputError(
            "--docs-processed is for a task whose process_docs is a !function", file=path, hint="drop it"
        )
    _check_keys(config, refuse)
    if config.get("process_docs") is not None and process_docs is None:  # lm-eval would call it
        raise refuse(
            "process_docs", "process_docs must be `!function` code to mean anything", _PROCESS_DOCS_HINT
        )
    kind = _output_type(config, refuse)
    name = config.get("task")
    if not isinstance(name, str) or not name:
        raise refuse("task", "the task needs a `task` name")
    return TaskSpec(
        file=path,
        sha256=loaded.sources[0][1],
        name=name,
        output_type=kind,
        description=_text(config, "description", refuse, ""),
        target_delimiter=_text(config, "target_delimiter", refuse, " "),
        fewshot_delimiter=_text(config, "fewshot_delimiter", refuse, "\n\n"),
        version=_version(config),
        process_docs=process_docs,
        lines=lines,
        sources=tuple(loaded.sources),
        **_doc_fields(config, kind, refuse),
        **_generation(config, kind, refuse),
        **_filter(config, kind, refuse, filter_name),
        **_metrics(config, kind, refuse),
        **_data(config, refuse),
        **_fewshot(config, refuse),
    )
