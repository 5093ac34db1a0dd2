"""``receipts run``: one pack x {teacher, base, student[, sft]} on the same materialised prompts.

Never loses work: each role's outputs are appended to ``RUN_DIR/partial/<role>.jsonl`` and flushed as
they are computed, and also to a content-addressed cache (model identity x request); ``--resume``
continues a run whose manifest (pack digest, model specs and identities, settings) matches, and an
unchanged re-run reads every output back from the cache. At the end the roles are joined side by
side into ``examples.jsonl`` and summarised into ``results.json`` (`runner.eval.report`).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from receipts.errors import InputError, UsageError
from receipts.output import make_folder
from runner.backends.base import Backend, ModelIdentity
from runner.backends.paths import cache_root
from runner.backends.registry import load_backend
from runner.eval.config import ROLE_ORDER, RunConfig
from runner.eval.packs import Pack, PromptInstance
from runner.eval.prompts import materialise
from runner.eval.roles import Progress, RoleRun, TeacherDists, in_batches, instance_key
from runner.eval.work import work

__all__ = ["Engine", "LocalEngine", "RunOutcome", "batches", "execute", "library_versions", "select"]

MANIFEST = "run.json"
MANIFEST_FORMAT = "receipts.run-manifest/v1"


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


def select(pack: Pack, config: RunConfig) -> list[PromptInstance]:
    """The instances a run poses, in order: the pack's first ``limit`` items, materialised at ``variants``.

    One implementation for `execute` and ``verify --rerun`` (`runner.eval.rerun`), which must pose each
    sampled item exactly as the signed run did.
    """
    items = pack.items[: config.limit] if config.limit is not None else pack.items
    return list(materialise(pack, config.variants, items=items))


def batches(instances: Sequence[PromptInstance], config: RunConfig) -> Iterator[list[PromptInstance]]:
    """The batches a run poses ``instances`` in: ``batch_size`` at a time (at least one), in order.

    A model's last bits can depend on which items share a forward, so a resumed run and a rerun pose
    exactly these batches (`_run_local`, `runner.eval.rerun`).
    """
    return in_batches(instances, max(1, config.batch_size))


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


def library_versions() -> dict[str, str]:
    """Python's and the libraries' versions that can move a model's numbers (recorded in results.json)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("receipts", "torch", "transformers", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


class Engine(Protocol):
    """Where `work` runs: in this process (`LocalEngine`) or across a cluster (`runner.eval.ray_engine`)."""

    name: str

    def open(self, role: str, spec: str) -> tuple[ModelIdentity, bool]:
        """Get the model behind ``spec`` ready; return its identity and whether it sees gold answers."""
        ...

    def run(
        self, jobs: Sequence[RoleRun], instances: Sequence[PromptInstance], progress: Progress | None
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
        self, jobs: Sequence[RoleRun], instances: Sequence[PromptInstance], progress: Progress | None
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


def _run_local(
    job: RoleRun, backend: Backend, instances: Sequence[PromptInstance], progress: Progress | None
) -> None:
    for batch in batches(instances, job.config):
        missing = {instance_key(inst) for inst in job.todo(batch)}
        if not missing:
            continue
        # The whole batch is posed again, as an uninterrupted run posed it, and only the missing rows are
        # kept: a model's numbers can differ in their last digits with which items share a forward, so a
        # resumed run stays byte for byte the uninterrupted one.
        job.enter(batch)
        items = [job.prepare(inst) for inst in batch]
        for item, result in zip(items, work(backend, items), strict=True):
            if instance_key(item.inst) in missing:
                job.finish(item, result)
        job.batch_done(progress)


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
    _check_config(config)
    started = time.perf_counter()
    make_folder(run_dir, what="the run")
    manifest = _open_run_dir(run_dir, pack, config, resume=resume, force=force)
    instances = select(pack, config)
    if not instances:
        raise UsageError(f"pack {pack.id} has no items to run (--limit {config.limit})")
    engine = engine or LocalEngine()
    outcome = RunOutcome(run_dir, {}, {}, instances)
    teacher: TeacherDists | None = None
    ordered = sorted(config.roles, key=lambda r: (ROLE_ORDER.index(r.split("@")[0]), r))
    try:
        for phase in (ordered[:1], ordered[1:]):  # the teacher, then everyone else
            jobs = [
                _open_role(engine, role, pack, config, run_dir, manifest, teacher, len(instances))
                for role in phase
            ]
            teacher = teacher or jobs[0].teacher
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


def _check_config(config: RunConfig) -> None:
    """Refuse a config that names no teacher or student, or counts below one.

    Raises:
        UsageError: naming the option.
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


def _open_role(
    engine: Engine,
    role: str,
    pack: Pack,
    config: RunConfig,
    run_dir: Path,
    manifest: dict[str, Any],
    teacher: TeacherDists | None,
    total: int,
) -> RoleRun:
    """Open the role's model, record its identity in the manifest, and pick up its finished rows.

    The teacher's role also opens the store of its distributions (in the cache, or with ``--no-cache``
    in the run folder) that later roles measure token KL against.

    Raises:
        UsageError: resuming, and the model behind the role changed since the run started.
    """
    identity, sees_gold = engine.open(role, config.roles[role])
    _check_identity(manifest, role, identity)
    manifest["identities"][role] = identity.as_json()
    manifest["library_versions"] = library_versions()
    manifest["threads"] = config.threads
    manifest["engine"] = engine.name
    _write_json(run_dir / MANIFEST, manifest)
    partial = run_dir / "partial" / f"{role.replace('@', '_at_')}.jsonl"
    done = _read_partial(partial)
    if role == "teacher":
        dists = cache_root() / "dists" / identity.key if config.use_cache else None
        teacher = TeacherDists(dists or run_dir / "partial" / "teacher-dists", identity, done)
    job = RoleRun(role, identity, pack, config, partial, done, teacher, total)
    job.sees_gold = sees_gold
    return job


def _check_identity(manifest: Mapping[str, Any], role: str, identity: ModelIdentity) -> None:
    recorded = manifest["identities"].get(role)
    now = identity.as_json()
    if recorded is not None and recorded != now:
        raise UsageError(
            f"--resume refused: the model behind {role} changed since the run started",
            hint=f"was {recorded.get('digest') or recorded.get('endpoint')}, "
            f"now {now.get('digest') or now.get('endpoint')}; use a fresh --out",
        )
