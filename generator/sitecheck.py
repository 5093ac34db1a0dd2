"""Check a built or published catalog's card pages against the receipts it publishes.

`verify_target` is what ``receipts verify TARGET`` calls: a receipt, a folder of receipts, a built site or
a published catalog's URL, each receipt verified and each card page held to its receipt.

``receipts verify SITE`` and ``receipts verify https://...`` verify every receipt first
(receipts/verify.py), then hold each card page to its receipt:

- page     the receipt the page names (``data-receipt``, ``data-receipt-sha256`` on its ``rc-verify`` box)
           is exactly the one published beside it;
- figures  every headline figure the page's HTML shows (``data-rc-figure="<key>"``) is the string
           generator/figures.py makes from the verified predicate, no key is missing and none is unknown.

Pages are untrusted HTML: they are read with ``html.parser``, never with patterns. The receipt's own
bundle folder (exactly its signed subjects) is held by ``verify_receipt``'s ``bundle`` check.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.figures import figures
from generator.remote import DEFAULT_LIMITS, Limits, fetch_catalog
from receipts.digests import sha256_bytes
from receipts.trust import TrustRoot
from receipts.verify import Check, Report, find_receipts, verify_many

if TYPE_CHECKING:
    from receipts.formats.statement import Predicate

__all__ = [
    "CardPage",
    "catalog_pages",
    "check_built_site",
    "check_figures",
    "check_page",
    "check_published_pages",
    "read_page",
    "verify_target",
]

FIGURE = "data-rc-figure"
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
_MAX_LISTED = 10


@dataclass(frozen=True)
class CardPage:
    """What a card page's HTML claims: its verification box's attributes and its marked figures."""

    attrs: dict[str, str]
    figures: list[tuple[str, str]]  # (key, the element's text, stripped), in page order


@dataclass
class _Open:
    """A figure element being read: its key, its text so far, how many of its elements are still open."""

    key: str
    parts: list[str]
    depth: int


class _PageReader(HTMLParser):
    """The first ``.rc-verify`` element's attributes (as ``querySelector`` finds it) and every figure."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.box: dict[str, str] | None = None
        self.figures: list[tuple[str, str]] = []
        self._open: list[_Open] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if self.box is None and "rc-verify" in values.get("class", "").split():
            self.box = values
        void = tag in _VOID
        for figure in self._open:
            figure.depth += 0 if void else 1
        if FIGURE in values:
            self._open.append(_Open(values[FIGURE], [], 0 if void else 1))
            self._finish(lambda f: f.depth <= 0)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag("wbr", attrs)  # ``<x/>``: read as opening nothing, like a void element

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID:
            for figure in self._open:
                figure.depth -= 1
            self._finish(lambda f: f.depth <= 0)

    def handle_data(self, data: str) -> None:
        for figure in self._open:
            figure.parts.append(data)

    def close(self) -> None:
        super().close()
        self._finish(lambda f: True)  # unclosed at the end of the document: the text so far

    def _finish(self, done: Callable[[_Open], bool]) -> None:
        self.figures += [(f.key, "".join(f.parts).strip()) for f in self._open if done(f)]
        self._open = [f for f in self._open if not done(f)]


def read_page(text: str) -> CardPage | None:
    """The claims of a card page's HTML, or ``None`` when it is not a card page (no ``rc-verify`` box)."""
    if "rc-verify" not in text:  # most pages of a catalog; skip parsing them
        return None
    reader = _PageReader()
    reader.feed(text)
    reader.close()
    return None if reader.box is None else CardPage(reader.box, reader.figures)


def _read_file(page: Path) -> CardPage | None:
    return read_page(page.read_text("utf-8", errors="replace"))


def catalog_pages(folder: Path, *, workers: int | None = None) -> list[tuple[Path, CardPage]]:
    """The card pages of a built catalog under ``folder``, each with what its HTML claims.

    Parsing is most of a large site's page check (Python's html.parser, a few ms a page): from 64 pages on
    the pages are read one process per core (at most 8), as ``generator.render.collect`` verifies receipts.
    """
    if not folder.is_dir():
        return []
    paths = sorted(folder.rglob("index.html"))
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1 and len(paths) >= 64:
        with ProcessPoolExecutor(workers) as pool:
            read = list(pool.map(_read_file, paths, chunksize=32))
    else:
        read = [_read_file(page) for page in paths]
    return [(page, claims) for page, claims in zip(paths, read, strict=True) if claims is not None]


def check_page(folder: Path, page: Path, attrs: Mapping[str, str]) -> tuple[Path | None, Check]:
    """A page may only show a receipt the site publishes: the sha256 it names must be that file's.

    Returns the receipt the page names (``None`` if it names none inside ``folder``) and the check.
    """
    where = page.relative_to(folder).as_posix()
    name, version = attrs.get("data-name", ""), attrs.get("data-version", "")
    target = (page.parent / attrs.get("data-receipt", "")).resolve()
    if not target.is_relative_to(folder.resolve()) or not target.is_file():
        return None, Check("page", "fail", f"{where} names a receipt the site does not publish")
    if target.parent.name != f"{name}@{version}":
        shows = target.parent.name
        return target, Check("page", "fail", f"{where} is for {name}@{version} but shows {shows}")
    if attrs.get("data-receipt-sha256", "") != sha256_bytes(target.read_bytes()):
        detail = f"{where} was built from another receipt than the one published beside it"
        return target, Check("page", "fail", detail)
    return target, Check("page", "pass", f"{where} names exactly this receipt (sha256)")


