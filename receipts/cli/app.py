"""The ``receipts`` application: the Typer app, its consoles, and the one place errors become exit codes.

Exit codes: 0 ok · 1 error · 2 usage · 3 schema validation failed · 4 verification failed · 5 gate failed
· 130 interrupted. ``--verbose`` re-raises for a traceback. Command modules (one per command group)
register themselves on `app`; ``receipts.cli`` imports them all.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from receipts._version import __version__
from receipts.errors import EXTRAS, MissingDependency, ReceiptsError

__all__ = ["Rederive", "app", "entry", "err", "main", "missing_dependency", "out", "shown"]

Rederive = Annotated[
    bool,
    typer.Option(
        help="Re-derive every signed number (metrics, CIs, retention, gate, summaries, quantization) from "
        "the signed examples and footprints; a receipt whose numbers differ fails (exit 4). "
        "--no-rederive checks signatures and bindings only (faster on large catalogs)."
    ),
]
"""``--rederive/--no-rederive`` of every command that verifies (on by default, DESIGN §11)."""

app = typer.Typer(
    name="receipts",
    help="Signed, verifiable receipts for distilled models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_INVISIBLE = {0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
"""Bidi marks, embeddings, overrides and isolates: they reorder what a terminal shows around them."""


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code in _INVISIBLE else char


def shown(text: object) -> str:
    r"""Untrusted text for a console line: control and bidi characters escaped (``\x1b``), markup escaped.

    A statement or file may carry ESC sequences (colour, cursor moves, a cleared screen, a terminal title)
    or a right-to-left override; printed as is they would rewrite what the reader sees.
    """
    return escape("".join(map(_visible, str(text))))


# emoji=False: text from files and paths is printed as is (``items.jsonl:100:`` is not an emoji code)
out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
_state = {"verbose": False}


def _version(value: bool) -> None:
    if value:
        out.print(f"receipts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Signed, verifiable receipts for distilled models."""
    _state["verbose"] = verbose


def _interrupted(argv: Sequence[str] | None) -> int:
    words = list(argv) if argv is not None else sys.argv[1:]
    if {"run", "bench"} & set(words[:3]):
        err.print("interrupted: finished work is kept; rerun the same command with --resume to continue")
    else:
        err.print("interrupted")
    return 130


_OS_HINT = "check that path and its permissions; --verbose shows where it failed"


def _os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    return f"{' -> '.join(names)}: {reason}" if names else reason


def missing_dependency(exc: ModuleNotFoundError) -> ReceiptsError | None:
    """The one-line error for an optional dependency that is not installed (None: not an optional one)."""
    module = (exc.name or "").partition(".")[0]
    extra = EXTRAS.get(module)
    return None if extra is None else MissingDependency("this command", module, extra)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; the one place errors become exit codes."""
    try:
        result = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except ReceiptsError as exc:
        if _state["verbose"]:
            raise
        err.print(f"[red]error[/red]: {escape(exc.diagnostics())}")
        return exc.exit_code
    except ModuleNotFoundError as exc:  # an optional dependency (an extra) that is not installed
        error = missing_dependency(exc)
        if error is None or _state["verbose"]:
            raise
        err.print(f"[red]error[/red]: {escape(error.diagnostics())}")
        return error.exit_code
    except OSError as exc:  # the net under every specific handler: still one line, never a traceback
        if _state["verbose"]:
            raise
        err.print(f"[red]error[/red]: {escape(_os_error(exc))}")
        err.print(f"  fix: {_OS_HINT}")
        return 1
    except (KeyboardInterrupt, typer.Abort):
        return _interrupted(argv)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors from the parser: wrong/missing options
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        return int(getattr(exc, "exit_code", 2))
    if result == 130:  # typer turns Ctrl-C into a silent Exit(130) and returns its code
        return _interrupted(argv)
    return result if isinstance(result, int) else 0


_UNUSED_FORMAT_LIBRARIES = ("rfc3987_syntax", "isoduration")
"""Optional libraries jsonschema imports, when installed, to check formats no receipts schema uses (iri,
duration). rfc3987_syntax builds a grammar at import (~1 s); the console script keeps them out."""


def entry() -> None:
    """The ``receipts`` console script: `main` in a process of its own, exiting with its code.

    The process is the CLI's alone, so it can keep jsonschema from importing format libraries the
    schemas never use (``receipts verify`` starts in ~0.3 s instead of ~1.5 s). `main`, called as a
    library function, leaves the interpreter as it found it.
    """
    if "jsonschema" not in sys.modules:
        for name in _UNUSED_FORMAT_LIBRARIES:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "import fails"
    sys.exit(main())
