"""The catalog from 1,000 and 5,000 receipts: ``receipts build`` against a plain mkdocs build (issue #5).

Run: ``make bench`` (or ``.venv/bin/python bench/catalog_build.py [--quick] [--sizes 1000,5000]``).

Receipts: N signed bundles made here (P-256 key, ``tests/data/card_fake_teacher.yaml`` (examples/card.yaml
naming the teacher the run evaluated) renamed per model, each with the
``tests/data/run_minimal`` run), so every page has a card, a run, charts and a bundle to publish.
Two sides, each a fresh process, wall clock, the order alternating per round:

- ``receipts build``: verify every receipt, render, ``mkdocs build --strict`` through the receipts plugin
  (the repository's mkdocs.yml): what a publisher runs.
- ``plain mkdocs``: ``mkdocs build --strict`` of the *same* pages already written to a docs folder
  (``receipts render`` output, made untimed beforehand) with the receipts plugin removed (site/mkdocs.yml,
  what ``receipts build`` builds with, less the plugin, plus the scripts and stylesheet it adds): what any
  mkdocs site of those pages pays.

``receipts build`` hands mkdocs its generated HTML without running it through Markdown (generator/lift.py);
the plain side pays Python-Markdown's parse of that HTML. The comparison stays fair only while both sides
make the same pages, so after the rounds about 300 pages of every kind are compared byte for byte (a
difference stops the benchmark; ``pages_compared_byte_identical`` in the JSON).

The card pages' downloads (Hugging Face card, CycloneDX ML-BOM) are cached per verified envelope under
``$RECEIPTS_CACHE/exports`` (generator/exports.py); the bench points ``RECEIPTS_CACHE`` at a folder it
empties before each size, so the first ``receipts build`` of a size is cold (every export made) and later
ones warm (a rebuild of unchanged receipts); each time is labelled, and the JSON keeps both.

Targets: ratio <= 1.3, output <= 150 MB at 5,000 receipts; the largest page, the bytes per kind of output
and the size of the site as a gzip'd tar (what a Pages deployment uploads) are reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import machine
import yaml

REPO = machine.REPO
sys.path.insert(
    0, str(REPO)
)  # tests.generator.htmldom: the plain config and the page comparison the tests use
from tests.generator.htmldom import plain_config, site_differences  # noqa: E402


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 receipts, 1 round")
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "receipts-bench-catalog"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "catalog_build.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.rounds = "50", 1
    return args


def _make_receipts(folder: Path, count: int) -> Path:
    """``count`` signed receipts and their trust root (reused if already made)."""
    from receipts.keys import generate
    from receipts.sign import sign_receipt
    from receipts.trust import new_root

    done = folder / "done.json"
    if done.exists():
        return folder / "trust.json"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    key = generate()
    (folder / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    card = yaml.safe_load((REPO / "tests" / "data" / "card_fake_teacher.yaml").read_text("utf-8"))
    cards = folder / "cards"
    cards.mkdir()
    for i in range(count):
        card["model"]["name"] = f"bench-model-{i:05d}"
        card["model"]["tags"] = ["bench", f"family-{i % 20}"]
        path = cards / f"{i}.yaml"
        path.write_text(yaml.safe_dump(card), "utf-8")
        sign_receipt(path, [key], folder / "receipts", runs=[REPO / "tests" / "data" / "run_minimal"])
    done.write_text(json.dumps({"count": count}), "utf-8")
    return folder / "trust.json"


def _plain_config(work: Path, docs: Path) -> Path:
    """site/mkdocs.yml (what ``receipts build`` builds with) less the plugin, plus the plugin's scripts."""
    return plain_config(REPO / "site" / "mkdocs.yml", docs, work / "plain-mkdocs.yml")


def _same_pages(ours: Path, plain: Path, size: int) -> int:
    """Hold the two sides' pages to the same bytes (about 300, all kinds); return how many were compared.

    ``receipts build`` lifts its generated HTML out of Markdown (generator/lift.py); the comparison is only
    fair while the pages it makes are the ones plain mkdocs makes of the same Markdown.
    """
    every = max(1, (2 * size) // 300)
    problems = site_differences(ours, plain, every=every)
    if problems:
        raise SystemExit(f"the two sides built different pages: {'; '.join(problems[:3])}")
    return len(list(ours.rglob("*.html"))[::every])


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall clock and CPU seconds (user + system, the command and every process it waited for).

    CPU time is reported beside the wall clock because it barely moves when other work shares the
    machine, where the wall clock can double: on a busy machine compare the CPU ratio.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return took, cpu


def _size(folder: Path) -> tuple[int, int, str]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    pages = [p for p in files if p.name == "index.html"]
    largest = max(pages, key=lambda p: p.stat().st_size)
    return sum(p.stat().st_size for p in files), largest.stat().st_size, str(largest.relative_to(folder))


def _breakdown(folder: Path) -> dict[str, int]:
    """Bytes per kind of output: what a reader of the table needs to see where the size goes."""
    kinds = dict.fromkeys(
        ("card pages", "receipt bundles", "exports", "charts", "listings", "search index", "other"), 0
    )
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).parts
        size = path.stat().st_size
        if rel[0] == "models" and len(rel) >= 5:
            kinds["receipt bundles"] += size  # models/<name>/<version>/<name>@<version>/...
        elif rel[0] == "models" and len(rel) == 4 and path.name.endswith((".md.txt", ".cdx.json")):
            kinds["exports"] += size  # the Hugging Face card and the CycloneDX ML-BOM beside each page
        elif rel[0] == "models" and len(rel) == 4 and path.suffix == ".svg":
            kinds["charts"] += size
        elif rel[0] == "models" and len(rel) == 4:
            kinds["card pages"] += size
        elif rel[0] in ("tags", "catalog") or rel[:2] == ("models", "index.html"):
            kinds["listings"] += size
        elif rel[0] == "search":
            kinds["search index"] += size
        else:
            kinds["other"] += size
    return kinds


