"""``hf:DIR[@variant]`` and ``gguf:FILE[@variant]``: local transformers models on CPU (or CUDA if present).

Log-likelihoods follow lm-evaluation-harness 0.4.x exactly (``TemplateLM._encode_pair``): trailing
spaces of the context move to the continuation, ``context_enc = enc(context)``, ``continuation_enc =
enc(context + continuation)[len(context_enc):]``, no special tokens (lm-eval's default for causal
models), an empty context becomes the BOS (else EOS) token, and inputs longer than the model's maximum
are truncated from the left. An item's choices are scored from one shared context (see
``HFBackend.score_choices``), and an item's numbers never depend on which other items share a forward.

GGUF files are dequantised by transformers to dense weights. Loading one takes tens of seconds, so the
first load converts it once into a safetensors cache keyed by the file's digest
(``$RECEIPTS_CACHE/gguf/<sha256>/``, default ``~/.cache/receipts``); fp32 from the cache reproduces the
GGUF logits exactly. The identity records the storage quantization (e.g. Q4_1) and the compute dtype
separately.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
import transformers

from receipts.errors import InputError
from runner.backends.base import ChoiceRequest, ChoiceResult, GenRequest, GenResult, ModelIdentity
from runner.backends.local import cache_root

__all__ = ["VARIANTS", "HFBackend", "convert_gguf", "load_model"]

# A run draws its own progress; transformers' per-load bars and advisories would drown it.
transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]

# Choice scoring pads each item's row to a multiple of ROW_QUANTUM tokens and lets only rows of the
# same width share a forward (at most PACK_TOKENS tokens in all): an item's numbers then do not depend,
# bit for bit, on which other items a run happened to batch with it (resume, cache hits, --batch-size).
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
VARIANTS = {"fp32": torch.float32, "bf16": torch.bfloat16, "int8-dynamic": torch.float32}


class _Tree(NamedTuple):
    """One item's scoring row (see ``HFBackend.score_choices``).

    Its tokens, their position ids, the indices each token attends to, and per choice the indices
    whose logits predict that choice's tokens.
    """

    tokens: list[int]
    positions: list[int]
    sees: list[list[int]]
    paths: list[list[int]]


def _row_width(tokens: int) -> int:
    return -(-tokens // ROW_QUANTUM) * ROW_QUANTUM


def convert_gguf(path: Path, digest: str) -> Path:
    """Dequantise a GGUF file once into a safetensors folder in the cache; return the folder."""
    target = cache_root() / "gguf" / digest.removeprefix("sha256:")
    if (target / "done").exists():
        return target
    tokenizer = transformers.AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32
    )
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    fresh_config = type(model.config).from_dict(config)
    with torch.device("meta"):
        fresh = transformers.AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
            fresh_config, dtype=torch.float32
        )
    fresh.load_state_dict(model.state_dict(), assign=True)
    fresh.tie_weights()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        fresh.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "source.json").write_text(json.dumps({"gguf": path.name, "digest": digest}), "utf-8")
        (staging / "done").write_text("", "utf-8")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_model(folder: Path, variant: str, *, spec: str, device: str = "cpu") -> tuple[Any, Any, str | None]:
    """``(tokenizer, model, runtime_quant)`` of the model in ``folder`` at a variant, in eval mode.

    Threads follow ``OMP_NUM_THREADS`` (set before torch was imported). ``int8-dynamic`` quantises every
    ``nn.Linear`` to int8 weights with activations quantised per call (CPU only).

    Raises:
        InputError: transformers cannot load the folder.
    """
    dtype = VARIANTS[variant]
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        torch.set_num_threads(int(threads))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise InputError(f"model spec {spec!r}: transformers could not load it: {exc}", file=folder) from None
    model.eval()  # type: ignore[no-untyped-call]
    runtime_quant = None
    if variant == "int8-dynamic":
        if device != "cpu":
            raise InputError(
                f"model spec {spec!r}: int8-dynamic runs on CPU only", hint="bench it with --device cpu"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        runtime_quant = "int8-dynamic"
    elif device != "cpu":
        model = model.to(device)  # type: ignore[arg-type]
    return tokenizer, model, runtime_quant


class HFBackend:
    """A causal LM loaded with transformers."""

    sees_gold = False

    def __init__(self, identity: ModelIdentity, folder: Path, variant: str):
        """Load the model in ``folder`` (see `runner.backends.local.local_identity` for ``identity``)."""
        self.tokenizer, model, runtime_quant = load_model(folder, variant, spec=identity.spec)
        self.model: Any = model
        self.max_length = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self.identity = identity
        bos, eos, pad = (
            self.tokenizer.bos_token_id,
            self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id,
        )
        # An empty prompt is conditioned on BOS (else EOS, else token 0). Scoring never needs a pad token
        # (padding is masked out, so any id will do); generate() runs one prompt at a time and only
        # needs an id to name, so a tokenizer without a pad token (most causal LMs) works unchanged.
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
        self._memo: dict[tuple[str, str], torch.Tensor] = {}

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
            logits = self.model(input_ids=ids, attention_mask=mask).logits.float()
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
        """
        encoded: list[tuple[list[int], list[list[int]]]] = []
        for req in requests:
            pairs = [self.encode_pair(req.context, cont) for cont in req.continuations]
            for _, cont_enc in pairs:
                if not cont_enc:
                    raise InputError(f"a continuation tokenised to nothing after {req.context[-40:]!r}")
            encoded.append((pairs[0][0] if pairs else [], [cont_enc for _, cont_enc in pairs]))
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
        # teacher_forced() of a just-scored (context, choice) reads its log-probs from here
        self._memo = {
            (req.context, cont): lp
            for i, req in enumerate(requests)
            for cont, lp in zip(req.continuations, scored[i][1], strict=True)
        }
        return [scored[i][0] for i in range(len(encoded))]

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
        self, items: list[tuple[list[int], list[list[int]]]], width: int
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
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                logits_to_keep=keep,
                use_cache=False,
            ).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)  # [items, kept positions, vocab]
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
        """Greedy decoding, one prompt at a time; the text is cut at the first stop sequence."""
        out = []
        for req in requests:
            prompt = self._enc(req.prompt) or [self._prefix]
            ids = torch.tensor([prompt[-self.max_length :]], dtype=torch.long)
            with torch.inference_mode():
                result = self.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=req.max_new_tokens,
                    do_sample=False,
                    output_scores=True,
                    return_dict_in_generate=True,
                    pad_token_id=self._generate_pad,
                )
            new = result.sequences[0, ids.shape[1] :].tolist()
            logprobs = [
                float(torch.log_softmax(score[0].float(), dim=-1)[token])
                for score, token in zip(result.scores, new, strict=False)
            ]
            text = str(self.tokenizer.decode(new, skip_special_tokens=True))
            cut = len(text)
            for stop in req.stop:
                if stop and stop in text:
                    cut = min(cut, text.index(stop))
            if cut < len(text):
                text = text[:cut]
                kept = len(self._enc(text))
                logprobs = logprobs[:kept]
            out.append(GenResult(text, tuple(logprobs)))
        return out

    def teacher_forced(self, context: str, continuation: str) -> npt.NDArray[np.float32] | None:
        """Log-prob distribution at each continuation position, given the context (for token KL).

        Right after ``score_choices`` scored this (context, continuation) the distributions come from
        that forward; otherwise the continuation is scored alone, laid out the same way.
        """
        lp = self._memo.get((context, continuation))
        if lp is None:
            context_enc, cont_enc = self.encode_pair(context, continuation)
            if not cont_enc:
                return None
            size = self._tree_size(context_enc, [cont_enc])
            if size is None:
                sequence = (context_enc + cont_enc)[-(self.max_length + 1) :][:-1]
                lp = self._logprobs([sequence])[0][-len(cont_enc) :]
            else:
                lp = self._score_packed([(context_enc, [cont_enc])], _row_width(size))[0][1][0]
        return np.asarray(lp.numpy(), dtype=np.float32)

    def close(self) -> None:
        """Drop the model so the next role can load."""
        self._memo = {}
        del self.model
