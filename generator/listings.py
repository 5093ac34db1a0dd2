"""The catalog and tag listing pages: one table row per verified receipt, split into pages of ``PAGE_ROWS``.

A row shows what a reader compares models by: teacher(s), the student's score and retention on a chosen
pack, the smallest measured peak RSS with the quantization it was measured at (and the decode speed of
that same measurement), the computed licence terms, the gate verdict and tags. Every number comes from
the verified receipt's index row (``generator.render.index_row``); the teacher names from its verified
card. The server renders the rows for a default pack (``default_pack``) so the table reads without
JavaScript; each row carries every pack's numbers in ``data-rc-packs`` so catalog-table.js can switch
packs in the browser.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import markupsafe

if TYPE_CHECKING:
    import jinja2

    from receipts.verify import VerifiedReceipt

__all__ = [
    "PAGE_ROWS",
    "default_pack",
    "is_tag_slug",
    "listings",
    "search_summary",
    "smallest_memory",
    "table_row",
]

PAGE_ROWS = 1000
"""Rows per catalog or tag page: a listing past this many models is split into numbered pages."""

Item = tuple[dict[str, Any], list[str]]


def is_tag_slug(tag: Any) -> bool:
    """A tag usable as a folder name (the card schema's pattern, checked again: it becomes a path)."""
    return isinstance(tag, str) and re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,49}", tag) is not None


def _number(value: Any) -> float | None:
    """A JSON number as a float; anything else (null, a string, a boolean) is no number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def smallest_memory(cost: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The measured point with the smallest peak RSS (``status`` ok): its bytes, quant and decode tok/s.

    The decode speed is that same point's, so a row never pairs one quantization's memory with another's
    speed. None where no footprint measured a peak RSS.
    """
    measured = [p for p in cost if p.get("status") == "ok" and _number(p.get("peak_rss_bytes")) is not None]
    if not measured:
        return None
    best = min(measured, key=lambda p: (float(p["peak_rss_bytes"]), str(p.get("quant"))))
    return {
        "bytes": float(best["peak_rss_bytes"]),
        "quant": str(best.get("quant") or "?"),
        "decode_tps": _number(best.get("decode_tps_p50")),
    }


