"""Download a published catalog's receipts for ``receipts verify https://…``; the server is hostile.

Everything the server says is untrusted until the receipts verify, so nothing it says may choose where
a file lands or how much is read:

- ``catalog/index.json`` must have the shape ``generator.render`` writes; each model's ``receipt`` and
  ``page`` must be safe relative names (``receipts.paths``) under the catalog URL, and the receipt's
  folder name one safe segment, used once.
- Subject names come from the (still unverified) statement; each must be a safe relative name, or it is
  skipped and verification reports it.
- Files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` inside the caller's fresh private folder:
  nothing is overwritten, no link is followed, nothing lands outside it.
- Bytes are capped per file and per catalog, and every file has a deadline (a server that trickles one
  byte a second is cut off); redirects are followed only within the catalog URL.
"""

from __future__ import annotations

import base64
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receipts.documents import parse_json
from receipts.dsse import MAX_ENVELOPE_BYTES
from receipts.errors import InputError, UsageError
from receipts.paths import name_problem
from receipts.verify import FILE_KINDS  # the file subjects verify reads: the ones to download

__all__ = ["DEFAULT_LIMITS", "Limits", "fetch_catalog"]

MAX_MODELS = 100_000
MAX_INDEX_BYTES = 64 * 1024 * 1024
"""catalog/index.json: about 2 kB a model, so 100,000 models fit; parsed only within this bound."""


@dataclass(frozen=True)
class Limits:
    """How much a catalog download may read (``receipts verify URL --max-file-mb/--max-catalog-mb``)."""

    file_bytes: int = 256 * 1024 * 1024
    """One file (an examples log of a large run is tens of MB)."""
    catalog_bytes: int = 2 * 1024 * 1024 * 1024
    """Everything downloaded for one catalog."""
    seconds_per_file: float = 300.0
    """Wall-clock deadline for one file, however slowly the server sends it."""


DEFAULT_LIMITS = Limits()


