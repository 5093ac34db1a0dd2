"""Eval packs: load ``pack.yaml`` + ``data/*.jsonl`` strictly, check every item, materialise prompts.

A pack is refused at load time, with every problem listed, rather than half-way through a run:
the schema (every JSON path), each JSONL line (file:line), duplicate ids, gold answers that do not
fit their choices, and every template rendered against every item (a missing field names the item
and the field). The pack digest is the model_signing v1.0 folder digest (DESIGN §5), and the bytes
parsed are checked against it, so the items a run uses are the items the digest names.

Templates are untrusted: they run sandboxed, and a template that would build more than
`MAX_TEMPLATE_OUTPUT` characters (in a prompt or any value), or loop or call more than
`MAX_TEMPLATE_STEPS` times, is refused with one `InputError` naming pack.yaml, the template's JSON
path and its line.

No torch here: the runner's backends consume the `PromptInstance` stream this module yields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    Sized,
    ValuesView,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    pass_context,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from receipts import schemas
from receipts.digests import WeightsDigest, digest_weights, sha256_bytes
from receipts.documents import parse_json, parse_yaml, read_bytes
from receipts.errors import InputError, SchemaError, UsageError, Violation
from runner.answers import (
    BEHAVIOURS,
    NORMALISERS,
    SQUAD_STEPS,
    Behaviour,
    BehaviourRules,
    behaviour_matches,
    extract_answer,
    extract_json,
    field_text,
    normalise,
    observed_behaviours,
)
from runner.perturbations import PERTURBATIONS, PerturbationSpec, perturb

__all__ = [
    "BEHAVIOURS",
    "NORMALISERS",
    "ORIGINAL",
    "PERTURBATIONS",
    "SQUAD_STEPS",
    "TASKS",
    "AnswerRule",
    "BehaviourRules",
    "FewShot",
    "Generation",
    "Item",
    "Pack",
    "PerturbationSpec",
    "PromptInstance",
    "Variant",
    "behaviour_matches",
    "extract_answer",
    "extract_json",
    "field_text",
    "load_pack",
    "materialise",
    "normalise",
    "observed_behaviours",
    "pack_digest",
    "perturb",
    "render_prompt",
]

TASKS = ("multiple_choice", "generate", "classify", "extract")
ORIGINAL = "original"
DEFAULT_SCORERS: Mapping[str, tuple[str, ...]] = {
    "multiple_choice": ("accuracy", "acc_norm"),
    "generate": ("exact_match",),
    "classify": ("accuracy",),
    "extract": ("json_valid", "field_prf"),
}
PACK_FILE = "pack.yaml"
MAX_PACK_YAML = 1024 * 1024
MAX_DATA_FILE = 256 * 1024 * 1024
MAX_REPORTED = 100
# the item-id rule of card.schema.json's pack_item, so cards can cite any item as <pack-id>/<item-id>
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")

Label = str | int | bool
Gold = int | tuple[str, ...] | Mapping[str, Any] | None

# --- templates -----------------------------------------------------------------------------------
# A pack is untrusted input. Its templates run in Jinja's immutable sandbox (no Python internals, no
# mutating lists or dicts), and `_BoundedEnvironment` also bounds what one rendering may build and how
# long it may loop, so a 30-byte template cannot allocate gigabytes or spin for hours. Operators, `~`,
# and the filters and str methods that grow a value are checked *before* they run, from the sizes of
# their operands; every other result, each loop step and the prompt itself are checked as they come.
# Sizes count references, not distinct objects: `[a, a]` renders `a` twice. Nothing is passed to `str()`
# (an output, `~`, a filter, a format) before `_text_size` bounds its text, and no buffer is joined
# (a macro's, a `{% set %}` block's) before its length is checked.

MAX_TEMPLATE_OUTPUT = 1_000_000  # characters in a prompt, and items or characters in any value built
MAX_TEMPLATE_BUILT = 100 * MAX_TEMPLATE_OUTPUT  # characters built in all while rendering one prompt
MAX_TEMPLATE_STEPS = 100_000  # loop iterations and calls while rendering one prompt (~0.5 s at most)
MAX_RANGE = 10_000  # numbers in a `range(...)` (Jinja's sandbox allows 100,000)
_MAX_INT_BITS = 14_000  # about 4,300 decimal digits: Python's own limit for printing an int
_TEMPLATE_HINT = "a prompt template formats one item's fields; write the text out instead of computing it"


class _TemplateLimit(SecurityError):
    """A template would build more, or work longer, than any prompt needs."""


def _size(value: Any) -> int:
    """Characters and items in ``value``, deeply, counted up to just past `MAX_TEMPLATE_OUTPUT`.

    Counted by reference, not by identity: a list holding one 999,999-character string ten times
    renders ten copies of it, so it counts ten times (and a list holding itself stops at the limit).
    """
    total, stack = 0, [value]
    while stack and total <= MAX_TEMPLATE_OUTPUT:
        node = stack.pop()
        if isinstance(node, str | bytes | range):
            total += len(node)
        elif isinstance(node, list | tuple | dict | set | frozenset):
            total += len(node)
            stack.extend(node.values() if isinstance(node, dict) else node)
        elif isinstance(node, Namespace):  # `namespace(a=x, b=x)` holds, and renders, what it was given
            stack.append(node._Namespace__attrs)  # name-mangled
        else:
            total += 1
    return total


# Upper bounds on the text of values that `str()` renders without walking a container: a float is at most
# 24 characters ("-1.2345678901234567e-308"), an int about a third of its bits (checked below), and an
# object such as a macro, a loop or a generator only names itself ("<generator object ... at 0x...>").
_FLOAT_TEXT = 32
_OBJECT_TEXT = 128


def _repr_size(text: str) -> int:
    """An upper bound on ``len(repr(text))``: quotes, and escapes (up to 10 characters for one character)."""
    if text.isprintable():
        return len(text) + 2 + text.count("\\") + text.count("'")
    return 10 * len(text) + 2


def _text_size(value: Any) -> int:
    """An upper bound on ``len(str(value))``, counted up to just past `MAX_TEMPLATE_OUTPUT`.

    Computed without rendering anything: `str()` of a list renders each item's `repr()`, however often
    the list holds it, so a few shared references can ask for gigabytes of text (see `_size`).
    """
    if isinstance(value, str):
        return len(value)
    total, stack = 0, [value]
    while stack and total <= MAX_TEMPLATE_OUTPUT:
        node = stack.pop()
        if isinstance(node, str):
            total += _repr_size(node)
        elif isinstance(node, bytes):
            total += 4 * len(node) + 3
        elif isinstance(node, bool) or node is None:
            total += 5
        elif isinstance(node, int):
            total += node.bit_length() // 3 + 2
        elif isinstance(node, float):
            total += _FLOAT_TEXT
        elif isinstance(node, Mapping | ItemsView):
            items = node.items() if isinstance(node, Mapping) else node
            total += _OBJECT_TEXT + 4 * len(items)  # "dict_items([" and ": ", ", ", "(" per item
            stack.extend(part for pair in items for part in pair)
        elif isinstance(node, list | tuple | set | frozenset | KeysView | ValuesView):
            total += _OBJECT_TEXT + 2 * len(node)  # "frozenset({", ")" and ", " per item
            stack.extend(node)
        elif isinstance(node, Namespace):
            stack.append(node._Namespace__attrs)  # its repr renders them
        else:
            total += _OBJECT_TEXT
    return total


def _count(value: Any) -> int:
    return len(value) if isinstance(value, Sized) else _size(value)


def _int(value: Any) -> int:
    return abs(value) if isinstance(value, int) else 0


def _format_size(form: str, args: Any) -> int:
    """Bound a %- or {}-format's result: widths and precisions are the numbers in the format."""
    size = len(form) + _text_size(args) + sum(int(run) for run in re.findall(r"\d+", form))
    if "*" in form or re.search(r":[^{}]*\{", form):  # widths taken from the arguments
        values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple) else (args,)
        size += sum(_int(v) for v in values)
    return size


