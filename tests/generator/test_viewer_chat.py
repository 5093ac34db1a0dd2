"""The per-example viewer shows the sha256 of the prompt a role's chat template rendered (issue #20)."""

from __future__ import annotations

import hashlib

from generator.viewer import _row

SHA = hashlib.sha256(b"<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n").hexdigest()


def _raw(cell_sha: object) -> dict[str, object]:
    return {
        "item": "q1",
        "variant": "original",
        "prompt_sha256": "0" * 64,
        "gold": 0,
        "roles": {
            "teacher": {"answer": "0", "score": 1.0, "prompt_sha256": cell_sha},
            "student": {"answer": "0", "score": 1.0},
        },
        "agreement": {"student": True},
    }


def test_a_chat_role_cell_carries_its_rendered_prompt_sha256() -> None:
    cells = {c["role"]: c for c in _row(_raw(SHA), None, ["teacher", "student"])["roles"]}
    assert cells["teacher"]["chat_prompt_sha256"] == SHA
    assert "chat_prompt_sha256" not in cells["student"]  # a plain role: the row's prompt sha256 only


def test_a_cell_sha256_that_is_not_one_is_not_shown() -> None:
    for bad in ("<img src=x onerror=alert(1)>", SHA.upper(), SHA[:-1], 7, None):
        cells = {c["role"]: c for c in _row(_raw(bad), None, ["teacher", "student"])["roles"]}
        assert "chat_prompt_sha256" not in cells["teacher"]
