"""Text edits for autofixes, placed by the positions of nodes the facts hold.

Edits are character offsets into the file's text, so the rest of the file (comments, formatting, line
endings) stays exactly as it was.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.names import lookup
from gradlint.findings import Edit

if TYPE_CHECKING:
    from gradlint.facts import FileFacts
    from gradlint.facts.index import Scope

# Only these end a line for Python's tokenizer (str.splitlines also splits on \x0c, \u2028 ...).
_LINE_END = re.compile(r"\r\n|\r|\n")


class SourceText:
    """Offsets of line starts in a file's text, and its newline."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in _LINE_END.finditer(text)]
        first = _LINE_END.search(text)
        self.newline = first.group() if first else "\n"

    def offset(self, line: int, column: int) -> int:
        """Offset of a 1-based line and 1-based column."""
        return self.starts[line - 1] + column - 1

    def line_text(self, line: int) -> str:
        end = self.starts[line] if line < len(self.starts) else len(self.text)
        return self.text[self.starts[line - 1] : end]


def source_of(facts: "FileFacts") -> SourceText:
    if facts.source_text is None:
        raise ValueError("fixes need the file's text")
    cached = getattr(facts, "_source_text", None)
    if cached is None:
        cached = SourceText(facts.source_text)
        facts._source_text = cached
    return cached


def statement_start(facts: "FileFacts", stmt: cst.CSTNode) -> tuple[int, str] | None:
    """(offset of the statement's line, its indentation), when the statement begins its own line."""
    src = source_of(facts)
    line, column, _, _ = facts.span(stmt)
    prefix = src.line_text(line)[: column - 1]
    if prefix.strip():
        return None  # after a `;` or on the line of a compound statement header
    return src.starts[line - 1], prefix


def insert_lines_before(facts: "FileFacts", stmt: cst.CSTNode, lines: list[str]) -> Edit | None:
    """Insert statements, indented like `stmt`, on the lines before it and the comment lines that describe it."""
    start = statement_start(facts, stmt)
    if start is None:
        return None
    offset, indent = start
    src = source_of(facts)
    line = facts.span(stmt)[0]
    while line > 1 and _describes(src.line_text(line - 1), indent):
        line -= 1
        offset = src.starts[line - 1]
    return Edit(offset, offset, "".join(f"{indent}{text}{src.newline}" for text in lines))


def _describes(line: str, indent: str) -> bool:
    """A comment line at the statement's own indentation (not the end of a string that happens to hold a `#`)."""
    body = line[len(indent) :]
    return line.startswith(indent) and body.startswith("#") and '"""' not in body and "'''" not in body


def statement_lines(facts: "FileFacts", stmt: cst.CSTNode) -> tuple[int, int] | None:
    """(start, end) offsets of the whole lines a simple statement fills, when it fills them alone."""
    src = source_of(facts)
    line, column, end_line, end_column = facts.span(stmt)
    if src.line_text(line)[: column - 1].strip():
        return None
    rest = src.line_text(end_line)[end_column - 1 :]
    if rest.strip() and not rest.strip().startswith("#"):
        return None
    end = src.starts[end_line] if end_line < len(src.starts) else len(src.text)
    return src.starts[line - 1], end


def replace_node(facts: "FileFacts", node: cst.CSTNode, text: str) -> Edit:
    src = source_of(facts)
    line, column, end_line, end_column = facts.span(node)
    return Edit(src.offset(line, column), src.offset(end_line, end_column), text)


def add_keyword(facts: "FileFacts", call: cst.Call, keyword: str) -> Edit:
    """Add `keyword` (e.g. "clipnorm=1.0") as the last argument of a call."""
    src = source_of(facts)
    if call.args:
        last = call.args[-1]
        line, _, end_line, end_column = facts.span(last.value)
        end = src.offset(end_line, end_column)
        comma = src.text.find(",", end)
        if isinstance(last.comma, cst.Comma) and comma >= 0 and facts.span(call)[0] != line:
            # One argument per line with a trailing comma: add ours as a line of its own, alike.
            first = src.line_text(line)
            indent = first[: len(first) - len(first.lstrip(" \t"))]
            return Edit(comma + 1, comma + 1, f"{src.newline}{indent}{keyword},")
        return Edit(end, end, f", {keyword}")
    _, _, end_line, end_column = facts.span(call)
    closing = src.offset(end_line, end_column) - 1  # the `)`
    return Edit(closing, closing, keyword)


def torch_module(facts: "FileFacts", scopes: list["Scope"]) -> tuple[str, list[Edit]] | None:
    """The name the module already gives `torch` (`torch`, or an alias such as `th`) where it means torch
    in every one of `scopes`, else `torch` and the edit that imports it; None when `torch` names something
    else there."""
    aliases = [
        b for bindings in facts.index.scope.bindings.values() for b in bindings
        if b.kind == "import" and b.qualname == "torch"
    ]
    for binding in sorted(aliases, key=lambda b: b.name != "torch"):
        if all(lookup(binding.name, scope) is binding for scope in scopes):
            return binding.name, []
    if any(lookup("torch", scope) is not None for scope in scopes):
        return None
    return "torch", [_import_torch(facts)]


def _import_torch(facts: "FileFacts") -> Edit:
    """`import torch` after the module docstring and the `__future__` imports (which must come first):
    before the next statement when it is an import or the file has neither, else on the line after them."""
    src = source_of(facts)
    line = f"import torch{src.newline}"
    body = facts.module.body
    head = 1 if body and _is_docstring(body[0]) else 0
    while head < len(body) and _is_future_import(body[head]):
        head += 1
    if head < len(body) and (head == 0 or _is_import(body[head])):
        start = statement_start(facts, body[head])
        if start is not None:
            return Edit(start[0], start[0], line)
    if head == 0:
        return Edit(0, 0, line)
    end_line = facts.span(body[head - 1])[2]
    end = src.starts[end_line] if end_line < len(src.starts) else len(src.text)
    return Edit(end, end, line if src.text[:end].endswith(("\n", "\r")) else src.newline + line)


def _is_import(stmt: cst.CSTNode) -> bool:
    return type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) in (cst.Import, cst.ImportFrom)


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        type(stmt) is cst.SimpleStatementLine
        and type(stmt.body[0]) is cst.Expr
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_future_import(stmt: cst.CSTNode) -> bool:
    if type(stmt) is not cst.SimpleStatementLine or type(stmt.body[0]) is not cst.ImportFrom:
        return False
    module = stmt.body[0].module
    return type(module) is cst.Name and module.value == "__future__"


def move_before(facts: "FileFacts", stmt: cst.CSTNode, target: cst.CSTNode) -> list[Edit] | None:
    """Move a one-line-or-more simple statement to the line before `target`, re-indented like it."""
    lines = statement_lines(facts, stmt)
    start = statement_start(facts, target)
    if lines is None or start is None:
        return None
    src = source_of(facts)
    block = src.text[lines[0] : lines[1]]
    old_indent = block[: len(block) - len(block.lstrip(" \t"))]
    new_indent = start[1]
    moved = "".join(
        new_indent + line[len(old_indent) :] if line.startswith(old_indent) else line
        for line in block.splitlines(keepends=True)
    )
    if not moved.endswith(("\n", "\r")):
        moved += src.newline
    return [Edit(lines[0], lines[1], ""), Edit(start[0], start[0], moved)]
