"""A small catalog for the catalog table, home page and search tests: models on two packs, one hostile.

Each model's runs are ``receipts run`` on the deterministic ``fake:`` backend: ``tiny-mc``
(``tests/data/pack_minimal``, teacher ``fake:teacher``) and ``capitals-mc`` (first 40 items, teacher
``fake:t?skill=0.9``), the two teachers ``tests/data/card_fake_teacher.yaml`` names, with the student
relabelled as ``tests/data/weights_golden`` as ``tests/fixture_runs.py`` does. Its footprint is
``tests/data/footprint_minimal.json`` with one measured point written by hand (peak RSS per model), so
the site is built with ``--no-rederive``. The second teacher's name and each description are hostile text.
"""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from receipts.cli import main
from receipts.digests import digest_weights
from receipts.keys import generate
from receipts.sign import sign_receipt
from receipts.trust import new_root

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
HOSTILE_TEACHER = '<img src=x onerror="window.__pwned=1">Evil & Co teacher'
QUILL = "Professor Quillfeather (fake backend)"
HOSTILE_TEXT = "</script><script>window.__pwned = 2</script> [link](javascript:alert(1))"

MODELS: dict[str, dict[str, Any]] = {
    # name: student skill, peak RSS of its one measured point (None: no footprint), packs it ran
    "alpha-model": {"skill": 0.2, "rss": 2.0e9, "packs": ("tiny-mc", "capitals-mc"), "issued": 1},
    "beta-model": {"skill": 0.8, "rss": 0.6e9, "packs": ("tiny-mc", "capitals-mc"), "issued": 3},
    "gamma-model": {"skill": 0.65, "rss": 1.2e9, "packs": ("capitals-mc",), "issued": 2},
    "delta-model": {"skill": 0.9, "rss": None, "packs": ("tiny-mc",), "issued": 4},
}


def _run(out: Path, pack: str, skill: float) -> Path:
    from rich.console import Console

    from runner.eval.command import RunRequest, run_command

    path = DATA / "pack_minimal" if pack == "tiny-mc" else ROOT / "packs" / "capitals-mc"
    teacher = "fake:teacher" if pack == "tiny-mc" else "fake:t?skill=0.9"
    with tempfile.TemporaryDirectory(prefix="catalog-run-") as tmp:
        request = RunRequest(
            packs=(path,),
            teacher=teacher,
            base="fake:base?skill=0.1",
            student=f"fake:student?skill={skill}",
            out=Path(tmp) / "run",
            use_cache=False,
            limit=40,
        )
        run_command(request, console=Console(quiet=True), show_progress=False)
        made = next((Path(tmp) / "run").rglob("results.json")).parent
        results = json.loads((made / "results.json").read_bytes())
        root = digest_weights(DATA / "weights_golden").root
        results["models"]["student"] = {"spec": "hf:tests/data/weights_golden", "digest": f"sha256:{root}"}
        out.mkdir(parents=True)
        (out / "examples.jsonl").write_bytes((made / "examples.jsonl").read_bytes())
        (out / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True), "utf-8")
    return out


def _footprint(out: Path, rss: float) -> Path:
    footprint = json.loads((DATA / "footprint_minimal.json").read_bytes())
    point = {"quant": "fp32", "concurrency": 1, "status": "ok", "verdict": "VALID"}
    point |= {"peak_rss_bytes": int(rss), "decode_tps_p50": round(1e10 / rss, 3)}
    footprint["summary"]["by_quant"] = {"fp32/c1": point}
    out.write_text(json.dumps(footprint, indent=2), "utf-8")
    return out


def build_catalog_site(tmp: Path, out: Path, *, site_url: str | None = None) -> Path:
    """Sign the models above and ``receipts build`` them into ``out``; returns the receipts folder."""
    key = generate()
    trust = tmp / "trust.json"
    trust.write_bytes(new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    receipts = tmp / "receipts"
    base = yaml.safe_load((DATA / "card_fake_teacher.yaml").read_text("utf-8"))
    for name, spec in MODELS.items():
        card = json.loads(json.dumps(base))
        card["model"]["name"] = name
        card["model"]["description"] = f"{name}: {HOSTILE_TEXT}"
        card["model"]["tags"] = ["catalog-test", name.split("-")[0]]
        card["lineage"]["teachers"][1]["name"] = HOSTILE_TEACHER
        if name == "beta-model":  # one model whose teacher a search can find it by alone
            card["lineage"]["teachers"][0]["name"] = QUILL
        path = tmp / f"{name}.card.yaml"
        path.write_text(yaml.safe_dump(card), "utf-8")
        runs = [_run(tmp / "runs" / name / pack, pack, spec["skill"]) for pack in spec["packs"]]
        prints = [_footprint(tmp / f"{name}.footprint.json", spec["rss"])] if spec["rss"] else []
        when = datetime(2026, 1, spec["issued"], tzinfo=UTC)
        sign_receipt(path, [key], receipts, runs=runs, footprints=prints, issued_at=when)
    argv = ["build", str(receipts), "--trust-root", str(trust), "--out", str(out), "--no-rederive"]
    assert main(argv) == 0
    return receipts
