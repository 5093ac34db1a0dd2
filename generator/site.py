"""``receipts build``: render verified receipts and build the static site with mkdocs (strict).

The build runs mkdocs on a small generated config that ``INHERIT``s the chosen mkdocs.yml (by default
the repository's) and points the receipts plugin at the given receipts and trust root, so the site looks
exactly like ``mkdocs build`` would make it with that configuration.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import yaml

from receipts.errors import InputError, ReceiptsError
from receipts.resources import site_dir
from receipts.trust import TrustRoot
from receipts.verify import find_receipts

__all__ = ["build_site", "default_config"]


def default_config() -> Path:
    """The repository's mkdocs.yml (a source checkout), next to ``site/``."""
    path = site_dir().parent / "mkdocs.yml"
    if not path.is_file():
        raise InputError(
            "no mkdocs.yml found next to the receipts installation",
            hint="pass --config-file mkdocs.yml (theme material, plugins: {receipts: {...}})",
        )
    return path


def build_site(
    receipts_dir: Path, trust_path: Path, out: Path, *, root: TrustRoot, config_file: Path | None = None
) -> int:
    """Build the site into ``out``; return how many receipts it publishes.

    Raises:
        VerificationError: a receipt does not verify (nothing is built).
        InputError: mkdocs reports an error or a warning (the build is strict).
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    count = len(find_receipts(receipts_dir))
    base = (config_file or default_config()).resolve()
    from mkdocs.utils.yaml import yaml_load

    with base.open("rb") as fh:
        parent = yaml_load(fh) or {}
    docs = (base.parent / str(parent.get("docs_dir", "docs"))).resolve()
    with tempfile.TemporaryDirectory(prefix="receipts-build-") as tmp:
        child = Path(tmp) / "mkdocs.yml"
        child.write_text(
            yaml.safe_dump(
                {
                    "INHERIT": str(base),
                    "docs_dir": str(docs),
                    "site_dir": str(out.resolve()),
                    "plugins": {
                        "receipts": {
                            "receipts_dir": str(receipts_dir.resolve()),
                            "trust_root": str(trust_path.resolve()),
                        }
                    },
                }
            ),
            "utf-8",
        )
        logging.getLogger("mkdocs").setLevel(logging.WARNING)
        try:
            build(load_config(str(child), strict=True))
        except ReceiptsError:
            raise
        except (MkDocsException, SystemExit) as exc:
            raise InputError(
                f"mkdocs build failed: {exc}", file=base, hint="see the warnings above"
            ) from None
    return count
