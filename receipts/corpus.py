"""Reading a distillation corpus for the overlap check: bounded, streamed, and refusing hostile files.

A corpus file is JSON Lines (one document per line: the string values of the chosen ``fields``, or of every
field) or plain text (one document per paragraph: consecutive non-blank lines). Each file is opened once,
without following a symbolic link and without waiting on a FIFO, must be a regular file of at most
``max_bytes``, and is hashed from the very bytes that are parsed (the sha256 bound into ``overlap.json``
is the sha256 of what was checked). Refused, each with one message naming the file and line: a link, a
FIFO or device, a file over the size cap, a line over ``max_line`` bytes, a NUL byte (a binary file),
bytes that are not UTF-8, a JSON line that is not an object, a chosen field that is missing or not text.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from receipts.documents import parse_json
from receipts.errors import InputError

__all__ = [
    "MAX_CORPUS_BYTES",
    "MAX_LINE_BYTES",
    "CorpusFile",
    "Document",
    "corpus_format",
    "read_corpus",
    "unique_names",
]

MAX_CORPUS_BYTES = 4 * 1024**3
"""The largest corpus file read by default (``--max-bytes``): a distillation corpus of a few GB."""
MAX_LINE_BYTES = 16 * 1024 * 1024
"""The longest line read (a JSON Lines row or a line of text), so one line cannot exhaust memory."""
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

CorpusFormat = Literal["jsonl", "text"]


@dataclass(frozen=True)
class Document:
    """One corpus document: its text and where it starts (``corpus.jsonl:12``)."""

    where: str
    text: str


@dataclass
class CorpusFile:
    """What was read of one corpus file: filled in as its documents are consumed."""

    path: Path
    format: CorpusFormat
    fields: tuple[str, ...] | None
    name: str = ""
    sha256: str = ""
    bytes: int = 0
    documents: int = 0
    _hash: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or self.path.name


def corpus_format(path: Path, wanted: str = "auto") -> CorpusFormat:
    """``jsonl`` or ``text``: ``wanted``, or for ``auto`` from the file name (``.jsonl``/``.ndjson``)."""
    if wanted in ("jsonl", "text"):
        return "jsonl" if wanted == "jsonl" else "text"
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "text"


def _open(path: Path, max_bytes: int) -> BinaryIO:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) or path.is_symlink():
            raise InputError(
                "is a symbolic link; the corpus is read only from regular files, never through a link",
                file=path,
                hint="pass the file the link points to",
            ) from None
        if exc.errno == errno.ENOENT:
            raise InputError("corpus file does not exist", file=path, hint="check the path") from None
        raise InputError(f"cannot read the corpus file: {exc.strerror}", file=path) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise InputError(f"is {kind}", file=path, hint="pass a JSON Lines or plain text file")
    if info.st_size > max_bytes:
        os.close(fd)
        raise InputError(
            f"corpus file is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit",
            file=path,
            hint="split the corpus into several files, or raise --max-bytes",
        )
    return os.fdopen(fd, "rb", buffering=1 << 20)


def _lines(source: CorpusFile, max_bytes: int, max_line: int) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line, hashing and bounding the bytes as they are read."""
    path = source.path
    source._hash = hashlib.sha256()
    with _open(path, max_bytes) as handle:
        number = 0
        while raw := handle.readline(max_line + 1):
            number += 1
            source.bytes += len(raw)
            source._hash.update(raw)
            if len(raw) > max_line:
                raise InputError(
                    f"line is longer than {max_line:,} bytes",
                    file=path,
                    where=str(number),
                    hint="a corpus document is one line of JSON Lines or a paragraph of text; split it",
                )
            if source.bytes > max_bytes:  # the file grew while it was read
                raise InputError(f"corpus file grew past the {max_bytes:,}-byte limit", file=path)
            if b"\x00" in raw:
                raise InputError(
                    "holds a NUL byte: this is a binary file, not text",
                    file=path,
                    where=str(number),
                    hint="pass the corpus as JSON Lines or UTF-8 text",
                )
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"is not UTF-8 (byte {exc.start} of the line)",
                    file=path,
                    where=str(number),
                    hint="convert the corpus to UTF-8",
                ) from None
            yield number, text
    source.sha256 = source._hash.hexdigest()


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, in document order (keys are labels, not text)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))


def _jsonl_text(source: CorpusFile, number: int, line: str) -> str:
    where = f"{source.path}:{number}"
    try:
        row = parse_json(line.encode("utf-8"), file=where, limit=None)
    except InputError as exc:
        raise InputError(
            f"not a JSON line: {exc.message}",
            file=source.path,
            where=str(number),
            hint="each line of a .jsonl corpus is one JSON object (or pass --format text)",
        ) from None
    if not isinstance(row, dict):
        raise InputError(
            f"is a JSON {type(row).__name__}, not an object",
            file=source.path,
            where=str(number),
            hint="each line of a .jsonl corpus is one JSON object",
        )
    if source.fields is None:
        return " ".join(_strings(row))
    parts: list[str] = []
    for name in source.fields:
        value = row.get(name)
        text = isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        if not text:
            raise InputError(
                f"has no field {name!r}" if name not in row else f"field {name!r} is not text (or text list)",
                file=source.path,
                where=str(number),
                hint="choose the text fields with --field (default: every string value)",
            )
        parts.extend([value] if isinstance(value, str) else list(value or ()))
    return " ".join(parts)


def read_corpus(
    source: CorpusFile, *, max_bytes: int | None = None, max_line: int | None = None
) -> Iterator[Document]:
    """The documents of one corpus file, streamed; ``source`` holds its sha256 and counts once consumed.

    ``max_bytes`` and ``max_line`` default to `MAX_CORPUS_BYTES` and `MAX_LINE_BYTES`.

    Raises:
        InputError: the file is a link, not a regular file, too large, binary, not UTF-8, has a line over
            ``max_line`` bytes, or (JSON Lines) a line that is not an object with the chosen text fields.
    """
    max_bytes = MAX_CORPUS_BYTES if max_bytes is None else max_bytes
    max_line = MAX_LINE_BYTES if max_line is None else max_line
    paragraph: list[str] = []
    start = size = 0
    for number, line in _lines(source, max_bytes, max_line):
        if source.format == "jsonl":
            if line.strip():
                source.documents += 1
                yield Document(f"{source.name}:{number}", _jsonl_text(source, number, line))
            continue
        if line.strip():
            if not paragraph:
                start, size = number, 0
            paragraph.append(line)
            size += len(line)
            if size > max_line:
                raise InputError(
                    f"a paragraph is longer than {max_line:,} bytes",
                    file=source.path,
                    where=str(start),
                    hint="separate paragraphs with a blank line",
                )
        elif paragraph:
            source.documents += 1
            yield Document(f"{source.name}:{start}", " ".join(paragraph))
            paragraph = []
    if paragraph:
        source.documents += 1
        yield Document(f"{source.name}:{start}", " ".join(paragraph))


def unique_names(sources: Sequence[CorpusFile]) -> None:
    """Refuse two corpus files that would be listed under one name (each is listed by its file name).

    Raises:
        InputError: two files share a file name.
    """
    seen: dict[str, Path] = {}
    for source in sources:
        if source.name in seen:
            raise InputError(
                f"two corpus files are both named {source.name!r} ({seen[source.name]} and {source.path})",
                file=source.path,
                hint="overlap.json lists each corpus file by its name: rename one",
            )
        seen[source.name] = source.path
