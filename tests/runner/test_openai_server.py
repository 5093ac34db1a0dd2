"""The openai: backend against a real server (``transformers serve``) and scripted stub servers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.errors import InputError, UsageError
from runner.backends import ChoiceRequest, GenRequest, load_backend
from runner.backends import openai as openai_backend
from runner.backends.local import local_identity
from runner.backends.openai import OpenAIBackend
from tests.models import smollm2_gguf, tiny_llama

ROOT = Path(__file__).parents[2]
TINY_PACK = ROOT / "tests" / "data" / "pack_generate_tiny_vocab"
BEHAVIOUR = ROOT / "packs" / "behaviour-probes"
PROMPTS = [
    "Question : What is the capital of France ? Answer :",
    "Question : What is the capital of Spain ? Answer :",
    "What is the capital of Italy ?",
    "a b c",
]
# The prompt verbatim, so that api=chat sends the model exactly what api=completions does.
PASSTHROUGH_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

# --- stub servers: concurrency, retries, timeouts, refusals -------------------------------------------


@dataclass
class Reply:
    """One scripted answer: status, JSON body (or raw bytes, or a function of the request), delay."""

    status: int = 200
    body: dict[str, Any] | bytes | Callable[[dict[str, Any]], dict[str, Any]] = field(
        default_factory=lambda: {"choices": [{"text": "ok"}]}
    )
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Stub:
    """A ThreadingHTTPServer answering with ``replies`` in turn (the last one repeats)."""

    replies: list[Reply]
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, request: dict[str, Any]) -> Reply:
        with self.lock:
            reply = self.replies[min(len(self.requests), len(self.replies) - 1)]
            self.requests.append(request)
            self.paths.append(path)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(reply.delay)
        with self.lock:
            self.in_flight -= 1
        return reply


def _handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            reply = stub.answer(self.path, request)
            body = reply.body(request) if callable(reply.body) else reply.body
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

    return Handler


@pytest.fixture
def stub() -> Iterator[Callable[..., Stub]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*replies: Reply) -> Stub:
        state = Stub(list(replies) or [Reply()])
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(httpd)
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        return state

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(openai_backend, "_wait", recorded.append)
    return recorded


def _upper(request: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"text": request["prompt"].upper()}]}


def test_options_do_not_change_the_identity_but_endpoint_model_and_api_do() -> None:
    plain = load_backend("openai:http://127.0.0.1:8000/v1#m")
    tuned = load_backend("openai:http://127.0.0.1:8000/v1/#m?num_concurrent=8&max_retries=0&timeout=5")
    assert isinstance(tuned, OpenAIBackend)
    assert (tuned.options.num_concurrent, tuned.options.max_retries, tuned.options.timeout) == (8, 0, 5.0)
    assert tuned.identity.key == plain.identity.key
    assert plain.identity.extra == {"api": "completions"}
    others = [
        "openai:http://127.0.0.1:8000/v1#m?api=chat",
        "openai:http://127.0.0.1:8000/v1#m2",
        "openai:http://127.0.0.1:8001/v1#m",
    ]
    assert len({plain.identity.key} | {load_backend(s).identity.key for s in others}) == 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("http://h/v1#m?num_concurent=2", r"unknown or repeated option\(s\) \['num_concurent'\]"),
        ("http://h/v1#m?timeout=1&timeout=2", r"repeated option\(s\) \['timeout'\]"),
        ("http://h/v1#m?timeout=soon", "are numbers"),
        ("http://h/v1#m?num_concurrent=0", "out-of-range"),
        ("http://h/v1#m?api=responses", "out-of-range"),
        ("http://h/v1#m?timeout=nan", "out-of-range"),
        ("http://h/v1#m?timeout", "NAME=VALUE"),
        ("http://h/v1?timeout=1#m", "expected openai:BASE_URL#MODEL"),
        ("h/v1#m", "expected openai:BASE_URL#MODEL"),
    ],
)
def test_bad_options_are_usage_errors(body: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_backend(f"openai:{body}")


def test_concurrency_is_capped_and_results_keep_request_order(stub: Callable[..., Stub]) -> None:
    server = stub(Reply(body=_upper, delay=0.15))
    prompts = [f"prompt {i}" for i in range(9)]
    backend = load_backend(f"openai:{server.url}#m?num_concurrent=3")
    results = backend.generate([GenRequest(p) for p in prompts])
    assert [r.text for r in results] == [p.upper() for p in prompts]
    assert server.max_in_flight == 3
    serial = stub(Reply(body=_upper, delay=0.02))
    load_backend(f"openai:{serial.url}#m").generate([GenRequest(p) for p in prompts[:4]])
    assert serial.max_in_flight == 1  # the default, lm-eval's num_concurrent=1


def test_choices_are_scored_concurrently_and_regrouped(stub: Callable[..., Stub]) -> None:
    def echo(request: dict[str, Any]) -> dict[str, Any]:
        """One token up to the "|" ending the context, then one per character: a -1, b -2, c -3."""
        prompt = request["prompt"]
        offsets = [0, *range(prompt.index("|") + 1, len(prompt))]
        values = [None] + [-float(ord(prompt[o]) - ord("a") + 1) for o in offsets[1:]]
        # the max_tokens=1 token lies past the prompt: never counted
        logprobs = {"text_offset": [*offsets, len(prompt)], "token_logprobs": [*values, -9.0]}
        return {"choices": [{"text": prompt + "z", "logprobs": logprobs}]}

    server = stub(Reply(body=echo, delay=0.05))
    backend = load_backend(f"openai:{server.url}#m?num_concurrent=4")
    results = backend.score_choices(
        [
            ChoiceRequest("ctx|", ("a", "bb")),
            ChoiceRequest("x|", ("c",)),
            ChoiceRequest("yy|", ("ab", "b", "a")),
        ]
    )
    assert [r.logliks for r in results] == [(-1.0, -4.0), (-3.0,), (-3.0, -2.0, -1.0)]
    assert [r.tokens for r in results] == [(1, 2), (1,), (2, 1, 1)]
    assert server.max_in_flight == 4
    assert all(r["echo"] and r["max_tokens"] == 1 and r["logprobs"] == 1 for r in server.requests)


def test_503_twice_then_success_takes_three_attempts(stub: Callable[..., Stub], waits: list[float]) -> None:
    failing = Reply(503, {"error": {"message": "warming up"}})
    server = stub(failing, failing, Reply(body={"choices": [{"text": " Paris"}]}))
    result = load_backend(f"openai:{server.url}#m").generate([GenRequest("The capital is")])[0]
    assert result.text == " Paris"
    assert len(server.requests) == 3
    # exponential backoff with jitter: 0.5 s x [0.5, 1], then 1 s x [0.5, 1]
    assert len(waits) == 2
    assert 0.25 <= waits[0] <= 0.5
    assert 0.5 <= waits[1] <= 1.0


def test_retry_after_is_honoured(stub: Callable[..., Stub], waits: list[float]) -> None:
    in_a_while = formatdate(time.time() + 30, usegmt=True)
    server = stub(
        Reply(429, {"error": "slow down"}, {"Retry-After": "2"}),
        Reply(503, b"busy", {"Retry-After": in_a_while}),
        Reply(),
    )
    assert load_backend(f"openai:{server.url}#m").generate([GenRequest("x")])[0].text == "ok"
    assert waits[0] == 2.0
    assert 25 <= waits[1] <= 30


def test_failing_server_gives_up_after_max_retries(stub: Callable[..., Stub], waits: list[float]) -> None:
    server = stub(Reply(502, {"detail": "bad gateway"}))
    backend = load_backend(f"openai:{server.url}#m?max_retries=2")
    with pytest.raises(InputError, match=r"failed 3 attempts: HTTP 502: bad gateway") as info:
        backend.generate([GenRequest("x")])
    assert "lower num_concurrent" in (info.value.hint or "")
    assert len(server.requests) == 3
    assert len(waits) == 2


def test_400_is_not_retried_and_carries_the_servers_message(
    stub: Callable[..., Stub], waits: list[float]
) -> None:
    server = stub(Reply(400, {"error": {"message": "model 'm' does not exist", "type": "invalid_request"}}))
    backend = load_backend(f"openai:{server.url}#m")
    with pytest.raises(InputError, match=r"refused the request: HTTP 400: model 'm' does not exist") as info:
        backend.generate([GenRequest("x")])
    assert "model name" in (info.value.hint or "")
    assert len(server.requests) == 1
    assert waits == []


def test_404_hints_at_the_base_url_and_the_other_api(stub: Callable[..., Stub]) -> None:
    server = stub(Reply(404, b"Not Found"))
    with pytest.raises(InputError, match="HTTP 404: Not Found") as info:
        load_backend(f"openai:{server.url}#m").generate([GenRequest("x")])
    assert "api=chat" in (info.value.hint or "")


def test_timeout_is_a_clear_error_naming_it(stub: Callable[..., Stub], waits: list[float]) -> None:
    server = stub(Reply(delay=2.0))
    backend = load_backend(f"openai:{server.url}#m?timeout=0.3")
    with pytest.raises(InputError, match=r"no answer within 0.3 s \(timeout=0.3\)") as info:
        backend.generate([GenRequest("x")])
    assert "timeout=600" in (info.value.hint or "")
    assert len(server.requests) == 1  # a timeout is not retried
    assert waits == []


def test_unreachable_server_names_the_attempts(waits: list[float]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        backend = load_backend(f"openai:http://127.0.0.1:{port}/v1#m?max_retries=2")
        with pytest.raises(InputError, match=r"cannot reach .*/v1/completions after 3 attempts \(.*refused"):
            backend.generate([GenRequest("x")])
    assert len(waits) == 2


def test_non_json_answer(stub: Callable[..., Stub]) -> None:
    server = stub(Reply(body=b"<html>proxy login</html>"))
    with pytest.raises(InputError, match=r"did not answer JSON: b'<html>proxy login"):
        load_backend(f"openai:{server.url}#m").generate([GenRequest("x")])


def test_no_prompt_logprobs_is_the_clear_error(stub: Callable[..., Stub]) -> None:
    server = stub(Reply(body={"choices": [{"text": "Paris", "logprobs": None}]}))
    backend = load_backend(f"openai:{server.url}#m")
    with pytest.raises(InputError, match=r"does not return prompt logprobs \(echo\+logprobs\)") as info:
        backend.score_choices([ChoiceRequest("The capital is", (" Paris", " Rome"))])
    assert "generate packs" in (info.value.hint or "")
    assert "vLLM" in (info.value.hint or "")


def test_stop_cuts_text_and_its_logprobs(stub: Callable[..., Stub]) -> None:
    logprobs = {"tokens": [" Paris", ".", "\n", "More"], "token_logprobs": [-0.1, -0.2, -0.3, -0.4]}
    server = stub(Reply(body={"choices": [{"text": " Paris.\nMore", "logprobs": logprobs}]}))
    result = load_backend(f"openai:{server.url}#m").generate([GenRequest("x", stop=("\n",))])[0]
    assert result.text == " Paris."
    assert result.token_logprobs == (-0.1, -0.2)
    assert server.requests[0]["stop"] == ["\n"]


def test_chat_api_sends_one_user_message(stub: Callable[..., Stub]) -> None:
    content = [
        {"token": "Par", "logprob": -0.5},
        {"token": "is", "logprob": -0.25},
        {"token": "!", "logprob": -1.0},
    ]
    answer = {
        "choices": [{"message": {"role": "assistant", "content": "Paris!"}, "logprobs": {"content": content}}]
    }
    server = stub(Reply(body=answer))
    backend = load_backend(f"openai:{server.url}#m?api=chat")
    assert backend.identity.extra == {"api": "chat"}
    result = backend.generate([GenRequest("Capital of France?", max_new_tokens=5, stop=("!",))])[0]
    assert (result.text, result.token_logprobs) == ("Paris", (-0.5, -0.25))
    assert server.paths == ["/v1/chat/completions"]
    sent = server.requests[0]
    assert sent["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert (sent["max_tokens"], sent["temperature"], sent["logprobs"]) == (5, 0, True)
    with pytest.raises(UsageError, match="api=chat has no prompt logprobs"):
        backend.score_choices([ChoiceRequest("Capital?", (" Paris",))])


# --- a real server: transformers serve with a tiny local model ---------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own 127.0.0.1 server
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tiny_llama(tmp_path_factory.mktemp("tiny") / "model")
    (folder / "chat_template.jinja").write_text(PASSTHROUGH_TEMPLATE, "utf-8")
    return folder


@contextmanager
def transformers_serve(model: Path, log: Path) -> Iterator[str]:
    """``transformers serve`` pinned to ``model`` on a free 127.0.0.1 port, ready; its /v1 URL."""
    pytest.importorskip(
        "fastapi", reason="transformers serve needs the serve extra: pip install -e '.[serve]'"
    )
    pytest.importorskip(
        "uvicorn", reason="transformers serve needs the serve extra: pip install -e '.[serve]'"
    )
    port = _free_port()
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    # one thread, as `receipts run --threads 1` pins the in-process models: the same kernels, the same sums
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while not _ready(
            f"http://127.0.0.1:{port}/health"
        ):  # the pinned model loads before the server starts
            tail = log.read_text("utf-8", "replace")[-3000:]
            assert process.poll() is None, f"transformers serve exited with {process.returncode}:\n{tail}"
            assert time.monotonic() < deadline, f"transformers serve not ready after 180 s:\n{tail}"
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def served(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with transformers_serve(tiny, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


@pytest.mark.model
def test_served_generation_is_the_local_models(tiny: Path, served: str) -> None:
    requests = [GenRequest(p, max_new_tokens=8) for p in PROMPTS]
    local = load_backend(f"hf:{tiny}").generate(requests)
    remote = load_backend(f"openai:{served}#{tiny}?num_concurrent=2").generate(requests)
    assert [r.text for r in remote] == [r.text for r in local]
    assert len({r.text for r in local}) > 1  # the prompts really steer the (random) model
    # transformers serve ignores `logprobs` on /v1/completions (5.23): no tokens' log-probabilities,
    # so a served model has no generate confidence; the text is what is comparable.
    assert all(r.token_logprobs == () for r in remote)
    assert all(len(r.token_logprobs) > 0 for r in local)


@pytest.mark.model
def test_served_chat_api_with_a_verbatim_template_answers_the_same(tiny: Path, served: str) -> None:
    requests = [GenRequest(p, max_new_tokens=8) for p in PROMPTS]
    completions = load_backend(f"openai:{served}#{tiny}").generate(requests)
    chat = load_backend(f"openai:{served}#{tiny}?api=chat&num_concurrent=2")
    assert [r.text for r in chat.generate(requests)] == [r.text for r in completions]


@pytest.mark.model
def test_served_model_without_prompt_logprobs_cannot_score_choices(tiny: Path, served: str) -> None:
    backend = load_backend(f"openai:{served}#{tiny}")
    with pytest.raises(
        InputError, match=r"server http://127\.0\.0\.1:\d+/v1 .* does not return prompt logprobs"
    ):
        backend.score_choices(
            [ChoiceRequest("Question : What is the capital of France ? Answer :", (" Paris",))]
        )


@pytest.mark.model
def test_served_model_refuses_another_model_name(tiny: Path, served: str) -> None:
    backend = load_backend(f"openai:{served}#not-the-model?max_retries=0")
    with pytest.raises(InputError, match=r"HTTP 400: Server is pinned to"):
        backend.generate([GenRequest("a b c", max_new_tokens=2)])


@pytest.mark.model
def test_receipts_run_with_a_served_student(
    tiny: Path,
    served: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same weights as teacher (in process) and as student (over HTTP): every answer agrees."""
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    student = f"openai:{served}#{tiny}?num_concurrent=2&timeout=60"
    out = tmp_path / "run"
    code = main(["run", str(TINY_PACK), "--teacher", f"hf:{tiny}", "--student", student, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    results = json.loads((out / "results.json").read_text("utf-8"))
    identity = results["models"]["student"]
    assert identity["kind"] == "openai"
    assert identity["endpoint"] == f"{served}#{tiny}"
    assert identity["extra"] == {"api": "completions"}
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert row["roles"]["student"]["text"] == row["roles"]["teacher"]["text"], row["item"]
    assert results["fidelity"]["student"]["agreement_rate"] == 1.0


# --- a real model on a real pack: SmolLM2-135M-Instruct, dequantised as gguf: does ----------------------


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """``(cache, url)``: the GGUF dequantised into a fresh cache, that folder served."""
    cache, gguf = tmp_path_factory.mktemp("cache"), smollm2_gguf()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(cache))
        _, folder = local_identity(f"gguf:{gguf}", "gguf", str(gguf), None)
    with transformers_serve(folder, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield cache, f"{url}#{folder}"


@pytest.mark.model
def test_receipts_run_on_a_real_pack_with_a_served_student(
    smollm2: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SmolLM2 as teacher (gguf:, in process) and student (served): stop sequences cut the same texts."""
    cache, endpoint = smollm2
    monkeypatch.setenv("RECEIPTS_CACHE", str(cache))
    out = tmp_path / "run"
    argv = ["run", str(BEHAVIOUR), "--teacher", f"gguf:{smollm2_gguf()}", "--student", f"openai:{endpoint}"]
    code = main([*argv, "--limit", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text("utf-8").splitlines()]
    assert len(rows) == 4  # 2 items x (original, terse)
    texts = [(row["roles"]["student"]["text"], row["roles"]["teacher"]["text"]) for row in rows]
    assert all(student == teacher for student, teacher in texts), texts
    assert all(text.strip() and "\n\n" not in text for text, _ in texts)  # the pack's stop: ["\n\n"]
    results = json.loads((out / "results.json").read_text("utf-8"))
    assert results["fidelity"]["student"]["agreement_rate"] == 1.0


@pytest.mark.model
def test_served_chat_api_applies_the_models_chat_template(
    smollm2: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """api=chat answers what the model answers to its chat-templated prompt, not to the bare prompt."""
    cache, endpoint = smollm2
    monkeypatch.setenv("RECEIPTS_CACHE", str(cache))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    local = load_backend(f"gguf:{smollm2_gguf()}")
    tokenizer = local.loaded.tokenizer  # type: ignore[attr-defined]
    prompts = ["What is the capital of France?", "Name a colour."]
    templated = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in prompts
    ]
    chat = load_backend(f"openai:{endpoint}?api=chat&num_concurrent=2")
    answers = [r.text for r in chat.generate([GenRequest(p, max_new_tokens=16) for p in prompts])]
    assert answers == [r.text for r in local.generate([GenRequest(t, max_new_tokens=16) for t in templated])]
    bare = load_backend(f"openai:{endpoint}").generate([GenRequest(prompts[0], max_new_tokens=16)])[0]
    assert bare.text != answers[0]
