"""Volume and direction on the card page (issue #20 parts 4 and 5): flips and the sequence divergence.

Every number is checked against the signed results.json the page publishes beside itself; slice names are
the receipt's (untrusted): autoescaped. Results signed before issue #20 show neither section.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from generator.direction import direction
from generator.render import _environment, collect, render
from generator.scorecard import pack_card
from receipts.cli import main
from receipts.formats import Results
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.3"]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One receipt: capitals-mc (a student that loses the critical items) and contract-clauses (generated)."""
    tmp = tmp_path_factory.mktemp("direction")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        for pack, limit in (("capitals-mc", "105"), ("contract-clauses", "20")):
            argv = ["run", str(ROOT / "packs" / pack), *ROLES, "--variant", "original", "--limit", limit]
            assert main([*argv, "--out", str(tmp / pack)]) == 0
    key = generate()
    sign_receipt(CARD, [key], tmp / "receipts", runs=[tmp / "capitals-mc", tmp / "contract-clauses"])
    root_bytes = new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    root = trust_root_from_bytes(root_bytes)
    result = render(collect(tmp / "receipts", root), root, root_bytes)
    return {n: d.decode("utf-8") for n, d in result.files.items() if n.startswith("models/")}


def _markdown(files: dict[str, str]) -> str:
    (name,) = [n for n in files if n.count("/") == 3 and n.endswith("/index.md")]
    return files[name]


def _signed(files: dict[str, str], pack: str) -> dict[str, Any]:
    (name,) = [n for n in files if n.endswith(f"/runs/{pack}/results.json")]
    results: dict[str, Any] = json.loads(files[name])
    return results


def test_the_card_says_volume_and_direction_with_the_signed_counts(page: dict[str, str]) -> None:
    text = _markdown(page)
    flips = _signed(page, "capitals-mc")["flips"]["slices"]["all"]["student"]
    lost, gained, n = flips["lost"], flips["gained"], flips["n"]
    sentence = (
        f"the student loses {lost} answers the teacher got right and gains {gained} where the teacher was "
        f"wrong, of {n} items"
    )
    assert sentence in text
    low, high = flips["lost_rate"]["ci95"]
    rate = f"{100 * flips['lost_rate']['value']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
    assert f'<strong>{lost}</strong><br><span class="rc-ci">{rate}</span>' in text
    assert "The student lost answers the teacher had right" in text  # the lost_capability diagnostic


def test_the_card_shows_the_per_byte_divergence_labelled_with_what_it_estimates(page: dict[str, str]) -> None:
    text = _markdown(page)
    entry = _signed(page, "contract-clauses")["sequence_divergence"]["slices"]["all"]["student"]
    low, high = entry["ci95"]
    minus = {ord("-"): "\u2212"}  # the page writes a true minus sign
    value, low, high = (f"{v:.3f}".translate(minus) for v in (entry["value"], low, high))
    assert f'<strong>{value}</strong> <span class="rc-ci">[{low}, {high}]</span>' in text
    assert '<th scope="col">base model</th><th scope="col">student</th>' in text  # columns: models
    assert "Sequence divergence per byte" in text
    assert "KL(teacher ‖ model) at the teacher&#39;s most likely outputs, not over samples" in text
    assert "rc-seqkl" not in _section_of(text, "capitals-mc")  # multiple choice: nothing to measure


def _section_of(text: str, pack: str) -> str:
    start = text.index(f'<div class="rc-direction" data-pack="{pack}">')
    return text[start : text.index("</div></div>", start)]


def test_results_signed_before_issue_20_show_neither(page: dict[str, str]) -> None:
    signed = _signed(page, "capitals-mc")
    old = {k: v for k, v in signed.items() if k not in ("flips", "sequence_divergence")}
    assert direction(Results.parse(old, file="old")) is None
    assert pack_card(Results.parse(old, file="old")).direction is None


def test_a_hostile_slice_name_is_escaped(page: dict[str, str]) -> None:
    signed = copy.deepcopy(_signed(page, "contract-clauses"))
    hostile = '<img src=x onerror="alert(1)">'
    signed["flips"]["slices"][f"clause={hostile}"] = signed["flips"]["slices"]["all"]
    signed["sequence_divergence"]["slices"][f"clause={hostile}"] = signed["sequence_divergence"]["slices"][
        "all"
    ]
    card = pack_card(Results.parse(signed, file="hostile"))
    html = _environment().from_string(
        '{% from "_direction.j2" import direction_block %}{{ direction_block(p) }}'
    )
    out = html.render(p=card)
    assert hostile not in out
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in out


def test_a_floor_pack_shows_no_flips_but_keeps_the_divergence(page: dict[str, str]) -> None:
    signed = _signed(page, "contract-clauses")
    found = direction(Results.parse(signed, file="r"), floor=True)
    assert found is not None
    assert found.flips == []
    assert found.seq
    assert found.lede == ""
