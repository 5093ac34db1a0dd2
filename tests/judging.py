"""A ``replay:`` judge for a run: canned judge replies keyed by the exact judge prompts it poses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runner.eval.config import RunConfig
from runner.eval.judge import comparisons, judge_prompt
from runner.eval.loader import load_pack
from runner.eval.packs import JudgeSample
from runner.eval.run import select

ROOT = Path(__file__).parent
PACK = ROOT / "data" / "pack_judge"

Reply = Callable[[str, str, str, str, str], str]
"""(role, item, against, text A, text B) -> the judge's reply for an item comparison."""


def verdict(same: bool) -> str:
    """A well-formed reply ending in the verdict line."""
    return "Both name the same city.\nVERDICT: EQUIVALENT" if same else "They differ.\nVERDICT: DIFFERENT"


def same_text(role: str, item: str, against: str, a: str, b: str) -> str:
    """A judge that calls two outputs equivalent when their stripped, lower-cased texts are equal."""
    return verdict(a.strip().lower() == b.strip().lower())


def human(sample: JudgeSample) -> str:
    """A judge that agrees with every human label (kappa 1)."""
    return verdict(sample.label == "equivalent")


def record(
    run_dir: Path,
    out: Path,
    *,
    pack_path: Path = PACK,
    item_reply: Reply = same_text,
    sample_reply: Callable[[JudgeSample], str] = human,
) -> Path:
    """A replay judge file for every judge prompt a run of ``pack_path`` in ``run_dir`` poses."""
    pack = load_pack(pack_path)
    assert pack.judge is not None
    rows: dict[str, dict[str, Any]] = {}
    for line in (run_dir / "examples.jsonl").read_text("utf-8").splitlines():
        row = json.loads(line)
        for role, cell in row["roles"].items():
            key = f"{row['item']}\x1f{row['variant']}"
            rows.setdefault(role, {})[key] = {"output": {"text": cell["text"]}}
    instances = [
        i for i in select(pack, RunConfig(roles={})) if f"{i.item_id}\x1f{i.variant}" in rows["teacher"]
    ]
    texts = {f"{i.item_id}\x1f{i.variant}": i for i in instances}
    lines = []
    for role, key, against, prompt in comparisons(pack, pack.judge, instances, rows):
        assert prompt is not None
        inst = texts[key]
        a = rows["teacher"][key]["output"]["text"] if against == "teacher" else str(inst.gold[0])  # type: ignore[index]
        reply = item_reply(role, inst.item_id, against, a, rows[role][key]["output"]["text"])
        lines.append({"prompt_sha256": _sha(prompt), "output": reply})
    for sample in pack.judge.validation:
        prompt = judge_prompt(pack.judge, sample.input, sample.output_a, sample.output_b)
        lines.append({"prompt_sha256": _sha(prompt), "output": sample_reply(sample)})
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), "utf-8")
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
