"""An HF folder → GGUF (F16 or BF16) → llama.cpp quantizations, with llama.cpp's own tools (issue #21).

``convert_hf_to_gguf.py`` writes the full-precision GGUF; ``llama-quantize`` makes each quantization
from it. Both are cached under ``$RECEIPTS_CACHE/llamacpp/<source weights digest>/<toolchain>/``, so a
second call with the same input and toolchain converts nothing. `quantize` copies the requested files
into ``out`` with a manifest (`receipts.formats.quantize_manifest.QuantizeManifest`, the one place its
shape lives) naming the source digest, the toolchain and each output's sha256: the lineage a
``llamacpp:`` run of one of them records (`lineage_of`) and names its role by (`variant_of`).

``out`` is written only inside itself: each file is staged in a private folder within it and moved into
place, the manifest last; a symbolic link or a file as ``out``, or an ``out`` inside the model folder
(whose digest it would change), is refused before any work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receipts._version import __version__
from receipts.digests import digest_weights, sha256_file
from receipts.errors import InputError, SchemaError, UsageError
from receipts.formats.quantize_manifest import FORMAT, QuantizeManifest, QuantLineage
from receipts.output import check_folder, make_folder, refused
from receipts.quantization import ORDER
from runner.backends.paths import cache_root
from runner.llamacpp.toolchain import Toolchain, find

__all__ = [
    "BASE_TYPES",
    "MANIFEST",
    "QUANT_TYPES",
    "Quantized",
    "Step",
    "lineage_of",
    "parse_quants",
    "quantize",
    "read_manifest",
    "variant_of",
]

MANIFEST = "manifest.json"
BASE_TYPES = {"F16": "f16", "BF16": "bf16", "F32": "f32"}
"""Full-precision GGUF types the converter writes (name → ``--outtype``)."""
QUANT_TYPES = tuple(q for q in ORDER if q.startswith("Q"))
"""The ``llama-quantize`` types receipts offers (each needs no importance matrix)."""
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_FOLDER = re.compile(r"[/\\\x00-\x1f]")
"""What a folder name may not carry into the manifest (its schema's ``source.folder``)."""


@dataclass(frozen=True)
class Step:
    """One step of `quantize`: the file it made (``F16``, ``Q8_0``, ...), its wall time and size."""

    quant: str
    seconds: float
    bytes: int
    cached: bool
    """The file was in the cache: nothing was converted or quantized."""

    def line(self) -> str:
        """The step as a progress line (``Q8_0: 16.4 MB, quantized in 0.3 s``)."""
        how = "cached" if self.cached else ("converted" if self.quant in BASE_TYPES else "quantized")
        return f"{self.quant}: {self.bytes / 1e6:.1f} MB, {how} in {self.seconds:.1f} s"


@dataclass(frozen=True)
class Quantized:
    """What `quantize` wrote: the manifest file, its content (`QuantizeManifest` as JSON) and the steps."""

    manifest_file: Path
    manifest: dict[str, Any]
    steps: tuple[Step, ...] = ()

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


def _cached(path: Path, make: Any) -> bool:
    """Make ``path`` unless a finished copy is there (``make(tmp)`` then an atomic rename); True if it was."""
    if path.is_file():
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        make(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return False


def _check_source(model_dir: Path) -> None:
    if not model_dir.is_dir() or not (model_dir / "config.json").is_file():
        raise InputError(
            f"{model_dir} is not a model folder (no config.json)",
            file=model_dir,
            hint="point receipts quantize at a folder written by save_pretrained (weights, config)",
        )
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise InputError(f"{model_dir} holds no weights (*.safetensors)", file=model_dir)


def _quantized(chain: Toolchain, base_file: Path, quant: str, cache: Path, threads: int) -> bool:
    """``base_file`` quantized to ``quant`` by llama-quantize, cached beside it; True if it was cached."""

    def run_quantize(tmp: Path) -> None:
        command = [str(chain.tool("llama-quantize")), str(base_file), str(tmp), quant, str(threads)]
        log = cache / f"quantize.{quant}.log"
        _run(command, env=chain.tool_env(), what=f"llama-quantize {quant}", log=log)

    return _cached(cache / f"model.{quant}.gguf", run_quantize)


def _check_out(out: Path, model_dir: Path) -> None:
    """Refuse ``out`` before any work: a file, a symbolic link, or a folder inside the model folder."""
    check_folder(out, what="the quantized files")
    if out.is_symlink():
        raise UsageError(
            "is a symbolic link; pass the real folder",
            file=out,
            hint="receipts quantize writes only inside --out",
        )
    if out.resolve().is_relative_to(model_dir.resolve()):
        raise UsageError(
            f"is inside the model folder {model_dir}; writing there would change the weights being quantized",
            file=out,
            hint="choose a folder outside the model, e.g. --out quantized/",
        )


def _check_request(quants: Sequence[str], base: str, name: str) -> None:
    if base not in BASE_TYPES:
        raise UsageError(f"--base {base}: not one of {', '.join(BASE_TYPES)}")
    if not quants:
        raise UsageError("--to names no quantization", hint="e.g. --to Q8_0,Q4_K_M")
    for quant in quants:
        if quant not in QUANT_TYPES and quant not in BASE_TYPES:
            raise UsageError(f"--to {quant}: unknown quantization", hint=f"use {', '.join(QUANT_TYPES)}")
        if quant in BASE_TYPES and quant != base:
            raise UsageError(
                f"--to {quant}: the unquantized file is --base {base}", hint=f"use --base {quant}"
            )
    if not _NAME.fullmatch(name) or name.startswith("."):
        raise UsageError(
            f"--name {name!r} is not a plain file name", hint="letters, digits, '.', '_' and '-'"
        )


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
    """Convert ``model_dir`` to a ``base`` GGUF, quantize it to each of ``quants``, write them into ``out``.

    Files are named ``<name>.<QUANT>.gguf`` (``name`` defaults to the folder's name) beside
    ``manifest.json`` (`QuantizeManifest`). Conversions are cached by the folder's weights digest and the
    toolchain, so a second call converts nothing. Nothing is written outside ``out``: files are made in a
    private folder inside it and moved into place, the manifest last. ``log`` (a callable taking a line)
    hears each step, its wall time and size.

    Raises:
        InputError: the folder is not a model, llama.cpp is not built, or a llama.cpp step failed.
        UsageError: an unknown quantization or base type, a bad name, or a bad ``out``.
    """
    model_dir, out = Path(model_dir), Path(out)
    name = name or model_dir.resolve().name
    _check_request(quants, base, name)
    _check_source(model_dir)
    _check_out(out, model_dir)
    chain = chain or find()
    say = log or (lambda line: None)
    source = "sha256:" + digest_weights(model_dir).root
    tool_key = f"{chain.manifest['commit']}-{chain.manifest['flags_sha256'][:12]}"
    cache = cache_root() / "llamacpp" / source.removeprefix("sha256:") / tool_key
    steps = [_convert(chain, model_dir, base, cache)]
    base_file = cache / f"model.{base}.gguf"
    say(steps[0].line())
    for quant in quants:
        if quant != base:
            started = time.monotonic()
            cached = _quantized(chain, base_file, quant, cache, threads)
            made = cache / f"model.{quant}.gguf"
            steps.append(Step(quant, time.monotonic() - started, made.stat().st_size, cached))
            say(steps[-1].line())
    manifest = QuantizeManifest.parse(
        {
            "format": FORMAT,
            "generator": {"name": "receipts", "version": __version__},
            "source": {"folder": _FOLDER.sub("_", model_dir.resolve().name)[:255] or "_", "digest": source},
            "base": {
                "quant": base,
                "sha256": "sha256:" + sha256_file(base_file),
                "bytes": base_file.stat().st_size,
            },
            "toolchain": chain.identity,
            "outputs": [_output(cache / f"model.{q}.gguf", q, f"{name}.{q}.gguf") for q in quants],
        }
    )
    return _publish(manifest, cache, out, tuple(steps))


def _convert(chain: Toolchain, model_dir: Path, base: str, cache: Path) -> Step:
    """The folder → ``base`` GGUF with llama.cpp's converter (a subprocess: no torch here), cached."""

    def convert(tmp: Path) -> None:
        command = [sys.executable, str(chain.converter), str(model_dir), "--outtype", BASE_TYPES[base]]
        _run(
            [*command, "--outfile", str(tmp)],
            env=chain.converter_env(),
            what="convert_hf_to_gguf.py",
            log=cache / "convert.log",
        )

    started = time.monotonic()
    path = cache / f"model.{base}.gguf"
    cached = _cached(path, convert)
    return Step(base, time.monotonic() - started, path.stat().st_size, cached)


def _output(made: Path, quant: str, file: str) -> dict[str, Any]:
    return {
        "quant": quant,
        "file": file,
        "sha256": "sha256:" + sha256_file(made),
        "bytes": made.stat().st_size,
    }


def _publish(manifest: QuantizeManifest, cache: Path, out: Path, steps: tuple[Step, ...]) -> Quantized:
    """Copy each output into a private folder inside ``out``, check it, then move it into place."""
    make_folder(out, what="the quantized files")
    staging = Path(tempfile.mkdtemp(prefix=".quantize-", dir=out))
    try:
        for entry in manifest.outputs:
            shutil.copyfile(cache / f"model.{entry.quant}.gguf", staging / entry.file)
            if "sha256:" + sha256_file(staging / entry.file) != entry.sha256:  # the cache changed under us
                raise InputError(f"the cached {entry.quant} file changed while copying", file=cache)
        data = (json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()
        (staging / MANIFEST).write_bytes(data)
        for entry in manifest.outputs:
            os.replace(staging / entry.file, out / entry.file)
        os.replace(staging / MANIFEST, out / MANIFEST)
    except OSError as exc:
        raise refused(exc, out, what="the quantized files") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Quantized(out / MANIFEST, manifest.model_dump(mode="json"), steps)


MAX_MANIFEST = 1024 * 1024
"""The largest quantize manifest read (32 outputs take about 4 KB)."""


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path`` if it is a small regular file reached without a symbolic link."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    hint = "re-run receipts quantize, or remove the manifest"
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        why = "is a symbolic link" if path.is_symlink() else f"cannot be read: {exc.strerror}"
        raise InputError(f"the quantize manifest {why}", file=path, hint=hint) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a folder, a pipe, a device
            raise InputError("the quantize manifest is not a regular file", file=path, hint=hint)
        data = b""
        while len(data) <= MAX_MANIFEST and (chunk := os.read(fd, MAX_MANIFEST + 1 - len(data))):
            data += chunk
    finally:
        os.close(fd)
    if len(data) > MAX_MANIFEST:
        raise InputError(f"the quantize manifest is larger than {MAX_MANIFEST:,} bytes", file=path, hint=hint)
    return data


def read_manifest(path: Path) -> QuantizeManifest:
    """A quantize manifest, validated against its schema, each file and quantization listed once.

    The file is read only if it is a regular file of at most `MAX_MANIFEST` bytes, not through a
    symbolic link: a manifest sits beside files downloaded from anywhere, and a link to ``/dev/zero`` or
    a pipe there would otherwise hang the run that reads it.

    Raises:
        InputError: the file is missing, not a regular file, too large, unreadable or not JSON.
        SchemaError: it does not conform to ``schema/quantize-manifest.schema.json``.
    """
    manifest = QuantizeManifest.from_json_bytes(_read_regular(path), file=path)
    for what, values in (
        ("file", [e.file for e in manifest.outputs]),
        ("quant", [e.quant for e in manifest.outputs]),
    ):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise InputError(
                f"the quantize manifest lists {what} {', '.join(twice)} twice",
                file=path,
                hint="re-run receipts quantize; a manifest lists each output once",
            )
    return manifest


def lineage_of(gguf: Path) -> dict[str, Any] | None:
    """The lineage of a GGUF that `quantize` wrote, from the manifest beside it (None if there is none).

    The manifest must conform to its schema and list the file under its name with the file's own
    sha256; a manifest that lists it with another digest is an error (the file was replaced after
    quantizing). The value conforms to `QuantLineage` (the schema's ``$defs/lineage``).

    Raises:
        InputError: the manifest is unreadable, malformed or contradicts the file.
    """
    manifest_file = gguf.parent / MANIFEST
    if not manifest_file.exists() and not manifest_file.is_symlink():
        return None
    try:
        manifest = read_manifest(manifest_file)
    except SchemaError as exc:
        shown = "; ".join(f"{v.path}: {v.message}" for v in exc.violations[:3])
        raise InputError(
            f"the quantize manifest is not valid: {shown}",
            file=manifest_file,
            hint="re-run receipts quantize, or remove the manifest",
        ) from exc
    entry = next((e for e in manifest.outputs if e.file == gguf.name), None)
    if entry is None:
        return None
    digest = "sha256:" + sha256_file(gguf)
    if entry.sha256 != digest:
        raise InputError(
            f"{gguf.name} is not the file receipts quantize wrote: its sha256 is {digest}, "
            f"the manifest says {entry.sha256}",
            file=manifest_file,
            hint="re-run receipts quantize; a quantized file's lineage is only recorded for the file it made",
        )
    lineage = QuantLineage(
        quantized_from=manifest.source.digest,
        quant=entry.quant,
        base=manifest.base.quant,
        bytes=entry.bytes,
        manifest_sha256="sha256:" + sha256_file(manifest_file),
        toolchain=manifest.toolchain,
    )
    return lineage.model_dump(mode="json")


def variant_of(gguf: Path, *, spec: str | None = None) -> str:
    """The role variant of a ``llamacpp:`` GGUF: its quantization (``Q4_K_M``).

    As the manifest beside it records it, else the file's own type (``general.file_type``, or its
    dominant tensor type).

    Raises:
        InputError: the file is missing or not a GGUF, or its manifest is malformed or contradicts it.
    """
    from runner.backends.local import gguf_storage_quant
    from runner.llamacpp.model import check_gguf

    check_gguf(gguf, spec=spec)
    lineage = lineage_of(gguf)
    if lineage is not None:
        return str(lineage["quant"])
    try:
        return gguf_storage_quant(gguf)
    except (ValueError, KeyError, IndexError, OSError) as exc:  # gguf's reader on a corrupt file
        raise InputError(
            f"{gguf} is not a readable GGUF file ({type(exc).__name__}: {exc})",
            file=gguf,
            hint="re-download or re-quantize the file (receipts quantize)",
        ) from exc
