"""Training small causal LMs on two CPU cores: a frozen bottom run once, a trained top (examples only).

The demo trains three models (the specialist teacher, the distilled student, the SFT baseline) inside a
``make demo`` that must stay under 20 minutes on 2 cores, where one forward + backward of SmolLM2-135M
runs at ~250 tokens/s. Two standard economies make that possible:

- **Partial fine-tuning with a cached bottom.** The lowest ``frozen`` decoder layers (and the embeddings)
  are frozen; their output for every training batch is computed once, kept in memory, and the trained
  top layers read it every epoch. Later epochs cost only the top.
- **Loss only where it is defined.** The LM head (49,152 outputs for SmolLM2) is applied only at the
  positions that predict a response token, not over the prompt.

The batches are fixed once (sequences sorted by length, then chunked, so padding is small) and visited in
a seeded order each epoch; with ``torch.use_deterministic_algorithms`` at a fixed thread count the result
is the same on every run. The top is run through the model's own ``forward`` with ``inputs_embeds`` set to
the cached hidden states, which is exact for Llama-family models (their embedding is not rescaled inside
``forward``); other families train with ``frozen=0`` (everything trained, nothing cached).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

__all__ = ["Batch", "Example", "Stack", "epochs_order", "make_batches", "train_ce", "train_kd"]

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One training example: the prompt's token ids and the response's (what the loss is taken over)."""

    prompt: tuple[int, ...]
    response: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.prompt) + len(self.response)


@dataclass(frozen=True)
class Batch:
    """Right-padded token ids, their attention mask, and next-token labels (IGNORE off the response)."""

    ids: Any  # torch.LongTensor (B, W)
    mask: Any  # torch.LongTensor (B, W)
    labels: Any  # torch.LongTensor (B, W): labels[b, t] = the token at t + 1 where it is a response token

    @property
    def tokens(self) -> int:
        """Real (unpadded) tokens in the batch."""
        return int(self.mask.sum())


def make_batches(seqs: Sequence[Example], size: int) -> list[Batch]:
    """``seqs`` sorted by length (stable) and cut into batches of ``size``."""
    import torch

    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = []
    for start in range(0, len(order), size):
        chunk = [seqs[i] for i in order[start : start + size]]
        width = max(len(s) for s in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, IGNORE)
        for row, seq in enumerate(chunk):
            tokens = [*seq.prompt, *seq.response]
            ids[row, : len(tokens)] = torch.tensor(tokens)
            mask[row, : len(tokens)] = 1
            first = len(seq.prompt) - 1  # the position whose logits predict the first response token
            labels[row, first : len(tokens) - 1] = torch.tensor(seq.response)
        out.append(Batch(ids, mask, labels))
    return out


def epochs_order(n_batches: int, epochs: float, seed: int) -> list[int]:
    """Batch indices to visit: whole seeded-shuffled epochs, then a seeded part of one for a fraction."""
    rng = random.Random(seed)
    steps = max(1, round(epochs * n_batches))
    order: list[int] = []
    while len(order) < steps:
        epoch = list(range(n_batches))
        rng.shuffle(epoch)
        order += epoch
    return order[:steps]


class _Stop(Exception):
    """Raised by the bottom's last layer to end a forward early (its output has been kept)."""


