"""The one exception tree of receipts, and the exit code each branch maps to.

    ReceiptsError                 exit 1  anything receipts refuses to do
    ├── UsageError                exit 2  the command line itself is wrong
    ├── InputError                exit 1  a file is missing, unreadable or malformed
    │   └── KeyFileError          exit 1  a key file is wrong (passphrase, kind, algorithm)
    ├── SchemaError               exit 3  a document fails its JSON Schema (every violation listed)
    ├── VerificationError         exit 4  a receipt, signature, digest or trust root does not check
    └── GateError                 exit 5  a release gate failed

Library code raises these; only ``receipts.cli`` turns them into exit codes and messages. Every
error carries the file it is about, where in it (JSON path or line), what is wrong, and
``diagnostics()`` says what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "EXTRAS",
    "GateError",
    "InputError",
    "KeyFileError",
    "MissingDependency",
    "ReceiptsError",
    "SchemaError",
    "UsageError",
    "VerificationError",
    "Violation",
    "install_hint",
]


class ReceiptsError(Exception):
    """Root of every error receipts raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, file: object = None, where: str = "", hint: str = ""):
        self.message = message
        self.file = str(file) if file is not None else ""
        self.where = where
        self.hint = hint
        super().__init__(self.summary())

    def summary(self) -> str:
        """One line: `file:where: message`."""
        place = self.file
        if self.where:
            place = f"{place}:{self.where}" if place else self.where
        return f"{place}: {self.message}" if place else self.message

    def diagnostics(self) -> str:
        """What happened and what to do next, for a human."""
        text = self.summary()
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


class UsageError(ReceiptsError):
    """The command line is wrong (conflicting or missing options)."""

    exit_code = 2


class InputError(ReceiptsError):
    """An input file is missing, unreadable or malformed."""


class KeyFileError(InputError):
    """A key file cannot be used: wrong passphrase, wrong kind, unsupported algorithm."""


@dataclass(frozen=True)
class Violation:
    """One schema violation: where (JSON path), what is wrong, and how to fix it."""

    path: str
    message: str
    hint: str = ""

    def render(self) -> str:
        """Format as an indented report line."""
        line = f"  {self.path}: {self.message}"
        return f"{line}\n      fix: {self.hint}" if self.hint else line


class SchemaError(ReceiptsError):
    """A document fails its JSON Schema; carries *every* violation, not just the first."""

    exit_code = 3

    def __init__(self, file: object, kind: str, violations: list[Violation]):
        self.kind = kind
        self.violations = violations
        count = len(violations)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"not a valid {kind}: {count} {noun}", file=file)

    def diagnostics(self) -> str:
        """Every violation with its JSON path and fix hint."""
        lines = [self.summary(), *(v.render() for v in self.violations)]
        lines.append(f"  fix: edit the file and run `receipts validate {self.file}` again")
        return "\n".join(lines)


class VerificationError(ReceiptsError):
    """A receipt does not verify. ``check`` names the failed step (e.g. ``signature``)."""

    exit_code = 4

    def __init__(self, message: str, *, check: str = "", file: object = None, hint: str = ""):
        self.check = check
        # verify attaches its per-check report (receipts.verify.Report) so callers can show it
        self.report: Any = None
        super().__init__(message, file=file, where="", hint=hint)


class GateError(ReceiptsError):
    """A release gate failed."""

    exit_code = 5


EXTRAS = {
    "torch": "runner",
    "transformers": "runner",
    "gguf": "runner",
    "accelerate": "runner",
    "ray": "ray",
    "pynvml": "gpu",
    "lm_eval": "bench",
    "datasketch": "overlap",
}
"""Optional dependency (top-level module) -> the pip extra that installs it (pyproject.toml)."""


def install_hint(extra: str) -> str:
    """How to install one of the project's extras (see pyproject.toml)."""
    hint = f"install it with `pip install 'receipts[{extra}]'`"
    return hint + (" (torch==2.13.0 first on a CPU-only machine)" if extra == "runner" else "")


class MissingDependency(ReceiptsError):
    """A feature needs a package of an extra that is not installed (exit 1)."""

    def __init__(self, what: str, package: str, extra: str):
        self.package, self.extra = package, extra
        super().__init__(f"{what} needs {package}, which is not installed", hint=install_hint(extra))