def _pack_numbers(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per pack: the student's signed score and retention (``None`` where not a number) and the metric."""
    packs = {}
    for pack, ev in row["evals"].items():
        scores = ev.get("scores") if isinstance(ev.get("scores"), Mapping) else {}
        packs[pack] = {
            "metric": str(ev.get("primary_metric") or ""),
            "score": _number(scores.get("student")),
            "retention": _number(ev.get("retention")),
        }
    return packs


def table_row(entry: VerifiedReceipt, row: Mapping[str, Any]) -> dict[str, Any]:
    """What the catalog table shows for one verified receipt (its index row plus its card's teachers)."""
    lineage = entry.card.lineage
    terms = row.get("licence_terms") or {}
    return {
        **row,
        "teachers": [t.name for t in lineage.teachers or []],
        "base": lineage.base.name,
        "packs": _pack_numbers(row),
        "memory": smallest_memory(row["cost"]),
        "commercial": terms.get("commercial_use", "unknown"),
        "commercial_override": "commercial_use" in (row.get("licence_overrides") or []),
    }


def search_summary(row: Mapping[str, Any]) -> str:
    """What the site search indexes for a card page, as HTML: who and what the model is, not its evidence.

    Name, version, publisher, teacher(s), base, tags, licence with computed commercial use, gate and the
    description, all from the verified receipt and escaped. A short paragraph per model keeps the search
    index small at thousands of models (the full card would be tens of KB each).
    """
    esc = markupsafe.escape
    teachers = ", ".join(row["teachers"]) or "none named"
    parts = [
        f"{row['name']} {row['version']} by {row['publisher']}.",
        f"Teacher: {teachers}. Base: {row['base']}.",
        f"Tags: {', '.join(str(t) for t in row['tags']) or 'none'}.",
        f"Licence: {row['license']} (commercial use, computed: {row['commercial']}).",
        f"Gate: {str(row['gate']).replace('_', ' ')}.",
        _shorten(str(row["description"]), 160),
    ]
    return "".join(f"<p>{esc(part)}</p>" for part in parts)


def _shorten(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis where cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"


def default_pack(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The pack the table shows first: the one most models have a signed retention on.

    Ties go to the pack more models ran, then to the name; None where no model ran any pack.
    """
    with_retention: Counter[str] = Counter()
    ran: Counter[str] = Counter()
    for row in rows:
        for pack, numbers in row["packs"].items():
            ran[pack] += 1
            with_retention[pack] += numbers["retention"] is not None
    if not ran:
        return None
    return min(ran, key=lambda p: (-with_retention[p], -ran[p], p))


def listings(
    env: jinja2.Environment,
    rows: Sequence[dict[str, Any]],
    trust: dict[str, Any],
    files: dict[str, bytes],
) -> list[str]:
    """The catalog and tag listing pages (and tags/index.md) into ``files``; returns their paths.

    ``rows`` are ``table_row`` dicts in catalog order.
    """
    pages = []
    peers = [
        [f"{o['name']}@{o['version']}" for o in (rows[i + 1 : i + 4] or rows[max(0, i - 3) : i])]
        for i in range(len(rows))
    ]
    items = list(zip(rows, peers, strict=True))
    # Catalog page 1 is models/index.md (in the nav); pages 2.. go under catalog/ so no page number can
    # share a folder with a model name (names may be digits).
    Listing = tuple[str, str, str, str, str | None, list[Item]]
    listed: list[Listing] = [("models", "catalog", "Catalog", "Catalog", None, items)]
    by_tag: dict[str, list[Item]] = {}
    for item in items:
        for tag in item[0]["tags"]:
            if is_tag_slug(tag):
                by_tag.setdefault(tag, []).append(item)
    for tag, tagged in sorted(by_tag.items()):
        listed.append((f"tags/{tag}", f"tags/{tag}", f"Tag: {tag}", f"Models tagged `{tag}`", tag, tagged))
    for first, rest, title, heading, tag_name, chosen in listed:
        for path, text in listing_pages(env, (first, rest), title, heading, tag_name, chosen, trust):
            files[path] = text.encode("utf-8")
            pages.append(path)
    tags = [(tag, len(tagged)) for tag, tagged in sorted(by_tag.items())]
    files["tags/index.md"] = env.get_template("tags.md.j2").render(tags=tags).encode("utf-8")
    pages.append("tags/index.md")
    return pages


def listing_pages(
    env: jinja2.Environment,
    folders: tuple[str, str],
    title: str,
    heading: str,
    tag: str | None,
    items: Sequence[Item],
    trust: dict[str, Any],
) -> list[tuple[str, str]]:
    """A listing split into pages of ``PAGE_ROWS``: page 1 in ``folders[0]``, page k in ``folders[1]/k``.

    Every page of a listing shows the same default pack (the listing's, not the page's), so paging never
    silently changes which pack's numbers a column holds.
    """
    folder_of = {1: folders[0]}
    chunks = [items[i : i + PAGE_ROWS] for i in range(0, len(items), PAGE_ROWS)] or [items]
    packs = sorted({pack for row, _ in items for pack in row["packs"]})
    pack = default_pack([row for row, _ in items])
    out = []
    for number, chunk in enumerate(chunks, start=1):
        path = f"{folder_of.get(number, f'{folders[1]}/{number}')}/index.md"
        base = "../" * path.count("/")
        pages = [
            {"number": k, "href": f"{base}{folder_of.get(k, f'{folders[1]}/{k}')}/", "current": k == number}
            for k in range(1, len(chunks) + 1)
        ]
        text = env.get_template("catalog.md.j2").render(
            title=title if number == 1 else f"{title} (page {number})",
            heading=heading,
            intro=tag is None,
            tag=tag,
            items=chunk,
            base=base,
            pages=pages,
            page=number,
            per_page=PAGE_ROWS,
            total=len(items),
            trust=trust,
            packs=packs,
            pack=pack,
        )
        out.append((path, text))
    return out
