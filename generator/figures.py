"""The headline figures of a receipt, as a card page shows them: one key, one display string.

``figures(predicate, files)`` is the single source: the card template (its label, site/templates/_label.j2)
prints exactly these strings, each in an element marked ``data-rc-figure="<key>"``; ``receipts verify SITE``
(generator/sitecheck.py) reads the marked elements back and compares them with the same function's output
for the receipt the page names; verify.js computes the same keys and strings from the statement and files
it verified, says whether the page shows them as signed and folds them under that line (its ``figures`` and
``figureNumber`` mirror this module; tests/generator/test_browser_figures.py holds the two to each other on
a table of values, and on signed and odd files).

Keys (``<pack>`` is ``runs[].pack.id``; ``<role>`` a key of that run's ``summary.scores``):

  model.name, model.version, model.publisher   the signed ``predicate.model``
  gate                                          the signed ``predicate.gate.verdict``
  runs.<pack>.primary_metric                    ``summary.primary_metric``
  runs.<pack>.scores.<role>                     ``summary.scores[role]``, one key per role present
  runs.<pack>.retention                         ``summary.retention`` (the student's)

With the receipt's signed files (``files``: subject name -> the verified bytes), also these, each only where
the signed value is a number (the card's label shows them; ``<point>`` is a footprint point's ``id``):

  runs.<pack>.retention.low, .high     ``metrics.all[<primary>].retention.student.ci95`` of the run's results
  runs.<pack>.vs_sft, .vs_sft.low, .vs_sft.high
                                       ``metrics.all[<primary>].differences["student-sft"]`` value and ci95
  footprints.<i>.<point>.peak_rss_gb   ``points[].memory.peak_rss_bytes`` / 1e9 of ``predicate.footprints[i]``
  footprints.<i>.<point>.decode_tps    ``points[].metrics.decode_tps.p50`` (1 decimal)
  footprints.<i>.<point>.ttft_p50, .ttft_p95   ``points[].metrics.ttft_s.p50`` / ``.p95`` (seconds)
  footprints.<i>.cost_per_1k           ``summary.cost_per_1k_calls``, only with a signed ``settings.price``
                                       (4 decimals; its currency is ``settings.price.currency``)

Formatting rule (the same in Python and JavaScript):

- a number (a JSON number, not a boolean, finite) has exactly 3 decimals (the places named above where a
  key says otherwise: memory 2, tok/s 1, price 4), rounded half away from zero on
  the exact binary value of the IEEE double (what JavaScript's ``Number.prototype.toFixed(3)`` does below
  1e21; 0.0625 is ``0.063``, 0.1235 is ``0.123`` because that double lies below 0.1235). A result of
  zero has no sign (``0.000``, never ``-0.000``). An integer is a number like any other (``1.000``);
  a double of 1e21 or more is an integer and is written out whole (toFixed would switch to ``1e+21``).
- anything else where a number belongs (missing, null, text, a boolean, an overflow) is ``n/a``;
- text (names, the metric) is shown as signed; where text belongs and is missing or not text: ``n/a``;
- the gate verdict in words: underscores become spaces (``not_evaluated`` is ``not evaluated``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING, Any

from receipts.metrics import diagnostics

if TYPE_CHECKING:
    from receipts.formats import Results
    from receipts.formats.statement import Predicate

__all__ = ["NOT_AVAILABLE", "at_floor", "figures", "number", "role_label", "role_order", "roles"]

NOT_AVAILABLE = "n/a"
_EXACT = Context(prec=400, rounding=ROUND_HALF_UP)  # every finite double, 3 decimals, without rounding early
_ROLE_WORDS = {"teacher": "teacher", "base": "base model", "student": "student", "sft": "SFT baseline"}
_ROLE_ORDER = tuple(_ROLE_WORDS)


def number(value: Any, places: int = 3) -> str:
    """A signed number as a page shows it (the rule in this module's docstring), ``places`` decimals."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NOT_AVAILABLE
    try:
        exact = Decimal(float(value))  # a JSON number is a double in the browser: the same value here
    except OverflowError:  # an integer beyond the double range; the browser reads it as Infinity
        return NOT_AVAILABLE
    if not exact.is_finite():
        return NOT_AVAILABLE
    text = f"{exact.quantize(Decimal(1).scaleb(-places), context=_EXACT):f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


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
    return metric is not None and diagnostics.at_floor(estimate.value for estimate in metric.roles.values())


def role_order(role: str) -> tuple[int, str]:
    """Sort key of roles: teacher, base, student, sft, then the others (``student@int8``...) by name."""
    return (_ROLE_ORDER.index(role) if role in _ROLE_ORDER else len(_ROLE_ORDER), role)


def roles(predicate: Predicate) -> list[str]:
    """The columns of a metrics table: teacher, base, student, sft, then every other role a run scored."""
    scored = {role for run in predicate.runs for role in _mapping(run.summary.get("scores"))}
    return sorted(scored | set(_ROLE_ORDER), key=role_order)


def figures(predicate: Predicate, files: Mapping[str, bytes] | None = None) -> dict[str, str]:
    """Every headline figure of a signed predicate: key -> the exact string a page shows.

    The predicate is the one a receipt's verified statement carries: its schema makes ``model``'s names,
    the gate verdict and each run's pack id text. ``summary`` objects are free-form, so whatever they hold
    is read defensively (verify.js reads every part so, from the statement's JSON). ``files`` (the
    verified subject bytes) adds the figures of the results and footprint files (the module docstring):
    read as JSON, as the browser reads them, never through the typed models, so the two agree key for key.
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
    if files is not None:
        shown.update(_evidence(predicate, files))
    return shown


def _json(files: Mapping[str, bytes], name: Any) -> Mapping[str, Any]:
    """A signed JSON file as an object (``{}`` when it is missing or not an object: read defensively)."""
    data = files.get(name) if isinstance(name, str) else None
    try:  # as JSON.parse: NaN and Infinity are not JSON (a verified file holds none)
        return _mapping(json.loads(data, parse_constant=_not_json)) if data is not None else {}
    except ValueError:
        return {}


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _put(shown: dict[str, str], key: str, value: Any, places: int = 3) -> None:
    """Add a figure only where the signed value is a number (a key present in Python is present in JS)."""
    text = number(value, places)
    if text != NOT_AVAILABLE:
        shown[key] = text


def _ci(value: Any) -> tuple[Any, Any]:
    return (value[0], value[1]) if isinstance(value, list) and len(value) == 2 else (None, None)


def _evidence(predicate: Predicate, files: Mapping[str, bytes]) -> dict[str, str]:
    """The figures of the signed results and footprint files (the keys in the module docstring)."""
    shown: dict[str, str] = {}
    for run in predicate.runs:
        key = f"runs.{run.pack.id}"
        results = _json(files, run.results)
        primary = results.get("primary_metric")
        every = _mapping(_mapping(results.get("metrics")).get("all"))
        metric = _mapping(every.get(primary)) if isinstance(primary, str) else {}
        kept = _mapping(_mapping(metric.get("retention")).get("student"))
        low, high = _ci(kept.get("ci95"))
        _put(shown, f"{key}.retention.low", low)
        _put(shown, f"{key}.retention.high", high)
        gain = _mapping(_mapping(metric.get("differences")).get("student-sft"))
        _put(shown, f"{key}.vs_sft", gain.get("value"))
        low, high = _ci(gain.get("ci95"))
        _put(shown, f"{key}.vs_sft.low", low)
        _put(shown, f"{key}.vs_sft.high", high)
    for number_, entry in enumerate(predicate.footprints):
        doc = _json(files, entry.file)
        key = f"footprints.{number_}"
        points = doc.get("points")
        for point in points if isinstance(points, list) else []:
            point = _mapping(point)
            if point.get("status") != "ok" or not isinstance(point.get("id"), str):
                continue
            at, metrics = f"{key}.{point['id']}", _mapping(point.get("metrics"))
            rss: Any = _mapping(point.get("memory")).get("peak_rss_bytes")
            _put(shown, f"{at}.peak_rss_gb", rss / 1e9 if number(rss) != NOT_AVAILABLE else None, 2)
            _put(shown, f"{at}.decode_tps", _mapping(metrics.get("decode_tps")).get("p50"), 1)
            _put(shown, f"{at}.ttft_p50", _mapping(metrics.get("ttft_s")).get("p50"))
            _put(shown, f"{at}.ttft_p95", _mapping(metrics.get("ttft_s")).get("p95"))
        price = _mapping(_mapping(doc.get("settings")).get("price"))
        if number(price.get("per_hour")) != NOT_AVAILABLE:
            _put(shown, f"{key}.cost_per_1k", _mapping(doc.get("summary")).get("cost_per_1k_calls"), 4)
    return shown
