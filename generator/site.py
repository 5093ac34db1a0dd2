"""``receipts build``: verify every receipt, build the static site with mkdocs (strict), swap it into place.

The order is the point: nothing is deleted before the new site exists.

1. The mkdocs config is read and ``--out`` is checked: a non-empty folder that is not a previous receipts
   build (no ``MARKER`` file) is refused unless ``force`` (it may be someone's home folder).
2. Every receipt is verified (``generator.render.collect``); a failure stops here with the receipt, the
   failed check and exit 4, exactly as ``receipts render`` reports it. The plugin then renders from these
   verified entries instead of verifying again.
3. mkdocs builds into a fresh folder beside ``--out`` (``.<out>.building-*``), on a small generated config
   that ``INHERIT``s the chosen mkdocs.yml and points the receipts plugin at the receipts and trust root.
   Its warnings and errors are collected and reported (the build is strict).
4. Only then: the old ``--out`` is moved aside, the new folder renamed into its place, the old one removed.
   A failure at any step leaves the previous site as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from generator import mkdocs_plugin
from generator.render import collect, page_dir
from generator.sitecheck import check_built_site
from receipts.errors import InputError, ReceiptsError, UsageError, VerificationError
from receipts.output import check_folder, refused
from receipts.paths import tree_files
from receipts.resources import site_dir
from receipts.trust import TrustRoot
from receipts.verify import Report, VerifiedReceipt

__all__ = ["MARKER", "build_site", "default_config"]

MARKER = ".receipts-build"
"""A file every receipts build leaves at the top of its site, listing every file it wrote: ``--out``
holding exactly those files (and the marker) may be replaced without ``--force``."""
MARKER_FORMAT = "receipts.build-marker/v1"


def default_config() -> Path:
    """The catalog's default mkdocs config, ``site/mkdocs.yml`` (shipped in the wheel: no checkout needed)."""
    path = site_dir() / "mkdocs.yml"
    if not path.is_file():
        raise InputError(
            "the default mkdocs config is missing from the receipts installation",
            file=path,
            hint="reinstall receipts, or pass --config-file mkdocs.yml (theme: material)",
        )
    return path


