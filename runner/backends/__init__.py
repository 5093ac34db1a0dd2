"""Model backends: a registry from model spec to loaded model, and the interface every backend has.

Specs (DESIGN §3 and §10): ``hf:DIR[@fp32|@bf16|@int8-dynamic]``, ``gguf:FILE[@variant]``,
``openai:BASE_URL#MODEL[?api=chat&num_concurrent=N&max_retries=N&timeout=S]``, ``replay:FILE.jsonl``,
``fake:NAME[?skill=..&abstain=..&seed=..]``. Each prefix resolves through `runner.backends.registry`
(``@backend("hf", ...)`` factories, registered in `runner.backends.builtin`); torch and transformers
are imported only when an ``hf:``/``gguf:`` model is first called.
"""

from __future__ import annotations

from runner.backends import builtin as _builtin  # noqa: F401 - imported for its registrations
from runner.backends.base import (
    Backend,
    ChoiceRequest,
    ChoiceResult,
    GenRequest,
    GenResult,
    ModelIdentity,
)
from runner.backends.extras import MissingDependency
from runner.backends.registry import ModelSpec, backend, kinds, load_backend, parse_spec, split_spec

__all__ = [
    "Backend",
    "ChoiceRequest",
    "ChoiceResult",
    "GenRequest",
    "GenResult",
    "MissingDependency",
    "ModelIdentity",
    "ModelSpec",
    "backend",
    "kinds",
    "load_backend",
    "parse_spec",
    "split_spec",
]
