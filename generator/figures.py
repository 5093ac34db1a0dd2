"""The headline figures of a receipt, as a card page shows them: one key, one display string.

``figures(predicate)`` is the single source: the card template prints exactly these strings, each in an
element marked ``data-rc-figure="<key>"``; ``receipts verify SITE`` (generator/sitecheck.py) reads the
marked elements back and compares them with the same function's output for the receipt the page names;
verify.js computes the same keys and strings from the statement it verified and shows them in the
verification box (its ``figures`` and ``figureNumber`` mirror this module;
tests/generator/test_browser_figures.py holds the two to each other on a table of values).

Keys (``<pack>`` is ``runs[].pack.id``; ``<role>`` a key of that run's ``summary.scores``):

  model.name, model.version, model.publisher   the signed ``predicate.model``
  gate                                          the signed ``predicate.gate.verdict``
  runs.<pack>.primary_metric                    ``summary.primary_metric``
  runs.<pack>.scores.<role>                     ``summary.scores[role]``, one key per role present
  runs.<pack>.retention                         ``summary.retention`` (the student's)

Formatting rule (the same in Python and JavaScript):

- a number (a JSON number, not a boolean, finite) has exactly 3 decimals, rounded half away from zero on
  the exact binary value of the IEEE double (what JavaScript's ``Number.prototype.toFixed(3)`` does below
  1e21; 0.0625 is ``0.063``, 0.1235 is ``0.123`` because that double lies below 0.1235). A result of
  zero has no sign (``0.000``, never ``-0.000``). An integer is a number like any other (``1.000``);
  a double of 1e21 or more is an integer and is written out whole (toFixed would switch to ``1e+21``).
- anything else where a number belongs (missing, null, text, a boolean, an overflow) is ``n/a``;
- text (names, the metric) is shown as signed; where text belongs and is missing or not text: ``n/a``;
- the gate verdict in words: underscores become spaces (``not_evaluated`` is ``not evaluated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.formats.statement import Predicate

__all__ = ["NOT_AVAILABLE", "at_floor", "figures", "number", "role_label", "role_order", "roles"]

NOT_AVAILABLE = "n/a"
_THOUSANDTH = Decimal("0.001")
_EXACT = Context(prec=400, rounding=ROUND_HALF_UP)  # every finite double, 3 decimals, without rounding early
_ROLE_WORDS = {"teacher": "teacher", "base": "base model", "student": "student", "sft": "SFT baseline"}
_ROLE_ORDER = tuple(_ROLE_WORDS)


def number(value: Any) -> str:
    """A signed number as a page shows it (the rule in this module's docstring)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NOT_AVAILABLE
    try:
        exact = Decimal(float(value))  # a JSON number is a double in the browser: the same value here
    except OverflowError:  # an integer beyond the double range; the browser reads it as Infinity
        return NOT_AVAILABLE
    if not exact.is_finite():
        return NOT_AVAILABLE
    text = f"{exact.quantize(_THOUSANDTH, context=_EXACT):f}"
    return "0.000" if text == "-0.000" else text


def _text(value: Any) -> str:
    return value if isinstance(value, str) else NOT_AVAILABLE


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def role_label(role: str) -> str:
    """A role in words: ``sft`` is "SFT baseline", ``student@int8-dynamic`` is "student (int8-dynamic)"."""
    kind, _, variant = role.partition("@")
    words = _ROLE_WORDS.get(kind, kind)
    return f"{words} ({variant})" if variant else words


def at_floor(results: Results) -> bool:
    """Every role scores exactly zero on the pack's headline metric over all items (a floor pack).

    Such a pack measured nothing about these models: pages say so in one sentence, draw no chart of its
    zeros and show no diagnostic drawn from them (receipts.metrics.diagnostics skips them since 2026-12-06;
    receipts signed before still carry some).
    """
    metric = (results.metrics or {}).get("all", {}).get(results.primary_metric or "")
    values = [estimate.value for estimate in metric.roles.values()] if metric is not None else []
    return bool(values) and all(value == 0 for value in values)


def role_order(role: str) -> tuple[int, str]:
    """Sort key of roles: teacher, base, student, sft, then the others (``student@int8``...) by name."""
    return (_ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER), role)


def roles(predicate: Predicate) -> list[str]:
    """The columns of a metrics table: teacher, base, student, sft, then every other role a run scored."""
    scored = {role for run in predicate.runs for role in _mapping(run.summary.get("scores"))}
    return sorted(scored | set(_ROLE_ORDER), key=role_order)


def figures(predicate: Predicate) -> dict[str, str]:
    """Every headline figure of a signed predicate: key -> the exact string a page shows.

    The predicate is the one a receipt's verified statement carries: its schema makes ``model``'s names,
    the gate verdict and each run's pack id text. ``summary`` objects are free-form, so whatever they hold
    is read defensively (verify.js reads every part so, from the statement's JSON).
    """
    model = predicate.model
    shown = {
        "model.name": model.name,
        "model.version": model.version,
        "model.publisher": model.publisher,
        "gate": predicate.gate.verdict.replace("_", " "),
    }
    for run in predicate.runs:
        summary = run.summary
        key = f"runs.{run.pack.id}"
        shown[f"{key}.primary_metric"] = _text(summary.get("primary_metric"))
        for role, score in _mapping(summary.get("scores")).items():
            shown[f"{key}.scores.{role}"] = number(score)
        shown[f"{key}.retention"] = number(summary.get("retention"))
    return shown
