"""``llamacpp:FILE.gguf[?chat_template=1]``: a GGUF run by llama.cpp itself, not dequantised (issue #21).

Log-likelihoods follow lm-evaluation-harness 0.4.x's rules exactly as `runner.backends.hf.HFBackend`
does, with llama.cpp's tokenizer: trailing context spaces move to the continuation, ``context_enc =
enc(context)``, ``continuation_enc = enc(context + continuation)[len(context_enc):]``, no BOS added
(special tokens spelled in the text are parsed, as a transformers tokenizer does), an empty context
becomes BOS (else EOS), and an input longer than the context is cut from the left. An item's choices
share one evaluation of its context, in the same ``llama_decode`` (`runner.llamacpp.decoder`), and
log-softmax is taken only at the positions that predict a continuation token.

Generation is greedy (argmax) and stops at an end-of-generation token (whose log-probability is kept,
as ``hf:`` keeps its EOS's) or ``max_new_tokens``; the text is cut at the first stop sequence as
``hf:`` cuts it, and generation ends early once no later token can move that cut. A prompt is cut
from the left to leave its new tokens room in the context (``hf:`` cuts it to the context alone).
Threads follow ``OMP_NUM_THREADS`` (set from ``--threads`` before the run starts), for prompt
processing and generation alike.

The identity is read without loading the weights (`runner.llamacpp.identity`): a fully cached run
never opens the file with llama.cpp.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from receipts.errors import InputError
from runner.backends import chat
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, Message
from runner.llamacpp.decoder import Decoder
from runner.llamacpp.identity import context_of, native_identity
from runner.llamacpp.model import NativeModel, log_softmax

__all__ = ["NativeBackend", "threads_from_env"]

BATCH = 512
"""Tokens per ``llama_decode`` call (a longer context goes in several)."""
SEQS = 8
"""Choices evaluated together after their shared context (`Decoder.decode_tree`); an item with more
choices is evaluated in groups of this many, its context once per group."""
LAYOUT = f"item-tree-{SEQS}"
"""How an item is laid out in llama.cpp (`_score_encoded`): part of the cache scope of every ``llamacpp:``
output (`runner.eval.roles.RoleRun.enter`), so numbers of another layout are never read back into a run
that ``verify --rerun`` would then fail to reproduce. Change it when the layout changes."""

Encoded = tuple[list[int], list[list[int]]]
"""An item as token ids: its context, and each continuation's tokens after it."""


class _Unit(NamedTuple):
    """Choices of one item that share an evaluated prefix: the prefix, then each choice's tokens."""

    prefix: list[int]
    choices: list[tuple[int, list[int]]]  # (choice index, continuation tokens)


