"""``receipts verify RECEIPT --rerun N``: re-execute a seeded, slice-stratified sample of the signed items.

A verified receipt says which numbers a publisher signed; a rerun checks that a model *produces* them. It
picks N rows of the signed examples logs (`runner.eval.sample`), re-poses each on the given model with the
code that ran them (`runner.eval.prompts.materialise`, `runner.eval.work.work`,
`runner.eval.scoring.example_cell`) and the settings the signed header records (variants, limit, batch
size, threads), and holds each to its signed row (`runner.eval.compare`): the prompt's sha256 and the
answer (and text) exactly, the log-likelihoods bit for bit when the setup is the signed one (compute dtype,
runtime quantization, threads and, where recorded, torch and transformers versions), otherwise within the
signed dtype's tolerance, and says which. The model's identity is compared with the signed one and a
difference is reported, but the items are still compared, so changed weights show which items moved.

What the signed header does not record (the CPU; library versions before they were recorded) can still
move the last bits: a reproducer on another machine passes ``tolerant=True`` and the result says so.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from receipts.errors import UsageError
from runner.backends.base import Backend
from runner.backends.chat import is_chat
from runner.backends.registry import load_backend, split_spec
from runner.eval.command import pin_threads
from runner.eval.compare import EXACT, TOLERANCES, ItemCheck, Tolerance, compare, tolerance_for
from runner.eval.config import RunConfig
from runner.eval.loader import load_pack
from runner.eval.packs import Pack, PromptInstance
from runner.eval.run import batches, select
from runner.eval.sample import Sampled, SignedRun, sample, signed_runs
from runner.eval.scoring import example_cell
from runner.eval.work import WorkItem, request_for, work

if TYPE_CHECKING:
    from receipts.formats.results import ModelIdentity

__all__ = [
    "TOLERANCES",
    "ItemCheck",
    "Reproduction",
    "RerunRequest",
    "SignedRun",
    "Tolerance",
    "rerun",
    "sample",
    "signed_runs",
]


@dataclass(frozen=True)
class RerunRequest:
    """What ``receipts verify --rerun`` was asked (see ``receipts verify --help``)."""

    n: int
    role: str = "student"
    weights: Path | None = None
    model: str | None = None
    packs: tuple[Path, ...] = ()
    seed: int = 0
    threads: int | None = None
    tolerant: bool = False


@dataclass(frozen=True)
class Reproduction:
    """A rerun's outcome: which model ran, in which setup, and each sampled item's check."""

    role: str
    spec: str
    identity: dict[str, Any]
    signed_identity: dict[str, Any]
    packs: dict[str, str]
    """Pack id -> ``sha256:`` digest of each pack re-run (each equal to the signed one)."""
    asked: int
    seed: int
    threads: int
    signed_threads: tuple[int | None, ...]
    mode: str
    """``exact`` (the signed setup: bit for bit) or ``tolerance``."""
    tolerance: Tolerance
    why: str
    """Why the mode: the setup compared with the signed one (``threads 1 vs 2``...)."""
    checks: tuple[ItemCheck, ...] = field(default_factory=tuple)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Items reproduced."""
        return sum(c.reproduced for c in self.checks)

    @property
    def n(self) -> int:
        """Items re-executed."""
        return len(self.checks)

    @property
    def same_model(self) -> bool:
        """Whether the model that ran is the signed one (weights digest or endpoint)."""
        key = "digest" if self.signed_identity.get("digest") else "endpoint"
        return self.identity.get(key) == self.signed_identity.get(key)

    @property
    def ok(self) -> bool:
        """Every item reproduced, on the signed model."""
        return self.same_model and self.k == self.n

    @property
    def exact(self) -> bool:
        """Every log-likelihood equal to the signed one, bit for bit."""
        return all(c.max_delta in (None, 0.0) for c in self.checks)

    @property
    def label(self) -> str:
        """``bit-exact`` or ``within tolerance (…)``, saying how the setup differs from the signed one."""
        if self.mode == "exact":
            return "bit-exact" if self.k == self.n else "bit-exact expected: the signed setup"
        if self.exact:
            return f"bit-exact ({self.why})"
        return f"within tolerance ({self.why}; {self.tolerance})"

    def as_json(self) -> dict[str, Any]:
        """The outcome as ``--json`` prints it."""
        return {
            "role": self.role,
            "model": self.spec,
            "identity": self.identity,
            "signed_identity": self.signed_identity,
            "same_model": self.same_model,
            "packs": self.packs,
            "asked": self.asked,
            "seed": self.seed,
            "threads": self.threads,
            "host": {
                "threads": self.threads,
                "signed_threads": list(self.signed_threads),
                "compute_dtype": self.identity.get("compute_dtype"),
                "runtime_quant": self.identity.get("runtime_quant"),
                "versions": self.versions,
                "machine": platform.machine(),
            },
            "mode": self.mode,
            "tolerance": {"atol": f"{self.tolerance.atol:g}", "rtol": f"{self.tolerance.rtol:g}"},
            "label": self.label,
            "reproduced": self.k,
            "n": self.n,
            "ok": self.ok,
            "items": [c.as_json() for c in self.checks],
        }


