"""An lm-eval task's local docs (jsonl, json, csv, parquet), read with caps, each given a stable string id.

Ids: lm-eval never needs one, so its data carries integer ids, ids under other names, or none. A pack item
id is a string (cards cite ``<pack>/<item-id>``), so the importer keeps the doc's own id where it has one
(an integer ``0`` becomes ``"0"``; a string that is a valid item id stays as it is) and otherwise derives
``row-<index>-<digest>``: the 0-based row index in the data file and the first 8 hex digits of the sha256
of the row's canonical JSON (sorted keys, UTF-8). Converting at import keeps the pack format strict (one
spelling per id) while every lm-eval dataset still imports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from receipts.documents import parse_json, read_bytes
from receipts.errors import InputError

__all__ = ["MAX_DATA_BYTES", "MAX_ROWS", "Doc", "read_docs", "stable_ids"]

MAX_DATA_BYTES = 256 * 1024 * 1024
MAX_ROWS = 1_000_000
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")  # items.py's (card.schema.json's) id rule
_FORMATS = {".jsonl": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}

Doc = dict[str, Any]


def _jsonl(data: bytes, path: Path) -> list[tuple[int, Doc]]:
    rows = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = parse_json(raw, file=path)
        except InputError as exc:
            raise InputError(exc.message, file=path, where=f"line {number}") from None
        if not isinstance(value, dict):
            raise InputError("each line must be one JSON object", file=path, where=f"line {number}")
        rows.append((number, value))
    return rows


def _json(data: bytes, path: Path) -> list[tuple[int, Doc]]:
    if data.lstrip()[:1] != b"[":  # datasets' json loader also reads JSON Lines from .json files
        return _jsonl(data, path)
    value = parse_json(data, file=path)
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise InputError("a .json data file must hold a list of objects (or JSON Lines)", file=path)
    return [(index + 1, row) for index, row in enumerate(value)]


def _column_type(cells: list[str]) -> type:
    """A CSV column's type as pandas (and so datasets) infers it: int, float, or text."""
    if cells and all(re.fullmatch(r"-?\d{1,18}", c) for c in cells):
        return int
    if cells and all(re.fullmatch(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", c) for c in cells):
        return float if all(math.isfinite(float(c)) for c in cells) else str
    return str


def _csv(data: bytes, path: Path) -> list[tuple[int, Doc]]:
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        rows = [(index + 2, row) for index, row in enumerate(reader)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"not a UTF-8 CSV file: {exc}", file=path) from None
    for line, row in rows:
        if None in row or any(v is None for v in row.values()):
            raise InputError(
                "a row has a different number of cells than the header", file=path, where=f"row {line}"
            )
    columns = list(rows[0][1]) if rows else []
    types = {name: _column_type([row[name] for _, row in rows]) for name in columns}
    return [(line, {k: types[k](v) for k, v in row.items()}) for line, row in rows]


def _parquet(path: Path) -> list[tuple[int, Doc]]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]  # optional: only parquet needs it
    except ModuleNotFoundError:
        raise InputError("reading parquet needs pyarrow", file=path, hint="pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable parquet file: {exc}", file=path) from None
    return [(index + 1, row) for index, row in enumerate(table.to_pylist())]


def read_docs(path: Path, data_format: str | None = None) -> tuple[bytes, list[tuple[int, Doc]]]:
    """The data file's bytes (for its digest) and its docs, each with its line (or row) number.

    Raises:
        InputError: missing, over `MAX_DATA_BYTES` or `MAX_ROWS`, malformed (names the line), or a format
            the importer does not read.
    """
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"cannot read data files named *{path.suffix}",
            file=path,
            hint="use .jsonl, .json, .csv or .parquet",
        )
    if data_format is not None and (data_format == "json") != (kind in ("json", "jsonl")):
        raise InputError(f"dataset_path says {data_format} but the file is {kind}", file=path)
    data = read_bytes(path, what="data file", limit=MAX_DATA_BYTES)
    readers = {"jsonl": _jsonl, "json": _json, "csv": _csv}
    rows = _parquet(path) if kind == "parquet" else readers[kind](data, path)
    if not rows:
        raise InputError("the data file holds no docs", file=path)
    if len(rows) > MAX_ROWS:
        raise InputError(f"more than {MAX_ROWS:,} docs", file=path, hint="import a smaller split")
    return data, rows


def _digest(doc: Mapping[str, Any]) -> str:
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def _own_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and _ITEM_ID.match(value):
        return value
    return None


def stable_ids(rows: list[tuple[int, Doc]], id_field: str, path: Path) -> list[str]:
    """One stable string id per doc (see the module docstring for the rule).

    Raises:
        InputError: two docs end up with the same id (names both lines).
    """
    ids: list[str] = []
    seen: dict[str, int] = {}
    for index, (line, doc) in enumerate(rows):
        own = _own_id(doc.get(id_field))
        item_id = own if own is not None else f"row-{index}-{_digest(doc)}"
        if item_id in seen:
            raise InputError(
                f"id {item_id!r} is used twice (first at line {seen[item_id]})",
                file=path,
                where=f"line {line} ({id_field})",
                hint=f"give every doc a unique `{id_field}`, or name another field with --id-field",
            )
        seen[item_id] = line
        ids.append(item_id)
    return ids
