"""Model backends: parse a model spec and load it.

Specs (DESIGN §3 and §10): ``hf:DIR[@fp32|@bf16|@int8-dynamic]``, ``gguf:FILE[@variant]``,
``openai:BASE_URL#MODEL[?api=chat&num_concurrent=N&max_retries=N&timeout=S]``, ``replay:FILE.jsonl``,
``fake:NAME[?skill=..&abstain=..&seed=..]``.
torch and transformers are imported only when an ``hf:``/``gguf:`` spec is loaded.
"""

from __future__ import annotations

from receipts.errors import UsageError
from runner.backends.base import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenRequest,
    GenResult,
    ModelIdentity,
)

__all__ = [
    "KINDS",
    "Backend",
    "ChoiceRequest",
    "ChoiceResult",
    "GenRequest",
    "GenResult",
    "ModelIdentity",
    "load_backend",
    "split_spec",
]

KINDS = ("hf", "gguf", "openai", "replay", "fake")
_HINT = "use hf:DIR, gguf:FILE, openai:URL#MODEL, replay:FILE.jsonl or fake:NAME"


def split_spec(spec: str) -> tuple[str, str, str | None]:
    """``(kind, location, variant)`` of a spec; the variant is the part after the last ``@`` (hf/gguf)."""
    kind, sep, body = spec.partition(":")
    if not sep or kind not in KINDS or not body:
        raise UsageError(f"model spec {spec!r} is not understood", hint=_HINT)
    variant = None
    if kind in ("hf", "gguf") and "@" in body:
        location, _, tail = body.rpartition("@")
        if "/" not in tail:
            body, variant = location, tail
    return kind, body, variant


def load_backend(spec: str) -> Backend:
    """Load the model a spec names.

    Raises:
        UsageError: the spec is malformed.
        InputError: the model it names cannot be loaded (missing path, bad files, refused endpoint).
    """
    kind, body, variant = split_spec(spec)
    if kind == "fake":
        from runner.backends.fake import FakeBackend

        return FakeBackend(spec, body)
    if kind == "replay":
        from runner.backends.replay import ReplayBackend

        return ReplayBackend(spec, body)
    if kind == "openai":
        from runner.backends.openai import OpenAIBackend

        return OpenAIBackend(spec, body)
    from runner.backends.local import LocalModel

    return LocalModel(spec, kind, body, variant)
