"""``receipts pack import lm-eval``: an lm-eval 0.4.9 task YAML + local docs -> a receipts eval pack.

Each doc is posed once, at import, exactly as lm-eval 0.4.9 poses it (``api/task.py``: ``fewshot_context``
= rendered ``description`` + the ``first_n`` sampler's labeled examples (``api/samplers.py``
``get_context``) + ``doc_to_text``; multiple-choice continuations
``target_delimiter + choice``; ``doc_to_target`` and ``doc_to_choice`` read as lm-eval reads them: a field
name, or Jinja whose digit-only result is an index and whose ``[...]`` result is a Python literal). The pack
stores that text as the item's ``text`` field under the template ``{{ text }}``, its choices and gold,
and the original doc under ``doc``; so the pack poses lm-eval's exact strings and stays a plain pack
(variants, slices, digests and the loader's checks all apply). Templates run in the bounded Jinja sandbox
of pack templates (`runner.eval.templates`) with lm-eval's options (StrictUndefined, trailing newlines
kept, its ``regex_replace`` filter); nothing from the YAML or the data is executed as Python.

The pack is written into a fresh folder beside ``--out``, loaded and checked with `load_pack`, then
renamed to ``--out``: nothing else is created, and a refused import leaves nothing behind.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError, UndefinedError

from receipts._version import __version__
from receipts.digests import sha256_bytes
from receipts.errors import InputError, SchemaError, UsageError
from runner.eval.importers.lm_eval_data import Doc, read_docs, stable_ids
from runner.eval.importers.lm_eval_task import TaskSpec, read_task
from runner.eval.loader import load_pack
from runner.eval.templates import (
    MAX_TEMPLATE_OUTPUT,
    TEMPLATE_HINT,
    TemplateLimit,
    bounded_environment,
    template_line,
)

__all__ = ["IMPORT_FILE", "LM_EVAL_DIALECT", "ImportedPack", "import_lm_eval_task"]

LM_EVAL_DIALECT = "0.4.9"
IMPORT_FILE = "lm-eval-import.json"
_PACK_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_MAX_LITERAL = 100_000  # characters of a rendered doc_to_choice / doc_to_target read as a Python literal


def _regex_replace(string: str, pattern: str, repl: str, count: int = 0) -> str:
    """lm-eval's ``regex_replace`` filter (``re.sub``), refused before it could build too much."""
    text, pattern, repl = str(string), str(pattern), str(repl)
    if (len(text) + 1) * (len(repl) + 1) > MAX_TEMPLATE_OUTPUT:
        raise TemplateLimit("regex_replace could build more than a template may")
    return re.sub(pattern, repl, text, count=count)


