"""receipts.formats: every pydantic model gives its JSON Schema's answer, document by document.

The documents are every fixture and committed vector of each kind (accepted and refused ones, hostile
ones included), a few hand-enriched ones that reach the parts the fixtures leave out, and a catalog index
built from the golden receipts. Each is then mutated (every key dropped, an unknown key added at every
object, every key and string given a final newline, every value swapped for other JSON types and pushed
past its bounds) so that a model which drifts from its schema fails here, naming the document and the
JSON path. On each final newline the schema must also answer as ECMA-262 reads it (``$`` is the end of
the text there, not also the place before a final newline as in Python's re).

The reference is the schema as ``receipts.schemas`` validates it (Draft 2020-12, its format checker).
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

import receipts.formats as formats
from receipts import schemas
from receipts.documents import load_document, parse_json
from receipts.dsse import b64decode_strict
from receipts.errors import InputError, SchemaError, VerificationError
from receipts.formats._base import SPACE, Document
from receipts.resources import schema_dir

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
VECTORS = ROOT / "tests" / "vectors"

MODELS: dict[str, type[Document]] = {
    model.KIND: model
    for model in (
        formats.Card,
        formats.Statement,
        formats.Results,
        formats.Footprint,
        formats.WeightsManifest,
        formats.TrustRootDocument,
        formats.PackDocument,
        formats.CatalogIndex,
        formats.ReproductionStatement,
        formats.LicenceTable,
        formats.Overlap,
        formats.QuantizeManifest,
    )
}

# Where each kind of document is committed (globs under the repository root).
SOURCES = {
    "card": ["examples/**/*card*.yaml", "tests/data/**/card*.yaml", "tests/vectors/**/card*.yaml"],
    "pack": ["packs/*/pack.yaml", "tests/data/**/pack.yaml"],
    "results": ["tests/data/**/results*.json", "tests/vectors/**/results.json"],
    "footprint": ["tests/data/**/footprint*.json", "tests/vectors/**/footprint*.json"],
    # (tests/data/weights_golden.manifest.json is model_signing's own format, not this one)
    "weights-manifest": ["tests/vectors/**/weights.manifest.json"],
    "trust-root": ["tests/vectors/roots/*.json", "tests/vectors/cases/*/trust*.json"],
    "catalog-index": ["tests/data/hostile_catalogs/*.json"],
    "reproduction": ["tests/data/reproduction*.json"],
    "licence-table": ["receipts/data/licences/v*.json"],
    "overlap": ["tests/data/overlap*.json"],
    "quantize-manifest": ["tests/data/quantize_manifest*.json"],
    # and the payload of every committed receipt
    "statement": ["tests/data/golden_statement.json", "tests/data/hostile/statement*.json"],
}


@dataclass(frozen=True)
class Doc:
    """One document of one kind; ``name`` says where it came from (the first file, if several match)."""

    kind: str
    name: str
    value: Any


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _committed() -> tuple[list[Doc], list[tuple[str, Path, bytes]]]:
    """Every committed document by kind (deduplicated), and the files refused before any schema."""
    found: list[Doc] = []
    refused: list[tuple[str, Path, bytes]] = []
    for kind, patterns in SOURCES.items():
        paths = sorted({p for pattern in patterns for p in ROOT.glob(pattern) if p.is_file()})
        for path in paths:
            try:
                _, value = load_document(path)
            except InputError:
                refused.append((kind, path, path.read_bytes()))
                continue
            found.append(Doc(kind, _relative(path), value))
    for path in sorted(VECTORS.glob("**/receipt.json")):
        payload = _payload(path)
        if payload is None:
            continue  # not an envelope at all: the envelope's own tests cover it
        try:
            found.append(Doc("statement", f"{_relative(path)}#payload", parse_json(payload)))
        except InputError:
            refused.append(("statement", path, payload))
    return _unique(found), refused


def _payload(path: Path) -> bytes | None:
    try:
        envelope = parse_json(path.read_bytes())
        return b64decode_strict(envelope["payload"], "payload")
    except (InputError, ValueError, KeyError, TypeError):
        return None


def _unique(docs: list[Doc]) -> list[Doc]:
    seen: dict[tuple[str, str], Doc] = {}
    for doc in docs:
        seen.setdefault((doc.kind, json.dumps(doc.value, sort_keys=True)), doc)
    return list(seen.values())


# --- edited documents: what no committed fixture reaches, valid and invalid ----------------------------

_ESTIMATE = {"value": 0.75, "ci95": [0.5, 0.9], "n": 40, "small_n": False}


def _rich_results(base: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc["models"]["student@int8-dynamic"] = {
        "spec": "hf:student",
        "digest": doc["models"]["student"]["digest"],
        "kind": "hf",
        "storage_quant": "float32",
        "compute_dtype": "float32",
        "runtime_quant": "int8-dynamic",
        "tokenizer": "sha256:" + "a" * 64,
        "params": 134515008,
        "extra": {"note": "kept"},
    }
    doc |= {
        "gate": {"verdict": "pass", "reason": "every rule holds", "rules": [{"rule": "min_retention"}]},
        "task": "multiple_choice",
        "primary_metric": "acc",
        "settings": {"seed": 0},
        "metrics": {
            "all": {
                "acc": {
                    "roles": {
                        "teacher": _ESTIMATE,
                        "student": _ESTIMATE | {"value": None, "ci95": [None, None]},
                    },
                    "differences": {"student-teacher": _ESTIMATE | {"n": 12, "small_n": True}},
                    "retention": {
                        "student": {"value": 0.8, "reason": None, "student_over_teacher": 0.9},
                        "base": {"value": None, "reason": "teacher-base gap too small"},
                    },
                    "mcnemar": {"student-vs-teacher": {"statistic": 1.5, "p_value": 0.22, "method": "chi2"}},
                    "note": "metrics keep keys the schema does not list",
                }
            }
        },
        "robustness": {"worst_case": {}},
        "calibration": {"student": {"ece_10_equal_mass": 0.1, "ece_15_equal_width": 0.12, "reliability": []}},
        "abstention": {},
        "fidelity": {"student": {"agreement_rate": 0.8, "cells": {"both_right": 30}}},
        "errors": {"instances": 0, "by_role": {}},
        "diagnostics": [{"id": "no_distillation_gain", "message": "no gain", "evidence": {}}],
        "extraction": {},
    }
    return doc


# issue #20 parts 4 and 5 (seqkl): the flips and sequence-divergence sections
def _flips_and_seqkl_results(base: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    test = {"p_value": 0.03, "method": "exact"}
    doc["flips"] = {
        "definition": "lost: teacher right, role wrong",
        "slices": {
            "critical": {
                "student": {
                    "n": 16,
                    "lost": 6,
                    "gained": 0,
                    "lost_rate": _ESTIMATE,
                    "gained_rate": _ESTIMATE,
                    "mcnemar": test,
                },
            }
        },
    }
    doc["sequence_divergence"] = {
        "definition": "per byte",
        "teacher_logprob": ["served"],
        "slices": {"all": {"student": _ESTIMATE | {"value": -0.02, "missing": 3}}},
    }
    return doc


def _seqkl_for_the_teacher(base: dict[str, Any]) -> dict[str, Any]:
    doc = _flips_and_seqkl_results(base)
    doc["sequence_divergence"]["slices"]["all"]["teacher"] = _ESTIMATE | {"missing": 0}
    return doc


def _flips_without_a_test(base: dict[str, Any]) -> dict[str, Any]:
    doc = _flips_and_seqkl_results(base)
    del doc["flips"]["slices"]["critical"]["student"]["mcnemar"]
    return doc


_STATS = {
    "n": 30,
    "mean": 0.1,
    "p50": 0.1,
    "p90": None,
    "p95": None,
    "p99": None,
    "median_ci95": [0.09, 0.11],
    "null_reasons": {"p90": "insufficient_samples"},
}


def _measured_footprint(base: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    point = {
        "id": "int8-dynamic/c2",
        "quant": "int8-dynamic",
        "concurrency": 2,
        "status": "ok",
        "detail": None,
        "verdict": {
            "status": "VALID",
            "reasons": [{"code": "energy_unavailable", "severity": "info", "detail": ""}],
        },
        "compute_dtype": "float32",
        "threads": {"requested": 1},
        "load": {"load_time_s": 1.5, "page_cache_state": "warm", "import_s": 0.2},
        "memory": {"weights_bytes_resident": 1000, "peak_rss_bytes": 5000, "peak_vram_bytes": None},
        "calls": 30,
        "duration_s": 10.5,
        "metrics": {
            "ttft_s": _STATS,
            "tpot_s": _STATS,
            "e2e_s": _STATS,
            "itl_s": _STATS,
            "prefill_tps": _STATS,
            "decode_tps": _STATS | {"median_ci95": None},
            "tokenize_s": _STATS,
            "throughput_rps": 2.5,
        },
        "roofline_decode_tps": 100.0,
        "roofline_fraction": 0.4,
        "energy": {"status": "unavailable"},
        "host": {"steal_time": 0},
        "samples": {"e2e_s": [0.1, 0.2], "token_times_s": [[0.01, 0.02], []], "tokenize_s": [0.001]},
    }
    doc["points"].append(point)
    doc["model"] |= {
        "params": 8,
        "files": [{"path": "model.safetensors", "bytes": 12}],
        "loaded_from_bytes": 12,
    }
    doc["settings"] |= {"quants": ["fp32", "int8-dynamic"], "concurrency": [1, 2], "ram_budget_bytes": 2**30}
    doc["bandwidth"] |= {"drift": 0.01, "bytes_per_s_used": 1.5e10}
    doc["bandwidth"]["before"]["bytes_per_s"] = 1.5e10
    doc["max_usable_context"] = {
        "value": 64,
        "null_reason": None,
        "limited_by": "model_limit",
        "probes": [{"prompt_tokens": 64, "fits": True}],
    }
    return doc


def _rich_pack(base: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    doc |= {
        "description": "a pack that uses every optional section",
        "data": ["data/items.jsonl", "data/more/items2.jsonl"],
        "prompt": [
            {"name": "plain", "template": "Q: {{ question }}"},
            {"name": "quiz", "template": "{{ question }}?"},
        ],
        "target_delimiter": "",
        "answer": {"regex": r"(?i)answer:\s*(.+)", "select": "last", "normalise": ["lower", "lower"]},
        "scorers": ["accuracy", "abstain", "clarify", "refuse"],
        "slices": ["difficulty"],
        "variants": [
            {"name": "quiz", "kind": "rewording", "prompt": "quiz"},
            {"name": "layout", "kind": "format", "template": "{{ question }}\n", "description": "as a list"},
            {"name": "shout", "kind": "perturbation", "perturbation": "case", "mode": "upper"},
            {"name": "short", "kind": "perturbation", "perturbation": "contraction", "mode": "auto"},
            {
                "name": "noise",
                "kind": "perturbation",
                "perturbation": "filler",
                "rate": 0.2,
                "fields": ["question"],
            },
        ],
        "behaviour": "expect",
        "abstain": ["UNKNOWN"],
        "clarify": {"markers": ["which"], "require_question_mark": False, "pattern_field": "clarify_pattern"},
        "refuse": {"markers": ["I can't"]},
        "generation": {"max_new_tokens": 16, "stop": ["\n\n"]},
        "few_shot": {"data": "data/shots.jsonl", "n": 3, "delimiter": "\n"},
    }
    return doc


def _extract_pack(base: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in base.items() if k != "choices"}
    return doc | {"task": "extract", "fields": ["party", "duration"], "scorers": ["json_valid", "field_prf"]}


def _unmeasured_point_with_measurements(base: dict[str, Any]) -> dict[str, Any]:
    doc = _measured_footprint(base)
    doc["points"][-1] = doc["points"][-1] | {"status": "failed", "load": "not loaded", "calls": 0}
    return doc


def _variant(**fields: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(base: dict[str, Any]) -> dict[str, Any]:
        doc = _rich_pack(base)
        doc["variants"] = [*doc["variants"], fields]
        return doc

    edit.__name__ = "variant_" + "_".join(f"{k}_{v}" for k, v in fields.items() if k not in ("name", "kind"))
    return edit


def _with(path: tuple[Any, ...], value: Any, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(base: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = _replace(base, path, value)
        return doc

    edit.__name__ = name
    return edit


def _teacher_with_both_identities(base: dict[str, Any]) -> dict[str, Any]:
    teacher = base["lineage"]["teachers"][0] | {"api_identifier": "openai:gpt-4o-2024-08-06"}
    doc: dict[str, Any] = _replace(base, ("lineage", "teachers", 0), teacher)
    return doc


def _revoked_key_without_revoked_at(base: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = _replace(base, ("signed", "keys", 0, "status"), "revoked")
    return doc


_COMPARISON = {"roles": {"student": _ESTIMATE}, "differences": {"student-base": _ESTIMATE}}
_SIMILARITY = {
    "encoder": {"name": "all-MiniLM-L6-v2", "digest": "sha256:" + "0" * 64, "recognised": False},
    "slices": {
        "all": {"chrf": {"teacher": _COMPARISON, "gold": _COMPARISON}, "cosine": {"gold": _COMPARISON}}
    },
}


def _similar(path: tuple[Any, ...], value: Any, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Results with `_SIMILARITY`, then the node at ``path`` inside it replaced."""

    def edit(base: dict[str, Any]) -> dict[str, Any]:
        section = copy.deepcopy(_SIMILARITY)
        node = section
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value  # a key the section may not have yet
        return base | {"similarity": section}

    edit.__name__ = name
    return edit


