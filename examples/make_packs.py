"""Generate the bundled packs' items and the demo's training split from templates (issue #22).

    python examples/make_packs.py            # packs/<id>/data/items.jsonl, examples/train/<id>.jsonl
    python examples/make_packs.py --check    # exit 1 if a committed file differs from what this makes
    python examples/make_packs.py --out DIR  # writes under DIR instead (DIR/packs/..., DIR/train/...)

Deterministic under ``--seed`` (default 0): the committed files are this script's output, and CI checks it.
See ``examples/packgen/__init__.py`` for the conventions each pack's generator follows.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from packgen import PackData, jsonl

ROOT = Path(__file__).resolve().parent.parent


def generators() -> dict[str, object]:
    """Pack id -> its module's ``build``; a module not written yet is skipped."""
    import importlib

    found: dict[str, object] = {}
    for name in ("capitals", "clauses", "probes"):
        try:
            module = importlib.import_module(f"packgen.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"packgen.{name}":
                raise
            continue
        found[module.PACK_ID] = module.build
    return found


def outputs(data: PackData, root: Path) -> dict[Path, str]:
    """The files one pack's data becomes, under ``root``."""
    return {
        root / "packs" / data.pack_id / "data" / "items.jsonl": jsonl(data.eval_items),
        root / "examples" / "train" / f"{data.pack_id}.jsonl": jsonl(data.train_items),
    }


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) every pack's generated files; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--out", type=Path, default=ROOT, help="root to write under")
    parser.add_argument("--pack", action="append", help="only this pack id (repeatable)")
    args = parser.parse_args(argv)
    stale = []
    for pack_id, build in generators().items():
        if args.pack and pack_id not in args.pack:
            continue
        data: PackData = build(args.seed)  # type: ignore[operator]
        counts = Counter(str(item.get("source")) for item in data.eval_items)
        n_eval, n_train = len(data.eval_items), len(data.train_items)
        print(f"{pack_id}: {n_eval} eval items {dict(counts)}, {n_train} train rows")
        for path, text in outputs(data, args.out).items():
            if args.check:
                if not path.is_file() or path.read_text("utf-8") != text:
                    stale.append(path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, "utf-8")
    if stale:
        for path in stale:
            print(f"stale: {path} differs from what examples/make_packs.py makes", file=sys.stderr)
        print("fix: python examples/make_packs.py (then commit the files)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
