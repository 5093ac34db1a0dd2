"""Publishing an eval pack inside a receipt bundle, bound by the same digest the runs record.

A run binds its pack by the DESIGN §5 folder digest (model_signing's files rule: sorted POSIX paths, per-file
sha256, root over the raw digests). When the pack's data licence permits redistribution, ``receipts sign``
adds to the bundle:

- ``packs/<pack-id>.manifest.json``  every file of the pack folder: path -> sha256, and their root, which
  must equal the pack digest the runs record (a weights-manifest document, the same rule);
- ``packs/<pack-id>/<path>``         the pack's data files, byte for byte: only inert data (``DATA_SUFFIXES``:
  YAML, JSON, JSON Lines, text, CSV), so nothing published from a pack is a page or a script; other files
  (a README.md) are bound by the manifest alone.

``receipts verify`` checks each published file against the manifest and the manifest against the signed
pack digest, and that the published ``pack.yaml`` (required) has a licence that permits publishing. Which
licences permit redistribution is one decision, `pack_redistributable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from receipts.digests import digest_weights, root_of
from receipts.documents import load_document, parse_json, parse_yaml
from receipts.errors import InputError, ReceiptsError
from receipts.paths import name_problem, read_regular

if TYPE_CHECKING:
    from receipts.formats import Statement

__all__ = [
    "DATA_SUFFIXES",
    "PackFiles",
    "judge_problems",
    "manifest_name",
    "manifest_problems",
    "pack_file_name",
    "pack_redistributable",
    "published_judge_problems",
    "published_pack_problem",
    "read_pack",
    "split_pack_file",
]

DATA_SUFFIXES = frozenset({".yaml", ".yml", ".json", ".jsonl", ".txt", ".csv", ".tsv"})
"""The pack files a bundle publishes: data a browser shows as text, never a page (.html, .md, .svg)."""

MAX_PACK_FILE_BYTES = 256 * 1024 * 1024


def pack_redistributable(license_expression: str) -> tuple[bool, str]:
    """Whether a pack's data licence (an SPDX expression) permits publishing the pack, and why.

    The reviewed licence table decides (`receipts.licences.permits`): the licence must permit
    redistribution *and* commercial use, because a catalog may be run commercially (a marketplace), and a
    non-commercial licence (CC-BY-NC-4.0) permits sharing only for non-commercial purposes. ``A AND B``
    needs every part to allow it, ``A OR B`` one of them; ``WITH`` exceptions, ids not in the table and
    unreadable expressions are unknown, and unknown is not redistributable (never permissive).
    """
    from receipts.licences import permits

    expression = " ".join(str(license_expression).split())
    for permission in ("redistribution", "commercial_use"):
        verdict, reasons = permits(expression, permission)
        if verdict != "yes":
            words = permission.replace("_", " ")
            why = "; ".join(reasons) or f"licence {expression!r}: {words} {verdict}"
            return False, f"{words}: {verdict} ({why})"
    return True, f"{expression} permits redistribution, commercial use included (licence table)"


def manifest_name(pack_id: str) -> str:
    """The bundle name of a pack's manifest: ``packs/<pack-id>.manifest.json``."""
    return f"packs/{pack_id}.manifest.json"


def pack_file_name(pack_id: str, path: str) -> str:
    """The bundle name of a pack file: ``packs/<pack-id>/<path>``."""
    return f"packs/{pack_id}/{path}"


def split_pack_file(name: str) -> tuple[str, str] | None:
    """``(pack id, path in the pack)`` of a pack-file subject name, or ``None`` when it is not one."""
    head, _, rest = name.partition("/")
    pack_id, _, path = rest.partition("/")
    if head != "packs" or not pack_id or not path:
        return None
    return pack_id, path


@dataclass(frozen=True)
class PackFiles:
    """A pack folder read for publishing: identity, licence, every file's digest and the data files' bytes."""

    id: str
    version: str
    license: str
    root: str
    digests: Mapping[str, str]
    published: Mapping[str, bytes]
    withheld: tuple[str, ...]
    judge: Any = None  # pack.yaml's judge section (receipts.formats.pack.JudgeSection), if any


def read_pack(folder: Path) -> PackFiles:
    """Digest a pack folder and read the files a bundle may publish (links refused, names checked).

    Raises:
        InputError: the folder or its ``pack.yaml`` is missing or malformed, holds a link, or a data file
            has a name a bundle cannot hold.
    """
    from receipts import schemas
    from receipts.formats import PackDocument

    yaml_path = folder / "pack.yaml"
    _, value = load_document(yaml_path, what="pack.yaml")
    schemas.validate(value, "pack", file=yaml_path)
    pack = PackDocument.parse(value, file=yaml_path)
    digest = digest_weights(folder)
    published: dict[str, bytes] = {}
    withheld = []
    for path in digest.files:
        # a receipt.json inside a bundle would be found as a receipt of its own (receipts.verify)
        if Path(path).suffix.lower() not in DATA_SUFFIXES or Path(path).name == "receipt.json":
            withheld.append(path)
            continue
        problem = name_problem(pack_file_name(pack.id, path))
        if problem is not None:
            raise InputError(
                f"pack file {path!r} cannot be published: its name {problem}",
                file=folder / path,
                hint="rename the file, or sign with --no-pack to bind the pack by digest only",
            )
        published[path] = read_regular(folder, path, limit=MAX_PACK_FILE_BYTES)
    return PackFiles(
        pack.id, pack.version, pack.license, digest.root, digest.files, published, tuple(withheld), pack.judge
    )


