"""Eval packs: load ``pack.yaml`` + ``data/*.jsonl`` strictly, check every item, materialise prompts.

A pack is refused at load time, with every problem listed, rather than half-way through a run:
the schema (every JSON path), each JSONL line (file:line), duplicate ids, gold answers that do not
fit their choices, and every template rendered against every item (a missing field names the item
and the field). The pack digest is the model_signing v1.0 folder digest (DESIGN §5), and the bytes
parsed are checked against it, so the items a run uses are the items the digest names.

Templates are untrusted: they run sandboxed, and a template that would build more than
`MAX_TEMPLATE_OUTPUT` characters (in a prompt or any value), or loop or call more than
`MAX_TEMPLATE_STEPS` times, is refused with one `InputError` naming pack.yaml, the template's JSON
path and its line.

No torch here: the runner's backends consume the `PromptInstance` stream this module yields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import (
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from jinja2 import (
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
)

from receipts import schemas
from receipts.digests import WeightsDigest, digest_weights, sha256_bytes
from receipts.documents import parse_json, parse_yaml, read_bytes
from receipts.errors import InputError, SchemaError, UsageError, Violation
from runner.answers import (
    BEHAVIOURS,
    NORMALISERS,
    SQUAD_STEPS,
    Behaviour,
    BehaviourRules,
    behaviour_matches,
    extract_answer,
    extract_json,
    field_text,
    normalise,
    observed_behaviours,
)
from runner.perturbations import PERTURBATIONS, PerturbationSpec, perturb
from runner.templates import (
    TEMPLATE_HINT,
    TemplateLimit,
    compile_template,
    limit_error,
    render_template,
    template_line,
    undeclared_fields,
)

__all__ = [
    "BEHAVIOURS",
    "NORMALISERS",
    "ORIGINAL",
    "PERTURBATIONS",
    "SQUAD_STEPS",
    "TASKS",
    "AnswerRule",
    "BehaviourRules",
    "FewShot",
    "Generation",
    "Item",
    "Pack",
    "PerturbationSpec",
    "PromptInstance",
    "Variant",
    "behaviour_matches",
    "extract_answer",
    "extract_json",
    "field_text",
    "load_pack",
    "materialise",
    "normalise",
    "observed_behaviours",
    "pack_digest",
    "perturb",
    "render_prompt",
]

TASKS = ("multiple_choice", "generate", "classify", "extract")
ORIGINAL = "original"
DEFAULT_SCORERS: Mapping[str, tuple[str, ...]] = {
    "multiple_choice": ("accuracy", "acc_norm"),
    "generate": ("exact_match",),
    "classify": ("accuracy",),
    "extract": ("json_valid", "field_prf"),
}
PACK_FILE = "pack.yaml"
MAX_PACK_YAML = 1024 * 1024
MAX_DATA_FILE = 256 * 1024 * 1024
MAX_REPORTED = 100
# the item-id rule of card.schema.json's pack_item, so cards can cite any item as <pack-id>/<item-id>
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")

Label = str | int | bool
Gold = int | tuple[str, ...] | Mapping[str, Any] | None


# Records are frozen dataclasses whose mappings are typed read-only (`Mapping`) but are plain dicts,
# so packs and prompt instances pickle (worker processes, caches); treat them as immutable.


@dataclass(frozen=True)
class Item:
    """One eval item: its fields as written, and what the pack's mapping makes of them."""

    id: str
    fields: Mapping[str, Any]
    file: str
    line: int
    gold: Gold
    choices: tuple[str, ...] | None = None
    slices: Mapping[str, Label] = field(default_factory=dict)
    critical: bool = False
    expected: Behaviour = "answer"
    clarify_pattern: str | None = None

    @property
    def where(self) -> str:
        """``data/items.jsonl:7``: where the item is written."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Variant:
    """One way of posing every item: a template, optionally with a perturbation of some fields."""

    name: str
    kind: str  # original | rewording | format | perturbation
    template: str  # Jinja2 source
    perturbation: PerturbationSpec | None = None
    fields: tuple[str, ...] = ()  # the fields the perturbation changes
    description: str = ""


@dataclass(frozen=True)
class AnswerRule:
    """How the answer is taken from an output: optional regex, then normalisation steps."""

    regex: str | None = None
    select: str = "first"
    steps: tuple[str, ...] = ()

    def normalise(self, text: str) -> str:
        """``text`` (an answer or a reference) after the pack's normalisation steps."""
        return normalise(text, self.steps)

    def extract(self, output: str) -> str | None:
        """The normalised answer in a model output, or ``None`` when the regex does not match."""
        found = extract_answer(output, self.regex, select="last" if self.select == "last" else "first")
        return None if found is None else self.normalise(found)


