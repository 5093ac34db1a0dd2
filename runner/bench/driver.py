"""`receipts bench`: what a model costs to run on this hardware (DESIGN §8), as a footprint document.

The parent process never imports torch. It describes the machine, measures memory bandwidth before
and after, and runs every measurement point — each (quantization, concurrency) pair and each probe of
the ``max_usable_context`` search — in a fresh worker process (`runner.bench.worker`) whose threads are
pinned before torch is imported. Each worker's result is kept in ``<out>.parts/`` as soon as it exists,
so an interrupted bench resumes (``--resume``) without measuring a finished point again.

The footprint keeps every raw per-call sample; the statistics are computed from them by
`receipts.footprint`, the code ``receipts verify`` re-derives them with, and a verdict says whether the
numbers are VALID, with machine-readable reasons when they are not (too short, too few samples, noisy
host, swapping, a budget not met):
`runner.bench.points` and `runner.bench.footprint`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from receipts import schemas
from receipts.errors import UsageError
from receipts.output import check_file, check_folder, make_folder, write_file
from runner.backends.base import ModelIdentity
from runner.backends.chat import OPTION as CHAT_OPTION
from runner.backends.local import local_identity, with_variant
from runner.backends.registry import split_spec
from runner.bench.context import limit_first, search_context
from runner.bench.footprint import Measurements, footprint
from runner.bench.host import bandwidth, fingerprint, mem_total_bytes, set_page_cache
from runner.bench.native import KIND as NATIVE
from runner.bench.native import native_target
from runner.bench.plan import BenchConfig

__all__ = ["Progress", "bench"]

Progress = Callable[[str], None]
WORKER = "runner.bench.worker"
"""The module each measurement runs in (``python -m runner.bench.worker JOB``)."""


def bench(
    config: BenchConfig, out: Path, *, resume: bool = False, force: bool = False, progress: Progress = print
) -> dict[str, Any]:
    """Measure, assemble, validate and write the footprint; return it.

    Raises:
        UsageError: bad settings, or a leftover/mismatched ``<out>.parts``.
        InputError: the model spec names nothing loadable.
    """
    config.check()
    kind, location = _local_target(config, out)
    target = _target(config, kind, location)
    config = target.config
    session = _Session(target, out, resume=resume, force=force, progress=progress)
    machine = fingerprint()
    bandwidth_before = session.bandwidth_before()
    raw_points = session.points()
    context = session.context(raw_points[0][2])
    progress(f"memory bandwidth again ({config.threads} thread(s)) ...")
    bandwidth_after = {**bandwidth(config.threads), "at": _now()}
    source = Path(location).expanduser()
    document: dict[str, Any] = footprint(
        Measurements(
            config=config,
            identity=target.identity,
            kind=kind,
            source=source,
            source_files=[source] if source.is_file() else _load_files(source),
            load_files=target.load_files,
            fingerprint=machine,
            bandwidth_before=bandwidth_before,
            bandwidth_after=bandwidth_after,
            raw_points=raw_points,
            context=context,
            created=_now(),
        )
    )
    document = json.loads(json.dumps(document, allow_nan=False))
    schemas.validate(document, "footprint", file=out)
    write_file(out, (json.dumps(document, indent=1) + "\n").encode("utf-8"), what="the footprint")
    shutil.rmtree(session.parts.dir, ignore_errors=True)
    return document


@dataclass(frozen=True)
class _Target:
    """What a bench measures: the settings resolved for the model, its identity and the files it loads.

    ``folder`` is what transformers loads (``hf:``/``gguf:``); ``file`` the GGUF llama.cpp loads.
    """

    config: BenchConfig
    kind: str
    identity: ModelIdentity
    load_files: list[Path]
    folder: Path | None = None
    file: Path | None = None


def _target(config: BenchConfig, kind: str, location: str) -> _Target:
    """The model's identity and files, and the settings with its quantizations resolved.

    Raises:
        UsageError: settings that do not apply to this kind of model.
        InputError: the model spec names nothing loadable.
    """
    if kind == NATIVE:
        native = native_target(config, location)
        return _Target(native.config, kind, native.identity, [native.file], file=native.file)
    identity, folder = local_identity(config.spec, kind, location, None)
    config = config if config.quants else replace(config, quants=("fp32",))
    return _Target(config, kind, identity, _load_files(folder), folder=folder)


def _split(spec: str) -> tuple[str, str, str | None]:
    """``(kind, location, variant)``; a ``llamacpp:`` location is the file's path as written."""
    kind, _, location = spec.partition(":")
    return (kind, location, None) if kind == NATIVE else split_spec(spec)


