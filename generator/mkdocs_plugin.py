"""The mkdocs plugin: ``plugins: [receipts: {receipts_dir: DIR, trust_root: FILE}]`` in mkdocs.yml.

Optional: ``reproductions: DIR`` and ``reproducer_keys: [NAME=PUB, ...]`` show third-party reproduction
statements on the card pages under the NAME you give each key (`generator.reproductions`; each verified,
or the build stops).

It verifies every receipt under ``receipts_dir`` against the pinned ``trust_root`` and adds the rendered
pages, the receipt bundles, their exports (the Hugging Face card links the published receipt under
``site_url``), the charts and the catalog index to the build as generated files
(``File.generated``), so ``mkdocs build``, ``mkdocs serve`` and ``mkdocs gh-deploy`` need nothing else.
A receipt that does not verify stops the build with its path and the failed check.

Search: card pages say ``search: exclude: true`` (any engine reading the rendered Markdown keeps full cards
out of its index). Here each card is indexed by its short summary instead (name, publisher, teacher, base,
tags, licence, gate, description: `generator.listings.search_summary`), so Material's search finds a model
by any of those and leads to its card while the index stays small. The summary stands in for the page's
content only while Material's search plugin reads it (``on_page_context``, before it); the page itself is
rendered from its own content. The generated home (``index.md``) is added only where the docs folder has
no ``index.md`` of its own.

Markdown: the generated pages are headings around raw HTML blocks. Their HTML blocks are lifted out before
any Markdown runs and put back into the HTML Markdown makes of the rest (`generator.lift`: the same page,
without parsing 40 kB of HTML per card twice); other plugins see the lifted page as HTML, never its card
text as Markdown, and one that rewrites a placeholder stops the build.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs.config import base
from mkdocs.config import config_options as opt
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, CombinedEvent, event_priority
from mkdocs.structure.files import File, Files

from generator.lift import LiftError, lift, new_token, restore
from receipts.errors import ReceiptsError
from receipts.trust import TrustRoot, load_trust_root

if TYPE_CHECKING:
    from receipts.verify import VerifiedReceipt

__all__ = ["ReceiptsPlugin", "prepared"]

log = logging.getLogger("mkdocs.plugins.receipts")

_PREPARED: dict[tuple[Path, str], list[VerifiedReceipt]] = {}


@contextmanager
def prepared(receipts_dir: Path, root: TrustRoot, entries: Sequence[VerifiedReceipt]) -> Iterator[None]:
    """Within this block the plugin renders these already verified entries instead of verifying again.

    ``receipts build`` verifies every receipt before mkdocs starts (so a failure stops it before anything
    is built); this hands the plugin the verified bytes for the same folder and trust root.
    """
    key = (receipts_dir.resolve(), root.sha256)
    _PREPARED[key] = list(entries)
    try:
        yield
    finally:
        _PREPARED.pop(key, None)


class _Config(base.Config):  # type: ignore[no-untyped-call]
    receipts_dir = opt.Type(str)
    trust_root = opt.Type(str)
    reproductions = opt.Optional(opt.Type(str))
    reproducer_keys = opt.ListOfItems(opt.Type(str), default=[])


class ReceiptsPlugin(BasePlugin[_Config]):  # type: ignore[no-untyped-call]
    """Adds the verified receipts' pages to the site."""

    def __init__(self) -> None:
        super().__init__()
        self._summaries: dict[str, str] = {}
        self._held: dict[str, tuple[str | None, Any]] = {}
        self._generated: set[str] = set()
        self._lifted: dict[str, list[str]] = {}
        self._token = new_token()

    def on_config(self, config: Any) -> Any:
        """Load the scripts (verify, catalog, viewer) and the stylesheet on every page."""
        from generator.render import CATALOG_JS, CATALOG_TABLE_JS, STYLE_CSS, VERIFY_JS, VIEWER_JS

        for script in (VERIFY_JS, CATALOG_JS, CATALOG_TABLE_JS, VIEWER_JS):
            if script not in config.extra_javascript:
                config.extra_javascript.append(script)
        if STYLE_CSS not in config.extra_css:
            config.extra_css.append(STYLE_CSS)
        return config

    def on_files(self, files: Files, /, *, config: Any) -> Files:
        """Render the receipts and add every output as a generated file."""
        from generator.render import collect, render

        here = Path(config.config_file_path or ".").resolve().parent
        receipts_dir = here / self.config.receipts_dir
        trust_path = here / self.config.trust_root
        try:
            root = load_trust_root(trust_path)
            root_bytes = trust_path.read_bytes()
            entries = _PREPARED.get((receipts_dir.resolve(), root.sha256))
            if entries is None:
                entries = collect(receipts_dir, root, root_bytes=root_bytes)
            shown = None
            if self.config.reproductions:
                from generator.reproductions import (
                    collect_reproductions,
                    load_reproducer_keys,
                    parse_reproducer_key,
                )

                given = [
                    parse_reproducer_key(k, where="reproducer_keys") for k in self.config.reproducer_keys
                ]
                keys = load_reproducer_keys([(name, here / key) for name, key in given])
                shown = collect_reproductions(here / self.config.reproductions, keys, entries, root)
            result = render(entries, root, root_bytes, site_url=config.site_url, reproductions=shown)
        except ReceiptsError as exc:
            raise PluginError(f"receipts: {exc.diagnostics()}") from None
        from generator.home import HOME

        own_home = files.get_file_from_path(HOME) is not None
        if own_home:
            log.info("receipts: keeping the docs folder's own %s (the generated home is not added)", HOME)
        self._generated = set()
        for name, data in result.files.items():
            if not (name == HOME and own_home):
                files.append(File.generated(config, name, content=data))
                if name.endswith(".md"):
                    self._generated.add(name)
        self._summaries = dict(result.search)
        self._token = new_token()
        return files

    @event_priority(100)  # first: other plugins see the generated pages' HTML only as HTML, never as Markdown
    def on_page_markdown(self, markdown: str, /, *, page: Any, config: Any, files: Any) -> str:
        """Lift a generated page's raw HTML blocks out of Markdown's way (`generator.lift`)."""
        if page.file.src_uri not in self._generated:
            return markdown
        skeleton, chunks = lift(markdown, self._token)
        if chunks:
            self._lifted[page.file.src_uri] = chunks
        return skeleton

    @event_priority(100)  # first: every other plugin sees the page's whole HTML
    def on_page_content(self, html: str, /, *, page: Any, config: Any, files: Any) -> str:
        """Put the lifted blocks back into the HTML Markdown made of the rest of the page."""
        chunks = self._lifted.pop(page.file.src_uri, None)
        if chunks is None:
            return html
        try:
            return restore(html, self._token, chunks)
        except LiftError as exc:
            raise PluginError(
                f"receipts: {page.file.src_uri}: {exc}; a Markdown extension or plugin changed it"
            ) from None

    @event_priority(50)  # before Material's search plugin (priority 0) reads the page
    def _summary_for_search(self, context: Any, /, *, page: Any, config: Any, nav: Any) -> Any:
        summary = self._summaries.get(page.file.src_uri)
        if summary is not None:
            self._held[page.file.src_uri] = (page.content, page.meta.get("search"))
            page.content = summary
            page.meta["search"] = {k: v for k, v in (page.meta.get("search") or {}).items() if k != "exclude"}
        return context

    @event_priority(-50)  # after every other plugin: the page is rendered from its own content
    def _page_back(self, context: Any, /, *, page: Any, config: Any, nav: Any) -> Any:
        held = self._held.pop(page.file.src_uri, None)
        if held is not None:
            page.content, page.meta["search"] = held
        return context

    on_page_context = CombinedEvent(_summary_for_search, _page_back)