def check_figures(
    where: str,
    shown: Sequence[tuple[str, str]],
    predicate: Predicate,
    files: Mapping[str, bytes] | None = None,
) -> Check:
    """Every figure a page shows is the signed one; every signed figure is shown; no other key is.

    ``predicate`` (and ``files``, the signed subjects' bytes) must come from a receipt that verified: the
    page is held to it, not the reverse.
    """
    signed = figures(predicate, files)
    problems = []
    for key, text in shown:
        if key not in signed:
            problems.append(f"{key!r} is not a figure of this receipt (the page shows {text!r})")
        elif text != signed[key]:
            problems.append(f"{key} shows {text!r} but the receipt signs {signed[key]!r}")
    keys = {key for key, _ in shown}
    missing = [key for key in signed if key not in keys]
    problems += [f"{key} is not shown (the receipt signs {signed[key]!r})" for key in missing]
    if problems:
        more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        return Check("figures", "fail", f"{where}: " + "; ".join(problems[:_MAX_LISTED]) + more)
    return Check("figures", "pass", f"{where} shows its {len(signed)} headline figure(s) as signed")


def _held_to_receipt(where: str, claims: CardPage, report: Report) -> Check | None:
    """The figures check of a page whose receipt verified (``None`` when it did not: it already fails).

    The figures come from the statement ``verify_receipt`` verified, never from the file read again; if
    those bytes are not the ones the page names, the receipt changed after it verified.
    """
    if not report.ok:
        return None
    verified = report.verified
    if verified is None or sha256_bytes(verified.envelope) != claims.attrs.get("data-receipt-sha256"):
        return Check("figures", "fail", f"{where}: the receipt changed after it verified; verify again")
    return check_figures(where, claims.figures, verified.predicate, verified.files)


def check_built_site(folder: Path, reports: list[Report]) -> None:
    """Hold every card page under ``folder`` to the receipt it names; checks go into ``reports``.

    A page's checks join the report of the receipt it shows; a page naming no published receipt gets a
    report of its own (so it fails visibly).
    """
    by_path = {Path(r.receipt).resolve(): r for r in reports}
    shown_ok: set[Path] = set()
    for page, claims in catalog_pages(folder):
        shown, check = check_page(folder, page, claims.attrs)
        holder = by_path.get(shown) if shown else None
        if holder is None:
            holder = Report(receipt=str(page))
            reports.append(holder)
        holder.checks.append(check)
        held = _held_to_receipt(page.relative_to(folder).as_posix(), claims, holder)  # None: page failed
        if held is not None:
            holder.checks.append(held)
        if shown is not None and check.status == "pass":
            shown_ok.add(shown)
    _every_receipt_has_its_page(folder, reports, shown_ok)


def _every_receipt_has_its_page(folder: Path, reports: list[Report], shown: set[Path]) -> None:
    """A published receipt whose card page is gone, or lost its verification box, fails.

    Otherwise a page with the box removed would never be read, and could show any number it likes.
    A built site is recognised by its ``catalog/index.json``; receipts in the published layout
    (``models/<name>/<version>/<name>@<version>/``) are held to it in any folder.
    """
    site = (folder / "catalog" / "index.json").is_file()
    root = folder.resolve()
    for report in list(reports):
        receipt = Path(report.receipt).resolve()
        if not receipt.is_relative_to(root) or receipt.name != "receipt.json" or receipt in shown:
            continue
        parts = receipt.relative_to(root).parts
        published = len(parts) == 5 and parts[0] == "models" and parts[3] == f"{parts[1]}@{parts[2]}"
        if not (site or published):
            continue
        page = "/".join(parts[:3]) + "/index.html" if published else "a card page"
        report.checks.append(
            Check("page", "fail", f"no card page shows this receipt with its verification box ({page})")
        )


def check_published_pages(pages: Sequence[tuple[Path, str]], reports: list[Report]) -> None:
    """Hold each fetched page to its receipt; checks go into ``reports``.

    ``pages`` holds ``(the local copy of a receipt, the HTML of its page)`` as ``fetch_catalog`` returns them.
    """
    for receipt, text in pages:
        owner = next(r for r in reports if Path(r.receipt) == receipt)
        claims = read_page(text)
        named = claims.attrs.get("data-receipt-sha256") if claims else None
        if claims is None or named != sha256_bytes(receipt.read_bytes()):
            owner.checks.append(Check("page", "fail", "the page names another receipt"))
            continue
        owner.checks.append(Check("page", "pass", "the page names exactly this receipt (sha256)"))
        held = _held_to_receipt(f"the page of {receipt.parent.name}", claims, owner)
        if held is not None:
            owner.checks.append(held)


def verify_target(
    target: str, root: TrustRoot, *, limits: Limits = DEFAULT_LIMITS, **options: Any
) -> list[Report]:
    """Verify every receipt at ``target`` and hold each card page there to its receipt.

    ``target`` is a receipt.json, a receipt folder, a folder of receipts, a built site, or the
    ``https://`` URL of a published catalog (downloaded within ``limits`` into a fresh private folder that
    is removed afterwards; nothing is written anywhere else). ``options`` go to `verify_many`. Failed
    receipts come back as failing reports; only unusable input raises.
    """
    if target.startswith(("https://", "http://")):
        with tempfile.TemporaryDirectory(prefix="receipts-catalog-") as download:
            into = Path(download)
            pages = fetch_catalog(target, into, limits)
            reports = verify_many(find_receipts(into), root, **options)
            check_published_pages(pages, reports)
            return reports
    path = Path(target)
    reports = verify_many(find_receipts(path), root, **options)
    if path.is_dir():  # a built catalog: each page names a receipt the site publishes, shows its figures
        check_built_site(path, reports)
    return reports