@dataclass(frozen=True)
class Generation:
    """Greedy decoding limits for generated answers."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class FewShot:
    """Worked examples put before every prompt, rendered with the variant's template."""

    items: tuple[Item, ...]
    delimiter: str = "\n\n"


@dataclass(frozen=True)
class Pack:
    """A loaded, checked eval pack. ``digest`` is the folder's model_signing root (hex)."""

    path: Path
    id: str
    version: str
    license: str
    task: str
    digest: str
    items: tuple[Item, ...]
    templates: Mapping[str, str]
    variants: tuple[Variant, ...]
    slices: tuple[str, ...] = ()
    scorers: tuple[str, ...] = ()
    answer: AnswerRule = field(default_factory=AnswerRule)
    behaviour: BehaviourRules = field(default_factory=BehaviourRules)
    generation: Generation = field(default_factory=Generation)
    gate: Mapping[str, float] = field(default_factory=dict)
    target_delimiter: str = " "
    fields: tuple[str, ...] = ()
    few_shot: FewShot | None = None
    description: str = ""
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def variant_names(self) -> tuple[str, ...]:
        """``original`` first, then the pack's variants in order."""
        return tuple(v.name for v in self.variants)

    @property
    def critical_items(self) -> tuple[Item, ...]:
        """The critical cohort: items marked ``critical: true``."""
        return tuple(item for item in self.items if item.critical)

    def item(self, item_id: str) -> Item:
        """The item with this id.

        Raises:
            KeyError: no such item.
        """
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


@dataclass(frozen=True)
class PromptInstance:
    """One item posed one way: the exact prompt every role sees, and what counts as right."""

    item_id: str
    variant: str
    prompt: str
    prompt_sha256: str
    gold: Gold
    choices: tuple[str, ...] | None = None
    continuations: tuple[str, ...] | None = None
    critical: bool = False
    slices: Mapping[str, Label] = field(default_factory=dict)
    expected: Behaviour = "answer"
    clarify_pattern: str | None = None


def pack_digest(path: Path) -> str:
    """The pack folder's digest (hex root of the model_signing v1.0 files rule), as receipts bind it.

    Raises:
        InputError: the folder is missing, holds a symbolic link, or cannot be read.
    """
    return digest_weights(path).root


# --- loading -------------------------------------------------------------------------------------


class _Problems:
    """Every problem found in a pack, reported together as one `SchemaError`."""

    def __init__(self, file: Path):
        self.file = file
        self.found: list[Violation] = []

    def add(self, where: str, message: str, hint: str = "") -> None:
        self.found.append(Violation(where, message, hint))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        shown = self.found[:MAX_REPORTED]
        if len(self.found) > MAX_REPORTED:
            more = len(self.found) - MAX_REPORTED
            shown.append(Violation("...", f"and {more} more problems", "fix the ones above first"))
        raise SchemaError(self.file, "pack", shown)


def _read_checked(folder: Path, relpath: str, digest: WeightsDigest, *, what: str, limit: int) -> bytes:
    """A file's bytes, refused unless they are the bytes the pack digest covers."""
    data = read_bytes(folder / relpath, what=what, limit=limit)
    if digest.files.get(relpath) != sha256_bytes(data):
        raise InputError(
            f"{what} changed while the pack was being read",
            file=folder / relpath,
            hint="do not edit a pack during a run; run again",
        )
    return data


def _spec_of(yaml_path: Path, folder: Path, digest: WeightsDigest) -> dict[str, Any]:
    data = _read_checked(folder, PACK_FILE, digest, what="pack.yaml", limit=MAX_PACK_YAML)
    spec = parse_yaml(data, file=yaml_path)
    if not isinstance(spec, dict):
        raise SchemaError(yaml_path, "pack", [Violation("$", "a pack.yaml must be a mapping", "see packs/")])
    schemas.validate(spec, "pack", file=yaml_path)
    return spec


