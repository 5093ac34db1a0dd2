r"""The bases and field types every format model is built from, each mirroring one JSON Schema construct.

The reference is ``receipts.schemas``: jsonschema's Draft 2020-12 validator with its format checker. So
``pattern`` is Python's ``re.search``, an ``integer`` is any number with no fractional part (``1.0``
included, ``True`` not), a ``number`` is an int or a float, and ``format: date-time`` is RFC 3339 as
``rfc3339-validator`` reads it. Stricter on purpose: object keys must be text and numbers finite
(jsonschema lets a Python value through with neither; JSON has neither). The agreement test
(``tests/receipts/test_formats.py``) holds every model to that validator on every fixture and its mutations.

Python's ``$`` also matches before a final newline; ECMA-262's, which JSON Schema patterns are written
in, does not. So every anchored pattern, in the schemas and here alike, ends in ``$(?!\n)``: the end of
the text in both readings. ``rfc3339-validator`` lets a final newline through too (``...Z\n``), so a
``date-time`` field also carries such a pattern or ``NoLineBreak``.

For the same reason no pattern uses ``\s``, ``\S``, ``\w``, ``\W``, ``\d``, ``\D``, ``\b`` or ``\B``:
on text beyond ASCII Python's ``re`` and ECMA-262 read them differently (``\s`` is U+001C-U+001F and
U+0085 to Python, U+FEFF to ECMA-262; ``\d`` and ``\w`` take any Unicode digit or letter in Python,
ASCII ones in ECMA-262). A pattern spells its characters out instead; white space is `SPACE`.
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from receipts.errors import SchemaError, Violation

__all__ = [
    "SPACE",
    "Closed",
    "Date",
    "DateTime",
    "Digest",
    "Document",
    "Hex64",
    "Integer",
    "JsonObject",
    "NoLineBreak",
    "Omittable",
    "Open",
    "Unique",
    "violations",
]

T = TypeVar("T")

JsonObject = dict[str, Any]
"""``{"type": "object"}`` and nothing more: any JSON object."""


def _integral(value: object) -> object:
    # Draft 2020-12: an integer is a number with a zero fractional part, so 1.0 is one (and reads as 1).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_integral)]
"""``{"type": "integer"}``: an int or an integral float (``1.0``, kept as ``1``); never a bool or text."""


def _present(value: object) -> object:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


Omittable = Annotated[T | None, BeforeValidator(_present)]
"""A property the schema lets a document leave out but not set to null; ``None`` here means absent.

Use it with ``= None``: pydantic does not validate defaults, so only a null *written* is refused.
"""


def _no_line_break(value: str) -> str:
    # the schema's `"not": {"pattern": "\\n"}`: no line break anywhere (an anchored pattern's `$(?!\\n)`
    # refuses only the final one where the pattern's own characters would allow others)
    if "\n" in value:
        raise ValueError("must not contain a line break")
    return value


NoLineBreak = AfterValidator(_no_line_break)
"""``"not": {"type": "string", "pattern": "\\n"}``."""


def _unique(value: list[T]) -> list[T]:
    seen: list[T] = []
    for item in value:
        if item in seen:
            raise ValueError(f"has non-unique elements ({item!r} twice)")
        seen.append(item)
    return value


Unique = AfterValidator(_unique)
"""``"uniqueItems": true`` (the lists it is used on hold strings, where equality is JSON equality)."""

_RFC3339 = re.compile(
    r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$",
    re.ASCII,
)


def _date_time(value: str) -> str:
    # jsonschema's check: rfc3339-validator on the upper-cased text (so `t` and `z` pass), real dates only
    match = _RFC3339.match(value.upper())
    if match is None:
        raise ValueError("is not an RFC 3339 date-time")
    year, month, day = (int(part) for part in match.groups())
    if not year or not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise ValueError("is not a date-time on the calendar")
    return value


def _full_date(value: str) -> str:
    # jsonschema's check: exactly dddd-dd-dd (ASCII digits) and a real calendar date
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII):
        raise ValueError("is not a date YYYY-MM-DD")
    date.fromisoformat(value)  # ValueError: not on the calendar
    return value


DateTime = Annotated[str, AfterValidator(_date_time)]
"""``{"type": "string", "format": "date-time"}``, kept as the text written."""

Date = Annotated[str, AfterValidator(_full_date)]
"""``{"type": "string", "format": "date"}``, kept as the text written."""

Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$(?!\n)")]
"""64 lowercase hex digits (a bare sha256)."""

Digest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$(?!\n)")]
"""``sha256:`` and 64 lowercase hex digits."""

SPACE = r"\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
r"""White space, as the inside of a character class (``[^{SPACE}]``) written the same in a schema.

