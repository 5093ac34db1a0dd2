"""Loading local transformers models: GGUF conversion into the cache, variants, device placement.

GGUF files are dequantised by transformers to dense weights. Loading one takes tens of seconds, so the
first load converts it once into a safetensors cache keyed by the file's digest
(``$RECEIPTS_CACHE/gguf/<sha256>/``, default ``~/.cache/receipts``); fp32 from the cache reproduces the
GGUF logits exactly. Shared by the ``hf:``/``gguf:`` backend (`runner.backends.hf`) and the identity
code that converts a GGUF file on first sight (`runner.backends.local`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
import transformers

from receipts.errors import InputError
from runner.backends.paths import cache_root

__all__ = ["VARIANTS", "convert_gguf", "load_model"]

# A run draws its own progress; transformers' per-load bars and advisories would drown it.
transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]

VARIANTS = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8-dynamic": torch.float32}


def convert_gguf(path: Path, digest: str) -> Path:
    """Dequantise a GGUF file once into a safetensors folder in the cache; return the folder."""
    target = cache_root() / "gguf" / digest.removeprefix("sha256:")
    if (target / "done").exists():
        return target
    tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    fresh_config = type(model.config).from_dict(config)
    with torch.device("meta"):
        fresh = transformers.AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            fresh_config, dtype=torch.float32
        )
    fresh.load_state_dict(model.state_dict(), assign=True)
    fresh.tie_weights()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        fresh.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "source.json").write_text(json.dumps({"gguf": path.name, "digest": digest}), "utf-8")
        (staging / "done").write_text("", "utf-8")
        # Another process (a parallel test worker, a second run) may have finished first: its copy has the
        # same bytes and may be in use, so it stays; only a torn attempt (no "done") is replaced.
        if not (target / "done").exists():
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:
                if not (target / "done").exists():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_model(folder: Path, variant: str, *, spec: str, device: str = "cpu") -> tuple[Any, Any, str | None]:
    """``(tokenizer, model, runtime_quant)`` of the model in ``folder`` at a variant, in eval mode.

    Threads follow ``OMP_NUM_THREADS`` (set before torch was imported). ``int8-dynamic`` quantises every
    ``nn.Linear`` to int8 weights with activations quantised per call (CPU only).

    Raises:
        InputError: transformers cannot load the folder.
    """
    dtype = VARIANTS[variant]
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"model spec {spec!r}: transformers could not load it: {exc}", file=folder) from None
    model.eval()  # type: ignore[no-untyped-call]
    runtime_quant = None
    if variant == "int8-dynamic":
        if device != "cpu":
            raise InputError(
                f"model spec {spec!r}: int8-dynamic runs on CPU only", hint="bench it with --device cpu"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        runtime_quant = "int8-dynamic"
    elif device != "cpu":
        model = model.to(device)  # type: ignore[arg-type]
    return tokenizer, model, runtime_quant
