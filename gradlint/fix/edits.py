"""Text edits for autofixes, placed by the positions of nodes the facts hold.

Edits are character offsets into the file's text, so the rest of the file (comments, formatting, line
endings) stays exactly as it was.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.findings import Edit

if TYPE_CHECKING:
    from gradlint.facts import FileFacts

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
    """Insert statements, indented like `stmt`, on the lines before it."""
    start = statement_start(facts, stmt)
    if start is None:
        return None
    offset, indent = start
    newline = source_of(facts).newline
    return Edit(offset, offset, "".join(f"{indent}{line}{newline}" for line in lines))


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


def torch_import(facts: "FileFacts") -> list[Edit]:
    """`import torch` at the top of the imports when the module does not bind `torch` itself."""
    for binding in facts.index.scope.bindings.get("torch", []):
        if binding.kind == "import" and binding.qualname == "torch":
            return []
    body = facts.module.body
    anchor = None
    for stmt in body:
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) is cst.ImportFrom:
            module = stmt.body[0].module
            if module is not None and type(module) is cst.Name and module.value == "__future__":
                anchor = stmt
                continue
        break
    newline = source_of(facts).newline
    if anchor is not None:
        span = statement_lines(facts, anchor)
        if span is None:
            return []
        return [Edit(span[1], span[1], f"import torch{newline}")]
    for stmt in body:
        if type(stmt) is cst.SimpleStatementLine and type(stmt.body[0]) in (cst.Import, cst.ImportFrom):
            start = statement_start(facts, stmt)
            return [] if start is None else [Edit(start[0], start[0], f"import torch{newline}")]
    # No import at all (unusual for training code): after a docstring, else at the top.
    if body and type(body[0]) is cst.SimpleStatementLine and type(body[0].body[0]) is cst.Expr and isinstance(
        body[0].body[0].value, (cst.SimpleString, cst.ConcatenatedString)
    ):
        span = statement_lines(facts, body[0])
        return [] if span is None else [Edit(span[1], span[1], f"import torch{newline}")]
    return [Edit(0, 0, f"import torch{newline}")]


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
