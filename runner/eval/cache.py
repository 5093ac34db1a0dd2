"""A content-addressed cache of model outputs: model identity x prompt x request parameters.

One append-only JSON-lines file per model identity under ``$RECEIPTS_CACHE/outputs/``. Each line is
``{"key": sha256(request), "value": {...}}``. A torn last line (a crash mid-write) is ignored. Re-running
an unchanged run therefore reads every output back instead of recomputing it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["OutputCache", "request_key"]


def request_key(kind: str, **fields: Any) -> str:
    """sha256 over the canonical request (kind + every field that changes the output)."""
    text = json.dumps({"kind": kind, **fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class OutputCache:
    """The outputs one model identity has produced, keyed by `request_key`."""

    def __init__(self, root: Path | None, identity_key: str):
        self.path = root / "outputs" / f"{identity_key}.jsonl" if root is not None else None
        self.values: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self._handle: IO[str] | None = None
        if self.path is not None and self.path.exists():
            with self.path.open("r", encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                        self.values[entry["key"]] = entry["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a torn line from an interrupted write

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached output, or None."""
        value = self.values.get(key)
        if value is not None:
            self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Record an output (flushed at once, so a crash loses at most the line being written)."""
        self.values[key] = value
        if self.path is None:
            return
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps({"key": key, "value": value}, separators=(",", ":")) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file (and sync it)."""
        if self._handle is not None:
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
