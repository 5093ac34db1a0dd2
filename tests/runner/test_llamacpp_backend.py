"""``llamacpp:FILE``: a GGUF run by llama.cpp itself (issue #21 part 1).

A real tiny model (random weights, SmolLM2's tokenizer) is converted and quantized by llama.cpp's own
tools once per module. The references: llama-cpp-python's own single-sequence evaluation
(`NativeModel.logprobs`), the dequantised transformers path (``gguf:`` of the same file), and lm-eval's
tokenisation rules as ``hf:`` applies them.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from receipts import schemas
from receipts.cli import main
from receipts.digests import digest_weights
from receipts.errors import InputError
from runner.backends import ChoiceRequest, GenRequest, load_backend
from runner.llamacpp import backend as backend_module
from runner.llamacpp import identity as identity_module
from runner.llamacpp.backend import NativeBackend
from runner.llamacpp.model import NativeModel
from runner.llamacpp.quantize import Quantized, quantize
from runner.llamacpp.toolchain import find
from tests.models import smollm2_quantized, tiny_smol

ROOT = Path(__file__).parents[2]
MINIMAL = ROOT / "tests" / "data" / "pack_minimal"
CAPITALS = ROOT / "packs" / "capitals-mc"
PROMPT = "Question: What is the capital of France?\nAnswer:"
REQUESTS = [
    ChoiceRequest(PROMPT, (" Paris", " Berlin", " the city of Rome")),
    ChoiceRequest("Question: Which planet is closest to the Sun? ", ("Mercury", "Venus")),  # trailing space
    ChoiceRequest("", ("hello", "hello world")),  # empty context: BOS
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(folder))
        patch.setenv("OMP_NUM_THREADS", "1")
        yield folder


@pytest.fixture(scope="module")
def tiny(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Quantized]:
    """The tiny model's folder, and its F16 / Q8_0 / Q4_K_M GGUFs with their manifest."""
    base = tmp_path_factory.mktemp("tiny")
    folder = tiny_smol(base / "model")
    return folder, quantize(folder, ["F16", "Q8_0", "Q4_K_M"], base / "q", base="F16")


@pytest.fixture(scope="module")
def q8(tiny: tuple[Path, Quantized]) -> Iterator[NativeBackend]:
    backend = load_backend(f"llamacpp:{tiny[1].file('Q8_0')}")
    assert isinstance(backend, NativeBackend)
    yield backend
    backend.close()


# --- identity ----------------------------------------------------------------------------------------


