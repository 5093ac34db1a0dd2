"""Pack prompt templates: Jinja2 in a bounded sandbox, because a pack is untrusted input.

A template that would build more than ``MAX_TEMPLATE_OUTPUT`` characters (in a prompt or any value built on
the way), build more than ``MAX_TEMPLATE_BUILT`` in all, loop or call more than ``MAX_TEMPLATE_STEPS`` times,
or count past ``MAX_RANGE``, is stopped *before* the value exists (a ``SecurityError`` subclass), and
`runner.eval.loader` reports it as one ``InputError`` naming pack.yaml, the template's JSON path and its line.
"""

from __future__ import annotations

import re
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sized,
    ValuesView,
)
from functools import lru_cache
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    meta,
    nodes,
    pass_context,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from receipts.errors import InputError

__all__ = [
    "MAX_RANGE",
    "MAX_TEMPLATE_BUILT",
    "MAX_TEMPLATE_OUTPUT",
    "MAX_TEMPLATE_STEPS",
    "TEMPLATE_HINT",
    "TemplateLimit",
    "bounded_environment",
    "compile_template",
    "limit_error",
    "render_template",
    "template_line",
    "undeclared_fields",
]

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
TEMPLATE_HINT = "a prompt template formats one item's fields; write the text out instead of computing it"


class TemplateLimit(SecurityError):
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
        raise TemplateLimit(f"the `{name}` filter's {key} of {count:,} is over the {MAX_RANGE:,} allowed")


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
        raise TemplateLimit(f"the template takes more than {MAX_TEMPLATE_STEPS:,} loop steps and calls")


def _check(size: int, what: str) -> None:
    """Refuse a value of ``size`` before it is built."""
    if size > MAX_TEMPLATE_OUTPUT:
        raise TemplateLimit(
            f"{what} would build {size:,} characters or items; a template may build {MAX_TEMPLATE_OUTPUT:,}"
        )


def _check_text(size: int, what: str) -> None:
    """Refuse to render a value whose text (bounded by `_text_size`) would be over the limits."""
    if size > MAX_TEMPLATE_OUTPUT:
        raise TemplateLimit(f"{what} would render as more than {MAX_TEMPLATE_OUTPUT:,} characters")


def _build(context: Context, size: int, what: str) -> None:
    """Refuse a value of ``size`` before it is built, and count it against the rendering's budget."""
    _check(size, what)
    budget = _budget(context)
    budget.built += size
    if budget.built > MAX_TEMPLATE_BUILT:
        raise TemplateLimit(f"the template builds more than {MAX_TEMPLATE_BUILT:,} characters in all")


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
            raise TemplateLimit(
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
        raise TemplateLimit(f"range() of {len(numbers):,} numbers is over the {MAX_RANGE:,} allowed")
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
            raise TemplateLimit(f"`{operator}` would build an integer of more than {_MAX_INT_BITS:,} bits")
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
            raise TemplateLimit(
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


def bounded_environment(
    filters: Mapping[str, Callable[..., Any]] | None = None, **options: Any
) -> ImmutableSandboxedEnvironment:
    """A fresh sandbox with the same bounds as pack templates, extra ``filters`` and Jinja ``options``.

    For input rendered under another tool's rules (the lm-eval importer: trailing newlines kept, lm-eval's
    ``regex_replace`` filter); each extra filter is bounded like the built-in ones.
    """
    env = _BoundedEnvironment(**options)
    env.filters.update({name: _bounded_filter(name, func) for name, func in (filters or {}).items()})
    return env


def undeclared_fields(source: str) -> set[str]:
    """The names a template reads from its item (parsed only, never run)."""
    return meta.find_undeclared_variables(_ENV.parse(source))


@lru_cache(maxsize=512)
def compile_template(source: str) -> Template:
    """The template, compiled once per source text in the bounded sandbox."""
    return _ENV.from_string(source)


def render_template(source: str, fields: Mapping[str, Any]) -> str:
    """The template's text for these fields, streamed so that its length is checked as it grows."""
    out: list[str] = []
    length = 0
    for chunk in compile_template(source).generate(dict(fields)):
        length += len(chunk)
        if length > MAX_TEMPLATE_OUTPUT:
            raise TemplateLimit(f"the prompt would be longer than {MAX_TEMPLATE_OUTPUT:,} characters")
        out.append(chunk)
    return "".join(out)


def template_line(exc: BaseException) -> int | None:
    """The template line an error was raised on (Jinja rewrites tracebacks to point at it)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def limit_error(exc: BaseException, file: object, where: str) -> InputError:
    """One clear error for a template over the limits (or out of memory)."""
    line = template_line(exc)
    if line is not None:
        where = f"{where}, template line {line}"
    message = str(exc) if isinstance(exc, TemplateLimit) else "the template needs more memory than there is"
    return InputError(f"a template is refused: {message}", file=file, where=where, hint=TEMPLATE_HINT)
