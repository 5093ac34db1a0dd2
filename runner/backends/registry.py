"""The backend registry: a model spec's prefix (``hf:``, ``openai:``, ...) names the factory that loads it.

A factory is registered with ``@backend(kind, example=...)``; it takes the parsed `ModelSpec` and
returns a loaded `Backend`. Factories import their backend's module, and any heavy dependency, only
when called (a missing one raises `runner.backends.extras.MissingDependency`), so registering costs
nothing. The built-in backends register in `runner.backends.builtin`; a new backend is one more
registered factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from receipts.errors import UsageError
from runner.backends.base import Backend

__all__ = ["Factory", "ModelSpec", "backend", "kinds", "load_backend", "parse_spec", "split_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: ``kind:location[@variant]``, and the text as the user wrote it."""

    text: str
    kind: str
    location: str
    variant: str | None = None


Factory = Callable[[ModelSpec], Backend]


@dataclass(frozen=True)
class _Registration:
    factory: Factory
    example: str
    variants: bool


_REGISTRY: dict[str, _Registration] = {}


def backend(kind: str, *, example: str, variants: bool = False) -> Callable[[Factory], Factory]:
    """Register the decorated factory for specs that start with ``kind:``.

    Args:
        kind: the spec prefix, e.g. ``hf``.
        example: how a spec of this kind is written, shown when a spec is not understood (``hf:DIR``).
        variants: whether a trailing ``@VARIANT`` (``hf:DIR@bf16``) is split off the location.

    Raises:
        ValueError: ``kind`` is registered already or is not a plain lowercase name.
    """
    if not kind.isalnum() or not kind.islower():
        raise ValueError(f"backend kind {kind!r} must be a lowercase alphanumeric name")
    if kind in _REGISTRY:
        raise ValueError(f"backend kind {kind!r} is registered already")

    def register(factory: Factory) -> Factory:
        _REGISTRY[kind] = _Registration(factory, example, variants)
        return factory

    return register


def kinds() -> tuple[str, ...]:
    """The registered spec prefixes, in registration order."""
    return tuple(_REGISTRY)


def _usage_hint() -> str:
    examples = [entry.example for entry in _REGISTRY.values()]
    return "use " + (", ".join(examples[:-1]) + " or " + examples[-1] if len(examples) > 1 else examples[0])


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``kind:location[@variant]``; the variant is the part after the last ``@`` without a ``/``.

    Raises:
        UsageError: no known ``kind:`` prefix, or nothing after it.
    """
    kind, sep, body = spec.partition(":")
    registration = _REGISTRY.get(kind)
    if not sep or registration is None or not body:
        raise UsageError(f"model spec {spec!r} is not understood", hint=_usage_hint())
    variant = None
    if registration.variants and "@" in body:
        location, _, tail = body.rpartition("@")
        if "/" not in tail:
            body, variant = location, tail
    return ModelSpec(spec, kind, body, variant)


def split_spec(spec: str) -> tuple[str, str, str | None]:
    """``(kind, location, variant)`` of a spec (see `parse_spec`).

    Raises:
        UsageError: the spec is malformed.
    """
    parsed = parse_spec(spec)
    return parsed.kind, parsed.location, parsed.variant


def load_backend(spec: str) -> Backend:
    """Load the model a spec names, through the factory registered for its kind.

    Raises:
        UsageError: the spec is malformed.
        InputError: the model it names cannot be loaded (missing path, bad files, refused endpoint).
        MissingDependency: the backend needs a package that is not installed.
    """
    parsed = parse_spec(spec)
    return _REGISTRY[parsed.kind].factory(parsed)
