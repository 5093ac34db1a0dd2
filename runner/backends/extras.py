"""Optional dependencies: ``requires`` turns a missing package into the one error naming its extra.

The runner imports torch, transformers and gguf only where a model needs them, always inside
``with requires(extra, what):``, so a missing package is one `MissingDependency` that names the extra
to install — the same words the CLI uses for any optional module it finds missing — never a
``ModuleNotFoundError`` traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from receipts.errors import MissingDependency, install_hint

__all__ = ["MissingDependency", "install_hint", "requires"]


@contextmanager
def requires(extra: str, what: str) -> Iterator[None]:
    """Turn an ``ImportError`` raised inside the block into a `MissingDependency` naming ``extra``.

    Args:
        extra: the pip extra that installs the package (``runner``, ``ray``, ``gpu``, ...).
        what: the feature that needs it, as the user would name it (``an hf: model``).

    Raises:
        MissingDependency: a module imported in the block is not installed.
    """
    try:
        yield
    except ImportError as exc:
        package = (exc.name or "").partition(".")[0] or str(exc)
        raise MissingDependency(what, package, extra) from exc