def bundled_pack(pack_id: str) -> Path | None:
    """``packs/<id>`` here or in the receipts checkout, when it exists."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / "packs" / pack_id / "pack.yaml").is_file():
            return root / "packs" / pack_id
    return None


def _packs(runs: Sequence[SignedRun], given: Sequence[Path], needed: Collection[str]) -> dict[str, Pack]:
    """The given packs and the ``needed`` ones (bundled, unless given), each held to the signed digest.

    Raises:
        UsageError: a given pack is no run's pack, has another digest, or a run's pack cannot be found.
    """
    signed = {run.pack_id: run.results.pack.digest for run in runs}
    packs: dict[str, Pack] = {}
    for path in given:
        pack = load_pack(path)
        if pack.id not in signed:
            raise UsageError(
                f"--pack {path}: pack {pack.id!r} is in no run of this receipt ({sorted(signed)})"
            )
        packs[pack.id] = pack
    for pack_id in sorted(set(needed) - set(packs)):
        found = bundled_pack(pack_id)
        if found is None:
            raise UsageError(f"pack {pack_id!r} not found", hint=f"pass --pack DIR for {pack_id}")
        packs[pack_id] = load_pack(found)
    for pack_id, pack in packs.items():
        if f"sha256:{pack.digest}" != signed[pack_id]:
            raise UsageError(
                f"pack {pack_id} at {pack.path} digests to sha256:{pack.digest}, "
                f"but the receipt's run used {signed[pack_id]}",
                hint="rerun on the pack the receipt signed (the same version, unmodified)",
            )
    return packs


def _signed_identity(runs: Sequence[SignedRun], role: str) -> ModelIdentity:
    roles = {r for run in runs for r in run.results.models}
    if any(role not in run.results.models for run in runs):
        raise UsageError(f"role {role!r} is not in every run of this receipt", hint=f"roles: {sorted(roles)}")
    return runs[0].results.models[role]


def _spec(request: RerunRequest, signed: ModelIdentity) -> str:
    if (request.weights is None) == (request.model is None):
        raise UsageError("--rerun needs exactly one of --weights DIR and --model SPEC")
    if request.model is not None:
        return request.model
    # a llama.cpp role is re-run in llama.cpp (issue #21): its numbers are llama.cpp's, not transformers'
    kind = signed.kind if signed.kind in ("hf", "gguf", "llamacpp") else "hf"
    variant = split_spec(signed.spec)[2] if signed.kind in ("hf", "gguf") else None
    variant = variant.partition("?")[0] if variant else None
    # chat templates (issue #20): a model the signed run posed through its template is posed so again
    chat = "?chat_template=1" if is_chat({"extra": signed.extra or {}}) else ""
    return f"{kind}:{request.weights}" + (f"@{variant}" if variant else "") + chat


def _signed_batches(
    pack: Pack, run: SignedRun, wanted: Collection[tuple[str, str]]
) -> Iterator[list[PromptInstance]]:
    """The run's batches, as the signed run posed them, that hold a wanted (item, variant).

    A model's numbers can differ in their last bits with which items share a forward (measured on the
    demo's SmolLM2 student, fp32, capitals-mc: batches of 5 instead of the signed 64 moved 339 of 420 items,
    by up to 7.3e-5), so each sampled item is posed again in its signed batch (the resume rule of
    `runner.eval.run`): the signed limit, variants and batch size, through the run's own `select` and
    `batches` (one implementation, so the two cannot drift). Generated items are posed with their
    companions too: `HFBackend.generate` decodes a call's prompts together in left-padded sub-batches,
    so which prompts share a call moves a generated item's log-probs in the last bits as well.
    """
    config = RunConfig.signed(run.results.settings)
    for batch in batches(select(pack, config), config):
        if any((inst.item_id, inst.variant) in wanted for inst in batch):
            yield batch


def _recompute(
    backend: Backend, pack: Pack, run: SignedRun, chosen: Sequence[Sampled]
) -> dict[tuple[str, str], tuple[PromptInstance, dict[str, Any]]]:
    """Each sampled (item, variant) found in the pack: its instance and its re-computed examples cell."""
    wanted = {(s.item, s.variant) for s in chosen}
    found = {}
    for batch in _signed_batches(pack, run, wanted):
        chat = is_chat(backend.identity)
        items = [WorkItem(inst, request_for(backend.sees_gold, inst, pack, chat=chat)[1]) for inst in batch]
        for inst, result in zip(batch, work(backend, items), strict=True):
            if (inst.item_id, inst.variant) in wanted:
                found[(inst.item_id, inst.variant)] = (inst, example_cell(pack, inst, result.output))
    return found


def rerun(runs: Sequence[SignedRun], request: RerunRequest) -> Reproduction:
    """Re-execute a sample of the signed rows of ``request.role`` on the given model and compare them.

    Raises:
        UsageError: N below one, both or neither of weights and model, a role not in the receipt, a pack
            that is not the signed one (or not found).
        InputError: the model cannot be loaded.
    """
    if request.n < 1:
        raise UsageError(f"--rerun N must be at least 1, not {request.n}")
    if not runs:
        raise UsageError(
            "this receipt has no eval runs to re-execute", hint="--rerun needs a receipt with runs"
        )
    signed = _signed_identity(runs, request.role)
    spec = _spec(request, signed)
    chosen = [s for s in sample(runs, request.n, request.seed) if isinstance(_cell(s, request.role), Mapping)]
    if not chosen:  # never "reproduced 0/0": nothing re-executed is no reproduction
        raise UsageError(f"no sampled row has an output of role {request.role!r} to re-execute")
    packs = _packs(runs, request.packs, {s.run.pack_id for s in chosen})
    signed_threads = tuple(run.threads for run in runs)
    # the signed count is someone else's number: at most this machine's cores (a difference then, labelled)
    threads = min(request.threads or next((t for t in signed_threads if t), 1), os.cpu_count() or 1)
    pin_threads(threads)
    backend = load_backend(spec)
    try:
        identity = backend.identity
        versions = _versions()
        libraries = [run.libraries for run in runs]
        setup = _setup_differences(identity.as_json(), signed, threads, signed_threads, libraries, versions)
        mode = "tolerance" if setup or request.tolerant else "exact"
        tol = tolerance_for(signed) if mode == "tolerance" else EXACT
        why = "; ".join(setup) or "asked"
        checks = []
        for run in runs:
            mine = [s for s in chosen if s.run is run]
            found = _recompute(backend, packs[run.pack_id], run, mine) if mine else {}
            for s in mine:
                inst, now = found.get((s.item, s.variant), (None, {}))
                checks.append(compare(s, inst, _cell(s, request.role), now, tol))
    finally:
        backend.close()
    return Reproduction(
        role=request.role,
        spec=spec,
        identity=identity.as_json(),
        signed_identity=signed.model_dump(exclude_none=True),
        packs={s.run.pack_id: f"sha256:{packs[s.run.pack_id].digest}" for s in chosen},
        asked=request.n,
        seed=request.seed,
        threads=threads,
        signed_threads=signed_threads,
        mode=mode,
        tolerance=tol,
        why=why,
        checks=tuple(checks),
        versions=versions,
    )


def _cell(sampled: Sampled, role: str) -> Any:
    """The signed row's cell for ``role`` (anything, as signed: the caller checks it is a mapping)."""
    roles = sampled.row.get("roles")
    return roles.get(role) if isinstance(roles, Mapping) else None


