"""A run's llama.cpp quantizations against their full-precision base, item by item (issue #21).

For each role whose model is a GGUF that ``receipts quantize`` made (a ``llamacpp:`` or ``gguf:`` spec
whose file has lineage, `runner.llamacpp.quantize.lineage_of`), the base GGUF it was made from (the F16
file the same manifest names, beside it or in the quantize cache, checked by sha256) and the quantized
file both read each original prompt followed by its gold answer, teacher-forced, and every next-token
position is scored as ``llama-perplexity --kl-divergence`` scores one (`runner.llamacpp.kld`). The
per-item evidence goes into the role's examples cell (``quant_kld``) and the base's identity into the
results' ``settings.quant_fidelity``; `receipts.derive_quant` pools them into ``quant_fidelity``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from receipts.digests import sha256_file
from receipts.errors import InputError, SchemaError
from receipts.metrics.quant_kld import NllSums
from runner.backends.paths import cache_root
from runner.llamacpp.kld import ScoringModel, TokenStats, pack_base, token_stats
from runner.llamacpp.quantize import MANIFEST, lineage_of, read_manifest

__all__ = ["DECIMALS", "KINDS", "base_file", "measure", "quantized_roles", "score_texts"]

KINDS = ("llamacpp", "gguf")
"""Backends whose model is a GGUF file (a quantization when the quantize manifest lists it)."""
DECIMALS = 9
"""Rounding of a stored per-token KLD or Δp (a Q8_0's per-token KLD is ~1e-6)."""


def _gguf_of(spec: str) -> Path | None:
    kind, _, body = spec.partition(":")
    if kind not in KINDS or not body:
        return None
    location = body.partition("?")[0]
    if "@" in location and "/" not in location.rpartition("@")[2]:
        location = location.rpartition("@")[0]
    return Path(location)


def base_file(quant: Path, lineage: Mapping[str, Any]) -> Path:
    """The full-precision GGUF ``quant`` was made from: in its folder, else in the quantize cache.

    Raises:
        InputError: neither holds a file with the manifest's base sha256.
    """
    try:
        manifest = read_manifest(quant.parent / MANIFEST)
    except SchemaError as exc:
        raise InputError(
            f"the quantize manifest does not name {quant.name}'s base: {exc.summary()}",
            file=quant.parent / MANIFEST,
            hint="re-run receipts quantize, or remove the manifest",
        ) from None
    want = manifest.base.sha256.removeprefix("sha256:")
    # a manifest is untrusted input: its schema admits only plain file names, looked at in its own folder
    beside = [quant.parent / e.file for e in manifest.outputs if e.quant == lineage["base"]]
    chain = lineage["toolchain"]
    key = f"{chain['llama_cpp_commit']}-{chain['build_flags_sha256'][:12]}"
    source = str(lineage["quantized_from"]).removeprefix("sha256:")
    cached = cache_root() / "llamacpp" / source / key / f"model.{lineage['base']}.gguf"
    for path in [*beside, cached]:
        if path.is_file() and sha256_file(path) == want:
            return path
    raise InputError(
        f"{quant.name}: its base {lineage['base']} (sha256 {want[:12]}…) is neither beside it nor cached",
        file=quant.parent / MANIFEST,
        hint=f"quantize with --to {lineage['base']},{lineage['quant']} so the base is written beside it",
    )


def quantized_roles(
    identities: Mapping[str, Mapping[str, Any]],
) -> dict[str, tuple[Path, Path, dict[str, Any]]]:
    """Role -> (quantized file, base file, base identity), for each role that is a llama.cpp quantization.

    Raises:
        InputError: a quantization whose manifest is unreadable or whose base cannot be found.
    """
    found = {}
    for role, identity in identities.items():
        gguf = _gguf_of(str(identity.get("spec", "")))
        if role == "teacher" or gguf is None or not gguf.is_file():
            continue
        lineage = lineage_of(gguf)
        if lineage is None or lineage["quant"] == lineage["base"]:
            continue  # not a quantization receipts made, or the base itself
        base = base_file(gguf, lineage)
        found[role] = (
            gguf,
            base,
            {
                "file": base.name,
                "sha256": "sha256:" + sha256_file(base),
                "quant": lineage["base"],
                "quantized_from": lineage["quantized_from"],
                "toolchain": lineage["toolchain"],
            },
        )
    return found


def _record(stats: TokenStats) -> dict[str, Any]:
    return {
        "kld": [round(float(v), DECIMALS) for v in stats.kld],
        "delta_p": [round(float(v), DECIMALS) for v in stats.delta_p],
        "same_top": int(np.count_nonzero(stats.same_top)),
        "nll_sums": NllSums.of(stats.nll, stats.nll_base).as_list(),
    }


def score_texts(
    base: Path, quants: Sequence[Path], texts: Sequence[str], *, threads: int = 1
) -> list[list[dict[str, Any] | None]]:
    """Per quantization, per text: its ``quant_kld`` record against ``base`` (None: a text under two tokens).

    The base and every quantization are open at once, and each text's base logits are computed once for
    all of them (the demo's Q8_0 and Q4_K_M share their F16 base). Each text is evaluated whole from an
    empty context, with the BOS the vocabulary adds, and every position but the last is scored against
    the next token.

    Raises:
        InputError: a model cannot be loaded, or a quantization tokenizes a text differently from the base.
    """
    probe = ScoringModel(base, ctx=8, threads=threads)
    try:
        tokens = [probe.tokenize(text) for text in texts]
    finally:
        probe.close()
    ctx = max([8, *(len(t) for t in tokens)])
    models = [ScoringModel(base, ctx=ctx, threads=threads)]
    try:
        models.extend(ScoringModel(quant, ctx=ctx, threads=threads) for quant in quants)
        found: list[list[dict[str, Any] | None]] = [[] for _ in quants]
        for text, ids in zip(texts, tokens, strict=True):
            for quant, model in zip(quants, models[1:], strict=True):
                if model.tokenize(text) != ids:
                    raise InputError(
                        f"{quant.name} tokenizes an item differently from its base {base.name}", file=quant
                    )
            if len(ids) < 2:
                for records in found:
                    records.append(None)
                continue
            packed = pack_base(models[0].logits(ids, 0))
            for records, model in zip(found, models[1:], strict=True):
                records.append(_record(token_stats(packed, model.logits(ids, 0), ids[1:])))
        return found
    finally:
        for model in models:
            model.close()


def _text(inst: Any) -> str:
    """An item's prompt followed by its gold answer (the MC gold continuation, else the gold text)."""
    if inst.continuations is not None and isinstance(inst.gold, int):
        return str(inst.prompt + inst.continuations[inst.gold])
    return str(inst.prompt + (inst.gold_text() or ""))


class _Cache:
    """Records already computed, one JSON file per (base, quantization, llama.cpp build, text)."""

    def __init__(self, base: Mapping[str, Any], quant: Path, use: bool):
        self.folder = cache_root() / "quant_kld" if use else None
        self.pair = {"base": base["sha256"], "quant": sha256_file(quant), "toolchain": base["toolchain"]}

    def _path(self, text: str) -> Path | None:
        if self.folder is None:
            return None
        key = json.dumps({**self.pair, "text": text}, sort_keys=True, ensure_ascii=False)
        return self.folder / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.json"

    def get(self, text: str) -> dict[str, Any] | None:
        path = self._path(text)
        try:
            found = json.loads(path.read_text("utf-8")) if path is not None and path.is_file() else None
        except (OSError, ValueError):
            return None  # a torn or unreadable entry is computed again
        return found if isinstance(found, dict) else None

    def put(self, text: str, record: dict[str, Any] | None) -> None:
        path = self._path(text)
        if path is None or record is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record), "utf-8")
        os.replace(tmp, path)


