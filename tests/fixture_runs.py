"""Committed eval runs are real runs: ``tests/data/run_minimal`` and the vectors' release-B run.

    .venv/bin/python -m tests.fixture_runs            # rewrite tests/data/run_minimal
    .venv/bin/python -m tests.fixture_runs --check    # regenerate in a temp folder and compare bytes

Each is ``receipts run`` of ``tests/data/pack_minimal`` on the deterministic ``fake:`` backend (teacher,
base and student), so every number in its results.json re-derives from its examples.jsonl
(``receipts verify --rederive``). One thing is relabelled afterwards: the student's identity. The receipt
tests bind a weights folder (``tests/data/weights_golden``, the model_signing hashing golden), so the
header names that folder and its digest as the student. Identities are header facts that re-derivation
copies rather than computes, and a receipt binds the student's digest to the weights it signs; the
fixture's outputs come from ``fake:student?skill=...`` and this docstring is where that is said. The
run's ``settings.library_versions`` (a fact of the machine that ran it, optional in the schema) is left
out, so that the fixture is the same on every machine.

Both runs are pure functions of the pack, the fake specs and the seed: ``--check`` must find no change.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
from pathlib import Path

from receipts.digests import digest_weights

DATA = Path(__file__).resolve().parent / "data"
PACK = DATA / "pack_minimal"
KEPT = ("examples.jsonl", "results.json")


def fake_run(out: Path, student_skill: float, weights: Path, student_spec: str) -> None:
    """Run the tiny-mc pack on fake teacher/base/student into ``out``; name ``weights`` as the student.

    ``out`` ends up holding exactly results.json and examples.jsonl (no resume state).
    """
    from rich.console import Console

    from runner.eval.command import RunRequest, run_command

    with tempfile.TemporaryDirectory(prefix="fixture-run-") as tmp:
        run = Path(tmp) / "run"
        request = RunRequest(
            packs=(PACK,),
            teacher="fake:teacher",
            base="fake:base?skill=0.2",
            student=f"fake:student?skill={student_skill}",
            out=run,
            use_cache=False,
        )
        run_command(request, console=Console(quiet=True), show_progress=False)
        results = json.loads((run / "results.json").read_bytes())
        root = digest_weights(weights).root
        results["models"]["student"] = {"spec": student_spec, "digest": f"sha256:{root}"}
        results["settings"].pop("library_versions", None)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run / "examples.jsonl", out / "examples.jsonl")
        text = json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (out / "results.json").write_text(text, encoding="utf-8")


def make_run_minimal(out: Path) -> None:
    """``tests/data/run_minimal``: the student of ``tests/data/weights_golden``, skill 0.6."""
    fake_run(out, 0.6, DATA / "weights_golden", "hf:tests/data/weights_golden")


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, compare) tests/data/run_minimal."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="regenerate in a temp folder and compare")
    args = parser.parse_args(argv)
    target = DATA / "run_minimal"
    if not args.check:
        shutil.rmtree(target, ignore_errors=True)
        make_run_minimal(target)
        return 0
    with tempfile.TemporaryDirectory(prefix="fixture-check-") as tmp:
        fresh = Path(tmp) / "run_minimal"
        make_run_minimal(fresh)
        _, mismatch, errors = filecmp.cmpfiles(target, fresh, KEPT, shallow=False)
        if mismatch or errors:
            print(f"tests/data/run_minimal differs from a fresh run: {mismatch + errors}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
