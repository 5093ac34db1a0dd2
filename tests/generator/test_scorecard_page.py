"""The scorecard below the label (issue #19): tables, matrix, robustness, floor packs, diagnostics in words.

Every number is checked against the signed results.json the page publishes beside itself (the bundle copy),
not against what the page says elsewhere.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import markupsafe
import pytest
import yaml

from generator.render import _environment, collect, render
from generator.scorecard import FLOOR_SENTENCE, pack_card
from receipts.cli import main
from receipts.formats import Results
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root, trust_root_from_bytes

ROOT = Path(__file__).parents[2]
CARD = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]
FLOOR = ["--teacher", "fake:t?skill=0", "--base", "fake:b?skill=0", "--student", "fake:s?skill=0"]
CODES = (
    "teacher_base_gap_below_min",
    "agree_teacher_correct",
    "disagree_teacher_wrong",
    "no_distillation_gain",
    "teacher_is_ceiling",
    "coverage_gap",
    "both_unreadable",
)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One receipt: capitals-mc with an SFT baseline and a typo variant, and behaviour-probes at the floor."""
    tmp = tmp_path_factory.mktemp("scorecard")
    mc = ["run", str(ROOT / "packs" / "capitals-mc"), *ROLES, "--sft", "fake:f?skill=0.68"]
    probes = ["run", str(ROOT / "packs" / "behaviour-probes"), *FLOOR, "--sft", "fake:f?skill=0"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        variants = ["--variant", "original", "--variant", "typo"]
        assert main([*mc, *variants, "--limit", "40", "--out", str(tmp / "mc")]) == 0
        assert main([*probes, "--out", str(tmp / "probes")]) == 0
    card = yaml.safe_load(CARD.read_text("utf-8"))
    zero = {"name": "fake teacher at skill 0", "api_identifier": "fake:t?skill=0", "license": "Apache-2.0"}
    card["lineage"]["teachers"].append(zero)  # the floor run's teacher: a card names what the runs scored
    (tmp / "card.yaml").write_text(yaml.safe_dump(card), "utf-8")
    key = generate()
    sign_receipt(tmp / "card.yaml", [key], tmp / "receipts", runs=[tmp / "mc", tmp / "probes"])
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


def _section(text: str, start: str, end: str = "\n##") -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def _cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r'<span class="rc-val">(.*?)</span><span', row)]


def test_the_slice_table_has_slices_as_rows_roles_as_columns_and_the_signed_values(
    page: dict[str, str],
) -> None:
    text = _markdown(page)
    signed = _signed(page, "capitals-mc")
    table = text.split('rc-slices" data-pack="capitals-mc">', 1)[1].split("</table>")[0]
    roles = re.findall(r'<th scope="col" data-role="([^"]+)"', table)
    assert roles[:4] == ["teacher", "base", "student", "sft"]
    rows = table.split("<tbody>", 1)[1].split("</tr>")[:-1]
    slices = [s for s in signed["metrics"] if not s.startswith("variant=")]
    assert len(rows) == len(slices)
    shown = {}
    for row in rows:
        name = re.search(r"\?slice=([^\"]+)\"", row)
        assert name is not None
        shown[name.group(1)] = _cells(row)
    for name in slices:
        estimates = signed["metrics"][name]["acc"]["roles"]
        expected = [f"{estimates[r]['value']:.3f}" if r in estimates else "n/a" for r in roles]
        assert shown[name.replace("=", "%3D")] == expected, name
    # each CI beside its value, and the small-n mark on a slice of fewer than 30 items
    low, high = signed["metrics"]["all"]["acc"]["roles"]["student"]["ci95"]
    assert f'<span class="rc-ci">[{low:.3f}, {high:.3f}]</span>' in rows[0]
    small = [s for s in slices if signed["metrics"][s]["acc"]["roles"]["student"]["small_n"]]
    assert small
    assert all(("small n</span>" in r) == (r.split("?slice=")[1].split('"')[0] in {
        s.replace("=", "%3D") for s in small}) for r in rows)  # fmt: skip


def test_the_agreement_matrix_holds_the_signed_cells(page: dict[str, str]) -> None:
    text = _markdown(page)
    signed = _signed(page, "capitals-mc")["fidelity"]
    fidelity = _section(text, "\n### Fidelity\n", "\n### ")
    matrices = re.findall(r'"rc-table rc-matrix"><caption>(.*?)</caption>(.*?)</table>', fidelity)
    assert len(matrices) == len(signed) == 3  # base, student, SFT baseline (the floor pack draws none)
    by_role = {caption.split(" against the teacher")[0]: body for caption, body in matrices}
    cells = signed["student"]["cells"]
    body = by_role["student"]
    counts = [int(n) for n in re.findall(r"<td>(\d+) \(\d+%\)</td>", body)]
    assert counts == [
        cells["agree_teacher_correct"],
        cells["agree_teacher_wrong"],
        cells["disagree_teacher_correct"],
        cells["disagree_teacher_wrong"],
    ]
    assert "teacher right" in body
    assert "teacher wrong" in body
    caption = next(c for c, _ in matrices if c.startswith("student against"))
    assert f"agreement <strong>{signed['student']['agreement_rate']:.3f}</strong>" in caption
    assert f"KL {signed['student']['kl']['value']:.3f}" in caption
    assert "<details" in fidelity  # the raw keys, collapsed


