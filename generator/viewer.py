"""The per-example viewer: one page per signed run, every row of its examples log beside the pack's inputs.

Made only from a verified receipt (`receipts.verify.VerifiedReceipt`): the run's signed ``examples.jsonl``
and, when the bundle publishes the pack (receipts.packfiles), the pack's items read from its verified files.
Where the pack is not published a row shows "input not published" and the prompt's signed sha256.

Each row is a plain JSON object of strings, numbers and booleans (`ViewerRow`): the first `PAGE_ROWS` rows
are rendered into the page's HTML (it works with JavaScript off), all rows are published next to it as
``rows-<k>.json`` pages that site/assets/viewer.js loads to filter and page. Every text is capped at
`MAX_TEXT` characters with a note, so a 1 MB prompt cannot make a 1 MB table cell.

Definitions the filters use (stated on the page):
- a role is *right* on a row when its score is the full score (1); *wrong* when it has a lower score;
- *student wrong, teacher right*: the teacher is right and the student wrong on the row;
- *disagreement*: the row's signed ``agreement.student`` is false (student's answer differs from teacher's);
- *slices*: the scorecard's own (receipts.derive): ``all``, ``<field>=<label>`` and ``critical`` over the
  original prompts, ``variant=<name>`` over that variant's rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from receipts.documents import parse_yaml
from receipts.errors import InputError
from receipts.evidence import examples_rows

if TYPE_CHECKING:
    from receipts.formats import Card
    from receipts.verify import VerifiedReceipt

__all__ = ["MAX_TEXT", "PAGE_ROWS", "ViewerPage", "failure_mode_links", "viewer_pages"]

PAGE_ROWS = 50
"""Rows per page: the first page is in the HTML, every page in ``rows-<k>.json``."""
MAX_TEXT = 2000
"""Characters of one text (an input field, a gold answer, an output) shown; the rest is cut with a note."""
ORIGINAL = "original"
_TAKEN = frozenset({"id", "critical"})
_ROLE_ORDER = {"teacher": 0, "student": 1, "base": 2, "sft": 3}


@dataclass(frozen=True)
class ViewerPage:
    """One run's viewer: where it goes, its rows, and what the page says about its inputs."""

    pack_id: str
    pack_version: str
    folder: str  # relative to the card page: examples/<pack-id>
    rows: list[dict[str, Any]]
    roles: list[str]
    slices: list[str]
    variants: list[str]
    published: bool
    publication: str

    @property
    def pages(self) -> int:
        """How many ``rows-<k>.json`` pages."""
        return max(1, -(-len(self.rows) // PAGE_ROWS))

    def page_json(self, number: int) -> bytes:
        """``rows-<number>.json``: that page's rows (JSON cannot run; the page inserts them as text)."""
        chunk = self.rows[(number - 1) * PAGE_ROWS : number * PAGE_ROWS]
        document = {"page": number, "pages": self.pages, "total": len(self.rows), "rows": chunk}
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _cap(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]} … [cut here: {len(text):,} characters in all]"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return _cap(value)
    return _cap(json.dumps(value, ensure_ascii=False, sort_keys=True))


def _field(value: Any) -> str:
    """An input field as text; a list of texts (the choices) one per line, numbered as the gold index."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return _cap("\n".join(f"{n}. {v}" for n, v in enumerate(value)))
    return _text(value)


@dataclass(frozen=True)
class _Pack:
    """A published pack's items by id, which of their fields are inputs, and the choices field."""

    items: Mapping[str, Mapping[str, Any]]
    inputs: tuple[str, ...]
    choices: str | None


def _read_pack(files: Mapping[str, bytes], pack_id: str) -> _Pack | None:
    """The published pack's items (verified bytes), or ``None`` when the bundle does not publish it.

    Raises:
        InputError: the published pack.yaml or a data file does not parse (it verified, so it was signed so).
    """
    if "pack.yaml" not in files:
        return None
    where = f"packs/{pack_id}/pack.yaml"
    spec = parse_yaml(files["pack.yaml"], file=where)
    if not isinstance(spec, dict):
        raise InputError("a pack.yaml is a mapping", file=where)
    data = spec.get("data")
    paths = [data] if isinstance(data, str) else list(data or [])
    items: dict[str, Mapping[str, Any]] = {}
    for path in paths:
        # JSON Lines split on "\n" only, as verify reads them: str.splitlines would also split on the U+2028,
        # U+0085 and "\r" that JSON allows inside a string (or as whitespace)
        for item in examples_rows(files.get(str(path), b""), f"packs/{pack_id}/{path}"):
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                items[item["id"]] = item
    skip = {str(spec.get("target")), *(str(s) for s in spec.get("slices") or [])} | _TAKEN
    choices = spec.get("choices") if isinstance(spec.get("choices"), str) else None
    # the inputs: every field that is not the id, the target or a slice label, in the order items write them
    # (pack.yaml's `fields` names the fields an extraction answers, not its inputs)
    seen = dict.fromkeys(k for i in items.values() for k in i)
    inputs = tuple(k for k in seen if k not in skip)
    return _Pack(items, inputs, choices)


def _slice_names(row: Mapping[str, Any]) -> list[str]:
    """The scorecard slices this row counts in (receipts.derive's rule)."""
    if row.get("variant", ORIGINAL) != ORIGINAL:
        return [f"variant={row.get('variant')}"]
    labels = row.get("slices")
    slices: Mapping[str, Any] = labels if isinstance(labels, Mapping) else {}
    names = ["all", *(f"{k}={v}" for k, v in sorted(slices.items()))]
    critical = row.get("critical")
    if critical:
        names.append("critical")
    if isinstance(critical, str):
        names.append(f"critical={critical}")
    return names


def _score(cell: Mapping[str, Any]) -> float | None:
    score = cell.get("score")
    return float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _choice(item: Mapping[str, Any] | None, choices: str | None, index: Any) -> str | None:
    options = item.get(choices) if item is not None and choices else None
    try:
        position = int(index)
    except (TypeError, ValueError):
        return None
    if isinstance(options, list) and 0 <= position < len(options) and not isinstance(index, bool):
        return f"{_text(options[position])} (choice {position})"
    return None


def _chat_prompt(cell: Mapping[str, Any]) -> dict[str, str]:
    """Chat templates (issue #20): the sha256 of the prompt a role's chat template rendered, if any."""
    sha = cell.get("prompt_sha256")
    if isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
        return {"chat_prompt_sha256": sha}
    return {}


def _row(raw: Mapping[str, Any], pack: _Pack | None, roles: Sequence[str]) -> dict[str, Any]:
    item_id = str(raw.get("item"))
    item = pack.items.get(item_id) if pack is not None else None
    choices = pack.choices if pack is not None else None
    inputs = None
    if item is not None and pack is not None:
        inputs = [[name, _field(item.get(name))] for name in pack.inputs if name in item]
    gold = _choice(item, choices, raw.get("gold")) or _text(raw.get("gold"))
    expected = raw.get("expected")
    if expected not in (None, "answer"):
        gold = f"{gold} (expected behaviour: {expected})" if gold else f"expected behaviour: {expected}"
    cells = []
    teacher_right = student_wrong = False
    given = raw.get("roles")
    signed: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    for role in roles:
        cell = signed.get(role)
        if not isinstance(cell, Mapping):
            continue
        score = _score(cell)
        right = None if score is None else score >= 1.0
        output = cell.get("text") if "text" in cell else cell.get("answer")
        shown = _choice(item, choices, output) if "text" not in cell else None
        kl, kl_kind = _number(cell.get("kl_token")), "per token"
        if kl is None:
            kl, kl_kind = _number(cell.get("kl_choice")), "over choices"
        cells.append(
            {
                "role": role,
                "output": shown or _text(output),
                "error": _text(cell.get("error")) or None,
                "score": score,
                "right": right,
                "confidence": _number(cell.get("confidence")),
                "kl": kl,
                "kl_kind": kl_kind if kl is not None else None,
                "abstained": cell.get("abstained") is True,
                **_chat_prompt(cell),
            }
        )
        teacher_right = teacher_right or (role == "teacher" and right is True)
        student_wrong = student_wrong or (role == "student" and right is False)
    agreement = raw.get("agreement") or {}
    student_agrees = agreement.get("student") if isinstance(agreement, Mapping) else None
    return {
        "item": item_id,
        "variant": str(raw.get("variant", ORIGINAL)),
        "slices": _slice_names(raw),
        "input": inputs,
        "prompt_sha256": str(raw.get("prompt_sha256", "")),
        "gold": gold,
        "roles": cells,
        "agreement": student_agrees if isinstance(student_agrees, bool) else None,
        "student_wrong_teacher_right": teacher_right and student_wrong,
        "disagreement": student_agrees is False,
    }


def _roles(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    found: dict[str, None] = {}
    for raw in rows:
        signed = raw.get("roles")
        found.update(dict.fromkeys(signed if isinstance(signed, Mapping) else {}))
    return sorted(found, key=lambda r: (_ROLE_ORDER.get(r.partition("@")[0], 9), r))


def viewer_pages(entry: VerifiedReceipt) -> list[ViewerPage]:
    """One viewer per signed run of ``entry``, from its verified examples log and published pack files.

    Raises:
        InputError: a published pack file does not parse.
    """
    published = {s.name: s.annotations.published for s in entry.subject("pack")}
    pages = []
    for run in entry.predicate.runs:
        pack_id = run.pack.id
        raw_rows = [
            row for row in examples_rows(entry.files[run.examples], run.examples) if isinstance(row, dict)
        ]
        pack = _read_pack(entry.pack_files(pack_id), pack_id)
        roles = _roles(raw_rows)
        rows = [_row(raw, pack, roles) for raw in raw_rows]
        slices = sorted({s for r in rows for s in r["slices"]}, key=lambda s: (s != "all", s))
        variants = sorted({r["variant"] for r in rows}, key=lambda v: (v != ORIGINAL, v))
        said = published.get(f"pack:{pack_id}@{run.pack.version}")
        if pack is not None:
            publication = "the pack's inputs are published with this receipt and verified against its digest"
        elif said:
            publication = f"inputs not published: {said.removeprefix('no: ')}"
        else:
            publication = "inputs not published: the receipt binds the pack by digest only"
        pages.append(
            ViewerPage(
                pack_id,
                run.pack.version,
                f"examples/{pack_id}",
                rows,
                roles,
                slices,
                variants,
                pack is not None,
                publication,
            )
        )
    return pages


def failure_mode_links(card: Card, pages: Sequence[ViewerPage]) -> dict[str, list[tuple[str, str]]]:
    """For each failure mode: (pack id, viewer URL relative to the card page) selecting its pack items.

    An item written ``<pack-id>/<item-id>`` goes to that pack's viewer; a bare item id to every viewer
    whose rows hold it. Items no signed run holds are left out (there is nothing to show).
    """
    held = {page.pack_id: {row["item"] for row in page.rows} for page in pages}
    links: dict[str, list[tuple[str, str]]] = {}
    for mode in card.failure_modes or []:
        chosen: dict[str, list[str]] = {}
        for written in mode.pack_items or []:
            pack_id, _, item = str(written).rpartition("/")
            for page in pages:
                if (not pack_id or pack_id == page.pack_id) and item in held[page.pack_id]:
                    chosen.setdefault(page.pack_id, [])
                    if item not in chosen[page.pack_id]:
                        chosen[page.pack_id].append(item)
        links[mode.id] = [
            (p, f"examples/{p}/?items={quote(','.join(items), safe=',')}") for p, items in chosen.items()
        ]
    return links