def _templates(spec: Mapping[str, Any], problems: _Problems) -> dict[str, str]:
    prompt = spec["prompt"]
    if isinstance(prompt, str):
        named = {"default": prompt}
    else:
        named = {}
        for index, entry in enumerate(prompt):
            if entry["name"] in named:
                problems.add(f"$.prompt[{index}].name", f"template name {entry['name']!r} is used twice")
            named[entry["name"]] = entry["template"]
    return named


def _check_syntax(source: str, where: str, problems: _Problems) -> bool:
    try:
        compile_template(source)
    except TemplateSyntaxError as exc:
        problems.add(
            where, f"Jinja2 syntax error on template line {exc.lineno}: {exc.message}", "fix the template"
        )
        return False
    except (RecursionError, SyntaxError):  # Jinja's parser recurses; Python's compiler caps nesting
        problems.add(where, "the template is nested too deeply to compile", TEMPLATE_HINT)
        return False
    return True


def _template_paths(spec: Mapping[str, Any]) -> dict[str, str]:
    """Where each template is written in pack.yaml (a JSON path; the first place, if several)."""
    prompt = spec["prompt"]
    if isinstance(prompt, str):
        paths = {prompt: "$.prompt"}
    else:
        paths = {}
        for index, entry in enumerate(prompt):
            paths.setdefault(entry["template"], f"$.prompt[{index}].template")
    for index, entry in enumerate(spec.get("variants", [])):
        if "template" in entry:
            paths.setdefault(entry["template"], f"$.variants[{index}].template")
    return paths


def _text_fields(source: str, spec: Mapping[str, Any]) -> tuple[str, ...]:
    """Fields a perturbation changes by default: template inputs that are not answers or labels."""
    used = undeclared_fields(source)
    reserved = {"id", "critical", spec["target"], *spec.get("slices", [])}
    for key in ("choices", "behaviour"):
        if isinstance(spec.get(key), str):
            reserved.add(spec[key])
    clarify = spec.get("clarify", {})
    if "pattern_field" in clarify:
        reserved.add(clarify["pattern_field"])
    return tuple(sorted(used - reserved))


def _variants(spec: Mapping[str, Any], named: Mapping[str, str], problems: _Problems) -> list[Variant]:
    default = next(iter(named.values()))
    out = [Variant(ORIGINAL, "original", default, description="the item as written, default template")]
    for index, entry in enumerate(spec.get("variants", [])):
        where = f"$.variants[{index}]"
        name = entry["name"]
        if name in {v.name for v in out}:
            problems.add(
                f"{where}.name", f"variant name {name!r} is used twice", "give each variant its own name"
            )
        source = entry.get("template", default)
        if "prompt" in entry:
            if entry["prompt"] not in named:
                problems.add(
                    f"{where}.prompt",
                    f"no prompt template named {entry['prompt']!r}",
                    f"use one of: {', '.join(named)}",
                )
                continue
            source = named[entry["prompt"]]
        elif "template" in entry and not _check_syntax(source, f"{where}.template", problems):
            continue
        spec_p: PerturbationSpec | None = None
        fields: tuple[str, ...] = ()
        if entry["kind"] == "perturbation":
            spec_p = PerturbationSpec(
                entry["perturbation"], entry.get("seed", 0), entry.get("rate"), entry.get("mode")
            )
            fields = tuple(entry["fields"]) if "fields" in entry else _text_fields(source, spec)
            if not fields:
                problems.add(
                    where,
                    "this perturbation has no text field to change",
                    "list the item `fields` to perturb",
                )
        out.append(Variant(name, entry["kind"], source, spec_p, fields, entry.get("description", "")))
    return out


