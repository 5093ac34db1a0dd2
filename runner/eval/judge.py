"""Judged equivalence (issue #20 part 2): a judge model compares each output with the teacher's and the gold.

For every generate/extract item, the judge reads the pack's rubric filled with the item's prompt and two
texts — the teacher's output and a role's (``teacher``), the gold answer and a role's (``gold``) — and
must end its reply with ``VERDICT: EQUIVALENT`` or ``VERDICT: DIFFERENT`` (`receipts.metrics.agreement`).
The texts are hostile (an output may address the judge), so each is fenced by a delimiter derived from
its own sha256, which no text can contain around itself, and only the judge's own last line is read.
Every run also judges the pack's human-rated validation sample with the same judge; results.json binds
the judge identity, the rubric digest, the sample's verdicts and the threshold (`receipts.judged`
re-derives the numbers). Replies are cached by judge identity and prompt, like the roles' outputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from receipts.errors import ReceiptsError, UsageError
from receipts.metrics.agreement import cap_raw, parse_verdict
from runner.backends.base import Backend, GenRequest, ModelIdentity
from runner.backends.paths import cache_root
from runner.backends.registry import load_backend
from runner.eval.cache import OutputCache, request_key
from runner.eval.packs import JudgeSetup, Pack, PromptInstance
from runner.eval.roles import BATCH_INVARIANT, BATCH_LAYOUT, instance_key
from runner.eval.templates import TemplateLimit, render_template

__all__ = ["BATCH", "JudgeRun", "comparisons", "fence", "judge_prompt", "judge_run", "judge_spec"]

BATCH = 16
JUDGED_TASKS = ("generate", "extract")


def fence(name: str, text: str) -> str:
    """``text`` between BEGIN/END lines tagged with its own sha256: a text cannot close its own fence."""
    tag = f"{name.upper()} {hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"
    return f"[[[BEGIN {tag}]]]\n{text}\n[[[END {tag}]]]"


def judge_prompt(setup: JudgeSetup, question: str, output_a: str, output_b: str) -> str:
    """The rubric filled with the fenced prompt and outputs (the fields are data, never template source).

    Raises:
        TemplateLimit: the prompt would be longer than the template limit.
    """
    fields = {
        "input": fence("input", question),
        "output_a": fence("output_a", output_a),
        "output_b": fence("output_b", output_b),
    }
    return render_template(setup.rubric, fields)


def judge_spec(pack: Pack, given: str | None) -> str | None:
    """The judge to use: ``--judge`` if given, else the pack's ``judge.model``; None: no judging.

    Raises:
        UsageError: a judge is given for a pack without a ``judge`` section (no rubric), or for a task
            whose outputs are not text.
    """
    if given is None:
        return pack.judge.model if pack.judge is not None else None
    if pack.judge is None:
        raise UsageError(
            f"--judge {given}: pack {pack.id} has no judge rubric",
            hint="add a `judge: {rubric: judge/rubric.txt}` section to its pack.yaml",
        )
    if pack.task not in JUDGED_TASKS:
        raise UsageError(f"--judge: pack {pack.id} is a {pack.task} pack; only generate/extract are judged")
    return given


def _gold_text(gold: Any) -> str | None:
    if isinstance(gold, tuple) and gold:
        return str(gold[0])
    if isinstance(gold, Mapping):
        return json.dumps(dict(gold), sort_keys=True, ensure_ascii=False)
    return None


@dataclass
class JudgeRun:
    """Every verdict of one run: per role, per instance key, per comparison; and the validation sample's."""

    identity: ModelIdentity
    setup: JudgeSetup
    cells: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    validation: list[dict[str, Any]] = field(default_factory=list)

    def header(self) -> dict[str, Any]:
        """results.json's ``judge``: who judged, with which rubric and threshold, and the rated sample."""
        setup = self.setup
        out: dict[str, Any] = {
            "model": self.identity.as_json(),
            "rubric": {"path": setup.rubric_path, "sha256": setup.rubric_sha256},
            "kappa_threshold": setup.kappa_threshold,
            "max_new_tokens": setup.max_new_tokens,
        }
        if setup.validation_path is not None:
            out["validation"] = {
                "path": setup.validation_path,
                "sha256": setup.validation_sha256,
                "judge": self.identity.key,
                "rubric_sha256": setup.rubric_sha256,
                "samples": self.validation,
            }
        return out


