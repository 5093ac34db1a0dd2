"""An HF folder → GGUF (F16 or BF16) → llama.cpp quantizations, with llama.cpp's own tools (issue #21).

``convert_hf_to_gguf.py`` writes the full-precision GGUF; ``llama-quantize`` makes each quantization
from it. Both are cached under ``$RECEIPTS_CACHE/llamacpp/<source weights digest>/<toolchain>/``, so a
second call with the same input and toolchain converts nothing. `quantize` copies the requested files
into ``out`` with a manifest naming the source digest, the toolchain and each output's sha256: the
lineage a ``llamacpp:`` run of one of them records (`lineage_of`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receipts.digests import digest_weights, sha256_file
from receipts.errors import InputError, UsageError
from runner.backends.paths import cache_root
from runner.llamacpp.toolchain import Toolchain, find

__all__ = ["BASE_TYPES", "MANIFEST", "QUANT_TYPES", "Quantized", "lineage_of", "parse_quants", "quantize"]

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "receipts.quantize/1"
BASE_TYPES = {"F16": "f16", "BF16": "bf16", "F32": "f32"}
"""Full-precision GGUF types the converter writes (name → ``--outtype``)."""
QUANT_TYPES = (
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q5_K_S",
    "Q5_1",
    "Q5_0",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_1",
    "Q4_0",
    "Q3_K_L",
    "Q3_K_M",
    "Q3_K_S",
    "Q2_K",
)
"""The ``llama-quantize`` types receipts offers (each needs no importance matrix)."""
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True)
class Quantized:
    """What `quantize` wrote: the manifest file and its content."""

    manifest_file: Path
    manifest: dict[str, Any]

    def file(self, quant: str) -> Path:
        """The GGUF file of ``quant`` (``F16``, ``Q8_0``, ...)."""
        for entry in self.manifest["outputs"]:
            if entry["quant"] == quant:
                return self.manifest_file.parent / str(entry["file"])
        raise KeyError(quant)


def parse_quants(text: str) -> tuple[str, ...]:
    """``Q8_0,Q4_K_M`` → the quantization types, in order, each once.

    Raises:
        UsageError: an empty list or a type llama-quantize is not asked for here.
    """
    names = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError(
            "--to names no quantization", hint=f"e.g. --to Q8_0,Q4_K_M (one of {', '.join(QUANT_TYPES)})"
        )
    unknown = [n for n in names if n not in QUANT_TYPES and n not in BASE_TYPES]
    if unknown:
        raise UsageError(
            f"--to: unknown quantization {', '.join(unknown)}",
            hint=f"use {', '.join(QUANT_TYPES)} (or {', '.join(BASE_TYPES)} for the unquantized file)",
        )
    return tuple(dict.fromkeys(names))


def _run(command: list[str], *, env: dict[str, str], what: str, log: Path) -> None:
    """Run a llama.cpp step with its output in ``log``; a failure names the step and the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as handle:
        done = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text("utf-8", errors="replace").strip().splitlines()[-6:]
        raise InputError(
            f"{what} failed (exit {done.returncode}): " + " | ".join(line.strip() for line in tail),
            file=log,
            hint="the folder must hold a causal LM that llama.cpp's converter supports (save_pretrained)",
        )


