"""An eval pack's items as the overlap check reads them (receipts.overlap): inputs and gold answer as text.

An item's inputs are the fields its pack's prompt templates read (every template and variant), less the
fields that are answers, choices, labels or markers, in the order the item writes them; its gold is the
correct choice of a multiple-choice item, the first reference of a generated one, or the values of an
extraction. Distractor choices are left out. No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from receipts.overlap import ItemText
from runner.eval.loader import load_pack
from runner.eval.packs import Item, Pack
from runner.eval.templates import undeclared_fields

__all__ = ["item_texts", "pack_items"]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return "" if value is None or isinstance(value, bool) else json.dumps(value)


def _input_fields(pack: Pack) -> set[str]:
    used: set[str] = set()
    for source in [*pack.templates.values(), *(v.template for v in pack.variants)]:
        used |= undeclared_fields(source)
    spec = pack.spec
    reserved = {"id", "critical", spec.get("target"), *pack.slices}
    for key in ("choices", "behaviour"):
        if isinstance(spec.get(key), str):
            reserved.add(spec[key])
    clarify = spec.get("clarify")
    if isinstance(clarify, Mapping) and isinstance(clarify.get("pattern_field"), str):
        reserved.add(clarify["pattern_field"])
    return used - reserved


def _gold(item: Item) -> str:
    gold = item.gold
    if isinstance(gold, int) and not isinstance(gold, bool) and item.choices is not None:
        return item.choices[gold] if 0 <= gold < len(item.choices) else ""
    if isinstance(gold, tuple):
        return gold[0] if gold else ""
    return _text(gold)


def item_texts(pack: Pack) -> list[ItemText]:
    """Each item of a loaded pack as (id, inputs, gold) text."""
    fields = _input_fields(pack)
    return [
        ItemText(
            item.id,
            " ".join(_text(value) for name, value in item.fields.items() if name in fields),
            _gold(item),
        )
        for item in pack.items
    ]


def pack_items(path: Path) -> tuple[dict[str, str], list[ItemText]]:
    """Load a pack; its identity as runs record it (id, version, digest) and its items' text.

    Raises:
        InputError: the pack cannot be read (see runner.eval.loader.load_pack).
        SchemaError: the pack or its items fail the pack's schema or mapping.
    """
    pack = load_pack(path)
    identity = {"id": pack.id, "version": pack.version, "digest": f"sha256:{pack.digest}"}
    return identity, item_texts(pack)
