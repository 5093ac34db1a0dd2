"""``receipts render`` and ``receipts build``: verified receipts into catalog pages and a static site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from receipts.cli.app import Rederive, app, out

__all__ = ["build", "render"]

Reproductions = Annotated[
    Path | None,
    typer.Option(
        help="A folder of reproduction statements (verify --rerun --sign-with) to show on the card pages; "
        "each must verify against a --reproducer-key and name a receipt of the catalog."
    ),
]
ReproducerKey = Annotated[
    list[str] | None,
    typer.Option(
        help="NAME=PUB: a reproducer's public key you trust and the name the pages show for it (repeatable; "
        "never the publisher's key). The name a statement gives itself is shown only as self-declared.",
        metavar="NAME=PUB",
    ),
]


def _pinned(given: list[str] | None) -> list[tuple[str, Path]]:
    from generator.reproductions import parse_reproducer_key

    return [(name, Path(key)) for name, key in map(parse_reproducer_key, given or [])]


@app.command()
def render(
    receipts_dir: Annotated[Path, typer.Argument(help="A folder of receipt bundles (<name>@<version>/).")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Docs folder to write the pages into.")],
    trust_root_sha256: Annotated[
        str | None,
        typer.Option("--trust-root-sha256", help="Refuse the trust root unless its sha256 matches."),
    ] = None,
    rederive: Rederive = True,
    reproductions: Reproductions = None,
    reproducer_key: ReproducerKey = None,
) -> None:
    """Verify receipts and render their catalog pages as Markdown (for mkdocs, zensical or any engine).

    Writes models/<name>/<version>/index.md with the receipt bundle and charts beside it, the catalog
    (models/index.md, catalog/<k>/ past 1,000 models), tags/, buyer/, compare/ and catalog/index.json.
    A receipt that does not verify stops the render (exit 4).

    Example: receipts render receipts/ --trust-root trust.json --out docs/
    """
    from generator.render import collect, write
    from generator.render import render as render_pages
    from receipts.output import check_folder
    from receipts.trust import load_trust_root

    check_folder(out_dir, what="the rendered pages")
    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    root_bytes = trust_root.read_bytes()
    entries = collect(receipts_dir, root, root_bytes=root_bytes, rederive=rederive)
    shown = None
    if reproductions is not None:
        from generator.reproductions import collect_reproductions, load_reproducer_keys

        keys = load_reproducer_keys(_pinned(reproducer_key))
        shown = collect_reproductions(reproductions, keys, entries, root)
    result = render_pages(entries, root, root_bytes, reproductions=shown)
    write(result, out_dir)
    out.print(
        f"rendered {len(result.entries)} receipt(s) into {escape(str(out_dir))}: {len(result.pages)} pages"
    )


@app.command()
def build(
    receipts_dir: Annotated[Path, typer.Argument(help="A folder of receipt bundles (<name>@<version>/).")],
    trust_root: Annotated[Path, typer.Option("--trust-root", help="Your pinned trust root file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the built static site.")],
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config-file",
            help="mkdocs.yml to build with (default: site/mkdocs.yml, shipped with receipts).",
        ),
    ] = None,
    trust_root_sha256: Annotated[
        str | None,
        typer.Option("--trust-root-sha256", help="Refuse the trust root unless its sha256 matches."),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace --out even if it is a non-empty folder no receipts build made.")
    ] = False,
    rederive: Rederive = True,
    reproductions: Reproductions = None,
    reproducer_key: ReproducerKey = None,
) -> None:
    """Verify every receipt, build the static catalog with mkdocs-material (strict), then swap it into --out.

    Nothing in --out changes unless the whole build succeeds; a non-empty --out that is not a previous
    receipts build is refused without --force.

    Example: receipts build receipts/ --trust-root trust.json --out site-build/
    """
    from generator.site import build_site
    from receipts.trust import load_trust_root

    pinned = _pinned(reproducer_key)
    root = load_trust_root(trust_root, expected_sha256=trust_root_sha256)
    count = build_site(
        receipts_dir, trust_root, out_dir, root=root, config_file=config_file, force=force, rederive=rederive,
        reproductions=reproductions, reproducer_keys=pinned,
    )  # fmt: skip
    out.print(f"built {count} receipt page(s) into {escape(str(out_dir))}")