Every character either engine's ``\s`` matches, so "no white space" refuses what either would call
white space: Python's (``str.isspace``: U+0009-U+000D, U+001C-U+001F, U+0020, U+0085, U+00A0, U+1680,
U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000) and ECMA-262's (the same less U+001C-U+001F
and U+0085, plus U+FEFF). Escapes only, which both read alike, so the pattern text is plain ASCII.
"""

_CONFIG = ConfigDict(
    frozen=True,
    strict=True,  # no "1" -> 1, no 1 -> "1", no 0 -> False: the schema's types, exactly
    validate_by_name=True,  # Python code may write `type_=` (populate_by_name); documents go by alias only
    validate_by_alias=True,
    regex_engine="python-re",  # jsonschema's `pattern` semantics (re.search), not Rust's
    allow_inf_nan=False,  # JSON has no NaN or infinity; receipts.documents refuses them too
    defer_build=True,  # validators are built on first use, not at import
)


class Closed(BaseModel):
    """An object whose schema says ``"additionalProperties": false``."""

    model_config = ConfigDict(**_CONFIG, extra="forbid")


class Open(BaseModel):
    """An object whose schema allows properties it does not list; they are kept, in ``model_extra``."""

    model_config = ConfigDict(**_CONFIG, extra="allow")


class Document(Closed):
    """A top-level persisted format: its JSON Schema kind and the ways to read one."""

    KIND: ClassVar[str]
    """The schema's kind, as ``receipts.schemas`` names it (``schema/<KIND>.schema.json``)."""

    @classmethod
    def parse(cls, value: object, *, file: object = "<document>") -> Self:
        """Validate an already parsed JSON or YAML value (keys as written, so ``_type``, not ``type_``).

        Raises:
            SchemaError: listing every violation with its JSON path.
        """
        try:
            return cls.model_validate(value, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise SchemaError(file, cls.KIND, violations(exc, value)) from exc

    @classmethod
    def from_json_bytes(cls, data: bytes, *, file: object = "<bytes>") -> Self:
        """Parse JSON bytes strictly (``receipts.documents.parse_json``), then validate them.

        Raises:
            InputError: the bytes are not a JSON document ``parse_json`` accepts.
            SchemaError: the document does not conform.
        """
        from receipts.documents import parse_json

        return cls.parse(parse_json(data, file=file), file=file)

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a JSON (``.json``) or YAML (anything else) file strictly, then validate it.

        Raises:
            InputError: the file is missing, unreadable, too large or malformed.
            SchemaError: the document does not conform.
        """
        from receipts.documents import load_document

        _, value = load_document(path, what=f"{cls.KIND} file")
        return cls.parse(value, file=path)


def violations(exc: ValidationError, value: object) -> list[Violation]:
    """Pydantic's errors as `Violation`s whose paths name keys and indexes of ``value`` only.

    A location also names union members and tags (``str``, ``list[...]``, ``ok``); walking ``value``
    alongside it keeps just the parts that are really in the document.
    """
    found = {}
    for error in exc.errors(include_url=False):
        path, node, loc = "$", value, error["loc"]
        for index, part in enumerate(loc):
            if isinstance(node, dict) and part in node:
                path, node = f"{path}.{part}", node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                path, node = f"{path}[{part}]", node[part]
            elif index == len(loc) - 1 and error["type"] == "missing":
                path = f"{path}.{part}"
        found[(path, error["msg"])] = Violation(path, error["msg"])
    return sorted(found.values(), key=lambda v: (v.path, v.message))