def _setup_differences(
    now: Mapping[str, Any],
    signed: ModelIdentity,
    threads: int,
    signed_threads: Sequence[int | None],
    signed_libraries: Sequence[Mapping[str, str]],
    versions: Mapping[str, str],
) -> list[str]:
    """How the setup differs from the signed one, in words (empty: the signed setup)."""
    found = []
    for key in ("compute_dtype", "runtime_quant"):
        if now.get(key) != getattr(signed, key):
            found.append(f"{key.replace('_', ' ')} {getattr(signed, key)} vs {now.get(key)}")
    recorded = {t for t in signed_threads if t is not None}
    if not recorded:
        found.append(f"threads not recorded vs {threads}")
    elif recorded != {threads}:
        found.append(f"threads {'/'.join(map(str, sorted(recorded)))} vs {threads}")
    runtime = (signed.extra or {}).get("runtime")  # a llamacpp: model's llama.cpp build (issue #21)
    if runtime is not None and now.get("extra", {}).get("runtime") != runtime:
        found.append(f"llama.cpp {_build(runtime)} vs {_build(now.get('extra', {}).get('runtime'))}")
    for name in ("torch", "transformers"):  # receipts signed before they were recorded compare on the rest
        signed_versions = {v[name] for v in signed_libraries if name in v}
        if signed_versions and signed_versions != {versions.get(name)}:
            found.append(f"{name} {'/'.join(sorted(signed_versions))} vs {versions.get(name)}")
    return found


def _build(runtime: object) -> str:
    """A llama.cpp build in words: ``llama-cpp-python 0.3.36 (0c1e570, flags f6f8957c)``."""
    if not isinstance(runtime, Mapping):
        return "none"
    commit, flags = runtime.get("llama_cpp_commit"), str(runtime.get("build_flags_sha256", ""))[:8]
    return f"llama-cpp-python {runtime.get('llama_cpp_python')} ({commit}, flags {flags})"


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("receipts", "torch", "transformers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out