class _Judge:
    """The judge backend behind a cache of its replies."""

    def __init__(self, backend: Backend, setup: JudgeSetup, use_cache: bool):
        self.backend, self.setup = backend, setup
        self.cache = OutputCache(cache_root() if use_cache else None, backend.identity.key)

    def verdicts(self, prompts: Sequence[str | None]) -> list[dict[str, Any]]:
        """One logged verdict per prompt (None: the prompt went over the template limit).

        The prompts are asked in batches of `BATCH`, in order, whatever the cache holds. A transformers
        judge's last digits (and so, rarely, a greedy token) depend on which prompts share its batch, so,
        as a role's outputs (`runner.eval.roles.RoleRunner.enter`), its replies are cached per batch and
        read back only into the same batch, whole or not at all: a reply is a function of the judged list
        alone, never of which replies an earlier run happened to leave in the cache.
        """
        keys = [request_key("judge", prompt=p, max_new_tokens=self.setup.max_new_tokens) for p in prompts]
        replies: list[dict[str, Any] | None] = [None] * len(prompts)
        asked = [i for i, p in enumerate(prompts) if p is not None]
        for start in range(0, len(asked), BATCH):
            chunk = asked[start : start + BATCH]
            self.cache.scope = (
                ""
                if self.backend.identity.kind in BATCH_INVARIANT
                else request_key("judge-batch", requests=[keys[i] for i in chunk], layout=BATCH_LAYOUT)
            )
            found = [self.cache.get(keys[i]) for i in chunk]
            if any(reply is None for reply in found):
                found = list(self._ask([str(prompts[i]) for i in chunk]))
                for i, reply in zip(chunk, found, strict=True):
                    if reply is not None and "error" not in reply:
                        self.cache.put(keys[i], reply)
            for i, reply in zip(chunk, found, strict=True):
                replies[i] = reply
        self.cache.scope = ""
        return [self._cell(p, r) for p, r in zip(prompts, replies, strict=True)]

    def _ask(self, prompts: Sequence[str]) -> list[dict[str, Any]]:
        requests = [GenRequest(p, self.setup.max_new_tokens) for p in prompts]
        try:
            return [{"text": g.text} for g in self.backend.generate(requests)]
        except ReceiptsError:
            raise
        except Exception:  # one bad batch: item by item, so only the failing prompt is lost
            out: list[dict[str, Any]] = []
            for request in requests:
                try:
                    out.append({"text": self.backend.generate([request])[0].text})
                except ReceiptsError:
                    raise
                except Exception as exc:  # recorded as an unparseable verdict with its error
                    out.append({"error": f"{type(exc).__name__}: {exc}"[:500]})
            return out

    @staticmethod
    def _cell(prompt: str | None, reply: dict[str, Any] | None) -> dict[str, Any]:
        if prompt is None or reply is None:
            return {"verdict": "unparseable", "raw": "", "error": "the judge prompt is over the size limit"}
        sha = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
        if "error" in reply:
            return {"verdict": "unparseable", "raw": "", "error": reply["error"], "prompt_sha256": sha}
        raw, truncated = cap_raw(str(reply["text"]))
        cell = {"verdict": parse_verdict(raw, truncated=truncated), "raw": raw, "prompt_sha256": sha}
        return cell | ({"truncated": True} if truncated else {})


def _prompt(setup: JudgeSetup, question: str, a: str, b: str) -> str | None:
    try:
        return judge_prompt(setup, question, a, b)
    except (TemplateLimit, MemoryError):
        return None


def _text(rows: Mapping[str, Mapping[str, Any]], key: str) -> str | None:
    output = rows[key]["output"]
    return None if "error" in output or "text" not in output else str(output["text"])


def comparisons(
    pack: Pack, setup: JudgeSetup, instances: Sequence[PromptInstance], rows: Mapping[str, Any]
) -> list[tuple[str, str, str, str | None]]:
    """(role, instance key, against, judge prompt) for each comparison the run asks for."""
    asks: list[tuple[str, str, str, str | None]] = []
    for inst in instances:
        key = instance_key(inst)
        teacher = _text(rows["teacher"], key)
        gold = _gold_text(inst.gold) if inst.expected == "answer" else None
        for role, per_key in rows.items():
            text = _text(per_key, key)
            if text is None:
                continue
            if role != "teacher" and teacher is not None:
                asks.append((role, key, "teacher", _prompt(setup, inst.prompt, teacher, text)))
            if gold is not None:
                asks.append((role, key, "gold", _prompt(setup, inst.prompt, gold, text)))
    return asks


def judge_run(
    pack: Pack,
    spec: str,
    instances: Sequence[PromptInstance],
    rows: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    use_cache: bool = True,
) -> JudgeRun:
    """Judge every role's output against the teacher's and the gold, and the pack's validation sample.

    ``rows`` are the run's rows per role (`runner.eval.run.RunOutcome.rows`).

    Raises:
        UsageError: the pack has no judge rubric.
        InputError: the judge model cannot be loaded (or a replay judge has no recording of a prompt).
    """
    setup = pack.judge
    if setup is None:
        raise UsageError(f"pack {pack.id} has no judge rubric")
    backend = load_backend(spec)
    judge = _Judge(backend, setup, use_cache)
    run = JudgeRun(backend.identity, setup)
    try:
        asks = comparisons(pack, setup, instances, rows)
        for (role, key, against, _), cell in zip(asks, judge.verdicts([a[3] for a in asks]), strict=True):
            run.cells.setdefault(role, {}).setdefault(key, {})[against] = cell
        sample = setup.validation
        prompts = [_prompt(setup, s.input, s.output_a, s.output_b) for s in sample]
        for s, cell in zip(sample, judge.verdicts(prompts), strict=True):
            run.validation.append({"id": s.id, "human": s.label, **cell})
    finally:
        judge.cache.close()
        backend.close()
    return run
