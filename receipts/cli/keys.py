"""``receipts keygen``, and reading private keys (with their passphrase) for the commands that sign."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from receipts.cli.app import app, out
from receipts.errors import UsageError
from receipts.keys import ALGORITHMS, PASSPHRASE_ENV

if TYPE_CHECKING:
    from receipts.keys import PrivateKey

__all__ = ["keygen", "private_keys"]


def passphrase(path: Path, *, confirm: bool = False) -> bytes:
    """The passphrase for the key at ``path``: from the environment, else asked on the terminal."""
    env = os.environ.get(PASSPHRASE_ENV)
    if env is not None:
        return env.encode("utf-8")
    if not sys.stdin.isatty():
        raise UsageError(
            f"no passphrase: {PASSPHRASE_ENV} is unset and there is no terminal to ask on",
            hint=f"export {PASSPHRASE_ENV}=... or run in a terminal",
        )
    text = typer.prompt(f"Passphrase for {path}", hide_input=True, confirmation_prompt=confirm)
    return str(text).encode("utf-8")


def private_keys(paths: Sequence[Path]) -> list[PrivateKey]:
    """Load each private key, asking for a passphrase only for encrypted ones."""
    from receipts.documents import read_bytes
    from receipts.keys import load_private_key

    keys = []
    for path in paths:
        data = read_bytes(path, what="private key")
        needs = b"ENCRYPTED PRIVATE KEY" in data
        keys.append(load_private_key(path, passphrase(path) if needs else None))
    return keys


@app.command()
def keygen(
    out_stem: Annotated[Path, typer.Option("--out", help="DIR/NAME: writes NAME.key.pem and NAME.pub.pem.")],
    algorithm: Annotated[str, typer.Option(help=f"One of {', '.join(ALGORITHMS)}.")] = ALGORITHMS[0],
) -> None:
    """Generate a signing key pair (private key encrypted with a passphrase, mode 0600).

    Example: RECEIPTS_PASSPHRASE=... receipts keygen --out keys/release
    """
    if algorithm not in ALGORITHMS:
        raise UsageError(f"unknown algorithm {algorithm!r}", hint=f"use one of {', '.join(ALGORITHMS)}")
    if out_stem.is_dir():
        raise UsageError(
            "is a folder; --out takes DIR/NAME (the key files are NAME.key.pem and NAME.pub.pem)",
            file=out_stem,
            hint=f"e.g. --out {out_stem}/release",
        )
    from receipts.keys import generate, keypair_paths, write_keypair

    keypair_paths(out_stem)  # refuse a bad destination before asking for a passphrase
    key = generate(algorithm)
    private, public = write_keypair(key, out_stem, passphrase(out_stem, confirm=True))
    out.print(f"wrote {escape(str(private))} (private, 0600) and {escape(str(public))} (public)")
    out.print(f"keyid {key.public.keyid}")
    out.print(f"next: receipts trust init --publisher NAME --key {escape(str(public))} --out trust.json")
