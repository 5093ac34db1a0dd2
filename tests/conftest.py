"""Test-session hooks: the long poles start first, so two xdist workers overlap them with everything else."""

from __future__ import annotations

import pytest

LONG_POLES = ("tests/test_e2e.py",)
"""Files that take far longer than any other (the e2e small demo: ~10 min alone, ~16 beside another worker).

``make test`` runs two xdist workers a file at a time (``--dist loadfile --no-loadscope-reorder``), handing
files out in collection order; started last, the e2e file was the run's tail."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the long poles' tests to the front, keeping every file's own order."""
    first = {path: rank for rank, path in enumerate(LONG_POLES)}
    root = config.rootpath

    def rank(item: pytest.Item) -> int:
        try:
            path = item.path.relative_to(root).as_posix()
        except ValueError:
            return len(first)
        return first.get(path, len(first))

    items.sort(key=rank)
