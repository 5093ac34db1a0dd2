"""``replay:FILE.jsonl`` — recorded outputs of a model that cannot be run here (a closed-API teacher).

One JSON object per line, keyed by the sha256 of the exact prompt the pack materialises:
``{"prompt_sha256": "<hex>", "output": "text"}`` for generate tasks and
``{"prompt_sha256": "<hex>", "logliks": [..one per choice..]}`` (or ``"choice": i``) for multiple
choice. An optional first line ``{"meta": {"model": "...", "endpoint": "...", "recorded_at": "..."}}``
names what was recorded. The file's sha256 is the identity's digest, so a receipt binds the recordings.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from receipts.digests import sha256_file
from receipts.documents import read_bytes
from receipts.errors import InputError
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, ModelIdentity

__all__ = ["ReplayBackend", "prompt_sha256"]


def prompt_sha256(prompt: str) -> str:
    """The key of a recording: sha256 of the prompt's UTF-8 bytes."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def _parse_line(path: Path, number: int, line: bytes) -> Any:
    """One recording line as JSON, or an `InputError` naming the file and line."""
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start} of the line is 0x{line[exc.start]:02x})",
            file=path,
            where=str(number),
            hint="a recordings file is UTF-8 JSON Lines: one JSON object per line",
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg})", file=path, where=str(number)) from exc
    except RecursionError as exc:
        raise InputError("JSON nested too deeply", file=path, where=str(number)) from exc


class ReplayBackend:
    """Answers from a recordings file; a prompt with no recording is an error naming it."""

    sees_gold = False

    def __init__(self, spec: str, location: str):
        path = Path(location).expanduser()
        if path.is_dir():
            raise InputError(
                f"model spec {spec!r}: recordings must be a .jsonl file, not a folder",
                file=path,
                hint="replay:FILE.jsonl",
            )
        if not path.is_file():
            raise InputError(f"model spec {spec!r}: recordings file {path} does not exist", file=path)
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        meta: dict[str, Any] = {}
        for number, line in enumerate(read_bytes(path, what="recordings file").splitlines(), 1):
            if not line.strip():
                continue
            row = _parse_line(path, number, line)
            if not isinstance(row, dict):
                raise InputError("expected a JSON object", file=path, where=str(number))
            if number == 1 and "meta" in row:
                meta = dict(row["meta"]) if isinstance(row["meta"], dict) else {}
                continue
            key = row.get("prompt_sha256")
            if not isinstance(key, str) or len(key) != 64:
                raise InputError(
                    "needs prompt_sha256 (64 hex characters)",
                    file=path,
                    where=str(number),
                    hint="record sha256 of the exact prompt text the pack renders",
                )
            self.rows[key] = row
        self.identity = ModelIdentity(
            spec=spec,
            kind="replay",
            digest="sha256:" + sha256_file(path),
            endpoint=str(meta.get("endpoint") or meta.get("model") or path.name),
            extra={k: str(v) for k, v in meta.items()},
        )

    def _row(self, prompt: str) -> dict[str, Any]:
        key = prompt_sha256(prompt)
        try:
            return self.rows[key]
        except KeyError:
            raise InputError(
                f"no recording for prompt sha256:{key} ({prompt[:60]!r}...)",
                file=self.path,
                hint="record this prompt, or run a subset with --limit that the recordings cover",
            ) from None

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Recorded log-likelihoods, or the recorded choice as a one-hot (log 1 vs log 0 ≈ -1e9)."""
        out = []
        for req in requests:
            row = self._row(req.context)
            n = len(req.continuations)
            if isinstance(row.get("logliks"), list) and len(row["logliks"]) == n:
                logliks = tuple(float(v) for v in row["logliks"])
            elif isinstance(row.get("choice"), int) and 0 <= row["choice"] < n:
                logliks = tuple(0.0 if i == row["choice"] else -1e9 for i in range(n))
            else:
                raise InputError(
                    f"recording for prompt sha256:{prompt_sha256(req.context)} has neither "
                    f"{n} logliks nor a valid choice",
                    file=self.path,
                )
            best = int(np.argmax(logliks))
            out.append(ChoiceResult(logliks, tuple(i == best for i in range(n)), tuple(1 for _ in range(n))))
        return out

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """The recorded output text (and token log-probs if recorded)."""
        out = []
        for req in requests:
            row = self._row(req.prompt)
            if not isinstance(row.get("output"), str):
                raise InputError(
                    f"recording for prompt sha256:{prompt_sha256(req.prompt)} has no output", file=self.path
                )
            logprobs = row.get("token_logprobs") or []
            clean = tuple(float(v) for v in logprobs if isinstance(v, int | float) and math.isfinite(v))
            out.append(GenResult(row["output"], clean))
        return out

    def teacher_forced(self, pairs: Sequence[tuple[str, str]]) -> list[npt.NDArray[np.float32] | None]:
        """Recordings carry no distributions."""
        return [None for _ in pairs]

    def close(self) -> None:
        """Nothing to free."""
