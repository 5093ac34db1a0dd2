"""Names that come from signed or remote documents, checked before they touch the disk.

A subject name in a statement, a receipt path in a catalog index, a folder named after a model: each is
hostile until checked. A *safe relative name* is a POSIX path relative to a folder that cannot leave it
or alias another name: non-empty segments of ``A-Z a-z 0-9 . _ @ + -`` only (the set verify.js accepts,
so the CLI and the browser agree), no ``.`` or ``..`` segment, at most ``MAX_NAME`` characters. Every name is
spelled exactly one way, so two spellings can never reach one file (``./card.yaml`` is refused, not
normalised: the signed name is the one name).

Files under a bundle are opened segment by segment with ``O_NOFOLLOW``: a symbolic link anywhere on the
path is refused rather than followed (a link to ``~/.ssh`` must never be published).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from pathlib import Path

from receipts.errors import InputError

__all__ = [
    "MAX_NAME",
    "name_problem",
    "read_regular",
    "tree_files",
]

MAX_NAME = 512
_SAFE = re.compile(r"[A-Za-z0-9._@+-]+(/[A-Za-z0-9._@+-]+)*")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a safe relative name, or ``None`` when it is one."""
    if not isinstance(name, str) or not name:
        return "is empty or not text"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    if unicodedata.normalize("NFC", name) != name:
        return "is not in Unicode NFC form"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "holds a control character (NUL, newline, ...)"
    if "\\" in name:
        return "holds a backslash (names are POSIX paths)"
    if name.startswith("/"):
        return "is absolute"
    segments = name.split("/")
    if any(s in ("", ".", "..") for s in segments):
        return "has an empty, '.' or '..' segment"
    if not _SAFE.fullmatch(name):
        return "holds a character outside A-Z a-z 0-9 . _ @ + - (the set verify.js accepts too)"
    return None


def read_regular(folder: Path, name: str, *, limit: int | None = None) -> bytes:
    """The bytes of ``folder/name``, a regular file reached without following any symbolic link.

    ``name`` must be a safe relative name. ``folder`` itself is the caller's choice and may be a link.

    Raises:
        InputError: the name is unsafe; the file is missing, a link (on any segment), not a regular file,
            unreadable, or larger than ``limit``.
    """
    problem = name_problem(name)
    if problem:
        raise InputError(f"unsafe name {name!r}: {problem}", file=folder)
    segments = name.split("/")
    directory = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, directory)
    except OSError as exc:
        raise InputError(f"cannot open the folder ({exc.strerror})", file=folder) from None
    try:
        for index, segment in enumerate(segments):
            last = index == len(segments) - 1
            # O_NONBLOCK: opening a FIFO planted in place of a file must not wait for a writer
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) if last else directory
            child = _step(fd, segment, flags, folder, name)
            os.close(fd)
            fd = child
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{name} is not a regular file", file=folder / name)
        if limit is not None and info.st_size > limit:
            raise InputError(f"{name} is larger than the {limit:,}-byte limit", file=folder / name)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _step(parent: int, segment: str, flags: int, folder: Path, name: str) -> int:
    try:
        return os.open(segment, flags | _NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or _is_link(parent, segment):
            raise InputError(
                f"{name}: a symbolic link is on its path; receipts never follow links",
                file=folder / name,
                hint="replace the link with the signed file itself",
            ) from None
        if exc.errno == errno.ENOENT:
            raise InputError(f"{name}: missing", file=folder / name) from None
        if exc.errno == errno.ENOTDIR:
            raise InputError(f"{name}: a segment of its path is not a folder", file=folder / name) from None
        raise InputError(f"{name}: cannot read ({exc.strerror})", file=folder / name) from None


def _is_link(parent: int, segment: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(segment, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def tree_files(folder: Path) -> tuple[list[str], list[str]]:
    """Every entry under ``folder``, without following links: (regular files, everything else).

    Both lists hold POSIX names relative to ``folder``; "everything else" holds symbolic links, sockets,
    FIFOs and devices (folders themselves are walked, not listed).
    """
    regular: list[str] = []
    other: list[str] = []
    for here, dirs, files in os.walk(folder, followlinks=False):
        base = Path(here)
        for entry in sorted(dirs):
            if (base / entry).is_symlink():
                other.append((base / entry).relative_to(folder).as_posix())
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
        for entry in sorted(files):
            path = base / entry
            rel = path.relative_to(folder).as_posix()
            mode = path.lstat().st_mode
            (regular if stat.S_ISREG(mode) else other).append(rel)
    return regular, other
