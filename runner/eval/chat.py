"""Posing a prompt to a chat model (issue #20): the conversation, and the request lm-eval would send.

lm-evaluation-harness 0.4.9 (``ConfigurableTask.fewshot_context`` / ``construct_requests``) is the
reference, with its default single-turn few-shot layout:

- without a chat template the model reads ``system_prompt + prompt`` (lm-eval's ``--system_instruction``
  is put directly before the examples and the question, with no delimiter);
- with one (`runner.backends.chat`) it reads the conversation ``[system: system_prompt]`` (when the pack
  has one) then ``[user: prompt]`` (few-shot examples and the question in the one user turn), rendered
  with ``add_generation_prompt=True``; a multiple-choice continuation is the bare choice text (lm-eval
  sets ``target_delimiter`` to ``""`` under a chat template).

The system prompt is pack text: it is sent as message content, never rendered as a template.
"""

from __future__ import annotations

from runner.backends.base import ChoiceRequest, GenRequest, Message
from runner.eval.cache import request_key
from runner.eval.packs import Pack, PromptInstance

__all__ = ["chat_request", "conversation"]


def conversation(system_prompt: str | None, user: str) -> tuple[str, tuple[Message, ...]]:
    """``(plain prompt, messages)``: what a model without a chat template reads, and the conversation."""
    if system_prompt is None:
        return user, (("user", user),)
    return system_prompt + user, (("system", system_prompt), ("user", user))


def posed(inst: PromptInstance) -> tuple[Message, ...]:
    """The conversation a chat model is given for ``inst``: its system prompt (if any), then the prompt."""
    return inst.messages or (("user", inst.prompt),)


def chat_request(sees_gold: bool, inst: PromptInstance, pack: Pack) -> tuple[str, ChoiceRequest | GenRequest]:
    """The cache key and the request of ``inst`` for a model posed through its chat template.

    The key covers the conversation (the model's identity covers the template), so a chat model's
    outputs never mix with the same model's plain ones.
    """
    messages = posed(inst)
    sent = [list(message) for message in messages]
    if inst.continuations is not None:
        choices = tuple(inst.choices or ())
        gold = inst.gold if sees_gold and isinstance(inst.gold, int) else None
        key = request_key("chat-choices", messages=sent, continuations=list(choices))
        return key, ChoiceRequest(inst.prompt, choices, gold, messages)
    gen = pack.generation
    gold_text = inst.gold_text() if sees_gold else None
    key = request_key("chat-generate", messages=sent, max_new_tokens=gen.max_new_tokens, stop=list(gen.stop))
    return key, GenRequest(inst.prompt, gen.max_new_tokens, gen.stop, gold_text, messages)
