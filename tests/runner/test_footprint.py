"""`receipts bench`: the DESIGN §8 definitions, real benches of real models, and bad input.

The definitions are checked on synthetic timing streams against values worked out by hand; the bench
itself runs for real (fresh worker processes, a real transformers model) with short settings, so its
verdict is INVALID for being short — which is itself checked.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from receipts import gate, schemas
from receipts.cli import main
from receipts.digests import digest_weights
from receipts.footprint import derive_footprint, rederive_footprint
from receipts.formats import Footprint
from runner.bench import host as hostinfo
from runner.bench.context import limit_first, search_context
from runner.bench.plan import BenchConfig, parse_quants, parse_size
from tests import documents
from tests.models import smollm2_gguf, tiny_llama
from tests.processes import default_sigint

ROOT = Path(__file__).parents[2]

SHORT = [
    "--min-duration",
    "0.5",
    "--min-calls",
    "4",
    "--warmups",
    "1",
    "--prompt-tokens",
    "16",
    "--new-tokens",
    "6",
]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


# --- definitions on synthetic streams -----------------------------------------------------------


def test_context_search_doubles_then_bisects() -> None:
    config = BenchConfig(spec="hf:x", ttft_budget_s=1.0)
    asked: list[int] = []

    def probe(length: int) -> dict[str, object]:
        asked.append(length)
        if length > 700:
            return {"status": "over_ram_budget", "detail": "too big"}
        return {"status": "ok", "ttft_s": 0.1, "peak_rss_bytes": length}

    found = search_context(probe, 64, 4094, config)
    assert asked[:6] == [64, 128, 256, 512, 1024, 768]  # doubling, then bisection
    assert 700 - max(16, 700 // 16) <= found["value"] <= 700
    assert found["limited_by"] == "ram_budget"
    assert all(p["fits"] == (p["prompt_tokens"] <= 700) for p in found["probes"])

    everything = search_context(lambda n: {"status": "ok", "ttft_s": 0.0}, 64, 300, config)
    assert everything["value"] == 300
    assert everything["limited_by"] == "model_limit"

    slow = search_context(lambda n: {"status": "ok", "ttft_s": 5.0}, 64, 300, config)
    assert slow["value"] is None
    assert slow["null_reason"] == "no_context_fits_budget"
    assert slow["limited_by"] == "ttft_budget"


def test_context_search_probes_the_limit_first_when_told_and_never_twice() -> None:
    config = BenchConfig(spec="hf:x", ttft_budget_s=1.0)
    asked: list[int] = []

    def probe(length: int) -> dict[str, object]:
        asked.append(length)
        return {"status": "ok", "ttft_s": length / 1000}

    found = search_context(probe, 64, 900, config, guess_limit=True)
    assert asked == [900]  # it fits, so every shorter prompt does
    assert found["value"] == 900
    assert found["limited_by"] == "model_limit"

    asked.clear()
    found = search_context(probe, 64, 4000, config, guess_limit=True)  # a wrong guess: 4 s > 1 s
    assert asked[:6] == [4000, 64, 128, 256, 512, 1024]  # then the search as without it
    assert asked.count(4000) == 1
    assert 1000 - max(16, 1000 // 16) <= found["value"] <= 1000
    assert found["limited_by"] == "ttft_budget"
    assert found == search_context(probe, 64, 4000, config) | {"probes": found["probes"]}


def test_the_limit_is_guessed_from_the_measured_ttft_with_a_margin() -> None:
    # 0.15 s at 128 tokens, linear to 1,024: 1.2 s, doubled 2.4 s
    assert limit_first(0.15, 128, 1024, 10.0)
    assert not limit_first(0.15, 128, 1024, 2.0)
    assert not limit_first(0.15, 128, 8192, 10.0)  # 9.6 s, doubled 19.2 s: search from the start
    assert not limit_first(None, 128, 1024, 10.0)
    assert not limit_first(0.15, 1024, 1024, 10.0)  # nothing to guess


def test_sizes_and_quants_parse_strictly() -> None:
    assert parse_size("16GB") == 16 * 10**9
    assert parse_size("16GiB") == 16 * 2**30
    assert parse_size("512 MiB") == 512 * 2**20
    assert parse_quants("fp32,int8,bf16,int8-dynamic") == ("fp32", "int8-dynamic", "bf16")


def test_cost_ratio_falls_back_to_machine_seconds() -> None:
    s, t = "sha256:" + "1" * 64, "sha256:" + "2" * 64

    def fp(digest: str, seconds: float) -> Footprint:
        summary = {gate.TIME_KEY: seconds, gate.COST_KEY: None}
        return documents.footprint(model={"digest": digest}, hardware={"hw_class": "hw-a"}, summary=summary)

    assert gate.cost_ratio([fp(s, 50.0), fp(t, 200.0)], s, t) == pytest.approx(0.25)


def test_host_probes_read_this_machine(tmp_path: Path) -> None:
    fp = hostinfo.fingerprint()
    assert fp["logical_cpus"] >= 1
    assert fp["mem_total_bytes"] > 0
    assert hostinfo.hw_class(fp) == hostinfo.hw_class(dict(fp, python="0.0"))  # software is not hardware
    assert hostinfo.hw_class(fp) != hostinfo.hw_class(dict(fp, cpu_model="other"))
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(1 << 20))
    hostinfo.set_page_cache([blob], "warm")
    assert hostinfo.page_cache_residency([blob]) == pytest.approx(1.0)
    assert hostinfo.bandwidth(1, mib=16, repeats=2)["bytes_per_s"] > 1e8


# --- real benches ----------------------------------------------------------------------------------


def test_bench_of_a_tiny_model_end_to_end(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "footprint.json"
    code, text = cli(
        capsys,
        "bench",
        f"hf:{tiny}",
        "--quant",
        "fp32,int8",
        *SHORT,
        "--max-context",
        "64",
        "--price-per-hour",
        "0.5",
        "--concurrency",
        "1,2",
        "--out",
        str(out),
    )
    assert code == 0, text
    fp = json.loads(out.read_text())
    schemas.validate(fp, "footprint")
    assert not out.with_name(out.name + ".parts").exists()  # parts go once the footprint is whole
    assert [p["id"] for p in fp["points"]] == ["fp32/c1", "fp32/c2", "int8-dynamic/c1", "int8-dynamic/c2"]
    batch = fp["points"][1]
    assert batch["metrics"]["throughput_rps"] == pytest.approx(
        2 * batch["calls"] / sum(batch["samples"]["e2e_s"])
    )
    assert list(fp["summary"]["by_quant"]) == [p["id"] for p in fp["points"]]
    for point in fp["points"]:
        assert point["status"] == "ok"
        assert point["threads"]["torch_num_threads"] == 1  # read back from torch in the worker
        assert point["threads"]["env"]["OMP_NUM_THREADS"] == "1"
        samples = point["samples"]
        assert point["calls"] == len(samples["e2e_s"]) >= 4
        assert all(len(times) == 6 for times in samples["token_times_s"])  # exactly G new tokens
        ttft = [times[0] for times in samples["token_times_s"]]
        assert point["metrics"]["ttft_s"]["n"] == point["calls"]
        assert point["metrics"]["ttft_s"]["mean"] == pytest.approx(statistics.fmean(ttft))
        assert point["metrics"]["itl_s"]["n"] == point["calls"] * 5
        assert all(0 < t <= e for t, e in zip(ttft, samples["e2e_s"], strict=True))
        assert point["memory"]["peak_rss_bytes"] > point["memory"]["weights_bytes_resident"] > 0
        assert point["roofline_decode_tps"] > 0
        assert point["roofline_fraction"] > 0
        assert point["energy"]["status"] in ("measured", "unavailable")
        codes = {r["code"] for r in point["verdict"]["reasons"] if r["severity"] == "invalid"}
        assert {"min_duration", "min_warmups"} <= codes  # a tiny model makes 30 calls in 0.5 s
    fp32, _, int8, _ = fp["points"]
    assert int8["memory"]["weights_bytes_resident"] < fp32["memory"]["weights_bytes_resident"]
    assert int8["runtime_quant"] == "int8-dynamic"
    assert fp["verdict"]["status"] == "INVALID"
    assert fp["settings"]["short_run"] is True
    ctx = fp["max_usable_context"]
    assert ctx["value"] == 64
    assert ctx["limited_by"] == "model_limit"
    summary = fp["summary"]
    assert summary["max_usable_context"] == 64
    assert summary["cost_per_1k_calls"] == pytest.approx(0.5 * summary["machine_seconds_per_1k_calls"] / 3600)
    assert summary["machine_seconds_per_1k_calls"] == pytest.approx(1000 / fp32["metrics"]["throughput_rps"])
    assert fp["bandwidth"]["before"]["bytes_per_s"] > 0
    assert fp["bandwidth"]["after"]["bytes_per_s"] > 0
    assert fp["hardware"]["hw_class"].startswith("hw-")
    assert fp["model"]["storage_quant"] == "float32"
    assert fp["model"]["file_bytes"] > 0
    assert all(len(f["sha256"]) == 64 for f in fp["model"]["files"])
    assert summary["null_reasons"] == {"peak_vram_bytes": "device cpu: no GPU memory used"}  # all else is set
    assert "INVALID" in text
    assert "min_duration" in text
    # every derived number comes back from the samples, to the byte, with the kernel's code (verify's)
    assert rederive_footprint(fp) == []
    assert json.dumps(derive_footprint(fp), indent=1) + "\n" == out.read_text()


def test_budgets_that_cannot_be_met_end_cleanly(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fp.json"
    started = time.monotonic()
    code, text = cli(capsys, "bench", f"hf:{tiny}", *SHORT, "--ttft-budget", "0.000001", "--out", str(out))
    assert code == 0, text
    fp = json.loads(out.read_text())
    ctx = fp["max_usable_context"]
    assert ctx["value"] is None
    assert ctx["null_reason"] == "no_context_fits_budget"
    assert ctx["limited_by"] == "ttft_budget"
    assert time.monotonic() - started < 120  # the watchdog stops a probe at the budget: no hang
    assert "max usable context: n/a" in text


def test_a_model_that_does_not_fit_is_caught_and_reported(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fp.json"
    code, text = cli(capsys, "bench", f"hf:{tiny}", *SHORT, "--ram-budget", "50MB", "--out", str(out))
    assert code == 0, text
    fp = json.loads(out.read_text())
    schemas.validate(fp, "footprint")
    point = fp["points"][0]
    assert point["status"] == "over_ram_budget"
    assert "budget 50000000" in point["detail"]
    assert {r["code"] for r in fp["verdict"]["reasons"]} >= {"does_not_fit"}
    assert fp["max_usable_context"]["value"] is None
    reasons = fp["summary"]["null_reasons"]
    assert reasons["ttft_p50_s"] == "the fp32/c1 point: over_ram_budget"  # every null says why
    assert reasons["cost_per_1k_calls"] == "no --price-per-hour given"
    assert "over_ram_budget" in text


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["fake:student"], 2, "measures local models"),
        (["hf:/no/such/model"], 1, "does not exist"),
        (["hf:{tiny}", "--quant", "fp16"], 2, "fp16"),
        (["hf:{tiny}", "--ram-budget", "16"], 2, "16GB"),
        (["hf:{tiny}@bf16"], 2, "--quant"),
        (["hf:{tiny}?chat_template=1"], 2, "drop ?chat_template=1"),
        (["hf:{tiny}@bf16?chat_template=1"], 2, "asks for a chat template"),
        (["hf:{tiny}", "--new-tokens", "1"], 2, "TPOT"),
        (["hf:{tiny}", "--concurrency", "one"], 2, "comma-separated"),
        (["hf:{tiny}", "--device", "cuda", "--quant", "int8"], 2, "CPU only"),
    ],
)
def test_bad_bench_input_gets_one_clear_message(
    tiny: Path, tmp_path: Path, args: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.replace("{tiny}", str(tiny)) for a in args]
    got, text = cli(capsys, "bench", *argv, "--out", str(tmp_path / "fp.json"))
    assert got == code, text
    assert needle in text
    assert "Traceback" not in text


def test_out_must_be_a_json_file(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = cli(capsys, "bench", f"hf:{tiny}", "--out", str(tmp_path / "fp.txt"))
    assert code == 2
    assert ".json" in text


def _finished_points(parts: Path) -> list[Path]:
    return [p for p in parts.glob("point-*.json") if re.fullmatch(r"point-[0-9a-f]{20}\.json", p.name)]


def _bench_until_first_point(bench: list[str], parts: Path, output: int) -> subprocess.Popen[str]:
    """Start ``receipts BENCH...`` in its own process group; return once its first point is kept."""
    argv = [sys.executable, "-m", "receipts.cli", *bench]
    proc = subprocess.Popen(
        argv, stdout=output, stderr=output, text=True, start_new_session=True, preexec_fn=default_sigint
    )
    deadline = time.monotonic() + 120
    while not _finished_points(parts):
        assert time.monotonic() < deadline, "no measurement point finished within 120 s"
        time.sleep(0.2)
    return proc


@pytest.mark.slow
def test_interrupted_bench_resumes_without_measuring_again(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fp.json"
    parts = out.with_name(out.name + ".parts")
    bench = ["bench", f"hf:{tiny}", "--quant", "fp32,int8", *SHORT, "--no-context-search", "--out", str(out)]
    proc = _bench_until_first_point(bench, parts, subprocess.DEVNULL)
    os.killpg(proc.pid, signal.SIGKILL)  # a crash: no chance to clean up
    proc.wait()
    assert _finished_points(parts)
    assert not out.exists()
    code, text = cli(capsys, *bench)
    assert code == 2
    assert "--resume" in text
    code, text = cli(capsys, *bench, "--resume")
    assert code == 0, text
    assert "kept from the interrupted bench" in text
    schemas.validate(json.loads(out.read_text()), "footprint")
    code, text = cli(capsys, "bench", f"hf:{tiny}", "--quant", "fp32", *SHORT, "--out", str(out), "--resume")
    assert code == 0, text  # nothing left to resume: a fresh bench


@pytest.mark.model
def test_bench_smollm2_at_two_quantizations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "footprint.json"
    code, text = cli(
        capsys,
        "bench",
        f"gguf:{smollm2_gguf()}",
        "--quant",
        "fp32,int8",
        "--min-duration",
        "1",
        "--min-calls",
        "11",
        "--warmups",
        "1",
        "--prompt-tokens",
        "32",
        "--new-tokens",
        "8",
        "--max-context",
        "256",
        "--ttft-budget",
        "5",
        "--out",
        str(out),
    )
    assert code == 0, text
    fp = json.loads(out.read_text())
    schemas.validate(fp, "footprint")
    assert fp["model"]["storage_quant"] == "Q4_1"
    assert fp["model"]["kind"] == "gguf"
    assert fp["model"]["file_bytes"] == smollm2_gguf().stat().st_size
    fp32, int8 = fp["points"]
    assert fp32["status"] == int8["status"] == "ok"
    assert fp32["memory"]["params"] == pytest.approx(134_515_008, rel=0.01)
    assert fp32["memory"]["weights_bytes_resident"] == pytest.approx(4 * fp32["memory"]["params"], rel=0.01)
    assert int8["memory"]["weights_bytes_resident"] < 0.6 * fp32["memory"]["weights_bytes_resident"]
    assert fp32["compute_dtype"] == "float32"
    assert 0 < fp32["roofline_fraction"] < 1.5
    assert fp["max_usable_context"]["value"] == 256


@pytest.mark.slow
def test_quantization_survival_is_signed_next_to_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run (student + student@int8-dynamic), bench (fp32,int8), sign, verify: one table row per quant."""
    import base64
    from datetime import UTC, datetime

    from receipts.keys import generate
    from receipts.sign import sign_receipt
    from receipts.trust import new_root, trust_root_from_bytes
    from receipts.verify import verify_receipt

    models = {
        "teacher": tiny_llama(tmp_path / "teacher", seed=0),
        "base": tiny_llama(tmp_path / "base", seed=1, layers=1),
        "student": tiny_llama(tmp_path / "student", seed=2),
    }
    student = models["student"]
    code, text = cli(
        capsys,
        "run",
        str(ROOT / "packs" / "capitals-mc"),
        "--limit",
        "6",
        "--variant",
        "original",
        "--teacher",
        f"hf:{models['teacher']}",
        "--base",
        f"hf:{models['base']}",
        "--student",
        f"hf:{student}",
        "--student-variant",
        f"hf:{student}@int8-dynamic",
        "--out",
        str(tmp_path / "run"),
        "--no-cache",
    )
    assert code == 0, text
    fp_path = tmp_path / "student-footprint.json"
    code, text = cli(
        capsys,
        "bench",
        f"hf:{student}",
        "--quant",
        "fp32,int8",
        *SHORT,
        "--no-context-search",
        "--out",
        str(fp_path),
    )
    assert code == 0, text
    key = generate()
    card = yaml.safe_load((ROOT / "examples" / "card.yaml").read_text("utf-8"))
    teacher_root = "sha256:" + digest_weights(models["teacher"]).root  # the card names the evaluated teacher
    card["lineage"]["teachers"][0]["weights_digest"] = teacher_root
    # the demo card's failure modes name items, slices and roles a six-item run of three models lacks
    items = (ROOT / "packs" / "capitals-mc" / "data" / "items.jsonl").read_text("utf-8")
    first_item = json.loads(items.splitlines()[0])["id"]
    card["failure_modes"] = [
        {**card["failure_modes"][0], "pack_items": [f"capitals-mc/{first_item}"], "evidence": []}
    ]
    card["failure_modes"][0]["description"] = "Loses accuracy on rare countries (a hypothesis)."
    (tmp_path / "card.yaml").write_text(yaml.safe_dump(card), "utf-8")
    bundle = sign_receipt(
        tmp_path / "card.yaml",
        [key],
        tmp_path / "out",
        weights=student,
        runs=[tmp_path / "run"],
        footprints=[fp_path],
    )
    root = trust_root_from_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    assert verify_receipt(bundle / "receipt.json", root, weights=student).ok
    statement = json.loads(base64.b64decode(json.loads((bundle / "receipt.json").read_bytes())["payload"]))
    table = {row["quant"]: row for row in statement["predicate"]["quantization"]}
    assert list(table) == ["fp32", "int8-dynamic"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    retention = results["metrics"]["all"][results["primary_metric"]]["retention"]
    for quant, role in (("fp32", "student"), ("int8-dynamic", "student@int8-dynamic")):
        (evaluated,) = table[quant]["evaluated"].values()
        assert evaluated["role"] == role
        assert evaluated["retention"] == retention[role]["value"]
        (benched,) = table[quant]["benched"]
        assert benched["status"] == "ok"
        assert benched["peak_rss_bytes"] > 0
        assert benched["decode_tps_p50"] is None or benched["decode_tps_p50"] > 0
    assert (
        table["int8-dynamic"]["benched"][0]["weights_bytes_resident"]
        < table["fp32"]["benched"][0]["weights_bytes_resident"]
    )


@pytest.mark.slow
def test_ctrl_c_keeps_finished_points_and_says_how_to_resume(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "fp.json"
    parts = out.with_name(out.name + ".parts")
    bench = ["bench", f"hf:{tiny}", "--quant", "fp32,int8", *SHORT, "--no-context-search", "--out", str(out)]
    proc = _bench_until_first_point(bench, parts, subprocess.PIPE)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "rerun the same command with --resume" in stderr
    assert "Traceback" not in stderr
    assert parts.is_dir()
    assert not out.exists()