def measure(
    identities: Mapping[str, Mapping[str, Any]],
    instances: Sequence[Any],
    keys: Sequence[str],
    *,
    threads: int = 1,
    use_cache: bool = True,
) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    """``(role -> instance key -> quant_kld record, role -> {"base": identity})`` for a run's quantizations.

    ``instances`` are the run's prompt instances and ``keys`` their row keys; only the ``original``
    prompts are scored. Records are cached (`runner.backends.paths.cache_root`) unless ``use_cache`` is
    off, so a rerun loads no model for them.

    Raises:
        InputError: a quantization's base cannot be found or loaded.
    """
    records: dict[str, dict[str, dict[str, Any]]] = {}
    bases: dict[str, dict[str, Any]] = {}
    originals = [(k, _text(i)) for k, i in zip(keys, instances, strict=True) if i.variant == "original"]
    by_base: dict[Path, list[tuple[str, Path, _Cache]]] = {}
    for role, (quant, base, identity) in quantized_roles(identities).items():
        by_base.setdefault(base, []).append((role, quant, _Cache(identity, quant, use_cache)))
        bases[role] = {"base": identity}
    for base, roles in by_base.items():  # a base shared by several quantizations is scored once per text
        found = {role: {k: cache.get(text) for k, text in originals} for role, _, cache in roles}
        todo = [(k, text) for k, text in originals if any(found[role][k] is None for role, _, _ in roles)]
        if todo:
            scored = score_texts(base, [q for _, q, _ in roles], [t for _, t in todo], threads=threads)
            for (role, _, cache), computed in zip(roles, scored, strict=True):
                for (k, text), record in zip(todo, computed, strict=True):
                    if found[role][k] is None:
                        cache.put(text, record)
                        found[role][k] = record
        for role, _, _ in roles:
            records[role] = {k: r for k, r in found[role].items() if r is not None}
    return records, bases