def _artifact_size(folder: Path) -> int:
    """The site as a gzip'd tar: about what actions/upload-pages-artifact uploads and Pages stores."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "artifact.tar.gz"
        with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
            tar.add(folder, arcname=".")
        return archive.stat().st_size


def main() -> None:
    """Make receipts, time both sides per size, print the table, write the JSON record."""
    threads = machine.pin_threads()
    args = _parse()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "RECEIPTS_SITE_URL": "http://127.0.0.1:8000/"}
    results: dict[str, Any] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        work = args.work_dir / f"n{size}"
        print(f"{size} receipts: signing (untimed, kept for reuse) ...", flush=True)
        trust = _make_receipts(work / "input", size)
        receipts = work / "input" / "receipts"
        docs = work / "docs"
        shutil.rmtree(docs, ignore_errors=True)
        shutil.copytree(REPO / "site" / "pages", docs)
        render = [str(bin_dir / "receipts"), "render", str(receipts), "--trust-root", str(trust)]
        subprocess.run(
            [*render, "--out", str(docs)],
            check=True, capture_output=True, env={**env, "RECEIPTS_CACHE": str(work / "render-cache")},
        )  # fmt: skip
        plain = _plain_config(work, docs)
        shutil.rmtree(work / "cache", ignore_errors=True)  # the first receipts build is cold
        env["RECEIPTS_CACHE"] = str(work / "cache")
        sides = {
            "receipts build": [str(bin_dir / "receipts"), "build", str(receipts), "--trust-root", str(trust),
                               "--out", str(work / "site-receipts")],
            "plain mkdocs": [str(bin_dir / "mkdocs"), "build", "--strict", "--quiet", "-f", str(plain),
                             "-d", str(work / "site-plain")],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        caches: list[str] = []
        for index in range(args.rounds):
            order = list(sides) if index % 2 == 0 else list(reversed(sides))
            for name in order:
                cache = ""
                if name == "receipts build":
                    caches.append("warm" if (work / "cache").exists() else "cold")
                    cache = f" ({caches[-1]} export cache)"
                took, cpu = _timed(sides[name], env)
                times[name].append(took)
                cpus[name].append(cpu)
                print(
                    f"  round {index + 1}/{args.rounds}: {name:<15} {took:8.2f} s (CPU {cpu:7.2f} s){cache}",
                    flush=True,
                )
        compared = _same_pages(work / "site-receipts", work / "site-plain", size)
        total, largest, largest_page = _size(work / "site-receipts")
        artifact = _artifact_size(work / "site-receipts")
        ours = statistics.median(times["receipts build"])
        floor = statistics.median(times["plain mkdocs"])
        results[str(size)] = {
            "receipts_build_s": times["receipts build"],
            "receipts_build_export_cache": caches,
            "plain_mkdocs_s": times["plain mkdocs"],
            "ratio": ours / floor,
            "receipts_build_cpu_s": cpus["receipts build"],
            "plain_mkdocs_cpu_s": cpus["plain mkdocs"],
            "cpu_ratio": statistics.median(cpus["receipts build"]) / statistics.median(cpus["plain mkdocs"]),
            "pages_compared_byte_identical": compared,
            "output_bytes": total,
            "output_breakdown_bytes": _breakdown(work / "site-receipts"),
            "artifact_gzip_bytes": artifact,
            "largest_page_bytes": largest,
            "largest_page": largest_page,
            "target_ratio": 1.3,
            "target_output_bytes": 150 * 10**6 if size == 5000 else None,
        }
        print(
            f"  {size}: receipts build {ours:.1f} s vs plain mkdocs {floor:.1f} s = {ours / floor:.2f}x "
            f"(CPU {results[str(size)]['cpu_ratio']:.2f}x); "
            f"output {total / 1e6:.1f} MB ({artifact / 1e6:.1f} MB as a gzip'd artifact); "
            f"largest page {largest / 1e3:.1f} kB ({largest_page})"
        )
    machine.write_results(
        args.out,
        {"benchmark": "catalog_build", "command": machine.command_line(), "quick": args.quick,
         "threads": threads, "sizes": results, "machine": machine.describe_machine()},
    )  # fmt: skip


if __name__ == "__main__":
    main()
