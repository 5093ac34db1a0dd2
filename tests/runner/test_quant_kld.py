"""Quantization fidelity in llama.cpp's terms (issue #21): statistics, text-mode parity with llama-perplexity.

The statistics are held to an independent float64 computation on constructed logits; the text mode to
``llama-perplexity --kl-divergence`` itself, on tiny real models quantized by llama.cpp (Q8_0, Q4_K_M,
Q4_0): with one chunk per batch (``-b CTX``, the evaluation receipts does) every printed statistic agrees
to its last printed digit; with the tool's default batch (several chunks per forward, which moves the
logits' last bits) the means agree within the uncertainty it reports.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

from receipts.errors import InputError, UsageError
from receipts.metrics.quant_kld import NllSums, mean_and_uncertainty, summarize
from runner.llamacpp.kld import compare_text, pack_base, read_llama_base, token_stats
from tests.llama_perplexity import kl_divergence

PROSE = Path(__file__).resolve().parents[1] / "data" / "kld_prose.txt"
CTX = 128
MEANS = ("mean_kld", "ln_ppl_ratio", "delta_p_mean", "delta_p_rms", "same_top_rate")


# --- the statistics, against an independent computation ---


def _constructed(
    seed: int = 0, rows: int = 400, vocab: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 2.0, (rows, vocab)).astype(np.float32)
    base[::7, 3] += 12.0  # peaked rows, whose tails fall below max - 16
    quant = (base + rng.normal(0, 0.05, base.shape)).astype(np.float32)
    targets = rng.integers(0, vocab, rows)
    return base, quant, targets


def test_per_token_values_match_float64_definitions():
    base, quant, targets = _constructed()
    found = token_stats(pack_base(base), quant, targets)
    lp, lq = log_softmax(base.astype(np.float64), axis=1), log_softmax(quant.astype(np.float64), axis=1)
    keep = lp > -16  # llama-perplexity sums KL over the base's tokens above -16
    kld = np.where(keep, np.exp(lp) * (lp - lq), 0.0).sum(axis=1)
    rows = np.arange(len(targets))
    # the base is stored in 16-bit steps of at most 16 / 65535 nats: that bounds every difference
    step = 16 / 65535
    np.testing.assert_allclose(found.kld, kld, atol=2 * step)
    np.testing.assert_allclose(found.nll, -lq[rows, targets], atol=1e-5)
    # a base log-probability more than 16 below the top one is stored as the floor: max - 16
    floor = np.maximum(lp.min(axis=1), lp.max(axis=1) - 16)
    stored = np.maximum(lp[rows, targets], floor)
    assert (stored != lp[rows, targets]).any()  # the constructed rows exercise the floor
    np.testing.assert_allclose(found.nll_base, -stored, atol=step)
    expected_dp = np.exp(lq[rows, targets]) - np.exp(stored)
    np.testing.assert_allclose(found.delta_p, expected_dp, atol=2 * step)
    assert np.array_equal(found.same_top, base.argmax(axis=1) == quant.argmax(axis=1))
    assert not found.same_top.all()
    assert found.same_top.any()


def test_kld_sums_only_the_base_tokens_above_minus_16():
    base = np.array([[20.0, 0.0, -3.0, 1.0]], dtype=np.float32)  # tokens 1-3 sit below -16
    quant = np.array([[20.0, 5.0, 5.0, 5.0]], dtype=np.float32)
    found = token_stats(pack_base(base), quant, [0])
    lp, lq = log_softmax(base[0].astype(np.float64)), log_softmax(quant[0].astype(np.float64))
    assert found.kld[0] == pytest.approx(math.exp(lp[0]) * (lp[0] - lq[0]), abs=1e-6)
    full = float(np.sum(softmax(base[0].astype(np.float64)) * (lp - lq)))
    assert abs(full - found.kld[0]) > 1e-9  # the tail terms are left out, as llama-perplexity does


def test_statistics_match_numpy():
    base, quant, targets = _constructed(seed=1)
    tokens = token_stats(pack_base(base), quant, targets)
    got = tokens.summary().as_dict()
    kld = tokens.kld.astype(np.float64)
    n = kld.size
    assert got["tokens"] == n
    assert got["mean_kld"] == pytest.approx(kld.mean(), rel=1e-12)
    assert got["mean_kld_unc"] == pytest.approx(kld.std() / math.sqrt(n - 1), rel=1e-9)
    for name, q in (("kld_p99", 99), ("kld_p95", 95), ("kld_p90", 90), ("kld_p10", 10), ("kld_p1", 1)):
        assert got[name] == pytest.approx(np.percentile(kld, q), rel=1e-5, abs=1e-7)
    assert got["kld_median"] == pytest.approx(np.median(kld), rel=1e-6)
    assert got["kld_max"] == pytest.approx(kld.max())
    assert got["kld_min"] == pytest.approx(kld.min())
    dp = tokens.delta_p.astype(np.float64)
    assert got["delta_p_mean"] == pytest.approx(dp.mean(), rel=1e-9, abs=1e-15)
    assert got["delta_p_rms"] == pytest.approx(math.sqrt(np.mean(dp**2)), rel=1e-6)
    rms_unc = 0.5 / math.sqrt(np.mean(dp**2)) * (dp**2).std() / math.sqrt(n - 1)
    assert got["delta_p_rms_unc"] == pytest.approx(rms_unc, rel=1e-4)
    rate = tokens.same_top.mean()
    assert got["same_top_rate"] == pytest.approx(rate)
    assert got["same_top_rate_unc"] == pytest.approx(math.sqrt(rate * (1 - rate) / (n - 1)))
    q, b = tokens.nll.astype(np.float64), tokens.nll_base.astype(np.float64)
    assert got["ln_ppl_ratio"] == pytest.approx(q.mean() - b.mean(), rel=1e-9)
    var_q, var_b = q.var() / (n - 1), b.var() / (n - 1)
    cov = np.cov(q, b, ddof=0)[0, 1] / (n - 1)
    assert got["ln_ppl_ratio_unc"] == pytest.approx(math.sqrt(var_q + var_b - 2 * cov), rel=1e-4)
    assert got["ppl"] == pytest.approx(math.exp(q.mean()), rel=1e-9)


def test_uncertainty_is_undefined_below_eleven_values_and_inputs_are_checked():
    assert mean_and_uncertainty(3.0, 5.0, 10) == (0.3, None)
    assert mean_and_uncertainty(11.0, 11.0, 11) == (1.0, 0.0)  # no spread: zero, as llama-perplexity
    with pytest.raises(ValueError, match="no values"):
        mean_and_uncertainty(0.0, 0.0, 0)
    with pytest.raises(ValueError, match="not a finite number"):
        summarize([0.1, float("nan")], [0.0, 0.0], 1, NllSums())
    with pytest.raises(ValueError, match="2 kld values but 1 delta_p"):
        summarize([0.1, 0.2], [0.0], 1, NllSums())
    with pytest.raises(ValueError, match="same_top 3"):
        summarize([0.1, 0.2], [0.0, 0.0], 3, NllSums())


# --- text mode: parity with llama-perplexity ---


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny real models with SmolLM2's tokenizer, converted and quantized by llama.cpp.

    ``sharp``: `tiny_smol` as it is (peaked distributions: the -16 clip of the base's log-probabilities
    matters); ``flat``: its embeddings scaled back to the default initialisation (near-uniform
    distributions, whose top token the quantization flips often).
    """
    import torch
    import transformers

    from runner.llamacpp.quantize import quantize
    from tests.models import tiny_smol

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("quant-kld")
    found = {}
    for name, factor in (("sharp", 1.0), ("flat", 0.2)):
        folder = tiny_smol(root / name)
        if factor != 1.0:
            model = transformers.AutoModelForCausalLM.from_pretrained(folder)
            with torch.no_grad():
                model.model.embed_tokens.weight.mul_(factor)
            model.save_pretrained(folder)
        found[f"{name}.folder"] = folder
        made = quantize(folder, ["F16", "Q8_0", "Q4_K_M", "Q4_0"], root / f"{name}-gguf")
        for quant in ("F16", "Q8_0", "Q4_K_M", "Q4_0"):
            found[f"{name}.{quant}"] = made.file(quant)
    return found


