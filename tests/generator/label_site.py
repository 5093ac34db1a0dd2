"""A signed catalog for the label's tests: one receipt with every part of the label, hostile card names.

The receipt signs two runs, written by hand like tests/generator/test_site_figures.py's (so the site is
built with --no-rederive): ``tiny-mc`` with teacher, base, student and SFT scores, a retention CI and a
student - SFT difference whose CI excludes zero, and ``floor-mc`` where every role scores zero; two
footprints, the student's (a real bench, priced) and the teacher's (the same bench relabelled with the
teacher's digest). Each examples log is one constructed row whose per-role scores are the summary's, so
what verify.js re-derives in the browser agrees. The card's teacher and base names and a failure mode's
text are attacks; the label must show them as text.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from receipts.cli import main
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root
from tests.generator.test_catalog import DATA, ROOT

MODEL = "models/smollm2-135m-distilled-24l/0.1.0/"
BUNDLE = "smollm2-135m-distilled-24l@0.1.0"
TEACHER = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # examples/card.yaml's
TEACHER_NAME = '<script>window.__pwned = 1</script> "teacher" <b>bold</b>'
BASE_NAME = "javascript:window.__pwned=2"
SCORES = {"teacher": 0.75, "base": 0.25, "student": 0.625, "sft": 0.5}
RETENTION = 0.75  # (S - B)/(T - B)
RETENTION_CI = [0.4375, 1.0625]
GAIN = {"value": 0.125, "ci95": [0.0625, 0.1875], "n": 8, "se": 0.03, "small_n": True}


def _estimate(value: float) -> dict[str, Any]:
    return {"value": value, "ci95": [value - 0.1, value + 0.1], "n": 8, "small_n": True}


def _run(tmp: Path, pack: str, scores: dict[str, float], retention: float | None) -> Path:
    """run_minimal relabelled: pack ``pack``, a hand-written summary and metrics, a one-row examples log."""
    run = tmp / f"run-{pack}"
    shutil.copytree(DATA / "run_minimal", run)
    results = json.loads((run / "results.json").read_text("utf-8"))
    results["pack"]["id"] = pack
    results["models"]["teacher"] = {**results["models"]["teacher"], "digest": TEACHER}
    results["models"]["sft"] = copy.deepcopy(results["models"]["base"])
    results["summary"] = {"primary_metric": "acc", "scores": scores, "retention": retention, "gate": "fail"}
    metric = results["metrics"]["all"]["acc"]
    metric["roles"] = {role: _estimate(value) for role, value in scores.items()}
    if retention is None:
        kept = metric["retention"]["student"]
        kept.update(value=None, ci95=[None, None], reason="teacher_base_gap_below_min")
        kept["student_over_teacher"] = None
        metric["differences"] = {"student-sft": {**GAIN, "value": 0.0, "ci95": [0.0, 0.0]}}
    else:
        metric["retention"]["student"].update(value=retention, ci95=RETENTION_CI)
        metric["differences"] = {"student-sft": GAIN}
    cells = {role: {"scores": {"acc": score}} for role, score in scores.items()}
    row = {"item": "q1", "variant": "original", "roles": cells}
    examples = (json.dumps(row, sort_keys=True) + "\n").encode()
    (run / "examples.jsonl").write_bytes(examples)
    results["examples"]["sha256"] = hashlib.sha256(examples).hexdigest()
    (run / "results.json").write_text(json.dumps(results, indent=2), "utf-8")
    return run


def _footprints(tmp: Path, student_digest: str) -> list[Path]:
    bench = json.loads((DATA / "footprint_demo_student.json").read_text("utf-8"))
    out = []
    for who, digest in (("student", student_digest), ("teacher", TEACHER)):
        doc = copy.deepcopy(bench)
        doc["model"]["digest"] = digest
        path = tmp / f"{who}.footprint.json"
        path.write_text(json.dumps(doc), "utf-8")
        out.append(path)
    return out


def build_label_site(tmp: Path, out: Path) -> Path:
    """Sign the receipt and build the site into ``out``; returns the trust root file."""
    card = yaml.safe_load((ROOT / "examples" / "card.yaml").read_text("utf-8"))
    card["lineage"]["teachers"][0]["name"] = TEACHER_NAME
    card["lineage"]["base"]["name"] = BASE_NAME
    card["failure_modes"][0]["trigger"] = "</script><script>window.__pwned = true</script>"
    card_path = tmp / "card.yaml"
    card_path.write_text(yaml.safe_dump(card), "utf-8")
    runs = [_run(tmp, "tiny-mc", SCORES, RETENTION), _run(tmp, "floor-mc", dict.fromkeys(SCORES, 0.0), None)]
    student = json.loads((runs[0] / "results.json").read_text("utf-8"))["models"]["student"]["digest"]
    key = generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp / "receipts"
    sign_receipt(card_path, [key], receipts, runs=runs, footprints=_footprints(tmp, student))
    assert main(["build", str(receipts), "--trust-root", str(trust), "--out", str(out), "--no-rederive"]) == 0
    return trust
