"""Where receipts finds the files it ships: JSON Schemas (and, later, site assets).

One lookup for dev checkouts and installed wheels: the wheel carries ``schema/`` as
``receipts/schema`` (see pyproject ``force-include``); a source checkout has it at the repo root.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["schema_dir", "site_dir"]

_PACKAGE = Path(__file__).resolve().parent


@cache
def schema_dir() -> Path:
    """The folder holding ``*.schema.json``."""
    for candidate in (_PACKAGE / "schema", _PACKAGE.parent / "schema"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"receipts schemas not found next to {_PACKAGE}; reinstall receipts")


@cache
def site_dir() -> Path:
    """The folder holding the catalog's templates and assets (``site/`` in a checkout)."""
    for candidate in (_PACKAGE / "site", _PACKAGE.parent / "site"):
        if (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError(f"receipts site templates not found next to {_PACKAGE}; reinstall receipts")
