"""Loading a pack: ``pack.yaml`` + ``data/*.jsonl`` strictly, every item checked, every template rendered.

A pack is refused at load time, with every problem listed, rather than half-way through a run:
the schema (every JSON path), each JSONL line (file:line), duplicate ids, gold answers that do not
fit their choices, and every template rendered against every item (a missing field names the item
and the field). The pack digest is the model_signing v1.0 folder digest (DESIGN §5), and the bytes
parsed are checked against it, so the items a run uses are the items the digest names.

Templates are untrusted: they run sandboxed, and a template that would build more than
`MAX_TEMPLATE_OUTPUT` characters (in a prompt or any value), or loop or call more than
`MAX_TEMPLATE_STEPS` times, is refused with one `InputError` naming pack.yaml, the template's JSON
path and its line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError

from receipts import schemas
from receipts.digests import WeightsDigest, digest_weights, sha256_bytes
from receipts.documents import parse_json, parse_yaml, read_bytes
from receipts.errors import InputError, SchemaError, Violation
from receipts.formats.pack import Answer, Clarify, MarkerObject, PackDocument
from receipts.formats.pack import Generation as GenerationSpec
from runner.eval.answers import BehaviourRules
from runner.eval.items import ItemReader, Problems
from runner.eval.judge_pack import load_judge
from runner.eval.packs import (
    DEFAULT_SCORERS,
    ORIGINAL,
    PACK_FILE,
    AnswerRule,
    FewShot,
    Generation,
    Item,
    Pack,
    Variant,
)
from runner.eval.perturbations import PerturbationSpec
from runner.eval.templates import (
    TEMPLATE_HINT,
    TemplateLimit,
    compile_template,
    limit_error,
    render_template,
    template_line,
    undeclared_fields,
)

__all__ = ["MAX_DATA_FILE", "MAX_PACK_YAML", "load_pack"]

MAX_PACK_YAML = 1024 * 1024
MAX_DATA_FILE = 256 * 1024 * 1024


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


def _spec_of(yaml_path: Path, folder: Path, digest: WeightsDigest) -> tuple[dict[str, Any], PackDocument]:
    """pack.yaml as parsed (kept on `Pack.spec`) and as the typed `PackDocument` the loader reads.

    Raises:
        SchemaError: pack.yaml fails schema/pack (jsonschema's words, every JSON path).
    """
    data = _read_checked(folder, PACK_FILE, digest, what="pack.yaml", limit=MAX_PACK_YAML)
    spec = parse_yaml(data, file=yaml_path)
    if not isinstance(spec, dict):
        raise SchemaError(yaml_path, "pack", [Violation("$", "a pack.yaml must be a mapping", "see packs/")])
    schemas.validate(spec, "pack", file=yaml_path)  # the messages pack authors see
    return spec, PackDocument.parse(spec, file=yaml_path)


def _templates(doc: PackDocument, problems: Problems) -> dict[str, str]:
    if isinstance(doc.prompt, str):
        named = {"default": doc.prompt}
    else:
        named = {}
        for index, entry in enumerate(doc.prompt):
            if entry.name in named:
                problems.add(f"$.prompt[{index}].name", f"template name {entry.name!r} is used twice")
            named[entry.name] = entry.template
    return named


def _check_syntax(source: str, where: str, problems: Problems) -> bool:
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


def _template_paths(doc: PackDocument) -> dict[str, str]:
    """Where each template is written in pack.yaml (a JSON path; the first place, if several)."""
    if isinstance(doc.prompt, str):
        paths = {doc.prompt: "$.prompt"}
    else:
        paths = {}
        for index, entry in enumerate(doc.prompt):
            paths.setdefault(entry.template, f"$.prompt[{index}].template")
    for index, variant in enumerate(doc.variants or ()):
        if variant.template is not None:
            paths.setdefault(variant.template, f"$.variants[{index}].template")
    return paths


def _text_fields(source: str, doc: PackDocument) -> tuple[str, ...]:
    """Fields a perturbation changes by default: template inputs that are not answers or labels."""
    used = undeclared_fields(source)
    reserved = {"id", "critical", doc.target, *(doc.slices or ())}
    if isinstance(doc.choices, str):  # a field naming each item's choices, not the choices themselves
        reserved.add(doc.choices)
    if doc.behaviour is not None:
        reserved.add(doc.behaviour)
    if doc.clarify is not None and doc.clarify.pattern_field is not None:
        reserved.add(doc.clarify.pattern_field)
    return tuple(sorted(used - reserved))


def _variants(doc: PackDocument, named: Mapping[str, str], problems: Problems) -> list[Variant]:
    default = next(iter(named.values()))
    out = [Variant(ORIGINAL, "original", default, description="the item as written, default template")]
    for index, entry in enumerate(doc.variants or ()):
        where = f"$.variants[{index}]"
        name = entry.name
        if name in {v.name for v in out}:
            problems.add(
                f"{where}.name", f"variant name {name!r} is used twice", "give each variant its own name"
            )
        source = entry.template if entry.template is not None else default
        if entry.prompt is not None:
            if entry.prompt not in named:
                problems.add(
                    f"{where}.prompt",
                    f"no prompt template named {entry.prompt!r}",
                    f"use one of: {', '.join(named)}",
                )
                continue
            source = named[entry.prompt]
        elif entry.template is not None and not _check_syntax(source, f"{where}.template", problems):
            continue
        spec_p: PerturbationSpec | None = None
        fields: tuple[str, ...] = ()
        if entry.perturbation is not None:  # the schema: named exactly when the kind is perturbation
            spec_p = PerturbationSpec(entry.perturbation, entry.seed, entry.rate, entry.mode)
            fields = tuple(entry.fields) if entry.fields is not None else _text_fields(source, doc)
            if not fields:
                problems.add(
                    where,
                    "this perturbation has no text field to change",
                    "list the item `fields` to perturb",
                )
        out.append(Variant(name, entry.kind, source, spec_p, fields, entry.description or ""))
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


def _missing_field(exc: UndefinedError) -> str:
    found = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", exc.message or "")
    return next((g for g in found.groups() if g), "?") if found else "?"


def _render_all(
    items: Iterable[Item],
    variants: Sequence[Variant],
    named: Mapping[str, str],
    paths: Mapping[str, str],
    problems: Problems,
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


def _read_items(folder: Path, paths: Sequence[str], digest: WeightsDigest, reader: ItemReader) -> list[Item]:
    items = []
    for relpath in paths:
        for line, obj in _jsonl(folder, relpath, digest):
            item = reader.read(relpath, line, obj)
            if item is not None:
                items.append(item)
    return items


def _few_shot(
    doc: PackDocument, folder: Path, digest: WeightsDigest, reader: ItemReader, problems: Problems
) -> FewShot | None:
    entry = doc.few_shot
    if entry is None:
        return None
    shots = _read_items(folder, [entry.data], digest, reader)[: entry.n]
    if len(shots) < entry.n:
        problems.add("$.few_shot.n", f"asks for {entry.n} examples; {entry.data} has {len(shots)} usable")
    for shot in shots:
        if shot.gold is None:
            problems.add(
                f"{shot.where} $.{doc.target}", f"item {shot.id}: a few-shot example needs a gold answer"
            )
    return FewShot(tuple(shots), entry.delimiter)


def _markers(value: Sequence[str] | MarkerObject | Clarify | None) -> tuple[str, ...]:
    """A marker list, written as a list or as ``{markers: [...]}``; none when the section is absent."""
    if value is None:
        return ()
    return tuple(value.markers if isinstance(value, MarkerObject | Clarify) else value)


def _rules(doc: PackDocument) -> BehaviourRules:
    clarify = doc.clarify
    return BehaviourRules(
        abstain=_markers(doc.abstain),
        clarify=_markers(clarify),
        refuse=_markers(doc.refuse),
        require_question_mark=clarify.require_question_mark if clarify is not None else True,
        clarify_pattern_field=clarify.pattern_field if clarify is not None else None,
    )


def _answer(doc: PackDocument) -> AnswerRule:
    answer = doc.answer if doc.answer is not None else Answer()
    return AnswerRule(answer.regex, answer.select, tuple(answer.normalise or ()))


def _generation(doc: PackDocument) -> Generation:
    generation = doc.generation if doc.generation is not None else GenerationSpec()
    return Generation(generation.max_new_tokens, tuple(generation.stop or ()))


def _gate(doc: PackDocument) -> dict[str, float]:
    """The rules the pack sets, in the schema's order (the model does not keep the order written)."""
    if doc.gate is None:
        return {}
    return {rule: float(threshold) for rule, threshold in doc.gate if threshold is not None}


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
    spec, doc = _spec_of(yaml_path, folder, digest)
    problems = Problems(yaml_path)
    named = _templates(doc, problems)
    paths = (
        ["$.prompt"]
        if isinstance(doc.prompt, str)
        else [f"$.prompt[{n}].template" for n in range(len(named))]
    )
    syntax_ok = all([_check_syntax(s, p, problems) for s, p in zip(named.values(), paths, strict=False)])
    variants = _variants(doc, named, problems)
    problems.raise_if_any()  # templates must compile before items can be rendered
    reader = ItemReader(spec, variants, problems)
    items = _read_items(folder, _data_paths(doc.data), digest, reader)
    if not items and not problems.found:
        problems.add(
            "$.data", "the pack has no items", "add items to the data files, one JSON object per line"
        )
    few_shot = _few_shot(doc, folder, digest, reader, problems)
    if syntax_ok:
        everything = [*items, *(few_shot.items if few_shot else ())]
        _render_all(everything, variants, named, _template_paths(doc), problems)
    judge = load_judge(doc.judge, folder, digest, problems)  # issue #20 part 2
    problems.raise_if_any()
    return Pack(
        path=folder,
        id=doc.id,
        version=doc.version,
        license=doc.license,
        task=doc.task,
        digest=digest.root,
        items=tuple(items),
        templates=named,
        variants=tuple(variants),
        slices=tuple(doc.slices or ()),
        scorers=tuple(doc.scorers if doc.scorers is not None else DEFAULT_SCORERS[doc.task]),
        answer=_answer(doc),
        behaviour=_rules(doc),
        generation=_generation(doc),
        gate=_gate(doc),
        target_delimiter=doc.target_delimiter,
        fields=tuple(doc.fields or ()),
        few_shot=few_shot,
        description=doc.description or "",
        spec=spec,
        judge=judge,
        system_prompt=doc.system_prompt,  # chat templates (issue #20)
    )
