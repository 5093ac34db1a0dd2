"""The catalog generator: verified receipts into pages, a static site, and checks of built catalogs.

Never imports torch. Names are imported on first use, so the mkdocs plugin entry point and
``receipts --help`` do not load Jinja or mkdocs until they render.

- `collect` / `render` (generator.render): verify a folder of receipts, then make their pages (engine-neutral
  Markdown with raw HTML blocks, charts, exports, catalog/index.json).
- `build_site` (generator.site): the same, built into a static site with mkdocs-material, swapped into place.
- `verify_target` (generator.sitecheck): ``receipts verify`` of a receipt, folder, built site or catalog URL,
  each card page held to its receipt.
- `fetch_catalog` (generator.remote): download a published catalog within limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from receipts._lazy import lazy_names

if TYPE_CHECKING:
    from generator.remote import Limits, fetch_catalog
    from generator.render import RenderResult, collect, render
    from generator.site import build_site
    from generator.sitecheck import verify_target

_HOMES = {
    "generator.remote": ("Limits", "fetch_catalog"),
    "generator.render": ("RenderResult", "collect", "render"),
    "generator.site": ("build_site",),
    "generator.sitecheck": ("verify_target",),
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())

__all__ = ["Limits", "RenderResult", "build_site", "collect", "fetch_catalog", "render", "verify_target"]
