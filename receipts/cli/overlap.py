"""``receipts overlap``: which eval items occur in a distillation corpus (n-grams, MinHash): overlap.json."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from receipts.cli.app import app, out
from receipts.errors import UsageError

__all__ = ["overlap"]


class CorpusFormat(StrEnum):
    """How a corpus file is read."""

    auto = "auto"
    jsonl = "jsonl"
    text = "text"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


@app.command()
def overlap(
    pack: Annotated[Path, typer.Argument(help="The eval pack folder (or its pack.yaml).")],
    corpus: Annotated[
        list[Path], typer.Argument(help="Distillation corpus files (JSON Lines or plain text).")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write overlap.json.")],
    field: Annotated[
        list[str] | None,
        typer.Option(help="JSON Lines: a text field to read; repeatable (default: every string value)."),
    ] = None,
    corpus_format: Annotated[
        CorpusFormat,
        typer.Option("--format", help="auto: .jsonl/.ndjson as JSON Lines, anything else as plain text."),
    ] = CorpusFormat.auto,
    ngram: Annotated[int, typer.Option(help="Words per n-gram (13: lm-eval's and GPT-3's rule).")] = 13,
    minhash: Annotated[
        bool, typer.Option(help="Also find near-duplicates with MinHash LSH (needs datasketch).")
    ] = True,
    minhash_threshold: Annotated[
        float, typer.Option(help="Jaccard similarity at which an item is a near-duplicate.")
    ] = 0.8,
    num_perm: Annotated[int, typer.Option(help="MinHash permutations.")] = 128,
    max_bytes: Annotated[
        int | None, typer.Option(help="Largest corpus file read, in bytes (default 4 GiB).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print overlap.json to stdout as well.")] = False,
) -> None:
    """Check an eval pack's items against a distillation corpus; write overlap.json for `sign --overlap`.

    An item overlaps when one of its word 13-grams (its prompt inputs followed by its gold answer, normalised
    as lm-eval's decontamination does) occurs in a corpus document, when its whole input (if shorter than 13
    words) does, or when MinHash finds a corpus document at least 0.8 similar (Jaccard, word 3-grams).

    Example: receipts overlap packs/capitals-mc corpus.jsonl --field question --out overlap.json
    """
    from receipts.corpus import CorpusFile
    from receipts.corpus import corpus_format as format_of
    from receipts.output import check_file, write_file
    from receipts.overlap import MinHashSettings, check_overlap
    from runner.eval.overlap import pack_items  # lazily: the kernel reaches the runner only through the CLI

    if out_file.suffix.lower() != ".json":
        raise UsageError(f"--out {out_file} should be a .json file", hint="e.g. --out overlap.json")
    for source in [pack, pack / "pack.yaml", *corpus]:
        if _same_file(source, out_file):
            raise UsageError(f"--out {out_file} is one of the inputs", hint="write overlap.json elsewhere")
    check_file(out_file, what="overlap.json", force=force)
    if max_bytes is not None and max_bytes < 1:
        raise UsageError("--max-bytes must be at least 1")
    settings = MinHashSettings(threshold=minhash_threshold, num_perm=num_perm) if minhash else None
    identity, items = pack_items(pack)
    fields = tuple(field) if field else None
    sources = [CorpusFile(path, format_of(path, corpus_format.value), fields) for path in corpus]
    document = check_overlap(identity, items, sources, n=ngram, minhash=settings, max_bytes=max_bytes)
    data = (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    write_file(out_file, data, what="overlap.json", force=force)
    if as_json:
        out.print(escape(data.decode("utf-8")), end="")
        return
    files = ", ".join(f"{c['name']} (sha256 {c['sha256'][7:19]}…)" for c in document["corpus"])
    out.print(
        f"{document['items_overlapping']} of {document['items_checked']} items of "
        f"{escape(identity['id'])}@{escape(identity['version'])} overlap {escape(files)}"
        f"{_by_match_type(document['items'], ngram)}"
    )
    checked = "MinHash near-duplicates" if settings else "MinHash not run (near-duplicates not checked)"
    out.print(f"  checked: {ngram}-grams, whole inputs shorter than {ngram} words, {checked}")
    for item in document["items"][:20]:
        why = [f"{item['ngram_matches']} n-gram(s)"] if item["ngram_matches"] else []
        why += ["whole input"] if item["whole_input"] else []
        why += [f"MinHash {item['minhash']['jaccard']}"] if item["minhash"] else []
        out.print(f"  {escape(item['id'])}: {', '.join(why)}")
    if len(document["items"]) > 20:
        out.print(f"  … and {len(document['items']) - 20} more (see {escape(str(out_file))})")
    shown = escape(str(out_file))
    out.print(f"wrote {shown}; bind it with: receipts sign --overlap {shown} ...")


def _by_match_type(items: list[dict[str, Any]], ngram: int) -> str:
    """How the listed items match, counted by match type (an item may match in more than one way).

    The card page words each item the same way: ``N-gram(s)``, ``whole input``, ``MinHash``.
    """
    counts = [
        (sum(1 for i in items if i["ngram_matches"]), f"by {ngram}-grams"),
        (sum(1 for i in items if i["whole_input"]), f"as a whole input (shorter than {ngram} words)"),
        (sum(1 for i in items if i["minhash"]), "by MinHash"),
    ]
    parts = [f"{count} {how}" for count, how in counts if count]
    return f": {', '.join(parts)}" if parts else ""
