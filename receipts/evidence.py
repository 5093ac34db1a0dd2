"""The signed numbers follow from the signed evidence: what ``receipts verify`` re-derives (DESIGN §11).

A signature says who published a receipt, not that its numbers are right. `number_problems` recomputes,
from the signed files alone, every number a receipt claims:

- each run's results.json from its examples log (`receipts.derive.rederive`: every metric, CI, retention,
  fidelity, calibration, diagnostic, the pack's gate verdict and the summary);
- each footprint's statistics, rooflines, energy figures and summary from its raw samples and recorded
  facts (`receipts.footprint.rederive_footprint`, the code ``receipts bench`` wrote them with);
- each run summary and footprint summary the statement carries, from the file it summarises;
- the statement's gate verdict (the card's overrides, cost from the footprints) and its quantization
  table (`receipts.sign.signed_gate`, `receipts.quantization.quantization_table`: the code that signed them).

Numbers compare within `receipts.derive.TOLERANCE`; anything else must be equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from receipts.documents import parse_json
from receipts.errors import InputError, ReceiptsError, SchemaError

if TYPE_CHECKING:
    from pathlib import Path

    from receipts.formats import Card, Footprint, Results

__all__ = ["MAX_ROWS", "SignedDocument", "examples_rows", "input_problems", "number_problems"]

MAX_ROWS = 2_000_000
"""The most examples rows re-derived per run (each CI resamples every row 1,000 times)."""

SHOWN = 5
"""Differences listed per document; the rest are counted."""


@dataclass(frozen=True)
class SignedDocument:
    """A signed JSON file as verified: its bundle name, the value as written and its typed view."""

    name: str
    value: Mapping[str, Any]
    typed: Any


def examples_rows(data: bytes, name: str) -> list[Any]:
    """An examples log's rows, one strict JSON value per line (blank lines skipped).

    Raises:
        InputError: a line is not JSON receipts accepts, or there are more than `MAX_ROWS` rows.
    """
    rows: list[Any] = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        if len(rows) >= MAX_ROWS:
            raise InputError(f"more than {MAX_ROWS:,} rows", file=name, hint="re-derivation stops here")
        rows.append(parse_json(line, file=f"{name}, line {number}"))
    return rows


def _rank(difference: str) -> tuple[bool, bool, bool]:
    # a point estimate before an interval, a role's number before a difference or a test between roles
    return "ci95" in difference, ".differences." in difference, ".mcnemar." in difference


def _listed(name: str, found: Sequence[str]) -> str:
    shown = "; ".join(sorted(found, key=_rank)[:SHOWN])
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return f"{name}: {shown}{more}"


def _run_problems(entry: Mapping[str, Any], results: SignedDocument, examples: bytes) -> list[str]:
    from receipts.derive import differences, rederive

    name = results.name
    try:
        rows = examples_rows(examples, str(entry["examples"]))
        found = rederive(results.value, rows)
    except InputError as exc:
        return [f"{entry['examples']}: {exc.summary()}"]
    except SchemaError as exc:  # the facts it states and its rows give no valid results document
        return [f"{name}: its numbers cannot be re-derived from {entry['examples']}: {exc.summary()}"]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
        return [
            f"{name}: its numbers cannot be re-derived from {entry['examples']} ({type(exc).__name__}: {exc})"
        ]
    problems = [_listed(name, found)] if found else []
    summary = differences(entry.get("summary"), results.value.get("summary"), "summary")
    if summary:
        problems.append(_listed(f"the statement's summary of {name}", summary))
    return problems


def _footprint_problems(entry: Mapping[str, Any], footprint: SignedDocument) -> list[str]:
    from receipts.derive import differences
    from receipts.footprint import rederive_footprint

    name = footprint.name
    try:
        found = rederive_footprint(footprint.value)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
        why = f"{type(exc).__name__}: {exc}"
        problems = [f"{name}: its numbers cannot be re-derived from its samples ({why})"]
    else:
        problems = [_listed(name, found)] if found else []
    summary = differences(entry.get("summary"), footprint.value.get("summary"), "summary")
    if summary:
        problems.append(_listed(f"the statement's summary of {name}", summary))
    return problems


def number_problems(
    predicate: Mapping[str, Any],
    card: Card,
    runs: Sequence[tuple[SignedDocument, bytes]],
    footprints: Sequence[SignedDocument],
) -> list[str]:
    """Every signed number that does not follow from the signed evidence, each naming both values.

    ``predicate`` is the statement's predicate as written; ``runs`` pairs each run's results (in the
    predicate's order) with its examples log's bytes; ``footprints`` follow the predicate's order.
    """
    from receipts.derive import differences
    from receipts.quantization import as_signed_before_21, quantization_table
    from receipts.sign import signed_gate

    problems = []
    for entry, (results, examples) in zip(predicate["runs"], runs, strict=True):
        problems += _run_problems(entry, results, examples)
    for entry, footprint in zip(predicate["footprints"], footprints, strict=True):
        problems += _footprint_problems(entry, footprint)
    typed_runs: list[Results] = [results.typed for results, _ in runs]
    typed_footprints: list[Footprint] = [f.typed for f in footprints]
    gate = differences(predicate.get("gate"), signed_gate(card, typed_runs, typed_footprints), "gate")
    if gate:
        problems.append(_listed("the statement's gate", gate))
    signed = predicate.get("quantization")
    table = as_signed_before_21(signed, quantization_table(typed_runs, typed_footprints))
    quantization = differences(signed, table or None, "quantization")
    if quantization:  # signed before a natively run student had its own row: that receipt's rule
        legacy = as_signed_before_21(signed, quantization_table(typed_runs, typed_footprints, legacy=True))
        if not differences(signed, legacy or None, "quantization"):
            quantization = []
    if quantization:
        problems.append(_listed("the statement's quantization table", quantization))
    return problems


def input_problems(runs: Sequence[Path], footprints: Sequence[Path]) -> list[str]:
    """What re-derivation says of run folders and footprint files about to be signed (``receipts sign``).

    The same checks as `number_problems` on a run's results.json against its examples log and on a
    footprint against its samples; the statement's own gate, summaries and quantization table are computed
    by the signer from these files, so they follow once these do. An input that cannot be read is skipped:
    the signer refuses it with its own message.
    """
    from receipts.documents import load_document, read_bytes
    from receipts.formats import Footprint, Results

    problems: list[str] = []
    for run in runs:
        try:
            _, value = load_document(run / "results.json", what="results file")
            results = Results.parse(value, file=run / "results.json")
            examples = read_bytes(run / results.examples.path, what="examples log")
        except ReceiptsError:
            continue
        entry = {"examples": str(run / results.examples.path), "summary": value.get("summary")}
        problems += _run_problems(entry, SignedDocument(str(run / "results.json"), value, results), examples)
    for path in footprints:
        try:
            _, value = load_document(path, what="footprint file")
            footprint = Footprint.parse(value, file=path)
        except ReceiptsError:
            continue
        problems += _footprint_problems(value, SignedDocument(str(path), value, footprint))
    return problems
