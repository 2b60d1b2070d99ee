"""The project's import graph, seen from one file: which file an import names.

Only what Python itself would find is followed: a module or package next to the importing file or up to
MAX_UP folders above it (where a project's root usually is, short of a folder of installed packages), relative
imports, and folders a file adds to `sys.path` with a literal path. Nothing here parses a file: the project
(project.py) reads what is found.
"""
from __future__ import annotations

import os
from pathlib import Path

import libcst as cst

from gradlint.source import import_folders, is_third_party


def module_files(
    module_name: str, from_path: Path, looked_at: set[str], extra: tuple[Path, ...] = ()
) -> list[Path]:
    """The files `module_name` may be, seen from `from_path`: `mod.py` and `mod/__init__.py` in the first
    folder that has either. Every file looked for is added to `looked_at` (a file created later changes
    the answer, so the cache must know it was looked for)."""
    # Strings, not Paths: a run asks this for every import of every file, and a Path costs a parse per join.
    resolved = os.path.realpath(from_path)
    here = os.path.dirname(resolved)
    if module_name.startswith("."):
        dots = len(module_name) - len(module_name.lstrip("."))
        base = here
        for _ in range(dots - 1):
            base = os.path.dirname(base)
        bases = [base]
        parts = module_name.lstrip(".").split(".") if module_name.strip(".") else []
    else:
        bases = [here, *map(str, extra), *map(str, import_folders(Path(here))[1:])]
        parts = module_name.split(".")
    found: list[Path] = []
    for base in bases:
        target = os.path.join(base, *parts)
        for candidate in (target + ".py" if parts else None, os.path.join(target, "__init__.py")):
            if candidate is None or candidate == resolved:
                continue
            looked_at.add(candidate)
            if os.path.isfile(candidate):
                found.append(Path(candidate))
        if found:
            break
    return found


def star_imports(module: cst.Module) -> list[str]:
    """The modules a file imports everything from at its top level (`from model import *`), as names
    resolvable like any import (`.models` for a relative one)."""
    found = []
    for stmt in module.body:
        if type(stmt) is not cst.SimpleStatementLine:
            continue
        for small in stmt.body:
            if type(small) is cst.ImportFrom and isinstance(small.names, cst.ImportStar):
                name = _dotted(small.module) if small.module is not None else ""
                found.append("." * len(small.relative) + (name or ""))
    return [name for name in found if name and not is_third_party(name)]


def path_entries(module: cst.Module, here: Path) -> tuple[Path, ...]:
    """Folders the file adds to `sys.path` at its top level with a literal path (`sys.path.append("lib")`,
    `sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))`), resolved from the file's folder
    `here` (itself resolved)."""
    found = []
    for stmt in module.body:
        if type(stmt) is not cst.SimpleStatementLine:
            continue
        for small in stmt.body:
            call = small.value if type(small) is cst.Expr else None
            if type(call) is not cst.Call or _dotted(call.func) not in ("sys.path.append", "sys.path.insert"):
                continue
            if not call.args:
                continue
            folder = _literal_folder(call.args[-1].value)
            if folder is not None:
                found.append((here / folder).resolve())
    return tuple(found)


def _literal_folder(node: cst.BaseExpression) -> str | None:
    """A literal path, or one joined onto the file's own folder; anything else is unknown."""
    if type(node) is cst.SimpleString:
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    if type(node) is cst.Call and _dotted(node.func) == "os.path.join" and node.args:
        if not _is_file_folder(node.args[0].value):
            return None
        parts = [_literal_folder(a.value) for a in node.args[1:]]
        if any(p is None for p in parts):
            return None
        return str(Path(*parts)) if parts else "."
    if _is_file_folder(node):
        return "."
    return None


def _is_file_folder(node: cst.BaseExpression) -> bool:
    """`os.path.dirname(__file__)`, also of its abspath/realpath."""
    if type(node) is not cst.Call or _dotted(node.func) != "os.path.dirname" or not node.args:
        return False
    inner = node.args[0].value
    if type(inner) is cst.Call and _dotted(inner.func) in ("os.path.abspath", "os.path.realpath") and inner.args:
        inner = inner.args[0].value
    return type(inner) is cst.Name and inner.value == "__file__"


def _dotted(node: cst.CSTNode | None) -> str | None:
    if type(node) is cst.Name:
        return node.value
    if type(node) is cst.Attribute:
        head = _dotted(node.value)
        return f"{head}.{node.attr.value}" if head is not None else None
    return None
