"""An eval pack's ``pack.yaml`` (``schema/pack.schema.json``).

Named `PackDocument` because the runner's ``Pack`` is the loaded pack (items read, templates checked).
Defaults the schema documents (``select: first``, ``seed: 0`` ...) are the fields' defaults here; a
document that leaves them out still dumps without them.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from receipts.formats._base import Closed, Document, Integer, NoLineBreak, Omittable, Unique

__all__ = [
    "Answer",
    "Clarify",
    "FewShot",
    "Generation",
    "JudgeSection",
    "MarkerList",
    "MarkerObject",
    "NamedTemplate",
    "PackDocument",
    "PackGate",
    "Variant",
]

FieldName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$(?!\n)")]
"""An item field (a key of the objects in ``data/*.jsonl``)."""

DataPath = Annotated[
    str,
    Field(
        max_length=300,
        pattern=r"^data/(?:[A-Za-z0-9_][A-Za-z0-9._-]*/)*[A-Za-z0-9_][A-Za-z0-9._-]*\.jsonl$(?!\n)",
    ),
]
"""A JSON Lines file under the pack's ``data/`` folder."""

Template = Annotated[str, Field(min_length=1, max_length=20000)]
"""A Jinja2 template over an item's fields."""

VariantName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$(?!\n)")]

Marker = Annotated[str, Field(min_length=1, max_length=200)]
MarkerList = Annotated[list[Marker], Field(min_length=1), Unique]
"""``$defs/marker_list``: phrases that signal a behaviour."""

Fraction = Annotated[float, Field(ge=0, le=1)]


def _compiles(value: str) -> str:
    # jsonschema's `format: regex` check: Python's re must compile it
    try:
        re.compile(value)
    except (re.error, OverflowError) as exc:
        raise ValueError(f"is not a regular expression: {exc}") from None
    return value


def _not_taken(value: str) -> str:
    if value in ("id", "variant", "critical"):
        raise ValueError(f"{value!r} is taken: it cannot be a slice")
    return value


def _not_original(value: str) -> str:
    if value == "original":
        raise ValueError("'original' is always present; name the variant otherwise")
    return value


class NamedTemplate(Closed):
    """A named prompt template."""

    name: VariantName
    template: Template


class Answer(Closed):
    """``answer``: how the answer is taken from the output."""

    regex: Omittable[Annotated[str, Field(min_length=1), AfterValidator(_compiles)]] = None
    select: Literal["first", "last"] = "first"
    normalise: Omittable[
        list[
            Literal[
                "nfkc",
                "first_line",
                "lower",
                "strip",
                "strip_punctuation",
                "strip_articles",
                "collapse_whitespace",
            ]
        ]
    ] = None


_CASE_MODES = frozenset({"lower", "upper", "title", "random"})
_CONTRACTION_MODES = frozenset({"contract", "expand", "auto"})


class Variant(Closed):
    """One variant: a rewording or format (a template or prompt) or a perturbation of the input text."""

    name: Annotated[VariantName, AfterValidator(_not_original)]
    kind: Literal["rewording", "format", "perturbation"]
    description: Omittable[Annotated[str, Field(max_length=1000)]] = None
    template: Omittable[Template] = None
    prompt: Omittable[VariantName] = None
    perturbation: Omittable[Literal["typo", "case", "whitespace", "contraction", "filler"]] = None
    mode: Omittable[Literal["lower", "upper", "title", "random", "contract", "expand", "auto"]] = None
    rate: Omittable[Annotated[float, Field(gt=0, le=1)]] = None
    seed: Annotated[Integer, Field(ge=0, le=4294967295)] = 0
    fields: Omittable[Annotated[list[FieldName], Field(min_length=1), Unique]] = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # the schema's allOf of if/then/else and not, rule by rule
        given = self.model_fields_set
        if self.kind == "perturbation":
            if self.perturbation is None:
                raise ValueError("a perturbation variant names its perturbation")
        else:
            if not {"template", "prompt"} & given:
                raise ValueError(f"a {self.kind} variant gives a template or names a prompt")
            if {"perturbation", "mode", "rate", "fields"} & given:
                raise ValueError(f"a {self.kind} variant takes no perturbation, mode, rate or fields")
        if {"template", "prompt"} <= given:
            raise ValueError("give either template or prompt, not both")
        if self.mode is not None:
            if self.perturbation == "case" and self.mode not in _CASE_MODES:
                raise ValueError("case modes are lower, upper, title and random")
            if self.perturbation == "contraction" and self.mode not in _CONTRACTION_MODES:
                raise ValueError("contraction modes are contract, expand and auto")
            if self.perturbation in ("typo", "whitespace", "filler"):
                raise ValueError(f"{self.perturbation} takes no mode")
        return self


