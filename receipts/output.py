"""Where commands write: refuse a bad destination before any work, and turn every OS refusal into one message.

A destination is checked first (``check_file``, ``check_folder``): a folder where a file is wanted, a
file where a folder is wanted, a parent that is a file, or a folder nobody may write into is refused
before a key is generated, a model loaded or a receipt verified. Writes (``write_file``, ``make_folder``)
convert what the disk still says at the last moment (full, read-only, a race) into the same messages.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from receipts.errors import InputError, ReceiptsError, UsageError

__all__ = ["check_file", "check_folder", "make_folder", "refused", "write_file"]

_HINT = "choose another --out, or fix that folder's permissions"


def refused(exc: OSError, path: Path, *, what: str) -> ReceiptsError:
    """The error to raise (``from exc``) when writing ``what`` to ``path`` failed with ``exc``."""
    if exc.errno == errno.EISDIR:
        return _is_folder(path, what)
    if exc.errno == errno.ENOTDIR:
        parent = _first_non_folder(path) or path.parent
        return _parent_not_folder(path, parent)
    if exc.errno == errno.EEXIST:
        return UsageError("already exists", file=path, hint="pass --force to overwrite, or another --out")
    reason = exc.strerror or str(exc)
    return InputError(f"cannot write {what}: {reason}", file=path, hint=_HINT)


def check_file(path: Path, *, what: str, force: bool = True) -> None:
    """Refuse ``path`` as the place to write a file, before anything is computed.

    Raises:
        UsageError: ``path`` is a folder, or exists and ``force`` is off.
        InputError: a parent is not a folder, or the folder it would go into is not writable.
    """
    if path.is_dir():
        raise _is_folder(path, what)
    if not force and (path.exists() or path.is_symlink()):
        raise UsageError("already exists", file=path, hint="pass --force to overwrite, or another --out")
    if path.is_file() and not os.access(path, os.W_OK):  # read-only: the owner said not to change it
        raise InputError(f"cannot write {what}: Permission denied (the file is read-only)", file=path)
    _check_writable_parent(path, what)


def check_folder(path: Path, *, what: str) -> None:
    """Refuse ``path`` as a folder to write into (it may not exist yet), before anything is computed.

    Raises:
        UsageError: ``path`` exists and is not a folder.
        InputError: a parent is not a folder, or the folder cannot be written or created.
    """
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"is a file; pass a folder path for {what}",
            file=path,
            hint="pass a folder (one that does not exist yet is created), or move the file away",
        )
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"cannot write {what}: Permission denied", file=path, hint=_HINT)
        return
    _check_writable_parent(path, what)


def make_folder(path: Path, *, what: str) -> None:
    """``mkdir -p path``, with the failure as one message.

    Raises:
        UsageError: ``path`` is a file.
        InputError: a parent is not a folder, or the folder cannot be created.
    """
    check_folder(path, what=what)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno == errno.EEXIST:  # mkdir on an existing file: the folder we need is a file
            raise UsageError(f"is a file; pass a folder path for {what}", file=path) from exc
        raise refused(exc, path, what=what) from exc


def write_file(path: Path, data: bytes, *, what: str, force: bool = True, mode: int | None = None) -> None:
    """Write ``data`` to ``path``: atomically replacing it when ``force``, else only as a new file.

    With ``mode`` the file is created with exactly those permission bits (e.g. 0o600 for a private key):
    there is no moment when it exists with wider ones.

    Raises:
        UsageError: ``path`` is a folder, or exists and ``force`` is off.
        InputError: a parent is not a folder, or the disk refused the write.
    """
    check_file(path, what=what, force=force)
    make_folder(path.parent, what=what)
    if mode is None and force and path.is_file():
        mode = stat.S_IMODE(path.stat().st_mode) & 0o777  # a replaced file keeps its permissions
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    target = path.with_name(f".{path.name}.{os.getpid()}.tmp") if force else path
    created = False
    try:
        fd = os.open(target, flags, 0o600 if mode is not None else 0o666)
        created = True
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)  # exact bits, whatever the umask
            handle.write(data)
        if force:
            os.replace(target, path)
        created = False
    except OSError as exc:
        raise refused(exc, path, what=what) from exc
    finally:
        if created:
            target.unlink(missing_ok=True)


def _is_folder(path: Path, what: str) -> UsageError:
    return UsageError(
        f"is a folder; pass a file path for {what}", file=path, hint=f"e.g. --out {path}/{_example(what)}"
    )


def _example(what: str) -> str:
    for word, name in (("footprint", "footprint.json"), ("card", "README.md"), ("BOM", "bom.json")):
        if word in what:
            return name
    return "trust.json" if "trust" in what else "NAME"


def _parent_not_folder(path: Path, parent: Path) -> InputError:
    return InputError(
        f"parent {parent} is not a folder",
        file=path,
        hint=f"{parent} is a file; choose a path under a folder",
    )


def _first_non_folder(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a folder (``None`` if all are folders)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def _check_writable_parent(path: Path, what: str) -> None:
    blocker = _first_non_folder(path)
    if blocker is not None:
        raise _parent_not_folder(path, blocker)
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot write {what}: Permission denied", file=path, hint=_HINT)