class Stack:
    """A causal LM split at decoder layer ``frozen``: the bottom runs once per batch, the top trains."""

    def __init__(self, model: Any, frozen: int):
        layers = model.model.layers
        if not 0 <= frozen < len(layers):
            raise SystemExit(f"frozen layers must be between 0 and {len(layers) - 1}, got {frozen}")
        if frozen and model.config.model_type != "llama":
            raise SystemExit(
                "a cached frozen bottom is exact only for Llama-family models, not "
                f"{model.config.model_type!r}: train with 0 frozen layers"
            )
        self.model, self.frozen, self.layers = model, frozen, layers
        for param in model.parameters():
            param.requires_grad_(frozen == 0)
        for layer in layers[frozen:]:
            for param in layer.parameters():
                param.requires_grad_(True)
        for param in model.model.norm.parameters():
            param.requires_grad_(True)

    def trainable(self) -> list[Any]:
        """The parameters the top trains."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def cache(self, batches: Sequence[Batch]) -> list[Any]:
        """Per batch, the bottom's output (hidden states after layer ``frozen - 1``); ``[]`` if none."""
        import torch

        if not self.frozen:
            return []
        kept: list[Any] = []

        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            kept.append(output[0] if isinstance(output, tuple) else output)
            raise _Stop

        handle = self.layers[self.frozen - 1].register_forward_hook(hook)
        try:
            with torch.inference_mode():
                for batch in batches:
                    with suppress(_Stop):
                        self.model(input_ids=batch.ids, attention_mask=batch.mask, use_cache=False)
        finally:
            handle.remove()
        return [h.clone() for h in kept]  # out of inference mode, usable as inputs to a graph

    @contextmanager
    def _top_only(self) -> Iterator[None]:
        import torch

        config = self.model.config
        count = config.num_hidden_layers
        self.model.model.layers = torch.nn.ModuleList(list(self.layers[self.frozen :]))
        config.num_hidden_layers = len(self.layers) - self.frozen
        try:
            yield
        finally:
            self.model.model.layers = self.layers
            config.num_hidden_layers = count

    def logits(self, batch: Batch, hidden: Any | None) -> Any:
        """Logits at the batch's labelled positions (response tokens), in row-major order."""
        selected = batch.labels != IGNORE
        if hidden is None:
            states = self.model.model(input_ids=batch.ids, attention_mask=batch.mask, use_cache=False)
        else:
            with self._top_only():
                states = self.model.model(inputs_embeds=hidden, attention_mask=batch.mask, use_cache=False)
        return self.model.lm_head(states.last_hidden_state[selected]).float()


def _loop(
    stack: Stack,
    batches: Sequence[Batch],
    order: Sequence[int],
    loss_of: Callable[[int, Any], Any],
    *,
    lr: float,
    label: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    import torch

    hidden = stack.cache(batches)
    optimizer = torch.optim.AdamW(stack.trainable(), lr=lr, weight_decay=0.0)
    stack.model.train()
    losses: list[float] = []
    started = time.perf_counter()
    for step, index in enumerate(order, start=1):
        logits = stack.logits(batches[index], hidden[index] if hidden else None)
        loss = loss_of(index, logits)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(round(float(loss.detach()), 6))
        if step == 1 or step % 20 == 0 or step == len(order):
            elapsed = time.perf_counter() - started
            log(f"{label} step {step}/{len(order)} loss {losses[-1]:.4f} ({elapsed:.0f} s)")
    stack.model.eval()
    tokens = sum(batches[i].tokens for i in order)
    return {
        "steps": len(order),
        "learning_rate": lr,
        "optimizer": "AdamW (weight_decay 0)",
        "frozen_layers": stack.frozen,
        "trained_layers": len(stack.layers) - stack.frozen,
        "tokens_seen": tokens,
        "loss_first": losses[0],
        "loss_last_10_mean": round(sum(losses[-10:]) / len(losses[-10:]), 6),
        "losses": losses,
        "seconds": round(time.perf_counter() - started, 2),
    }


def train_ce(
    stack: Stack,
    batches: Sequence[Batch],
    order: Sequence[int],
    *,
    lr: float,
    label: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Cross-entropy on the response tokens (supervised fine-tuning on the gold responses)."""
    import torch.nn.functional as F

    def loss_of(index: int, logits: Any) -> Any:
        labels = batches[index].labels
        return F.cross_entropy(logits, labels[labels != IGNORE])

    return {
        "loss": "cross_entropy_gold",
        **_loop(stack, batches, order, loss_of, lr=lr, label=label, log=log),
    }


def train_kd(
    stack: Stack,
    teacher: Stack,
    batches: Sequence[Batch],
    order: Sequence[int],
    *,
    lr: float,
    temperature: float,
    label: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """KL(teacher || student) at temperature ``temperature`` over the response positions (logit distillation).

    The teacher's distributions are computed batch by batch from its own cached bottom (no gradient).
    """
    import torch
    import torch.nn.functional as F

    teacher_hidden = teacher.cache(batches)
    teacher.model.eval()

    def loss_of(index: int, logits: Any) -> Any:
        with torch.inference_mode():
            target = teacher.logits(batches[index], teacher_hidden[index] if teacher_hidden else None)
        t_logp = F.log_softmax(target.clone() / temperature, dim=-1)
        s_logp = F.log_softmax(logits / temperature, dim=-1)
        return (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean() * temperature**2

    result = _loop(stack, batches, order, loss_of, lr=lr, label=label, log=log)
    return {"loss": "kl_teacher_student", "temperature": temperature, **result}
