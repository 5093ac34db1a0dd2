"""Local models (``hf:``/``gguf:``) without torch until a forward is needed.

The identity of a local model — weights digest, storage quantization, compute dtype, runtime
quantization, tokenizer, parameter count — is read from its files (config.json, safetensors headers,
tokenizer.json), so a run whose every output is already cached never imports torch or loads weights.
`LocalModel` loads the real `runner.backends.hf.HFBackend` on first use and delegates to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from receipts.digests import digest_weights, sha256_file
from receipts.documents import read_bytes
from receipts.errors import InputError, UsageError
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, ModelIdentity
from runner.backends.extras import requires
from runner.backends.paths import cache_root

__all__ = ["VARIANT_DTYPES", "LocalModel", "gguf_storage_quant", "local_identity", "with_variant"]

_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own cap on the header
VARIANT_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "int8-dynamic": "float32"}
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
)


def gguf_storage_quant(path: Path, reader: Any = None) -> str:
    """The dominant tensor type of a GGUF file (the file's ``general.file_type`` when present).

    ``reader``: the file's ``gguf.GGUFReader`` when the caller has one open already.

    Raises:
        MissingDependency: the ``gguf`` package is not installed.
    """
    with requires("runner", "reading a GGUF file"):
        import gguf

    reader = reader if reader is not None else gguf.GGUFReader(str(path))
    field = reader.fields.get("general.file_type")
    if field is not None:
        value = int(field.parts[field.data[0]][0])
        # llama.cpp's file types (MOSTLY_Q4_K_M -> Q4_K_M); GUESSED means "not recorded"
        names = {t.value: t.name.split("_", 1)[1] for t in gguf.LlamaFileType if t.name != "GUESSED"}
        if value in names:
            return names[value]
    counts: dict[str, int] = {}
    for tensor in reader.tensors:
        name = tensor.tensor_type.name
        counts[name] = counts.get(name, 0) + int(tensor.n_elements)
    return max(counts, key=lambda k: counts[k])


_QUANT_NAME = re.compile(r"[A-Z0-9_]{1,16}")


def _remembered_storage_quant(path: Path, folder: Path) -> str:
    """`gguf_storage_quant`, remembered in the file's conversion folder (named by the file's sha256).

    Reading a GGUF's metadata parses every key (a tokenizer's whole vocabulary): about a second a role,
    which a run re-served from the cache would otherwise pay on every start.
    """
    memo = folder / "storage_quant"
    try:
        remembered = memo.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        remembered = ""
    if _QUANT_NAME.fullmatch(remembered):
        return remembered
    value = gguf_storage_quant(path)
    try:
        tmp = memo.with_name(memo.name + f".{os.getpid()}.tmp")
        tmp.write_text(value, "ascii")
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs speed
    return value


def _json_object(path: Path, what: str) -> dict[str, Any]:
    """A model folder's JSON file (config.json, tokenizer.json, ...) as an object.

    Raises:
        InputError: unreadable, not UTF-8 JSON, or not an object; naming the file and the line.
    """
    data = read_bytes(path, what=what)
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
            file=path,
            hint="this is not a JSON file; point at a folder written by save_pretrained",
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not JSON: {exc.msg}", file=path, where=f"line {exc.lineno}") from exc
    except RecursionError as exc:
        raise InputError(f"{what} is nested too deeply", file=path) from exc
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object, not a {type(value).__name__}", file=path)
    return value


def _params(folder: Path) -> int | None:
    """Parameter count from the safetensors headers (8-byte length + JSON), without loading tensors.

    Raises:
        InputError: a .safetensors file whose header cannot be read.
    """
    total, seen = 0, False
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with path.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(min(length, _MAX_HEADER)))
            for name, entry in header.items():
                if name != "__metadata__":
                    total += int(np.prod(entry["shape"], dtype=np.int64))
                    seen = True
        except OSError as exc:
            raise InputError(f"cannot read the weights: {exc.strerror}", file=path) from exc
        except (struct.error, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            raise InputError(
                "not a safetensors file: its header is not a length and a JSON table of tensors",
                file=path,
                hint="re-save the model with save_pretrained, or remove the file",
            ) from exc
    return total if seen else None


def _tokenizer_identity(folder: Path) -> str | None:
    """sha256 over what decides tokenisation: the vocabulary, added tokens and special tokens.

    Read from tokenizer.json (and tokenizer_config.json), so two folders that tokenise alike — a teacher
    and a student saved from it — share an identity and token-level KL between them is defined.
    """
    main = folder / "tokenizer.json"
    if main.is_file():
        data = _json_object(main, "tokenizer.json")
        model = data.get("model") or {}
        if not isinstance(model, dict) or not isinstance(data.get("added_tokens", []), list):
            raise InputError("tokenizer.json has no tokenizer model", file=main)
        added = sorted(
            (t.get("id"), t.get("content"), t.get("special"))
            for t in data.get("added_tokens", [])
            if isinstance(t, dict)
        )
        config: dict[str, Any] = {}
        if (folder / "tokenizer_config.json").is_file():
            config = _json_object(folder / "tokenizer_config.json", "tokenizer_config.json")
        special = {k: str(config.get(k)) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
        body = [model.get("type"), model.get("vocab"), model.get("merges"), added, special]
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    files = [folder / name for name in _TOKENIZER_FILES if (folder / name).is_file()]
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + bytes.fromhex(sha256_file(path)))
    return "sha256:" + digest.hexdigest()


def _weights_root(path: Path) -> str:
    """``digest_weights(path).root``, remembered across runs by each file's (path, size, mtime, ctime, inode).

    ctime cannot be set back by a user (unlike mtime), so a rewritten file is always hashed again. This
    memo serves the runner only; ``receipts sign`` and ``receipts verify`` always hash the bytes.
    """
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink())
    stats = []
    for item in files:
        st = item.lstat()
        stats.append([str(item.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino])
    key = hashlib.sha256(json.dumps(stats, separators=(",", ":")).encode("utf-8")).hexdigest()
    memo = cache_root() / "identities" / f"{key}.json"
    try:
        return str(json.loads(memo.read_text("utf-8"))["root"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    root = digest_weights(path).root
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(memo.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"root": root}), "utf-8")
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs speed
    return root


def local_identity(spec: str, kind: str, location: str, variant: str | None) -> tuple[ModelIdentity, Path]:
    """The identity of an ``hf:``/``gguf:`` model and the folder transformers loads it from.

    A GGUF file is dequantised into the cache on first sight (that one step needs transformers).

    Raises:
        InputError: the path is missing or is not a model.
        UsageError: an unknown variant.
        MissingDependency: a GGUF file needs converting and torch/transformers/gguf are missing.
    """
    path = Path(location).expanduser()
    if not path.exists():
        raise InputError(
            f"model spec {spec!r}: {path} does not exist",
            file=path,
            hint="hf: takes a folder with config.json; gguf: takes a .gguf file",
        )
    variant = variant or "fp32"
    if variant not in VARIANT_DTYPES:
        raise UsageError(
            f"model spec {spec!r}: unknown variant @{variant}", hint=f"use one of {list(VARIANT_DTYPES)}"
        )
    if kind == "gguf":
        if not path.is_file() or path.suffix != ".gguf":
            raise InputError(f"model spec {spec!r}: {path} is not a .gguf file", file=path)
        file_digest = "sha256:" + sha256_file(path)
        folder = cache_root() / "gguf" / file_digest.removeprefix("sha256:")
        if not (folder / "done").exists():
            with requires("runner", f"model spec {spec!r}"):
                from runner.backends.hf_load import convert_gguf

            folder = convert_gguf(path, file_digest)
        storage_quant = _remembered_storage_quant(path, folder)
    else:
        if not (path / "config.json").is_file():
            raise InputError(
                f"model spec {spec!r}: {path} has no config.json",
                file=path,
                hint="point hf: at a folder written by save_pretrained",
            )
        folder = path
        config = _json_object(path / "config.json", "config.json")
        storage_quant = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    identity = ModelIdentity(
        spec=spec,
        kind=kind,
        digest="sha256:" + _weights_root(path),
        storage_quant=storage_quant,
        tokenizer=_tokenizer_identity(folder),
        params=_params(folder),
    )
    return with_variant(identity, variant), folder


def with_variant(identity: ModelIdentity, variant: str) -> ModelIdentity:
    """The identity of the same weights computed at ``variant`` (compute dtype, runtime quantization)."""
    runtime_quant = "int8-dynamic" if variant == "int8-dynamic" else None
    return replace(identity, compute_dtype=VARIANT_DTYPES[variant], runtime_quant=runtime_quant)


class LocalModel:
    """An ``hf:``/``gguf:`` model whose weights load on first use (cached runs never load them)."""

    sees_gold = False

    def __init__(self, spec: str, kind: str, location: str, variant: str | None, *, chat: bool = False):
        """Read the model's identity (``chat``: posed through its chat template, `runner.backends.chat`).

        Raises:
            InputError: the path is not a model, or ``chat`` and the model has no chat template.
            UsageError: an unknown variant.
        """
        self.identity, self.folder = local_identity(spec, kind, location, variant)
        if chat:
            from runner.backends.chat import chat_identity

            self.identity = chat_identity(self.identity, self.folder)
        self._spec, self._kind, self._location, self._variant = spec, kind, location, variant
        self._loaded: Any = None

    @property
    def loaded(self) -> Any:
        """The transformers backend (imports torch and loads the weights the first time).

        Raises:
            MissingDependency: torch or transformers is not installed.
        """
        if self._loaded is None:
            with requires("runner", f"model spec {self._spec!r}"):
                from runner.backends.hf import HFBackend

            self._loaded = HFBackend(self.identity, self.folder, self._variant or "fp32")
        return self._loaded

    def __getattr__(self, name: str) -> Any:
        # model, tokenizer, encode_pair ...: anything else is the loaded backend's
        if name.startswith("__") or name in ("_loaded", "identity", "folder"):
            raise AttributeError(name)
        return getattr(self.loaded, name)

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """See `runner.backends.hf.HFBackend.score_choices`."""
        return list(self.loaded.score_choices(requests))

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """See `runner.backends.hf.HFBackend.generate`."""
        return list(self.loaded.generate(requests))

    def teacher_forced(self, pairs: Sequence[tuple[str, str]]) -> list[npt.NDArray[np.float32] | None]:
        """See `runner.backends.hf.HFBackend.teacher_forced`."""
        return list(self.loaded.teacher_forced(pairs))

    def close(self) -> None:
        """Free the weights if they were loaded."""
        if self._loaded is not None:
            self._loaded.close()
            self._loaded = None
