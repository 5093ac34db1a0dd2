"""The card's judged-equivalence section (issue #20 part 2): the certificate and the judged tables.

A card without a judge renders no section: tests/data/golden_page.md holds that byte for byte.

Two receipts of the same replay-judged run: one whose judge agrees with every human label (validated),
one whose judge calls everything equivalent (kappa 0: not validated). The judge's recordings file has a
hostile name, which is its spec, which the page shows: it must come out escaped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from generator.render import collect, render
from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes
from tests import judging

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]
HOSTILE = 'judge<img src=x onerror="alert(1)">.jsonl'


def _page(tmp: Path, name: str, **replies: object) -> tuple[str, dict[str, object]]:
    out = tmp / f"run-{name}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        argv = ["run", str(judging.PACK), *ROLES, "--out", str(out)]
        assert main(argv) == 0
        (tmp / name).mkdir()
        recordings = judging.record(out, tmp / name / HOSTILE, **replies)  # type: ignore[arg-type]
        assert main([*argv, "--force", "--judge", f"replay:{recordings}"]) == 0
    key = generate()
    sign_receipt(CARD, [key], tmp / f"receipts-{name}", runs=[out])
    root_bytes = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    root = trust_root_from_bytes(root_bytes)
    files = render(collect(tmp / f"receipts-{name}", root), root, root_bytes).files
    (page,) = [n for n in files if n.startswith("models/") and n.count("/") == 3 and n.endswith("index.md")]
    results = json.loads((out / "results.json").read_text("utf-8"))
    return files[page].decode("utf-8"), results


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, dict[str, object]]]:
    tmp = tmp_path_factory.mktemp("judged-page")
    return {
        "ok": _page(tmp, "ok"),
        "bad": _page(tmp, "bad", sample_reply=lambda s: judging.verdict(True)),
    }


def _section(page: str) -> str:
    start = page.index("### Judged equivalence")
    return page[start : page.index("### Robustness", start)]


def test_a_validated_judge_shows_kappa_with_its_ci_and_threshold(pages: dict[str, tuple[str, dict]]) -> None:
    page, results = pages["ok"]
    section = _section(page)
    certificate = results["judged"]["certificate"]  # type: ignore[index]
    assert certificate["validated"] is True
    assert "<strong>Judge validated</strong>" in section
    assert (
        "Cohen's kappa against human labels <strong>1.000 [1.000, 1.000]</strong> (threshold 0.60" in section
    )
    assert "judge not validated" not in section
    student = results["judged"]["agreement"]["all"]["student"]  # type: ignore[index]
    assert f"{student['value']:.3f}" in section
    assert "judged agreement: the model&#39;s output judged equivalent to the teacher&#39;s" in section
    assert "judged correct: the model&#39;s output judged equivalent to the gold answer" in section


def test_an_unvalidated_judge_marks_every_judged_table(pages: dict[str, tuple[str, dict]]) -> None:
    page, results = pages["bad"]
    section = _section(page)
    assert results["judged"]["certificate"]["validated"] is False  # type: ignore[index]
    assert '<strong class="rc-judge-flag">Judge not validated</strong>: the lower bound of kappa' in section
    assert section.count('<span class="rc-judge-flag">judge not validated:</span>') == 2  # each table
    cells = section.count("<td ")
    assert cells > 0
    assert section.count('rc-judge-untrusted" title="judge not validated"') == cells  # every judged number


def test_the_judge_spec_is_escaped(pages: dict[str, tuple[str, dict]]) -> None:
    for page, _ in pages.values():
        section = _section(page)
        assert "<img" not in section
        assert "judge&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.jsonl" in section
