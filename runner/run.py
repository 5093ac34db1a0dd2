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
from typing import IO, Any, Protocol

import numpy as np

from receipts.errors import InputError, ReceiptsError, UsageError
from receipts.output import make_folder
from runner import metrics
from runner.backends import Backend, ChoiceRequest, GenRequest, ModelIdentity, load_backend
from runner.backends.local import cache_root
from runner.cache import OutputCache, request_key
from runner.packs import Pack, PromptInstance, materialise

__all__ = [
    "ROLE_ORDER",
    "Engine",
    "LocalEngine",
    "RunConfig",
    "RunOutcome",
    "WorkItem",
    "WorkResult",
    "execute",
    "work",
]

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


def _request_for(sees_gold: bool, inst: PromptInstance, pack: Pack) -> tuple[str, ChoiceRequest | GenRequest]:
    """The cache key and the request for ``inst`` (gold only for backends that replay gold answers)."""
    if inst.continuations is not None:
        gold = inst.gold if sees_gold and isinstance(inst.gold, int) else None
        key = request_key("choices", context=inst.prompt, continuations=list(inst.continuations))
        return key, ChoiceRequest(inst.prompt, inst.continuations, gold)
    gen = pack.generation
    gold_text = None
    if sees_gold:
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


@dataclass(frozen=True)
class WorkItem:
    """One item's model work for one role: what to compute, and what the driver already has.

    Attributes:
        inst: the prompt instance.
        request: the request to send, or None when ``output`` came from the cache.
        output: the cached output (when ``request`` is None).
        dist: teacher only: also return its distributions over the KL target.
        kl_target: student roles: the continuation to measure token-level KL on ...
        teacher_dist: ... against these teacher distributions (None: no KL to measure).
    """

    inst: PromptInstance
    request: ChoiceRequest | GenRequest | None
    output: dict[str, Any] | None = None
    dist: bool = False
    kl_target: str | None = None
    teacher_dist: np.ndarray[Any, np.dtype[np.float32]] | None = None

    @property
    def needs_model(self) -> bool:
        """False when the driver can finish the item without a model call."""
        return self.request is not None or self.dist or self.teacher_dist is not None


@dataclass(frozen=True)
class WorkResult:
    """What a model produced for one `WorkItem`."""

    output: dict[str, Any]
    dist: tuple[str, np.ndarray[Any, np.dtype[np.float32]]] | None = None
    kl: dict[str, Any] = field(default_factory=dict)


def _compute(backend: Backend, requests: Sequence[ChoiceRequest | GenRequest]) -> list[dict[str, Any]]:
    choice = [r for r in requests if isinstance(r, ChoiceRequest)]
    gen = [r for r in requests if isinstance(r, GenRequest)]
    out: list[dict[str, Any]] = []
    if choice:
        for res in backend.score_choices(choice):
            out.append({"logliks": list(res.logliks), "greedy": list(res.greedy), "tokens": list(res.tokens)})
    if gen:
        for g in backend.generate(gen):
            out.append({"text": g.text, "token_logprobs": [round(v, 6) for v in g.token_logprobs]})
    return out


def _compute_each(backend: Backend, requests: Sequence[ChoiceRequest | GenRequest]) -> list[dict[str, Any]]:
    """All requests in one call; if that fails, item by item so only the failing item is lost."""
    try:
        return _compute(backend, requests)
    except ReceiptsError:
        raise
    except Exception:  # one bad batch: retry item by item
        fresh: list[dict[str, Any]] = []
        for request in requests:
            try:
                fresh.extend(_compute(backend, [request]))
            except ReceiptsError:
                raise
            except Exception as exc:  # recorded with the item; the run aborts past a threshold
                fresh.append({"error": f"{type(exc).__name__}: {exc}"[:500]})
        return fresh


