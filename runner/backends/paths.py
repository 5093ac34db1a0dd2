"""Where the runner keeps what it can rebuild: converted models, remembered digests, cached outputs."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """Where converted models and cached outputs live (``$RECEIPTS_CACHE`` or ``~/.cache/receipts``)."""
    return Path(os.environ.get("RECEIPTS_CACHE") or Path.home() / ".cache" / "receipts")
