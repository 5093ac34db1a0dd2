"""A content-addressed cache of model outputs: model identity x prompt x request parameters.

One append-only JSON-lines file per model identity under ``$RECEIPTS_CACHE/outputs/``. Each line is
``{"key": sha256(request), "value": {...}}``. A torn last line (a crash mid-write) is ignored. Re-running
an unchanged run therefore reads every output back instead of recomputing it.

A model whose numbers depend on which prompts share its forward (a padded batch in transformers: the last
digits move) caches under a *scope*, the batch's digest (`OutputCache.scope`): an output is read back only
into the batch it was computed in, so a run, its resume and `verify --rerun` see the same bits.
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
        self.scope = ""  # "" or the digest of the batch the next keys belong to
        self._handle: IO[str] | None = None
        if self.path is not None and self.path.exists():
            with self.path.open("r", encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                        self.values[entry["key"]] = entry["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a torn line from an interrupted write

    def _scoped(self, key: str) -> str:
        if not self.scope:
            return key
        return hashlib.sha256(f"{self.scope}:{key}".encode("ascii")).hexdigest()

    def has(self, key: str) -> bool:
        """Whether ``key`` is cached (in the current scope)."""
        return self._scoped(key) in self.values

    def peek(self, key: str) -> dict[str, Any]:
        """A copy of the cached value, or ``{}``; not counted as a hit."""
        return dict(self.values.get(self._scoped(key), {}))

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached output (in the current scope), or None."""
        value = self.values.get(self._scoped(key))
        if value is not None:
            self.hits += 1
        return value

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Record an output (flushed at once, so a crash loses at most the line being written)."""
        key = self._scoped(key)
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
