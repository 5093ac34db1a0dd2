"""The mkdocs plugin: ``plugins: [receipts: {receipts_dir: DIR, trust_root: FILE}]`` in mkdocs.yml.

Optional: ``reproductions: DIR`` and ``reproducer_keys: [NAME=PUB, ...]`` show third-party reproduction
statements on the card pages under the NAME you give each key (`generator.reproductions`; each verified,
or the build stops).

It verifies every receipt under ``receipts_dir`` against the pinned ``trust_root`` and adds the rendered
pages, the receipt bundles, their exports (the Hugging Face card links the published receipt under
``site_url``), the charts and the catalog index to the build as generated files
(``File.generated``), so ``mkdocs build``, ``mkdocs serve`` and ``mkdocs gh-deploy`` need nothing else.
A receipt that does not verify stops the build with its path and the failed check.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mkdocs.config import base
from mkdocs.config import config_options as opt
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files

from receipts.errors import ReceiptsError
from receipts.trust import TrustRoot, load_trust_root

if TYPE_CHECKING:
    from receipts.verify import VerifiedReceipt

__all__ = ["ReceiptsPlugin", "prepared"]

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

    def on_config(self, config: Any) -> Any:
        """Load the scripts (verify, catalog, viewer) and the stylesheet on every page."""
        from generator.render import CATALOG_JS, STYLE_CSS, VERIFY_JS, VIEWER_JS

        for script in (VERIFY_JS, CATALOG_JS, VIEWER_JS):
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
        for name, data in result.files.items():
            files.append(File.generated(config, name, content=data))
        return files
