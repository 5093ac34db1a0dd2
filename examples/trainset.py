"""The demo's training examples: each bundled pack's training split, posed exactly as the pack poses items.

``examples/train/<pack id>.jsonl`` (written by ``examples/make_packs.py``, disjoint from the pack's eval
items) holds pack-shaped rows plus ``response``, the answer a competent model gives. Each row is posed
with the runner's own code: the pack's first prompt template (``runner.eval.prompts.materialise``, variant
``original``), its system prompt, then the model's chat template as ``?chat_template=1`` renders it
(``runner.backends.chat.render``, lm-eval's call), so the models learn the exact text they are examined
on. The response is followed by the tokenizer's end-of-sequence token (for SmolLM2 ``<|im_end|>``, the
end of the assistant's turn), so a trained model stops where the pack's scorer expects an answer to end.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer import Example

__all__ = ["TRAIN_DIR", "examples_for", "read_rows"]

ROOT = Path(__file__).resolve().parent.parent
TRAIN_DIR = ROOT / "examples" / "train"


def read_rows(pack_id: str, limit: int, seed: int) -> list[dict[str, Any]]:
    """The pack's training rows, or a seeded sample of ``limit`` of them (0: all), in file order."""
    path = TRAIN_DIR / f"{pack_id}.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path}: no training split for pack {pack_id} (run: python examples/make_packs.py)")
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    if 0 < limit < len(rows):
        keep = set(random.Random(f"{seed}:{pack_id}").sample(range(len(rows)), limit))
        rows = [row for i, row in enumerate(rows) if i in keep]
    return rows


def _posed(pack_dir: Path, rows: Sequence[dict[str, Any]]) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """Each row's conversation, as ``receipts run`` poses the pack's items (original variant)."""
    import yaml

    from runner.eval.chat import posed
    from runner.eval.loader import load_pack
    from runner.eval.prompts import materialise

    data = yaml.safe_load((pack_dir / "pack.yaml").read_text("utf-8"))["data"]
    paths = [data] if isinstance(data, str) else list(data)
    with tempfile.TemporaryDirectory(prefix="receipts-trainset-") as tmp:
        copy = Path(tmp) / pack_dir.name
        shutil.copytree(pack_dir, copy, ignore=shutil.ignore_patterns("data"))
        for i, relpath in enumerate(paths):  # every row in the first data file, the others empty
            (copy / relpath).parent.mkdir(parents=True, exist_ok=True)
            lines = (
                [json.dumps({k: v for k, v in row.items() if k != "response"}) for row in rows]
                if i == 0
                else []
            )
            (copy / relpath).write_text("".join(line + "\n" for line in lines), "utf-8")
        found = {inst.item_id: posed(inst) for inst in materialise(load_pack(copy), ["original"])}
    return [(row["response"], found[str(row["id"])]) for row in rows]


def examples_for(tokenizer: Any, pack_dir: Path, rows: Sequence[dict[str, Any]]) -> list[Example]:
    """``rows`` of the pack at ``pack_dir`` as token ids: the chat-rendered prompt, the response + EOS."""
    from runner.backends.chat import render

    eos = tokenizer.eos_token or ""
    out = []
    for response, messages in _posed(pack_dir, rows):
        prompt = render(tokenizer, messages, spec=f"examples/train/{pack_dir.name}")
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        response_ids = tokenizer(response + eos, add_special_tokens=False)["input_ids"]
        out.append(Example(tuple(prompt_ids), tuple(response_ids)))
    return out
