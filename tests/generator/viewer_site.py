"""A real catalog for the viewer tests: a capitals-mc run with hostile items, signed with its pack published.

``make_receipts(tmp)`` runs a copy of ``packs/capitals-mc`` with hostile items first (on the deterministic
``fake:`` backend, every prompt variant) and signs two receipts of it: ``0.1.0`` publishes the pack (its
licence, CC-BY-4.0, permits it), ``0.2.0`` is signed with ``--no-pack``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
LIMIT = 60
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]
BIG = 1024 * 1024
HOSTILE_TEXTS = {
    "evil-script": "</td></tr></table><script>window.__pwned = 1; alert('script')</script>",
    "evil-img": "<img src=x onerror=\"window.__pwned = 2; alert('img')\">",
    "evil-link": "[click me](javascript:alert('md')) <a href=\"javascript:alert('a')\">a</a>",
    "evil-jinja": "{{ 7*7 }} {% for x in range(3) %}{{ x }}{% endfor %} {{ config }}",
    "evil-blank": (
        'line one\n\n<img src=x onerror="window.__pwned = 3">\n\n[md](javascript:alert(1)) **bold**'
    ),
    "evil-rtl": "\u202egnp.exe\u202c what is the capital of \u202eecnarF\u202c?",
    "evil-big": "What is the capital of France? (its notes field holds 1 MiB)",
    # written raw (JSON allows U+2028, U+2029 and U+0085 inside a string): str.splitlines would split here
    "evil-linesep": "What is the capital\u2028of\u2029France?\u0085",
}
"""Item id -> question: each must reach the page as text, and nothing in it may run or link."""
MODES = [
    ("evil", ["capitals-mc/evil-script", "capitals-mc/evil-img"]),
    ("plain", ["capitals-mc/cap-028", "capitals-mc/cap-008"]),  # curated items in the first LIMIT
]


def hostile_pack(tmp: Path) -> Path:
    """A copy of packs/capitals-mc with the hostile items before its own (so ``--limit`` keeps them)."""
    pack = tmp / "capitals-mc"
    pack.mkdir()
    source = ROOT / "packs" / "capitals-mc"
    (pack / "pack.yaml").write_bytes((source / "pack.yaml").read_bytes())
    (pack / "README.md").write_text("<script>alert('readme')</script>\n", "utf-8")
    (pack / "data").mkdir()
    lines = []
    for number, (item, question) in enumerate(HOSTILE_TEXTS.items()):
        choices = ["Paris", "<b>Rome</b>", "javascript:alert(1)", question[:80]]
        line = {"id": item, "question": question, "choices": choices, "label": number % 4}
        line |= {"domain": "geography", "difficulty": "hard", "source": "hostile"}
        if item == "evil-big":  # an input field the prompt template does not use (the runner caps prompts)
            line["notes"] = "<script>window.__pwned = 4</script>" + "A" * BIG
        lines.append(line)
    own = (source / "data" / "items.jsonl").read_text("utf-8")
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines) + own
    (pack / "data" / "items.jsonl").write_text(text, "utf-8")
    return pack


def card(tmp: Path, version: str) -> Path:
    """The fake-teacher card at ``version``, its failure modes tied to hostile and plain items."""
    value: dict[str, Any] = yaml.safe_load(CARD.read_text("utf-8"))
    value.pop("gate", None)
    value["model"]["version"] = version
    base = value["failure_modes"][0]
    # a fresh copy each: a shared object would be written as a YAML alias, which receipts refuses
    value["failure_modes"] = [
        {**json.loads(json.dumps(base)), "id": mode, "pack_items": items} for mode, items in MODES
    ]
    path = tmp / f"card-{version}.yaml"
    path.write_text(yaml.safe_dump(value), "utf-8")
    return path


def make_receipts(tmp: Path) -> tuple[Path, bytes, Path]:
    """Run, sign twice; returns (receipts folder, trust root bytes, the run folder)."""
    pack = hostile_pack(tmp)
    run = tmp / "run"
    old = __import__("os").environ.get("RECEIPTS_CACHE")
    __import__("os").environ["RECEIPTS_CACHE"] = str(tmp / "cache")
    try:
        assert main(["run", str(pack), *ROLES, "--limit", str(LIMIT), "--out", str(run)]) == 0
    finally:
        if old is None:
            __import__("os").environ.pop("RECEIPTS_CACHE", None)
        else:
            __import__("os").environ["RECEIPTS_CACHE"] = old
    crlf_whitespace(run)
    key = generate()
    receipts = tmp / "receipts"
    issued = datetime(2026, 6, 1, tzinfo=UTC)
    sign_receipt(card(tmp, "0.1.0"), [key], receipts, runs=[run], packs=[pack], issued_at=issued)
    sign_receipt(
        card(tmp, "0.2.0"), [key], receipts, runs=[run], packs=[pack], publish_packs=False, issued_at=issued
    )
    root = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    return receipts, root, run


def crlf_whitespace(run: Path) -> None:
    """A CR as JSON whitespace inside the first examples row (bytes.splitlines would split the row there)."""
    log = run / "examples.jsonl"
    data = log.read_bytes().replace(b"{", b"{\r", 1)
    log.write_bytes(data)
    results = json.loads((run / "results.json").read_text("utf-8"))
    results["examples"]["sha256"] = hashlib.sha256(data).hexdigest()
    (run / "results.json").write_text(json.dumps(results, indent=2), "utf-8")


def examples(run: Path) -> list[dict[str, Any]]:
    """The run's examples log, as written (JSON Lines: split on LF only)."""
    text = (run / "examples.jsonl").read_bytes().decode("utf-8")  # read_text would turn "\r" into "\n"
    return [json.loads(line) for line in text.split("\n") if line.strip()]
