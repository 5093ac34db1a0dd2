"""A card page's downloads: its receipt as a Hugging Face model card and as a CycloneDX 1.6 ML-BOM.

They are written next to the card page, never inside the published bundle folder: the bundle stays
byte for byte what was signed (``receipts verify SITE`` and verify.js check it). They are made from the
bytes ``collect`` verified, so no receipt is verified twice. An export carries no signature of its own;
the page says so, and the receipt beside it remains the evidence.

File names (relative to the page folder):
  README.md.txt               the Hugging Face model card. Not ``*.md``: mkdocs and Zensical render every
                              ``*.md`` in the docs folder as a page (mkdocs even makes a ``README.md`` its
                              folder's index); a ``.txt`` both copy as a static file, from the plugin and
                              from ``receipts render`` alike. The link's ``download="README.md"`` saves it
                              under the name the Hub wants.
  <name>-<version>.cdx.json   the ML-BOM. Beside the bundle folder, so its ``externalReferences`` link to
                              ``<name>@<version>/receipt.json`` resolves from where it is published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from receipts.export.cyclonedx import ml_bom
from receipts.export.hf import model_card

if TYPE_CHECKING:
    from receipts.verify import VerifiedReceipt

__all__ = ["HF_CARD", "Export", "page_exports", "receipt_url"]

HF_CARD = "README.md.txt"


@dataclass(frozen=True)
class Export:
    """One download offered on a card page."""

    file: str
    """Its name in the page folder."""
    data: bytes


def receipt_url(site_url: str | None, receipt: str) -> str | None:
    """The published receipt's absolute URL (``receipt`` relative to the site), if the site URL is known."""
    if not site_url or urlsplit(site_url).scheme not in ("http", "https"):
        return None
    return urljoin(site_url if site_url.endswith("/") else site_url + "/", receipt)


def page_exports(verified: VerifiedReceipt, *, receipt_url: str | None = None) -> tuple[Export, Export]:
    """The Hugging Face model card and the CycloneDX ML-BOM of one verified receipt.

    Raises:
        UsageError: ``receipt_url`` is not an http(s) URL.
    """
    model = verified.predicate.model
    card = model_card(verified, receipt_url=receipt_url).encode("utf-8")
    # the same bytes as `receipts export cyclonedx --out` writes
    bom = (json.dumps(ml_bom(verified), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return Export(HF_CARD, card), Export(f"{model.name}-{model.version}.cdx.json", bom)
