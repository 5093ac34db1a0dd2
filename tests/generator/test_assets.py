"""The stylesheet the catalog ships is whole: every block it opens is closed.

A block left open (a lost ``}`` when two changes meet in receipts.css) is not an error to a browser: every
rule after it silently moves inside an ``@media`` or ``@container`` query and stops applying on most
screens. Nothing else notices, so this counts them, outside comments and strings.
"""

from __future__ import annotations

import re

from receipts.resources import site_dir


def _depths(css: str) -> list[tuple[int, int]]:
    """(line, block depth at the end of that line) for each line, comments and strings removed."""
    code = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), css, flags=re.S)
    code = re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'', '""', code)
    depth, out = 0, []
    for number, line in enumerate(code.split("\n"), start=1):
        for char in line:
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0, f"receipts.css line {number}: a '}}' closes a block that is not open"
        out.append((number, depth))
    return out


def test_every_block_of_the_stylesheet_is_closed() -> None:
    css = (site_dir() / "assets" / "receipts.css").read_text("utf-8")
    depths = _depths(css)
    assert depths[-1][1] == 0, "receipts.css ends inside a block: a '}' is missing"
    # each top-level at-rule starts at depth 0: one opened inside an unclosed block shows where the '}' went
    lines = css.split("\n")
    for number, depth in depths[:-1]:
        following = lines[number].lstrip() if number < len(lines) else ""
        if following.startswith("@") and not lines[number].startswith(" "):
            assert depth == 0, f"receipts.css line {number + 1}: {following[:40]!r} opens inside a block"


def test_the_check_sees_a_missing_brace() -> None:
    broken = "@media (max-width: 1px) {\n  a { color: red; }\n\n.b { color: blue; }\n"
    assert _depths(broken)[-1][1] == 1
    assert _depths("a { content: '}' } /* { */\n")[-1][1] == 0