def _adding(key: str, value: Any, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The document with a top-level ``key`` it does not have yet."""

    def edit(base: dict[str, Any]) -> dict[str, Any]:
        return base | {key: value}

    edit.__name__ = name
    return edit


RUN = "tests/data/run_minimal/results.json"
FOOTPRINT = "tests/data/footprint_minimal.json"
PACK = "tests/data/pack_minimal/pack.yaml"
CARD = "examples/card.yaml"
ROOT_MAIN = "tests/vectors/roots/main.json"

# (kind, source, edit, whether the schema accepts the result): documents no fixture has, valid ones that
# reach optional parts and invalid ones that break exactly one conditional rule (if/then, oneOf, not).
EDITS: list[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]], bool]] = [
    ("results", RUN, _rich_results, True),
    ("results", RUN, _flips_and_seqkl_results, True),  # issue #20 parts 4 and 5
    ("results", RUN, _seqkl_for_the_teacher, False),
    ("results", RUN, _flips_without_a_test, False),
    ("footprint", FOOTPRINT, _measured_footprint, True),
    ("footprint", FOOTPRINT, _unmeasured_point_with_measurements, True),
    ("footprint", FOOTPRINT, _with(("points", 0, "status"), "ok", "unmeasured_ok"), False),
    ("pack", PACK, _rich_pack, True),
    ("pack", PACK, _extract_pack, True),
    ("pack", PACK, _with(("task",), "classify", "classify_with_choices"), True),
    ("pack", PACK, _with(("task",), "extract", "extract_without_fields"), False),
    ("pack", PACK, _with(("slices",), ["variant"], "slice_variant"), False),
    ("pack", PACK, _variant(name="two", kind="format", template="t", prompt="quiz"), False),
    ("pack", PACK, _variant(name="r", kind="rewording", prompt="quiz", rate=0.5), False),
    ("pack", PACK, _variant(name="c", kind="perturbation", perturbation="case", mode="auto"), False),
    ("pack", PACK, _variant(name="c", kind="perturbation", perturbation="contraction", mode="lower"), False),
    ("pack", PACK, _variant(name="t", kind="perturbation", perturbation="typo", mode="lower"), False),
    ("pack", PACK, _variant(name="original", kind="perturbation", perturbation="typo"), False),
    ("card", CARD, _teacher_with_both_identities, False),
    ("card", CARD, _with(("lineage", "relation"), "quantized", "quantized_without_quantization"), False),
    ("card", CARD, _with(("lineage", "relation"), "finetuned", "finetuned_with_teachers"), True),
    ("trust-root", ROOT_MAIN, _revoked_key_without_revoked_at, False),
    # whole seconds only (schema/trust-root $defs/time), as verify.js reads a key's window
    (
        "trust-root",
        ROOT_MAIN,
        _with(("signed", "issuedAt"), "2026-01-01T00:00:00.5Z", "fractional_issued_at"),
        False,
    ),
    (
        "trust-root",
        ROOT_MAIN,
        _with(("signed", "keys", 0, "notBefore"), "2026-01-01T00:00:00.000Z", "ms_not_before"),
        False,
    ),
    # --- similarity (issue #20 part 3) ---
    ("results", RUN, _adding("similarity", _SIMILARITY, "with_similarity"), True),
    ("results", RUN, _similar(("slices", "all", "bleu"), {}, "similarity_unknown_measure"), False),
    (
        "results",
        RUN,
        _similar(("slices", "all", "chrf", "oracle"), _COMPARISON, "similarity_bad_ref"),
        False,
    ),
    (
        "results",
        RUN,
        _similar(("encoder", "recognised"), "yes", "similarity_recognised_text"),
        False,
    ),
    ("pack", PACK, _adding("similarity", ["chrf", "rouge_l", "cosine"], "pack_similarity"), True),
    ("pack", PACK, _adding("similarity", ["bleu"], "pack_similarity_unknown"), False),
    ("pack", PACK, _adding("similarity", [], "pack_similarity_empty"), False),
]


def _edited() -> list[Doc]:
    out = []
    for kind, source, edit, _ in EDITS:
        _, base = load_document(ROOT / source)
        out.append(Doc(kind, f"{source}+{edit.__name__.lstrip('_')}", edit(base)))
    return out


def _id(doc: Doc) -> str:
    return f"{doc.kind}:{doc.name}"


GENERATED = Doc("catalog-index", "catalog/index.json built from tests/vectors/golden/v1", None)


@pytest.fixture(scope="module")
def built_index() -> dict[str, Any]:
    """The index ``generator.render`` writes for the golden receipts (its own code, not a copy)."""
    from generator.render import INDEX_FORMAT, collect, index_row
    from receipts.trust import trust_root_from_bytes

    data = (VECTORS / "roots" / "main.json").read_bytes()
    root = trust_root_from_bytes(data)
    rows = [index_row(entry) for entry in collect(VECTORS / "golden" / "v1", root)]
    trust = {"publisher": root.publisher, "version": root.version, "sha256": root.sha256}
    return {"format": INDEX_FORMAT, "trust_root": trust, "models": rows}


def _value(doc: Doc, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("built_index") if doc is GENERATED else doc.value


# --- the two answers -----------------------------------------------------------------------------------


def schema_accepts(value: Any, kind: str) -> bool:
    # receipts.schemas' own validator (its registry, its format checker); is_valid stops at the first error
    return bool(schemas._validator(kind).is_valid(value))


def model_answer(value: Any, kind: str) -> tuple[bool, str]:
    """(accepted, why not) from the model; an accepted document must also dump back to itself."""
    model = MODELS[kind]
    try:
        parsed = model.parse(value)
    except SchemaError as exc:
        return False, "; ".join(f"{v.path}: {v.message}" for v in exc.violations[:2])
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if not same_json(dumped, value):
        return True, f"dumps it as {json.dumps(dumped)[:300]}"
    return True, ""


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON values: 1 and 1.0 are one number (RFC 8785 writes both as 1); true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def disagreement(value: Any, kind: str) -> str:
    """Why the model and the schema disagree on ``value`` ("" when they agree and it round-trips)."""
    schema_ok = schema_accepts(value, kind)
    model_ok, why = model_answer(value, kind)
    if schema_ok and not model_ok:
        return f"the schema accepts it, the model refuses it ({why})"
    if model_ok and not schema_ok:
        return "the schema refuses it, the model accepts it"
    return f"both accept it, but the model {why}" if model_ok and why else ""


# --- the ECMA-262 reading ------------------------------------------------------------------------------
# JSON Schema patterns are ECMA-262 regular expressions, and verify.js (or any other validator) reads them
# so; jsonschema runs them with Python's re, whose `$` also matches before a final "\n". This reference
# is receipts.schemas' validator with only that changed: `$` is the end of the text, as in ECMA-262
# without the m flag, and a date-time ends at its last character too (rfc3339-validator's `$` does not).


def _ecma_dollar(pattern: str) -> str:
    """``pattern`` for Python's re with each ``$`` outside a character class read as ECMA-262 reads it."""
    out, escaped, in_class = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "[]":
            in_class = char == "["
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return "".join(out)


FINAL_NEWLINES: list[str] = []  # anchored patterns the ECMA-262 reading just let a final newline through


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    if not re.search(_ecma_dollar(pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")
    elif "$" in pattern and instance.endswith("\n"):
        FINAL_NEWLINES.append(pattern)


_ECMA_FORMATS = FormatChecker()
_ECMA_FORMATS.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)


@_ECMA_FORMATS.checks("date-time")
def _ecma_date_time(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    return not instance.endswith("\n") and Draft202012Validator.FORMAT_CHECKER.conforms(instance, "date-time")


_EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


@cache
def _ecma_validator(kind: str) -> Any:
    return _EcmaValidator(schemas.schema(kind), registry=schemas._registry(), format_checker=_ECMA_FORMATS)


def ecma_accepts(value: Any, kind: str) -> bool:
    return bool(_ecma_validator(kind).is_valid(value))


# --- mutations -----------------------------------------------------------------------------------------

_OTHER_TYPES: tuple[Any, ...] = (None, False, 1, 0.5, "x", [], {})
_LONG = "x" * 20001  # past every maxLength in the schemas
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


@dataclass(frozen=True)
class Mutation:
    """Replace the node at ``path`` with ``node``; ``change`` says how (the same words for every document)."""

    path: tuple[Any, ...]
    change: str
    node: Any
    context: tuple[Any, ...]

    def apply(self, document: Any) -> Any:
        return _replace(document, self.path, self.node)

    def describe(self) -> str:
        return f"{json_path(self.path)}: {self.change}"


def _replacements(node: Any) -> Iterator[tuple[str, Any]]:
    """Other JSON types, then values past the bounds a schema may set on this one."""
    for other in _OTHER_TYPES:
        if not same_json(other, node):
            yield f"= {json.dumps(other)}", other
    if isinstance(node, str):
        yield from (("= empty", ""), ("+ a newline", node + "\n"), ("= 20001 characters", _LONG))
        yield from (("+ 'x' after", node + "x"), ("+ 'x' before", "x" + node))
        for change, other in (("= upper case", node.upper()), ("= lower case", node.lower())):
            if other != node:
                yield change, other
        if _DATE_TIME.match(node):
            yield "= February 30", node[:5] + "02-30" + node[10:]
    elif isinstance(node, int) and not isinstance(node, bool):
        yield from (("= as a float", float(node)), ("+ 0.5", node + 0.5), ("= -1", -1), ("= 2**53", 2**53))
    elif isinstance(node, float):
        yield from (("= 0.0", 0.0), ("= -0.5", -0.5), ("= 1.5", 1.5), ("= an integer", round(node) + 1))
    elif isinstance(node, list) and node:
        yield "+ a copy of its first item", [*node, node[0]]
        yield "= its first item alone", node[:1]
        yield "= 300 copies of its first item", node[:1] * 300


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """``document`` with the node at ``path`` replaced (copying only the containers on the path)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: _replace(document[head], rest, value)}
    out = list(document)
    out[head] = _replace(document[head], rest, value)
    return out


def _nodes(value: Any, path: tuple[Any, ...] = (), around: tuple[str, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """(path, node, the keys of the object holding it) for every node, depth first."""
    yield path, value, around
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _nodes(child, (*path, key), tuple(sorted(value)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _nodes(child, (*path, index), ("[]",))


def json_path(path: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def mutations(document: Any) -> Iterator[Mutation]:
    """Every mutation of ``document``: each key dropped, an unknown key added, each value replaced."""
    for path, node, around in _nodes(document):
        context = (tuple(sorted(node)) if isinstance(node, dict) else type(node).__name__, around)
        if isinstance(node, dict):
            for key in node:
                yield Mutation(path, f"drop {key!r}", {k: v for k, v in node.items() if k != key}, context)
                renamed = {(k + "\n" if k == key else k): v for k, v in node.items()}
                yield Mutation(path, f"key {key!r} + a newline", renamed, context)
            yield Mutation(path, "add 'zz_unknown'", {**node, "zz_unknown": "x"}, context)
            if "_type" in node:  # a document is read by alias: the Python name is not one of its keys
                renamed = {("type_" if k == "_type" else k): v for k, v in node.items()}
                yield Mutation(path, "rename '_type' to 'type_'", renamed, context)
        if path:
            for change, value in _replacements(node):
                yield Mutation(path, change, value, context)


def _plan(docs: list[Doc]) -> dict[str, list[Mutation]]:
    """Each document's mutations, less those an earlier document of its kind already made.

    Two mutations are the same when they change the same place (list indexes ignored) in the same way,
    in an object with the same keys: the schema then judges them by the same rules. A statement's card
    is mutated one level deep; the card documents go deeper.
    """
    seen: set[tuple[Any, ...]] = set()
    plan = {}
    for doc in docs:
        kept = []
        for mutation in mutations(doc.value):
            deep_in_card = mutation.path[:2] == ("predicate", "card") and len(mutation.path) > 3
            if doc.kind == "statement" and deep_in_card:
                continue
            where = tuple("[]" if isinstance(p, int) else p for p in mutation.path)
            key = (doc.kind, where, mutation.change, mutation.context)
            if key not in seen:
                seen.add(key)
                kept.append(mutation)
        plan[_id(doc)] = kept
    return plan


def _disagreements(document: Any, kind: str, planned: Iterable[Mutation]) -> tuple[int, list[str]]:
    count, found = 0, []
    for mutation in planned:
        count += 1
        why = disagreement(mutation.apply(document), kind)
        if why:
            found.append(f"{mutation.describe()}: {why}")
    return count, found


def _shortened(doc: Doc, keep: int = 3) -> Doc:
    """``doc`` with every list cut to its first ``keep`` items, where the schema and model still say the same.

    Mutations ignore list indexes (``_plan``), so items past the first few add no mutation, only time: a
    measured footprint holds 30 calls of 32 token times each, and validating its 74 kB once per mutation
    took 80 s. A document whose verdict depends on a list's length (a count checked against it) is kept whole.
    """

    def cut(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cut(v) for v in value[:keep]]
        return value

    short = cut(doc.value)
    if same_json(short, doc.value):
        return doc
    same = schema_accepts(short, doc.kind) == schema_accepts(doc.value, doc.kind)
    agree = model_answer(short, doc.kind)[0] == model_answer(doc.value, doc.kind)[0]
    return Doc(doc.kind, doc.name, short) if same and agree else doc


COMMITTED, REFUSED = _committed()
DOCS = [_shortened(doc) for doc in COMMITTED + _edited()]
PLAN = _plan(DOCS)
# A final newline given to each key and string, once per place, of documents the schema accepts (so that
# the newline alone decides; PLAN may reach a place first in a document refused for something else).
ACCEPTED = [doc for doc in DOCS if schema_accepts(doc.value, doc.kind)]
NEWLINES = {
    name: [m for m in planned if m.change.endswith("+ a newline")]
    for name, planned in _plan(ACCEPTED).items()
}

# --- tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [*DOCS, GENERATED], ids=_id)
def test_model_and_schema_agree_on_the_document(doc: Doc, request: pytest.FixtureRequest) -> None:
    value = _value(doc, request)
    assert disagreement(value, doc.kind) == "", doc.name


@pytest.mark.parametrize("doc", [d for d in DOCS if PLAN[_id(d)]], ids=_id)
def test_model_and_schema_agree_on_every_mutation(doc: Doc) -> None:
    count, found = _disagreements(doc.value, doc.kind, PLAN[_id(doc)])
    assert not found, f"{doc.name}: {len(found)} of {count} mutations disagree:\n" + "\n".join(found[:40])


def test_model_and_schema_agree_on_every_mutation_of_the_built_index(built_index: dict[str, Any]) -> None:
    count, found = _disagreements(built_index, "catalog-index", mutations(built_index))
    assert not found, f"{len(found)} of {count} mutations disagree:\n" + "\n".join(found[:40])


@pytest.mark.parametrize("doc", [*[d for d in ACCEPTED if NEWLINES[_id(d)]], GENERATED], ids=_id)
def test_a_final_newline_is_read_as_ecma_262_reads_it(doc: Doc, request: pytest.FixtureRequest) -> None:
    r"""Schema (Python's re), schema read as ECMA-262 reads it, and model: one answer on each final newline.

    So every anchored pattern refuses "<value>\n" in both readings (`$(?!\n)`), and its model with it; a
    pattern whose characters would take a final newline anyway needs `"not": {"pattern": "\n"}` beside it.
    """
    value = _value(doc, request)
    planned = NEWLINES[_id(doc)] if doc is not GENERATED else mutations(value)
    assert ecma_accepts(value, doc.kind)
    count, found = 0, []
    for mutation in planned:
        if not mutation.change.endswith("+ a newline"):
            continue
        count += 1
        mutated = mutation.apply(value)
        FINAL_NEWLINES.clear()
        python, ecma = schema_accepts(mutated, doc.kind), ecma_accepts(mutated, doc.kind)
        if python != ecma:
            said = {True: "accepts", False: "refuses"}
            found.append(f"{mutation.describe()}: Python's re {said[python]} it, ECMA-262 {said[ecma]} it")
        elif ecma and FINAL_NEWLINES:
            found.append(f"{mutation.describe()}: accepted, as the pattern {FINAL_NEWLINES[0]} allows it")
        elif why := disagreement(mutated, doc.kind):
            found.append(f"{mutation.describe()}: {why}")
    assert count
    assert not found, f"{doc.name}: {len(found)} of {count} mutations disagree:\n" + "\n".join(found[:40])


def test_documents_of_every_kind_both_pass_and_fail(built_index: dict[str, Any]) -> None:
    """The agreement above means something: every kind has accepted documents, most have refused ones."""
    answers: dict[str, set[bool]] = {kind: set() for kind in MODELS}
    for doc in [*DOCS, Doc("catalog-index", "built", built_index)]:
        answers[doc.kind].add(schema_accepts(doc.value, doc.kind))
    assert {kind for kind, seen in answers.items() if True in seen} == set(MODELS)
    refused = {kind for kind, seen in answers.items() if False in seen}
    assert refused >= {"card", "pack", "statement", "trust-root", "catalog-index"}


@pytest.mark.parametrize(
    ("doc", "valid"),
    [
        pytest.param(doc, edit[3], id=_id(doc))
        for doc, edit in zip(DOCS[len(COMMITTED) :], EDITS, strict=True)
    ],
)
def test_edited_documents_are_what_they_say(doc: Doc, valid: bool) -> None:
    assert schema_accepts(doc.value, doc.kind) is valid


@pytest.mark.parametrize(
    ("kind", "path", "data"), REFUSED, ids=[f"{k}:{_relative(p)}" for k, p, _ in REFUSED]
)
def test_documents_that_do_not_parse_are_refused_before_any_model(kind: str, path: Path, data: bytes) -> None:
    model = MODELS[kind]
    if path.name == "receipt.json":  # the payload of an envelope
        with pytest.raises(InputError):
            model.from_json_bytes(data, file=path)
    else:
        with pytest.raises(InputError):
            model.load(path)


def test_every_schema_has_its_model_and_every_model_is_exported() -> None:
    kinds = {path.name.removesuffix(".schema.json") for path in schema_dir().glob("*.schema.json")}
    assert set(MODELS) == kinds
    assert set(formats.__all__) == {model.__name__ for model in MODELS.values()} | {"Document"}
    assert set(formats.__all__) <= set(dir(formats))
    assert all(issubclass(model, Document) for model in MODELS.values())
    with pytest.raises(AttributeError):
        _ = formats.Nothing


def test_format_markers_are_the_schemas_consts() -> None:
    for kind, model in MODELS.items():
        properties = schemas.schema(kind)["properties"]
        for key in ("format", "_type", "predicateType"):
            if key in properties:
                field = next(f for name, f in model.model_fields.items() if (f.alias or name) == key)
                assert field.annotation.__args__ == (properties[key]["const"],), (kind, key)  # type: ignore[union-attr]


def test_a_violation_names_its_file_and_json_path() -> None:
    _, card = load_document(DATA / "cards" / "card_many_errors.yaml")
    with pytest.raises(SchemaError) as caught:
        formats.Card.parse(card, file="card_many_errors.yaml")
    assert caught.value.kind == "card"
    assert caught.value.file == "card_many_errors.yaml"
    paths = {v.path for v in caught.value.violations}
    assert {
        "$.model.name",
        "$.lineage.base.parameters",
        "$.failure_modes[0].severity",
        "$.gate.min_retention",
    } <= paths
    assert "$.task_boundary.not_claiming" in paths  # missing: the path names the key that is not there


def test_parse_from_bytes_and_files_give_the_same_typed_document() -> None:
    data = (DATA / "golden_statement.json").read_bytes()
    statement = formats.Statement.from_json_bytes(data)
    assert statement.type_ == "https://in-toto.io/Statement/v1"
    assert statement.predicate.card.model.name == statement.predicate.model.name
    assert [s.name for s in statement.subjects("card")] == ["card.yaml"]
    assert formats.Statement.load(DATA / "golden_statement.json") == statement
    card = formats.Card.load(ROOT / "examples" / "card.yaml")
    assert card.lineage.relation == "distilled"
    with pytest.raises(InputError):
        formats.Statement.from_json_bytes(b'{"_type": 1, "_type": 2}')


def test_an_integral_float_reads_as_an_integer_and_true_never_does() -> None:
    _, root = load_document(VECTORS / "roots" / "main.json")
    root["signed"]["version"] = 1.0
    parsed = formats.TrustRootDocument.parse(root)
    assert parsed.signed.version == 1
    assert type(parsed.signed.version) is int
    root["signed"]["version"] = True
    with pytest.raises(SchemaError):
        formats.TrustRootDocument.parse(root)


def test_what_json_cannot_hold_is_refused_where_jsonschema_lets_it_through() -> None:
    """Keys that are not text (YAML's ``1: x``), NaN and infinity: no JSON document holds them.

    jsonschema checks ``propertyNames`` and ``minimum`` only on text keys and ordinary numbers, so a
    Python value with them can pass the schema; the models refuse it (so does ``receipts.documents``).
    """
    _, results = load_document(DATA / "run_minimal" / "results.json")
    rich = _rich_results(results)
    odd = [
        results | {1: "x"},
        results | {"models": results["models"] | {2: results["models"]["student"]}},
        _replace(rich, ("metrics", "all", "acc", "roles", "teacher", "value"), math.nan),
        _replace(rich, ("metrics", "all", "acc", "roles", "teacher", "ci95"), [0.0, math.inf]),
    ]
    for value in odd:
        assert schema_accepts(value, "results")
        with pytest.raises(SchemaError):
            formats.Results.parse(value)


# --- where Python's re and ECMA-262 (a browser, verify.js) could read a document differently ------------


def _model_patterns() -> set[str]:
    """Every ``pattern`` in the models' validators (built here: the package defers building them)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value)

    for model in MODELS.values():
        model.model_rebuild()
        walk(model.__pydantic_core_schema__)
    return found


def _schema_patterns() -> set[str]:
    from tests.receipts.test_schemas import _patterns

    return {pattern for kind in MODELS for pattern in _patterns(schemas.schema(kind))}


def test_every_model_pattern_is_its_schema_pattern_with_no_engine_dependent_class() -> None:
    r"""The models' patterns are the schemas' own text, so none uses `\s \S \w \W \d \D \b \B` either."""
    from tests.receipts.test_schemas import ENGINE_DEPENDENT, escaped_letters

    patterns = _model_patterns()
    assert patterns
    assert patterns <= _schema_patterns(), sorted(patterns - _schema_patterns())
    for pattern in patterns:
        assert not ENGINE_DEPENDENT & set(escaped_letters(pattern)), pattern


SEPARATORS = DATA / "hostile" / "card_api_identifier_separators.yaml"


def test_an_api_identifier_with_white_space_to_either_engine_is_refused_by_schema_and_model() -> None:
    r"""U+001C (white space to Python's `\s` only) and U+FEFF (to ECMA-262's only): both refuse both.

    With `[^\s]` the CLI refused the first and took the second, and a JavaScript validator the other way
    round; `[^SPACE]` refuses every character either engine calls white space, and nothing else.
    """
    _, card = load_document(SEPARATORS)
    teachers = ("$.lineage.teachers[0].api_identifier", "$.lineage.teachers[1].api_identifier")
    first, second = (t["api_identifier"] for t in card["lineage"]["teachers"])
    assert "\x1c" in first
    assert "\ufeff" in second
    with pytest.raises(SchemaError) as by_schema:
        schemas.validate(card, "card", file=SEPARATORS)
    with pytest.raises(SchemaError) as by_model:
        formats.Card.parse(card, file=SEPARATORS)
    assert {v.path for v in by_schema.value.violations} == set(teachers)
    assert {v.path for v in by_model.value.violations} == set(teachers)
    assert disagreement(card, "card") == ""
    # the same card with those two characters taken out is valid to both
    cleaned = copy.deepcopy(card)
    for teacher in cleaned["lineage"]["teachers"]:
        teacher["api_identifier"] = teacher["api_identifier"].replace("\x1c", "-").replace("\ufeff", "")
    assert schema_accepts(cleaned, "card")
    assert model_answer(cleaned, "card") == (True, "")
    # one character at a time: refused exactly when one engine or the other calls it white space
    space = re.compile(f"[{SPACE}]")
    for code in [*range(0x100), 0x1680, *range(0x2000, 0x2070), 0x3000, 0xFEFF, 0xFFFE]:
        char = chr(code)
        teacher = cleaned["lineage"]["teachers"][0] | {"api_identifier": f"openai:gpt{char}4o"}
        value = _replace(cleaned, ("lineage", "teachers", 0), teacher)
        white = char.isspace() or char == "\ufeff"  # Python's \s, plus the one ECMA-262 adds
        assert bool(space.match(char)) is white, hex(code)
        assert schema_accepts(value, "card") is not white, hex(code)
        assert disagreement(value, "card") == "", hex(code)


_WHOLE = "2026-01-01T00:00:00Z"
TIMES = [
    _WHOLE,
    "2026-01-01T00:00:00.5Z",
    "2026-01-01T00:00:00.000Z",
    "2026-01-01T00:00:00.123456789Z",
    "2026-01-01T00:00:00,5Z",
    "2026-01-01T00:00:00+00:00",
    "2026-01-01t00:00:00z",
    "2026-01-01T00:00:00Z\n",
    "2026-01-01T00:00:60Z",
    "2026-01-01T24:00:00Z",
    "2026-02-29T00:00:00Z",
    "2024-02-29T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "2026-01-01T00:00:0\u0660Z",
]
VALID_TIMES = {
    _WHOLE,
    "2024-02-29T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
}
TIME_FIELDS = [("signed", "issuedAt"), ("signed", "keys", 0, "notBefore"), ("signed", "keys", 0, "notAfter")]


def _root_with(path: tuple[Any, ...], text: str) -> dict[str, Any]:
    _, root = load_document(ROOT / ROOT_MAIN)
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = text
    return root


def _loads_as_trust_root(root: dict[str, Any]) -> bool:
    from receipts.trust import trust_root_from_bytes

    try:
        trust_root_from_bytes(json.dumps(root).encode("utf-8"))
    except VerificationError:
        return False
    return True


@pytest.mark.parametrize("path", TIME_FIELDS, ids=json_path)
def test_a_trust_root_time_is_whole_seconds_to_schema_model_and_loader(path: tuple[Any, ...]) -> None:
    """A fractional second is refused by the schema, the model and ``receipts.trust`` alike, at its path.

    verify.js refuses it too (``instant()``; the next test runs it): a key window finer than a second
    would be judged by Python in microseconds and by the browser's ``Date`` in milliseconds.
    """
    for text in TIMES:
        root = _root_with(path, text)
        accepted = text in VALID_TIMES
        assert schema_accepts(root, "trust-root") is accepted, text
        assert disagreement(root, "trust-root") == "", text
        assert _loads_as_trust_root(root) is accepted, text
        if not accepted:
            with pytest.raises(SchemaError) as caught:
                formats.TrustRootDocument.parse(root)
            assert {v.path for v in caught.value.violations} == {json_path(path)}, text


def _verify_js_instant() -> str:
    source = (ROOT / "site" / "assets" / "verify.js").read_text("utf-8")
    found = re.search(r"^  function instant\(text, what\) \{\n.*?^  \}\n", source, re.M | re.S)
    assert found, "verify.js has no instant(text, what)"
    return found.group(0)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run verify.js's instant()")
def test_verify_js_reads_a_trust_root_time_as_the_schema_does() -> None:
    """verify.js's ``instant()``, run by Node on each time, against the schema's answer on a notBefore."""
    script = (
        "function fail(reason) { throw new Error(reason); }\n" + _verify_js_instant() + "\n"
        'const times = JSON.parse(require("fs").readFileSync(0, "utf8"));\n'
        "process.stdout.write(JSON.stringify(times.map(t => { try { instant(t, 't'); return true; }"
        " catch (e) { return false; } })));\n"
    )
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "-e", script], input=json.dumps(TIMES), capture_output=True, text=True, check=True
    )
    browser = json.loads(done.stdout)
    path = ("signed", "keys", 0, "notBefore")
    cli = [schema_accepts(_root_with(path, text), "trust-root") for text in TIMES]
    assert dict(zip(TIMES, browser, strict=True)) == dict(zip(TIMES, cli, strict=True))
    assert {text for text, ok in zip(TIMES, browser, strict=True) if ok} == VALID_TIMES


def test_importing_the_package_imports_no_model() -> None:
    code = (
        "import sys, receipts.formats\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'receipts.formats.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