def _data_paths(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _jsonl(folder: Path, relpath: str, digest: WeightsDigest) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line; malformed lines stop the load with file:line."""
    path = folder / relpath
    data = _read_checked(folder, relpath, digest, what="data file", limit=MAX_DATA_FILE)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(lines, start=1):
        hint = 'each line must be one JSON object: {"id": "...", ...}'
        if not raw.strip():
            raise InputError("blank line", file=path, where=f"line {number}", hint="remove it")
        try:
            value = parse_json(raw, file=path)
        except InputError as exc:
            column = exc.where.rsplit("column", 1)[-1].strip() if "column" in exc.where else ""
            where = f"line {number}" + (f" column {column}" if column else "")
            raise InputError(exc.message, file=path, where=where, hint=hint) from None
        if not isinstance(value, dict):
            raise InputError(
                f"a line holds a JSON {type(value).__name__}, not an object",
                file=path,
                where=f"line {number}",
                hint=hint,
            )
        yield number, value


def _is_label(value: Any) -> bool:
    return isinstance(value, str | int | bool)


class _ItemReader:
    """Turns JSON objects into `Item`s under the pack's mapping, recording problems."""

    def __init__(self, spec: Mapping[str, Any], variants: Sequence[Variant], problems: _Problems):
        self.spec = spec
        self.task: str = spec["task"]
        self.variants = variants
        self.problems = problems
        self.seen: dict[str, str] = {}

    def read(self, relpath: str, line: int, obj: dict[str, Any]) -> Item | None:
        where = f"{relpath}:{line}"
        count = len(self.problems.found)
        item_id = obj.get("id")
        if item_id is None:
            self.problems.add(
                f"{where} $.id", "item has no `id`", "give every item a unique string id, e.g. cap-001"
            )
            return None
        if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
            self.problems.add(
                f"{where} $.id",
                f"item id {item_id!r} is not a valid id",
                "use a string of letters, digits and . _ : - (starting with a letter or digit), e.g. cap-001",
            )
            return None
        if item_id in self.seen:
            self.problems.add(
                f"{where} $.id",
                f"duplicate item id {item_id!r} (first at {self.seen[item_id]})",
                "give every item a unique id",
            )
            return None
        self.seen[item_id] = where
        report = _Reporter(self.problems, where, item_id)
        critical = obj.get("critical", False)
        if not isinstance(critical, bool):
            report("critical", f"`critical` must be true or false, not {critical!r}")
        slices = self._slices(obj, report)
        expected = self._expected(obj, report)
        choices = self._choices(obj, report)
        gold = self._gold(obj, choices, expected, report)
        pattern = self._clarify_pattern(obj, report)
        for variant in self.variants:
            if variant.perturbation is None:
                continue
            for name in variant.fields:
                if name in obj and not isinstance(obj[name], str):
                    report(name, f"variant {variant.name!r} perturbs `{name}`, which is not text here")
        if len(self.problems.found) > count:
            return None
        return Item(
            id=item_id,
            fields=obj,
            file=relpath,
            line=line,
            gold=gold,
            choices=choices,
            slices=slices,
            critical=bool(critical),
            expected=expected,
            clarify_pattern=pattern,
        )

    def _slices(self, obj: Mapping[str, Any], report: _Reporter) -> dict[str, Label]:
        labels: dict[str, Label] = {}
        for name in self.spec.get("slices", []):
            if name not in obj:
                report(
                    name,
                    f"has no slice label `{name}`",
                    f"add `{name}` to the item (slices: {name} in pack.yaml)",
                )
            elif not _is_label(obj[name]):
                report(name, f"slice label `{name}` must be a string, integer or boolean, not {obj[name]!r}")
            else:
                labels[name] = obj[name]
        return labels

    def _expected(self, obj: Mapping[str, Any], report: _Reporter) -> Behaviour:
        name = self.spec.get("behaviour")
        if name is None:
            return "answer"
        value = obj.get(name)
        if value not in BEHAVIOURS:
            report(name, f"expected behaviour `{name}` is {value!r}", f"use one of: {', '.join(BEHAVIOURS)}")
            return "answer"
        return cast(Behaviour, value)

    def _choices(self, obj: Mapping[str, Any], report: _Reporter) -> tuple[str, ...] | None:
        source = self.spec.get("choices")
        if self.task not in ("multiple_choice", "classify") or source is None:
            return None
        if isinstance(source, list):
            return tuple(source)
        value = obj.get(source)
        if source not in obj:
            report(source, f"has no choices field `{source}`", f"add `{source}`: a list of choice strings")
        elif not isinstance(value, list) or len(value) < 2 or not all(isinstance(c, str) for c in value):
            report(source, f"choices `{source}` must be a list of at least 2 strings, not {value!r}")
        elif len(set(value)) != len(value):
            report(source, "choices repeat; the gold answer would be ambiguous", "make every choice distinct")
        else:
            return tuple(value)
        return None

    def _gold(
        self, obj: Mapping[str, Any], choices: tuple[str, ...] | None, expected: str, report: _Reporter
    ) -> Gold:
        name = self.spec["target"]
        if name not in obj:
            report(name, f"has no target field `{name}`", f"add `{name}` (target: {name} in pack.yaml)")
            return None
        value = obj[name]
        if value is None and expected != "answer":
            return None
        if self.task in ("multiple_choice", "classify"):
            return self._gold_index(name, value, choices, report)
        if self.task == "generate":
            if isinstance(value, str):
                return (value,)
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return tuple(value)
            report(name, f"target `{name}` must be a string or a list of strings, not {value!r}")
            return None
        fields = self.spec["fields"]
        if not isinstance(value, dict):
            report(name, f"target `{name}` must be a JSON object with keys {fields}, not {value!r}")
            return None
        missing, extra = [f for f in fields if f not in value], [k for k in value if k not in fields]
        if missing or extra:
            report(
                name,
                f"target keys differ from `fields`: missing {missing}, unexpected {extra}",
                "give exactly the keys listed in `fields` (null where the text has no value)",
            )
            return None
        return value

    def _gold_index(
        self, name: str, value: Any, choices: tuple[str, ...] | None, report: _Reporter
    ) -> int | None:
        if choices is None:
            return None  # already reported
        if isinstance(value, str) and value in choices:
            return choices.index(value)
        if isinstance(value, bool) or not isinstance(value, int):
            report(name, f"gold `{name}` must be a 0-based choice index or one of the choices, not {value!r}")
            return None
        if not 0 <= value < len(choices):
            report(
                name,
                f"gold index {value} is out of range for {len(choices)} choices",
                f"use 0 to {len(choices) - 1} (indices are 0-based)",
            )
            return None
        return value

    def _clarify_pattern(self, obj: Mapping[str, Any], report: _Reporter) -> str | None:
        name = self.spec.get("clarify", {}).get("pattern_field")
        if name is None or obj.get(name) is None:
            return None
        value = obj[name]
        try:
            re.compile(value)
        except (re.error, TypeError) as exc:
            report(name, f"clarify pattern is not a regular expression: {exc}")
            return None
        return str(value)


class _Reporter:
    """Records a problem about one field of one item."""

    def __init__(self, problems: _Problems, where: str, item_id: str):
        self.problems, self.where, self.item_id = problems, where, item_id

    def __call__(self, name: str, message: str, hint: str = "") -> None:
        self.problems.add(f"{self.where} $.{name}", f"item {self.item_id}: {message}", hint)


def _missing_field(exc: UndefinedError) -> str:
    found = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", exc.message or "")
    return next((g for g in found.groups() if g), "?") if found else "?"


def _render_all(
    items: Iterable[Item],
    variants: Sequence[Variant],
    named: Mapping[str, str],
    paths: Mapping[str, str],
    problems: _Problems,
) -> None:
    """Render every template against every item now, so no run discovers a broken one halfway.

    Raises:
        InputError: a template goes over the limits on what it may build (names its path and line).
    """
    sources = {v.template: f"variant {v.name!r}" for v in reversed(variants)}
    for name, source in named.items():
        sources.setdefault(source, f"prompt template {name!r}")
    for item in items:
        for source, label in sources.items():
            try:
                render_template(source, item.fields)
            except (TemplateLimit, MemoryError) as exc:  # one error, not one per item
                raise limit_error(exc, problems.file, paths.get(source, label)) from None
            except UndefinedError as exc:
                missing = _missing_field(exc)
                problems.add(
                    f"{item.where} $.{missing}",
                    f"item {item.id}: {label} uses field `{missing}`, which this item lacks ({exc.message})",
                    f"add `{missing}` to the item, or fix the template",
                )
            except (
                TemplateError,
                TypeError,
                ValueError,
                ArithmeticError,
                LookupError,
                RecursionError,
            ) as exc:
                line = template_line(exc)
                at = f" (template line {line})" if line is not None else ""
                problems.add(
                    f"{item.where}", f"item {item.id}: {label} fails to render{at}: {exc}", "fix the template"
                )


def _read_items(folder: Path, paths: Sequence[str], digest: WeightsDigest, reader: _ItemReader) -> list[Item]:
    items = []
    for relpath in paths:
        for line, obj in _jsonl(folder, relpath, digest):
            item = reader.read(relpath, line, obj)
            if item is not None:
                items.append(item)
    return items


def _answer_text(item: Item, task: str) -> str:
    """A worked example's answer as the model should write it (gold presence is checked at load)."""
    if task in ("multiple_choice", "classify"):
        return cast(tuple[str, ...], item.choices)[cast(int, item.gold)]
    if task == "generate":
        return cast(tuple[str, ...], item.gold)[0]
    return json.dumps(dict(cast(Mapping[str, Any], item.gold)), ensure_ascii=False)


def _few_shot(
    spec: Mapping[str, Any], folder: Path, digest: WeightsDigest, reader: _ItemReader, problems: _Problems
) -> FewShot | None:
    entry = spec.get("few_shot")
    if entry is None:
        return None
    shots = _read_items(folder, [entry["data"]], digest, reader)[: entry["n"]]
    if len(shots) < entry["n"]:
        problems.add(
            "$.few_shot.n", f"asks for {entry['n']} examples; {entry['data']} has {len(shots)} usable"
        )
    for shot in shots:
        if shot.gold is None:
            problems.add(
                f"{shot.where} $.{spec['target']}", f"item {shot.id}: a few-shot example needs a gold answer"
            )
    return FewShot(tuple(shots), entry.get("delimiter", "\n\n"))


def _rules(spec: Mapping[str, Any]) -> BehaviourRules:
    def markers(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        return tuple(value["markers"] if isinstance(value, dict) else value)

    clarify = spec.get("clarify", {})
    return BehaviourRules(
        abstain=markers(spec.get("abstain")),
        clarify=markers(clarify or None),
        refuse=markers(spec.get("refuse")),
        require_question_mark=clarify.get("require_question_mark", True),
        clarify_pattern_field=clarify.get("pattern_field"),
    )


def _locate(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        yaml_path = path / PACK_FILE
        if not yaml_path.is_file():
            raise InputError(
                "no pack.yaml in this folder", file=path, hint="pass a pack folder such as packs/capitals-mc"
            )
        return path, yaml_path
    if path.name != PACK_FILE:
        raise InputError(
            "a pack is a folder holding pack.yaml", file=path, hint="pass the pack folder or its pack.yaml"
        )
    if not path.exists():
        raise InputError("pack.yaml does not exist", file=path, hint="check the path")
    return path.parent, path


def load_pack(path: Path) -> Pack:
    """Load and check a pack folder (or its ``pack.yaml``).

    Raises:
        InputError: a file is missing, unreadable, a symbolic link, or not JSON Lines (names file:line);
            or a template goes over the limits on what it may build (``MAX_TEMPLATE_OUTPUT``...).
        SchemaError: pack.yaml fails schema/pack (every JSON path), or items fail the pack's mapping:
            missing or duplicate ids, bad choices or gold, missing slice labels, templates that use a
            field an item lacks (each names file:line, the item id and the field).
    """
    folder, yaml_path = _locate(Path(path))
    digest = digest_weights(folder)
    spec = _spec_of(yaml_path, folder, digest)
    problems = _Problems(yaml_path)
    named = _templates(spec, problems)
    paths = (
        ["$.prompt"]
        if isinstance(spec["prompt"], str)
        else [f"$.prompt[{n}].template" for n in range(len(named))]
    )
    syntax_ok = all([_check_syntax(s, p, problems) for s, p in zip(named.values(), paths, strict=False)])
    variants = _variants(spec, named, problems)
    problems.raise_if_any()  # templates must compile before items can be rendered
    reader = _ItemReader(spec, variants, problems)
    items = _read_items(folder, _data_paths(spec["data"]), digest, reader)
    if not items and not problems.found:
        problems.add(
            "$.data", "the pack has no items", "add items to the data files, one JSON object per line"
        )
    few_shot = _few_shot(spec, folder, digest, reader, problems)
    if syntax_ok:
        everything = [*items, *(few_shot.items if few_shot else ())]
        _render_all(everything, variants, named, _template_paths(spec), problems)
    problems.raise_if_any()
    answer = spec.get("answer", {})
    generation = spec.get("generation", {})
    return Pack(
        path=folder,
        id=spec["id"],
        version=spec["version"],
        license=spec["license"],
        task=spec["task"],
        digest=digest.root,
        items=tuple(items),
        templates=named,
        variants=tuple(variants),
        slices=tuple(spec.get("slices", ())),
        scorers=tuple(spec.get("scorers", DEFAULT_SCORERS[spec["task"]])),
        answer=AnswerRule(
            answer.get("regex"), answer.get("select", "first"), tuple(answer.get("normalise", ()))
        ),
        behaviour=_rules(spec),
        generation=Generation(generation.get("max_new_tokens", 32), tuple(generation.get("stop", ()))),
        gate={k: float(v) for k, v in spec.get("gate", {}).items()},
        target_delimiter=spec.get("target_delimiter", " "),
        fields=tuple(spec.get("fields", ())),
        few_shot=few_shot,
        description=spec.get("description", ""),
        spec=spec,
    )


# --- materialising -------------------------------------------------------------------------------


def _chosen(pack: Pack, names: Sequence[str] | None) -> list[Variant]:
    if names is None:
        return list(pack.variants)
    by_name = {v.name: v for v in pack.variants}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(
            f"pack {pack.id} has no variant {', '.join(map(repr, unknown))}",
            hint=f"choose from: {', '.join(by_name)}",
        )
    return [by_name[n] for n in dict.fromkeys(names)]


def _prefix(pack: Pack, variant: Variant) -> str:
    if pack.few_shot is None:
        return ""
    shots = [
        render_template(variant.template, shot.fields) + pack.target_delimiter + _answer_text(shot, pack.task)
        for shot in pack.few_shot.items
    ]
    return pack.few_shot.delimiter.join(shots) + pack.few_shot.delimiter


def render_prompt(pack: Pack, item: Item, variant: Variant) -> str:
    """The prompt text for one item under one variant (few-shot examples included).

    Perturbations change only the item's text fields, never the template's own words, the choices
    or the gold answer; they are deterministic given (seed, item id, variant name, field).

    Raises:
        InputError: the template goes over the limits on what it may build.
    """
    with _limits(pack, variant):
        return _prefix(pack, variant) + _body(item, variant)


@contextmanager
def _limits(pack: Pack, variant: Variant) -> Iterator[None]:
    try:
        yield
    except (TemplateLimit, MemoryError) as exc:
        raise limit_error(exc, pack.path / PACK_FILE, f"variant {variant.name!r}") from None


def _body(item: Item, variant: Variant) -> str:
    fields = dict(item.fields)
    if variant.perturbation is not None:
        for name in variant.fields:
            if isinstance(fields.get(name), str):
                fields[name] = perturb(
                    fields[name], variant.perturbation, item_id=item.id, variant=variant.name, field=name
                )
    return render_template(variant.template, fields)


def materialise(
    pack: Pack, variants: Sequence[str] | None = None, *, items: Iterable[Item] | None = None
) -> Iterator[PromptInstance]:
    """Every (item, variant) prompt of ``pack``, item by item, variants in pack order.

    ``variants`` names the variants to use (default: all, ``original`` first). Multiple-choice and
    classify instances carry their choices and lm-eval continuations (target_delimiter + choice).

    Raises:
        UsageError: a requested variant does not exist in the pack.
        InputError: a template goes over the limits on what it may build.
    """
    chosen = _chosen(pack, variants)
    prefixes = {}
    for variant in chosen:
        with _limits(pack, variant):
            prefixes[variant.name] = _prefix(pack, variant)
    for item in pack.items if items is None else items:
        continuations = None
        if item.choices is not None:
            continuations = tuple(pack.target_delimiter + choice for choice in item.choices)
        for variant in chosen:
            with _limits(pack, variant):
                prompt = prefixes[variant.name] + _body(item, variant)
            yield PromptInstance(
                item_id=item.id,
                variant=variant.name,
                prompt=prompt,
                prompt_sha256=hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                gold=item.gold,
                choices=item.choices,
                continuations=continuations,
                critical=item.critical,
                slices=item.slices,
                expected=item.expected,
                clarify_pattern=item.clarify_pattern,
            )