def test_robustness_is_a_chart_per_variant_and_worst_case_sentences(page: dict[str, str]) -> None:
    text = _markdown(page)
    signed = _signed(page, "capitals-mc")
    robustness = _section(text, "\n### Robustness\n", "\n### ")
    assert '<img src="robustness-capitals-mc.svg"' in robustness
    chart = next(d for n, d in page.items() if n.endswith("/robustness-capitals-mc.svg"))
    assert ">as written<" in chart
    assert ">typo<" in chart
    worst = signed["robustness"]["worst_case"]["roles"]["student"]["value"]
    original = signed["metrics"]["all"]["acc"]["roles"]["student"]["value"]
    assert f"student: {worst:.3f} on its worst variant of each item, against {original:.3f}" in robustness


def test_a_floor_pack_says_so_draws_no_chart_and_reads_no_diagnostic(page: dict[str, str]) -> None:
    text = _markdown(page)
    signed = _signed(page, "behaviour-probes")
    assert {e["value"] for e in signed["metrics"]["all"][signed["primary_metric"]]["roles"].values()} == {0}
    assert signed["diagnostics"] == []  # the runner's rule: nothing fires on the floor
    analyses = _section(text, "\n### behaviour-probes: ", "\n### ")
    assert f"behaviour-probes: {FLOOR_SENTENCE}." in analyses
    assert not [n for n in page if n.endswith("-behaviour-probes.svg")]
    assert "behaviour-probes" not in "".join(re.findall(r'<img src="([^"]+)"', text))
    diagnostics = _section(text, "\n### Diagnostics\n", "\n### ")
    probes = diagnostics.split("<h4>behaviour-probes</h4>", 1)[1].split("<h4>", 1)[0]
    assert FLOOR_SENTENCE in probes
    assert "<li>" not in probes


def test_diagnostics_are_sentences_with_their_numbers_never_ids(page: dict[str, str]) -> None:
    text = _markdown(page)
    signed = _signed(page, "capitals-mc")
    diagnostics = _section(text, "\n### Diagnostics\n", "\n### ")
    assert signed["diagnostics"], "the fixture's SFT baseline is meant to trigger a finding"
    for finding in signed["diagnostics"]:
        item = diagnostics.split(str(markupsafe.escape(finding["message"])), 1)[1].split("</li>", 1)[0]
        for key, number in finding["evidence"].items():
            assert f"{number:.3f}" in item, key
    scorecard = text.split("\n## Model details\n", 1)[1]
    for code in CODES:
        assert code not in scorecard, code
    retention = _section(text, "### Retention", "### Local")
    assert not re.search(r">[^<]*\b[a-z]+_[a-z]+_[a-z_]+\b[^<]*<", retention)


def _hostile_results() -> Results:
    results = json.loads((ROOT / "tests" / "data" / "run_minimal" / "results.json").read_bytes())
    evil = '<img src=x onerror="alert(1)">'
    primary = results["primary_metric"]
    results["metrics"][f"domain={evil}"] = results["metrics"]["all"]
    results["metrics"][f"variant={evil}"] = results["metrics"]["all"]
    results["robustness"] = {"variants": ["original", evil], "worst_case": results["metrics"]["all"][primary]}
    message = f"<script>alert(1)</script>{evil}"
    results["diagnostics"] = [{"id": evil, "message": message, "evidence": {evil: 1}}]
    return Results.model_validate(results)


def test_hostile_slice_variant_and_diagnostic_text_stays_inert() -> None:
    env = _environment()
    card = pack_card(_hostile_results())
    assert not card.floor
    template = env.from_string(
        '{% from "_scorecard.j2" import slice_table, robustness, diagnostics %}'
        '{{ slice_table(p, {}, "viewer/") }}{{ robustness(p, [], "") }}{{ diagnostics(p, "") }}'
    )
    html = template.render(p=card)
    assert "<img" not in html
    assert "<script" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html  # shown, as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "?slice=domain%3D%3Cimg" in html  # the link's query is URL-encoded, not live markup


def test_findings_signed_under_the_old_rule_on_a_floor_pack_are_not_shown(page: dict[str, str]) -> None:
    """A receipt signed before 2026-12-06 carries "teacher is the ceiling" drawn from zeros: never shown."""
    signed = _signed(page, "behaviour-probes")
    evidence = {"agreement_rate": 1.0, "student_accuracy": 0.0, "teacher_accuracy": 0.0}
    signed["diagnostics"] = [
        {"id": "teacher_is_ceiling", "message": "the teacher is the ceiling", "evidence": evidence}
    ]
    card = pack_card(Results.model_validate(signed))
    assert card.floor
    assert card.findings == []
    assert card.suppressed == 1
    html = _environment().from_string('{% from "_scorecard.j2" import diagnostics %}{{ diagnostics(p, s) }}')
    shown = html.render(p=card, s=FLOOR_SENTENCE)
    assert FLOOR_SENTENCE in shown
    assert "ceiling" not in shown
    assert "signed with 1 finding(s) drawn from those zeros" in shown