def test_base_log_probs_are_llama_perplexitys_bit_for_bit(ggufs: dict[str, Path], tmp_path: Path):
    from runner.llamacpp.kld import ScoringModel, chunk_tokens

    kl_divergence(ggufs["flat.F16"], ggufs["flat.Q4_0"], PROSE, ctx=CTX, work=tmp_path, batch=CTX)
    ctx, tokens, chunks = read_llama_base(tmp_path / "base.kld")
    model = ScoringModel(ggufs["flat.F16"], ctx=CTX)
    try:
        ours = model.tokenize(PROSE.read_text("utf-8"))
        assert ctx == CTX
        assert ours[: len(tokens)] == tokens
        for chunk, theirs in zip(chunk_tokens(ours, CTX, model.bos), chunks, strict=True):
            mine = pack_base(model.logits(chunk, CTX // 2))
            assert np.array_equal(mine.scale, theirs.scale)
            assert np.array_equal(mine.min_log_prob, theirs.min_log_prob)
            assert np.array_equal(mine.levels, theirs.levels)
    finally:
        model.close()


def _within(ours: float | None, theirs: float, slack: float) -> bool:
    return ours is not None and abs(ours - theirs) <= slack


@pytest.mark.parametrize(
    "pair", ["flat.Q8_0", "flat.Q4_K_M", "flat.Q4_0", "sharp.Q4_K_M"], ids=lambda p: p.replace(".", "-")
)
def test_text_mode_equals_llama_perplexity_one_chunk_per_batch(
    pair: str, ggufs: dict[str, Path], tmp_path: Path
):
    base = ggufs[pair.split(".")[0] + ".F16"]
    ours = compare_text(base, ggufs[pair], PROSE, ctx=CTX).stats.summary().as_dict()
    theirs = kl_divergence(base, ggufs[pair], PROSE, ctx=CTX, work=tmp_path, batch=CTX)
    assert len(theirs) == 31  # every statistic it prints was read
    # one unit in the last printed digit (PPLs: a relative 1e-6, its own sums' rounding)
    wrong = {
        name: (ours[name], printed.value)
        for name, printed in theirs.items()
        if not _within(ours[name], printed.value, printed.resolution + 1e-6 * abs(printed.value))
    }
    assert not wrong
    for name in MEANS:  # and the uncertainties it prints
        unc = theirs[name].unc
        assert unc is not None
        assert _within(ours[f"{name}_unc"], unc, theirs[name].resolution)


def test_text_mode_within_llama_perplexitys_uncertainty_at_its_default_batch(
    ggufs: dict[str, Path], tmp_path: Path
):
    base, quant = ggufs["flat.F16"], ggufs["flat.Q4_K_M"]
    ours = compare_text(base, quant, PROSE, ctx=CTX).stats.summary().as_dict()
    theirs = kl_divergence(base, quant, PROSE, ctx=CTX, work=tmp_path)  # -b 2048: all 6 chunks at once
    for name in MEANS:
        printed = theirs[name]
        assert printed.unc is not None
        assert _within(ours[name], printed.value, printed.unc + printed.resolution), name


@pytest.mark.slow
def test_smollm2_f16_vs_q4_k_m_equals_llama_perplexity(tmp_path: Path):
    """SmolLM2-135M-Instruct F16 vs Q4_K_M: real distributions, where Δp and the top token move."""
    from tests.models import smollm2_quantized

    made = smollm2_quantized(["F16", "Q4_K_M"], tmp_path / "smol")
    base, quant = made.file("F16"), made.file("Q4_K_M")
    ours = compare_text(base, quant, PROSE, ctx=CTX).stats.summary().as_dict()
    theirs = kl_divergence(base, quant, PROSE, ctx=CTX, work=tmp_path, batch=CTX)
    assert 0.01 < ours["mean_kld"] < 0.5
    assert 0.5 < ours["same_top_rate"] < 0.99
    wrong = {
        name: (ours[name], p.value)
        for name, p in theirs.items()
        if not _within(ours[name], p.value, p.resolution + 1e-6 * abs(p.value))
    }
    assert not wrong


# --- the command ---


def _cli(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    from receipts.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(list(args))
    return code, buffer.getvalue()


def test_cli_prints_the_statistics_as_json(ggufs: dict[str, Path]):
    code, text = _cli(
        "quant-kld",
        str(ggufs["flat.F16"]),
        str(ggufs["flat.Q8_0"]),
        "--text",
        str(PROSE),
        "--ctx",
        "128",
        "--json",
    )
    assert code == 0
    found = json.loads(text)
    assert found["chunks"] == 6
    assert found["ctx"] == 128
    assert found["statistics"]["tokens"] == 6 * 63
    assert found["quant"]["file"].endswith("Q8_0.gguf")
    assert found["quant"]["sha256"].startswith("sha256:")
    assert 0 < found["statistics"]["mean_kld"] < 1e-3
    assert set(found["quant"]["toolchain"]) == {"llama_cpp_python", "llama_cpp_commit", "build_flags_sha256"}


def test_cli_finds_the_base_of_a_quantization_it_made(ggufs: dict[str, Path], tmp_path: Path):
    args = ["--text", str(PROSE), "--ctx", "128", "--chunks", "2", "--json"]
    code, alone = _cli("quant-kld", str(ggufs["flat.Q4_0"]), *args)
    assert code == 0
    code, both = _cli("quant-kld", str(ggufs["flat.F16"]), str(ggufs["flat.Q4_0"]), *args)
    assert code == 0
    assert json.loads(alone) == json.loads(both)


def test_cli_refuses_bad_input_with_one_clear_error(
    ggufs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    base, quant = str(ggufs["flat.F16"]), str(ggufs["flat.Q8_0"])
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(Path(quant).read_bytes()[:4096])
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9 ".encode("latin-1") * 400)
    cases = [
        ((base, quant, "--text", str(tmp_path / "missing.txt")), 1, "the text file does not exist"),
        ((base, quant, "--text", str(tmp_path)), 1, "not a regular file"),
        ((base, quant, "--text", str(latin)), 1, "not UTF-8"),
        ((base, quant, "--text", str(PROSE), "--ctx", "1024"), 1, "needs at least 2048"),
        ((base, quant, "--text", str(PROSE), "--ctx", "2"), 2, "--ctx 2"),
        ((base, quant, "--text", str(PROSE), "--threads", "0"), 2, "--threads 0"),
        ((base, str(PROSE), "--text", str(PROSE)), 1, "is not a GGUF file"),
        ((base, str(truncated), "--text", str(PROSE), "--ctx", "128"), 1, "llama.cpp could not load"),
        ((str(truncated), "--text", str(PROSE)), 2, "its base is unknown"),
        ((base, base, quant, "--text", str(PROSE)), 2, "not 3 files"),
    ]
    for args, code, message in cases:
        got, _ = _cli("quant-kld", *args)
        error = capsys.readouterr().err
        assert got == code, (args, error)
        assert message in error, (args, error)
        assert "Traceback" not in error


def test_compare_text_checks_its_options(ggufs: dict[str, Path]):
    with pytest.raises(UsageError, match="--chunks 0"):
        compare_text(ggufs["flat.F16"], ggufs["flat.Q8_0"], PROSE, ctx=CTX, chunks=0)
    two = compare_text(ggufs["flat.F16"], ggufs["flat.Q8_0"], PROSE, ctx=CTX, chunks=2)
    assert two.chunks == 2
    assert two.stats.kld.size == 2 * (CTX - 1 - CTX // 2)


# --- pack mode: a quantized role against its base, signed per item, re-derived by verify ---

CARD = Path(__file__).resolve().parents[1] / "data" / "card_fake_teacher.yaml"
MINIMAL = Path(__file__).resolve().parents[1] / "data" / "pack_minimal"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3"]
ROLE = "student@fp32"


@pytest.fixture(scope="module")
def pack_run(ggufs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``receipts run``: the tiny model as the student (fp32), its Q4_0 file (with lineage) as a variant."""
    from datetime import UTC, datetime

    from receipts.cli import main
    from receipts.keys import generate
    from receipts.trust import new_root

    tmp = tmp_path_factory.mktemp("pack-mode")
    key = generate()
    (tmp / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    variant = f"gguf:{ggufs['flat.Q4_0']}@fp32"  # the dequantised path until the llamacpp: backend lands
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        student = ["--student", f"hf:{ggufs['flat.folder']}", "--student-variant", variant]
        code = main(["run", str(MINIMAL), *ROLES, *student, "--out", str(tmp / "run")])
    assert code == 0
    return {"tmp": tmp, "key": key}


def _run_files(pack_run: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    run = pack_run["tmp"] / "run"
    results = json.loads((run / "results.json").read_bytes())
    return results, [json.loads(line) for line in (run / "examples.jsonl").read_bytes().splitlines()]


@pytest.mark.slow  # the fixture's run: ~45 s, mostly transformers dequantising the gguf: variant
def test_pack_mode_records_per_item_evidence_and_its_statistics(
    pack_run: dict[str, Any], ggufs: dict[str, Path]
):
    from receipts.digests import sha256_file

    results, rows = _run_files(pack_run)
    found = results["quant_fidelity"][ROLE]
    assert set(results["quant_fidelity"]) == {ROLE}  # the fake roles are no quantizations
    assert found["base"]["sha256"] == "sha256:" + sha256_file(ggufs["flat.F16"])
    assert found["base"]["quant"] == "F16"
    assert results["settings"]["quant_fidelity"][ROLE]["base"] == found["base"]
    records = [row["roles"][ROLE]["quant_kld"] for row in rows]
    kld = np.concatenate([r["kld"] for r in records])
    assert found["tokens"] == kld.size == sum(len(r["delta_p"]) for r in records)
    assert found["items"] == len(rows) == 2
    assert found["missing"] == 0
    assert found["mean_kld"] == pytest.approx(kld.mean(), abs=1e-8)
    assert found["kld_max"] == pytest.approx(kld.max(), abs=1e-8)
    assert found["same_top_rate"] == pytest.approx(sum(r["same_top"] for r in records) / kld.size, abs=1e-8)
    assert 1e-4 < found["mean_kld"] < 1e-2  # a Q4_0 of a near-uniform model: small, not zero
    # the base was converted from the run's student: the answers the quantization lost and gained
    assert found["base"]["quantized_from"] == results["models"]["student"]["digest"]
    student = [row["roles"]["student"]["score"] >= 0.5 for row in rows]
    quant = [row["roles"][ROLE]["score"] >= 0.5 for row in rows]
    flips = found["flips"]
    assert flips["against"] == "student"
    assert flips["n"] == 2
    assert flips["lost"] == sum(s and not q for s, q in zip(student, quant, strict=True))
    assert flips["gained"] == sum(q and not s for s, q in zip(student, quant, strict=True))


@pytest.mark.slow  # shares the run above
def test_pack_mode_rederives_and_a_tampered_record_fails_verify(
    pack_run: dict[str, Any], capsys: pytest.CaptureFixture[str]
):
    import hashlib
    import shutil

    from receipts.cli import main
    from receipts.derive import rederive
    from receipts.sign import sign_receipt

    results, rows = _run_files(pack_run)
    assert rederive(results, rows) == []

    def signed(name: str, edit: Any = None) -> Path:
        run = pack_run["tmp"] / f"run-{name}"
        shutil.copytree(pack_run["tmp"] / "run", run)
        results, rows = _run_files({"tmp": pack_run["tmp"]})
        if edit is not None:
            edit(rows)
            data = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows).encode()
            (run / "examples.jsonl").write_bytes(data)
            results["examples"]["sha256"] = hashlib.sha256(data).hexdigest()
            (run / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True), "utf-8")
        return sign_receipt(CARD, [pack_run["key"]], pack_run["tmp"] / name, runs=[run])

    def verify(bundle: Path) -> tuple[int, str]:
        code = main(["verify", str(bundle), "--trust-root", str(pack_run["tmp"] / "trust.json")])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, text = verify(signed("clean"))
    assert code == 0, text

    def smaller_kld(rows: list[dict[str, Any]]) -> None:  # the quantization made to look closer
        record = rows[0]["roles"][ROLE]["quant_kld"]
        record["kld"] = [v / 10 for v in record["kld"]]

    code, text = verify(signed("kld", smaller_kld))
    assert code == 4, text
    assert f"$.quant_fidelity.{ROLE}.mean_kld: signed" in text

    def not_numbers(rows: list[dict[str, Any]]) -> None:
        rows[1]["roles"][ROLE]["quant_kld"]["delta_p"][0] = "0.1"

    def flipped(rows: list[dict[str, Any]]) -> None:  # an answer the quantization lost, shown as kept
        cell, student = rows[0]["roles"][ROLE], rows[0]["roles"]["student"]
        cell["score"] = cell["scores"]["acc"] = 1.0 - student["score"]

    code, text = verify(signed("flip", flipped))
    assert code == 4, text  # the metrics move too: the flips are among the differences verify counts
    edited = json.loads(json.dumps(rows))
    flipped(edited)
    assert any(d.startswith(f"$.quant_fidelity.{ROLE}.flips.") for d in rederive(results, edited))

    code, text = verify(signed("malformed", not_numbers))
    assert code == 4, text
    assert "quant_kld.delta_p is not a list of finite numbers" in text
    assert "Traceback" not in text


def test_pack_records_are_cached_and_a_missing_base_is_one_clear_error(
    ggufs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import shutil
    from dataclasses import dataclass

    from runner.llamacpp import fidelity

    @dataclass
    class Item:  # the fields of a PromptInstance the measurement reads
        prompt: str
        gold: int
        variant: str = "original"
        continuations: tuple[str, ...] = (" Oslo", " Bergen")

    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    items = [
        Item("Question: What is the capital of Norway?\nAnswer:", 0),
        Item("Question: Is it cold?\nAnswer:", 1),
    ]
    identities = {"student@Q8_0": {"spec": f"llamacpp:{ggufs['flat.Q8_0']}"}, "student": {"spec": "fake:s"}}
    records, bases = fidelity.measure(identities, items, ["a", "b"])
    assert set(records) == {"student@Q8_0"}
    assert set(records["student@Q8_0"]) == {"a", "b"}
    assert bases["student@Q8_0"]["base"]["file"] == ggufs["flat.F16"].name

    def no_model(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached record was computed again")

    monkeypatch.setattr(fidelity, "score_texts", no_model)
    assert fidelity.measure(identities, items, ["a", "b"])[0] == records

    lonely = tmp_path / "lonely"  # the quantization and its manifest, without the F16 file
    lonely.mkdir()
    for name in (ggufs["flat.Q8_0"].name, "manifest.json"):
        shutil.copy(ggufs["flat.Q8_0"].parent / name, lonely / name)
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(InputError, match=r"its base F16 .* is neither beside it nor cached"):
        fidelity.measure(
            {"student@Q8_0": {"spec": f"llamacpp:{lonely / ggufs['flat.Q8_0'].name}"}}, items, ["a", "b"]
        )


def test_quantizations_of_one_base_score_it_once_per_text(
    ggufs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Q8_0 and Q4_0 of the same F16: the F16's logits are computed once per text, the records as alone."""
    from runner.llamacpp import fidelity

    class Item(NamedTuple):
        prompt: str
        gold: int
        variant: str = "original"
        continuations: tuple[str, ...] = (" Oslo", " Bergen")

    items = [Item("Question: What is the capital of Norway?\nAnswer:", 0), Item("Is it cold?", 1)]
    roles = {"student@Q8_0": ggufs["flat.Q8_0"], "student@Q4_0": ggufs["flat.Q4_0"]}
    identities = {role: {"spec": f"llamacpp:{path}"} for role, path in roles.items()}
    calls: list[str] = []
    logits = fidelity.ScoringModel.logits

    def counted(self: Any, ids: Any, start: int) -> Any:
        calls.append(self.path.name)
        return logits(self, ids, start)

    monkeypatch.setattr(fidelity.ScoringModel, "logits", counted)
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "together"))
    together, bases = fidelity.measure(identities, items, ["a", "b"], use_cache=False)
    assert sorted(calls) == sorted([ggufs["flat.F16"].name] * 2 + [p.name for p in roles.values()] * 2)
    assert {b["base"]["file"] for b in bases.values()} == {ggufs["flat.F16"].name}
    for role in roles:
        alone = fidelity.measure({role: identities[role]}, items, ["a", "b"], use_cache=False)[0]
        assert alone[role] == together[role]
        assert set(alone[role]) == {"a", "b"}
    assert together["student@Q8_0"] != together["student@Q4_0"]


def test_a_llamacpp_student_gets_its_fidelity_in_a_run(ggufs: dict[str, Path], tmp_path: Path):
    """The llamacpp: backend end to end (fast): the student is the Q4_0 file itself, so no flips."""
    from receipts.cli import main
    from receipts.derive import rederive

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
        student = ["--student", f"llamacpp:{ggufs['flat.Q4_0']}"]
        assert main(["run", str(MINIMAL), *ROLES, *student, "--out", str(tmp_path / "run")]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_bytes())
    rows = [json.loads(line) for line in (tmp_path / "run" / "examples.jsonl").read_bytes().splitlines()]
    found = results["quant_fidelity"]["student"]
    assert found["base"]["file"] == ggufs["flat.F16"].name
    assert found["items"] == 2
    assert "flips" not in found
    assert 1e-4 < found["mean_kld"] < 1e-2
    assert rederive(results, rows) == []
