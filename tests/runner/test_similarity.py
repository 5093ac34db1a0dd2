"""runner.eval.similarity: chrF, ROUGE-L and MiniLM cosine against their libraries' own published numbers.

References: sacreBLEU's ``test/test_chrf.py`` (effective-order cases: the default ``eps_smoothing=False``),
rouge_score's README example, sentence-transformers' README similarity matrix for all-MiniLM-L6-v2 (0.6660,
0.1046, 0.1411), and a hand mean-pool of the same model one text at a time (no padding).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from receipts.cli import main
from receipts.derive import rederive
from receipts.errors import UsageError
from receipts.metrics.similarity import KNOWN_ENCODERS
from runner.eval import similarity
from runner.eval.similarity import MAX_CHARS, Encoder, chrf, default_encoder_dir, measures_of, rouge_l

ROOT = Path(__file__).parents[2]
PACK = ROOT / "tests" / "data" / "pack_similarity"
ROLES = ["--teacher", "fake:t?skill=0.9", "--base", "fake:b?skill=0.3", "--student", "fake:s?skill=0.7"]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return Encoder(default_encoder_dir())


# sacreBLEU test/test_chrf.py, test_cases_effective_order (eps_smoothing=False, our default). Those run at
# beta=3; each of these has precision = recall, so the F-score is the same at our default beta=2.
@pytest.mark.parametrize(
    ("hypothesis", "reference", "expected"),
    [
        ("a", "a", 1.0),
        ("", "reference", 0.0),
        ("a b c", "a b c", 1.0),
        ("a b c", "abc", 1.0),
        ("aa", "ab", 0.25),
    ],
)
def test_chrf_matches_sacrebleus_own_cases(hypothesis: str, reference: str, expected: float) -> None:
    assert chrf(hypothesis, [reference]) == pytest.approx(expected, abs=1e-6)


def test_chrf_is_sacrebleus_default_signature() -> None:
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    hyp = "Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře."
    ref = "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."
    assert chrf(hyp, [ref]) == pytest.approx(metric.sentence_score(hyp, [ref]).score / 100)
    # the parameters results.json states: char 6-grams, no word n-grams, effective order, spaces removed
    assert metric.get_signature().format() == "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"
    assert metric.beta == 2
    # several references: the best one counts
    assert chrf("Paris", ["Rome", "Paris"]) == 1.0


def test_rouge_l_matches_the_rouge_score_readme_example() -> None:
    # README: scorer.score('The quick brown fox jumps over the lazy dog', 'The quick brown dog jumps on the
    # log.') -> rougeL Score(precision=0.625, recall=0.5555555555555556, fmeasure=0.5882352941176471)
    found = rouge_l("The quick brown dog jumps on the log.", ["The quick brown fox jumps over the lazy dog"])
    assert found == pytest.approx(0.5882352941176471, abs=1e-12)
    assert rouge_l("a b", ["c d", "a b"]) == 1.0
    assert rouge_l("東京", ["東京"]) == 0.0  # the default tokenizer keeps ASCII letters and digits only


@pytest.mark.model
def test_cosine_matches_the_sentence_transformers_readme(encoder: Encoder) -> None:
    emb = encoder.encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    cos = similarity._cosine
    assert cos(emb[0], emb[1]) == pytest.approx(0.6660, abs=1e-4)
    assert cos(emb[0], emb[2]) == pytest.approx(0.1046, abs=1e-4)
    assert cos(emb[1], emb[2]) == pytest.approx(0.1411, abs=1e-4)
    assert all(math.isclose(sum(x * x for x in e), 1.0, rel_tol=1e-5) for e in emb)


@pytest.mark.model
def test_cosine_equals_a_hand_mean_pool_of_each_text_alone(encoder: Encoder) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["short", "a much longer sentence that pads the other one in a batch", ""]
    tokenizer = AutoTokenizer.from_pretrained(encoder.folder, local_files_only=True)
    model = AutoModel.from_pretrained(encoder.folder, local_files_only=True).eval()
    batched = encoder.encode(texts)
    for text, got in zip(texts, batched, strict=True):
        with torch.inference_mode():
            ids = tokenizer(text, return_tensors="pt")  # one text, no padding: every token counts
            mean = model(**ids).last_hidden_state[0].mean(dim=0)
        want = (mean / mean.norm()).tolist()
        assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-5
    assert encoder.identity()["digest"] == KNOWN_ENCODERS["all-MiniLM-L6-v2"]


def test_unknown_measures_are_refused_naming_where() -> None:
    assert measures_of(["cosine", "chrf", "chrf"], "x") == ("chrf", "cosine")
    with pytest.raises(UsageError, match=r"--similarity: unknown similarity measure 'bleu'"):
        measures_of(["bleu"], "--similarity")


def test_hostile_outputs_score_quickly_and_in_range() -> None:
    huge = "word " * 400_000  # 2 MB: ROUGE-L's LCS is quadratic, so only MAX_CHARS characters are scored
    started = time.perf_counter()
    assert rouge_l(huge, [huge]) == 1.0
    assert chrf(huge, [huge]) == 1.0
    assert time.perf_counter() - started < 10
    assert chrf(huge, [huge[: MAX_CHARS // 2]]) < 1.0
    for text in ("\ud800 lone surrogate", "\x00\x00", "<script>alert(1)</script>", "", " \n\t"):
        for measure in (chrf, rouge_l):
            assert 0.0 <= measure(text, [text, "ref"]) <= 1.0


def _rows() -> list[dict]:
    cell = {"score": 0.0, "scores": {}}
    return [
        {  # generated text: every role vs gold, every role but the teacher vs the teacher
            "gold": ["Paris", "City of Paris"],
            "roles": {"teacher": {**cell, "text": "Paris"}, "student": {**cell, "text": "paris!"}},
        },
        {  # failed teacher: no comparison with it; the student still meets the reference
            "gold": "Rome",
            "roles": {"teacher": {**cell, "error": "boom"}, "student": {**cell, "text": "Rome"}},
        },
        {  # multiple choice (no text) and a non-text gold: nothing to score
            "gold": {"a": 1},
            "roles": {"teacher": {**cell, "logliks": [0.0]}, "student": {**cell, "text": "x"}},
        },
    ]


def test_score_rows_scores_what_has_text_and_nothing_else() -> None:
    rows = _rows()
    similarity.score_rows(rows, ("chrf", "rouge_l"))
    first, second, third = (r["roles"] for r in rows)
    assert first["teacher"]["similarity"] == {"gold": {"chrf": 1.0, "rouge_l": 1.0}}
    assert set(first["student"]["similarity"]) == {"teacher", "gold"}
    assert "similarity" not in second["teacher"]
    assert second["student"]["similarity"] == {"gold": {"chrf": 1.0, "rouge_l": 1.0}}
    assert "similarity" not in third["teacher"]
    assert "similarity" not in third["student"]
    with pytest.raises(UsageError, match="needs an encoder"):
        similarity.score_rows(_rows(), ("cosine",))


@pytest.mark.model
def test_a_run_with_similarity_rederives_and_records_its_encoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECEIPTS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert main(["run", str(PACK), *ROLES, "--out", str(out), "--similarity", "cosine"]) == 0
    results = json.loads((out / "results.json").read_bytes())
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_bytes().splitlines()]
    assert rederive(results, rows) == []
    stated = results["settings"]["similarity"]
    assert stated["measures"] == ["chrf", "rouge_l", "cosine"]  # the pack's two, and --similarity's
    assert stated["encoder"]["digest"] == KNOWN_ENCODERS["all-MiniLM-L6-v2"]
    assert results["similarity"]["encoder"]["recognised"] is True
    overall = results["similarity"]["slices"]["all"]
    assert set(overall) == {"chrf", "rouge_l", "cosine"}
    assert set(overall["chrf"]["teacher"]["roles"]) == {"base", "student"}
    assert set(overall["chrf"]["gold"]["roles"]) == {"teacher", "base", "student"}
    assert "student-base" in overall["cosine"]["teacher"]["differences"]
    assert {"region=west", "region=south", "region=east"} <= set(results["similarity"]["slices"])


@pytest.mark.model
def test_embeddings_of_the_same_texts_are_read_back_bit_for_bit_without_the_encoder(
    tmp_path: Path, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["Paris is the capital of France.", "The capital of France is Paris.", "a cat", ""]
    first = similarity.embeddings(encoder, texts, tmp_path)
    assert first == encoder.encode(texts)
    [saved] = (tmp_path / "similarity").glob("*.npy")
    fresh = Encoder(encoder.folder)  # never loaded: a cache hit must not need the model

    def no_model() -> None:
        raise AssertionError("the encoder was loaded for texts already encoded")

    monkeypatch.setattr(fresh, "_model", no_model)
    assert similarity.embeddings(fresh, texts, tmp_path) == first
    with pytest.raises(AssertionError, match="already encoded"):
        similarity.embeddings(fresh, [*texts, "one more"], tmp_path)  # another list: computed afresh
    saved.write_bytes(saved.read_bytes()[:50])  # a torn file is encoded again, and replaced
    assert similarity.embeddings(encoder, texts, tmp_path) == first
    assert similarity.embeddings(fresh, texts, tmp_path) == first
    assert similarity.embeddings(encoder, texts, None) == first
