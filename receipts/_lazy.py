"""Package names imported on first use (PEP 562): ``import receipts`` stays cheap, the API stays flat."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, homes: Mapping[str, Sequence[str]], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose public ``names`` live in ``homes``.

    ``homes`` maps a module to the names it defines; a name is imported from its module the first time it
    is asked for, and all of that module's names are then kept in ``namespace`` (the package's globals),
    so a function named like its module (``generator.render.render``) wins over the submodule.
    """
    home = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module)
        namespace.update({n: getattr(imported, n) for n in homes[module]})
        return namespace[name]

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(home))

    return __getattr__, __dir__