def test_identity_is_read_from_the_file_without_loading_it(
    tiny: tuple[Path, Quantized], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, quantized = tiny
    identities = {}
    for quant in ("F16", "Q8_0", "Q4_K_M"):
        backend = load_backend(f"llamacpp:{quantized.file(quant)}")
        assert isinstance(backend, NativeBackend)
        assert backend._model is None  # nothing loaded
        identities[quant] = backend.identity
        backend.close()
    q8 = identities["Q8_0"]
    assert q8.kind == "llamacpp"
    assert q8.compute_dtype == "native"
    assert q8.digest == "sha256:" + digest_weights(quantized.file("Q8_0")).root  # as gguf: records it
    assert {q: i.storage_quant for q, i in identities.items()} == {
        "F16": "F16",
        "Q8_0": "Q8_0",
        "Q4_K_M": "Q4_K_M",
    }
    # one tokenizer for every quantization of one model: token-level KL between them is defined
    assert len({i.tokenizer for i in identities.values()}) == 1
    assert q8.tokenizer is not None
    assert q8.tokenizer.startswith("sha256:")
    assert len({i.digest for i in identities.values()}) == 3
    # every weight of the model, tied embeddings counted once (as the safetensors hold them)
    assert q8.params == sum(
        int(np.prod(entry["shape"]))
        for name, entry in _safetensors_header(folder / "model.safetensors").items()
        if name != "__metadata__"
    )
    assert q8.extra["runtime"] == find().identity
    assert q8.extra["n_ctx"] == 512  # the model's training context (under MAX_CONTEXT)
    lineage = q8.extra["lineage"]
    assert lineage["quant"] == "Q8_0"
    assert lineage["base"] == "F16"
    assert lineage["quantized_from"] == "sha256:" + digest_weights(folder).root
    # a second look parses nothing: the facts are remembered under the file's digest
    monkeypatch.setattr(identity_module, "read_facts", _refuse)
    again = load_backend(f"llamacpp:{quantized.file('Q8_0')}")
    assert again.identity == q8
    again.close()


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the GGUF was parsed again")


def _safetensors_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header: dict[str, Any] = json.loads(handle.read(length))
    return header


# --- multiple choice ---------------------------------------------------------------------------------


def test_choices_follow_lm_evals_rules_and_match_a_plain_evaluation(q8: NativeBackend) -> None:
    """Each choice's log-likelihood equals summing llama.cpp's own full-sequence log-probs of it.

    The reference evaluates ``context + continuation[:-1]`` from an empty cache in one pass
    (`NativeModel.logprobs`); the backend evaluates the context once and each continuation after it.
    Q8_0 rounds activations to 8 bits, so the two layouts agree to llama.cpp's layout noise only.
    """
    results = q8.score_choices(REQUESTS)
    reference = NativeModel(q8.path, n_ctx=128, threads=1)
    try:
        for request, result in zip(REQUESTS, results, strict=True):
            for cont, loglik, greedy, count in zip(
                request.continuations, result.logliks, result.greedy, result.tokens, strict=True
            ):
                context_enc, cont_enc = q8.encode_pair(request.context, cont)
                assert count == len(cont_enc) > 0
                rows = reference.logprobs(context_enc + cont_enc[:-1])[len(context_enc) - 1 :]
                expected = float(sum(rows[i, t] for i, t in enumerate(cont_enc)))
                assert loglik == pytest.approx(expected, abs=0.05)
                assert greedy == all(int(rows[i].argmax()) == t for i, t in enumerate(cont_enc))
    finally:
        reference.close()
    # lm-eval's rules: the trailing space moved to the continuation, an empty context is BOS
    assert q8.encode_pair("Question: Which planet? ", "Mercury")[1] == q8._enc(" Mercury")
    assert q8.encode_pair("", "hello") == ([q8.model.bos], q8._enc("hello"))


def test_tokenisation_matches_the_transformers_tokenizer(
    tiny: tuple[Path, Quantized], q8: NativeBackend
) -> None:
    """llama.cpp's tokenizer, read from the GGUF, splits text as the model's own tokenizer does."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny[0])
    texts = [PROMPT + " Paris", "  two  spaces,\ttabs\nand ünïcödé 123 4567 <|im_end|> x", "don't stop"]
    for text in texts:
        assert q8._enc(text) == tokenizer.encode(text, add_special_tokens=False), text


def test_long_inputs_are_cut_from_the_left_as_lm_eval_cuts_them(q8: NativeBackend) -> None:
    """Past the 512-token context: lm-eval's ``(context + continuation)[-(n_ctx + 1):][:-1]`` per choice."""
    context = "Question: " + "the capital of France is Paris and " * 80 + "so the capital is"
    request = ChoiceRequest(context, (" Paris", " the city of Rome"))
    [result] = q8.score_choices([request])
    reference = NativeModel(q8.path, n_ctx=1024, threads=1)
    try:
        for cont, loglik in zip(request.continuations, result.logliks, strict=True):
            context_enc, cont_enc = q8.encode_pair(context, cont)
            assert len(context_enc) > q8.n_ctx
            inputs = (context_enc + cont_enc)[-(q8.n_ctx + 1) :][:-1]
            rows = reference.logprobs(inputs)[len(inputs) - len(cont_enc) :]
            assert loglik == pytest.approx(float(sum(rows[i, t] for i, t in enumerate(cont_enc))), abs=0.05)
    finally:
        reference.close()
    [text] = q8.generate([GenRequest(context, max_new_tokens=4)])  # the prompt keeps room for 4 tokens
    assert len(text.token_logprobs) == 4


def test_an_items_numbers_do_not_depend_on_its_batch(q8: NativeBackend) -> None:
    """Resume, cache hits and verify --rerun pose items in other company: the numbers must not move."""
    together = q8.score_choices(REQUESTS)
    alone = [q8.score_choices([request])[0] for request in REQUESTS]
    reordered = q8.score_choices(REQUESTS[::-1])[::-1]
    assert together == alone == reordered


def test_an_items_context_and_choices_go_through_one_decode(
    q8: NativeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``llama_decode`` per item (its context shared by a sequence per choice), in groups of SEQS."""
    import llama_cpp

    calls: list[int] = []
    real = llama_cpp.llama_decode

    def counted(ctx: Any, batch: Any) -> int:
        calls.append(int(batch.n_tokens))
        return int(real(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", counted)
    q8.score_choices(REQUESTS)
    assert len(calls) == len(REQUESTS)
    for request, tokens in zip(REQUESTS, calls, strict=True):
        pairs = [q8.encode_pair(request.context, cont) for cont in request.continuations]
        assert tokens == len(pairs[0][0]) + sum(len(cont) - 1 for _, cont in pairs)
    # more choices than sequences: groups of SEQS in order, each after its own evaluation of the context
    many = ChoiceRequest(PROMPT, tuple(f" city number {k}" for k in range(backend_module.SEQS + 2)))
    calls.clear()
    [whole] = q8.score_choices([many])
    assert len(calls) == 2
    head, tail = (
        q8.score_choices([ChoiceRequest(PROMPT, part)])[0]
        for part in (many.continuations[: backend_module.SEQS], many.continuations[backend_module.SEQS :])
    )
    assert whole.logliks == head.logliks + tail.logliks


def test_choices_that_do_not_fit_the_context_together_are_evaluated_apart(q8: NativeBackend) -> None:
    """The KV cache holds the context once and each choice's tokens: what does not fit goes in a next one."""
    context = "Question: " + "which of these long answers is right? " * 30
    road = "the long and winding road that leads to your door " * 16
    answers = tuple(f" answer {k}: {road}" for k in range(3))
    request = ChoiceRequest(context, answers)
    context_enc, _ = q8.encode_pair(context, answers[0])
    lengths = [len(q8.encode_pair(context, a)[1]) for a in answers]
    # each fits after the context (so none is cut from the left), no two together
    assert len(context_enc) + max(lengths) <= q8.n_ctx < len(context_enc) + 2 * (min(lengths) - 1)
    [result] = q8.score_choices([request])
    alone = [q8.score_choices([ChoiceRequest(context, (a,))])[0].logliks[0] for a in answers]
    assert list(result.logliks) == alone
    assert all(math.isfinite(x) for x in alone)


def test_the_layout_is_part_of_the_cache_scope() -> None:
    """`runner.eval.roles` scopes llamacpp: outputs by the layout `runner.llamacpp.backend` uses."""
    from runner.eval.roles import ITEM_LAYOUT

    assert ITEM_LAYOUT["llamacpp"] == backend_module.LAYOUT


@pytest.mark.parametrize(("quant", "tolerance"), [("F16", 0.02), ("Q8_0", 0.25)])
def test_close_to_the_dequantised_transformers_path(
    tiny: tuple[Path, Quantized], quant: str, tolerance: float
) -> None:
    """The same file through transformers (dequantised, fp32): same tokens, close log-likelihoods.

    F16 differs only by llama.cpp's f16 KV cache and arithmetic (SmolLM2-135M F16 on 30 capitals-mc
    items: max 0.015 nats); Q8_0 also rounds each matmul's activations to 8 bits.
    """
    gguf = tiny[1].file(quant)
    reference = load_backend(f"gguf:{gguf}")
    native = load_backend(f"llamacpp:{gguf}")
    try:
        theirs = reference.score_choices(REQUESTS)
        ours = native.score_choices(REQUESTS)
    finally:
        reference.close()
        native.close()
    for a, b in zip(ours, theirs, strict=True):
        assert a.tokens == b.tokens
        assert a.logliks == pytest.approx(b.logliks, abs=tolerance)


# --- generation and distributions --------------------------------------------------------------------


def test_generation_is_greedy_and_cut_like_hf(q8: NativeBackend) -> None:
    reference = NativeModel(q8.path, n_ctx=128, threads=1)
    try:
        prompt = q8._enc("Question: What is")
        tokens = list(prompt)
        for _ in range(6):  # greedy by hand: argmax after a full evaluation each step
            tokens.append(int(reference.logprobs(tokens)[-1].argmax()))
        expected = reference.detokenize(tokens[len(prompt) :])
    finally:
        reference.close()
    [free] = q8.generate([GenRequest("Question: What is", max_new_tokens=6)])
    assert free.text == expected
    assert len(free.token_logprobs) == 6
    assert all(lp <= 0.0 for lp in free.token_logprobs)
    stop = expected.strip().split()[1] if len(expected.split()) > 1 else expected.strip()
    [cut] = q8.generate([GenRequest("Question: What is", max_new_tokens=6, stop=(stop,))])
    assert cut.text == expected[: expected.index(stop)]
    assert cut.token_logprobs == free.token_logprobs[: len(q8._enc(cut.text))]
    [none] = q8.generate([GenRequest("Question: What is", max_new_tokens=6, stop=("never-there",))])
    assert none == free


def test_generation_matches_the_dequantised_path(tiny: tuple[Path, Quantized], q8: NativeBackend) -> None:
    requests = [GenRequest(PROMPT, max_new_tokens=8), GenRequest("The", max_new_tokens=8, stop=(",",))]
    reference = load_backend(f"gguf:{tiny[1].file('Q8_0')}")
    try:
        theirs = reference.generate(requests)
    finally:
        reference.close()
    ours = q8.generate(requests)
    assert [g.text for g in ours] == [g.text for g in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=0.1)


def test_teacher_forced_distributions(q8: NativeBackend) -> None:
    pairs = [(PROMPT, " Paris"), (PROMPT, " the city of Rome"), ("Hi", "")]
    fresh = q8.teacher_forced(pairs)
    assert fresh[2] is None
    for (context, continuation), dist in zip(pairs[:2], fresh[:2], strict=True):
        assert dist is not None
        assert dist.dtype == np.float32
        assert dist.shape == (len(q8.encode_pair(context, continuation)[1]), q8.decoder.n_vocab)
        np.testing.assert_allclose(np.exp(dist.astype(np.float64)).sum(axis=1), 1.0, atol=1e-4)
    # right after score_choices the same numbers come from its evaluation
    scored = q8.score_choices([ChoiceRequest(PROMPT, (" Paris", " the city of Rome"))])[0]
    memo = q8.teacher_forced(pairs[:2])
    for dist, again, loglik, (_, cont) in zip(fresh[:2], memo, scored.logliks, pairs[:2], strict=True):
        assert again is not None
        assert dist is not None
        np.testing.assert_array_equal(dist, again)
        tokens = q8.encode_pair(PROMPT, cont)[1]
        assert math.isclose(float(dist[np.arange(len(tokens)), tokens].sum()), loglik, abs_tol=1e-5)


def test_threads_reach_llama_cpp(tiny: tuple[Path, Quantized], monkeypatch: pytest.MonkeyPatch) -> None:
    """--threads is exported as OMP_NUM_THREADS before the run (pin_threads), as hf: reads it."""
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    backend = load_backend(f"llamacpp:{tiny[1].file('Q4_K_M')}")
    assert isinstance(backend, NativeBackend)
    try:
        assert backend.decoder.threads == (2, 2)
        assert backend.model.threads == 2
    finally:
        backend.close()


# --- chat templates ----------------------------------------------------------------------------------


def test_chat_template_renders_as_transformers_does(tiny: tuple[Path, Quantized]) -> None:
    """``?chat_template=1`` renders the GGUF's template as hf: renders the model's own."""
    folder, quantized = tiny
    native = load_backend(f"llamacpp:{quantized.file('Q8_0')}?chat_template=1")
    hf = load_backend(f"hf:{folder}?chat_template=1")
    assert isinstance(native, NativeBackend)
    try:
        assert native.identity.extra["chat_template"] == hf.identity.extra["chat_template"]
        messages = (("system", "Answer briefly."), ("user", PROMPT))
        ours, sha = native.posed(PROMPT, messages)
        theirs, _ = hf.posed(PROMPT, messages)
        assert ours == theirs
        assert "<|im_start|>assistant" in ours
        [result] = native.score_choices([ChoiceRequest(PROMPT, (" Paris",), None, messages)])
        assert result.prompt_sha256 == sha
        [gen] = native.generate([GenRequest(PROMPT, max_new_tokens=2, messages=messages)])
        assert gen.prompt_sha256 == sha
        with pytest.raises(InputError, match="control token '<\\|im_end\\|>'"):
            native.posed(PROMPT, (("user", "Hi<|im_end|>"),))
    finally:
        native.close()
        hf.close()


def test_asking_for_a_chat_template_the_gguf_lacks_is_one_clear_error(cache: Path, tmp_path: Path) -> None:
    path = _unknown_architecture(tmp_path / "plain.gguf")  # no tokenizer.chat_template
    with pytest.raises(InputError, match="asks for the chat template, but the GGUF has none"):
        load_backend(f"llamacpp:{path}?chat_template=1")


# --- bad input ---------------------------------------------------------------------------------------


def _bad_files(folder: Path, good: Path) -> dict[str, Path]:
    data = good.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {
        "random bytes after the header": b"GGUF" + rng.bytes(4096),
        "version 3 then garbage": b"GGUF" + struct.pack("<I", 3) + rng.bytes(4096),
        "absurd counts": b"GGUF" + struct.pack("<IQQ", 3, 2**62, 2**62) + rng.bytes(64),
        "truncated": data[: len(data) // 2],
        "truncated header": data[:3000],
        "not a GGUF": b"PK\x03\x04 a zip, say",
        "empty": b"",
    }
    paths = {}
    for i, (name, content) in enumerate(files.items()):
        paths[name] = folder / f"bad{i}.gguf"
        paths[name].write_bytes(content)
    paths["a directory"] = folder / "dir.gguf"
    paths["a directory"].mkdir(exist_ok=True)
    paths["missing"] = folder / "missing.gguf"
    paths["unknown architecture"] = _unknown_architecture(folder / "arch.gguf")
    return paths


def _unknown_architecture(path: Path) -> Path:
    """A well-formed GGUF that llama.cpp itself refuses: the header parses, the model does not load."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "no-such-architecture")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["a", "b"])
    writer.add_token_types([1, 1])
    writer.add_tensor("token_embd.weight", np.zeros((2, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_bad_files_are_one_clear_error_on_the_command_line(
    tiny: tuple[Path, Quantized], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each bad file: exit 1, one message naming the file, no traceback, no llama.cpp log on the terminal."""
    folder, quantized = tiny
    for what, path in _bad_files(tmp_path / "bad", quantized.file("Q8_0")).items():
        argv = ["run", MINIMAL, "--teacher", f"hf:{folder}", "--student", f"llamacpp:{path}"]
        code = main([str(a) for a in [*argv, "--out", tmp_path / "out" / path.stem]])
        captured = capfd.readouterr()
        text = captured.out + captured.err
        assert code == 1, (what, text)
        assert str(path) in text, (what, text)
        assert "Traceback" not in text, (what, text)
        assert "llama_model_load" not in text, (what, text)
        assert "gguf_init" not in text, (what, text)
        assert not (tmp_path / "out" / path.stem / "results.json").exists()


# --- end to end --------------------------------------------------------------------------------------


def test_run_end_to_end_records_the_native_identity(
    tiny: tuple[Path, Quantized],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, quantized = tiny
    gguf = quantized.file("Q8_0")
    for pack, name in ((MINIMAL, "mc"), (ROOT / "packs" / "behaviour-probes", "gen")):
        argv = ["run", pack, "--teacher", f"hf:{folder}", "--student", f"llamacpp:{gguf}", "--threads", "1"]
        code = main([str(a) for a in [*argv, "--limit", "3", "--out", tmp_path / name]])
        text = "".join(capsys.readouterr())
        assert code == 0, text
        results = json.loads((tmp_path / name / "results.json").read_text("utf-8"))
        schemas.validate(results, "results")
        student = results["models"]["student"]
        assert student["kind"] == "llamacpp"
        assert student["digest"] == "sha256:" + digest_weights(gguf).root
        assert student["storage_quant"] == "Q8_0"
        assert student["compute_dtype"] == "native"
        assert student["extra"]["runtime"] == find().identity
        assert student["extra"]["lineage"]["quantized_from"] == "sha256:" + digest_weights(folder).root
        rows = [
            json.loads(line) for line in (tmp_path / name / "examples.jsonl").read_text("utf-8").splitlines()
        ]
        assert rows
        assert all("error" not in row["roles"]["student"] for row in rows)
    # an unchanged re-run is served from the output cache: llama.cpp never opens the file
    monkeypatch.setattr(backend_module, "NativeModel", _refuse)
    argv = ["run", MINIMAL, "--teacher", f"hf:{folder}", "--student", f"llamacpp:{gguf}", "--threads", "1"]
    code = main([str(a) for a in [*argv, "--out", tmp_path / "again"]])
    assert code == 0, "".join(capsys.readouterr())
    again = json.loads((tmp_path / "again" / "results.json").read_text("utf-8"))
    assert again["models"] == json.loads((tmp_path / "mc" / "results.json").read_text("utf-8"))["models"]
    # outputs computed in another layout are not read back: they are computed again
    monkeypatch.undo()
    from runner.eval import roles

    monkeypatch.setitem(roles.ITEM_LAYOUT, "llamacpp", "another-layout")
    code = main([str(a) for a in [*argv, "--out", tmp_path / "relaid"]])
    text = "".join(capsys.readouterr())
    assert code == 0, text
    assert "cached 2, computed 2" in text  # the teacher's from the cache, the student's computed


def test_a_signed_llamacpp_run_reruns_bit_exact_in_llama_cpp(
    tiny: tuple[Path, Quantized], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``verify --rerun`` re-executes a llamacpp: role in llama.cpp, not transformers: bit-exact."""
    from datetime import UTC, datetime

    from receipts.keys import generate
    from receipts.sign import sign_receipt
    from receipts.trust import new_root

    gguf = tiny[1].file("Q4_K_M")
    run = tmp_path / "run"
    argv = ["run", MINIMAL, "--teacher", "fake:teacher", "--student", f"llamacpp:{gguf}", "--out", run]
    assert main([str(a) for a in [*argv, "--threads", "1", "--no-cache"]]) == 0, "".join(capsys.readouterr())
    publisher = generate()
    trust = tmp_path / "trust.json"
    trust.write_bytes(new_root("receipts demo", [publisher.public], now=datetime(2020, 1, 1, tzinfo=UTC)))
    card = ROOT / "tests" / "data" / "card_fake_teacher.yaml"
    sign_receipt(card, [publisher], tmp_path / "receipts", runs=[run], weights=gguf)
    [receipt] = (tmp_path / "receipts").iterdir()
    verify = ["verify", receipt, "--trust-root", trust, "--rerun", 2, "--weights", gguf, "--pack", MINIMAL]
    code = main([str(a) for a in verify])
    text = "".join(capsys.readouterr())
    assert code == 0, text
    assert "reproduced 2/2, bit-exact" in text  # the pack has 2 items


def test_a_rerun_on_another_llama_cpp_build_says_so() -> None:
    """Another llama.cpp build is a setup difference: the rerun is then held to a tolerance, labelled."""
    from receipts.formats.results import ModelIdentity as SignedIdentity
    from runner.eval.rerun import _setup_differences

    build = find().identity
    signed = SignedIdentity(
        spec="llamacpp:m.gguf", kind="llamacpp", digest="sha256:" + "0" * 64, extra={"runtime": build}
    )
    same = {"kind": "llamacpp", "extra": {"runtime": build}}
    assert _setup_differences(same, signed, 1, [1], [], {}) == []
    other = {"kind": "llamacpp", "extra": {"runtime": {**build, "llama_cpp_commit": "1234567"}}}
    [difference] = _setup_differences(other, signed, 1, [1], [], {})
    assert difference == (
        f"llama.cpp llama-cpp-python 0.3.36 (0c1e570, flags {build['build_flags_sha256'][:8]}) "
        f"vs llama-cpp-python 0.3.36 (1234567, flags {build['build_flags_sha256'][:8]})"
    )


# --- parity on the real SmolLM2 ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.model
def test_smollm2_q8_0_parity_with_the_dequantised_path(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """capitals-mc on SmolLM2-135M-Instruct Q8_0: llamacpp: against gguf: of the same file.

    Measured on capitals-mc 1.0.0's 105 items (2026-12-07, 1 thread, x 4 choices, original variant): acc
    0.657 both (69/105), max |Δ loglik| 0.60 nats, mean 0.157; three items changed their answer, each
    one whose reference top two choices were within that noise (0.112, 0.041 and 0.001 nats apart):
    one lost, one gained, one wrong either way. On 2.0.0's first 105 items (the stratified order):
    acc 47 vs 48 of 105, one item scored differently, max 0.59 nats, mean 0.132. llama.cpp rounds a
    Q8_0 matmul's activations to 8 bits (the dequantised path computes in fp32) and SmolLM2's large
    activations make that rounding coarse: the same GGUF at F32 agrees to max 0.014 / mean 0.004 nats.
    """
    q = smollm2_quantized(["F16", "Q8_0"], tmp_path / "q")  # the F16 beside: the run measures Q8_0 against it
    gguf = q.file("Q8_0")
    argv = ["run", CAPITALS, "--teacher", f"gguf:{gguf}", "--student", f"llamacpp:{gguf}"]
    limit = ["--limit", "105"]  # the pack's first 105 items (its stratified order), as 1.0.0 held 105
    code = main(
        [str(a) for a in [*argv, *limit, "--variant", "original", "--threads", "1", "--out", tmp_path / "r"]]
    )
    assert code == 0, "".join(capsys.readouterr())
    rows = [json.loads(line) for line in (tmp_path / "r" / "examples.jsonl").read_text("utf-8").splitlines()]
    deltas = []
    for row in rows:
        ours = np.asarray(row["roles"]["student"]["logliks"])
        theirs = np.asarray(row["roles"]["teacher"]["logliks"])
        assert row["roles"]["student"]["tokens"] == row["roles"]["teacher"]["tokens"]
        deltas += list(np.abs(ours - theirs))
        if ours.argmax() != theirs.argmax():
            top = np.sort(theirs)[::-1]
            assert top[0] - top[1] < TOLERANCE_MAX, row["item"]
    assert max(deltas) < TOLERANCE_MAX
    acc = {role: [row["roles"][role]["score"] for row in rows] for role in ("teacher", "student")}
    changed = sum(t != s for t, s in zip(acc["teacher"], acc["student"], strict=True))
    assert changed <= 5  # of 105, each one within the noise (checked above)
    assert float(np.mean(deltas)) < TOLERANCE_MEAN
    print(f"SmolLM2 Q8_0 capitals-mc: max |Δ| {max(deltas):.4f} nats, mean {np.mean(deltas):.4f}")
    teacher, student = sum(acc["teacher"]), sum(acc["student"])
    print(f"acc {teacher:.0f} vs {student:.0f} of {len(rows)}, {changed} scored differently")


TOLERANCE_MAX = 1.0
"""nats, per choice: llamacpp: vs gguf: on a Q8_0 SmolLM2 (measured max 0.60)."""
TOLERANCE_MEAN = 0.25
"""nats, mean over choices (measured 0.157)."""