# lm_eval.utils.env: StrictUndefined, keep_trailing_newline=True, the regex_replace filter; sandboxed here
_ENV = bounded_environment(
    filters={"regex_replace": _regex_replace},
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class ImportedPack:
    """What an import wrote: the pack folder, its id, how many items, and how many ids were derived."""

    path: Path
    id: str
    task: str
    items: int
    derived_ids: int
    digest: str


class _Renderer:
    """lm-eval's doc_to_text / doc_to_target / doc_to_choice over one task's docs, sandboxed."""

    def __init__(self, spec: TaskSpec, features: set[str], data_path: Path):
        self.spec, self.features, self.data_path = spec, features, data_path
        self._compiled: dict[str, Any] = {}

    def _fail(self, key: str, line: int, message: str, hint: str = "") -> InputError:
        return InputError(
            f"{message} (data line {line})", file=self.spec.file, where=self.spec.where(key), hint=hint
        )

    def apply(self, key: str, source: str, doc: Doc, line: int) -> str:
        """``lm_eval.utils.apply_template``, in the bounded sandbox; any failure names the key and line."""
        try:
            template = self._compiled.get(source) or _ENV.from_string(source)
            self._compiled[source] = template
            out, length = [], 0
            for chunk in template.generate(dict(doc)):
                length += len(chunk)
                if length > MAX_TEMPLATE_OUTPUT:
                    raise TemplateLimit(f"the text would be longer than {MAX_TEMPLATE_OUTPUT:,} characters")
                out.append(chunk)
            return "".join(out)
        except UndefinedError as exc:
            raise self._fail(key, line, f"`{key}` uses a field this doc lacks: {exc.message}") from None
        except (TemplateError, MemoryError) as exc:  # the sandbox's SecurityError is a TemplateError
            at = f" (template line {template_line(exc)})" if template_line(exc) else ""
            raise self._fail(key, line, f"`{key}` is refused{at}: {exc}", TEMPLATE_HINT) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError, re.error) as exc:
            raise self._fail(key, line, f"`{key}` fails to render: {exc}", "fix the template") from None

    def _literal(self, key: str, text: str, line: int) -> Any:
        if len(text) > _MAX_LITERAL:
            raise self._fail(key, line, f"`{key}` renders {len(text):,} characters; too long for a list")
        try:
            return ast.literal_eval(text)  # lm-eval's reading: a Python literal, never evaluated code
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise self._fail(key, line, f"`{key}` renders {text[:80]!r}, not a list literal") from None

    def _doc_text(self, doc: Doc, line: int) -> str:
        source = self.spec.doc_to_text
        value = doc[source] if source in self.features else self.apply("doc_to_text", source, doc, line)
        if isinstance(value, str) and value.isdigit() and self.spec.doc_to_choice is not None:
            value = int(value)
        if not isinstance(value, str):
            raise self._fail(
                "doc_to_text",
                line,
                f"doc_to_text gives {type(value).__name__} {value!r}, not text",
                "lm-eval's multiple-input form (text chosen by index, e.g. winogrande) is not imported",
            )
        return value

    def _shot(self, doc: Doc, line: int) -> str:
        """One labeled example as lm-eval's ``ContextSampler.get_context`` writes it."""
        out = self._doc_text(doc, line)
        target = self.target(doc, line)
        if target == "":
            return out
        if isinstance(target, list):
            text = str(target[0])
        elif self.spec.doc_to_choice is None or isinstance(target, str):
            text = str(target)
        else:
            choices = self.choices(doc, line) or []
            if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < len(choices):
                raise self._fail("doc_to_target", line, f"few-shot gold {target!r} is not a choice index")
            text = str(choices[target])
        return out + self.spec.target_delimiter + text + self.spec.fewshot_delimiter

    def text(self, doc: Doc, line: int, shots: Sequence[tuple[int, Doc]] = ()) -> str:
        """The prompt lm-eval poses: rendered description, the first_n few-shot examples, doc_to_text.

        ``shots`` is the few-shot split in order; when it is the test split (by name, as lm-eval
        compares), one more is drawn and the doc itself left out.
        """
        n = self.spec.num_fewshot
        labeled = ""
        if n:
            take = n + 1 if self.spec.fewshot_split == self.spec.test_split else n
            if take > len(shots):
                raise self._fail(
                    "num_fewshot", line, f"{take} few-shot docs needed; the split has {len(shots)}"
                )
            chosen = [(at, shot) for at, shot in shots[:take] if shot != doc][:n]
            labeled = "".join(self._shot(shot, at) for at, shot in chosen)
        description = self.apply("description", self.spec.description, doc, line)
        return description + labeled + self._doc_text(doc, line)

    def choices(self, doc: Doc, line: int) -> list[Any] | None:
        """``doc_to_choice``, as lm-eval reads it."""
        source = self.spec.doc_to_choice
        if source is None:
            return None
        if isinstance(source, dict):
            return list(source.values())
        if isinstance(source, list):
            return source
        if source in self.features:
            value = doc[source]
        else:
            value = self._literal("doc_to_choice", self.apply("doc_to_choice", source, doc, line), line)
        if not isinstance(value, list | tuple):
            raise self._fail("doc_to_choice", line, f"doc_to_choice gives {value!r}, not a list")
        return list(value)

    def target(self, doc: Doc, line: int) -> Any:
        """``doc_to_target``, as lm-eval reads it."""
        source = self.spec.doc_to_target
        if isinstance(source, int | list):
            return source
        if source in self.features:
            return doc[source]
        text = self.apply("doc_to_target", source, doc, line)
        if text.isdigit() and self.spec.doc_to_choice is not None:
            return int(text)
        if len(text) >= 2 and text[0] == "[" and text[-1] == "]":
            try:
                return ast.literal_eval(text) if len(text) <= _MAX_LITERAL else text
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return text
        return text