def threads_from_env() -> int:
    """The run's ``--threads``, as `runner.eval.command.pin_threads` exported it (1 when unset)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else 1


class _GGUFTokenizer:
    """The little of a transformers tokenizer that `runner.backends.chat.render` uses, from a GGUF.

    The template is rendered by transformers' own renderer with the GGUF's special tokens, as
    ``tokenizer.apply_chat_template`` renders it for the same model loaded through ``gguf:``.
    """

    added_tokens_decoder: dict[int, Any] = {}  # noqa: RUF012 - read only

    def __init__(self, template: str, special: dict[str, str], control: list[str]):
        self.template, self.special, self.all_special_tokens = template, special, control

    def apply_chat_template(self, conversation: list[dict[str, str]], **options: Any) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        options.pop("tokenize", None)
        arguments: dict[str, Any] = {**options, **self.special}
        # returns (rendered conversations, generation indices), whatever its annotation says
        rendered: Any = render_jinja_template(
            conversations=[conversation], chat_template=self.template, **arguments
        )
        return str(rendered[0][0])


class NativeBackend:
    """A GGUF in llama.cpp on the CPU; the weights load on first use (cached runs never load them)."""

    sees_gold = False

    def __init__(self, spec: str, location: str, *, chat: bool = False):
        """Read the model's identity from its file.

        Raises:
            InputError: not a GGUF, a corrupt one, no chat template where one is asked for, or llama.cpp
                is not built here.
        """
        self.identity, self.path, facts = native_identity(spec, location, chat=chat)
        self.n_ctx = context_of(facts)
        self.chat = chat
        self._model: NativeModel | None = None
        self._decoder: Decoder | None = None
        self._tokenizer: _GGUFTokenizer | None = None
        self._memo: dict[tuple[str, str], npt.NDArray[np.float32]] = {}

    # -- loading ----------------------------------------------------------------------------------

    @property
    def model(self) -> NativeModel:
        """The loaded model (opened the first time it is asked for).

        Raises:
            InputError: llama.cpp refuses the file.
        """
        if self._model is None:
            threads = threads_from_env()
            # the high-level context is only used for tokenizing here: keep it (and its logits) small
            model = NativeModel(self.path, n_ctx=32, threads=threads, spec=self.identity.spec)
            try:
                self._decoder = Decoder(
                    model.llm, n_ctx=self.n_ctx, n_batch=BATCH, threads=threads, label=self.path, n_seq=SEQS
                )
            except InputError:
                model.close()
                raise
            self._model = model
        return self._model

    @property
    def decoder(self) -> Decoder:
        """The multi-sequence context (loads the model)."""
        if self._decoder is None:
            _ = self.model
        assert self._decoder is not None  # noqa: S101 - set with the model
        return self._decoder

    @property
    def prefix_token(self) -> int:
        """What an empty context is conditioned on: BOS, else EOS, else token 0."""
        return next((t for t in (self.model.bos, self.model.eos) if t is not None), 0)

    # -- prompts and tokenisation -----------------------------------------------------------------

    def posed(self, text: str, messages: Sequence[Message]) -> tuple[str, str | None]:
        """The prompt the model reads, and its sha256 when the chat template rendered it."""
        if not self.chat:
            return text, None
        rendered = chat.render(self.tokenizer, messages or (("user", text),), spec=self.identity.spec)
        return rendered, hashlib.sha256(rendered.encode("utf-8")).hexdigest()

    @property
    def tokenizer(self) -> _GGUFTokenizer:
        """The chat-template adapter (the GGUF's template, special and control tokens).

        Raises:
            InputError: the loaded file's template is not the one its identity recorded.
        """
        if self._tokenizer is None:
            self._tokenizer = self._chat_tokenizer()
        return self._tokenizer

    def _chat_tokenizer(self) -> _GGUFTokenizer:
        import llama_cpp

        llm = self.model.llm
        template = str(llm.metadata.get("tokenizer.chat_template", ""))
        digest = "sha256:" + hashlib.sha256(template.encode("utf-8")).hexdigest()
        if digest != self.identity.extra.get(chat.OPTION):
            raise InputError(
                f"{self.path.name} changed while it was in use (its chat template is not the one read)",
                file=self.path,
            )
        vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        text = [
            bytes(llama_cpp.llama_vocab_get_text(vocab, i)).decode("utf-8", "replace")
            for i in range(llm.n_vocab())
        ]
        control = [
            text[i]
            for i in range(len(text))
            if llama_cpp.llama_vocab_get_attr(vocab, i) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        ]
        ids = {"bos_token": llm.token_bos(), "eos_token": llm.token_eos()}
        for name, key in (("unk_token", "unknown_token_id"), ("pad_token", "padding_token_id")):
            value = llm.metadata.get(f"tokenizer.ggml.{key}")
            if value is not None and str(value).isdigit():
                ids[name] = int(value)
        special = {name: text[i] for name, i in ids.items() if 0 <= i < len(text)}
        return _GGUFTokenizer(template, special, control)

    def _enc(self, text: str) -> list[int]:
        # special=True: control tokens spelled in the text are parsed, as transformers' encode() does
        return self.model.tokenize(text, special=True)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's ``_encode_pair`` (and its empty-context rule), with llama.cpp's tokenizer."""
        if context == "":
            return [self.prefix_token], self._enc(continuation)
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation = context[-spaces:] + continuation
            context = context[:-spaces]
        whole = self._enc(context + continuation)
        context_enc = self._enc(context)
        return context_enc, whole[len(context_enc) :]

    # -- multiple choice --------------------------------------------------------------------------

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Summed log-likelihood of each continuation, lm-eval's numbers (see the module docstring).

        Raises:
            InputError: a continuation tokenises to nothing, or is longer than the context.
        """
        encoded: list[Encoded] = []
        posed = [self.posed(req.context, req.messages) for req in requests]
        for (context, _), req in zip(posed, requests, strict=True):
            pairs = [self.encode_pair(context, cont) for cont in req.continuations]
            for _, cont_enc in pairs:
                if not cont_enc:
                    raise InputError(f"a continuation tokenised to nothing after {context[-40:]!r}")
            encoded.append((pairs[0][0] if pairs else [], [cont_enc for _, cont_enc in pairs]))
        spans = self._score_encoded(encoded)
        # teacher_forced() of a just-scored (context, choice) reads its log-probs from here
        self._memo = {
            (req.context, cont): lp
            for req, item in zip(requests, spans, strict=True)
            for cont, lp in zip(req.continuations, item, strict=True)
        }
        results = []
        for (_, conts), item, (_, sha) in zip(encoded, spans, posed, strict=True):
            logliks, greedy = [], []
            for cont, lp in zip(conts, item, strict=True):
                target = np.asarray(cont)
                logliks.append(float(lp[np.arange(len(cont)), target].sum(dtype=np.float64)))
                greedy.append(bool((lp.argmax(axis=-1) == target).all()))
            results.append(ChoiceResult(tuple(logliks), tuple(greedy), tuple(map(len, conts)), sha))
        return results

    def _units(self, ctx: list[int], conts: list[list[int]]) -> list[_Unit]:
        """An item's choices grouped by the prefix they are evaluated after.

        A choice's input is lm-eval's ``(context + continuation)[-(n_ctx + 1):][:-1]``: the context,
        unless the whole is too long and is cut from the left (then that choice has a prefix of its own).

        Raises:
            InputError: a continuation longer than the context.
        """
        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
        for k, cont in enumerate(conts):
            if len(cont) > self.n_ctx:
                raise InputError(
                    f"a continuation of {len(cont)} tokens does not fit the {self.n_ctx}-token context",
                    file=self.path,
                )
            inp = (ctx + cont)[-(self.n_ctx + 1) :][:-1]
            groups.setdefault(tuple(inp[: len(inp) - len(cont) + 1]), []).append((k, cont))
        return [_Unit(list(prefix), choices) for prefix, choices in groups.items()]

    def _score_encoded(self, encoded: Sequence[Encoded]) -> list[list[npt.NDArray[np.float32]]]:
        """Per item, per choice: the log-prob rows [len(continuation), vocab] that predict it.

        Each prefix is evaluated once, in the same ``llama_decode`` as the choices that follow it, each
        on a sequence of its own (`Decoder.decode_tree`), from an empty cache: an item's numbers do not
        depend on the other items (see `runner.llamacpp.decoder`).
        """
        decoder = self.decoder
        spans: list[list[Any]] = [[None] * len(conts) for _, conts in encoded]
        for item, (ctx, conts) in enumerate(encoded):
            for unit in self._units(ctx, conts):
                for group in self._groups(unit):
                    decoder.clear()
                    first, tails = decoder.decode_tree(unit.prefix, [cont[:-1] for _, cont in group])
                    for (k, _), tail in zip(group, tails, strict=True):
                        spans[item][k] = log_softmax(np.concatenate([first, tail]))
        decoder.clear()
        return spans

    def _groups(self, unit: _Unit) -> list[list[tuple[int, list[int]]]]:
        """A unit's choices in order, cut into groups of at most ``SEQS`` that fit the context together."""
        groups: list[list[tuple[int, list[int]]]] = []
        used = 0
        for k, cont in unit.choices:
            if not groups or len(groups[-1]) >= SEQS or used + len(cont) - 1 > self.n_ctx:
                groups.append([])
                used = len(unit.prefix)
            groups[-1].append((k, cont))
            used += len(cont) - 1
        return groups

    # -- generation -------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Greedy decoding, one prompt at a time; the text is cut at the first stop sequence."""
        return [self._generate(req) for req in requests]

    def _generate(self, req: GenRequest) -> GenResult:
        text, sha = self.posed(req.prompt, req.messages)
        room = max(1, self.n_ctx - req.max_new_tokens)
        prompt = (self._enc(text) or [self.prefix_token])[-room:]
        decoder = self.decoder
        decoder.clear()
        logits = decoder.decode(prompt, 0, [i == len(prompt) - 1 for i in range(len(prompt))])[0]
        new: list[int] = []
        logprobs: list[float] = []
        longest = max((len(s) for s in req.stop if s), default=0)
        while len(new) < req.max_new_tokens:
            lp = log_softmax(logits[None, :])[0]
            token = int(lp.argmax())
            new.append(token)
            logprobs.append(float(lp[token]))
            position = len(prompt) + len(new) - 1
            if (
                decoder.is_eog(token)
                or position >= self.n_ctx
                or _stopped(self.model.detokenize(new), req.stop, longest)
            ):
                break
            logits = decoder.decode([token], position, [True])[0]
        decoder.clear()
        text = self.model.detokenize(new)
        cut = min([text.index(s) for s in req.stop if s and s in text], default=len(text))
        if cut < len(text):
            text = text[:cut]
            logprobs = logprobs[: len(self._enc(text))]
        return GenResult(text, tuple(logprobs), sha)

    # -- distributions ----------------------------------------------------------------------------

    def teacher_forced(self, pairs: Sequence[tuple[str, str]]) -> list[npt.NDArray[np.float32] | None]:
        """Log-prob distribution at each continuation position, given the context (for token KL).

        A pair ``score_choices`` just scored reads its distributions from that evaluation; the others
        are scored together as one-choice items. ``None`` for a continuation of no tokens.
        """
        out: list[npt.NDArray[np.float32] | None] = [None] * len(pairs)
        todo: list[tuple[int, Encoded]] = []
        for index, (context, continuation) in enumerate(pairs):
            memo = self._memo.get((context, continuation))
            if memo is not None:
                out[index] = memo
                continue
            context_enc, cont_enc = self.encode_pair(context, continuation)
            if cont_enc:
                todo.append((index, (context_enc, [cont_enc])))
        scored = self._score_encoded([item for _, item in todo])
        for (index, _), spans in zip(todo, scored, strict=True):
            out[index] = spans[0]
        return out

    def close(self) -> None:
        """Free the context and the model (llama_cpp objects must be closed before interpreter exit)."""
        self._memo = {}
        decoder, self._decoder = self._decoder, None
        model, self._model = self._model, None
        if decoder is not None:
            decoder.close()
        if model is not None:
            model.close()


def _stopped(text: str, stops: Sequence[str], longest: int) -> bool:
    """Whether generating more can no longer change where ``text`` is cut (see `NativeBackend._generate`).

    The cut is at the earliest stop sequence found. Once one is found at ``p`` and ``longest``
    characters follow ``p``, any stop that starts earlier is complete already, so the cut is final.
    """
    found = [text.index(s) for s in stops if s and s in text]
    return bool(found) and len(text) - min(found) >= longest
