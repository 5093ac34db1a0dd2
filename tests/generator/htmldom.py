"""Built sites compared page by page, and HTML documents compared as DOMs (tags, attributes and text).

Used to hold the pages ``receipts build`` makes with their HTML lifted out of Markdown (generator/lift.py)
to the pages plain mkdocs makes of the same Markdown, byte for byte (tests/generator/test_catalog_home.py,
bench/catalog_build.py); the DOM says where two pages differ.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

__all__ = ["dom_events", "first_difference", "plain_config", "site_differences"]

Event = tuple[str, ...]


class _Events(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[Event] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, *sorted(f"{k}={v or ''}" for k, v in attrs)))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())  # whitespace between elements is not content
        if text:
            self.events.append(("text", text))

    def handle_comment(self, data: str) -> None:
        self.events.append(("comment", data))


def dom_events(html: str) -> list[Event]:
    """The document's tags (attributes sorted), comments and text (whitespace runs as one space)."""
    parser = _Events()
    parser.feed(html)
    parser.close()
    return parser.events


def first_difference(a: str, b: str) -> str | None:
    """Where two documents' DOMs first differ, in words, or ``None`` if they are the same."""
    x, y = dom_events(a), dom_events(b)
    if x == y:
        return None
    at = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
    return f"event {at}: {x[at : at + 2]} against {y[at : at + 2]} (after {x[max(0, at - 2) : at]})"


def site_differences(a: Path, b: Path, *, every: int = 1) -> list[str]:
    """Each ``every``-th HTML page of site ``a`` (in path order) against site ``b``'s, byte for byte.

    A page that differs is described by where its DOM first differs (or "whitespace only").
    """
    pages_a = sorted(p.relative_to(a) for p in a.rglob("*.html"))
    pages_b = sorted(p.relative_to(b) for p in b.rglob("*.html"))
    problems = [f"{p}: only in {a}" for p in sorted(set(pages_a) - set(pages_b))]
    problems += [f"{p}: only in {b}" for p in sorted(set(pages_b) - set(pages_a))]
    for page in sorted(set(pages_a) & set(pages_b))[::every]:
        ours, theirs = (a / page).read_bytes(), (b / page).read_bytes()
        if ours != theirs:
            found = first_difference(ours.decode("utf-8"), theirs.decode("utf-8"))
            problems.append(f"{page}: {found or 'whitespace only'}")
    return problems


def plain_config(base: Path, docs: Path, out: Path) -> Path:
    """``base`` (an mkdocs.yml) made into a plain mkdocs build of ``docs``, written to ``out``.

    The receipts plugin is removed; its scripts and stylesheet are loaded as the plugin loads them
    (generator/mkdocs_plugin.py).
    """
    from mkdocs.utils.yaml import yaml_load

    from generator.render import CATALOG_JS, CATALOG_TABLE_JS, STYLE_CSS, VERIFY_JS, VIEWER_JS

    with base.open("rb") as fh:
        config: dict[str, Any] = yaml_load(fh)
    config.pop("INHERIT", None)
    config["plugins"] = {"search": (config.get("plugins") or {}).get("search") or {}}
    config["docs_dir"] = str(docs)
    config["extra_javascript"] = [VERIFY_JS, CATALOG_JS, CATALOG_TABLE_JS, VIEWER_JS]
    config["extra_css"] = [STYLE_CSS]
    out.write_text(yaml.safe_dump(config), "utf-8")
    return out
