"""``receipts trust``: create, rotate and show the trust root verifiers pin."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.markup import escape

from receipts.cli.app import app, err, out
from receipts.cli.keys import private_keys
from receipts.errors import UsageError

if TYPE_CHECKING:
    from receipts.trust import TrustRoot

__all__ = ["trust_app"]

trust_app = typer.Typer(help="Manage the trust root: the publisher keys verifiers pin.", no_args_is_help=True)
app.add_typer(trust_app, name="trust")


def _root_from_bytes(data: bytes, *, source: Path) -> TrustRoot:
    from receipts.trust import trust_root_from_bytes

    return trust_root_from_bytes(data, source=source)


def _show_root(root: TrustRoot, path: Path) -> None:
    title = f"{root.publisher} trust root v{root.version}, threshold {root.threshold}"
    out.print(f"{escape(str(path))}: {escape(title)}")
    for keyid, key in root.keys.items():
        out.print(f"  {keyid} {key.public.algorithm} {key.status}")
    out.print(f"  pin: --trust-root-sha256 {root.sha256}")


@trust_app.command("init")
def trust_init(
    publisher: Annotated[str, typer.Option(help="Who signs with these keys.")],
    key: Annotated[list[Path], typer.Option(help="Public key file (NAME.pub.pem); repeatable.")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the trust root.")],
    threshold: Annotated[int, typer.Option(min=1, help="Distinct keys required per receipt.")] = 1,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Create version 1 of a trust root (pin it out of band: it is not signed).

    Example: receipts trust init --publisher "Acme ML" --key keys/release.pub.pem --out trust.json
    """
    from receipts.keys import load_public_key
    from receipts.output import check_file, write_file
    from receipts.trust import new_root

    check_file(out_path, what="the trust root", force=force)
    publics = [load_public_key(p) for p in key]
    distinct = len({p.keyid for p in publics})
    if threshold > distinct:
        raise UsageError(
            f"--threshold {threshold} is more than the {distinct} distinct key(s) given",
            hint="add --key for each signer, or lower --threshold",
        )
    data = new_root(publisher, publics, threshold=threshold)
    _root_from_bytes(data, source=out_path)  # refuse to write something verify would reject
    replacing = out_path.exists()
    write_file(out_path, data, what="the trust root", force=force)
    _show_root(_root_from_bytes(data, source=out_path), out_path)
    if replacing:  # --force: the old root is gone, and with it the key validity older receipts relied on
        err.print(
            f"note: replaced {escape(str(out_path))} with a new version 1: its keys are valid from now, so a "
            "receipt signed before now does not verify under it (keep the old root to verify those; to "
            "change keys and keep them, use `receipts trust add` / `retire` on the existing root)"
        )


def _update(
    trust_root: Path,
    sign_with: Sequence[Path],
    out_path: Path | None,
    edit: Callable[[dict[str, Any]], None],
) -> None:
    from receipts.output import check_file, write_file
    from receipts.trust import load_trust_root, sign_root

    old = load_trust_root(trust_root)
    target = out_path or trust_root
    check_file(target, what="the trust root")  # before a passphrase is asked or anything signed
    data = sign_root(old, None, private_keys(sign_with), edit=edit)
    write_file(target, data, what="the trust root")
    _show_root(_root_from_bytes(data, source=target), target)


def _find_key(signed: dict[str, Any], keyid: str) -> dict[str, Any]:
    for entry in signed["keys"]:
        if entry["keyid"] == keyid:
            return cast(dict[str, Any], entry)
    raise UsageError(f"no key {keyid} in the trust root", hint="see `receipts trust show`")


_SignWith = Annotated[
    list[Path], typer.Option("--sign-with", help="Private key of the current root; repeatable.")
]
_RootOpt = Annotated[Path, typer.Option("--trust-root", help="The current trust root file.")]
_OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write the new version here (default: in place).")
]


@trust_app.command("add")
def trust_add(
    trust_root: _RootOpt,
    key: Annotated[Path, typer.Option(help="Public key to add.")],
    sign_with: _SignWith,
    out_path: _OutOpt = None,
) -> None:
    """Add a key: writes version n+1 signed by keys of version n.

    Example: receipts trust add --trust-root trust.json --key new.pub.pem --sign-with release.key.pem
    """
    from receipts.keys import load_public_key

    public = load_public_key(key)

    def edit(signed: dict[str, Any]) -> None:
        if any(e["keyid"] == public.keyid for e in signed["keys"]):
            raise UsageError(f"key {public.keyid} is already in the trust root")
        signed["keys"].append(
            {
                "keyid": public.keyid,
                "algorithm": public.algorithm,
                "publicKey": public.pem(),
                "status": "active",
                "notBefore": signed["issuedAt"],
            }
        )

    _update(trust_root, sign_with, out_path, edit)


@trust_app.command("retire")
def trust_retire(
    trust_root: _RootOpt,
    keyid: Annotated[str, typer.Option(help="keyid to retire.")],
    sign_with: _SignWith,
    out_path: _OutOpt = None,
) -> None:
    """Retire a key (old receipts verify only with --allow-retired). Writes version n+1.

    Example: receipts trust retire --trust-root trust.json --keyid sha256:... --sign-with keys/new.key.pem
    """

    def edit(signed: dict[str, Any]) -> None:
        _find_key(signed, keyid)["status"] = "retired"

    _update(trust_root, sign_with, out_path, edit)


@trust_app.command("revoke")
def trust_revoke(
    trust_root: _RootOpt,
    keyid: Annotated[str, typer.Option(help="keyid to revoke.")],
    sign_with: _SignWith,
    out_path: _OutOpt = None,
) -> None:
    """Revoke a key (nothing it signed verifies any more). Writes version n+1.

    Example: receipts trust revoke --trust-root trust.json --keyid sha256:... --sign-with keys/new.key.pem
    """

    def edit(signed: dict[str, Any]) -> None:
        entry = _find_key(signed, keyid)
        entry["status"] = "revoked"
        entry["revokedAt"] = signed["issuedAt"]

    _update(trust_root, sign_with, out_path, edit)


@trust_app.command("update")
def trust_update(
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root (rewritten).")],
    new: Annotated[list[Path], typer.Argument(help="Newer versions, oldest first.")],
) -> None:
    """Move your pinned trust root forward; each version must be signed by the one before.

    Example: receipts trust update --trust-root pinned.json trust.v2.json trust.v3.json
    """
    from receipts.documents import read_bytes
    from receipts.output import check_file, write_file
    from receipts.trust import check_update, load_trust_root

    current = load_trust_root(trust_root)
    check_file(trust_root, what="the trust root")
    data = b""
    for path in new:
        data = read_bytes(path, what="trust root")
        candidate = _root_from_bytes(data, source=path)
        check_update(current, candidate)
        current = candidate
    write_file(trust_root, data, what="the trust root")
    _show_root(current, trust_root)


@trust_app.command("show")
def trust_show(path: Annotated[Path, typer.Argument(help="Trust root file.")]) -> None:
    """Print a trust root's keys and the sha256 to pin it with.

    Example: receipts trust show trust.json
    """
    from receipts.trust import load_trust_root

    _show_root(load_trust_root(path), path)
