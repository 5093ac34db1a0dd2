"""Greedy generation for `HFBackend.generate`: sub-batches of prompts, each row stopped at its stop sequence.

lm-evaluation-harness's ``HFLM.generate_until`` in miniature: requests with the same generation settings
are decoded together, longest prompts first, left-padded (``generate`` derives the position ids from the
attention mask), and a row stops as soon as its new text holds a stop sequence (lm-eval's
``MultiTokenEOSCriteria``), so a short answer no longer decodes all ``max_new_tokens``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
import transformers

from runner.backends.base import GenRequest

__all__ = ["GEN_ROWS", "GEN_TOKENS", "Decoded", "GreedyRows", "cut", "greedy", "plain_greedy", "sub_batches"]

GEN_ROWS = 32
"""At most this many prompts decode together (see the GEN_BATCHING note in `runner.backends.hf`)."""
GEN_TOKENS = 12288
"""... and at most this many padded tokens: rows x (longest prompt + max_new_tokens)."""

Decoded = tuple[list[int], list[float]]
"""A row's generated token ids (EOS included, if it ended there) and each one's log-probability."""


def sub_batches(
    prompts: Sequence[Sequence[int]], requests: Sequence[GenRequest], rows: int
) -> list[list[int]]:
    """Indices of the requests decoded together, a function of the call's requests alone.

    Requests share a sub-batch only with the same ``max_new_tokens`` and stop sequences; within those,
    lm-eval's order (longest prompt first, so rows of similar length share the padding), then cut into
    sub-batches of at most ``rows`` prompts and ``GEN_TOKENS`` padded tokens.
    """
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for index, req in enumerate(requests):
        groups.setdefault((req.max_new_tokens, tuple(req.stop)), []).append(index)
    out: list[list[int]] = []
    for key in sorted(groups):
        chunk: list[int] = []
        for index in sorted(groups[key], key=lambda i: (-len(prompts[i]), list(prompts[i]), i)):
            longest = len(prompts[chunk[0]]) if chunk else 0
            if chunk and (len(chunk) >= rows or (len(chunk) + 1) * (longest + key[0]) > GEN_TOKENS):
                out.append(chunk)
                chunk = []
            chunk.append(index)
        out.append(chunk)
    return out


def cut(text: str, stops: Sequence[str]) -> int | None:
    """Where ``text`` is cut: the start of its first stop sequence, or None when it holds none."""
    found = [text.index(stop) for stop in stops if stop and stop in text]
    return min(found) if found else None


class _LastScores(transformers.LogitsProcessor):
    """Keeps the scores of the step being decoded (the last logits processor: those greedy picks from)."""

    def __init__(self) -> None:
        self.scores: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.scores = scores
        return scores


class GreedyRows(transformers.StoppingCriteria):
    """One ``generate`` call's stopping criterion: it keeps each row's token log-probs and ends rows early.

    Called once each step's tokens are appended, it reads each live row's new token, keeps its
    log-probability under the scores greedy chose it from (``processor``, which must be the last logits
    processor: the scores ``output_scores`` would return), and ends the row at EOS or once its text holds a
    stop sequence whose cut can no longer change: no longer stop could still begin before the cut, and the
    cut text re-encodes to no more tokens than were generated (the result keeps that many log-probs).
    Keeping only the chosen tokens' log-probs, not every step's scores, holds memory to one step's logits.
    """

    def __init__(
        self,
        width: int,
        rows: int,
        stops: Sequence[str],
        eos: Sequence[int],
        decode: Callable[[list[int]], str],
        encode: Callable[[str], list[int]],
    ):
        self.width, self.stops, self.eos = width, [s for s in stops if s], set(eos)
        self.decode, self.encode = decode, encode
        self.longest = max((len(s) for s in self.stops), default=0)
        self.processor = _LastScores()
        self.logprobs: list[list[float]] = [[] for _ in range(rows)]
        self.ends: dict[int, int] = {}  # row -> how many new tokens it keeps

    def __call__(self, input_ids: torch.LongTensor, scores: object, **kwargs: object) -> torch.Tensor:
        """Which rows are done after this step's tokens (a bool per row): the stopping criterion."""
        assert self.processor.scores is not None  # noqa: S101 - generate ran the processor this step
        done = torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row, tokens in enumerate(input_ids[:, self.width :].tolist()):
            if row not in self.ends and not self.record(row, tokens, self.processor.scores[row]):
                done[row] = False
        return done

    def record(self, row: int, tokens: list[int], scores: torch.Tensor) -> bool:
        """Keep the log-prob of ``row``'s newest token under ``scores`` (its step's); True if the row ends."""
        lp = torch.log_softmax(scores.float(), dim=-1)[tokens[-1]]
        self.logprobs[row].append(float(lp.cpu()))
        if tokens[-1] in self.eos or self._stopped(tokens):
            self.ends[row] = len(tokens)
            return True
        return False

    def _stopped(self, tokens: list[int]) -> bool:
        if not self.stops:
            return False
        text = self.decode(tokens)
        at = cut(text, self.stops)
        if at is None:
            return False
        for start in range(max(0, len(text) - self.longest + 1), at):  # a longer stop, begun before the cut
            if any(len(stop) > len(text) - start and stop.startswith(text[start:]) for stop in self.stops):
                return False
        return len(self.encode(text[:at])) <= len(tokens)

    def rows(self, generated: torch.Tensor) -> list[Decoded]:
        """Each row's kept tokens and log-probs, from ``generate``'s new tokens (rows x steps)."""
        out = []
        for row, tokens in enumerate(generated.tolist()):
            kept = min(self.ends.get(row, len(tokens)), len(tokens))
            out.append((tokens[:kept], self.logprobs[row][:kept]))
        return out


