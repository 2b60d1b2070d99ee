"""Imports run one way: the modules of gradlint import each other without a cycle, and no module imports
the package it belongs to (a package's __init__ imports its modules, never the other way round).

Every import counts, those inside functions included (a lazy import still closes a circle when it
runs), except those under `if TYPE_CHECKING:`, which never run and only name types for annotations;
for the own-package rule even those count.
"""
from __future__ import annotations

import ast
from pathlib import Path

import gradlint
from gradlint.catalog import CODES
from gradlint.checks import all_rules

ROOT = Path(gradlint.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path, with_type_checking: bool) -> set[str]:
    """The gradlint modules `name` imports: `from pkg import mod` names the module, `from pkg import X` the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test) and not with_type_checking:
                for stmt in child.orelse:
                    visit_one(stmt)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in MODULES else base)
        else:
            visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in MODULES and m != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = walk(start)
            if found:
                return found
    return None


def test_the_imports_that_run_have_no_cycle():
    graph = {name: _imports(name, path, with_type_checking=False) for name, path in MODULES.items()}
    assert _cycle(graph) is None


def test_no_module_imports_its_own_package():
    offenders = [
        (name, package)
        for name, path in MODULES.items()
        if path.name != "__init__.py"
        for package in [name.rpartition(".")[0]]
        if package in _imports(name, path, with_type_checking=True)
    ]
    assert offenders == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_catalog_lists_exactly_the_registered_rules():
    assert sorted(CODES) == [rule.code for rule in all_rules()]
