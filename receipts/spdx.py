"""SPDX licence expressions, parsed without ever raising: ids, ``AND``, ``OR``, ``WITH`` and parentheses.

``AND`` binds tighter than ``OR`` (SPDX spec, annex D); operators are upper case. Expressions are bounded
(length, number of ids, nesting): what cannot be read is ``("bad", why)``, which receipts.licences
evaluates to unknown.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_DEPTH", "MAX_EXPRESSION_CHARS", "MAX_EXPRESSION_TERMS", "Expr", "parse_expression"]

MAX_EXPRESSION_CHARS = 1000
MAX_EXPRESSION_TERMS = 64
MAX_DEPTH = 16

Expr = tuple[Any, ...]
"""``("id", text)``, ``("with", id, exc)``, ``("and", [Expr])``, ``("or", [Expr])``, ``("bad", why)``."""


def parse_expression(text: str) -> Expr:
    """Parse an SPDX licence expression (ids, ``AND``, ``OR``, ``WITH``, parentheses).

    Never raises: what cannot be read is ``("bad", why)``, which evaluates to unknown.
    """
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        return ("bad", f"longer than {MAX_EXPRESSION_CHARS} characters")
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    ids = [t for t in tokens if t not in ("AND", "OR", "WITH", "(", ")")]
    if not ids:
        return ("bad", "names no licence")
    if len(ids) > MAX_EXPRESSION_TERMS:
        return ("bad", f"more than {MAX_EXPRESSION_TERMS} licence ids")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def operand(depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH}")
        token = peek()
        if token == "(":  # noqa: S105 (a parenthesis, not a password)
            take()
            inner = disjunction(depth + 1)
            if peek() != ")":
                raise ValueError("a parenthesis is not closed")
            take()
            return inner
        if token is None or token in ("AND", "OR", "WITH", ")"):
            raise ValueError(f"expected a licence id, found {token or 'the end'}")
        name = take()
        if peek() == "WITH":
            take()
            exception = peek()
            if exception is None or exception in ("AND", "OR", "WITH", "(", ")"):
                raise ValueError("WITH must be followed by an exception id")
            return ("with", name, take())
        return ("id", name)

    def chain(op: str, inner: Any, depth: int) -> Expr:
        parts = [inner(depth)]
        while peek() == op.upper():
            take()
            parts.append(inner(depth))
        return parts[0] if len(parts) == 1 else (op, parts)

    def conjunction(depth: int) -> Expr:
        return chain("and", operand, depth)

    def disjunction(depth: int) -> Expr:
        return chain("or", conjunction, depth)

    try:
        tree = disjunction(0)
        if pos != len(tokens):
            raise ValueError(f"unexpected {tokens[pos]!r}")
    except ValueError as exc:
        return ("bad", str(exc))
    return tree
