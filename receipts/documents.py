"""Strict loading of JSON and YAML documents: duplicate keys, BOMs and deep nesting are refused.

Errors name the file and the line (YAML, JSON) so a publisher can fix a card without guessing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from receipts.errors import InputError

__all__ = ["MAX_DEPTH", "load_document", "parse_json", "parse_yaml", "read_bytes"]

MAX_DEPTH = 64


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


def read_bytes(path: Path, *, what: str = "file", limit: int | None = None) -> bytes:
    """Read a file's bytes, turning OS errors into one clear `InputError`.

    Raises:
        InputError: the path is missing, a directory, unreadable, or larger than ``limit``.
    """
    try:
        if limit is not None and path.stat().st_size > limit:
            raise InputError(
                f"{what} is larger than the {limit:,}-byte limit",
                file=path,
                hint="check that this is the file you meant",
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} does not exist", file=path, hint="check the path") from None
    except IsADirectoryError:
        raise InputError(f"expected a {what}, found a folder", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", file=path) from exc


def parse_json(data: bytes, *, file: object = "<bytes>", max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON strictly: no BOM, no duplicate keys, no NaN, bounded nesting.

    Raises:
        InputError: the bytes are not such a JSON document.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise InputError("starts with a byte-order mark", file=file, hint="save as UTF-8 without BOM")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", file=file) from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except _DuplicateKey as exc:
        raise InputError(f"duplicate JSON key {exc.args[0]!r}", file=file) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise InputError(f"malformed JSON: {exc.msg}", file=file, where=where) from None
    except (RecursionError, ValueError) as exc:
        raise InputError(f"malformed JSON: {exc}", file=file) from None
    if _depth(value, max_depth) > max_depth:
        raise InputError(f"JSON nested deeper than {max_depth} levels", file=file)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _construct_mapping(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            line = key_node.start_mark.line + 1
            raise InputError(f"duplicate key {key!r}", where=f"line {line}")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


def _make_strict(loader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]) -> None:
    """The loader refusing duplicate mapping keys (PyYAML silently keeps the last), dates as text."""
    loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    # YAML 1.1 turns `2026-11-23` into a date object; JSON Schema wants strings. Keep timestamps as text.
    loader.yaml_implicit_resolvers = {
        key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in loader.yaml_implicit_resolvers.copy().items()
    }


class _StrictLoader(yaml.SafeLoader):
    """Pure-Python SafeLoader, strict: the reference for behaviour and for every error message."""


_make_strict(_StrictLoader)

if yaml.__with_libyaml__:

    class _FastStrictLoader(yaml.CSafeLoader):
        """The same loader on libyaml's parser (~10x faster); only its scanner and parser are C.

        Construction, the duplicate-key check and tag resolution are the same Python code as
        `_StrictLoader`'s, so a document that loads gives the same value either way.
        """

    _make_strict(_FastStrictLoader)
    _FAST: type[yaml.CSafeLoader] | None = _FastStrictLoader
else:  # pragma: no cover - PyYAML wheels ship libyaml
    _FAST = None

# libyaml's composer recurses on the C stack with no depth limit (100,000 nested `[` segfault the
# interpreter; the pure-Python loader raises RecursionError instead). Every nesting level needs at least
# one of these indicator bytes, so their count bounds the depth; above the bound use the pure-Python loader.
_NESTING_BYTES = b"[{-:?"
_FAST_MAX_INDICATORS = 1000


def _fast_is_safe(data: bytes) -> bool:
    return sum(data.count(c) for c in _NESTING_BYTES) <= _FAST_MAX_INDICATORS


def parse_yaml(data: bytes, *, file: object = "<bytes>") -> Any:
    """Parse YAML with the safe loader, duplicate keys refused, dates kept as strings.

    libyaml parses documents small and shallow enough to be safe on the C stack; anything it refuses is
    parsed again by the pure-Python loader, so errors (and their lines) are always that loader's.

    Raises:
        InputError: the bytes are not valid YAML.
    """
    try:
        if _FAST is not None and _fast_is_safe(data):
            try:
                return yaml.load(data, Loader=_FAST)  # noqa: S506 - a CSafeLoader
            except (yaml.YAMLError, RecursionError):
                pass  # report it exactly as the reference loader does, below
        return yaml.load(data, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except InputError as exc:
        raise InputError(exc.message, file=file, where=exc.where) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "syntax error"
        raise InputError(f"malformed YAML: {what}", file=file, where=where) from None
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", file=file) from None
    except RecursionError:
        raise InputError("YAML nested too deeply", file=file) from None


def load_document(path: Path, *, what: str = "file") -> tuple[bytes, Any]:
    """Read and parse a JSON (``.json``) or YAML (anything else) document.

    Returns:
        The raw bytes (for hashing: never canonicalise before hashing) and the parsed value.

    Raises:
        InputError: missing, unreadable or malformed.
    """
    data = read_bytes(path, what=what)
    if path.suffix.lower() == ".json":
        return data, parse_json(data, file=path)
    return data, parse_yaml(data, file=path)
