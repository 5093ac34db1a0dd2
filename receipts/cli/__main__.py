"""``python -m receipts.cli``: the ``receipts`` console script."""

from receipts.cli.app import entry

entry()