def _plain(value: Any) -> Any:
    """A doc value as JSON can carry it (parquet may hold bytes, dates; NaN is not JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _mc_item(r: _Renderer, doc: Doc, line: int, shots: Sequence[tuple[int, Doc]]) -> dict[str, Any]:
    choices = r.choices(doc, line) or []
    if len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise r._fail("doc_to_choice", line, f"choices must be at least 2 strings, not {choices!r}")
    if len(set(choices)) != len(choices):
        raise r._fail("doc_to_choice", line, f"choices repeat ({choices!r}); the gold would be ambiguous")
    gold = r.target(doc, line)
    if isinstance(gold, str) and gold in choices:
        gold = choices.index(gold)
    if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
        raise r._fail(
            "doc_to_target",
            line,
            f"gold {gold!r} is not one of the {len(choices)} choices (lm-eval would score this doc wrong)",
            "fix the doc, or drop it from the data",
        )
    return {"text": r.text(doc, line, shots), "choices": choices, "target": gold}


def _generate_item(r: _Renderer, doc: Doc, line: int, shots: Sequence[tuple[int, Doc]]) -> dict[str, Any]:
    gold = r.target(doc, line)
    choices = r.choices(doc, line)
    if choices is not None:  # lm-eval: with doc_to_choice, the target is an index into the choices
        if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
            raise r._fail("doc_to_target", line, f"gold {gold!r} is not an index into doc_to_choice")
        gold = choices[gold]
    golds = gold if isinstance(gold, list) else [gold]
    golds = [g if isinstance(g, str) else str(g) for g in golds]  # lm-eval casts gold to the output's type
    if not golds or any(isinstance(g, dict) for g in golds):
        raise r._fail("doc_to_target", line, f"gold {gold!r} is not text")
    return {"text": r.text(doc, line, shots), "target": golds[0] if len(golds) == 1 else golds}


def _pack_yaml(spec: TaskSpec, pack_id: str, license_id: str, data_sha: str) -> dict[str, Any]:
    name = spec.name[:100]
    pack: dict[str, Any] = {
        "id": pack_id,
        "version": spec.version if re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}", spec.version) else "1.0",
        "description": (
            f"Imported from the lm-eval {LM_EVAL_DIALECT} task {name!r} ({spec.output_type}) by "
            f"`receipts pack import lm-eval`: task YAML sha256 {spec.sha256}, data sha256 {data_sha}. "
            f"Each item's text is the prompt lm-eval poses; see {IMPORT_FILE}."
        ),
        "license": license_id,
        "task": "multiple_choice" if spec.output_type == "multiple_choice" else "generate",
        "data": "data/items.jsonl",
        "prompt": "{{ text }}",
        "target": "target",
        "scorers": list(spec.scorers),
    }
    if spec.output_type == "multiple_choice":
        pack |= {"choices": "choices", "target_delimiter": spec.target_delimiter}
    else:
        answer: dict[str, Any] = {}
        if spec.regex is not None:
            answer |= {"regex": spec.regex, "select": spec.select}
        if spec.normalise:
            answer["normalise"] = list(spec.normalise)
        if answer:
            pack["answer"] = answer
        pack["generation"] = {"max_new_tokens": spec.max_gen_toks, "stop": list(spec.until)}
    return pack


def _provenance(
    spec: TaskSpec, data_path: Path, data_sha: str, id_field: str, derived: int, n: int
) -> dict[str, Any]:
    try:
        installed: str | None = importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    return {
        "format": "receipts/lm-eval-import",
        "version": 1,
        "importer": f"receipts {__version__}",
        "lm_eval_dialect": LM_EVAL_DIALECT,
        "lm_eval_installed": installed,
        "task": spec.name,
        "output_type": spec.output_type,
        "source": {"file": spec.file.name, "sha256": spec.sha256},
        "includes": [{"file": name, "sha256": digest} for name, digest in spec.sources[1:]],
        "data": {"file": data_path.name, "sha256": data_sha, "split": spec.split, "docs": n},
        "ids": {
            "field": id_field,
            "derived": derived,
            "rule": 'the doc\'s own id where it is a valid item id (an integer n becomes "n"); '
            "otherwise row-<0-based row index>-<first 8 hex of sha256 of the doc's canonical JSON>",
        },
        "process_docs": None
        if spec.process_docs is None
        else {"function": spec.process_docs, "applied": "by the user before import (--docs-processed)"},
        "filter": spec.filter_name,
        "few_shot": 0,
    }


def _local(spec: TaskSpec, name: str) -> Path:
    """A data_files entry of the YAML: a file in the YAML's folder or below, never outside."""
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise InputError(
            f"data_files {name!r} leaves the task's folder",
            file=spec.file,
            where=spec.where("dataset_kwargs.data_files"),
            hint="pass the file with --data (or --fewshot-data) instead",
        )
    return spec.file.parent / relative


def _data_path(spec: TaskSpec, data: Path | None) -> Path:
    """``--data``, or the YAML's local data_files for the evaluated split."""
    if data is not None:
        return data
    if spec.data_files is None:
        raise UsageError(
            "the task names no local data file",
            file=spec.file,
            hint="pass the docs with --data FILE (jsonl, json, csv or parquet)",
        )
    return _local(spec, spec.data_files)