def _local_target(config: BenchConfig, out: Path) -> tuple[str, str]:
    """``(kind, location)`` of the model to bench, once the spec and ``--out`` are known to be usable.

    Raises:
        UsageError: not a local model, a spec with a variant, or an ``--out`` that cannot be written.
    """
    kind, location, spec_variant = _split(config.spec)
    if f"?{CHAT_OPTION}" in config.spec:  # before the variant check, which would read it as a variant
        raise UsageError(
            f"model spec {config.spec!r} asks for a chat template",
            hint=f"drop ?{CHAT_OPTION}=1: receipts bench measures fixed prompt and output token counts, "
            "which a chat template does not change",
        )
    if kind not in ("hf", "gguf", NATIVE):
        raise UsageError(
            f"receipts bench measures local models; {config.spec!r} is a {kind}: spec",
            hint="bench hf:DIR, gguf:FILE or llamacpp:FILE (a served endpoint's cost is its server's)",
        )
    if spec_variant:
        raise UsageError(
            f"model spec {config.spec!r} names a variant",
            hint=f"drop @{spec_variant} and pass --quant instead",
        )
    if out.suffix != ".json":
        raise UsageError(f"--out {out} must be a .json file", hint="e.g. --out runs/student/footprint.json")
    check_file(out, what="the footprint")  # refuse a bad --out before anything is measured
    check_folder(out.with_name(out.name + ".parts"), what="the bench's partial results")
    return kind, location


class _Session:
    """One bench's measurements: each in a fresh worker process, each kept in ``<out>.parts/`` at once."""

    def __init__(self, target: _Target, out: Path, *, resume: bool, force: bool, progress: Progress):
        self.target, self.config, self.identity = target, target.config, target.identity
        self.progress, self.load_files = progress, target.load_files
        settings = {k: v for k, v in asdict(self.config).items() if k not in ("point_timeout_s",)}
        settings["identity"] = self.identity.key
        self.settings = json.loads(json.dumps(settings))  # as the parts folder holds it (lists, not tuples)
        make_folder(out.parent, what="the footprint")
        self.parts = _Parts(out, resume=resume, force=force, settings=self.settings)

    def bandwidth_before(self) -> dict[str, Any]:
        """Memory bandwidth measured before any point (kept across a resume)."""
        measured = self.parts.get("bandwidth-before")
        if measured is None:
            self.progress(f"memory bandwidth ({self.config.threads} thread(s)) ...")
            measured = {**bandwidth(self.config.threads), "at": _now()}
            self.parts.put("bandwidth-before", measured)
        return measured

    def points(self) -> list[tuple[str, int, dict[str, Any]]]:
        """``(quant, concurrency, raw result)`` of every point, measured or kept from an interrupted bench."""
        config, raw_points = self.config, []
        for quant in config.quants:
            for concurrency in config.concurrency:
                key = "point-" + _key(self.identity.key, quant, concurrency, self.settings)
                raw = self.parts.get(key)
                if raw is None:
                    self.progress(f"{quant} concurrency {concurrency}: measuring in a fresh process ...")
                    raw = self._measure(key, self._job("point", quant, concurrency=concurrency))
                else:
                    self.progress(f"{quant} concurrency {concurrency}: kept from the interrupted bench")
                self.progress(_point_line(quant, concurrency, raw, config))
                raw_points.append((quant, concurrency, raw))
        return raw_points

    def context(self, head: dict[str, Any]) -> dict[str, Any]:
        """The ``max_usable_context`` search on the first quantization (or why it was not measured)."""
        config, quant = self.config, self.config.quants[0]
        if not config.context_search:
            return {"value": None, "null_reason": "not_measured: --no-context-search", "probes": []}
        if head.get("status") != "ok":
            return {
                "value": None,
                "null_reason": f"not_measured: the {quant} point did not run",
                "probes": [],
            }
        limit = int(head.get("max_position_embeddings") or 2048) - 2
        if config.max_context:
            limit = min(limit, config.max_context)
        self.progress(
            f"max usable context ({quant},"
            f" RAM budget {_gb(config.ram_budget_bytes or mem_total_bytes())},"
            f" TTFT budget {config.ttft_budget_s} s) ..."
        )
        guess = limit_first(_ttft_p50(head), config.prompt_tokens, limit, config.ttft_budget_s)
        context = search_context(self._probe, config.prompt_tokens, limit, config, guess_limit=guess)
        context["quant"] = quant
        return context

    def _probe(self, length: int) -> dict[str, Any]:
        config, quant = self.config, self.config.quants[0]
        key = "probe-" + _key(self.identity.key, quant, length, self.settings)
        result = self.parts.get(key)
        if result is None:
            result = self._measure(key, self._job("probe", quant, prompt_tokens=length, new_tokens=2))
        fits = result.get("status") == "ok" and float(result.get("ttft_s", math.inf)) <= config.ttft_budget_s
        self.progress(f"  context {length}: {'fits' if fits else 'does not fit'} ({_probe_why(result)})")
        return result

    def _measure(self, key: str, job: dict[str, Any]) -> dict[str, Any]:
        """Set the page cache as asked, run the job in a fresh process, keep its result."""
        set_page_cache(self.load_files, self.config.page_cache)
        raw = _run_worker(job, self.parts, key, self.config.point_timeout_s, self.config.threads)
        self.parts.put(key, raw)
        return raw

    def _job(self, mode: str, quant: str, **extra: Any) -> dict[str, Any]:
        config, target = self.config, self.target
        native = target.kind == NATIVE
        return {
            "mode": mode,
            "spec": config.spec,
            "kind": target.kind,
            "identity": (self.identity if native else with_variant(self.identity, quant)).as_json(),
            "folder": str(target.folder or ""),
            "file": str(target.file or ""),
            "variant": quant,
            "device": config.device,
            "threads": config.threads,
            "prompt_tokens": config.prompt_tokens,
            "new_tokens": config.new_tokens,
            "concurrency": 1,
            "warmups": config.warmups,
            "min_duration_s": config.min_duration_s,
            "min_calls": config.min_calls,
            "ram_budget_bytes": config.ram_budget_bytes,
            "ttft_budget_s": config.ttft_budget_s,
            "load_files": [str(p) for p in self.load_files],
            **extra,
        }


