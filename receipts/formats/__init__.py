"""Typed views of every persisted receipts format: one pydantic model per JSON Schema in ``schema/``.

The schemas stay the language-neutral contract; each model mirrors its schema construct by construct
(closed objects forbid unknown keys, open ones keep them, no type coercion, patterns and formats checked
as jsonschema checks them), and ``tests/receipts/test_formats.py`` holds the two to the same answer on every
fixture, every committed vector and their mutations. Read a document with ``Model.parse(value)``,
``Model.from_json_bytes(data)`` or ``Model.load(path)``; each raises ``SchemaError`` on a violation.

    =====================  ================  =======================================
    model                  schema kind       file
    =====================  ================  =======================================
    Card                   card              card.yaml
    Statement              statement         the payload of receipt.json
    Results                results           runs/<pack>/results.json
    Footprint              footprint         footprints/<name>.json
    WeightsManifest        weights-manifest  weights.manifest.json
    TrustRootDocument      trust-root        trust.json
    PackDocument           pack              pack.yaml
    CatalogIndex           catalog-index     catalog/index.json
    LicenceTable           licence-table     receipts/data/licences/v<N>.json
    ReproductionStatement  reproduction      the payload of a reproduction statement
    Overlap                overlap           overlap.json (receipts overlap)
    QuantizeManifest       quantize-manifest manifest.json (receipts quantize)
    =====================  ================  =======================================

Models load on first use (PEP 562): ``import receipts.formats`` does not import pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from receipts._lazy import lazy_names

if TYPE_CHECKING:
    from receipts.formats._base import Document
    from receipts.formats.card import Card
    from receipts.formats.catalog_index import CatalogIndex
    from receipts.formats.footprint import Footprint
    from receipts.formats.licence_table import LicenceTable
    from receipts.formats.manifest import WeightsManifest
    from receipts.formats.overlap import Overlap
    from receipts.formats.pack import PackDocument
    from receipts.formats.quantize_manifest import QuantizeManifest
    from receipts.formats.reproduction import ReproductionStatement
    from receipts.formats.results import Results
    from receipts.formats.statement import Statement
    from receipts.formats.trust_root import TrustRootDocument

__all__ = [
    "Card",
    "CatalogIndex",
    "Document",
    "Footprint",
    "LicenceTable",
    "Overlap",
    "PackDocument",
    "QuantizeManifest",
    "ReproductionStatement",
    "Results",
    "Statement",
    "TrustRootDocument",
    "WeightsManifest",
]

_HOMES = {
    "receipts.formats._base": ("Document",),
    "receipts.formats.card": ("Card",),
    "receipts.formats.catalog_index": ("CatalogIndex",),
    "receipts.formats.footprint": ("Footprint",),
    "receipts.formats.licence_table": ("LicenceTable",),
    "receipts.formats.manifest": ("WeightsManifest",),
    "receipts.formats.overlap": ("Overlap",),
    "receipts.formats.pack": ("PackDocument",),
    "receipts.formats.quantize_manifest": ("QuantizeManifest",),
    "receipts.formats.reproduction": ("ReproductionStatement",),
    "receipts.formats.results": ("Results",),
    "receipts.formats.statement": ("Statement",),
    "receipts.formats.trust_root": ("TrustRootDocument",),
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES, globals())
