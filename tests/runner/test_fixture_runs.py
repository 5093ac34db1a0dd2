"""The committed eval runs are what ``receipts run`` writes today (tests/fixture_runs.py), and re-derive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from receipts.derive import rederive
from receipts.evidence import examples_rows
from tests.fixture_runs import DATA, KEPT, main, make_run_minimal

VECTOR_RUN = DATA.parent / "vectors" / "inputs" / "run-0.2.0"


def test_run_minimal_is_a_fresh_run(tmp_path: Path) -> None:
    make_run_minimal(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(KEPT)  # no resume state
    for name in KEPT:
        assert (tmp_path / "run" / name).read_bytes() == (DATA / "run_minimal" / name).read_bytes(), name
    assert main(["--check"]) == 0


@pytest.mark.parametrize("run", [DATA / "run_minimal", VECTOR_RUN], ids=["run_minimal", "vectors-release-b"])
def test_committed_runs_re_derive(run: Path) -> None:
    results = json.loads((run / "results.json").read_bytes())
    rows = examples_rows((run / "examples.jsonl").read_bytes(), "examples.jsonl")
    assert results["summary"]["scores"]["student"] > 0  # a real run with numbers, not a stand-in
    assert rederive(results, rows) == []
