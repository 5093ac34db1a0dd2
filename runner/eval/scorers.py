"""The scorers receipts ships, one per task type (see `runner.eval.scoring` for the interface).

- ``multiple_choice`` and ``classify``: the choice with the highest summed log-likelihood (``acc``,
  ``acc_norm``), confidence = max softmax over the choices.
- ``generate``: the answer the pack's regex and normalisation read from the text (``exact_match``,
  ``token_f1``), confidence = mean token probability.
- ``extract``: the JSON object in the text, field by field (``field_f1``, ``json_valid``).

Generated outputs of items that expect a behaviour (clarify, abstain, refuse) are scored on whether
the output shows it (``behaviour``), whatever the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receipts.metrics.calibration import choice_probabilities, mean_token_probability
from receipts.metrics.task import extraction_prf, score_choices, token_f1
from runner.eval.answers import Behaviour, behaviour_matches, extract_json, observed_behaviours
from runner.eval.packs import Pack, PromptInstance
from runner.eval.scoring import scorer

__all__ = ["ChoiceScorer", "ExtractScorer", "GenerateScorer"]

_GENERATED_CONFIDENCE = "mean token probability of the generated answer"


@scorer("multiple_choice", "classify")
class ChoiceScorer:
    """Choices ranked by log-likelihood, as lm-eval scores multiple choice."""

    metric = "acc"
    confidence = "max softmax over choice log-likelihoods"
    per_field = False

    def score(self, pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
        """``acc``/``acc_norm`` of the item; ``answer`` is the index of the predicted choice."""
        logliks = [float(v) for v in output["logliks"]]
        choices = inst.choices or ()
        gold = inst.gold if isinstance(inst.gold, int) else 0
        scored = score_choices(logliks, choices, gold)
        probs = choice_probabilities(logliks)
        answer_text = choices[scored.pred]
        abstained = bool(pack.behaviour.abstain) and "abstain" in observed_behaviours(
            answer_text, pack.behaviour
        )
        return {
            "answer": str(scored.pred),
            "score": scored.acc,
            "scores": {"acc": scored.acc, "acc_norm": scored.acc_norm},
            "confidence": float(probs.max()),
            "probs": [round(float(p), 8) for p in probs],
            "abstained": abstained,
        }


def _text_row(
    pack: Pack, inst: PromptInstance, output: Mapping[str, Any]
) -> tuple[str, frozenset[Behaviour], dict[str, Any]]:
    """A generated output's text, the behaviours it shows, and the fields every text row has."""
    text = str(output["text"])
    logprobs = output.get("token_logprobs") or []
    confidence = mean_token_probability(logprobs) if logprobs else None
    seen = observed_behaviours(text, pack.behaviour, clarify_pattern=inst.clarify_pattern)
    return text, seen, {"confidence": confidence, "abstained": "abstain" in seen}


def _behaviour(pack: Pack, inst: PromptInstance, text: str, seen: frozenset[Behaviour]) -> dict[str, Any]:
    """The fields of a probe item: whether the output shows the behaviour the item expects."""
    ok = behaviour_matches(text, inst.expected, pack.behaviour, clarify_pattern=inst.clarify_pattern)
    return {
        "answer": ",".join(sorted(seen)) or "answer",
        "score": float(ok),
        "scores": {"behaviour": float(ok)},
    }


@scorer("generate")
class GenerateScorer:
    """A short answer read from generated text, against one or more references."""

    metric = "exact_match"
    confidence = _GENERATED_CONFIDENCE
    per_field = False

    def score(self, pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
        """``exact_match`` and ``token_f1`` (best reference) of the answer the pack's rule extracts."""
        text, seen, row = _text_row(pack, inst, output)
        if inst.expected != "answer":
            return row | _behaviour(pack, inst, text, seen)
        extracted = pack.answer.extract(text)
        golds = [pack.answer.normalise(g) for g in inst.gold] if isinstance(inst.gold, tuple) else []
        em = float(extracted is not None and extracted in golds)
        f1 = max((token_f1(extracted or "", g) for g in golds), default=0.0)
        return row | {"answer": extracted, "score": em, "scores": {"exact_match": em, "token_f1": f1}}


def _normalised_fields(pack: Pack, value: Mapping[str, Any]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, item in value.items():
        if item is None:
            continue
        out[key] = pack.answer.normalise(str(item)) if isinstance(item, str) else item
    return out


@scorer("extract")
class ExtractScorer:
    """A JSON object read from generated text, scored field by field against the gold object."""

    metric = "field_f1"
    confidence = _GENERATED_CONFIDENCE
    per_field = True

    def score(self, pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
        """Item-level micro ``field_f1``, ``json_valid``, and per-field ``[tp, fp, fn]`` in ``fields``."""
        text, seen, row = _text_row(pack, inst, output)
        if inst.expected != "answer":
            return row | _behaviour(pack, inst, text, seen)
        parsed = extract_json(text)
        gold = _normalised_fields(pack, inst.gold if isinstance(inst.gold, Mapping) else {})
        predicted = _normalised_fields(pack, parsed) if parsed is not None else {}
        item = extraction_prf([gold], [predicted], list(pack.fields) or None)
        f1 = item.micro.f1 if item.micro.f1 is not None else float(not gold and not predicted)
        return row | {
            "answer": None if parsed is None else repr(sorted(predicted.items(), key=lambda kv: kv[0])),
            "score": f1,
            "scores": {"field_f1": f1, "json_valid": float(parsed is not None)},
            "fields": {name: [prf.tp, prf.fp, prf.fn] for name, prf in item.per_field.items()},
        }
