"""``receipts run``: one pack x {teacher, base, student[, sft]} on the same materialised prompts.

Never loses work: each role's outputs are appended to ``RUN_DIR/partial/<role>.jsonl`` and flushed as
they are computed, and also to a content-addressed cache (model identity x request); ``--resume``
continues a run whose manifest (pack digest, model specs and identities, settings) matches, and an
unchanged re-run reads every output back from the cache. At the end the roles are joined side by
side into ``examples.jsonl`` and summarised into ``results.json`` (runner/report.py).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from receipts.errors import InputError, ReceiptsError, UsageError
from runner import metrics
from runner.backends import Backend, ChoiceRequest, GenRequest, load_backend
from runner.backends.local import cache_root
from runner.cache import OutputCache, request_key
from runner.packs import Pack, PromptInstance, materialise

__all__ = ["ROLE_ORDER", "RunConfig", "RunOutcome", "execute"]

ROLE_ORDER = ("teacher", "base", "student", "sft")
MANIFEST = "run.json"
MANIFEST_FORMAT = "receipts.run-manifest/v1"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's outputs (besides the pack and the models)."""

    roles: Mapping[str, str]
    limit: int | None = None
    seed: int = 0
    threads: int = 1
    batch_size: int = 64
    variants: tuple[str, ...] | None = None
    max_error_rate: float = 0.1
    bootstrap_resamples: int = metrics.DEFAULT_RESAMPLES
    use_cache: bool = True

    def settings(self) -> dict[str, Any]:
        """The part of the config a resumed run must match."""
        return {
            "limit": self.limit,
            "seed": self.seed,
            "variants": list(self.variants) if self.variants is not None else None,
            "bootstrap_resamples": self.bootstrap_resamples,
        }


@dataclass
class RunOutcome:
    """What a finished run wrote, and how much came from the cache."""

    run_dir: Path
    identities: dict[str, dict[str, Any]]
    rows: dict[str, dict[str, dict[str, Any]]]
    instances: list[PromptInstance]
    cache_hits: dict[str, int] = field(default_factory=dict)
    computed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _instance_key(inst: PromptInstance) -> str:
    return f"{inst.item_id}\x1f{inst.variant}"


def _select(pack: Pack, config: RunConfig) -> list[PromptInstance]:
    items = pack.items[: config.limit] if config.limit is not None else pack.items
    return list(materialise(pack, config.variants, items=items))


def _manifest(pack: Pack, config: RunConfig) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "pack": {"id": pack.id, "version": pack.version, "digest": f"sha256:{pack.digest}"},
        "roles": dict(config.roles),
        "settings": config.settings(),
        "identities": {},
    }


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, path)


def _open_run_dir(
    run_dir: Path, pack: Pack, config: RunConfig, *, resume: bool, force: bool
) -> dict[str, Any]:
    manifest = _manifest(pack, config)
    path = run_dir / MANIFEST
    if path.exists() and resume:
        try:
            old = json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the run manifest: {exc}", file=path) from None
        for key, what in (("pack", "pack"), ("roles", "model specs"), ("settings", "settings")):
            if old.get(key) != manifest[key]:
                raise UsageError(
                    f"--resume refused: {run_dir} was started with different {what}",
                    hint=f"was {json.dumps(old.get(key))}, now {json.dumps(manifest[key])}; "
                    "use a fresh --out, or --force to start over",
                )
        manifest["identities"] = old.get("identities", {})
        return manifest
    if path.exists() and not force:
        raise UsageError(
            f"{run_dir} already holds a run",
            hint="pass --resume to continue it, --force to start over, or choose another --out",
        )
    if force and run_dir.exists():
        for name in (MANIFEST, "examples.jsonl", "results.json"):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "partial", ignore_errors=True)
    (run_dir / "partial").mkdir(parents=True, exist_ok=True)
    _write_json(path, manifest)
    return manifest


def _read_partial(path: Path) -> dict[str, dict[str, Any]]:
    """Rows already computed; a torn last line (SIGKILL mid-write) is dropped and rewritten later."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    good = 0
    with path.open("rb") as handle:
        for line in handle:
            try:
                row = json.loads(line)
                rows[row["key"]] = row
                good += len(line)
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                break
    with path.open("r+b") as handle:  # cut the torn tail so appends start on a line boundary
        handle.truncate(good)
    return rows


def _request(backend: Backend, inst: PromptInstance, pack: Pack) -> tuple[str, ChoiceRequest | GenRequest]:
    if inst.continuations is not None:
        gold = inst.gold if backend.sees_gold and isinstance(inst.gold, int) else None
        key = request_key("choices", context=inst.prompt, continuations=list(inst.continuations))
        return key, ChoiceRequest(inst.prompt, inst.continuations, gold)
    gen = pack.generation
    gold_text = None
    if backend.sees_gold:
        if isinstance(inst.gold, tuple) and inst.gold:
            gold_text = inst.gold[0]
        elif isinstance(inst.gold, Mapping):
            gold_text = json.dumps(dict(inst.gold))
    key = request_key("generate", prompt=inst.prompt, max_new_tokens=gen.max_new_tokens, stop=list(gen.stop))
    return key, GenRequest(inst.prompt, gen.max_new_tokens, gen.stop, gold_text)


def _kl_target(inst: PromptInstance, teacher_row: Mapping[str, Any] | None) -> str | None:
    """The continuation token-level KL is measured on: the gold choice (MC) or the teacher's output."""
    if inst.continuations is not None and isinstance(inst.gold, int):
        return inst.continuations[inst.gold]
    if teacher_row is not None and teacher_row.get("output", {}).get("text"):
        return str(teacher_row["output"]["text"])
    return None


