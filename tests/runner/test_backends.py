"""Model backends: spec parsing, fake determinism, replay, an OpenAI-compatible server, transformers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from receipts.errors import InputError, UsageError
from runner.backends import ChoiceRequest, GenRequest, ModelSpec, backend, kinds, load_backend, split_spec
from runner.backends import registry as backend_registry
from runner.backends.fake import FakeBackend
from runner.backends.replay import prompt_sha256
from tests.models import smollm2_gguf, tiny_llama

ROOT = Path(__file__).parents[2]

CTX = "Question : What is the capital of France ? Answer :"
CHOICES = (" Paris", " Berlin", " Rome", " Madrid")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hf:models/x", ("hf", "models/x", None)),
        ("hf:models/x@bf16", ("hf", "models/x", "bf16")),
        ("hf:/a@b/model", ("hf", "/a@b/model", None)),
        ("gguf:m.gguf@int8-dynamic", ("gguf", "m.gguf", "int8-dynamic")),
        ("openai:http://127.0.0.1:8000/v1#m", ("openai", "http://127.0.0.1:8000/v1#m", None)),
        ("fake:teacher?skill=0.9", ("fake", "teacher?skill=0.9", None)),
    ],
)
def test_split_spec(spec: str, expected: tuple[str, str, str | None]) -> None:
    assert split_spec(spec) == expected


@pytest.mark.parametrize(
    "spec", ["", "models/x", "torch:x", "hf:", "fake:", "fake:t?skill=2", "fake:t?bogus=1"]
)
def test_bad_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(UsageError, match="spec"):
        load_backend(spec)


def test_builtin_backends_are_registered_in_the_order_usage_errors_name_them() -> None:
    assert kinds() == ("hf", "gguf", "llamacpp", "openai", "replay", "fake")


def test_a_registered_backend_loads_by_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new backend is one registered factory: its prefix resolves, its usage example is listed."""
    monkeypatch.setattr(backend_registry, "_REGISTRY", dict(backend_registry._REGISTRY))
    seen: list[ModelSpec] = []

    @backend("echo", example="echo:NAME", variants=True)
    def echo(spec: ModelSpec) -> FakeBackend:
        seen.append(spec)
        return FakeBackend(spec.text, spec.location)

    loaded = load_backend("echo:m@v1")
    assert seen == [ModelSpec("echo:m@v1", "echo", "m", "v1")]
    assert loaded.identity.spec == "echo:m@v1"
    with pytest.raises(ValueError, match="registered already"):
        backend("echo", example="echo:NAME")(echo)
    with pytest.raises(UsageError) as caught:
        split_spec("nope:x")
    assert caught.value.hint.endswith("fake:NAME or echo:NAME")


def test_missing_model_path_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_backend(f"hf:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no config\.json"):
        load_backend(f"hf:{tmp_path / 'empty'}")
    with pytest.raises(UsageError, match="unknown variant"):
        load_backend(f"hf:{tmp_path / 'empty'}@fp8")


def test_fake_is_deterministic_and_has_the_skill_asked_for() -> None:
    good, bad = load_backend("fake:t?skill=0.9"), load_backend("fake:s?skill=0.1")
    requests = [ChoiceRequest(f"q{i}", CHOICES, gold=i % 4) for i in range(400)]
    first = good.score_choices(requests)
    assert first == good.score_choices(requests)
    acc = [
        np.mean(
            [
                int(np.argmax(r.logliks)) == q.gold
                for r, q in zip(m.score_choices(requests), requests, strict=True)
            ]
        )
        for m in (good, bad)
    ]
    assert 0.85 < acc[0] < 0.95
    assert 0.05 < acc[1] < 0.15
    gen = load_backend("fake:t?skill=1&abstain=0").generate([GenRequest("p", gold="Paris")])
    assert gen[0].text == "Paris"
    assert gen[0].confidence is not None


