"""Chat templates: a model spec's ``?chat_template=1``, and rendering a conversation as lm-eval does.

``hf:DIR?chat_template=1`` / ``gguf:FILE?chat_template=1`` (after any variant:
``hf:DIR@bf16?chat_template=1``) poses every prompt through the model's own chat template, as
lm-evaluation-harness 0.4.9's ``--apply_chat_template`` does (``HFLM.apply_chat_template``): the
conversation is the pack's system prompt (if any) and one user turn holding the prompt (few-shot
examples included: lm-eval's default single-turn layout), rendered with
``tokenizer.apply_chat_template(tokenize=False, add_generation_prompt=True,
continue_final_message=False)``; multiple-choice continuations lose the pack's ``target_delimiter``
(lm-eval sets it to ``""`` under a chat template). ``openai:...?api=chat`` is the served equivalent: the
server applies its template to the same messages.

The template is part of the model's identity (``extra.chat_template`` = sha256 of its text), so it is
part of the output cache key and is recorded in the run manifest and results. One deliberate difference
from lm-eval: a template that refuses a system message is an error here, where lm-eval drops the system
message with a warning and scores something else than what was asked. And pack text that spells one of
the model's special tokens is refused (lm-eval would tokenise it as a control token: a turn injected
by data).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from receipts.errors import InputError, UsageError
from runner.backends.base import Message, ModelIdentity
from runner.backends.registry import ModelSpec

__all__ = [
    "OPTION",
    "chat_identity",
    "is_chat",
    "messages_sha256",
    "read_template",
    "render",
    "split_option",
]

OPTION = "chat_template"
_ON, _OFF = ("1", "true"), ("0", "false")


def split_option(spec: ModelSpec) -> tuple[ModelSpec, bool]:
    """``spec`` without its ``?chat_template=...`` query, and whether the option is on.

    The query is the text after the last ``?`` of the variant (when there is one) or of the location.

    Raises:
        UsageError: a query other than ``chat_template=1|0|true|false``.
    """
    text = spec.variant if spec.variant is not None else spec.location
    if "?" not in text:
        return spec, False
    head, _, query = text.rpartition("?")
    name, eq, value = query.partition("=")
    if name != OPTION or not eq or value.lower() not in (*_ON, *_OFF):
        raise UsageError(
            f"model spec {spec.text!r}: unknown option {query!r}",
            hint=f"the one option of {spec.kind}: is ?{OPTION}=1 (after any @variant), "
            f"e.g. {spec.kind}:PATH@bf16?{OPTION}=1",
        )
    plain = replace(spec, variant=head) if spec.variant is not None else replace(spec, location=head)
    return plain, value.lower() in _ON


def read_template(folder: Path) -> str | None:
    """The chat template a transformers tokenizer in ``folder`` would use, read from its files.

    ``chat_template.jinja`` (transformers >= 4.43 saves it there) wins over ``tokenizer_config.json``'s
    ``chat_template`` (a string, or a list of named templates whose ``default`` one is used).
    """
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text("utf-8")
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text("utf-8")).get("chat_template")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        value = named.get("default")
    return value if isinstance(value, str) and value else None


def chat_identity(identity: ModelIdentity, folder: Path) -> ModelIdentity:
    """The identity of the model posed through its chat template (the template's digest added).

    Raises:
        InputError: the model has no chat template.
    """
    template = read_template(folder)
    if template is None:
        raise InputError(
            f"model spec {identity.spec!r}: asks for the chat template, but the model has none "
            "(no chat_template.jinja, no chat_template in tokenizer_config.json)",
            file=folder,
            hint=f"drop ?{OPTION}=1 for a base model, or add the template its instruct version ships",
        )
    digest = "sha256:" + hashlib.sha256(template.encode("utf-8")).hexdigest()
    return replace(identity, extra={**identity.extra, OPTION: digest})


def is_chat(identity: ModelIdentity | dict[str, Any]) -> bool:
    """Whether a model is posed conversations: a local model's chat template, or an endpoint's api=chat."""
    extra = identity.extra if isinstance(identity, ModelIdentity) else identity.get("extra", {})
    return OPTION in extra or extra.get("api") == "chat"


def messages_sha256(messages: Sequence[Message]) -> str:
    """sha256 of a conversation as sent to a server that renders it (canonical JSON, no spaces)."""
    body = [{"role": role, "content": content} for role, content in messages]
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _no_control_tokens(tokenizer: Any, messages: Sequence[Message], spec: str) -> None:
    """Refuse message text that spells one of the model's special tokens.

    The rendered prompt is tokenised as text in which special tokens are recognised (lm-eval's way), so
    pack text holding ``<|im_end|>`` would close its turn and open another: a role injected by data.

    Raises:
        InputError: naming the token and the message's role.
    """
    special = {str(t) for t in getattr(tokenizer, "all_special_tokens", []) if t}
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    special |= {str(t.content) for t in decoder.values() if getattr(t, "special", False) and t.content}
    for role, content in messages:
        found = sorted(token for token in special if token in content)
        if found:
            raise InputError(
                f"model spec {spec!r}: the {role} message holds the model's control token {found[0]!r}, "
                "which its chat template would read as a turn boundary, not as text",
                hint="remove it from the pack's system_prompt or items (it is never needed as text)",
            )


def render(tokenizer: Any, messages: Sequence[Message], *, spec: str) -> str:
    """The conversation as the model's chat template renders it: lm-eval's exact call.

    Raises:
        InputError: the template fails on the conversation (e.g. it refuses a system message), or a
            message spells one of the model's special tokens.
    """
    import jinja2

    _no_control_tokens(tokenizer, messages, spec)
    chat = [{"role": role, "content": content} for role, content in messages]
    try:
        text = tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=True, continue_final_message=False
        )
    except jinja2.exceptions.TemplateError as exc:
        system = any(role == "system" for role, _ in messages)
        raise InputError(
            f"model spec {spec!r}: its chat template refused the conversation: {exc}",
            hint="this template takes no system message: remove the pack's system_prompt, or pose the "
            f"model without ?{OPTION}=1"
            if system
            else "check the model's chat template",
        ) from None
    except ValueError as exc:  # transformers: no template at all
        raise InputError(f"model spec {spec!r}: {exc}", hint=f"drop ?{OPTION}=1 for a base model") from None
    return str(text)
