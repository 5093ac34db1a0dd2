"""The one CLI: ``receipts`` with keygen, trust, validate, run, bench, overlap, sign, verify, render, ...

`receipts.cli.app` holds the Typer app and `main`, the one place errors become exit codes; each command
group lives in a module of its own and registers itself on the app when imported here (the order here is
the order ``receipts --help`` lists them). Command bodies parse options, call one library function and
print; heavy libraries are imported inside them, so ``receipts --help`` stays fast.
"""

from receipts.cli import keys, validate, sign, run, bench, overlap, catalog, verify, trust, export  # noqa: F401, I001
from receipts.cli import pack  # noqa: F401  (lm-eval import, issue #20)
from receipts.cli import quant_kld  # noqa: F401  (llama.cpp quantization fidelity, issue #21)
from receipts.cli.app import app, entry, main

__all__ = ["app", "entry", "main"]
