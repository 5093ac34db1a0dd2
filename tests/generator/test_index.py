"""generator.index without a browser: per-quantization rows hold the signed numbers of their own role.

The golden receipts (tests/vectors/golden/v1) are read back through `generator.render.collect` (which
verifies them); every figure of every row is compared with the verified results read here directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.index import NO_BASE, quant_rows
from generator.render import collect
from receipts.metrics.retention import REASONS
from receipts.trust import trust_root_from_bytes
from receipts.verify import VerifiedReceipt

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


@pytest.fixture(scope="module")
def entries() -> list[VerifiedReceipt]:
    root = trust_root_from_bytes((VECTORS / "roots" / "main.json").read_bytes())
    return list(collect(VECTORS / "golden" / "v1", root))


def test_each_row_holds_its_own_roles_signed_numbers(entries: list[VerifiedReceipt]) -> None:
    checked = 0
    for entry in entries:
        runs = {r.pack.id: r for r in entry.results}
        table = {row.quant: row for row in entry.predicate.quantization or []}
        rows = quant_rows(entry)
        assert [r["quant"] for r in rows] == list(table)
        for row in rows:
            for pack, shown in row["packs"].items():
                results = runs[pack]
                metric = results.metrics["all"][results.primary_metric]
                role = table[row["quant"]].evaluated[shown["pack"]].role
                assert shown["role"] == role
                assert shown["score"] == metric.roles[role].value
                assert shown["teacher"] == metric.roles["teacher"].value
                kept = (metric.retention or {}).get(role)
                assert shown["retention"] == (kept.value if kept else None)
                if kept is not None and kept.value is None:
                    assert shown["retention_reason"] == REASONS.get(kept.reason, kept.reason)
                if "base" not in metric.roles:
                    assert shown["retention_reason"] == NO_BASE
                values = [e.value for e in metric.roles.values()]
                assert shown["floor"] == (bool(values) and all(v == 0 for v in values))  # None is not 0
                checked += 1
            benched = table[row["quant"]].benched
            assert [m["peak_rss_bytes"] for m in row["memory"]] == [b.get("peak_rss_bytes") for b in benched]
    assert checked, "the golden receipts hold no evaluated quantization"