_NEUTRAL: dict[str, tuple[object, ...]] = {
    "repetition_penalty": (None, 1.0),
    "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "sequence_bias": (None,),
    "exponential_decay_length_penalty": (None,),
    "renormalize_logits": (None, False),
    "remove_invalid_values": (None, False),
    "guidance_scale": (None, 1.0),
    "watermarking_config": (None,),
    "cache_implementation": (None,),
    "num_beams": (None, 1),
}
"""Generation settings `greedy` does not apply, at the values under which ``generate`` ignores them too."""


def plain_greedy(model: torch.nn.Module) -> bool:
    """Whether `greedy` decodes ``model`` as ``generate(do_sample=False)`` would.

    True when the model's forward takes ``logits_to_keep`` (what ``generate`` passes) and its generation
    config asks for no logits processor, beam search or special cache that ``generate`` would add.
    """
    config = getattr(model, "generation_config", None)
    if "logits_to_keep" not in inspect.signature(model.forward).parameters:
        return False
    return config is None or all(getattr(config, key, None) in ok for key, ok in _NEUTRAL.items())


def greedy(
    model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, rows: GreedyRows
) -> list[Decoded]:
    """``generate``'s greedy search over left-padded ``ids`` that drops each row from the batch as it ends.

    Each forward passes what ``generate`` passes (the attention mask, position ids counted over it, the
    KV cache, ``logits_to_keep=1``) and picks the argmax of the float32 logits, so a row decoded alone
    gets ``generate``'s tokens and log-probs bit for bit (tests/runner/test_hf_generate.py). Unlike
    ``generate``, a row that ends leaves the batch (its KV cache rows dropped): decoding costs a step per
    live row, not per row of the longest, which on CPU is most of a sub-batch's time when answer lengths
    vary (contract-clauses: 49 tokens on average, 96 at most). Which rows share each step is a function
    of the sub-batch alone, so a rerun of the same sub-batch reproduces it.
    """
    live = list(range(ids.shape[0]))
    new: list[list[int]] = [[] for _ in live]
    position = (mask.cumsum(-1) - 1).clamp(min=0)
    inputs, cache = ids, None
    for _ in range(max_new_tokens):
        out = model(
            input_ids=inputs,
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
            return_dict=True,
        )
        cache = out.past_key_values
        scores = out.logits[:, -1].to(copy=True, dtype=torch.float32)
        picked = scores.argmax(dim=-1)
        keep = []
        for at, row in enumerate(live):
            new[row].append(int(picked[at]))
            if not rows.record(row, new[row], scores[at]):
                keep.append(at)
        if not keep:
            break
        if len(keep) < len(live):
            index = torch.tensor(keep, dtype=torch.long, device=ids.device)
            cache.batch_select_indices(index)
            picked, mask, position = picked[index], mask[index], position[index]
            live = [live[at] for at in keep]
        inputs = picked[:, None]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        position = position[:, -1:] + 1
    return [(tokens, rows.logprobs[row][: len(tokens)]) for row, tokens in enumerate(new)]