def _read_config(path: Path) -> dict[str, Any]:
    from mkdocs.exceptions import ConfigurationError
    from mkdocs.utils.yaml import yaml_load

    try:
        with path.open("rb") as fh:
            parent = yaml_load(fh) or {}
    except FileNotFoundError:
        raise InputError("mkdocs config does not exist", file=path, hint="check --config-file") from None
    except IsADirectoryError:
        raise InputError("expected an mkdocs.yml file, found a folder", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the mkdocs config: {exc.strerror}", file=path) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else ""
        raise InputError(f"not valid YAML: {exc.problem or exc.context}", file=path, where=where) from None
    except (ConfigurationError, yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        detail = " ".join(
            str(exc).removeprefix("MkDocs encountered an error parsing the configuration file:").split()
        )
        raise InputError(f"not valid YAML: {detail}", file=path) from None
    if not isinstance(parent, dict):
        raise InputError("an mkdocs config is a YAML mapping (site_name: ..., theme: ...)", file=path)
    return parent


def _check_out(out: Path, force: bool, inputs: dict[str, Path]) -> None:
    check_folder(out, what="the built site")
    if out.is_symlink():
        raise UsageError("is a symbolic link; pass the real folder", file=out)
    target = out.resolve()
    for what, path in inputs.items():
        inside = path.is_dir() and target.is_relative_to(path.resolve())  # a site among the receipts
        if path.resolve().is_relative_to(target) or (what == "receipts" and inside):
            raise UsageError(
                f"holds or is inside the {what} ({path}); replacing it with the site would delete it",
                file=out,
                hint="build into a folder of its own, e.g. --out site-build/",
            )
    if out.is_dir() and any(out.iterdir()) and not force and not _previous_build(out):
        raise UsageError(
            "is a non-empty folder that is not a previous receipts build, exactly as built; "
            "refusing to replace it",
            file=out,
            hint="pass an empty or new folder, or --force to replace everything in it",
        )


def _previous_build(out: Path) -> bool:
    """``out`` holds exactly the files its ``MARKER`` lists: a receipts build nobody has added to since.

    An empty or planted marker does not count, nor does a build someone put other files into (a CNAME,
    a notes file): replacing those needs ``--force``.
    """
    marker = out / MARKER
    if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > 64 * 1024 * 1024:
        return False
    try:
        listed = json.loads(marker.read_bytes())
    except (ValueError, OSError):
        return False
    if not isinstance(listed, dict) or listed.get("format") != MARKER_FORMAT:
        return False
    regular, other = tree_files(out)
    return not other and set(regular) == {*listed.get("files", []), MARKER}


class _Collector(logging.Handler):
    """mkdocs' warnings and errors, to say what went wrong (its own message only says "Aborted")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def build_site(
    receipts_dir: Path,
    trust_path: Path,
    out: Path,
    *,
    root: TrustRoot,
    config_file: Path | None = None,
    force: bool = False,
    rederive: bool = True,
    reproductions: Path | None = None,
    reproducer_keys: Sequence[tuple[str, Path]] = (),
) -> int:
    """Build the site and swap it into ``out``; return how many receipts it publishes.

    Every receipt is verified first, its numbers re-derived from its evidence unless ``rederive`` is false.
    ``reproductions`` (a folder of reproduction statements, checked against ``reproducer_keys``: each
    a (name the pages show, public key file) pair) are
    verified with the receipts, before anything is built, and shown on their card pages.

    Raises:
        VerificationError: a receipt does not verify (nothing is built, ``out`` is untouched).
        UsageError: ``out`` is a file, a link, or a non-empty folder that no receipts build made.
        InputError: the config cannot be read, or mkdocs reports an error or a warning (the build is strict).
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    base = (config_file or default_config()).resolve()
    parent = _read_config(base)
    docs = (base.parent / str(parent.get("docs_dir", "docs"))).resolve()
    inputs = {"receipts": receipts_dir, "trust root": trust_path, "mkdocs config": base, "docs folder": docs}
    _check_out(out, force, inputs)
    root_bytes = trust_path.read_bytes()
    entries = collect(receipts_dir, root, root_bytes=root_bytes, rederive=rederive)
    plugin: dict[str, Any] = {
        "receipts_dir": str(receipts_dir.resolve()),
        "trust_root": str(trust_path.resolve()),
    }
    if reproductions is not None:
        from generator.reproductions import collect_reproductions, load_reproducer_keys

        collect_reproductions(reproductions, load_reproducer_keys(reproducer_keys), entries, root)
        plugin["reproductions"] = str(reproductions.resolve())
        plugin["reproducer_keys"] = [f"{name}={k.resolve()}" for name, k in reproducer_keys]
    target = out.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.building-"))
    except OSError as exc:
        raise refused(exc, target, what="the built site") from exc
    log = _Collector()
    mkdocs_log = logging.getLogger("mkdocs")
    try:
        with tempfile.TemporaryDirectory(prefix="receipts-build-") as tmp:
            child = Path(tmp) / "mkdocs.yml"
            config = {"INHERIT": str(base), "docs_dir": str(docs), "site_dir": str(staging)}
            child.write_text(yaml.safe_dump({**config, "plugins": {"receipts": plugin}}), "utf-8")
            mkdocs_log.addHandler(log)
            with mkdocs_plugin.prepared(receipts_dir, root, entries):
                try:
                    build(load_config(str(child), strict=True))
                except ReceiptsError:
                    raise
                except (MkDocsException, SystemExit, OSError, yaml.YAMLError) as exc:
                    said = "; ".join(dict.fromkeys(log.lines)) or str(exc)
                    raise InputError(
                        f"mkdocs build failed: {said}",
                        file=base,
                        hint="fix what mkdocs names; nothing was replaced",
                    ) from None
        _check_staged(staging, entries)
        _mark(staging)
        _swap(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        mkdocs_log.removeHandler(log)
    return len(entries)


def _check_staged(site: Path, entries: Sequence[VerifiedReceipt]) -> None:
    """The built site, before it replaces anything, holds what was verified and its pages show it.

    Each published bundle is byte for byte the verified receipt and subjects, nothing more (a theme or
    plugin cannot add, drop or rewrite a file in it), and ``verify SITE``'s page checks pass.

    Raises:
        VerificationError: naming what differs.
    """
    reports = []
    for entry in entries:
        folder = site / page_dir(entry) / entry.bundle_name
        expected = {"receipt.json": entry.envelope, **entry.files}
        regular, other = tree_files(folder) if folder.is_dir() else ([], [])
        wrong = sorted(set(regular) ^ set(expected)) + other
        wrong += [n for n in regular if n in expected and (folder / n).read_bytes() != expected[n]]
        if wrong:
            raise VerificationError(
                f"the built copy of {entry.bundle_name} differs from what verified: {', '.join(wrong)}",
                check="bundle",
                hint="a theme or plugin of the mkdocs config changed the bundle; nothing was replaced",
            )
        reports.append(Report(str(folder / "receipt.json"), list(entry.checks), entry.bundle_name, entry))
    check_built_site(site, reports)
    failed = [c for r in reports for c in r.checks if c.status == "fail"]
    if failed:
        raise VerificationError(
            f"the built site does not pass its own page checks: {failed[0].detail}",
            check=failed[0].name,
            hint="a theme or plugin of the mkdocs config changed the card pages; nothing was replaced",
        )


def _mark(staging: Path) -> None:
    """Leave the build marker listing every file, and give the folder the umask's mode (not 0700)."""
    marker = {
        "format": MARKER_FORMAT,
        "about": "a receipts build; the next build may replace it",
        "files": tree_files(staging)[0],
    }
    (staging / MARKER).write_text(json.dumps(marker, indent=0), "utf-8")
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp made it 0700; a site is published like any new folder


def _swap(new: Path, out: Path) -> None:
    """Put ``new`` at ``out``; the old ``out`` is moved aside first and removed only once ``new`` is there."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        old.rmdir()
        out.rename(old)
    try:
        new.rename(out)
    except OSError as exc:
        if old is not None:
            old.rename(out)
        raise refused(exc, out, what="the built site") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
