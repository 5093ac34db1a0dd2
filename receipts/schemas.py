"""JSON Schema validation that reports every violation with its JSON path and a fix hint.

Schemas are the language-neutral contracts in ``schema/`` (draft 2020-12). The hint for a violation
comes from the schema itself (the ``description`` of the property concerned), so the contract and its
help text cannot drift apart.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterable
from functools import cache
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from receipts.errors import SchemaError, Violation
from receipts.resources import schema_dir

__all__ = ["KINDS", "detect_kind", "schema", "validate", "violations"]

# document kind -> the value of its top-level ``format`` marker
KINDS: dict[str, str] = {
    "card": "receipts.card/v1",
    "trust-root": "receipts.trust-root/v1",
    "results": "receipts.results/v1",
    "footprint": "receipts.footprint/v1",
    "licence-table": "receipts.licence-table/v1",
    "weights-manifest": "receipts.weights-manifest/v1",
    "overlap": "receipts.overlap/v1",
    "quantize-manifest": "receipts.quantize-manifest/v1",
}


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(schema_dir().glob("*.schema.json")):
        out[path.name.removesuffix(".schema.json")] = json.loads(path.read_text("utf-8"))
    return out


@cache
def _registry(prevalidated: frozenset[str] = frozenset()) -> Registry[Any]:
    resources = []
    for kind, contents in _schemas().items():
        if kind in prevalidated:
            # Keep the identity (and the $defs other schemas point into); accept any instance.
            contents = {key: contents[key] for key in ("$schema", "$id", "$defs") if key in contents}
        resources.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(resources)


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema for a document kind (``card``, ``trust-root``, ``statement`` ...).

    Raises:
        KeyError: there is no schema of that kind.
    """
    return _schemas()[kind]


@cache
def _validator(kind: str, prevalidated: frozenset[str] = frozenset()) -> Draft202012Validator:
    return Draft202012Validator(
        schema(kind),
        registry=_registry(prevalidated),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def detect_kind(value: Any) -> str | None:
    """Guess a document's kind from its shape: the ``format`` marker, or a DSSE envelope."""
    if not isinstance(value, dict):
        return None
    marker = value.get("format")
    for kind, fmt in KINDS.items():
        if marker == fmt:
            return kind
    if "payloadType" in value and "signatures" in value:
        return "receipt"
    if value.get("_type") == "https://in-toto.io/Statement/v1":
        return "statement"
    if "task" in value and "id" in value:
        return "pack"
    return None


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _hint(error: ValidationError) -> str:
    node = error.schema if isinstance(error.schema, dict) else {}
    props = node.get("properties", {})
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        described = props.get(missing, {}).get("description", "")
        return f"add `{missing}`" + (f": {described}" if described else "")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        unknown = [k for k in error.instance if k not in props]
        guesses = [g for k in unknown for g in difflib.get_close_matches(k, props, n=1)]
        if guesses:
            return f"did you mean `{guesses[0]}`? allowed keys: {', '.join(sorted(props))}"
        return f"remove it; allowed keys: {', '.join(sorted(props))}"
    if error.validator == "enum":
        return "use one of: " + ", ".join(json.dumps(v) for v in cast("list[Any]", error.validator_value))
    if error.validator == "const":
        return f"set it to {json.dumps(error.validator_value)}"
    description = node.get("description", "")
    examples = node.get("examples")
    if examples:
        description += ("; " if description else "") + "e.g. " + json.dumps(examples[0])
    return str(description)


def _leaves(error: ValidationError) -> Iterable[ValidationError]:
    # For oneOf/anyOf, report the branch that got furthest rather than an opaque summary.
    if error.context and error.validator in ("oneOf", "anyOf"):
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(error.absolute_path):
            yield from _leaves(deepest)
            return
    yield error


def violations(value: Any, kind: str, *, prevalidated: Collection[str] = ()) -> list[Violation]:
    """Every schema violation of ``value`` as ``kind``, sorted by JSON path.

    Documents of the ``prevalidated`` kinds embedded in ``value`` (by ``$ref`` to their schema) are
    not walked again: pass a kind only when the caller has just validated that very object.
    """
    found = []
    for error in _validator(kind, frozenset(prevalidated)).iter_errors(value):
        for leaf in _leaves(error):
            found.append(Violation(_json_path(leaf.absolute_path), _shorten(leaf.message), _hint(leaf)))
    unique = {(v.path, v.message): v for v in found}
    return sorted(unique.values(), key=lambda v: (v.path, v.message))


def validate(
    value: Any, kind: str, *, file: object = "<document>", prevalidated: Collection[str] = ()
) -> None:
    """Validate ``value`` against the ``kind`` schema (``prevalidated``: see `violations`).

    Raises:
        SchemaError: listing every violation with its JSON path and a fix hint.
    """
    found = violations(value, kind, prevalidated=prevalidated)
    if found:
        raise SchemaError(file, kind, found)


def _shorten(message: str, limit: int = 300) -> str:
    """Jsonschema quotes the offending value whole; a 20,000-character value must not flood the terminal."""
    if len(message) <= limit:
        return message
    return (
        f"{message[: limit // 2]} … ({len(message) - limit:,} characters omitted) … {message[-limit // 3 :]}"
    )
