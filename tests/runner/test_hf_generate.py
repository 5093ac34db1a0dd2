"""`HFBackend.generate`: rows stop at their stop sequence, sub-batches are deterministic, texts as before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runner.backends import GenRequest, load_backend
from runner.backends.base import GenResult
from runner.backends.hf_decode import GEN_TOKENS, cut, sub_batches
from tests.models import smollm2_folder, tiny_llama

PROMPTS = (
    "Question : What is the capital of France ? Answer :",
    "the capital of Italy is",
    "Question : What is",
    "Paris and Rome and Berlin",
    "Answer : the",
)
CLAUSES = (
    "Clause: Either party may terminate this Agreement on 90 days written notice.\nJSON:",
    "Clause: This Agreement is governed by the laws of the State of New York.\nJSON:",
    "Clause: Acme Corp shall pay each invoice within 30 days of receipt, in EUR.\nJSON:",
    "Write one sentence about the sea.\n",
)


def one_at_a_time(backend: Any, req: GenRequest) -> GenResult:
    """`HFBackend.generate` before batching: all max_new_tokens of one prompt, cut afterwards."""
    import torch

    text, sha = backend.posed(req.prompt, req.messages)
    prompt = backend._enc(text) or [backend._prefix]
    ids = torch.tensor([prompt[-backend.max_length :]], dtype=torch.long)
    with torch.inference_mode():
        result = backend.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=req.max_new_tokens,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            pad_token_id=backend._generate_pad,
        )
    new = result.sequences[0, ids.shape[1] :].tolist()
    logprobs = [
        float(torch.log_softmax(score[0].float(), dim=-1)[token])
        for score, token in zip(result.scores, new, strict=False)
    ]
    text = str(backend.tokenizer.decode(new, skip_special_tokens=True))
    at = min((text.index(s) for s in req.stop if s and s in text), default=len(text))
    if at < len(text):
        text = text[:at]
        logprobs = logprobs[: len(backend._enc(text))]
    return GenResult(text, tuple(logprobs), sha)


@contextmanager
def forwards(backend: Any) -> Iterator[list[int]]:
    """The rows of each forward of the backend's model while the block runs."""
    rows: list[int] = []
    hook = backend.model.register_forward_hook(
        lambda _m, _a, kwargs, _o: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        yield rows
    finally:
        hook.remove()


def stops_inside(full: str) -> tuple[str, ...]:
    """Stop sequences the free text holds: one early, one that a longer stop overlaps, one never there."""
    middle = full[len(full) // 3 : len(full) // 3 + 3]
    return (middle, full[len(full) // 2 :][:1] + "never there", "\u2603")


def check_as_before(backend: Any, prompts: tuple[str, ...], max_new: int) -> None:
    """Each prompt alone, free and with stops inside its text, gives what one-at-a-time decoding gave."""
    for prompt in prompts:
        free = GenRequest(prompt, max_new_tokens=max_new)
        [got] = backend.generate([free])
        assert got == one_at_a_time(backend, free)
        stopped = GenRequest(prompt, max_new_tokens=max_new, stop=stops_inside(got.text))
        with forwards(backend) as rows:
            [early] = backend.generate([stopped])
        assert early == one_at_a_time(backend, stopped)
        if cut(got.text, stopped.stop) is not None and len(got.token_logprobs) == max_new:  # stopped early
            assert len(rows) < max_new


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def test_sub_batches_group_settings_longest_first_and_cap_rows_and_tokens() -> None:
    prompts = [[1] * 5, [1] * 9, [2] * 9, [1] * 3, [1] * 7, [1] * 4100, [2] * 4100, [3] * 4100]
    requests = [GenRequest("", 8, ("\n",))] * 5 + [GenRequest("", 96)] * 3
    requests[3] = GenRequest("", 8)
    # same settings only; longest prompt first, then by tokens; at most 2 rows; 3 x (4100 + 96) > GEN_TOKENS
    assert 3 * (4100 + 96) > GEN_TOKENS >= 2 * (4100 + 96)
    assert sub_batches(prompts, requests, 2) == [[3], [1, 2], [4, 0], [5, 6], [7]]
    assert sub_batches(prompts, requests, 16) == [[3], [1, 2, 4, 0], [5, 6], [7]]
    assert sub_batches(prompts, requests, 1) == [[3], [1], [2], [4], [0], [5], [6], [7]]
    # a function of the requests: the same ones in another order group the same way
    order = [7, 0, 6, 1, 5, 2, 4, 3]
    again = sub_batches([prompts[i] for i in order], [requests[i] for i in order], 16)
    assert sorted(sorted(order[i] for i in chunk) for chunk in again) == [[0, 1, 2, 4], [3], [5, 6], [7]]


def test_cut_is_the_first_stop_sequence() -> None:
    assert cut("a}\n\nb", ("\n\n", "}")) == 1
    assert cut("abc", ("", "x")) is None


def test_a_prompt_alone_is_decoded_as_before_and_stops_early(tiny: Path) -> None:
    check_as_before(load_backend(f"hf:{tiny}"), PROMPTS, 12)


def test_batched_requests_come_back_in_order_and_bit_identical(tiny: Path) -> None:
    backend = load_backend(f"hf:{tiny}")
    requests = [GenRequest(p, max_new_tokens=10, stop=("Rome",)) for p in PROMPTS]
    requests += [GenRequest(p, max_new_tokens=6) for p in PROMPTS[:3]]
    with forwards(backend) as rows:
        together = backend.generate(requests)
    assert max(rows) == len(PROMPTS)  # the five with the same settings decode together
    assert backend.generate(requests) == together
    assert backend.generate(requests[::-1]) == together[::-1]  # the same sub-batches, in the other order
    for req, got in zip(requests, together, strict=True):
        alone = one_at_a_time(backend, req)
        assert got.text == alone.text
        assert got.token_logprobs == pytest.approx(alone.token_logprobs, abs=1e-4)


def test_bf16_decodes_one_prompt_at_a_time(tiny: Path) -> None:
    backend = load_backend(f"hf:{tiny}@bf16")
    requests = [GenRequest(p, max_new_tokens=6) for p in PROMPTS]
    with forwards(backend) as rows:
        got = backend.generate(requests)
    assert got == [one_at_a_time(backend, req) for req in requests]
    assert set(rows) == {1}


@pytest.mark.model
def test_smollm2_alone_as_before_and_batched_in_order() -> None:
    backend = load_backend(f"hf:{smollm2_folder()}")
    check_as_before(backend, CLAUSES, 32)
    requests = [GenRequest(p, max_new_tokens=32, stop=("\n\n", "}")) for p in CLAUSES]
    together = backend.generate(requests)
    assert backend.generate(requests[::-1]) == together[::-1]
    for req, got in zip(requests, together, strict=True):
        alone = one_at_a_time(backend, req)
        assert got.text == alone.text
        assert got.token_logprobs == pytest.approx(alone.token_logprobs, abs=1e-3)


def test_the_cache_scope_names_the_batch_layout_in_use() -> None:
    """Outputs are cached per batch *and layout*: changing a layout constant without BATCH_LAYOUT fails."""
    from runner.backends import hf, hf_decode
    from runner.eval.roles import BATCH_LAYOUT

    constants = (
        f"pack{hf.PACK_TOKENS}/quantum{hf.ROW_QUANTUM}/gemm{hf.MIN_GEMM_ROWS}/"
        f"gen{hf_decode.GEN_ROWS}x{hf_decode.GEN_TOKENS}/"
    )
    assert BATCH_LAYOUT.startswith(constants), "update runner.eval.roles.BATCH_LAYOUT with the constants"


def test_rows_leave_the_batch_as_they_end_with_the_texts_generate_gives(tiny: Path) -> None:
    """`hf_decode.greedy` drops each ended row: generate()'s texts, log-probs within the last bits."""
    backend = load_backend(f"hf:{tiny}")
    assert backend._drop_rows
    free = backend.generate([GenRequest(p, max_new_tokens=12) for p in PROMPTS])
    # one setting (one sub-batch) with stops that end some rows early, at different steps, and not others
    stops = ("Question", "d")
    ends = sorted(
        min((len(g.text[: g.text.index(s)].split()) for s in stops if s in g.text), default=12) for g in free
    )
    assert len(set(ends)) >= 3
    assert ends[-1] == 12
    requests = [GenRequest(p, max_new_tokens=12, stop=stops) for p in PROMPTS]
    with forwards(backend) as rows:
        dropping = backend.generate(requests)
    assert rows[0] == len(PROMPTS)
    assert rows == sorted(rows, reverse=True)
    assert rows[-1] < len(PROMPTS)
    backend.loaded._drop_rows = False  # transformers' generate() over the same sub-batch
    with forwards(backend) as full_rows:
        whole = backend.generate(requests)
    assert set(full_rows) == {len(PROMPTS)}
    assert len(full_rows) == len(rows)
    for a, b in zip(dropping, whole, strict=True):
        assert (a.text, len(a.token_logprobs)) == (b.text, len(b.token_logprobs))
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-4)


def test_a_generation_config_with_processors_decodes_with_generate(tiny: Path) -> None:
    """A generation config that adds a logits processor is left to generate(): greedy does not mimic it."""
    from runner.backends.hf_decode import plain_greedy

    backend = load_backend(f"hf:{tiny}")
    assert plain_greedy(backend.model)
    backend.model.generation_config.repetition_penalty = 1.3
    assert not plain_greedy(backend.model)
    backend.model.generation_config.repetition_penalty = 1.0
    backend.model.generation_config.suppress_tokens = [5]
    assert not plain_greedy(backend.model)
    reloaded = load_backend(f"hf:{tiny}")
    reloaded.model.generation_config.no_repeat_ngram_size = 2
    reloaded.loaded._drop_rows = plain_greedy(reloaded.model)  # what loading such a model decides
    assert not reloaded._drop_rows
    req = GenRequest(PROMPTS[0], max_new_tokens=8)
    assert reloaded.generate([req]) == [one_at_a_time(reloaded, req)]
