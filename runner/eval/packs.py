"""Eval packs as loaded: the pack, its items and variants, and each prompt instance a run poses.

A pack is a frozen, versioned task suite (DESIGN §2): ``pack.yaml`` + ``data/*.jsonl``, loaded and
checked by `runner.eval.loader.load_pack`, posed as prompts by `runner.eval.prompts.materialise`. Its
digest is the model_signing v1.0 folder digest (DESIGN §5). No torch here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from receipts.derive import ORIGINAL  # the headline variant, as results derive it
from receipts.digests import digest_weights
from runner.eval.answers import Behaviour, BehaviourRules, extract_answer, normalise
from runner.eval.perturbations import PerturbationSpec

__all__ = [
    "DEFAULT_SCORERS",
    "ORIGINAL",
    "PACK_FILE",
    "TASKS",
    "AnswerRule",
    "FewShot",
    "Generation",
    "Gold",
    "Item",
    "JudgeSample",
    "JudgeSetup",
    "Label",
    "Pack",
    "PromptInstance",
    "Variant",
    "pack_digest",
]

TASKS = ("multiple_choice", "generate", "classify", "extract")
DEFAULT_SCORERS: Mapping[str, tuple[str, ...]] = {
    "multiple_choice": ("accuracy", "acc_norm"),
    "generate": ("exact_match",),
    "classify": ("accuracy",),
    "extract": ("json_valid", "field_prf"),
}
PACK_FILE = "pack.yaml"

Label = str | int | bool
Gold = int | tuple[str, ...] | Mapping[str, Any] | None


# Records are frozen dataclasses whose mappings are typed read-only (`Mapping`) but are plain dicts,
# so packs and prompt instances pickle (worker processes, caches); treat them as immutable.


@dataclass(frozen=True)
class Item:
    """One eval item: its fields as written, and what the pack's mapping makes of them."""

    id: str
    fields: Mapping[str, Any]
    file: str
    line: int
    gold: Gold
    choices: tuple[str, ...] | None = None
    slices: Mapping[str, Label] = field(default_factory=dict)
    critical: bool | str = False  # True, or the name of the item's critical cohort
    expected: Behaviour = "answer"
    clarify_pattern: str | None = None

    @property
    def where(self) -> str:
        """``data/items.jsonl:7``: where the item is written."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Variant:
    """One way of posing every item: a template, optionally with a perturbation of some fields."""

    name: str
    kind: str  # original | rewording | format | perturbation
    template: str  # Jinja2 source
    perturbation: PerturbationSpec | None = None
    fields: tuple[str, ...] = ()  # the fields the perturbation changes
    description: str = ""


@dataclass(frozen=True)
class AnswerRule:
    """How the answer is taken from an output: optional regex, then normalisation steps."""

    regex: str | None = None
    select: str = "first"
    steps: tuple[str, ...] = ()

    def normalise(self, text: str) -> str:
        """``text`` (an answer or a reference) after the pack's normalisation steps."""
        return normalise(text, self.steps)

    def extract(self, output: str) -> str | None:
        """The normalised answer in a model output, or ``None`` when the regex does not match."""
        found = extract_answer(output, self.regex, select="last" if self.select == "last" else "first")
        return None if found is None else self.normalise(found)


@dataclass(frozen=True)
class Generation:
    """Greedy decoding limits for generated answers."""

    max_new_tokens: int = 32
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class FewShot:
    """Worked examples put before every prompt, rendered with the variant's template."""

    items: tuple[Item, ...]
    delimiter: str = "\n\n"


@dataclass(frozen=True)
class JudgeSample:
    """One human-rated pair of a pack's judge validation sample (``judge.validation``)."""

    id: str
    input: str
    output_a: str
    output_b: str
    label: str  # equivalent | different
    where: str


@dataclass(frozen=True)
class JudgeSetup:
    """A pack's ``judge`` section: the rubric, the default judge, the human-rated validation sample."""

    rubric: str  # a Jinja2 template over input, output_a, output_b
    rubric_path: str
    rubric_sha256: str
    model: str | None = None
    kappa_threshold: float = 0.6
    max_new_tokens: int = 256
    validation: tuple[JudgeSample, ...] = ()
    validation_path: str | None = None
    validation_sha256: str | None = None


@dataclass(frozen=True)
class Pack:
    """A loaded, checked eval pack. ``digest`` is the folder's model_signing root (hex)."""

    path: Path
    id: str
    version: str
    license: str
    task: str
    digest: str
    items: tuple[Item, ...]
    templates: Mapping[str, str]
    variants: tuple[Variant, ...]
    slices: tuple[str, ...] = ()
    scorers: tuple[str, ...] = ()
    answer: AnswerRule = field(default_factory=AnswerRule)
    behaviour: BehaviourRules = field(default_factory=BehaviourRules)
    generation: Generation = field(default_factory=Generation)
    gate: Mapping[str, float] = field(default_factory=dict)
    target_delimiter: str = " "
    fields: tuple[str, ...] = ()
    few_shot: FewShot | None = None
    description: str = ""
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False)
    judge: JudgeSetup | None = None
    system_prompt: str | None = None  # chat templates (issue #20): see runner.eval.chat

    @property
    def variant_names(self) -> tuple[str, ...]:
        """``original`` first, then the pack's variants in order."""
        return tuple(v.name for v in self.variants)

    @property
    def critical_items(self) -> tuple[Item, ...]:
        """The critical items: every item marked ``critical`` (true or a cohort name)."""
        return tuple(item for item in self.items if item.critical)

    def item(self, item_id: str) -> Item:
        """The item with this id.

        Raises:
            KeyError: no such item.
        """
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


@dataclass(frozen=True)
class PromptInstance:
    """One item posed one way: the exact prompt every role sees, and what counts as right."""

    item_id: str
    variant: str
    prompt: str
    prompt_sha256: str
    gold: Gold
    choices: tuple[str, ...] | None = None
    continuations: tuple[str, ...] | None = None
    critical: bool | str = False  # True, or the name of the item's critical cohort
    slices: Mapping[str, Label] = field(default_factory=dict)
    expected: Behaviour = "answer"
    clarify_pattern: str | None = None
    # chat templates (issue #20): the prompt as a conversation, for models posed through a chat template
    # (`runner.eval.chat`): the pack's system prompt, if any, then one user turn
    messages: tuple[tuple[str, str], ...] = ()

    def gold_text(self) -> str | None:
        """The gold answer as text, for the test backends that replay it (``sees_gold``).

        The first accepted answer, or an extraction's fields as JSON; ``None`` for a choice index or no gold.
        """
        if isinstance(self.gold, tuple) and self.gold:
            return self.gold[0]
        if isinstance(self.gold, Mapping):
            return json.dumps(dict(self.gold))
        return None


def pack_digest(path: Path) -> str:
    """The pack folder's digest (hex root of the model_signing v1.0 files rule), as receipts bind it.

    Raises:
        InputError: the folder is missing, holds a symbolic link, or cannot be read.
    """
    return digest_weights(path).root
