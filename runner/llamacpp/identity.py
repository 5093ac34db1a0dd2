"""The identity of a ``llamacpp:`` model, read from its GGUF file without loading it (issue #21).

As for ``hf:``/``gguf:`` (`runner.backends.local`), a run whose every output is cached never loads
weights: the weights digest is the one ``gguf:`` records for the same file; the storage quantization,
the tokenizer and the parameter count come from the GGUF's metadata, parsed once and remembered under
the file's digest. The tokenizer identity is a sha256 over the GGUF's own tokenizer fields (model,
pre-tokenizer, tokens, merges, token types, BOS/EOS ids), so two quantizations of one model share it
and token-level KL between them is defined. ``compute_dtype`` is ``native``: llama.cpp computes with
the stored types (a Q8_0 matmul quantizes its activations to 8 bits), not in a torch dtype.
``extra.runtime`` is the llama.cpp build (`runner.llamacpp.toolchain.Toolchain.identity`);
``extra.lineage`` the quantize manifest's record of where the file came from
(`runner.llamacpp.quantize.lineage_of`), when one lists it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from receipts.errors import InputError
from runner.backends.base import ModelIdentity
from runner.backends.chat import OPTION
from runner.backends.extras import requires
from runner.backends.local import _weights_root, gguf_storage_quant
from runner.backends.paths import cache_root
from runner.llamacpp.model import check_gguf
from runner.llamacpp.quantize import lineage_of
from runner.llamacpp.toolchain import find

__all__ = ["COMPUTE", "MAX_CONTEXT", "GGUFFacts", "native_identity", "read_facts"]

COMPUTE = "native"
"""``compute_dtype`` of a llama.cpp model: the stored types, as llama.cpp's kernels compute them."""
MAX_CONTEXT = 4096
"""The longest context a ``llamacpp:`` model is opened with (its KV cache is allocated whole)."""
_FORMAT = 1  # of the remembered facts; a new format re-reads every file
_TOKENIZER_KEYS = (
    "tokenizer.ggml.model",
    "tokenizer.ggml.pre",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class GGUFFacts:
    """What a GGUF's metadata says about the model in it."""

    storage_quant: str
    tokenizer: str
    params: int
    context_length: int | None
    chat_template: str | None  # sha256 of tokenizer.chat_template, when the file has one


def _field(reader: Any, key: str) -> Any:
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def read_facts(path: Path, *, spec: str | None = None) -> GGUFFacts:
    """Parse ``path``'s GGUF metadata (a second or two for a large vocabulary).

    Raises:
        InputError: the file is not a readable GGUF (truncated, corrupt, hostile sizes).
        MissingDependency: the ``gguf`` package is not installed.
    """
    with requires("runner", "reading a GGUF file"):
        import gguf

    label = f"model spec {spec!r}: " if spec else ""
    try:
        reader = gguf.GGUFReader(str(path))
        arch = _field(reader, "general.architecture")
        length = _field(reader, f"{arch}.context_length") if isinstance(arch, str) else None
        template = _field(reader, "tokenizer.chat_template")
        tokenizer = [_field(reader, key) for key in _TOKENIZER_KEYS]
        params = sum(int(t.n_elements) for t in reader.tensors)
        storage_quant = gguf_storage_quant(path, reader)
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, struct.error, MemoryError) as exc:
        raise InputError(
            f"{label}not a readable GGUF file ({type(exc).__name__}: {str(exc)[:160]})",
            file=path,
            hint="the file is truncated or corrupt: download or quantize it again",
        ) from exc
    if tokenizer[2] is None:
        raise InputError(
            f"{label}the GGUF holds no tokenizer (no tokenizer.ggml.tokens)",
            file=path,
            hint="llamacpp: needs a GGUF with its vocabulary (as convert_hf_to_gguf.py writes)",
        )
    text = json.dumps(tokenizer, separators=(",", ":"), ensure_ascii=False, default=str)
    return GGUFFacts(
        storage_quant=storage_quant,
        tokenizer="sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest(),
        params=params,
        context_length=int(length) if isinstance(length, int) and length > 0 else None,
        chat_template=(
            "sha256:" + hashlib.sha256(template.encode("utf-8")).hexdigest()
            if isinstance(template, str) and template
            else None
        ),
    )


def _remembered(path: Path, digest: str, spec: str) -> GGUFFacts:
    """`read_facts`, remembered under the file's weights digest (a cached run then parses nothing)."""
    memo = cache_root() / "llamacpp" / "identity" / f"{digest.removeprefix('sha256:')}.json"
    try:
        data = json.loads(memo.read_text("utf-8"))
        if data.pop("format") == _FORMAT:
            facts = GGUFFacts(**data)
            if _DIGEST.fullmatch(facts.tokenizer) and isinstance(facts.params, int):
                return facts
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # absent or unreadable: parse the file again
    facts = read_facts(path, spec=spec)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(memo.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": _FORMAT, **asdict(facts)}), "utf-8")
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs speed
    return facts


def context_of(facts: GGUFFacts) -> int:
    """The context a model is opened with: its training context, at most `MAX_CONTEXT`."""
    return min(facts.context_length or MAX_CONTEXT, MAX_CONTEXT)


def native_identity(spec: str, location: str, *, chat: bool = False) -> tuple[ModelIdentity, Path, GGUFFacts]:
    """The identity of ``llamacpp:FILE`` (``chat``: posed through the GGUF's chat template).

    Raises:
        InputError: not a GGUF file, a corrupt one, no chat template where one is asked for, a
            quantize manifest that contradicts the file, or llama.cpp is not built here.
    """
    path = check_gguf(Path(location).expanduser(), spec=spec)
    runtime = find().identity
    digest = "sha256:" + _weights_root(path)
    facts = _remembered(path, digest, spec)
    extra: dict[str, Any] = {"runtime": runtime, "n_ctx": context_of(facts)}
    lineage = lineage_of(path)
    if lineage is not None:
        extra["lineage"] = lineage
    if chat:
        if facts.chat_template is None:
            raise InputError(
                f"model spec {spec!r}: asks for the chat template, but the GGUF has none "
                "(no tokenizer.chat_template)",
                file=path,
                hint=f"drop ?{OPTION}=1 for a base model",
            )
        extra[OPTION] = facts.chat_template
    identity = ModelIdentity(
        spec=spec,
        kind="llamacpp",
        digest=digest,
        storage_quant=facts.storage_quant,
        compute_dtype=COMPUTE,
        tokenizer=facts.tokenizer,
        params=facts.params,
        extra=extra,
    )
    return identity, path, facts