class PackGate(Closed):
    """``gate``: the pack's default release gate."""

    max_global_regression: Omittable[Fraction] = None
    max_critical_regression: Omittable[Fraction] = None
    max_cohort_excess_regression: Omittable[Fraction] = None
    min_retention: Omittable[Fraction] = None
    max_cost_ratio: Omittable[Annotated[float, Field(ge=0)]] = None
    max_ece_increase: Omittable[Fraction] = None
    min_judged_agreement: Omittable[Fraction] = None  # issue #20 part 2


class MarkerObject(Closed):
    """``{markers: [...]}``, the object spelling of a marker list."""

    markers: MarkerList


class Clarify(Closed):
    """``clarify``: when an output counts as a clarifying question."""

    markers: MarkerList
    require_question_mark: bool = True
    pattern_field: Omittable[FieldName] = None


class Generation(Closed):
    """``generation``: decoding limits for generated answers."""

    max_new_tokens: Annotated[Integer, Field(ge=1, le=4096)] = 32
    stop: Omittable[Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=8), Unique]] = None


class FewShot(Closed):
    """``few_shot``: worked examples put before every prompt."""

    data: DataPath
    n: Annotated[Integer, Field(ge=1, le=64)]
    delimiter: Annotated[str, Field(max_length=16)] = "\n\n"


# --- judge (issue #20 part 2): judged equivalence, its rubric and its human-rated validation sample ---
PackFile = Annotated[
    str,
    Field(max_length=300, pattern=r"^(?:[A-Za-z0-9_][A-Za-z0-9._-]*/)*[A-Za-z0-9_][A-Za-z0-9._-]*$(?!\n)"),
]
"""A file inside the pack folder (a POSIX relative path; covered by the pack digest)."""


class JudgeSection(Closed):
    """``judge``: the rubric a judge model fills in, the default judge, and the human-rated sample."""

    rubric: PackFile
    model: Omittable[Annotated[str, Field(min_length=1, max_length=1000), NoLineBreak]] = None
    validation: Omittable[PackFile] = None
    kappa_threshold: Annotated[float, Field(ge=-1, le=1)] = 0.6
    max_new_tokens: Annotated[Integer, Field(ge=1, le=4096)] = 256


# --- end judge ---


class PackDocument(Document):
    """A pack specification (``pack.yaml``): task, data files, prompt, target, scoring and gate."""

    KIND: ClassVar[str] = "pack"

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$(?!\n)"), NoLineBreak]
    version: Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$(?!\n)"), NoLineBreak]
    description: Omittable[Annotated[str, Field(min_length=1, max_length=4000)]] = None
    license: Annotated[
        str,
        Field(
            max_length=200,
            pattern=r"^(?:LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.+-]*)"
            r"(?: (?:AND|OR|WITH) (?:LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.+-]*))*$(?!\n)",
        ),
    ]
    task: Literal["multiple_choice", "generate", "classify", "extract"]
    data: DataPath | Annotated[list[DataPath], Field(min_length=1), Unique]
    prompt: Template | Annotated[list[NamedTemplate], Field(min_length=1)]
    choices: Omittable[
        FieldName | Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=2), Unique]
    ] = None
    target: FieldName
    target_delimiter: Annotated[str, Field(max_length=16)] = " "
    fields: Omittable[Annotated[list[FieldName], Field(min_length=1), Unique]] = None
    answer: Omittable[Answer] = None
    scorers: Omittable[
        Annotated[
            list[
                Literal[
                    "accuracy",
                    "acc_norm",
                    "exact_match",
                    "contains",
                    "token_f1",
                    "json_valid",
                    "field_prf",
                    "abstain",
                    "clarify",
                    "refuse",
                ]
            ],
            Field(min_length=1),
            Unique,
        ]
    ] = None
    # issue #20 part 3: similarity measures the pack opts into
    similarity: Omittable[
        Annotated[list[Literal["chrf", "rouge_l", "cosine"]], Field(min_length=1), Unique]
    ] = None
    slices: Omittable[Annotated[list[Annotated[FieldName, AfterValidator(_not_taken)]], Unique]] = None
    variants: Omittable[list[Variant]] = None
    gate: Omittable[PackGate] = None
    behaviour: Omittable[FieldName] = None
    abstain: Omittable[MarkerList | MarkerObject] = None
    clarify: Omittable[Clarify] = None
    refuse: Omittable[MarkerList | MarkerObject] = None
    generation: Omittable[Generation] = None
    few_shot: Omittable[FewShot] = None
    judge: Omittable[JudgeSection] = None  # issue #20 part 2
    # --- chat templates (issue #20) ---
    system_prompt: Omittable[Annotated[str, Field(min_length=1, max_length=4000)]] = None

    @model_validator(mode="after")
    def _task_needs(self) -> Self:
        if self.task in ("multiple_choice", "classify") and self.choices is None:
            raise ValueError(f"{self.task} packs name their choices")
        if self.task == "extract" and self.fields is None:
            raise ValueError("extract packs list the fields of the JSON object")
        return self
