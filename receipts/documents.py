"""Strict, bounded loading of JSON and YAML documents: hostile input is refused before it costs much.

Refused: duplicate keys, BOMs, numbers that are not finite (NaN, `.inf`, `1e999`), nesting deeper than
`MAX_DEPTH`, documents over a byte limit (`MAX_DOCUMENT_BYTES` by default), integers too long to convert
in linear time, and YAML anchors and aliases. Aliases are how a few hundred bytes of YAML expand into
gigabytes (a "billion laughs"); a publisher format (cards, packs, configs) never needs them, so they are
refused while the event stream is scanned, before anything is composed or constructed.

Errors name the file and the line (YAML, JSON) so a publisher can fix a card without guessing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from receipts.errors import InputError

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_BYTES", "load_document", "parse_json", "parse_yaml", "read_bytes"]

MAX_DEPTH = 64
# Cards, packs, configs, results and receipts are kilobytes; 16 MiB leaves room for large results files
# while bounding what a parser (and the schema validation after it) may be asked to walk.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
# Python refuses to convert longer decimal strings (int_max_str_digits); YAML 1.1's base-60 integers
# (`1:2:3`) bypass that check and convert in quadratic time, so every YAML integer is held to it.
_MAX_INT_CHARS = 4300
# A gate threshold of `.inf` passes everything and NaN compares false with everything; RFC 8785 cannot
# sign either. A number in a document is a measurement or a limit: it must be finite.
_FINITE_HINT = "numbers must be finite"


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _depth(value: Any, limit: int) -> int:
    # Iterative so that hostile nesting cannot exhaust the interpreter's stack.
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def _check_size(size: int, limit: int | None, *, what: str, file: object) -> None:
    if limit is not None and size > limit:
        raise InputError(
            f"{what} is {size:,} bytes, over the {limit:,}-byte limit",
            file=file,
            hint="check that this is the file you meant",
        )


def read_bytes(path: Path, *, what: str = "file", limit: int | None = None) -> bytes:
    """Read a file's bytes, turning OS errors into one clear `InputError`.

    Raises:
        InputError: the path is missing, a directory, unreadable, or larger than ``limit``.
    """
    try:
        _check_size(path.stat().st_size, limit, what=what, file=path)
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} does not exist", file=path, hint="check the path") from None
    except IsADirectoryError:
        raise InputError(f"expected a {what}, found a folder", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", file=path) from exc


def parse_json(
    data: bytes,
    *,
    file: object = "<bytes>",
    max_depth: int = MAX_DEPTH,
    limit: int | None = MAX_DOCUMENT_BYTES,
) -> Any:
    """Parse UTF-8 JSON strictly: no BOM, no duplicate keys, finite numbers, bounded nesting and size.

    ``limit`` caps the document in bytes (``None``: the caller has bounded it already).

    Raises:
        InputError: the bytes are not such a JSON document (a number too large for a float is not
            finite), or are over ``limit``.
    """
    _check_size(len(data), limit, what="JSON document", file=file)
    if data.startswith(b"\xef\xbb\xbf"):
        raise InputError("starts with a byte-order mark", file=file, hint="save as UTF-8 without BOM")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", file=file) from None
    overflowed: list[str] = []  # `1e999` is valid JSON that Python reads as inf; no hook refuses it
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
            parse_float=lambda number: _float(number, overflowed),
            parse_int=lambda number: _int(number, overflowed),
        )
    except _DuplicateKey as exc:
        raise InputError(f"duplicate JSON key {exc.args[0]!r}", file=file) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise InputError(f"malformed JSON: {exc.msg}", file=file, where=where) from None
    except (RecursionError, ValueError) as exc:
        raise InputError(f"malformed JSON: {exc}", file=file) from None
    if _depth(value, max_depth) > max_depth:
        raise InputError(f"JSON nested deeper than {max_depth} levels", file=file)
    if overflowed:
        where = _non_finite_path(value)
        number = overflowed[0]
        shown = number if len(number) <= 40 else f"{number[:40]}… ({len(number)} characters)"
        raise InputError(f"{shown} is not a finite number", file=file, where=where, hint=_FINITE_HINT)
    return value


def _float(number: str, overflowed: list[str]) -> float:
    value = float(number)
    if not math.isfinite(value):
        overflowed.append(number)
    return value


def _int(number: str, overflowed: list[str]) -> int:
    """An integer, noted as not finite when no float can hold it.

    10**400 is valid JSON; every reader of a number converts it to a float sooner or later, and would fail
    there with a traceback.
    """
    value = int(number)
    if not _float_sized(value):
        overflowed.append(number)
    return value


def _float_sized(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _non_finite_path(value: Any) -> str:
    """The JSON path of the first number in ``value`` that is not finite (depth-first, as written)."""
    stack: list[tuple[Any, str]] = [(value, "$")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return path
        if isinstance(node, int) and not isinstance(node, bool) and not _float_sized(node):
            return path
        if isinstance(node, dict):
            stack.extend((child, f"{path}.{key}") for key, child in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{index}]") for index, child in reversed(list(enumerate(node))))
    return "$"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_Loader = yaml.SafeLoader | yaml.CSafeLoader


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            line = key_node.start_mark.line + 1
            raise InputError(f"duplicate key {key!r}", where=f"line {line}")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    if len(node.value) > _MAX_INT_CHARS:
        raise InputError(
            f"an integer written with {len(node.value):,} characters is too long",
            where=f"line {node.start_mark.line + 1}",
            hint="quote it to keep it as text",
        )
    return loader.construct_yaml_int(node)


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        raise InputError(
            f"{node.value} is not a finite number",
            where=f"line {node.start_mark.line + 1}",
            hint=_FINITE_HINT,
        )
    return value


def _make_strict(loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> None:
    """The loader refusing duplicate mapping keys (PyYAML silently keeps the last), dates as text."""
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
    # YAML 1.1 turns `2026-11-23` into a date object; JSON Schema wants strings. Keep timestamps as text.
    loader.yaml_implicit_resolvers = {
        key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in loader.yaml_implicit_resolvers.copy().items()
    }


def _check_node(event: yaml.NodeEvent, level: int) -> None:
    """Refuse an anchor, an alias or a node deeper than `MAX_DEPTH` (level 1 is the document's root)."""
    where = f"line {event.start_mark.line + 1}" if event.start_mark else ""
    if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
        raise InputError(
            "YAML anchors and aliases are not allowed in receipts documents",
            where=where,
            hint="write the values out in full",
        )
    if level > MAX_DEPTH:
        raise InputError(f"YAML nested deeper than {MAX_DEPTH} levels", where=where)


class _StrictLoader(yaml.SafeLoader):
    """Pure-Python SafeLoader, strict: the reference for behaviour and for every error message."""

    _level = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Check each node's event before composing it: nothing is built from a refused document."""
        self._level += 1
        try:
            _check_node(self.peek_event(), self._level)  # type: ignore[no-untyped-call]  # stub gap
            return super().compose_node(parent, index)
        finally:
            self._level -= 1


_make_strict(_StrictLoader)

if yaml.__with_libyaml__:

    class _FastStrictLoader(yaml.CSafeLoader):
        """The same loader on libyaml's parser (~10x faster); only its scanner and parser are C.

        Construction, the duplicate-key check and tag resolution are the same Python code as
        `_StrictLoader`'s, so a document that loads gives the same value either way. libyaml composes
        in C (no `compose_node` to override), so `_scan` checks the event stream before it composes.
        """

    _make_strict(_FastStrictLoader)
    _FAST: type[yaml.CSafeLoader] | None = _FastStrictLoader
else:  # pragma: no cover - PyYAML wheels ship libyaml
    _FAST = None


def _scan(data: bytes, loader: type[yaml.CSafeLoader]) -> None:
    """Refuse anchors, aliases and deep nesting from the event stream, before anything is composed.

    libyaml's parser keeps its own stack, but its composer recurses on the C stack (100,000 nested `[`
    segfault the interpreter) and would expand aliases; the scan stops at the first refused event.
    """
    level = 0
    for event in yaml.parse(data, Loader=loader):
        if isinstance(event, yaml.NodeEvent):
            _check_node(event, level + 1)
        if isinstance(event, yaml.CollectionStartEvent):
            level += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            level -= 1


def _load(data: bytes) -> Any:
    if _FAST is not None:
        try:
            _scan(data, _FAST)
            return yaml.load(data, Loader=_FAST)  # noqa: S506 - a CSafeLoader
        except (yaml.YAMLError, RecursionError):
            pass  # report it exactly as the reference loader does, below
    return yaml.load(data, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader


def parse_yaml(data: bytes, *, file: object = "<bytes>", limit: int | None = MAX_DOCUMENT_BYTES) -> Any:
    """Parse YAML safely: duplicate keys, anchors, aliases and `.inf`/`.nan` refused; dates kept as text.

    libyaml parses documents that its event stream shows to be alias-free and at most `MAX_DEPTH`
    deep; anything it refuses is parsed again by the pure-Python loader, so errors (and their lines)
    are always that loader's. ``limit`` caps the document in bytes (``None``: bounded by the caller).

    Raises:
        InputError: the bytes are not valid YAML, use anchors or aliases, hold a number that is not
            finite, nest deeper than `MAX_DEPTH`, or are over ``limit``.
    """
    _check_size(len(data), limit, what="YAML document", file=file)
    try:
        return _load(data)
    except InputError as exc:
        raise InputError(exc.message, file=file, where=exc.where, hint=exc.hint) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "syntax error"
        raise InputError(f"malformed YAML: {what}", file=file, where=where) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=file) from None
    except RecursionError:
        raise InputError("YAML nested too deeply", file=file) from None


def load_document(path: Path, *, what: str = "file", limit: int = MAX_DOCUMENT_BYTES) -> tuple[bytes, Any]:
    """Read and parse a JSON (``.json``) or YAML (anything else) document of at most ``limit`` bytes.

    Returns:
        The raw bytes (for hashing: never canonicalise before hashing) and the parsed value.

    Raises:
        InputError: missing, unreadable, over ``limit`` (checked before reading) or malformed.
    """
    data = read_bytes(path, what=what, limit=limit)
    if path.suffix.lower() == ".json":
        return data, parse_json(data, file=path, limit=None)
    return data, parse_yaml(data, file=path, limit=None)