def _shots(
    spec: TaskSpec, rows: list[tuple[int, Doc]], fewshot_data: Path | None
) -> tuple[list[tuple[int, Doc]], dict[str, Any] | int]:
    """The few-shot split's docs in order (first_n draws from its head), and their provenance."""
    if not spec.num_fewshot:
        return [], 0
    record: dict[str, Any] = {"n": spec.num_fewshot, "sampler": "first_n", "split": spec.fewshot_split}
    if fewshot_data is None and spec.fewshot_files is None and spec.fewshot_split == spec.split:
        return rows, record | {"file": "the evaluated docs"}
    if fewshot_data is None and spec.fewshot_files is None:
        raise UsageError(
            f"num_fewshot needs the docs of split {spec.fewshot_split!r}",
            file=spec.file,
            hint="pass them with --fewshot-data FILE",
        )
    path = fewshot_data if fewshot_data is not None else _local(spec, str(spec.fewshot_files))
    raw, pool = read_docs(path, spec.data_format if fewshot_data is None else None)
    return pool, record | {"file": path.name, "sha256": sha256_bytes(raw)}


def _write(
    folder: Path, pack: Mapping[str, Any], items: list[dict[str, Any]], provenance: Mapping[str, Any]
) -> None:
    (folder / "data").mkdir()
    text = yaml.safe_dump(dict(pack), sort_keys=False, allow_unicode=True, width=1_000_000)
    (folder / "pack.yaml").write_text(text, encoding="utf-8")
    lines = (json.dumps(item, ensure_ascii=False, allow_nan=False) + "\n" for item in items)
    (folder / "data" / "items.jsonl").write_text("".join(lines), encoding="utf-8")
    (folder / IMPORT_FILE).write_text(
        json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def import_lm_eval_task(
    task_yaml: Path,
    out: Path,
    *,
    data: Path | None = None,
    pack_id: str | None = None,
    license_id: str = "NOASSERTION",
    id_field: str = "id",
    filter_name: str | None = None,
    docs_processed: bool = False,
    fewshot_data: Path | None = None,
) -> ImportedPack:
    """Translate an lm-eval task YAML and its local docs into a pack folder at ``out`` (see module doc).

    Raises:
        UsageError: ``out`` exists, its parent does not, the pack id is invalid, or no data is named.
        InputError: the YAML or a doc cannot be translated (names the YAML key and line, or the data line).
        SchemaError: the written pack fails `load_pack` (nothing is left behind).
    """
    pack_id = pack_id if pack_id is not None else out.name
    if not _PACK_ID.match(pack_id):
        raise UsageError(
            f"pack id {pack_id!r} is not a valid pack id",
            hint="lowercase letters, digits, . _ - (name --out so, or pass --id)",
        )
    if out.exists() or out.is_symlink():
        raise UsageError("the output folder exists", file=out, hint="choose a new --out, or remove it first")
    if not out.parent.is_dir():
        raise UsageError("the output folder's parent does not exist", file=out.parent, hint="create it first")
    spec = read_task(task_yaml, filter_name=filter_name, docs_processed=docs_processed)
    data_path = _data_path(spec, data)
    raw, rows = read_docs(data_path, spec.data_format if data is None else None)  # --data: its own suffix
    ids = stable_ids(rows, id_field, data_path)
    shots, few_shot = _shots(spec, rows, fewshot_data)
    features = {key for _, doc in rows for key in doc}
    renderer = _Renderer(spec, features, data_path)
    build: Callable[[_Renderer, Doc, int, Sequence[tuple[int, Doc]]], dict[str, Any]] = (
        _mc_item if spec.output_type == "multiple_choice" else _generate_item
    )
    items = [
        {"id": item_id, **build(renderer, doc, line, shots), "doc": _plain(doc)}
        for item_id, (line, doc) in zip(ids, rows, strict=True)
    ]
    data_sha = sha256_bytes(raw)
    derived = sum(
        1
        for item_id, (_, doc) in zip(ids, rows, strict=True)
        if item_id.startswith("row-") and doc.get(id_field) != item_id
    )
    pack = _pack_yaml(spec, pack_id, license_id, data_sha)
    provenance = _provenance(spec, data_path, data_sha, id_field, derived, len(rows)) | {"few_shot": few_shot}
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write(staging, pack, items, provenance)
        loaded = load_pack(staging)
        os.rename(staging, out)  # atomic; refused if `out` appeared meanwhile and is not empty
    except SchemaError as exc:  # named as the pack it would have been (the staging folder is gone)
        shutil.rmtree(staging, ignore_errors=True)
        raise SchemaError(out / "pack.yaml", "pack", exc.violations) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportedPack(out, pack_id, spec.name, len(items), derived, loaded.digest)