class _Parts:
    """``<out>.parts/``: one JSON file per finished measurement, written as soon as it exists."""

    def __init__(self, out: Path, *, resume: bool, force: bool, settings: dict[str, Any]):
        self.dir = out.with_name(out.name + ".parts")
        marker = self.dir / "settings.json"
        if self.dir.exists() and not resume and not force:
            raise UsageError(
                f"{self.dir} holds an interrupted bench",
                hint="rerun with --resume to continue it, or --force to start over",
            )
        if force and self.dir.exists():
            shutil.rmtree(self.dir)
        if resume and marker.exists():
            saved = json.loads(marker.read_text("utf-8"))
            if saved != settings:
                raise UsageError(
                    f"{self.dir} was started with other settings; --resume needs the same command",
                    hint="rerun the original command with --resume, or use --force to start over",
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(settings, sort_keys=True), "utf-8")

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.dir / f"{key}.json").read_text("utf-8"))
            return data
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        tmp = self.dir / f".{key}.tmp"
        tmp.write_text(json.dumps(value), "utf-8")
        os.replace(tmp, self.dir / f"{key}.json")


def _key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def _load_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _run_worker(job: dict[str, Any], parts: _Parts, key: str, timeout: float, threads: int) -> dict[str, Any]:
    """Run one job in a fresh process; return its result (a failure is a result too)."""
    job_path = parts.dir / f"{key}.job.json"
    result_path = parts.dir / f"{key}.result.json"
    result_path.unlink(missing_ok=True)
    job["result"] = str(result_path)
    job_path.write_text(json.dumps(job), "utf-8")
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    log = parts.dir / f"{key}.log"
    with log.open("w", encoding="utf-8") as sink:
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", WORKER, str(job_path)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
            code: int | None = done.returncode
        except subprocess.TimeoutExpired:
            code = None
    try:
        result: dict[str, Any] = json.loads(result_path.read_text("utf-8"))
    except (OSError, ValueError):
        result = _no_result(code, log, timeout)
    if result.get("status") == "running":
        result = {**result, "status": "failed", "detail": "the worker stopped before finishing"}
    return result


def _no_result(code: int | None, log: Path, timeout: float) -> dict[str, Any]:
    """The result of a worker that wrote none: timed out, killed (likely out of memory) or crashed."""
    tail = log.read_text("utf-8", errors="replace").strip().splitlines()[-3:]
    if code is None:
        why = f"timed out after {timeout:.0f} s (raise --timeout if the model is simply slow)"
    elif code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        why = f"killed by {name}" + (" (likely the kernel's out-of-memory killer)" if code == -9 else "")
    else:
        why = f"exited with status {code}"
    return {
        "status": "out_of_memory" if code == -9 else "failed",
        "detail": why + (": " + " | ".join(tail) if tail else ""),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ttft_p50(raw: dict[str, Any]) -> float | None:
    """The median time to first token of a timed point's calls (None without one)."""
    firsts = sorted(times[0] for times in raw.get("samples", {}).get("token_times_s", []) if times)
    return firsts[len(firsts) // 2] if firsts else None


def _gb(value: int | None) -> str:
    return "unknown" if value is None else f"{value / 1e9:.2f} GB"


def _probe_why(result: dict[str, Any]) -> str:
    if result.get("status") == "ok":
        return f"TTFT {float(result['ttft_s']):.3f} s, peak RSS {_gb(result.get('peak_rss_bytes'))}"
    return str(result.get("detail") or result.get("status"))


def _point_line(quant: str, concurrency: int, raw: dict[str, Any], config: BenchConfig) -> str:
    if raw.get("status") != "ok":
        return f"  {quant} c{concurrency}: {raw.get('status')}: {raw.get('detail')}"
    e2e = sorted(raw["samples"]["e2e_s"])
    median = e2e[len(e2e) // 2]
    return (
        f"  {quant} c{concurrency}: {raw['calls']} calls in {raw['duration_s']:.1f} s, "
        f"e2e median {median:.3f} s, {concurrency * config.new_tokens / median:.1f} new tok/s, "
        f"peak RSS {_gb(raw['peak_rss_bytes'])}, load {raw['load_time_s']:.2f} s"
    )
