"""The backends receipts ships, registered by spec prefix (DESIGN §3).

Each factory imports its backend module when a spec of its kind is loaded: ``hf:``/``gguf:`` models
read their identity from their files and import torch only on their first model call; ``llamacpp:``
models read theirs from the GGUF and open llama.cpp only on their first model call.
"""

from __future__ import annotations

from runner.backends.base import Backend
from runner.backends.registry import ModelSpec, backend

__all__ = ["fake", "gguf", "hf", "llamacpp", "openai", "replay"]


@backend("hf", example="hf:DIR", variants=True)
def hf(spec: ModelSpec) -> Backend:
    """``hf:DIR[@fp32|@bf16|@int8-dynamic][?chat_template=1]``: a folder written by ``save_pretrained``.

    ``?chat_template=1`` poses every prompt through the model's chat template (`runner.backends.chat`).
    """
    from runner.backends.chat import split_option
    from runner.backends.local import LocalModel

    plain, chat = split_option(spec)
    return LocalModel(spec.text, plain.kind, plain.location, plain.variant, chat=chat)


@backend("gguf", example="gguf:FILE", variants=True)
def gguf(spec: ModelSpec) -> Backend:
    """``gguf:FILE[@variant][?chat_template=1]``: a GGUF file, dequantised once into the cache, as ``hf:``.

    The GGUF's own chat template (``tokenizer.chat_template``) comes along into the converted folder.
    """
    from runner.backends.chat import split_option
    from runner.backends.local import LocalModel

    plain, chat = split_option(spec)
    return LocalModel(spec.text, plain.kind, plain.location, plain.variant, chat=chat)


@backend("llamacpp", example="llamacpp:FILE.gguf")
def llamacpp(spec: ModelSpec) -> Backend:
    """``llamacpp:FILE.gguf[?chat_template=1]``: a GGUF run by llama.cpp itself (not dequantised).

    ``?chat_template=1`` poses every prompt through the GGUF's ``tokenizer.chat_template``.
    """
    from runner.backends.chat import split_option
    from runner.llamacpp.backend import NativeBackend

    plain, chat = split_option(spec)
    return NativeBackend(spec.text, plain.location, chat=chat)


@backend("openai", example="openai:URL#MODEL")
def openai(spec: ModelSpec) -> Backend:
    """``openai:BASE_URL#MODEL[?OPTIONS]``: a model behind an OpenAI-compatible server."""
    from runner.backends.openai import OpenAIBackend

    return OpenAIBackend(spec.text, spec.location)


@backend("replay", example="replay:FILE.jsonl")
def replay(spec: ModelSpec) -> Backend:
    """``replay:FILE.jsonl``: recorded outputs of a model that cannot be run here."""
    from runner.backends.replay import ReplayBackend

    return ReplayBackend(spec.text, spec.location)


@backend("fake", example="fake:NAME")
def fake(spec: ModelSpec) -> Backend:
    """``fake:NAME[?skill=..]``: the deterministic test backend (sees gold answers, by design)."""
    from runner.backends.fake import FakeBackend

    return FakeBackend(spec.text, spec.location)