def _replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return 0
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _call_size(name: str, target: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """An upper bound on what the str method ``target.name(...)`` builds; 0 if it cannot grow."""
    first = args[0] if args else next(iter(kwargs.values()), None)
    if name in ("center", "ljust", "rjust", "zfill"):
        return max(len(target), _int(first))
    if name == "expandtabs":
        return len(target) + target.count("\t") * (8 if first is None else _int(first))
    if name == "replace":
        return _replace_size(target, *args[:3])
    if name == "join":
        return _size(first) + _count(first) * len(target)
    if name == "translate" and isinstance(first, Mapping):
        return len(target) * max([1, *(_size(v) for v in first.values())])
    if name in ("format", "format_map"):
        return _format_size(target, kwargs or (first if name == "format_map" else args))
    return 0


# Filters that make this many lists or items whatever their input: `batch` pads its last batch out to
# `linecount` items, `slice` makes `slices` lists of however few items there are.
_COUNTED_ARGUMENT = {"batch": "linecount", "slice": "slices"}


def _check_count(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    key = _COUNTED_ARGUMENT.get(name)
    count = _int(args[0] if args else kwargs.get(key)) if key else 0
    if count > MAX_RANGE:
        raise _TemplateLimit(f"the `{name}` filter's {key} of {count:,} is over the {MAX_RANGE:,} allowed")


def _filter_size(name: str, value: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """An upper bound on what ``value | name(...)`` builds, for the filters that can grow a value."""

    def arg(index: int, key: str, default: Any) -> Any:
        return args[index] if len(args) > index else kwargs.get(key, default)

    if name == "join":
        return _text_size(value) + _count(value) * len(str(arg(0, "d", "")))
    if name == "center":
        return max(_size(value), _int(arg(0, "width", 80)))
    if name == "tojson":
        return _size(value) * (1 + _int(arg(0, "indent", 0)))
    if name not in ("replace", "indent", "wordwrap", "format"):
        return 0
    text = str(
        value
    )  # as these filters take it (`_text_size` bounded it): a list's text may hold what they multiply
    if name == "replace":
        return _replace_size(text, str(arg(0, "old", "")), str(arg(1, "new", "")), arg(2, "count", None))
    if name == "indent":
        width = arg(0, "width", 4)
        return len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else _int(width))
    if name == "wordwrap":
        lines = len(text) // max(_int(arg(0, "width", 79)), 1) + text.count("\n") + 1
        return len(text) + lines * len(str(arg(2, "wrapstring", None) or "\n"))
    return _format_size(text, kwargs or args)  # format


class _Budget:
    """What one rendering has spent so far (kept on its Jinja `Context`)."""

    def __init__(self) -> None:
        self.steps = 0
        self.built = 0


def _budget(context: Context) -> _Budget:
    budget: _Budget | None = getattr(context, "_receipts_budget", None)
    if budget is None:
        budget = _Budget()
        context._receipts_budget = budget  # type: ignore[attr-defined]
    return budget


def _step(context: Context) -> None:
    budget = _budget(context)
    budget.steps += 1
    if budget.steps > MAX_TEMPLATE_STEPS:
        raise _TemplateLimit(f"the template takes more than {MAX_TEMPLATE_STEPS:,} loop steps and calls")


def _check(size: int, what: str) -> None:
    """Refuse a value of ``size`` before it is built."""
    if size > MAX_TEMPLATE_OUTPUT:
        raise _TemplateLimit(
            f"{what} would build {size:,} characters or items; a template may build {MAX_TEMPLATE_OUTPUT:,}"
        )


def _check_text(size: int, what: str) -> None:
    """Refuse to render a value whose text (bounded by `_text_size`) would be over the limits."""
    if size > MAX_TEMPLATE_OUTPUT:
        raise _TemplateLimit(f"{what} would render as more than {MAX_TEMPLATE_OUTPUT:,} characters")


def _build(context: Context, size: int, what: str) -> None:
    """Refuse a value of ``size`` before it is built, and count it against the rendering's budget."""
    _check(size, what)
    budget = _budget(context)
    budget.built += size
    if budget.built > MAX_TEMPLATE_BUILT:
        raise _TemplateLimit(f"the template builds more than {MAX_TEMPLATE_BUILT:,} characters in all")


def _int_bits(operator: str, left: Any, right: Any) -> int:
    if not (isinstance(left, int) and isinstance(right, int)):
        return 0
    if operator == "**":
        return right * abs(left).bit_length() if right > 0 and abs(left) > 1 else 0
    return left.bit_length() + right.bit_length() if operator == "*" else 0


_SEQUENCE = (str, list, tuple)  # what `*` repeats and `+` joins


def _binop_size(operator: str, left: Any, right: Any) -> int:
    if operator == "*" and isinstance(left, _SEQUENCE) and isinstance(right, int):
        return _size(left) * max(right, 0)
    if operator == "*" and isinstance(right, _SEQUENCE) and isinstance(left, int):
        return _size(right) * max(left, 0)
    if operator == "+" and isinstance(left, _SEQUENCE) and isinstance(right, _SEQUENCE):
        return _size(left) + _size(right)
    if operator == "%" and isinstance(left, str):
        return _format_size(left, right)
    return 0


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (a Jinja filter) refusing results over the limits; it receives what it asked for."""
    passes = getattr(func, "jinja_pass_arg", None)

    def bounded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        _step(context)
        if isinstance(value, Iterator):
            value = _counted(context, value)  # `list`, `join`, `sort`...: each item drawn is a step
        if name == "join" and not isinstance(value, Sized):
            value = list(value)  # an iterator's items must be counted before the separator multiplies them
        if not isinstance(value, str):  # a filter may take a value's text (`string`, `upper`, `replace`...)
            _check_text(_text_size(value), f"the `{name}` filter's value")
        _check_count(name, args, kwargs)
        if (size := _filter_size(name, value, args, kwargs)) > MAX_TEMPLATE_OUTPUT:
            raise _TemplateLimit(
                f"the `{name}` filter would build {size:,} characters or items;"
                f" a template may build {MAX_TEMPLATE_OUTPUT:,}"
            )
        head = {"context": context, "eval_context": context.eval_ctx, "environment": context.environment}
        result = func(*([head[passes.name]] if passes else []), value, *args, **kwargs)
        _build(context, _size(result) if isinstance(result, str | list | tuple | dict) else 0, f"`{name}`")
        return result

    return pass_context(bounded)


def _counted(context: Context, items: Iterable[Any]) -> Iterator[Any]:
    """``items``, each counted as a step of the rendering as it is drawn."""
    for item in items:
        _step(context)
        yield item


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    """An output's value, refused before `str()` renders it if its text would be over the limits."""
    if not isinstance(value, str):
        size = _text_size(value)
        _check_text(size, "an output")
        _build(context, size, "an output")
    return value


def _concat(parts: Iterable[str]) -> str:
    """A buffer's text (a macro's, a ``{% set %}`` block's...), refused before it is joined if too long."""
    parts = list(parts)
    _check(sum(map(len, parts)), "a block's text")
    return "".join(parts)


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _TemplateLimit(f"range() of {len(numbers):,} numbers is over the {MAX_RANGE:,} allowed")
    return numbers


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles `~`, `{% for %}` and literals through the environment: Jinja's sandbox has no hook for them.

    ``[a, a, a]`` costs three references however long ``a`` is, but renders it three times: a few nested
    literals would otherwise ask `str()` for gigabytes.
    """

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_bounded(context, (")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def _bounded_literal(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment.literal_bounded(context, ")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._bounded_literal(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._bounded_literal(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # `{% for a, b in ... %}`: names to assign to, not a value
            super().visit_Tuple(node, frame)
            return
        self._bounded_literal(super().visit_Tuple, node, frame)

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if isinstance(node.iter, nodes.Call) and isinstance(node.iter.node, nodes.EnvironmentAttribute):
            super().visit_For(node, frame)  # already counted (templates cannot write this node)
            return
        counted = nodes.Call(
            nodes.EnvironmentAttribute("loop_bounded"), [nodes.ContextReference(), node.iter], [], None, None
        )
        node.iter = counted.set_lineno(node.lineno).set_environment(self.environment)
        super().visit_For(node, frame)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, bounding the values a template builds, its output and its loops (see limits above)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_concat)  # joins every buffer the template fills (macros, set blocks)

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.globals["range"] = _range
        del self.globals["lipsum"]  # random text: it would make prompts, and their digests, vary
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``left operator right``, refused when its result would be over the limits."""
        _step(context)
        if _int_bits(operator, left, right) > _MAX_INT_BITS:
            raise _TemplateLimit(f"`{operator}` would build an integer of more than {_MAX_INT_BITS:,} bits")
        _build(context, _binop_size(operator, left, right), f"`{operator}`")
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``obj``, refusing a str method (``ljust``, ``replace``, ...) that would grow too much."""
        _step(context)
        target = getattr(getattr(obj, "__wrapped__", obj), "__self__", None)
        if isinstance(target, str):
            name = getattr(obj, "__name__", "")
            if name == "join" and args and not isinstance(args[0], Sized):
                args = (
                    list(_counted(context, args[0])),
                    *args[1:],
                )  # its items, before `sep` multiplies them
            _build(context, _call_size(name, target, args, kwargs), f"str.{name}()")
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, str | list | tuple | dict):
            _build(context, _size(result), "a call")
        return result

    def concat_bounded(self, context: Context, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``, refused when the joined text would be over the limits."""
        _build(context, sum(map(_text_size, parts)), "`~`")
        eval_ctx = context.eval_ctx
        return markup_join(parts) if eval_ctx.autoescape or eval_ctx.volatile else str_join(parts)

    def literal_bounded(self, context: Context, value: Any) -> Any:
        """A list, tuple or dict literal, refused when it holds more than the limits allow."""
        if (size := _size(value)) > MAX_TEMPLATE_OUTPUT:
            raise _TemplateLimit(
                f"a list, tuple or dict would hold more than {MAX_TEMPLATE_OUTPUT:,} characters or items"
                " (a value it holds more than once counts each time)"
            )
        _build(context, size, "a literal")
        return value

    def loop_bounded(self, context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
        """``iterable``'s items, each counted as a step of the rendering."""
        return _counted(context, iterable)


# Prompts are plain text for a model, not HTML: autoescaping would turn "'" into "&#39;".
# StrictUndefined turns a missing field into an error instead of an empty string.
_ENV = _BoundedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=512)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def _render(source: str, fields: Mapping[str, Any]) -> str:
    """The template's text for these fields, streamed so that its length is checked as it grows."""
    out: list[str] = []
    length = 0
    for chunk in _compile(source).generate(dict(fields)):
        length += len(chunk)
        if length > MAX_TEMPLATE_OUTPUT:
            raise _TemplateLimit(f"the prompt would be longer than {MAX_TEMPLATE_OUTPUT:,} characters")
        out.append(chunk)
    return "".join(out)


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised on (Jinja rewrites tracebacks to point at it)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _limit_error(exc: BaseException, file: object, where: str) -> InputError:
    """One clear error for a template over the limits (or out of memory)."""
    line = _template_line(exc)
    if line is not None:
        where = f"{where}, template line {line}"
    message = str(exc) if isinstance(exc, _TemplateLimit) else "the template needs more memory than there is"
    return InputError(f"a template is refused: {message}", file=file, where=where, hint=_TEMPLATE_HINT)


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
    critical: bool = False
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

    @property
    def variant_names(self) -> tuple[str, ...]:
        """``original`` first, then the pack's variants in order."""
        return tuple(v.name for v in self.variants)

    @property
    def critical_items(self) -> tuple[Item, ...]:
        """The critical cohort: items marked ``critical: true``."""
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
    critical: bool = False
    slices: Mapping[str, Label] = field(default_factory=dict)
    expected: Behaviour = "answer"
    clarify_pattern: str | None = None


def pack_digest(path: Path) -> str:
    """The pack folder's digest (hex root of the model_signing v1.0 files rule), as receipts bind it.

    Raises:
        InputError: the folder is missing, holds a symbolic link, or cannot be read.
    """
    return digest_weights(path).root


# --- loading -------------------------------------------------------------------------------------


class _Problems:
    """Every problem found in a pack, reported together as one `SchemaError`."""

    def __init__(self, file: Path):
        self.file = file
        self.found: list[Violation] = []

    def add(self, where: str, message: str, hint: str = "") -> None:
        self.found.append(Violation(where, message, hint))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        shown = self.found[:MAX_REPORTED]
        if len(self.found) > MAX_REPORTED:
            more = len(self.found) - MAX_REPORTED
            shown.append(Violation("...", f"and {more} more problems", "fix the ones above first"))
        raise SchemaError(self.file, "pack", shown)


def _read_checked(folder: Path, relpath: str, digest: WeightsDigest, *, what: str, limit: int) -> bytes:
    """A file's bytes, refused unless they are the bytes the pack digest covers."""
    data = read_bytes(folder / relpath, what=what, limit=limit)
    if digest.files.get(relpath) != sha256_bytes(data):
        raise InputError(
            f"{what} changed while the pack was being read",
            file=folder / relpath,
            hint="do not edit a pack during a run; run again",
        )
    return data


def _spec_of(yaml_path: Path, folder: Path, digest: WeightsDigest) -> dict[str, Any]:
    data = _read_checked(folder, PACK_FILE, digest, what="pack.yaml", limit=MAX_PACK_YAML)
    spec = parse_yaml(data, file=yaml_path)
    if not isinstance(spec, dict):
        raise SchemaError(yaml_path, "pack", [Violation("$", "a pack.yaml must be a mapping", "see packs/")])
    schemas.validate(spec, "pack", file=yaml_path)
    return spec


def _templates(spec: Mapping[str, Any], problems: _Problems) -> dict[str, str]:
    prompt = spec["prompt"]
    if isinstance(prompt, str):
        named = {"default": prompt}
    else:
        named = {}
        for index, entry in enumerate(prompt):
            if entry["name"] in named:
                problems.add(f"$.prompt[{index}].name", f"template name {entry['name']!r} is used twice")
            named[entry["name"]] = entry["template"]
    return named


def _check_syntax(source: str, where: str, problems: _Problems) -> bool:
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        problems.add(
            where, f"Jinja2 syntax error on template line {exc.lineno}: {exc.message}", "fix the template"
        )
        return False
    except (RecursionError, SyntaxError):  # Jinja's parser recurses; Python's compiler caps nesting
        problems.add(where, "the template is nested too deeply to compile", _TEMPLATE_HINT)
        return False
    return True


def _template_paths(spec: Mapping[str, Any]) -> dict[str, str]:
    """Where each template is written in pack.yaml (a JSON path; the first place, if several)."""
    prompt = spec["prompt"]
    if isinstance(prompt, str):
        paths = {prompt: "$.prompt"}
    else:
        paths = {}
        for index, entry in enumerate(prompt):
            paths.setdefault(entry["template"], f"$.prompt[{index}].template")
    for index, entry in enumerate(spec.get("variants", [])):
        if "template" in entry:
            paths.setdefault(entry["template"], f"$.variants[{index}].template")
    return paths


def _text_fields(source: str, spec: Mapping[str, Any]) -> tuple[str, ...]:
    """Fields a perturbation changes by default: template inputs that are not answers or labels."""
    used = meta.find_undeclared_variables(_ENV.parse(source))
    reserved = {"id", "critical", spec["target"], *spec.get("slices", [])}
    for key in ("choices", "behaviour"):
        if isinstance(spec.get(key), str):
            reserved.add(spec[key])
    clarify = spec.get("clarify", {})
    if "pattern_field" in clarify:
        reserved.add(clarify["pattern_field"])
    return tuple(sorted(used - reserved))


def _variants(spec: Mapping[str, Any], named: Mapping[str, str], problems: _Problems) -> list[Variant]:
    default = next(iter(named.values()))
    out = [Variant(ORIGINAL, "original", default, description="the item as written, default template")]
    for index, entry in enumerate(spec.get("variants", [])):
        where = f"$.variants[{index}]"
        name = entry["name"]
        if name in {v.name for v in out}:
            problems.add(
                f"{where}.name", f"variant name {name!r} is used twice", "give each variant its own name"
            )
        source = entry.get("template", default)
        if "prompt" in entry:
            if entry["prompt"] not in named:
                problems.add(
                    f"{where}.prompt",
                    f"no prompt template named {entry['prompt']!r}",
                    f"use one of: {', '.join(named)}",
                )
                continue
            source = named[entry["prompt"]]
        elif "template" in entry and not _check_syntax(source, f"{where}.template", problems):
            continue
        spec_p: PerturbationSpec | None = None
        fields: tuple[str, ...] = ()
        if entry["kind"] == "perturbation":
            spec_p = PerturbationSpec(
                entry["perturbation"], entry.get("seed", 0), entry.get("rate"), entry.get("mode")
            )
            fields = tuple(entry["fields"]) if "fields" in entry else _text_fields(source, spec)
            if not fields:
                problems.add(
                    where,
                    "this perturbation has no text field to change",
                    "list the item `fields` to perturb",
                )
        out.append(Variant(name, entry["kind"], source, spec_p, fields, entry.get("description", "")))
    return out


def _data_paths(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _jsonl(folder: Path, relpath: str, digest: WeightsDigest) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line; malformed lines stop the load with file:line."""
    path = folder / relpath
    data = _read_checked(folder, relpath, digest, what="data file", limit=MAX_DATA_FILE)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for number, raw in enumerate(lines, start=1):
        hint = 'each line must be one JSON object: {"id": "...", ...}'
        if not raw.strip():
            raise InputError("blank line", file=path, where=f"line {number}", hint="remove it")
        try:
            value = parse_json(raw, file=path)
        except InputError as exc:
            column = exc.where.rsplit("column", 1)[-1].strip() if "column" in exc.where else ""
            where = f"line {number}" + (f" column {column}" if column else "")
            raise InputError(exc.message, file=path, where=where, hint=hint) from None
        if not isinstance(value, dict):
            raise InputError(
                f"a line holds a JSON {type(value).__name__}, not an object",
                file=path,
                where=f"line {number}",
                hint=hint,
            )
        yield number, value


def _is_label(value: Any) -> bool:
    return isinstance(value, str | int | bool)


class _ItemReader:
    """Turns JSON objects into `Item`s under the pack's mapping, recording problems."""

    def __init__(self, spec: Mapping[str, Any], variants: Sequence[Variant], problems: _Problems):
        self.spec = spec
        self.task: str = spec["task"]
        self.variants = variants
        self.problems = problems
        self.seen: dict[str, str] = {}

    def read(self, relpath: str, line: int, obj: dict[str, Any]) -> Item | None:
        where = f"{relpath}:{line}"
        count = len(self.problems.found)
        item_id = obj.get("id")
        if item_id is None:
            self.problems.add(
                f"{where} $.id", "item has no `id`", "give every item a unique string id, e.g. cap-001"
            )
            return None
        if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
            self.problems.add(
                f"{where} $.id",
                f"item id {item_id!r} is not a valid id",
                "use a string of letters, digits and . _ : - (starting with a letter or digit), e.g. cap-001",
            )
            return None
        if item_id in self.seen:
            self.problems.add(
                f"{where} $.id",
                f"duplicate item id {item_id!r} (first at {self.seen[item_id]})",
                "give every item a unique id",
            )
            return None
        self.seen[item_id] = where
        report = _Reporter(self.problems, where, item_id)
        critical = obj.get("critical", False)
        if not isinstance(critical, bool):
            report("critical", f"`critical` must be true or false, not {critical!r}")
        slices = self._slices(obj, report)
        expected = self._expected(obj, report)
        choices = self._choices(obj, report)
        gold = self._gold(obj, choices, expected, report)
        pattern = self._clarify_pattern(obj, report)
        for variant in self.variants:
            if variant.perturbation is None:
                continue
            for name in variant.fields:
                if name in obj and not isinstance(obj[name], str):
                    report(name, f"variant {variant.name!r} perturbs `{name}`, which is not text here")
        if len(self.problems.found) > count:
            return None
        return Item(
            id=item_id,
            fields=obj,
            file=relpath,
            line=line,
            gold=gold,
            choices=choices,
            slices=slices,
            critical=bool(critical),
            expected=expected,
            clarify_pattern=pattern,
        )

    def _slices(self, obj: Mapping[str, Any], report: _Reporter) -> dict[str, Label]:
        labels: dict[str, Label] = {}
        for name in self.spec.get("slices", []):
            if name not in obj:
                report(
                    name,
                    f"has no slice label `{name}`",
                    f"add `{name}` to the item (slices: {name} in pack.yaml)",
                )
            elif not _is_label(obj[name]):
                report(name, f"slice label `{name}` must be a string, integer or boolean, not {obj[name]!r}")
            else:
                labels[name] = obj[name]
        return labels

    def _expected(self, obj: Mapping[str, Any], report: _Reporter) -> Behaviour:
        name = self.spec.get("behaviour")
        if name is None:
            return "answer"
        value = obj.get(name)
        if value not in BEHAVIOURS:
            report(name, f"expected behaviour `{name}` is {value!r}", f"use one of: {', '.join(BEHAVIOURS)}")
            return "answer"
        return cast(Behaviour, value)

    def _choices(self, obj: Mapping[str, Any], report: _Reporter) -> tuple[str, ...] | None:
        source = self.spec.get("choices")
        if self.task not in ("multiple_choice", "classify") or source is None:
            return None
        if isinstance(source, list):
            return tuple(source)
        value = obj.get(source)
        if source not in obj:
            report(source, f"has no choices field `{source}`", f"add `{source}`: a list of choice strings")
        elif not isinstance(value, list) or len(value) < 2 or not all(isinstance(c, str) for c in value):
            report(source, f"choices `{source}` must be a list of at least 2 strings, not {value!r}")
        elif len(set(value)) != len(value):
            report(source, "choices repeat; the gold answer would be ambiguous", "make every choice distinct")
        else:
            return tuple(value)
        return None

    def _gold(
        self, obj: Mapping[str, Any], choices: tuple[str, ...] | None, expected: str, report: _Reporter
    ) -> Gold:
        name = self.spec["target"]
        if name not in obj:
            report(name, f"has no target field `{name}`", f"add `{name}` (target: {name} in pack.yaml)")
            return None
        value = obj[name]
        if value is None and expected != "answer":
            return None
        if self.task in ("multiple_choice", "classify"):
            return self._gold_index(name, value, choices, report)
        if self.task == "generate":
            if isinstance(value, str):
                return (value,)
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return tuple(value)
            report(name, f"target `{name}` must be a string or a list of strings, not {value!r}")
            return None
        fields = self.spec["fields"]
        if not isinstance(value, dict):
            report(name, f"target `{name}` must be a JSON object with keys {fields}, not {value!r}")
            return None
        missing, extra = [f for f in fields if f not in value], [k for k in value if k not in fields]
        if missing or extra:
            report(
                name,
                f"target keys differ from `fields`: missing {missing}, unexpected {extra}",
                "give exactly the keys listed in `fields` (null where the text has no value)",
            )
            return None
        return value

    def _gold_index(
        self, name: str, value: Any, choices: tuple[str, ...] | None, report: _Reporter
    ) -> int | None:
        if choices is None:
            return None  # already reported
        if isinstance(value, str) and value in choices:
            return choices.index(value)
        if isinstance(value, bool) or not isinstance(value, int):
            report(name, f"gold `{name}` must be a 0-based choice index or one of the choices, not {value!r}")
            return None
        if not 0 <= value < len(choices):
            report(
                name,
                f"gold index {value} is out of range for {len(choices)} choices",
                f"use 0 to {len(choices) - 1} (indices are 0-based)",
            )
            return None
        return value

    def _clarify_pattern(self, obj: Mapping[str, Any], report: _Reporter) -> str | None:
        name = self.spec.get("clarify", {}).get("pattern_field")
        if name is None or obj.get(name) is None:
            return None
        value = obj[name]
        try:
            re.compile(value)
        except (re.error, TypeError) as exc:
            report(name, f"clarify pattern is not a regular expression: {exc}")
            return None
        return str(value)


class _Reporter:
    """Records a problem about one field of one item."""

    def __init__(self, problems: _Problems, where: str, item_id: str):
        self.problems, self.where, self.item_id = problems, where, item_id

    def __call__(self, name: str, message: str, hint: str = "") -> None:
        self.problems.add(f"{self.where} $.{name}", f"item {self.item_id}: {message}", hint)


def _missing_field(exc: UndefinedError) -> str:
    found = re.search(r"'([^']+)' is undefined|has no attribute '([^']+)'", exc.message or "")
    return next((g for g in found.groups() if g), "?") if found else "?"


def _render_all(
    items: Iterable[Item],
    variants: Sequence[Variant],
    named: Mapping[str, str],
    paths: Mapping[str, str],
    problems: _Problems,
) -> None:
    """Render every template against every item now, so no run discovers a broken one halfway.

    Raises:
        InputError: a template goes over the limits on what it may build (names its path and line).
    """
    sources = {v.template: f"variant {v.name!r}" for v in reversed(variants)}
    for name, source in named.items():
        sources.setdefault(source, f"prompt template {name!r}")
    for item in items:
        for source, label in sources.items():
            try:
                _render(source, item.fields)
            except (_TemplateLimit, MemoryError) as exc:  # one error, not one per item
                raise _limit_error(exc, problems.file, paths.get(source, label)) from None
            except UndefinedError as exc:
                missing = _missing_field(exc)
                problems.add(
                    f"{item.where} $.{missing}",
                    f"item {item.id}: {label} uses field `{missing}`, which this item lacks ({exc.message})",
                    f"add `{missing}` to the item, or fix the template",
                )
            except (
                TemplateError,
                TypeError,
                ValueError,
                ArithmeticError,
                LookupError,
                RecursionError,
            ) as exc:
                line = _template_line(exc)
                at = f" (template line {line})" if line is not None else ""
                problems.add(
                    f"{item.where}", f"item {item.id}: {label} fails to render{at}: {exc}", "fix the template"
                )


def _read_items(folder: Path, paths: Sequence[str], digest: WeightsDigest, reader: _ItemReader) -> list[Item]:
    items = []
    for relpath in paths:
        for line, obj in _jsonl(folder, relpath, digest):
            item = reader.read(relpath, line, obj)
            if item is not None:
                items.append(item)
    return items


def _answer_text(item: Item, task: str) -> str:
    """A worked example's answer as the model should write it (gold presence is checked at load)."""
    if task in ("multiple_choice", "classify"):
        return cast(tuple[str, ...], item.choices)[cast(int, item.gold)]
    if task == "generate":
        return cast(tuple[str, ...], item.gold)[0]
    return json.dumps(dict(cast(Mapping[str, Any], item.gold)), ensure_ascii=False)


def _few_shot(
    spec: Mapping[str, Any], folder: Path, digest: WeightsDigest, reader: _ItemReader, problems: _Problems
) -> FewShot | None:
    entry = spec.get("few_shot")
    if entry is None:
        return None
    shots = _read_items(folder, [entry["data"]], digest, reader)[: entry["n"]]
    if len(shots) < entry["n"]:
        problems.add(
            "$.few_shot.n", f"asks for {entry['n']} examples; {entry['data']} has {len(shots)} usable"
        )
    for shot in shots:
        if shot.gold is None:
            problems.add(
                f"{shot.where} $.{spec['target']}", f"item {shot.id}: a few-shot example needs a gold answer"
            )
    return FewShot(tuple(shots), entry.get("delimiter", "\n\n"))


def _rules(spec: Mapping[str, Any]) -> BehaviourRules:
    def markers(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        return tuple(value["markers"] if isinstance(value, dict) else value)

    clarify = spec.get("clarify", {})
    return BehaviourRules(
        abstain=markers(spec.get("abstain")),
        clarify=markers(clarify or None),
        refuse=markers(spec.get("refuse")),
        require_question_mark=clarify.get("require_question_mark", True),
        clarify_pattern_field=clarify.get("pattern_field"),
    )


def _locate(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        yaml_path = path / PACK_FILE
        if not yaml_path.is_file():
            raise InputError(
                "no pack.yaml in this folder", file=path, hint="pass a pack folder such as packs/capitals-mc"
            )
        return path, yaml_path
    if path.name != PACK_FILE:
        raise InputError(
            "a pack is a folder holding pack.yaml", file=path, hint="pass the pack folder or its pack.yaml"
        )
    if not path.exists():
        raise InputError("pack.yaml does not exist", file=path, hint="check the path")
    return path.parent, path


def load_pack(path: Path) -> Pack:
    """Load and check a pack folder (or its ``pack.yaml``).

    Raises:
        InputError: a file is missing, unreadable, a symbolic link, or not JSON Lines (names file:line);
            or a template goes over the limits on what it may build (``MAX_TEMPLATE_OUTPUT``...).
        SchemaError: pack.yaml fails schema/pack (every JSON path), or items fail the pack's mapping:
            missing or duplicate ids, bad choices or gold, missing slice labels, templates that use a
            field an item lacks (each names file:line, the item id and the field).
    """
    folder, yaml_path = _locate(Path(path))
    digest = digest_weights(folder)
    spec = _spec_of(yaml_path, folder, digest)
    problems = _Problems(yaml_path)
    named = _templates(spec, problems)
    paths = (
        ["$.prompt"]
        if isinstance(spec["prompt"], str)
        else [f"$.prompt[{n}].template" for n in range(len(named))]
    )
    syntax_ok = all([_check_syntax(s, p, problems) for s, p in zip(named.values(), paths, strict=False)])
    variants = _variants(spec, named, problems)
    problems.raise_if_any()  # templates must compile before items can be rendered
    reader = _ItemReader(spec, variants, problems)
    items = _read_items(folder, _data_paths(spec["data"]), digest, reader)
    if not items and not problems.found:
        problems.add(
            "$.data", "the pack has no items", "add items to the data files, one JSON object per line"
        )
    few_shot = _few_shot(spec, folder, digest, reader, problems)
    if syntax_ok:
        everything = [*items, *(few_shot.items if few_shot else ())]
        _render_all(everything, variants, named, _template_paths(spec), problems)
    problems.raise_if_any()
    answer = spec.get("answer", {})
    generation = spec.get("generation", {})
    return Pack(
        path=folder,
        id=spec["id"],
        version=spec["version"],
        license=spec["license"],
        task=spec["task"],
        digest=digest.root,
        items=tuple(items),
        templates=named,
        variants=tuple(variants),
        slices=tuple(spec.get("slices", ())),
        scorers=tuple(spec.get("scorers", DEFAULT_SCORERS[spec["task"]])),
        answer=AnswerRule(
            answer.get("regex"), answer.get("select", "first"), tuple(answer.get("normalise", ()))
        ),
        behaviour=_rules(spec),
        generation=Generation(generation.get("max_new_tokens", 32), tuple(generation.get("stop", ()))),
        gate={k: float(v) for k, v in spec.get("gate", {}).items()},
        target_delimiter=spec.get("target_delimiter", " "),
        fields=tuple(spec.get("fields", ())),
        few_shot=few_shot,
        description=spec.get("description", ""),
        spec=spec,
    )


# --- materialising -------------------------------------------------------------------------------


def _chosen(pack: Pack, names: Sequence[str] | None) -> list[Variant]:
    if names is None:
        return list(pack.variants)
    by_name = {v.name: v for v in pack.variants}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(
            f"pack {pack.id} has no variant {', '.join(map(repr, unknown))}",
            hint=f"choose from: {', '.join(by_name)}",
        )
    return [by_name[n] for n in dict.fromkeys(names)]


def _prefix(pack: Pack, variant: Variant) -> str:
    if pack.few_shot is None:
        return ""
    shots = [
        _render(variant.template, shot.fields) + pack.target_delimiter + _answer_text(shot, pack.task)
        for shot in pack.few_shot.items
    ]
    return pack.few_shot.delimiter.join(shots) + pack.few_shot.delimiter


def render_prompt(pack: Pack, item: Item, variant: Variant) -> str:
    """The prompt text for one item under one variant (few-shot examples included).

    Perturbations change only the item's text fields, never the template's own words, the choices
    or the gold answer; they are deterministic given (seed, item id, variant name, field).

    Raises:
        InputError: the template goes over the limits on what it may build.
    """
    with _limits(pack, variant):
        return _prefix(pack, variant) + _body(item, variant)


@contextmanager
def _limits(pack: Pack, variant: Variant) -> Iterator[None]:
    try:
        yield
    except (_TemplateLimit, MemoryError) as exc:
        raise _limit_error(exc, pack.path / PACK_FILE, f"variant {variant.name!r}") from None


def _body(item: Item, variant: Variant) -> str:
    fields = dict(item.fields)
    if variant.perturbation is not None:
        for name in variant.fields:
            if isinstance(fields.get(name), str):
                fields[name] = perturb(
                    fields[name], variant.perturbation, item_id=item.id, variant=variant.name, field=name
                )
    return _render(variant.template, fields)


def materialise(
    pack: Pack, variants: Sequence[str] | None = None, *, items: Iterable[Item] | None = None
) -> Iterator[PromptInstance]:
    """Every (item, variant) prompt of ``pack``, item by item, variants in pack order.

    ``variants`` names the variants to use (default: all, ``original`` first). Multiple-choice and
    classify instances carry their choices and lm-eval continuations (target_delimiter + choice).

    Raises:
        UsageError: a requested variant does not exist in the pack.
        InputError: a template goes over the limits on what it may build.
    """
    chosen = _chosen(pack, variants)
    prefixes = {}
    for variant in chosen:
        with _limits(pack, variant):
            prefixes[variant.name] = _prefix(pack, variant)
    for item in pack.items if items is None else items:
        continuations = None
        if item.choices is not None:
            continuations = tuple(pack.target_delimiter + choice for choice in item.choices)
        for variant in chosen:
            with _limits(pack, variant):
                prompt = prefixes[variant.name] + _body(item, variant)
            yield PromptInstance(
                item_id=item.id,
                variant=variant.name,
                prompt=prompt,
                prompt_sha256=hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                gold=item.gold,
                choices=item.choices,
                continuations=continuations,
                critical=item.critical,
                slices=item.slices,
                expected=item.expected,
                clarify_pattern=item.clarify_pattern,
            )