def test_replay(tmp_path: Path) -> None:
    path = tmp_path / "teacher.jsonl"
    rows = [
        {"meta": {"model": "closed-model-2026-01", "endpoint": "https://api.example/v1"}},
        {"prompt_sha256": prompt_sha256(CTX), "logliks": [-1.0, -3.0, -2.0, -4.0]},
        {"prompt_sha256": prompt_sha256("Say hi"), "output": "hi there", "token_logprobs": [-0.1, -0.2]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    backend = load_backend(f"replay:{path}")
    assert backend.identity.endpoint == "https://api.example/v1"
    assert backend.identity.digest
    assert backend.identity.digest.startswith("sha256:")
    assert backend.score_choices([ChoiceRequest(CTX, CHOICES)])[0].logliks == (-1.0, -3.0, -2.0, -4.0)
    assert backend.generate([GenRequest("Say hi")])[0].text == "hi there"
    with pytest.raises(InputError, match=r"no recording for prompt sha256:"):
        backend.generate([GenRequest("unrecorded")])
    path.write_text('{"prompt_sha256": "abc"}\n', "utf-8")
    with pytest.raises(InputError, match="prompt_sha256") as info:
        load_backend(f"replay:{path}")
    assert info.value.where == "1"


def test_replay_bytes_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "teacher.jsonl"
    path.write_bytes(b'{"meta": {}}\n\n\xff\xfe not text\n')
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte 0 of the line is 0xff\)") as info:
        load_backend(f"replay:{path}")
    assert (info.value.file, info.value.where) == (str(path), "3")


def test_replay_of_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        load_backend(f"replay:{tmp_path}")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("config.json", b"\x00\xff\xfe garbage", r"config.json is not UTF-8 text"),
        ("config.json", b"[1, 2]", r"config.json must be a JSON object, not a list"),
        ("config.json", b'{"a": 1,\n', r"config.json is not JSON"),
        ("tokenizer.json", b"\xff", r"tokenizer.json is not UTF-8 text"),
        ("model.safetensors", b"\x05\x00\x00\x00\x00\x00\x00\x00[1,2", r"not a safetensors file"),
        ("model.safetensors", b"\x01", r"not a safetensors file"),
    ],
)
def test_local_model_files_that_are_garbage_name_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, data: bytes, message: str
) -> None:
    from runner.backends.local import local_identity

    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    tmp_path = tmp_path / "model"
    tmp_path.mkdir()
    (tmp_path / "config.json").write_text('{"dtype": "float32"}', "utf-8")
    (tmp_path / name).write_bytes(data)
    with pytest.raises(InputError, match=message) as info:
        local_identity(f"hf:{tmp_path}", "hf", str(tmp_path), None)
    assert info.value.file == str(tmp_path / name)


