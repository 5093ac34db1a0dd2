"""Hand mkdocs the generated pages' HTML without running it through Markdown.

The pages ``generator.render`` makes are Markdown only in name: a card page is headings (for the table of
contents) and, between them, raw HTML blocks made by the templates (every untrusted string in them escaped).
Python-Markdown passes a raw HTML block through unchanged, but to find where each block ends it feeds the
whole page to ``html.parser``, and mkdocs parses it once more for anchor ids: at 1,000 receipts that is
about 70% of the whole ``mkdocs build`` (43 MB of card HTML parsed twice, one core).

``lift`` replaces each raw HTML block that Markdown would pass through as it is by a placeholder paragraph,
and ``restore`` puts the block back into the HTML Markdown made. The receipts plugin does both for the pages
it generates (``on_page_markdown`` / ``on_page_content``), so a card page's HTML is what ``receipts
render`` writes and plain mkdocs would make of it, without the parse; other plugins never see the untrusted
card text as Markdown.

A block is lifted only when it is certainly raw HTML to Markdown: a run of lines between blank lines that
starts at the line start with a block-level tag and is a sequence of complete elements (each element's tag
balanced, by the same rule Markdown uses to end a raw block), with no comment, no ``<style>`` and no script or
other element whose content ``html.parser`` does not read as tags. The first block that starts with ``<``
and is not certain stops the lifting for the rest of the page (Markdown's own state from there on is left
to Markdown), as does Markdown text holding ``<`` or a code fence. Whitespace between lifted elements is the
only difference from Markdown's output, with one deliberate exception: a lifted block is never read as
Markdown, so a card's text that puts a code fence at a line start (```` ``` ````) stays text in its element
instead of Markdown's fenced-code pass turning the HTML around it into a code block.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

__all__ = ["LiftError", "lift", "new_token", "restore"]

BLOCK_TAGS = frozenset(
    {"div", "section", "details", "table", "p", "ul", "ol", "dl", "figure", "nav", "blockquote", "script"}
)
"""Tags a lifted element may start with: each is block-level to Python-Markdown (a test holds this)."""

TAB_LENGTH = 4
"""Python-Markdown's default ``tab_length`` (mkdocs does not change it)."""
_OPEN = re.compile(r"<([a-z][a-z0-9]*)(?=[ />])[^<>\n]*>")  # a start tag whole on its line
_UNSURE = re.compile(r"<!|<(?:style|textarea|title|xmp|iframe|noembed|noframes|noscript|plaintext)\b", re.I)
_SCRIPT = re.compile(r"<script\b")
_EMPTY_SCRIPT = re.compile(r"<script\b[^<>]*></script>")
_GAP = re.compile(r"(?:\n {0,3})?(?=<|\Z)")
_BLANKISH = re.compile(r"(?<=\n) +\n")
_FENCE = re.compile(r"^\s*(?:```|~~~)", re.M)
_TAG_RES: dict[str, re.Pattern[str]] = {}


class LiftError(Exception):
    """A placeholder is missing from, or repeated in, the HTML Markdown made: another plugin changed it."""


def new_token() -> str:
    """A fresh placeholder prefix: letters and digits only (Markdown leaves them alone), unguessable."""
    return f"RCLIFT{secrets.token_hex(16)}"


def _tag_re(tag: str) -> re.Pattern[str]:
    found = _TAG_RES.get(tag)
    if found is None:
        found = _TAG_RES[tag] = re.compile(rf"<(/?){tag}(?=[\s/>])")
    return found


def _elements(block: str) -> list[str] | None:
    """The complete block-level elements ``block`` is, back to back; ``None`` if it is anything else."""
    if _UNSURE.search(block):
        return None
    if len(_SCRIPT.findall(block)) != len(_EMPTY_SCRIPT.findall(block)):
        return None  # a script with content: html.parser reads it as text, not tags
    at = 0
    elements = []
    while at < len(block):
        start = _OPEN.match(block, at)
        if start is None or start.group(1) not in BLOCK_TAGS:
            return None
        depth = 0
        for tag in _tag_re(start.group(1)).finditer(block, at):
            depth += -1 if tag.group(1) else 1
            if depth == 0:
                break
        else:
            return None  # never closed in this block: Markdown's raw block would run past the blank line
        end = block.find(">", tag.end())
        if end < 0:
            return None
        gap = _GAP.match(block, end + 1)
        if gap is None:
            return None  # text after an element, or the next one indented as code: left to Markdown
        elements.append(block[at : end + 1])
        at = gap.end()
    return elements


def _normalized(text: str) -> str:
    """The text as Python-Markdown's first step leaves it (``NormalizeWhitespace``), so lifted blocks match.

    Markdown does this again to the lifted page, to no effect.
    """
    text = text.replace("\x02", "").replace("\x03", "").replace("\r\n", "\n").replace("\r", "\n")
    return _BLANKISH.sub("\n", text.expandtabs(TAB_LENGTH))


def lift(markdown: str, token: str) -> tuple[str, list[str]]:
    """The page with its certain raw HTML blocks replaced by placeholder paragraphs, and the blocks.

    ``token`` comes from :func:`new_token`. Blocks are runs of non-blank lines; front matter has already
    been taken off by mkdocs.
    """
    parts = re.split(r"(\n[ \t]*\n)", _normalized(markdown))
    chunks: list[str] = []
    for index in range(0, len(parts), 2):
        block = parts[index].lstrip("\n")
        if not block.strip():
            continue
        if block.startswith("<"):
            elements = _elements(block.rstrip("\n"))
            if elements is None:
                break
            parts[index] = f"{token}N{len(chunks)}E"
            # as Markdown writes raw blocks: one to a line, a newline kept after one a blank line follows
            blank_after = index + 1 < len(parts)
            chunks.append("\n".join(elements) + ("\n" if blank_after else ""))
        elif "<" in block or _FENCE.search(block):
            break  # Markdown text with a tag or a fence: what it opens, and all after it, is left to Markdown
    return "".join(parts), chunks


def restore(html: str, token: str, chunks: Sequence[str]) -> str:
    """Markdown's HTML with every placeholder replaced by its block, each exactly once.

    A placeholder is a paragraph of its own (``<p>...</p>``), or bare text where Markdown kept it inside
    raw HTML it did not lift.

    Raises:
        LiftError: a placeholder is missing or repeated (something between changed the page).
    """
    seen = [0] * len(chunks)
    pattern = re.compile(rf"<p>{token}N(\d+)E</p>|{token}N(\d+)E")

    def put(match: re.Match[str]) -> str:
        index = int(match.group(1) or match.group(2))
        if index >= len(chunks):
            raise LiftError(f"placeholder {index} is not one this page lifted")
        seen[index] += 1
        return chunks[index]

    out = pattern.sub(put, html).strip()  # as Markdown strips its whole output
    if any(count != 1 for count in seen):
        wrong = [i for i, count in enumerate(seen) if count != 1]
        raise LiftError(f"placeholder(s) {wrong} missing or repeated in the page Markdown made")
    return out
