"""Checking one source unit: parse it, build its facts, run the enabled rules, apply suppressions."""
from __future__ import annotations

import ast
import re
import warnings
from dataclasses import replace
from pathlib import Path

import libcst as cst

from gradlint.checks import all_rules
from gradlint.checks.context import CheckContext
from gradlint.checks.registry import RULES
from gradlint.config import Settings
from gradlint.facts import FileFacts
from gradlint.facts.project import Project
from gradlint.findings import Finding, syntax_finding
from gradlint.parse import PARSE_ERRORS, parse_module
from gradlint.source import SourceUnit
from gradlint.suppression import file_disabled, source_lines, suppressed


class ParserLimit(Exception):
    """Python reads the file but libcst's parser cannot: the file is valid, gradlint cannot check it."""


# Python ignores a form feed in a line's indentation; libcst rejects one before an indented line.
_FORM_FEED_INDENT = re.compile(r"^[ \t]*\f[ \t\f]*", re.MULTILINE)


def python_error(text: str, path: str, notebook: bool = False) -> SyntaxError | None:
    """Python's own verdict on the source (compile() also rejects what parses, `return` outside a
    function); its warnings are about the user's code and stay quiet."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if notebook else 0  # IPython runs top-level await
    with warnings.catch_warnings():
        # "ignore" also keeps PYTHONWARNINGS=error from turning a SyntaxWarning into an error.
        warnings.simplefilter("ignore")
        try:
            compile(text, path, "exec", flags=flags, dont_inherit=True)
        except SyntaxError as exc:
            return exc
        except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
            return SyntaxError(str(exc))
    return None


def _parse(unit: SourceUnit) -> tuple[cst.Module | None, str, list[Finding]]:
    """The unit's tree and the text it was parsed from, or a GL001 finding.

    Raises ParserLimit when Python accepts what libcst rejects.
    """
    try:
        return parse_module(unit.text), unit.text, []
    except PARSE_ERRORS:
        error = python_error(unit.text, unit.path, unit.cell_lines is not None)
        if error is not None:
            line, column = error.lineno or 1, max(error.offset or 1, 1)
            return None, unit.text, [syntax_finding(unit.path, f"syntax error: {error.msg}", line, column)]
    stripped = _FORM_FEED_INDENT.sub(lambda m: m.group().replace("\f", ""), unit.text)
    if stripped != unit.text:
        try:
            return parse_module(stripped), stripped, []
        except PARSE_ERRORS:
            pass
    raise ParserLimit("libcst's parser cannot read this file, though Python can")


def check_unit(
    unit: SourceUnit, settings: Settings, project: Project | None = None, real_path: Path | None = None
) -> list[Finding]:
    """Parse one source unit, build its facts, and run the enabled rules on them.

    With `real_path`, a tree the project already parsed for that file (as a neighbour of another file)
    is reused rather than parsed again.
    """
    reusable = project is not None and real_path is not None and unit.cell_lines is None
    module = project.tree(real_path, unit.text) if reusable else None
    if module is not None:
        text = unit.text
    else:
        module, text, failed = _parse(unit)
        if module is None:
            return _relocate(failed, unit)
    facts = FileFacts(unit.path, module, project, text)
    if reusable and text == unit.text:
        project.remember(real_path, facts)
    enabled = settings.enabled_codes(list(RULES), unit.path)
    ctx = CheckContext(facts, settings.options)
    findings: list[Finding] = []
    for rule in all_rules():
        if rule.check is None or rule.code not in enabled:
            continue
        findings.extend(rule.check(ctx))
    lines = source_lines(unit.text)
    disabled = file_disabled(unit.text)
    kept = [f for f in findings if not suppressed(f, lines, disabled)]
    if kept:
        # A file Python refuses to compile cannot train: say so, as `python file.py` would, rather than
        # report on (and offer to fix) code that never runs. Only files with findings pay for the compile.
        error = python_error(unit.text, unit.path, unit.cell_lines is not None)
        if error is not None:
            kept = [syntax_finding(unit.path, f"syntax error: {error.msg}", error.lineno or 1, max(error.offset or 1, 1))]
        elif facts.source_text != unit.text:
            # The tree is of a normalised text: its fixes' offsets do not apply to the file.
            kept = [replace(f, fix=None) for f in kept]
    return _relocate(kept, unit)


def _relocate(findings: list[Finding], unit: SourceUnit) -> list[Finding]:
    """Notebook findings: lines of the joined code become (cell, line in cell)."""
    if unit.cell_lines is None:
        return findings
    moved = []
    for f in findings:
        cell, line = unit.locate(f.line)
        _, end_line = unit.locate(f.end_line)
        moved.append(replace(f, line=line, end_line=end_line, fix=None, cell=cell))
    return moved


def lint_source(text: str, path: str = "<string>", settings: Settings | None = None) -> list[Finding]:
    """Lint Python source given as a string (the file need not exist)."""
    unit = SourceUnit(path, text)
    return sorted(check_unit(unit, settings or Settings(), Project()), key=Finding.sort_key)