class _Completions(BaseHTTPRequestHandler):
    """A minimal OpenAI-compatible /v1/completions: whitespace tokens, fixed log-probs per token."""

    echo = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("echo") and not self.echo:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "echo is not supported"}')
            return
        prompt = body["prompt"]
        tokens, offsets, pos = [], [], 0
        for word in prompt.split(" "):
            tokens.append(word if not offsets else " " + word)
            offsets.append(pos)
            pos += len(tokens[-1])
        if body.get("echo"):
            lps = [None] + [-0.5 * len(t.strip()) for t in tokens[1:]]
            top = [None] + [{t: lp, "x": -0.1} for t, lp in zip(tokens[1:], lps[1:], strict=True)]
            choice = {
                "text": prompt,
                "logprobs": {
                    "tokens": tokens,
                    "token_logprobs": lps,
                    "text_offset": offsets,
                    "top_logprobs": top,
                },
            }
        else:
            choice = {"text": " Paris.\nMore", "logprobs": {"token_logprobs": [-0.1, -0.2, -0.3]}}
        data = json.dumps({"choices": [choice]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Completions)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_openai_compatible_endpoint(server: str) -> None:
    backend = load_backend(f"openai:{server}#tiny")
    result = backend.score_choices([ChoiceRequest("The capital is", (" Paris", " Rome"))])[0]
    assert result.logliks == (-2.5, -2.0)  # -0.5 per character of the continuation token
    assert result.tokens == (1, 1)
    assert result.greedy == (False, False)
    gen = backend.generate([GenRequest("The capital is", stop=("\n",))])[0]
    assert gen.text == " Paris."
    _Completions.echo = False
    try:
        with pytest.raises(InputError, match="HTTP 400"):
            backend.score_choices([ChoiceRequest("The capital is", (" Paris",))])
    finally:
        _Completions.echo = True


def test_openai_unreachable_is_one_clear_error() -> None:
    backend = load_backend("openai:http://127.0.0.1:9/v1#m?max_retries=1")
    with pytest.raises(InputError, match=r"cannot reach .* after 2 attempts"):
        backend.generate([GenRequest("x")])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def test_hf_loglik_is_lm_evals_rule(tiny: Path) -> None:
    import torch

    backend = load_backend(f"hf:{tiny}")
    result = backend.score_choices([ChoiceRequest(CTX, CHOICES)])[0]
    # Reference: one forward per choice over context_enc + continuation_enc, no batching, no padding.
    for choice, loglik in zip(CHOICES, result.logliks, strict=True):
        ctx = backend.tokenizer.encode(CTX, add_special_tokens=False)
        whole = backend.tokenizer.encode(CTX + choice, add_special_tokens=False)
        cont = whole[len(ctx) :]
        ids = torch.tensor([ctx + cont])
        with torch.inference_mode():
            logprobs = torch.log_softmax(backend.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        expected = sum(float(logprobs[len(ctx) - 1 + i, t]) for i, t in enumerate(cont))
        assert abs(loglik - expected) < 1e-5
    # trailing context spaces move to the continuation (lm-eval's _encode_pair)
    assert backend.encode_pair(CTX + " ", "Paris") == backend.encode_pair(CTX, " Paris")
    assert backend.encode_pair("", "Paris")[0] == [1]  # empty context: BOS
    (tf,) = backend.teacher_forced([(CTX, " Paris")])
    assert tf is not None
    assert tf.shape == (1, backend.tokenizer.vocab_size)
    paris = backend.tokenizer.encode(CTX + " Paris", add_special_tokens=False)[-1]
    assert abs(float(tf[0, paris]) - result.logliks[0]) < 1e-5
    assert np.allclose(np.exp(tf).sum(axis=1), 1.0, atol=1e-5)


def _one_forward_per_choice(backend: Any, context: str, choice: str) -> float:
    """lm-eval's computation, literally: one unpadded forward over (ctx + cont)[-(max+1):][:-1]."""
    import torch

    ctx, cont = backend.encode_pair(context, choice)
    ids = (ctx + cont)[-(backend.max_length + 1) :]
    with torch.inference_mode():
        logits = backend.model(input_ids=torch.tensor([ids[:-1]])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)[-len(cont) :]
    return float(sum(logprobs[i, t] for i, t in enumerate(cont)))


def test_hf_shared_context_scoring_is_lm_evals_number_and_batch_independent(tiny: Path) -> None:
    """Multi-token choices sharing leading tokens, an empty context and one lm-eval must truncate."""
    backend = load_backend(f"hf:{tiny}")
    long_context = " ".join(["the capital of France is Paris ."] * 20) + " Answer :"  # > 128 positions
    requests = [
        ChoiceRequest(CTX, (" Paris and Rome", " Paris and Berlin", " Paris", " the capital of Spain")),
        ChoiceRequest("What is the capital of Italy ?", (" Rome", " Rome .", " Madrid , Spain")),
        ChoiceRequest("", ("Paris", "Berlin is the capital")),
        ChoiceRequest(long_context, (" Paris", " Paris is")),
        ChoiceRequest("Question : 1 2 3 4 ? Answer : ", ("1", "2 3", "d")),  # trailing space moves over
    ]
    together = backend.score_choices(requests)
    for req, result in zip(requests, together, strict=True):
        for choice, loglik in zip(req.continuations, result.logliks, strict=True):
            assert abs(loglik - _one_forward_per_choice(backend, req.context, choice)) < 1e-5
        assert result.tokens == tuple(len(backend.encode_pair(req.context, c)[1]) for c in req.continuations)
        # the distributions teacher_forced hands out after scoring are the ones just scored
        (tf,) = backend.teacher_forced([(req.context, req.continuations[-1])])
        assert tf is not None
        assert tf.shape == (result.tokens[-1], backend.tokenizer.vocab_size)
    # bit for bit, an item's numbers do not depend on which items share its call
    alone = [backend.score_choices([req])[0] for req in requests]
    reversed_ = backend.score_choices(requests[::-1])[::-1]
    assert alone == together == reversed_
    # teacher_forced without a preceding score_choices agrees too
    fresh = load_backend(f"hf:{tiny}")
    (tf_fresh,) = fresh.teacher_forced([(requests[0].context, requests[0].continuations[1])])
    assert tf_fresh is not None
    cont = backend.encode_pair(requests[0].context, requests[0].continuations[1])[1]
    assert abs(sum(float(tf_fresh[i, t]) for i, t in enumerate(cont)) - together[0].logliks[1]) < 1e-5
    # int8-dynamic quantises activations over the whole forward: it gets one forward per choice,
    # lm-eval's batch-size-1 computation, whatever shares the call
    int8 = load_backend(f"hf:{tiny}@int8-dynamic")
    for req, result in zip(requests, int8.score_choices(requests), strict=True):
        for choice, loglik in zip(req.continuations, result.logliks, strict=True):
            assert loglik == pytest.approx(_one_forward_per_choice(int8, req.context, choice), abs=1e-6)


def test_hf_teacher_forced_asked_together_equals_asked_alone(tiny: Path) -> None:
    """Many (context, continuation) pairs asked at once get, bit for bit, what each gets alone.

    They share batched forwards; an empty continuation has no distributions.
    """
    backend = load_backend(f"hf:{tiny}")
    pairs = [
        (CTX, " Paris"),
        (CTX, " Paris and Rome"),
        ("What is the capital of Italy ?", " Rome ."),
        ("", "Berlin is the capital"),
        (" ".join(["the capital of France is Paris ."] * 20) + " Answer :", " Paris is"),  # truncated
        (CTX, ""),
    ]
    together = backend.teacher_forced(pairs)
    alone = [backend.teacher_forced([pair])[0] for pair in pairs]
    assert together[-1] is None
    assert alone[-1] is None
    for got, want in zip(together[:-1], alone[:-1], strict=True):
        assert got is not None
        assert want is not None
        assert np.array_equal(got, want)


def test_hf_generate_greedy_and_stop(tiny: Path) -> None:
    backend = load_backend(f"hf:{tiny}")
    first = backend.generate([GenRequest(CTX, max_new_tokens=5)])[0]
    assert first == backend.generate([GenRequest(CTX, max_new_tokens=5)])[0]
    assert len(first.token_logprobs) == 5
    assert all(lp <= 0 for lp in first.token_logprobs)


def test_hf_identity_separates_variants(tiny: Path) -> None:
    fp32, bf16 = load_backend(f"hf:{tiny}"), load_backend(f"hf:{tiny}@bf16")
    assert fp32.identity.digest == bf16.identity.digest
    assert (fp32.identity.compute_dtype, bf16.identity.compute_dtype) == ("float32", "bfloat16")
    assert fp32.identity.key != bf16.identity.key


@pytest.mark.model
def test_gguf_cache_conversion_reproduces_the_gguf_logits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp32 from the converted safetensors cache gives the GGUF-loaded model's logits exactly."""
    import torch
    import transformers

    gguf = smollm2_gguf()
    backend = load_backend(f"gguf:{gguf}")
    assert backend.identity.storage_quant == "Q4_1"
    assert backend.identity.compute_dtype == "float32"
    reference = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    ids = torch.tensor([backend.tokenizer.encode("Question: What is the capital of France?\nAnswer: Paris")])
    with torch.inference_mode():
        assert torch.equal(reference(input_ids=ids).logits, backend.model(input_ids=ids).logits)
    result = backend.score_choices(
        [ChoiceRequest("Question: What is the capital of France?\nAnswer:", CHOICES)]
    )[0]
    assert int(np.argmax(result.logliks)) == 0  # the real model knows this one


@pytest.mark.model
def test_gguf_metadata_is_read_once_per_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage quantisation is remembered beside the conversion (a cached run starts in ~1 s, not ~4).

    A remembered value that is not a quantisation name is not believed: the file is read again.
    """
    from runner.backends import local

    gguf = smollm2_gguf()
    spec = f"gguf:{gguf}"
    calls: list[Path] = []
    real = local.gguf_storage_quant
    monkeypatch.setattr(local, "gguf_storage_quant", lambda path: calls.append(path) or real(path))
    identity, folder = local.local_identity(spec, "gguf", str(gguf), None)
    (folder / "storage_quant").unlink()  # whatever an earlier run left: start from none
    calls.clear()
    first, _ = local.local_identity(spec, "gguf", str(gguf), None)
    second, _ = local.local_identity(spec, "gguf", str(gguf), None)
    assert calls == [gguf]
    assert first == second == identity
    assert first.storage_quant == "Q4_1"
    (folder / "storage_quant").write_text("<b>Q4_1</b>", "ascii")
    third, _ = local.local_identity(spec, "gguf", str(gguf), None)
    assert calls == [gguf, gguf]
    assert third == identity
    assert (folder / "storage_quant").read_text("ascii") == "Q4_1"


def test_a_local_model_without_torch_names_the_extra(tmp_path: Path) -> None:
    """Without torch, an hf: model's first call is one error naming the extra to install.

    Its identity needs no torch (a cached run needs nothing more), so loading it still works.
    """
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", "utf-8")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from runner.backends import ChoiceRequest, MissingDependency, load_backend\n"
        f"backend = load_backend({f'hf:{folder}'!r})\n"
        "try:\n"
        "    backend.score_choices([ChoiceRequest('a', (' b',))])\n"
        "except MissingDependency as exc:\n"
        "    print(exc.exit_code, exc.diagnostics())\n"
    )
    env = {**os.environ, "RECEIPTS_CACHE": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    expected = f"1 model spec 'hf:{folder}' needs torch, which is not installed"
    assert out.stdout.startswith(expected), out.stdout
    assert "pip install 'receipts[runner]'" in out.stdout


def test_identity_memo_sees_a_rewritten_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner remembers weights digests across runs, but never for a file rewritten since."""
    import os

    from receipts.digests import digest_weights

    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    model = tiny_llama(tmp_path / "m")
    first = load_backend(f"hf:{model}").identity.digest
    assert first == load_backend(f"hf:{model}").identity.digest
    assert len(list((tmp_path / "cache" / "identities").iterdir())) == 1
    config = model / "config.json"
    before = config.stat()
    edited = config.read_bytes().replace(b'"hidden_size": 32', b'"hidden_size": 33', 1)
    assert len(edited) == before.st_size
    assert edited != config.read_bytes()
    config.write_bytes(edited)
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size, same mtime: only ctime tells
    second = load_backend(f"hf:{model}").identity.digest
    assert second != first
    assert second == "sha256:" + digest_weights(model).root
