"""Score one role's output on one prompt instance: the per-example row of examples.jsonl.

The primary ``score`` of an instance is what accuracy, retention and the bootstrap are computed on:
``acc`` for multiple choice and classify, ``exact_match`` for generate, item-level field F1 for
extract, and — for behaviour probes whose expected behaviour is not a plain answer — whether the output
shows that behaviour (clarify, abstain, refuse). ``answer`` is the normalised answer that agreement
compares across roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner import metrics
from runner.answers import behaviour_matches, extract_json, observed_behaviours
from runner.packs import Pack, PromptInstance

__all__ = ["PROBE_SCORE", "has_probes", "primary_metric", "score_output"]


PROBE_SCORE = "probe_score"


def has_probes(pack: Pack) -> bool:
    """Whether some items expect a behaviour (clarify, abstain, refuse) rather than an answer."""
    return any(item.expected != "answer" for item in pack.items)


def primary_metric(pack: Pack) -> str:
    """The metric the headline, retention and the gate read for this pack.

    A pack with behaviour probes is read on ``probe_score``: the expected behaviour for probe items and
    the task metric for plain-answer items, so every item counts once.
    """
    if has_probes(pack):
        return PROBE_SCORE
    return {"multiple_choice": "acc", "classify": "acc", "generate": "exact_match", "extract": "field_f1"}[
        pack.task
    ]


def _normalised_fields(pack: Pack, value: Mapping[str, Any]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, item in value.items():
        if item is None:
            continue
        out[key] = pack.answer.normalise(str(item)) if isinstance(item, str) else item
    return out


def _choice(pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
    logliks = [float(v) for v in output["logliks"]]
    choices = inst.choices or ()
    gold = inst.gold if isinstance(inst.gold, int) else 0
    scored = metrics.score_choices(logliks, choices, gold)
    probs = metrics.choice_probabilities(logliks)
    answer_text = choices[scored.pred]
    abstained = bool(pack.behaviour.abstain) and "abstain" in observed_behaviours(answer_text, pack.behaviour)
    return {
        "answer": str(scored.pred),
        "score": scored.acc,
        "scores": {"acc": scored.acc, "acc_norm": scored.acc_norm},
        "confidence": float(probs.max()),
        "probs": [round(float(p), 8) for p in probs],
        "abstained": abstained,
    }


def _generated(pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
    text = str(output["text"])
    logprobs = output.get("token_logprobs") or []
    confidence = metrics.mean_token_probability(logprobs) if logprobs else None
    seen = observed_behaviours(text, pack.behaviour, clarify_pattern=inst.clarify_pattern)
    row: dict[str, Any] = {"confidence": confidence, "abstained": "abstain" in seen}
    if inst.expected != "answer":
        ok = behaviour_matches(text, inst.expected, pack.behaviour, clarify_pattern=inst.clarify_pattern)
        row |= {
            "answer": ",".join(sorted(seen)) or "answer",
            "score": float(ok),
            "scores": {"behaviour": float(ok)},
        }
        return row
    if pack.task == "extract":
        parsed = extract_json(text)
        gold = _normalised_fields(pack, inst.gold if isinstance(inst.gold, Mapping) else {})
        predicted = _normalised_fields(pack, parsed) if parsed is not None else {}
        fields = list(pack.fields) or None
        item = metrics.extraction_prf([gold], [predicted], fields)
        f1 = item.micro.f1 if item.micro.f1 is not None else float(not gold and not predicted)
        counts = {name: [prf.tp, prf.fp, prf.fn] for name, prf in item.per_field.items()}
        row |= {
            "answer": None if parsed is None else repr(sorted(predicted.items(), key=lambda kv: kv[0])),
            "score": f1,
            "scores": {"field_f1": f1, "json_valid": float(parsed is not None)},
            "fields": counts,
        }
        return row
    extracted = pack.answer.extract(text)
    golds = [pack.answer.normalise(g) for g in inst.gold] if isinstance(inst.gold, tuple) else []
    em = float(extracted is not None and extracted in golds)
    f1 = max((metrics.token_f1(extracted or "", g) for g in golds), default=0.0)
    row |= {"answer": extracted, "score": em, "scores": {"exact_match": em, "token_f1": f1}}
    return row


def score_output(pack: Pack, inst: PromptInstance, output: Mapping[str, Any]) -> dict[str, Any]:
    """The scored fields of one role's output (``output`` is the backend's raw result as stored)."""
    if "error" in output:
        return {"error": output["error"], "score": 0.0, "scores": {}, "answer": None, "abstained": False}
    row = _choice(pack, inst, output) if "logliks" in output else _generated(pack, inst, output)
    if has_probes(pack):
        row["scores"][PROBE_SCORE] = row["score"]
    return row
