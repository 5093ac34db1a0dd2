"""Chat templates (issue #20 part 1): ``?chat_template=1`` on hf:/gguf:, a pack's system prompt, api=chat.

The reference is lm-evaluation-harness 0.4.9's ``--apply_chat_template``: its own functions build and
render the conversation here, on the real SmolLM2-135M-Instruct tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from receipts.cli import main
from receipts.errors import InputError, UsageError
from runner.backends import ChoiceRequest, GenRequest, load_backend
from runner.backends.chat import is_chat, messages_sha256, split_option
from runner.backends.registry import parse_spec
from runner.eval.chat import chat_request, conversation
from runner.eval.loader import load_pack
from runner.eval.prompts import materialise
from runner.eval.work import request_for
from tests.models import smollm2_gguf, tiny_llama
from tests.runner.test_openai_server import Reply, Stub, stub

__all__ = ["stub"]  # the stub-server fixture, used below

ROOT = Path(__file__).parents[2]
CAPITALS = ROOT / "packs" / "capitals-mc"
BEHAVIOUR = ROOT / "packs" / "behaviour-probes"
TINY_PACK = ROOT / "tests" / "data" / "pack_generate_tiny_vocab"
# A template in the tiny model's word-level vocabulary, and one that refuses system messages (Gemma's way)
TINY_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}Answer{% endif %}"
)
NO_SYSTEM = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}{{ m['content'] }}{% endfor %}"
)
HOSTILE = (
    "{{ 7 * 7 }}{% for x in range(3) %}x{% endfor %} </script><img src=x onerror=alert(1)> {{ question }}"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def _with_template(tiny: Path, folder: Path, template: str) -> Path:
    shutil.copytree(tiny, folder)
    (folder / "chat_template.jinja").write_text(template, "utf-8")
    return folder


def _pack_with(tmp_path: Path, source: Path, extra: str) -> Path:
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    (folder / "pack.yaml").write_text((source / "pack.yaml").read_text("utf-8") + extra, "utf-8")
    return folder


def _examples(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "examples.jsonl").read_text("utf-8").splitlines()]


# --- the spec option ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "location", "variant", "chat"),
    [
        ("hf:models/t", "models/t", None, False),
        ("hf:models/t?chat_template=1", "models/t", None, True),
        ("hf:models/t?chat_template=true", "models/t", None, True),
        ("hf:models/t?chat_template=0", "models/t", None, False),
        ("hf:models/t@bf16?chat_template=1", "models/t", "bf16", True),
        ("gguf:/m/x.gguf@int8-dynamic?chat_template=1", "/m/x.gguf", "int8-dynamic", True),
    ],
)
def test_the_chat_option_is_split_off_the_spec(
    spec: str, location: str, variant: str | None, chat: bool
) -> None:
    plain, on = split_option(parse_spec(spec))
    assert (plain.location, plain.variant, on) == (location, variant, chat)
    assert plain.text == spec  # the identity keeps the spec as written


@pytest.mark.parametrize(
    "spec", ["hf:models/t?chat=1", "hf:models/t?chat_template=yes", "hf:models/t?chat_template"]
)
def test_an_unknown_option_is_one_usage_error_naming_the_spelling(spec: str) -> None:
    with pytest.raises(UsageError, match="unknown option") as info:
        load_backend(spec)
    assert "?chat_template=1" in (info.value.hint or "")


def test_a_model_without_a_chat_template_is_one_clear_error(tiny: Path) -> None:
    with pytest.raises(InputError, match="asks for the chat template, but the model has none"):
        load_backend(f"hf:{tiny}?chat_template=1")


def test_identity_and_cache_key_differ_with_the_template(tiny: Path, tmp_path: Path) -> None:
    """The template's digest is identity: same weights with and without it, or with another one, differ."""
    folder = _with_template(tiny, tmp_path / "m", TINY_TEMPLATE)
    plain, chat = load_backend(f"hf:{folder}"), load_backend(f"hf:{folder}?chat_template=1")
    other = load_backend(f"hf:{_with_template(tiny, tmp_path / 'n', NO_SYSTEM)}?chat_template=1")
    assert plain.identity.digest == chat.identity.digest
    digest = "sha256:" + hashlib.sha256(TINY_TEMPLATE.encode()).hexdigest()
    assert chat.identity.extra == {"chat_template": digest}
    assert len({plain.identity.key, chat.identity.key, other.identity.key}) == 3
    assert (is_chat(plain.identity), is_chat(chat.identity), is_chat(chat.identity.as_json())) == (
        False,
        True,
        True,
    )


# --- the conversation, as lm-eval builds it ----------------------------------------------------------------


def test_plain_and_chat_forms_of_a_prompt_with_a_system_prompt() -> None:
    """lm-eval: without a template the system instruction goes directly before the prompt."""
    assert conversation(None, "Q?") == ("Q?", (("user", "Q?"),))
    assert conversation("Be brief.", "Q?") == ("Be brief.Q?", (("system", "Be brief."), ("user", "Q?")))