def _cached(path: Path, make: Any) -> Path:
    """``path`` if a finished copy is there, else ``make(tmp)`` then an atomic rename."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        make(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _check_source(model_dir: Path) -> None:
    if not model_dir.is_dir() or not (model_dir / "config.json").is_file():
        raise InputError(
            f"{model_dir} is not a model folder (no config.json)",
            file=model_dir,
            hint="point receipts quantize at a folder written by save_pretrained (weights, config)",
        )
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise InputError(f"{model_dir} holds no weights (*.safetensors)", file=model_dir)


def _quantized(chain: Toolchain, base_file: Path, quant: str, cache: Path, threads: int) -> Path:
    """``base_file`` quantized to ``quant`` by llama-quantize (cached beside it)."""

    def run_quantize(tmp: Path) -> None:
        command = [str(chain.tool("llama-quantize")), str(base_file), str(tmp), quant, str(threads)]
        log = cache / f"quantize.{quant}.log"
        _run(command, env=chain.tool_env(), what=f"llama-quantize {quant}", log=log)

    return _cached(cache / f"model.{quant}.gguf", run_quantize)


def quantize(
    model_dir: Path,
    quants: Sequence[str],
    out: Path,
    *,
    base: str = "F16",
    name: str | None = None,
    threads: int = 1,
    chain: Toolchain | None = None,
    log: Any = None,
) -> Quantized:
    """Convert ``model_dir`` to a ``base`` GGUF, quantize it to each of ``quants``, copy them into ``out``.

    Files are named ``<name>.<QUANT>.gguf`` (``name`` defaults to the folder's name) beside
    ``manifest.json``. ``log`` (a callable taking a line) hears each step and its wall time.

    Raises:
        InputError: the folder is not a model, llama.cpp is not built, or a llama.cpp step failed.
        UsageError: an unknown quantization or base type, or a bad name.
    """
    chain = chain or find()
    say = log or (lambda line: None)
    if base not in BASE_TYPES:
        raise UsageError(f"--base {base}: not one of {', '.join(BASE_TYPES)}")
    model_dir = Path(model_dir)
    _check_source(model_dir)
    name = name or model_dir.resolve().name
    if not _NAME.fullmatch(name) or name.startswith("."):
        raise UsageError(
            f"--name {name!r} is not a plain file name", hint="letters, digits, '.', '_' and '-'"
        )
    source = "sha256:" + digest_weights(model_dir).root
    tool_key = f"{chain.manifest['commit']}-{chain.manifest['flags_sha256'][:12]}"
    cache = cache_root() / "llamacpp" / source.removeprefix("sha256:") / tool_key
    outputs: list[dict[str, Any]] = []
    started = time.monotonic()

    def convert(tmp: Path) -> None:
        command = [sys.executable, str(chain.converter), str(model_dir), "--outtype", BASE_TYPES[base]]
        _run(
            [*command, "--outfile", str(tmp)],
            env=chain.converter_env(),
            what="convert_hf_to_gguf.py",
            log=cache / "convert.log",
        )

    base_file = _cached(cache / f"model.{base}.gguf", convert)
    say(f"{base}: {base_file.stat().st_size / 2**20:.0f} MiB ({time.monotonic() - started:.1f} s)")
    for quant in quants:
        step = time.monotonic()
        if quant in BASE_TYPES and quant != base:
            raise UsageError(
                f"--to {quant}: the unquantized file is --base {base}", hint=f"use --base {quant}"
            )
        made = base_file if quant == base else _quantized(chain, base_file, quant, cache, threads)
        target = out / f"{name}.{quant}.gguf"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made, target)
        size = target.stat().st_size
        outputs.append({"quant": quant, "file": target.name, "sha256": sha256_file(target), "bytes": size})
        say(f"{quant}: {size / 2**20:.0f} MiB ({time.monotonic() - step:.1f} s)")
    manifest = {
        "format": MANIFEST_FORMAT,
        "source": {"folder": model_dir.name, "digest": source},
        "base": {"quant": base, "sha256": sha256_file(base_file)},
        "toolchain": chain.identity,
        "outputs": outputs,
    }
    manifest_file = out / MANIFEST
    manifest_file.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
    return Quantized(manifest_file, manifest)


def lineage_of(gguf: Path) -> dict[str, Any] | None:
    """The lineage of a GGUF that `quantize` wrote, from the manifest beside it (None if there is none).

    The manifest must list the file under its name with the file's own sha256; a manifest that lists
    it with another digest is an error (the file was replaced after quantizing).

    Raises:
        InputError: the manifest is unreadable or contradicts the file.
    """
    manifest_file = gguf.parent / MANIFEST
    if not manifest_file.is_file():
        return None
    try:
        manifest = json.loads(manifest_file.read_text("utf-8"))
        entries = {str(e["file"]): e for e in manifest["outputs"]}
        source = str(manifest["source"]["digest"])
        base = str(manifest["base"]["quant"])
        toolchain = dict(manifest["toolchain"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"the quantize manifest is not readable: {exc}",
            file=manifest_file,
            hint="re-run receipts quantize, or remove the manifest",
        ) from exc
    entry = entries.get(gguf.name)
    if entry is None:
        return None
    digest = sha256_file(gguf)
    if entry.get("sha256") != digest:
        raise InputError(
            f"{gguf.name} is not the file receipts quantize wrote: its sha256 is {digest}, "
            f"the manifest says {entry.get('sha256')}",
            file=manifest_file,
            hint="re-run receipts quantize; a quantized file's lineage is only recorded for the file it made",
        )
    return {
        "quantized_from": source,
        "quant": str(entry["quant"]),
        "base": base,
        "manifest_sha256": sha256_file(manifest_file),
        "toolchain": toolchain,
    }
