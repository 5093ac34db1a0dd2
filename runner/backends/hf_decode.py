"""Greedy generation for `HFBackend.generate`: sub-batches of prompts, each row stopped at its stop sequence.

lm-evaluation-harness's ``HFLM.generate_until`` in miniature: requests with the same generation settings
are decoded together, longest prompts first, left-padded (``generate`` derives the position ids from the
attention mask), and a row stops as soon as its new text holds a stop sequence (lm-eval's
``MultiTokenEOSCriteria``), so a short answer no longer decodes all ``max_new_tokens``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import transformers

from runner.backends.base import GenRequest

__all__ = ["GEN_ROWS", "GEN_TOKENS", "Decoded", "GreedyRows", "cut", "sub_batches"]

GEN_ROWS = 16
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
        """Which rows are done after this step's tokens (a bool per row)."""
        assert self.processor.scores is not None  # noqa: S101 - generate ran the processor this step
        done = torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row, tokens in enumerate(input_ids[:, self.width :].tolist()):
            if row in self.ends:
                continue
            lp = torch.log_softmax(self.processor.scores[row].float(), dim=-1)[tokens[-1]]
            self.logprobs[row].append(float(lp.cpu()))
            if tokens[-1] in self.eos or self._stopped(tokens):
                self.ends[row] = len(tokens)
            else:
                done[row] = False
        return done

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