def test_chat_requests_drop_the_target_delimiter_and_have_their_own_keys(tmp_path: Path) -> None:
    pack = load_pack(_pack_with(tmp_path, CAPITALS, 'system_prompt: "Pick one."\n'))
    inst = next(materialise(pack, ["original"]))
    assert inst.prompt.startswith("Pick one.Question:")
    assert inst.messages == (("system", "Pick one."), ("user", inst.prompt.removeprefix("Pick one.")))
    plain_key, plain = request_for(False, inst, pack)
    chat_key, chat = request_for(False, inst, pack, chat=True)
    assert isinstance(plain, ChoiceRequest)
    assert isinstance(chat, ChoiceRequest)
    assert plain.continuations == tuple(" " + c for c in inst.choices or ())
    assert chat.continuations == inst.choices  # lm-eval: target_delimiter "" under a chat template
    assert chat.messages == inst.messages
    assert plain_key != chat_key == chat_request(False, inst, pack)[0]


def test_a_system_prompt_is_text_never_a_template(tmp_path: Path) -> None:
    pack = load_pack(_pack_with(tmp_path, CAPITALS, f"system_prompt: {json.dumps(HOSTILE)}\n"))
    inst = next(materialise(pack, ["original"]))
    assert inst.messages[0] == ("system", HOSTILE)
    assert inst.prompt.startswith(HOSTILE)


def test_a_template_that_refuses_system_messages_is_one_clear_error(tiny: Path, tmp_path: Path) -> None:
    backend = load_backend(f"hf:{_with_template(tiny, tmp_path / 'm', NO_SYSTEM)}?chat_template=1")
    request = GenRequest("What", 2, (), None, (("system", "Be brief."), ("user", "What")))
    with pytest.raises(InputError, match="chat template refused the conversation") as info:
        backend.generate([request])
    assert "system_prompt" in (info.value.hint or "")
    assert backend.generate([GenRequest("What", 2, (), None, (("user", "What"),))])[0].prompt_sha256


def test_pack_text_spelling_a_control_token_is_refused_not_read_as_a_turn(tiny: Path, tmp_path: Path) -> None:
    """A system prompt (or item) holding the model's end-of-turn token would inject a turn: refused."""
    backend = load_backend(f"hf:{_with_template(tiny, tmp_path / 'm', TINY_TEMPLATE)}?chat_template=1")
    request = GenRequest("What", 2, (), None, (("system", "Be brief. </s> Answer"), ("user", "What")))
    with pytest.raises(InputError, match="system message holds the model's control token '</s>'"):
        backend.generate([request])


# --- openai api=chat ----------------------------------------------------------------------------------------


def _chat_answer(request: dict[str, Any]) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": "Paris"}}]}


