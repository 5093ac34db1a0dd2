"""``receipts run --ray ADDRESS``: the same run, its model work spread over a Ray cluster.

Each role gets ``workers`` Ray actors, each holding the role's model (loaded once, on the node Ray
places it on, with ``num_cpus = --threads``). The driver keeps everything that decides results and
resumability exactly as a local run does — the output cache, the partial rows (appended as each batch
returns), the teacher's distributions, the error threshold — and ships only `runner.eval.work.WorkItem`
batches to the actors, which call the same `runner.eval.work.work` a local run calls. So a Ray run writes
the same rows as a local one, and either can resume the other's run.

Scheduling is Ray's: the teacher's batches first (later roles need its distributions), then the
batches of every other role at once, at most two in flight per actor; Ray queues what the cluster has no
CPUs for yet. ``ADDRESS`` is passed to ``ray.init``: ``local`` starts a private Ray on this machine,
``auto`` joins the cluster this machine belongs to, ``ray://HOST:10001`` connects through Ray Client.
Model specs must name paths the worker nodes can read (or ``openai:`` endpoints they can reach).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

from receipts.errors import InputError, ReceiptsError, UsageError
from runner.backends.base import ModelIdentity
from runner.backends.registry import load_backend
from runner.eval.packs import PromptInstance
from runner.eval.roles import Progress, RoleRun, in_batches, instance_key
from runner.eval.work import WorkItem, WorkResult, work

__all__ = ["RayEngine"]

IN_FLIGHT_PER_ACTOR = 2


def _identity(spec: str) -> tuple[ModelIdentity, bool]:
    """The model's identity as a worker node sees it (the weights are hashed where they live)."""
    backend = load_backend(spec)
    try:
        return backend.identity, backend.sees_gold
    finally:
        backend.close()


def _shard(
    spec: str, expected: ModelIdentity, batches: Sequence[Sequence[WorkItem]]
) -> Iterator[list[WorkResult]]:
    """One shard of a role: load the model once, yield each batch's results as soon as they exist."""
    backend = load_backend(spec)
    try:
        if backend.identity != expected:
            found = backend.identity
            raise InputError(
                f"a Ray worker sees a different model behind {spec}: "
                f"{found.digest or found.endpoint}, not {expected.digest or expected.endpoint}",
                hint="every node must hold the same weights at that path",
            )
        for batch in batches:
            yield work(backend, batch)
    finally:
        backend.close()


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--ray needs Ray installed",
            hint="pip install ray==2.60.0 (or, in a receipts checkout: pip install -e '.[ray]')",
        ) from None
    return ray


def _unwrap(exc: BaseException) -> BaseException:
    """The receipts error inside a Ray task error, so it reaches the CLI as itself."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, ReceiptsError) else exc


class RayEngine:
    """Runs `runner.eval.work.work` in Ray tasks: ``workers`` shards per role, each streaming its batches."""

    name = "ray"

    def __init__(self, address: str, *, workers: int = 1, threads: int = 1):
        if workers < 1:
            raise UsageError("--ray-workers must be at least 1")
        self.ray = _import_ray()
        self.address, self.workers, self.threads = address, workers, threads
        self.specs: dict[str, tuple[str, ModelIdentity]] = {}
        self._started = False

    def _init(self) -> None:
        if self._started:
            return
        env = {
            name: str(self.threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        }
        if "RECEIPTS_CACHE" in os.environ:
            env["RECEIPTS_CACHE"] = os.environ["RECEIPTS_CACHE"]
        try:
            self.ray.init(
                address=self.address,
                runtime_env={"env_vars": env},
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(
                f"cannot start or join Ray at {self.address!r}: {exc}",
                hint="--ray local starts one here; --ray auto joins this machine's cluster "
                "(`ray start --head` first); --ray ray://HOST:10001 connects through Ray Client",
            ) from None
        self._started = True

    def _get(self, ref: Any) -> Any:
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            raise _unwrap(exc) from None

    def open(self, role: str, spec: str) -> tuple[ModelIdentity, bool]:
        """The model's identity: computed here when this machine holds the model, else by a worker.

        Either way every shard checks it again where it runs (`_shard`), so a node holding other
        weights at the same path fails the run instead of mixing models.
        """
        self._init()
        try:
            identity, sees_gold = _identity(spec)
        except InputError:  # the weights live on the cluster only
            identity, sees_gold = self._get(self.ray.remote(num_cpus=self.threads)(_identity).remote(spec))
        self.specs[role] = (spec, identity)
        return identity, sees_gold

    def _shards(self, job: RoleRun, instances: Sequence[PromptInstance]) -> list[list[list[WorkItem]]]:
        """The role's unfinished items as batches, dealt into at most ``workers`` shards.

        Items that need no model (cached output, nothing else to measure) are finished here.
        """
        batches = []
        for batch in in_batches(instances, max(1, job.config.batch_size)):
            missing = {instance_key(inst) for inst in job.todo(batch)}
            if not missing:
                continue
            # the batches a local run poses (`runner.eval.run._run_local`), whole; only missing rows are kept
            job.enter(batch)
            items = [job.prepare(inst) for inst in batch]
            if any(item.needs_model for item in items):
                batches.append(items)
                continue
            for item, result in zip(items, work(None, items), strict=True):
                if instance_key(item.inst) in missing:
                    job.finish(item, result)
        size = -(-len(batches) // self.workers) if batches else 0
        return [batches[i : i + size] for i in range(0, len(batches), size)] if size else []

    def run(
        self, jobs: Sequence[RoleRun], instances: Sequence[PromptInstance], progress: Progress | None
    ) -> None:
        """Every job's shards at once (Ray queues what the cluster has no CPUs for yet)."""
        task = self.ray.remote(num_cpus=self.threads, num_returns="streaming")(_shard)
        streams: dict[Any, tuple[RoleRun, Iterator[list[WorkItem]]]] = {}
        for job in jobs:
            spec, identity = self.specs[job.role]
            for shard in self._shards(job, instances):
                streams[task.remote(spec, identity, shard)] = (job, iter(shard))
            job.batch_done(progress)
        try:
            while streams:
                ready, _ = self.ray.wait(list(streams), num_returns=1)
                stream = ready[0]
                job, batches = streams[stream]
                try:
                    ref = next(stream)
                except StopIteration:
                    del streams[stream]
                    continue
                for item, result in zip(next(batches), self._get(ref), strict=True):
                    if instance_key(item.inst) not in job.done:
                        job.finish(item, result)
                job.batch_done(progress)
        finally:  # an error or Ctrl-C: stop the shards still running (their finished rows are kept)
            for stream in streams:
                with contextlib.suppress(Exception):
                    self.ray.cancel(stream, force=True)

    def close(self) -> None:
        """Nothing to release after a pack: shards end with their work (Ray stays up for the next pack)."""
        self.specs.clear()

    def shutdown(self) -> None:
        """Disconnect from Ray at the end of the command; a Ray started here (``local``) stops with it."""
        if self._started:
            self.ray.shutdown()
            self._started = False