def work(backend: Backend | None, items: Sequence[WorkItem]) -> list[WorkResult]:
    """Do the model work for a batch of items: outputs, then teacher distributions or token KL.

    The one function every engine calls (in process, or inside a Ray actor), so a distributed run
    computes exactly what a local one does.

    Raises:
        ReceiptsError: the backend refused in a way no retry fixes (e.g. an endpoint without logprobs).
    """
    outputs = [item.output for item in items]
    missing = [i for i, item in enumerate(items) if item.request is not None]
    if missing:
        assert backend is not None  # noqa: S101 - callers only pass None when nothing needs a model
        fresh = _compute_each(backend, [r for i in missing if (r := items[i].request) is not None])
        for i, value in zip(missing, fresh, strict=True):
            outputs[i] = value
    results = []
    for item, output in zip(items, outputs, strict=True):
        assert output is not None  # noqa: S101 - every item has a cached or a fresh output
        if "error" in output or backend is None:
            results.append(WorkResult(output))
            continue
        dist = None
        kl: dict[str, Any] = {}
        if item.dist:
            target = _kl_target(item.inst, {"output": output})
            dists = backend.teacher_forced(item.inst.prompt, target) if target is not None else None
            if target is not None and dists is not None:
                dist = (target, dists)
        elif item.teacher_dist is not None and item.kl_target is not None:
            p = item.teacher_dist
            q = backend.teacher_forced(item.inst.prompt, item.kl_target)
            if q is not None and p.shape == q.shape:
                kl = {"kl_token": round(metrics.token_kl(p, q), 8), "kl_positions": int(p.shape[0])}
        results.append(WorkResult(output, dist, kl))
    return results


class _RoleRun:
    """One role over the instances: prepares work, records each row as soon as it exists.

    The engine (local: `_run_local`; Ray: runner/ray_engine.py) decides where `work` runs; this
    class owns the driver's side — cache, partial rows, teacher distributions, error threshold.
    """

    def __init__(
        self,
        role: str,
        identity: ModelIdentity,
        pack: Pack,
        config: RunConfig,
        partial: Path,
        done: dict[str, dict[str, Any]],
        teacher: _TeacherDists | None,
        total: int,
    ):
        self.role, self.identity, self.pack, self.config = role, identity, pack, config
        self.done, self.teacher, self.total = done, teacher, total
        root = cache_root() if config.use_cache else None
        self.cache = OutputCache(root, identity.key)
        self.handle: IO[str] = partial.open("a", encoding="utf-8")
        self.computed = 0
        self.errors = sum(1 for row in done.values() if "error" in row["output"])
        self.limit_errors = max(5, int(config.max_error_rate * total))
        self.sees_gold = False

    def todo(self, instances: Sequence[PromptInstance]) -> list[PromptInstance]:
        """The instances this role has no row for yet."""
        return [inst for inst in instances if _instance_key(inst) not in self.done]

    def _kl_key(self, inst: PromptInstance, target: str) -> str:
        assert self.teacher is not None  # noqa: S101
        return request_key("kl", teacher=self.teacher.key, prompt=inst.prompt, continuation=target)

    def prepare(self, inst: PromptInstance) -> WorkItem:
        """What the model must still do for ``inst`` (nothing, when everything is cached)."""
        key, request = _request_for(self.sees_gold, inst, self.pack)
        cached = self.cache.get(key)
        if self.role == "teacher":
            # the KL target of an MC item is its gold continuation, known before the output is
            target = _kl_target(inst, {"output": cached or {}})
            if cached is None and target is None:  # a generate item: the target is the output
                return WorkItem(inst, request, dist=self.teacher is not None)
            need = self.teacher is not None and target is not None and not self.teacher.has(inst, target)
            return WorkItem(inst, request if cached is None else None, cached, dist=need)
        item = WorkItem(inst, request if cached is None else None, cached)
        if self.teacher is None or self.teacher.tokenizer != self.identity.tokenizer:
            return item
        target = self.teacher.target(inst)
        if target is None or self._kl_key(inst, target) in self.cache.values:
            return item
        p = self.teacher.load(inst, target)
        if p is None:
            return item
        return WorkItem(inst, item.request, cached, kl_target=target, teacher_dist=p)

    def finish(self, item: WorkItem, result: WorkResult) -> None:
        """Record one finished item: cache, teacher distributions or KL, the partial row."""
        inst, output = item.inst, result.output
        if item.request is not None:
            self.computed += 1
            if "error" not in output:
                self.cache.put(_request_for(self.sees_gold, inst, self.pack)[0], output)
        extra: dict[str, Any] = {}
        if "error" in output:
            self.errors += 1
        elif self.role == "teacher":
            if result.dist is not None and self.teacher is not None:
                self.teacher.save(inst, *result.dist)
        elif self.teacher is not None and self.teacher.tokenizer == self.identity.tokenizer:
            target = self.teacher.target(inst)
            if target is not None:
                kl_key = self._kl_key(inst, target)
                if result.kl:
                    self.cache.put(kl_key, result.kl)
                extra = dict(self.cache.values.get(kl_key, {}))
        row = {"key": _instance_key(inst), "prompt_sha256": inst.prompt_sha256, "output": output, **extra}
        self.handle.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n")
        self.handle.flush()
        self.done[row["key"]] = row

    def batch_done(self, progress: Progress | None) -> None:
        """After each batch: stop past the error threshold, report progress."""
        if self.errors > self.limit_errors:
            raise InputError(
                f"role {self.role}: {self.errors} items failed (limit {self.limit_errors}); "
                f"last error: {self._last_error()}",
                hint="fix the model or pack and rerun with --resume (finished items are kept)",
            )
        if progress is not None:
            progress(self.role, len(self.done), self.total)

    def close(self) -> None:
        """Close the partial file and the cache."""
        self.handle.close()
        self.cache.close()

    def _last_error(self) -> str:
        for row in reversed(list(self.done.values())):
            if "error" in row["output"]:
                return str(row["output"]["error"])
        return ""


