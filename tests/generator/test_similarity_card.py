"""The card's similarity section (issue #20 part 3): numbers from the verified results, labelled, escaped.

The results are a real ``receipts run`` (fake models) of a pack that opts into chrF and ROUGE-L; the section
is rendered with the site's own Jinja environment and template macro.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.render import _environment
from generator.similarity import similarity_section
from receipts.cli import main
from receipts.formats import Results

ROOT = Path(__file__).parents[2]
PACK = ROOT / "tests" / "data" / "pack_similarity"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("similarity-card")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        assert main(["run", str(PACK), *ROLES, "--out", str(tmp / "run")]) == 0
    return json.loads((tmp / "run" / "results.json").read_bytes())


def test_the_section_shows_every_signed_mean_with_its_ci(results: dict) -> None:
    section = similarity_section([Results.parse(results, file="results.json")])
    assert section is not None
    (card,) = section.cards
    teacher, gold = card.tables
    assert [r for r, _ in teacher.roles] == ["base", "student"]  # the teacher is the reference here
    assert [r for r, _ in gold.roles] == ["teacher", "base", "student"]
    first = teacher.rows[0]
    signed = results["similarity"]["slices"]["all"]["chrf"]["teacher"]["roles"]["student"]
    assert (first.words, first.measure, first.first, first.group) == ("all items", "chrF", True, 2)
    assert first.scores[1].value == f"{signed['value']:.3f}"
    assert first.scores[1].ci == f"[{signed['ci95'][0]:.3f}, {signed['ci95'][1]:.3f}]"
    assert first.gain.startswith(("+", "\u2212"))
    assert [m[0] for m in section.measures] == ["chrF", "ROUGE-L"]
    assert section.encoders == []  # no cosine in this run


def test_no_similarity_no_section_and_hostile_names_are_escaped(results: dict) -> None:
    plain = {k: v for k, v in results.items() if k != "similarity"}
    assert similarity_section([Results.parse(plain, file="results.json")]) is None
    hostile = json.loads(json.dumps(results))
    slices = hostile["similarity"]["slices"]
    slices['region=<img src=x onerror="alert(1)">'] = slices.pop("region=west")
    hostile["pack"]["id"] = "p"
    section = similarity_section([Results.parse(hostile, file="results.json")])
    assert section is not None
    macro = _environment().get_template("_scorecard.j2").module.similarity_tables  # type: ignore[attr-defined]
    html = str(macro(section.cards[0]))
    assert "<img" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "student \u2212 base" in html
    assert 'data-reference="gold"' in html