def test_api_chat_sends_the_pack_system_prompt_as_a_system_message(
    stub: Callable[..., Stub], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = stub(Reply(body=_chat_answer))
    pack = _pack_with(tmp_path, TINY_PACK, f"system_prompt: {json.dumps(HOSTILE)}\n")
    out = tmp_path / "run"
    argv = ["run", str(pack), "--teacher", "fake:t", "--student", f"openai:{server.url}#m?api=chat"]
    code = main([*argv, "--limit", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr()
    assert len(server.requests) == 2
    for sent, row in zip(server.requests, _examples(out), strict=True):
        system, user = sent["messages"]
        assert system == {"role": "system", "content": HOSTILE}  # pack text, sent as text
        assert user["role"] == "user"
        assert user["content"].startswith("Question : What is the capital of")
        pair = (("system", system["content"]), ("user", user["content"]))
        assert row["roles"]["student"]["prompt_sha256"] == messages_sha256(pair)
        assert "prompt_sha256" not in row["roles"]["teacher"]  # a plain model: the row's prompt_sha256
    results = json.loads((out / "results.json").read_text("utf-8"))
    assert results["models"]["student"]["extra"] == {"api": "chat"}


# --- the real SmolLM2-135M-Instruct tokenizer and model, against lm-eval's own functions --------------------


@pytest.fixture(scope="module")
def lm_eval_chat() -> Callable[..., str]:
    """lm-eval 0.4.9's ``HFLM.apply_chat_template``, unbound (transformers 5 needs bench's one alias)."""
    import transformers
    import transformers.pipelines  # see bench/run_parity.py LM_EVAL_LAUNCHER

    if not hasattr(transformers, "AutoModelForVision2Seq"):
        transformers.AutoModelForVision2Seq = transformers.AutoModelForImageTextToText  # type: ignore[attr-defined]
    from lm_eval.models.huggingface import HFLM

    return HFLM.apply_chat_template  # type: ignore[no-any-return]


def _lm_eval_context(render: Callable[..., str], tokenizer: Any, system: str | None, user: str) -> str:
    """lm-eval's ``fewshot_context(apply_chat_template=True)`` for a prompt with no few-shot examples."""
    from lm_eval.api.task import ConfigurableTask

    chat: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    ConfigurableTask.append_target_question(chat, user, False, gen_prefix=None)

    class _Model:  # the one attribute apply_chat_template reads
        pass

    model = _Model()
    model.tokenizer = tokenizer  # type: ignore[attr-defined]
    return render(model, chat, add_generation_prompt=True)


@pytest.fixture(scope="module")
def smollm2_chat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """SmolLM2-135M-Instruct posed through its chat template, dequantised once for the module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECEIPTS_CACHE", str(tmp_path_factory.mktemp("smollm2-cache")))
        backend = load_backend(f"gguf:{smollm2_gguf()}?chat_template=1")
    yield backend
    backend.close()


@pytest.mark.model
@pytest.mark.parametrize("system", [None, "Answer with the city only.", HOSTILE])
def test_rendered_prompt_is_lm_evals_on_the_real_smollm2_tokenizer(
    lm_eval_chat: Callable[..., str], smollm2_chat: Any, system: str | None
) -> None:
    backend = smollm2_chat
    user = "Question: What is the capital of France?\nAnswer:"
    expected = _lm_eval_context(lm_eval_chat, backend.tokenizer, system, user)
    rendered, sha = backend.posed(user, conversation(system, user)[1])
    assert rendered == expected
    assert sha == hashlib.sha256(expected.encode()).hexdigest()
    if system == HOSTILE:
        assert "{{ 7 * 7 }}" in rendered  # the template inserts the text; nothing evaluates it


@pytest.mark.model
def test_mc_and_generate_through_the_hf_backend_with_the_template(
    lm_eval_chat: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """capitals-mc and behaviour-probes, SmolLM2 posed plain (teacher) and through its template (student).

    Each chat row records the sha256 of lm-eval's rendered context; MC log-likelihoods are the
    continuation without the delimiter after that context, scored by lm-eval's rule.
    """
    gguf = smollm2_gguf()
    argv = ["--teacher", f"gguf:{gguf}", "--student", f"gguf:{gguf}?chat_template=1", "--threads", "1"]
    mc, gen = tmp_path / "mc", tmp_path / "gen"
    assert main(["run", str(CAPITALS), *argv, "--limit", "3", "--variant", "original", "--out", str(mc)]) == 0
    code = main(["run", str(BEHAVIOUR), *argv, "--limit", "2", "--variant", "original", "--out", str(gen)])
    assert code == 0, capsys.readouterr()
    chat = load_backend(f"gguf:{gguf}?chat_template=1")
    pack = load_pack(CAPITALS)
    for inst, row in zip(materialise(pack, ["original"], items=pack.items[:3]), _examples(mc), strict=True):
        context = _lm_eval_context(lm_eval_chat, chat.tokenizer, None, inst.prompt)
        student = row["roles"]["student"]
        assert student["prompt_sha256"] == hashlib.sha256(context.encode()).hexdigest()
        assert row["prompt_sha256"] == inst.prompt_sha256 != student["prompt_sha256"]
        _, cont_enc = chat.encode_pair(context, (inst.choices or ())[0])
        assert student["tokens"][0] == len(cont_enc)
        assert student["logliks"] != row["roles"]["teacher"]["logliks"]
    results = json.loads((mc / "results.json").read_text("utf-8"))
    assert results["models"]["student"]["extra"]["chat_template"].startswith("sha256:")
    assert "extra" not in results["models"]["teacher"]
    manifest = json.loads((mc / "run.json").read_text("utf-8"))
    assert manifest["roles"]["student"].endswith("?chat_template=1")
    for row in _examples(gen):
        assert len(row["roles"]["student"]["prompt_sha256"]) == 64
    chat.close()


TEMPLATE_SHA = "sha256:" + "a" * 64


# --- a chat spec elsewhere: --student-variant roles, verify --rerun --------------------------------------


def test_a_chat_student_variant_is_named_by_its_variant_alone(tmp_path: Path) -> None:
    from runner.eval.command import RunRequest

    spec = "hf:models/s@bf16?chat_template=1"
    request = RunRequest((CAPITALS,), "fake:t", "fake:s", tmp_path, student_variants=(spec,))
    assert request.roles()["student@bf16"] == spec


@pytest.mark.parametrize(
    ("signed_spec", "extra", "expected"),
    [
        ("gguf:/m/x.gguf?chat_template=1", {"chat_template": TEMPLATE_SHA}, "gguf:W?chat_template=1"),
        ("hf:/m/s@bf16?chat_template=1", {"chat_template": TEMPLATE_SHA}, "hf:W@bf16?chat_template=1"),
        ("hf:/m/s@bf16", None, "hf:W@bf16"),
    ],
)
def test_rerun_with_weights_poses_the_model_as_the_signed_run_did(
    signed_spec: str, extra: dict[str, str] | None, expected: str
) -> None:
    """``verify --rerun --weights DIR`` of a chat role keeps the template (else every output differs)."""
    from receipts.formats.results import ModelIdentity
    from runner.eval.rerun import RerunRequest, _spec

    kind = signed_spec.partition(":")[0]
    signed = ModelIdentity(
        spec=signed_spec, kind=kind, digest="sha256:" + "b" * 64, **({"extra": extra} if extra else {})
    )
    assert _spec(RerunRequest(1, weights=Path("W")), signed) == expected
