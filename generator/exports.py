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

Making both costs more than rendering the card page itself (a YAML front matter, a JSON document of every
metric per slice), and a catalog is rebuilt far more often than a receipt changes. `cached_exports` keeps
them under ``$RECEIPTS_CACHE/exports/`` (default ``~/.cache/receipts``), keyed by the sha256 of the
verified envelope (which binds every subject by digest), the receipt URL and a digest of the code that
makes them: a hit is the bytes this same code made from these same verified bytes, so a rebuild pays
for new receipts only. The cache is the builder's own, like the runner's output cache; one that cannot be
read or written is skipped, never an error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import receipts
from receipts.export.cyclonedx import ml_bom
from receipts.export.hf import model_card

if TYPE_CHECKING:
    from receipts.verify import VerifiedReceipt

__all__ = ["HF_CARD", "Export", "cached_exports", "page_exports", "receipt_url"]

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


def cached_exports(verified: VerifiedReceipt, *, receipt_url: str | None = None) -> tuple[Export, Export]:
    """`page_exports`, read from the export cache when this code already made them for these bytes.

    Raises:
        UsageError: ``receipt_url`` is not an http(s) URL.
    """
    folder = _cache_dir()
    key = hashlib.sha256(
        "\n".join((_code_digest(), hashlib.sha256(verified.envelope).hexdigest(), receipt_url or "")).encode()
    ).hexdigest()
    model = verified.predicate.model
    names = (HF_CARD, f"{model.name}-{model.version}.cdx.json")
    try:
        card, bom = ((folder / f"{key}.{part}").read_bytes() for part in ("hf", "cdx"))
        return Export(names[0], card), Export(names[1], bom)
    except OSError:
        pass
    made = page_exports(verified, receipt_url=receipt_url)
    for part, export in zip(("hf", "cdx"), made, strict=True):
        _store(folder / f"{key}.{part}", export.data)
    return made


def _cache_dir() -> Path:
    return Path(os.environ.get("RECEIPTS_CACHE") or Path.home() / ".cache" / "receipts") / "exports"


@functools.cache
def _code_digest() -> str:
    """The sha256 of everything that can change an export: this module and the receipts package.

    Its sources and data files (licence tables), with their paths; a changed file makes every key new.
    """
    digest = hashlib.sha256(Path(__file__).read_bytes())
    package = Path(receipts.__file__).parent
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json") and path.is_file():
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _store(path: Path, data: bytes) -> None:
    """Write atomically (a reader never sees half a file); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except OSError:
        Path(temp).unlink(missing_ok=True)