def _run_local(
    job: _RoleRun, backend: Backend, instances: Sequence[PromptInstance], progress: Progress | None
) -> None:
    for batch in _batches(job.todo(instances), max(1, job.config.batch_size)):
        items = [job.prepare(inst) for inst in batch]
        for item, result in zip(items, work(backend, items), strict=True):
            job.finish(item, result)
        job.batch_done(progress)


class _TeacherDists:
    """The teacher's per-position distributions, kept on disk for token-level KL of later roles.

    Stored under the output cache (keyed by teacher identity, prompt and continuation) so a re-run
    needs no teacher forward; with ``--no-cache`` they live in the run folder.
    """

    def __init__(self, folder: Path, identity: ModelIdentity, rows: Mapping[str, Mapping[str, Any]]):
        self.folder, self.rows = folder, rows
        self.tokenizer = identity.tokenizer
        self.key = identity.key
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, inst: PromptInstance, target: str) -> Path:
        return self.folder / f"{request_key('dist', prompt=inst.prompt, continuation=target)}.npy"

    def target(self, inst: PromptInstance) -> str | None:
        return _kl_target(inst, self.rows.get(_instance_key(inst)))

    def has(self, inst: PromptInstance, target: str) -> bool:
        """Whether the distributions over ``target`` are on disk already."""
        return self._path(inst, target).exists()

    def save(self, inst: PromptInstance, target: str, dists: np.ndarray[Any, np.dtype[np.float32]]) -> None:
        """Keep the distributions (written to a temporary name, then renamed: never half a file)."""
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


class Engine(Protocol):
    """Where `work` runs: in this process (`LocalEngine`) or across a cluster (runner/ray_engine.py)."""

    name: str

    def open(self, role: str, spec: str) -> tuple[ModelIdentity, bool]:
        """Get the model behind ``spec`` ready; return its identity and whether it sees gold answers."""
        ...

    def run(
        self, jobs: Sequence[_RoleRun], instances: Sequence[PromptInstance], progress: Progress | None
    ) -> None:
        """Run every job over the instances (the jobs do not depend on each other)."""
        ...

    def close(self) -> None:
        """Release every model opened."""
        ...


