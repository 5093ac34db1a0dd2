"""The benchmarks run end to end in --quick mode and record what the README reports.

No timing assertions: the speed targets are the benchmarks' business (``make bench``), not the tests'.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "bench"
MACHINE_KEYS = {"cpu_model", "cores", "affinity", "python", "threads", "date"}
THREAD_VARIABLES = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}


def run_quick(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *args],
        env={k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES},  # the script pins them
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_timed(side: dict) -> None:
    assert side["median_s"] > 0
    assert len(side["runs_s"]) == 3
    assert all(t > 0 for t in side["runs_s"])


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils sha256sum")
def test_hash_throughput_quick(tmp_path):
    out = tmp_path / "hash.json"
    stdout = run_quick("hash_throughput.py", "--work-dir", str(tmp_path / "work"), "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "hash_throughput"
    assert result["quick"] is True
    assert result["machine"].keys() >= MACHINE_KEYS
    assert {name: result["machine"]["threads"][name] for name in THREAD_VARIABLES} == dict.fromkeys(
        THREAD_VARIABLES, "1"
    )
    single = result["single_file"]
    assert single["bytes"] == 64 * 1024 * 1024
    for side in ("receipts", "sha256sum"):
        assert_timed(single["sides"][side])
        assert single["sides"][side]["mib_per_s"] > 0
    assert single["ratio"] > 0
    assert single["met"] in (True, False)
    folder = result["folder"]
    assert folder["files"] == 102
    for side in ("receipts", "model_signing"):
        assert_timed(folder["sides"][side])
    assert folder["ratio"] > 0
    assert "sha256sum" in stdout


def test_sign_verify_quick(tmp_path):
    out = tmp_path / "sign.json"
    stdout = run_quick("sign_verify.py", "--work-dir", str(tmp_path), "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "sign_verify"
    assert result["machine"].keys() >= MACHINE_KEYS
    for phase in ("sign", "verify"):
        row = result[phase]
        assert row["count"] == 100
        assert_timed(row)
        assert row["per_1000_s"] > 0
        assert row["target_per_1000_s"] == 2.0
        assert row["met"] in (True, False)
        areas = result["profile"][phase]["own_time_by_area"]
        # sign checks a publisher's files with jsonschema (its wording), then both read them as typed formats
        assert "typed formats (pydantic)" in areas
        assert ("JSON Schema validation (jsonschema, referencing)" in areas) == (phase == "sign")
        assert all(a["s"] >= 0 for a in areas.values())
    assert_timed(result["verify_rederive"])  # the default verify, timed apart from the target
    assert "target_per_1000_s" not in result["verify_rederive"]
    with_run = result["with_one_run"]
    assert with_run["count"] == 10
    for name in ("verify", "verify_rederive"):
        assert_timed(with_run[name])
    disk = result["locations"]["disk"]
    assert disk["sign"] == result["sign"]
    assert disk["filesystem"]
    for command in ("receipts_verify", "python_startup", "import_receipts_cli"):
        assert_timed(result["cli"][command])
    assert "cProfile, sign" in stdout
    assert list(tmp_path.iterdir()) == [out]  # the bundles are cleaned up


def test_bench_overhead_quick(tmp_path):
    out = tmp_path / "overhead.json"
    stdout = run_quick("bench_overhead.py", "--work-dir", str(tmp_path / "work"), "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "bench_overhead"
    assert result["machine"].keys() >= MACHINE_KEYS
    (row,) = result["rounds"]
    assert row["receipts"]["threads"] == row["bare"]["threads"] == 1
    assert row["receipts"]["calls"] == row["bare"]["calls"] == 5
    assert result["decode_tps"]["receipts_bench"] > 0
    assert result["decode_tps"]["bare_generate"] > 0
    assert result["ratio"] == result["decode_tps"]["receipts_bench"] / result["decode_tps"]["bare_generate"]
    assert "ratio receipts/bare" in stdout


def test_catalog_build_quick(tmp_path):
    out = tmp_path / "catalog.json"
    stdout = run_quick("catalog_build.py", "--work-dir", str(tmp_path / "work"), "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "catalog_build"
    row = result["sizes"]["50"]
    assert len(row["receipts_build_s"]) == len(row["plain_mkdocs_s"]) == 1
    assert row["ratio"] == pytest.approx(row["receipts_build_s"][0] / row["plain_mkdocs_s"][0])
    assert row["receipts_build_cpu_s"][0] > 0
    assert row["plain_mkdocs_cpu_s"][0] > 0
    assert row["cpu_ratio"] == pytest.approx(row["receipts_build_cpu_s"][0] / row["plain_mkdocs_cpu_s"][0])
    assert row["receipts_build_export_cache"] == ["cold"]  # the bench's own cache, emptied per size
    assert row["output_bytes"] > row["largest_page_bytes"] > 0
    assert row["largest_page"].endswith("index.html")
    assert "receipts build" in stdout


def test_ray_vs_local_quick(tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "ray.json"
    stdout = run_quick("ray_vs_local.py", "--rounds", "1", "--limit", "2", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "ray_vs_local"
    assert result["machine"].keys() >= MACHINE_KEYS
    rows = result["results"]
    assert set(rows) == {"local t=1", "local t=2", "ray w=1", "ray w=2"}
    assert rows["local t=1"]["ratio_to_local_t1"] == 1.0
    # the Ray path computes exactly what the local path does
    assert rows["ray w=1"]["examples_identical_to_local_t1"] is True
    assert rows["ray w=2"]["examples_identical_to_local_t1"] is True
    assert "ray w=2" in stdout


def test_startup_quick(tmp_path):
    out = tmp_path / "startup.json"
    stdout = run_quick("startup.py", "--items", "3", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "startup"
    assert result["machine"].keys() >= MACHINE_KEYS
    sides = result["startup"]
    assert set(sides) == {
        "python -c pass",
        "import receipts",
        "import receipts.cli",
        "import runner",
        "receipts --help",
        "receipts verify",
    }
    for side in sides.values():
        assert_timed(side)
    assert sides["python -c pass"]["ratio_to_python"] == 1.0
    run = result["cached_run"]
    assert run["items"] == 3
    assert len(run["cold_runs_s"]) == len(run["cached_runs_s"]) == 1
    assert run["cold_over_cached"] == run["cold_median_s"] / run["cached_median_s"]
    assert "receipts run, 3 items" in stdout


def test_llamacpp_bench_parity_quick(tmp_path):
    out = tmp_path / "parity.json"
    stdout = run_quick("llamacpp_bench_parity.py", "--work-dir", str(tmp_path / "work"), "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "llamacpp_bench_parity"
    assert result["machine"].keys() >= MACHINE_KEYS
    assert result["settings"]["llama_bench_decode"] == "-p 0 -n 8 -d 32"  # tg after N = 32 tokens
    assert result["quants"]["Q8_0"]["llama_bench_tg_depth0"]["decode_tps_depth0"] > 0
    (row,) = result["quants"]["Q8_0"]["rounds"]
    assert (
        row["receipts"]["threads"]["llama_n_threads"]
        == row["receipts"]["threads"]["llama_n_threads_batch"]
        == 1
    )
    assert row["receipts"]["calls"] == 11
    for key in ("prefill_tps", "decode_tps"):
        summary = result["quants"]["Q8_0"][key]
        assert summary["ratio"] == row["ratio"][key]  # the median of one round's ratio
        assert summary["ratio_of_medians"] == summary["receipts_bench"] / summary["llama_bench"]
        assert summary["round_ratios"] == [row["ratio"][key]]
        assert summary["met"] in (True, False)
        assert summary["best_ratio"] > 0
    assert "prefill ratio" in stdout


def test_generate_rows_quick(tmp_path):
    """Both sides decode the same sub-batches of real pack requests; the record says what the README shows."""
    out = tmp_path / "generate_rows.json"
    stdout = run_quick("generate_rows.py", "--work-dir", str(tmp_path / "work"), "--out", str(out))
    result = json.loads(out.read_text())
    assert result["benchmark"] == "generate_rows"
    assert result["machine"].keys() >= MACHINE_KEYS
    assert result["requests"] == 16  # 8 items of each generation pack
    assert result["identical_texts"] == result["requests"]
    assert 0 <= result["max_logprob_difference"] < 1e-3
    assert result["tokens_generated"] > 0
    assert [len(result["runs_s"][side]) for side in ("receipts", "generate")] == [1, 1]
    assert result["speedup"] == result["median_s"]["generate"] / result["median_s"]["receipts"]
    assert "speed-up generate()/receipts" in stdout
