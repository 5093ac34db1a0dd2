"""File and folder digests (DESIGN §5): raw-byte sha256, and the model_signing v1.0 "files" rule.

Folder rule, bit-identical to ``model_signing.hashing.hash(path)`` (model_signing 1.1.1):
every regular file under the folder, keyed by its POSIX path relative to the folder, ordered by path
*components* (as ``PurePosixPath`` orders them, so ``a/b`` sorts before ``a-c``); per-file sha256 of
the raw bytes; root = sha256 of the concatenated raw 32-byte digests. A single file is a one-entry
manifest named ``.``. Top-level ``.git``, ``.github``, ``.gitattributes``, ``.gitignore`` and
``model.sig`` are ignored; symbolic links anywhere are refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from receipts.errors import InputError

__all__ = [
    "FOLDER_RULE",
    "IGNORED_NAMES",
    "WeightsDigest",
    "digest_weights",
    "root_of",
    "sha256_bytes",
    "sha256_file",
]

FOLDER_RULE = "model_signing/v1.0/files/sha256"
IGNORED_NAMES = frozenset({".git", ".github", ".gitattributes", ".gitignore", "model.sig"})
CHUNK = 4 * 1024 * 1024

# (path, size, mtime_ns, ctime_ns, inode) -> hex digest; ctime because a rewrite can restore mtime.
# In-process only: a cache on disk would be something
# an attacker could edit to make `verify` accept modified weights.
_cache: dict[tuple[str, int, int, int, int], str] = {}
_cache_lock = threading.Lock()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's raw bytes, streamed in 4 MiB chunks and cached by identity.

    Raises:
        InputError: the file cannot be read.
    """
    try:
        info = path.stat()
        key = (str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        digest = hashlib.sha256()
        # No bigger than the file: a fresh 4 MiB buffer costs more than hashing a small file.
        buffer = bytearray(min(CHUNK, info.st_size) or 1)
        view = memoryview(buffer)
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                digest.update(view[:count])
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=path) from exc
    hexdigest = digest.hexdigest()
    with _cache_lock:
        _cache[key] = hexdigest
    return hexdigest


@dataclass(frozen=True)
class WeightsDigest:
    """A folder's (or file's) per-file digests and the model_signing root digest."""

    root: str
    files: Mapping[str, str]
    rule: str = FOLDER_RULE


def _sort_key(relpath: str) -> tuple[str, ...]:
    return tuple(relpath.split("/"))


def root_of(files: Mapping[str, str]) -> str:
    """Root digest (hex) of a path -> hex digest mapping, in model_signing's order."""
    outer = hashlib.sha256()
    for name in sorted(files, key=_sort_key):
        outer.update(bytes.fromhex(files[name]))
    return outer.hexdigest()


def _refuse_symlink(path: Path) -> None:
    raise InputError(
        "is a symbolic link; weights digests refuse links",
        file=path,
        hint="copy the real file into the folder",
    )


def _list_files(folder: Path) -> list[str]:
    found: list[str] = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        here = Path(current)
        top = here == folder
        for name in list(dirs):
            if (here / name).is_symlink():
                _refuse_symlink(here / name)
            if top and name in IGNORED_NAMES:
                dirs.remove(name)
        for name in files:
            path = here / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                _refuse_symlink(path)
            if top and name in IGNORED_NAMES:
                continue
            if stat.S_ISREG(mode):
                found.append(path.relative_to(folder).as_posix())
    return found


def digest_weights(path: Path, *, workers: int | None = None) -> WeightsDigest:
    """Digest a weights folder or single file by the model_signing v1.0 files rule.

    Raises:
        InputError: the path is missing, is (or contains) a symbolic link, or cannot be read.
    """
    if path.is_symlink():
        _refuse_symlink(path)
    if path.is_file():
        files = {".": sha256_file(path)}
    elif path.is_dir():
        names = _list_files(path)
        count = workers or min(8, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=count) as pool:
            digests = list(pool.map(lambda n: sha256_file(path / n), names))
        files = dict(zip(names, digests, strict=True))
    else:
        raise InputError("weights path does not exist", file=path, hint="pass a folder or a file")
    ordered = {name: files[name] for name in sorted(files, key=_sort_key)}
    return WeightsDigest(root=root_of(ordered), files=ordered)