class LocalEngine:
    """Every role in this process, one after another."""

    name = "local"

    def __init__(self) -> None:
        self.backends: dict[str, Backend] = {}

    def open(self, role: str, spec: str) -> tuple[ModelIdentity, bool]:
        """Load the backend (local models load lazily, on the first call)."""
        backend = self.backends[role] = load_backend(spec)
        return backend.identity, backend.sees_gold

    def run(
        self, jobs: Sequence[_RoleRun], instances: Sequence[PromptInstance], progress: Progress | None
    ) -> None:
        """Each job in turn; a role's model is released as soon as the role is done."""
        for job in jobs:
            try:
                _run_local(job, self.backends[job.role], instances, progress)
            finally:
                self.backends.pop(job.role).close()

    def close(self) -> None:
        """Release any model still open (after an error)."""
        for backend in self.backends.values():
            backend.close()
        self.backends.clear()


def execute(
    pack: Pack,
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> RunOutcome:
    """Evaluate every role on the pack's materialised prompts; return the rows per role.

    The teacher runs first (later roles measure KL against its distributions), then every other
    role; an engine may run those at once. Rows are appended as they finish, whatever the engine.

    Raises:
        UsageError: no teacher/student, a run already in ``run_dir`` (without resume/force), or a
            resume whose pack, specs, settings or model identities differ.
        InputError: a model cannot be loaded, or too many items failed.
    """
    for needed in ("teacher", "student"):
        if needed not in config.roles:
            raise UsageError(f"receipts run needs --{needed}", hint="e.g. --teacher hf:models/teacher")
    if config.limit is not None and config.limit < 1:  # a slice [:-1] would silently drop the last item
        raise UsageError(
            f"--limit must be at least 1, not {config.limit}", hint="omit --limit to run every item"
        )
    if config.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {config.batch_size}")
    started = time.perf_counter()
    make_folder(run_dir, what="the run")
    manifest = _open_run_dir(run_dir, pack, config, resume=resume, force=force)
    instances = _select(pack, config)
    if not instances:
        raise UsageError(f"pack {pack.id} has no items to run (--limit {config.limit})")
    engine = engine or LocalEngine()
    outcome = RunOutcome(run_dir, {}, {}, instances)
    teacher: _TeacherDists | None = None
    ordered = sorted(config.roles, key=lambda r: (ROLE_ORDER.index(r.split("@")[0]), r))
    try:
        for phase in (ordered[:1], ordered[1:]):  # the teacher, then everyone else
            jobs = []
            for role in phase:
                identity, sees_gold = engine.open(role, config.roles[role])
                _check_identity(manifest, role, identity)
                manifest["identities"][role] = identity.as_json()
                manifest["library_versions"] = _library_versions()
                manifest["threads"] = config.threads
                manifest["engine"] = engine.name
                _write_json(run_dir / MANIFEST, manifest)
                partial = run_dir / "partial" / f"{role.replace('@', '_at_')}.jsonl"
                done = _read_partial(partial)
                if role == "teacher":
                    dists = cache_root() / "dists" / identity.key if config.use_cache else None
                    teacher = _TeacherDists(dists or run_dir / "partial" / "teacher-dists", identity, done)
                job = _RoleRun(role, identity, pack, config, partial, done, teacher, len(instances))
                job.sees_gold = sees_gold
                jobs.append(job)
            try:
                engine.run(jobs, instances, progress)
            finally:
                for job in jobs:
                    job.close()
            for job in jobs:
                outcome.rows[job.role] = job.done
                outcome.identities[job.role] = {"spec": config.roles[job.role], **job.identity.as_json()}
                outcome.cache_hits[job.role] = job.cache.hits
                outcome.computed[job.role] = job.computed
    finally:
        engine.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


def _check_identity(manifest: Mapping[str, Any], role: str, identity: ModelIdentity) -> None:
    recorded = manifest["identities"].get(role)
    now = identity.as_json()
    if recorded is not None and recorded != now:
        raise UsageError(
            f"--resume refused: the model behind {role} changed since the run started",
            hint=f"was {recorded.get('digest') or recorded.get('endpoint')}, "
            f"now {now.get('digest') or now.get('endpoint')}; use a fresh --out",
        )
