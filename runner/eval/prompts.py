"""Posing a pack's items: every (item, variant) prompt, few-shot examples and perturbations applied."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from receipts.errors import UsageError
from runner.eval.chat import conversation
from runner.eval.packs import PACK_FILE, Item, Pack, PromptInstance, Variant
from runner.eval.perturbations import perturb
from runner.eval.templates import TemplateLimit, limit_error, render_template

__all__ = ["answer_text", "materialise", "render_prompt"]


def answer_text(item: Item, task: str) -> str:
    """A worked example's answer as the model should write it (gold presence is checked at load)."""
    if task in ("multiple_choice", "classify"):
        return cast(tuple[str, ...], item.choices)[cast(int, item.gold)]
    if task == "generate":
        return cast(tuple[str, ...], item.gold)[0]
    return json.dumps(dict(cast(Mapping[str, Any], item.gold)), ensure_ascii=False)


def _chosen(pack: Pack, names: Sequence[str] | None) -> list[Variant]:
    if names is None:
        return list(pack.variants)
    by_name = {v.name: v for v in pack.variants}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(
            f"pack {pack.id} has no variant {', '.join(map(repr, unknown))}",
            hint=f"choose from: {', '.join(by_name)}",
        )
    if "original" not in names:
        # fidelity, retention and each variant's robustness gap are measured against the original prompt
        given = " ".join(f"--variant {n}" for n in names)
        raise UsageError(
            f"{given}: the original prompt is needed too (fidelity and the robustness gaps are measured "
            "against it)",
            hint=f"add it: --variant original {given}",
        )
    return [by_name[n] for n in dict.fromkeys(names)]


def _prefix(pack: Pack, variant: Variant) -> str:
    if pack.few_shot is None:
        return ""
    shots = [
        render_template(variant.template, shot.fields) + pack.target_delimiter + answer_text(shot, pack.task)
        for shot in pack.few_shot.items
    ]
    return pack.few_shot.delimiter.join(shots) + pack.few_shot.delimiter


def render_prompt(pack: Pack, item: Item, variant: Variant) -> str:
    """The prompt text for one item under one variant (few-shot examples included).

    Perturbations change only the item's text fields, never the template's own words, the choices
    or the gold answer; they are deterministic given (seed, item id, variant name, field).

    Raises:
        InputError: the template goes over the limits on what it may build.
    """
    with _limits(pack, variant):
        return conversation(pack.system_prompt, _prefix(pack, variant) + _body(item, variant))[0]


@contextmanager
def _limits(pack: Pack, variant: Variant) -> Iterator[None]:
    try:
        yield
    except (TemplateLimit, MemoryError) as exc:
        raise limit_error(exc, pack.path / PACK_FILE, f"variant {variant.name!r}") from None


def _body(item: Item, variant: Variant) -> str:
    fields = dict(item.fields)
    if variant.perturbation is not None:
        for name in variant.fields:
            if isinstance(fields.get(name), str):
                fields[name] = perturb(
                    fields[name], variant.perturbation, item_id=item.id, variant=variant.name, field=name
                )
    return render_template(variant.template, fields)


def materialise(
    pack: Pack, variants: Sequence[str] | None = None, *, items: Iterable[Item] | None = None
) -> Iterator[PromptInstance]:
    """Every (item, variant) prompt of ``pack``, item by item, variants in pack order.

    ``variants`` names the variants to use (default: all, ``original`` first). Multiple-choice and
    classify instances carry their choices and lm-eval continuations (target_delimiter + choice).

    Raises:
        UsageError: a requested variant does not exist in the pack.
        InputError: a template goes over the limits on what it may build.
    """
    chosen = _chosen(pack, variants)
    prefixes = {}
    for variant in chosen:
        with _limits(pack, variant):
            prefixes[variant.name] = _prefix(pack, variant)
    for item in pack.items if items is None else items:
        continuations = None
        if item.choices is not None:
            continuations = tuple(pack.target_delimiter + choice for choice in item.choices)
        for variant in chosen:
            with _limits(pack, variant):
                user = prefixes[variant.name] + _body(item, variant)
            prompt, messages = conversation(pack.system_prompt, user)
            yield PromptInstance(
                item_id=item.id,
                variant=variant.name,
                prompt=prompt,
                prompt_sha256=hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                gold=item.gold,
                choices=item.choices,
                continuations=continuations,
                critical=item.critical,
                slices=item.slices,
                expected=item.expected,
                clarify_pattern=item.clarify_pattern,
                messages=messages,
            )