class _SameCatalogRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only when it stays under the catalog URL."""

    def __init__(self, base: str):
        self.base = base

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not newurl.startswith(self.base):
            raise InputError(f"{req.full_url} redirects outside the catalog, to {newurl}", file=self.base)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Downloader:
    def __init__(self, url: str, limits: Limits):
        if not url.startswith(("https://", "http://")):
            raise UsageError("a catalog URL must start with https:// or http://", file=url)
        self.base = url if url.endswith("/") else url + "/"
        self.limits = limits
        self.total = 0
        self.opener = urllib.request.build_opener(_SameCatalogRedirects(self.base))

    def get(self, relative: str) -> bytes:
        problem = name_problem(relative)
        if problem is not None:
            raise InputError(f"the catalog names {relative!r}, which {problem}", file=self.base)
        target = urllib.parse.urljoin(self.base, urllib.parse.quote(relative, safe="/@:+"))
        if not target.startswith(self.base):
            raise InputError(f"{relative!r} points outside the catalog", file=self.base)
        deadline = time.monotonic() + self.limits.seconds_per_file
        cap = min(self.limits.file_bytes, self.limits.catalog_bytes - self.total)
        chunks: list[bytes] = []
        size = 0
        try:
            with self.opener.open(target, timeout=min(60.0, self.limits.seconds_per_file)) as response:
                while chunk := response.read1(64 * 1024):
                    size += len(chunk)
                    if size > cap:
                        raise self._too_big(target)
                    if time.monotonic() > deadline:
                        raise InputError(
                            f"{target} took longer than {self.limits.seconds_per_file:g} s",
                            file=self.base,
                            hint="the server is too slow or stalling; try again later",
                        )
                    chunks.append(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise InputError(
                f"could not fetch {target}: {exc}", file=self.base, hint="check the URL"
            ) from None
        self.total += size
        return b"".join(chunks)

    def _too_big(self, target: str) -> InputError:
        if self.limits.catalog_bytes - self.total < self.limits.file_bytes:
            what, flag = f"the catalog's {self.limits.catalog_bytes:,}-byte limit", "--max-catalog-mb"
        else:
            what, flag = f"the {self.limits.file_bytes:,}-byte limit per file", "--max-file-mb"
        return InputError(f"{target} goes past {what}", file=self.base, hint=f"raise it with {flag}")


def _write_new(folder: Path, name: str, data: bytes) -> Path:
    """Create ``folder/name`` (a safe relative name), never overwriting and never following a link."""
    path = folder
    for segment in name.split("/")[:-1]:
        path = path / segment
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            if path.is_symlink() or not path.is_dir():
                raise InputError(f"{name}: a segment of its path is not a folder", file=folder) from None
    path = path / name.split("/")[-1]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise InputError(f"the catalog names {name} twice", file=folder) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def _entries(index: Any, base: str) -> list[tuple[str, str, str]]:
    """(receipt path, page path, bundle folder name) per model, each checked before any download."""
    if not isinstance(index, dict) or not isinstance(index.get("models"), list):
        raise InputError("catalog/index.json is not a receipts catalog index", file=base)
    models = index["models"]
    if len(models) > MAX_MODELS:
        raise InputError(f"catalog/index.json lists more than {MAX_MODELS:,} models", file=base)
    out, seen = [], set()
    for number, model in enumerate(models):
        receipt = model.get("receipt") if isinstance(model, dict) else None
        page = model.get("page") if isinstance(model, dict) else None
        where = f"catalog/index.json models[{number}]"
        if not isinstance(receipt, str) or not isinstance(page, str):
            raise InputError(f"{where}: needs text fields receipt and page", file=base)
        page = page + "index.html" if page.endswith("/") else page
        for value in (receipt, page):
            problem = name_problem(value)
            if problem is not None:
                raise InputError(f"{where}: {value!r} {problem}", file=base)
        folder, _, leaf = receipt.rpartition("/")
        bundle = folder.rpartition("/")[2]
        if leaf != "receipt.json" or not bundle:
            raise InputError(f"{where}: {receipt!r} is not <folder>/receipt.json", file=base)
        if bundle in seen:
            raise InputError(f"{where}: a second model in the folder {bundle!r}", file=base)
        seen.add(bundle)
        out.append((receipt, page, bundle))
    return out


def _subject_names(envelope: bytes) -> list[str]:
    """The file subjects an (unverified) receipt names; verification says what is wrong with it later."""
    try:  # parse_json bounds depth and size; any problem is left to verification to report
        payload = base64.b64decode(parse_json(envelope, limit=MAX_ENVELOPE_BYTES)["payload"])
        statement = parse_json(payload, limit=MAX_ENVELOPE_BYTES)
        return [
            s["name"]
            for s in statement["subject"]
            if s["annotations"]["kind"] in FILE_KINDS and isinstance(s["name"], str)
        ]
    except (InputError, ValueError, KeyError, TypeError):
        return []


def fetch_catalog(url: str, into: Path, limits: Limits = DEFAULT_LIMITS) -> list[tuple[Path, str]]:
    """Download a published catalog's receipts (and the files they bind) into the empty folder ``into``.

    Returns ``(receipt path, page html)`` pairs; verification happens afterwards on the local copies.

    Raises:
        InputError: the index is malformed or names an unsafe path, a file cannot be fetched, or a limit
            or deadline is passed.
        UsageError: the URL is not http(s).
    """
    download = _Downloader(url, limits)
    where = f"{download.base}catalog/index.json"
    index = parse_json(download.get("catalog/index.json"), file=where, limit=MAX_INDEX_BYTES)
    out = []
    for receipt, page, bundle in _entries(index, download.base):
        data = download.get(receipt)
        local = into / bundle
        local.mkdir(mode=0o700)
        _write_new(local, "receipt.json", data)
        folder = receipt.rpartition("/")[0]
        for name in _subject_names(data):
            if name_problem(name) is None and name != "receipt.json":
                _write_new(local, name, download.get(f"{folder}/{name}"))
        html = download.get(page).decode("utf-8", errors="replace")
        out.append((local / "receipt.json", html))
    return out
