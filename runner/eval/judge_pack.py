"""A pack's ``judge`` section as loaded: the rubric template and the human-rated validation sample.

Both files are pack files (the pack digest covers their bytes, which are checked against it as they are
read), so a run's rubric digest and validation sample are the ones the pack digest names. Every problem
is reported with the file, the line and the field, together with the pack's other problems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from receipts.digests import WeightsDigest, sha256_bytes
from receipts.documents import parse_json, read_bytes
from receipts.errors import InputError
from receipts.formats.pack import JudgeSection
from runner.eval.items import Problems
from runner.eval.packs import JudgeSample, JudgeSetup
from runner.eval.templates import TemplateLimit, compile_template, render_template, undeclared_fields

__all__ = ["JUDGE_FIELDS", "MAX_JUDGE_FILE", "load_judge"]

JUDGE_FIELDS = ("input", "output_a", "output_b")
"""What a rubric template may read: the item's prompt and the two outputs, each already fenced."""

MAX_JUDGE_FILE = 16 * 1024 * 1024
_LABELS = ("equivalent", "different")


def _read(folder: Path, relpath: str, digest: WeightsDigest, what: str) -> bytes:
    if relpath not in digest.files:
        raise InputError(f"the {what} {relpath} is not a file of the pack", file=folder / relpath)
    data = read_bytes(folder / relpath, what=what, limit=MAX_JUDGE_FILE)
    if digest.files[relpath] != sha256_bytes(data):
        raise InputError(f"the {what} changed while the pack was being read", file=folder / relpath)
    return data


def _rubric(source: str, problems: Problems) -> None:
    where = "$.judge.rubric"
    try:
        compile_template(source)
    except (TemplateError, RecursionError, SyntaxError) as exc:
        problems.add(where, f"the rubric is not a Jinja2 template: {exc}", "fix the rubric file")
        return
    used = undeclared_fields(source)
    unknown = sorted(used - set(JUDGE_FIELDS))
    if unknown:
        problems.add(where, f"the rubric reads {unknown}; it may read only {', '.join(JUDGE_FIELDS)}")
    missing = [f for f in ("output_a", "output_b") if f not in used]
    if missing:
        problems.add(where, f"the rubric never shows {', '.join(missing)}", "put both outputs in the rubric")
    try:
        render_template(source, dict.fromkeys(JUDGE_FIELDS, "x"))
    except (TemplateError, TemplateLimit, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        problems.add(where, f"the rubric fails to render: {exc}", "fix the rubric file")


def _sample(relpath: str, number: int, value: Any, problems: Problems) -> JudgeSample | None:
    where = f"{relpath}:{number}"
    if not isinstance(value, dict):
        problems.add(where, "a validation line must be a JSON object")
        return None
    wanted = {"id", "input", "output_a", "output_b", "label"}
    extra = sorted(set(value) - wanted)
    if extra:
        problems.add(where, f"unknown keys {extra}", f"a validation line holds exactly {sorted(wanted)}")
    for key in sorted(wanted):
        if not isinstance(value.get(key), str):
            problems.add(f"{where} $.{key}", f"{key} must be a string")
            return None
    if value["label"] not in _LABELS:
        problems.add(f"{where} $.label", f"label is {value['label']!r}", "use equivalent or different")
        return None
    return JudgeSample(
        value["id"], value["input"], value["output_a"], value["output_b"], value["label"], where
    )


def _validation(folder: Path, relpath: str, digest: WeightsDigest, problems: Problems) -> list[JudgeSample]:
    data = _read(folder, relpath, digest, "judge validation file")
    samples: list[JudgeSample] = []
    seen: set[str] = set()
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = parse_json(line, file=folder / relpath)
        except InputError as exc:
            problems.add(f"{relpath}:{number}", exc.message)
            continue
        sample = _sample(relpath, number, value, problems)
        if sample is None:
            continue
        if sample.id in seen:
            problems.add(f"{relpath}:{number} $.id", f"id {sample.id!r} is used twice")
        seen.add(sample.id)
        samples.append(sample)
    if not samples and not problems.found:
        problems.add("$.judge.validation", f"{relpath} holds no rated pairs")
    return samples


def load_judge(
    section: JudgeSection | None, folder: Path, digest: WeightsDigest, problems: Problems
) -> JudgeSetup | None:
    """The pack's judge set-up, or None when pack.yaml has no ``judge`` section.

    Problems (a rubric that reads unknown fields or misses an output; a malformed validation line) are
    added to ``problems``, which the loader raises with the pack's others.

    Raises:
        InputError: a judge file is missing, unreadable, not a pack file, or changed while read.
    """
    if section is None:
        return None
    rubric_bytes = _read(folder, section.rubric, digest, "judge rubric")
    try:
        rubric = rubric_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("the judge rubric is not UTF-8 text", file=folder / section.rubric) from None
    _rubric(rubric, problems)
    samples = _validation(folder, section.validation, digest, problems) if section.validation else []
    return JudgeSetup(
        rubric=rubric,
        rubric_path=section.rubric,
        rubric_sha256=digest.files[section.rubric],
        model=section.model,
        kappa_threshold=float(section.kappa_threshold),
        max_new_tokens=int(section.max_new_tokens),
        validation=tuple(samples),
        validation_path=section.validation,
        validation_sha256=digest.files[section.validation] if section.validation else None,
    )
