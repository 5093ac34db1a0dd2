"""Checking a pack's items: each JSONL object against the pack's mapping, every problem recorded."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from receipts.errors import SchemaError, Violation
from runner.eval.answers import BEHAVIOURS, Behaviour
from runner.eval.packs import Gold, Item, Label, Variant

__all__ = ["MAX_REPORTED", "ItemReader", "Problems"]

MAX_REPORTED = 100
# the item-id rule of card.schema.json's pack_item, so cards can cite any item as <pack-id>/<item-id>
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
_COHORT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # critical: <name> -> slice critical=<name>


class Problems:
    """Every problem found in a pack, reported together as one `SchemaError`."""

    def __init__(self, file: Path):
        self.file = file
        self.found: list[Violation] = []

    def add(self, where: str, message: str, hint: str = "") -> None:
        """Record one problem: where (``file:line $.field`` or a JSON path), what, and how to fix it."""
        self.found.append(Violation(where, message, hint))

    def raise_if_any(self) -> None:
        """Raise the problems found so far, the first `MAX_REPORTED` of them listed.

        Raises:
            SchemaError: at least one problem was recorded.
        """
        if not self.found:
            return
        shown = self.found[:MAX_REPORTED]
        if len(self.found) > MAX_REPORTED:
            more = len(self.found) - MAX_REPORTED
            shown.append(Violation("...", f"and {more} more problems", "fix the ones above first"))
        raise SchemaError(self.file, "pack", shown)


def _is_label(value: Any) -> bool:
    return isinstance(value, str | int | bool)


class ItemReader:
    """Turns JSON objects into `Item`s under the pack's mapping, recording problems."""

    def __init__(self, spec: Mapping[str, Any], variants: Sequence[Variant], problems: Problems):
        self.spec = spec
        self.task: str = spec["task"]
        self.variants = variants
        self.problems = problems
        self.seen: dict[str, str] = {}

    def read(self, relpath: str, line: int, obj: dict[str, Any]) -> Item | None:
        """The item on line ``line`` of ``relpath``, or None when it has problems (recorded)."""
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
        if not isinstance(critical, bool) and not (isinstance(critical, str) and _COHORT.match(critical)):
            report(
                "critical",
                f"`critical` must be true, false or a cohort name, not {critical!r}",
                "a cohort name is letters, digits and . _ - (up to 64, starting with a letter or digit), "
                "e.g. critical: pii",
            )
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
            critical=critical if isinstance(critical, str) else bool(critical),
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

    def __init__(self, problems: Problems, where: str, item_id: str):
        self.problems, self.where, self.item_id = problems, where, item_id

    def __call__(self, name: str, message: str, hint: str = "") -> None:
        self.problems.add(f"{self.where} $.{name}", f"item {self.item_id}: {message}", hint)