def judge_problems(pack: PackFiles, runs: Sequence[tuple[str, Any]]) -> list[str]:
    """Each judged run of ``pack`` (by digest) against the pack's judge files and section.

    ``runs``: (name, `receipts.formats.Results`). See `receipts.judged.judge_pack_problems`.
    """
    from receipts.judged import judge_pack_problems

    problems = []
    for name, results in runs:
        if results.pack.digest == f"sha256:{pack.root}":
            problems += judge_pack_problems(results.judge, pack.digests, pack.judge, where=name)
    return problems


def published_judge_problems(files: Mapping[str, bytes], runs: Sequence[tuple[str, Any]]) -> list[str]:
    """`judge_problems` for each pack a bundle publishes (its manifest, and pack.yaml when published).

    ``files`` are the verified subject bytes, whose pack manifests `published_pack_problem` has checked.
    """
    from receipts.formats import PackDocument, WeightsManifest

    problems = []
    for name, results in runs:
        manifest_file = manifest_name(results.pack.id)
        if results.judge is None or manifest_file not in files:
            continue
        manifest = WeightsManifest.parse(
            parse_json(files[manifest_file], file=manifest_file), file=manifest_file
        )
        if manifest.root != results.pack.digest:
            continue
        yaml_name = pack_file_name(results.pack.id, "pack.yaml")
        section = None
        if yaml_name in files:
            section = PackDocument.parse(parse_yaml(files[yaml_name], file=yaml_name), file=yaml_name).judge
        digests = {k: v.removeprefix("sha256:") for k, v in manifest.files.items()}
        root = manifest.root.removeprefix("sha256:")
        pack = PackFiles(results.pack.id, results.pack.version, "", root, digests, {}, (), section)
        problems += judge_problems(pack, [(name, results)])
    return problems


def published_pack_problem(statement: Statement, files: Mapping[str, bytes]) -> str | None:
    """Why a statement's published pack files are not the packs it binds (``None`` when they are).

    Each pack-file subject belongs to a pack subject of the statement, each such pack has exactly one
    manifest (``packs/<id>.manifest.json``), whose root is the signed pack digest and which holds every
    published file with the digest it was signed with. ``files`` are the verified subject bytes.
    """
    from receipts.formats import WeightsManifest

    packs = {s.name: s.digest.sha256 or "" for s in statement.subjects("pack")}
    published: dict[str, dict[str, str]] = {}
    for subject in statement.subjects("pack-file"):
        ref, where = subject.annotations.pack or "", split_pack_file(subject.name)
        if ref not in packs or where is None or not ref.startswith(f"pack:{where[0]}@"):
            return f"{subject.name}: published for a pack the receipt does not bind ({ref})"
        published.setdefault(ref, {})[where[1]] = subject.digest.sha256 or ""
    manifested = set()
    for subject in statement.subjects("pack-manifest"):
        ref = subject.annotations.pack or ""
        if ref not in packs or subject.name != manifest_name(ref.removeprefix("pack:").partition("@")[0]):
            return f"{subject.name}: not the manifest of a pack the receipt binds ({ref})"
        if ref in manifested:
            return f"{subject.name}: a second manifest of {ref}"
        manifested.add(ref)
        try:
            manifest = WeightsManifest.parse(
                parse_json(files[subject.name], file=subject.name), file=subject.name
            )
        except ReceiptsError as exc:
            return f"{subject.name}: {exc.summary()}"
        problems = manifest_problems(packs[ref], manifest.files, manifest.root, published.get(ref, {}))
        problem = problems[0] if problems else _licence_problem(ref, published.get(ref, {}), files)
        if problem:
            return f"published pack {ref.removeprefix('pack:')}: " + "; ".join(problems or [problem])
    orphans = sorted(set(published) - manifested)
    return f"pack files published without a pack manifest: {', '.join(orphans)}" if orphans else None


def _licence_problem(ref: str, published: Mapping[str, str], files: Mapping[str, bytes]) -> str | None:
    """Why a published pack may not be published: no ``pack.yaml``, or a licence that forbids it.

    ``receipts sign`` publishes a pack (always with its ``pack.yaml``) only when `pack_redistributable`
    allows its licence; a hand-made statement is held to the same rule. ``pack.yaml`` is in the manifest,
    so its licence is the licence of the pack the runs used.
    """
    from receipts import schemas
    from receipts.formats import PackDocument

    pack_id, _, version = ref.removeprefix("pack:").partition("@")
    if "pack.yaml" not in published:
        return "published without its pack.yaml, so its licence cannot be checked"
    name = pack_file_name(pack_id, "pack.yaml")
    try:
        value = parse_yaml(files[name], file=name)
        schemas.validate(value, "pack", file=name)
        pack = PackDocument.parse(value, file=name)
    except ReceiptsError as exc:
        return exc.summary()
    if (pack.id, pack.version) != (pack_id, version):
        return f"{name} is {pack.id}@{pack.version}, not the pack it is published as"
    allowed, why = pack_redistributable(pack.license)
    return None if allowed else f"its licence does not permit publishing it: {why}"


def manifest_problems(
    pack_digest: str, manifest_files: Mapping[str, str], manifest_root: str, published: Mapping[str, str]
) -> list[str]:
    """Why a signed pack manifest and published pack files do not give ``pack_digest`` (hex), if they do not.

    ``manifest_files``: path -> ``sha256:<hex>``; ``published``: path -> the published file's hex sha256.
    """
    files = {k: v.removeprefix("sha256:") for k, v in manifest_files.items()}
    problems = []
    total = root_of(files)
    if manifest_root != f"sha256:{total}":
        problems.append("its files do not add up to its root")
    if total != pack_digest:
        problems.append(f"its root sha256:{total} is not the signed pack digest sha256:{pack_digest}")
    for path, sha256 in sorted(published.items()):
        if path not in files:
            problems.append(f"{path} is published but not in the pack manifest")
        elif files[path] != sha256:
            problems.append(f"{path} differs from the pack manifest")
    return problems