def _batches(items: Sequence[PromptInstance], size: int) -> Iterator[list[PromptInstance]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class _RoleRun:
    """Runs one role over the instances, appending each row as soon as it exists."""

    def __init__(
        self,
        role: str,
        backend: Backend,
        pack: Pack,
        config: RunConfig,
        partial: Path,
        done: dict[str, dict[str, Any]],
        teacher: _TeacherDists | None,
    ):
        self.role, self.backend, self.pack, self.config = role, backend, pack, config
        self.done, self.teacher = done, teacher
        root = cache_root() if config.use_cache else None
        self.cache = OutputCache(root, backend.identity.key)
        self.handle: IO[str] = partial.open("a", encoding="utf-8")
        self.computed = 0
        self.errors = sum(1 for row in done.values() if "error" in row["output"])

    def _append(self, inst: PromptInstance, output: dict[str, Any], extra: dict[str, Any]) -> None:
        row = {"key": _instance_key(inst), "prompt_sha256": inst.prompt_sha256, "output": output, **extra}
        self.handle.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.handle.flush()
        self.done[row["key"]] = row

    def _outputs(self, batch: list[PromptInstance]) -> list[dict[str, Any]]:
        requests = [_request(self.backend, inst, self.pack) for inst in batch]
        results: list[dict[str, Any] | None] = [self.cache.get(key) for key, _ in requests]
        missing = [i for i, r in enumerate(results) if r is None]
        if not missing:
            return [r for r in results if r is not None]
        try:
            fresh = self._compute([requests[i][1] for i in missing])
        except ReceiptsError:
            raise
        except Exception:  # one bad batch: retry item by item so only the failing item is lost
            fresh = []
            for i in missing:
                try:
                    fresh.extend(self._compute([requests[i][1]]))
                except ReceiptsError:
                    raise
                except Exception as exc:  # recorded with the item; the run aborts past a threshold
                    fresh.append({"error": f"{type(exc).__name__}: {exc}"[:500]})
        for i, value in zip(missing, fresh, strict=True):
            results[i] = value
            if "error" not in value:
                self.cache.put(requests[i][0], value)
            self.computed += 1
        return [r for r in results if r is not None]

    def _compute(self, requests: Sequence[ChoiceRequest | GenRequest]) -> list[dict[str, Any]]:
        choice = [r for r in requests if isinstance(r, ChoiceRequest)]
        gen = [r for r in requests if isinstance(r, GenRequest)]
        out: list[dict[str, Any]] = []
        if choice:
            for res in self.backend.score_choices(choice):
                out.append(
                    {"logliks": list(res.logliks), "greedy": list(res.greedy), "tokens": list(res.tokens)}
                )
        if gen:
            for g in self.backend.generate(gen):
                out.append({"text": g.text, "token_logprobs": [round(v, 6) for v in g.token_logprobs]})
        return out

    def _kl(self, inst: PromptInstance) -> dict[str, Any]:
        """Token-level KL(teacher‖this role) at the teacher-forced positions, when tokenizers match."""
        if self.teacher is None or self.role == "teacher":
            return {}
        if self.teacher.tokenizer != self.backend.identity.tokenizer:
            return {}
        target = self.teacher.target(inst)
        if target is None:
            return {}
        key = request_key("kl", teacher=self.teacher.key, prompt=inst.prompt, continuation=target)
        cached = self.cache.values.get(key)  # not counted as an output cache hit
        if cached is not None:
            return cached
        p = self.teacher.load(inst, target)
        q = self.backend.teacher_forced(inst.prompt, target) if p is not None else None
        if p is None or q is None or p.shape != q.shape:
            return {}
        value = {"kl_token": round(metrics.token_kl(p, q), 8), "kl_positions": int(p.shape[0])}
        self.cache.put(key, value)
        return value

    def run(self, instances: Sequence[PromptInstance], progress: Progress | None) -> None:
        todo = [inst for inst in instances if _instance_key(inst) not in self.done]
        total = len(instances)
        limit_errors = max(5, int(self.config.max_error_rate * total))
        try:
            for batch in _batches(todo, max(1, self.config.batch_size)):
                for inst, output in zip(batch, self._outputs(batch), strict=True):
                    extra = {}
                    if "error" in output:
                        self.errors += 1
                    elif self.role == "teacher" and self.teacher is not None:
                        self.teacher.record(inst, output, self.backend)
                    else:
                        extra = self._kl(inst)
                    self._append(inst, output, extra)
                if self.errors > limit_errors:
                    raise InputError(
                        f"role {self.role}: {self.errors} items failed (limit {limit_errors}); "
                        f"last error: {self._last_error()}",
                        hint="fix the model or pack and rerun with --resume (finished items are kept)",
                    )
                if progress is not None:
                    progress(self.role, len(self.done), total)
        finally:
            self.handle.close()
            self.cache.close()

    def _last_error(self) -> str:
        for row in reversed(list(self.done.values())):
            if "error" in row["output"]:
                return str(row["output"]["error"])
        return ""


class _TeacherDists:
    """The teacher's per-position distributions, kept on disk for token-level KL of later roles.

    Stored under the output cache (keyed by teacher identity, prompt and continuation) so a re-run
    needs no teacher forward; with ``--no-cache`` they live in the run folder.
    """

    def __init__(self, folder: Path, backend: Backend, rows: Mapping[str, Mapping[str, Any]]):
        self.folder, self.rows = folder, rows
        self.tokenizer = backend.identity.tokenizer
        self.key = backend.identity.key
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, inst: PromptInstance, target: str) -> Path:
        return self.folder / f"{request_key('dist', prompt=inst.prompt, continuation=target)}.npy"

    def target(self, inst: PromptInstance) -> str | None:
        return _kl_target(inst, self.rows.get(_instance_key(inst)))

    def record(self, inst: PromptInstance, output: Mapping[str, Any], backend: Backend) -> None:
        target = _kl_target(inst, {"output": output})
        if target is None or self._path(inst, target).exists():
            return
        dists = backend.teacher_forced(inst.prompt, target)
        if dists is not None:
            path = self._path(inst, target)
            tmp = path.with_name(path.stem + ".tmp.npy")
            np.save(tmp, dists)
            os.replace(tmp, path)

    def load(self, inst: PromptInstance, target: str) -> np.ndarray[Any, np.dtype[np.float32]] | None:
        path = self._path(inst, target)
        return np.load(path) if path.exists() else None


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("receipts", "torch", "transformers", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def execute(
    pack: Pack,
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> RunOutcome:
    """Evaluate every role on the pack's materialised prompts; return the rows per role.

    Raises:
        UsageError: no teacher/student, a run already in ``run_dir`` (without resume/force), or a
            resume whose pack, specs, settings or model identities differ.
        InputError: a model cannot be loaded, or too many items failed.
    """
    for needed in ("teacher", "student"):
        if needed not in config.roles:
            raise UsageError(f"receipts run needs --{needed}", hint="e.g. --teacher hf:models/teacher")
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = _open_run_dir(run_dir, pack, config, resume=resume, force=force)
    instances = _select(pack, config)
    if not instances:
        raise UsageError(f"pack {pack.id} has no items to run (--limit {config.limit})")
    outcome = RunOutcome(run_dir, {}, {}, instances)
    teacher: _TeacherDists | None = None
    ordered = sorted(config.roles, key=lambda r: (ROLE_ORDER.index(r.split("@")[0]), r))
    for role in ordered:
        backend = load_backend(config.roles[role])
        identity = backend.identity.as_json()
        recorded = manifest["identities"].get(role)
        if recorded is not None and recorded != identity:
            raise UsageError(
                f"--resume refused: the model behind {role} changed since the run started",
                hint=f"was {recorded.get('digest') or recorded.get('endpoint')}, "
                f"now {identity.get('digest') or identity.get('endpoint')}; use a fresh --out",
            )
        manifest["identities"][role] = identity
        manifest["library_versions"] = _library_versions()
        manifest["threads"] = config.threads
        _write_json(run_dir / MANIFEST, manifest)
        partial = run_dir / "partial" / f"{role.replace('@', '_at_')}.jsonl"
        done = _read_partial(partial)
        if role == "teacher":
            dists = cache_root() / "dists" / backend.identity.key if config.use_cache else None
            teacher = _TeacherDists(dists or run_dir / "partial" / "teacher-dists", backend, done)
        job = _RoleRun(role, backend, pack, config, partial, done, teacher)
        try:
            job.run(instances, progress)
        finally:
            backend.close()
        outcome.rows[role] = done
        outcome.identities[role] = {"spec": config.roles[role], **identity}
        outcome.cache_hits[role] = job.cache.hits
        outcome.computed[role] = job.computed
    outcome.seconds = time.perf_counter() - started
    return outcome
