"""The shape issue #16 set for the code: no import loops, no module over 700 lines, no function over 80.

Read from the source with ``ast`` (nothing is imported), so a failure names the module, the function or the
loop. Imports under ``if TYPE_CHECKING:`` are annotations, not imports, and do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("receipts", "runner", "generator")
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _owner(name: str, modules: Collection[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, source: str, modules: Collection[str], *, package: bool = False) -> set[str]:
    """The modules of ``modules`` that ``module`` (its ``source``) imports at run time."""
    package_name = module if package else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package_name.split(".")[: len(package_name.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:  # `from pkg import mod` imports pkg.mod; `from mod import name`, mod
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    owners = {_owner(t, modules) for t in targets}
    return {o for o in owners if o is not None and o != module}


def import_loops(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module in an import graph (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return loops


def test_no_import_loops() -> None:
    graph = {
        m: imports(m, p.read_text("utf-8"), MODULES, package=p.name == "__init__.py")
        for m, p in MODULES.items()
    }
    assert import_loops(graph) == []


def test_the_loop_check_can_fail() -> None:
    """A loop written the way the code writes imports is found; an annotation-only import is not one."""
    modules = {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    a = "from pkg import b\n"
    b = "def f():\n    from pkg.a import thing\n"
    c = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import thing\nimport pkg.b\n"
    graph = {
        "pkg": set(),
        "pkg.a": imports("pkg.a", a, modules),
        "pkg.b": imports("pkg.b", b, modules),
        "pkg.c": imports("pkg.c", c, modules),
    }
    assert graph["pkg.c"] == {"pkg.b"}
    assert import_loops(graph) == [["pkg.a", "pkg.b"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_at_most_700_lines(module: str) -> None:
    lines = len(MODULES[module].read_text("utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[module].relative_to(ROOT)} has {lines} lines"


def test_no_function_over_80_lines() -> None:
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
