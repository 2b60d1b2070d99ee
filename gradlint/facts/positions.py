"""Where a node is, without a code generation pass over the whole module.

libcst's PositionProvider generates the code of the whole module to learn where each node is: on a training
script that costs more than parsing it. Python's own parser tells, much faster, the line where each statement
starts. So a node is located by generating the code of the one statement of a block that holds it, with
libcst's own position state (the same answers by construction), and moving those positions to the line Python
gives for that statement.

Only the statements are matched between the two trees, by their place in the blocks (a line of `a; b` is one
libcst statement and two of Python's). The statement that holds a node is the one the caller names (the facts
know it for calls and assignments), or else found by a walk of the nodes that goes only as far as the
statements before the asked node, and remembers what it saw.
"""
from __future__ import annotations

import ast
import dataclasses
from types import SimpleNamespace
from typing import Iterator

import libcst as cst
from libcst.metadata.position_provider import PositionProvidingCodegenState

Span = tuple[int, int, int, int]

# Python's statement class for each libcst compound statement (a mismatch means the two trees were not read
# alike: the caller then falls back to libcst's PositionProvider).
_COMPOUND = {
    cst.FunctionDef: (ast.FunctionDef, ast.AsyncFunctionDef),
    cst.ClassDef: (ast.ClassDef,),
    cst.If: (ast.If,),
    cst.For: (ast.For, ast.AsyncFor),
    cst.While: (ast.While,),
    cst.With: (ast.With, ast.AsyncWith),
    cst.Try: (ast.Try,),
    cst.TryStar: (ast.TryStar,),
    cst.Match: (ast.Match,),
}
_SMALL = {
    cst.Expr: ast.Expr, cst.Assign: ast.Assign, cst.AnnAssign: ast.AnnAssign, cst.AugAssign: ast.AugAssign,
    cst.Return: ast.Return, cst.Pass: ast.Pass, cst.Break: ast.Break, cst.Continue: ast.Continue,
    cst.Del: ast.Delete, cst.Import: ast.Import, cst.ImportFrom: ast.ImportFrom, cst.Global: ast.Global,
    cst.Nonlocal: ast.Nonlocal, cst.Assert: ast.Assert, cst.Raise: ast.Raise,
}
_FIELDS: dict[type, tuple[str, ...]] = {}


class Mismatch(Exception):
    """The statements of the two trees do not pair up."""


def _fields(node_type: type) -> tuple[str, ...]:
    names = _FIELDS.get(node_type)
    if names is None:
        # Whitespace nodes are never asked about; skipping them halves the walk.
        names = _FIELDS[node_type] = tuple(
            f.name for f in dataclasses.fields(node_type) if not f.name.startswith("whitespace")
        )
    return names


class Statement:
    """A statement of a block: the unit whose code is generated to locate what it holds."""

    __slots__ = ("node", "line", "indents", "ranges")

    def __init__(self, node: cst.CSTNode, line: int, indents: tuple[str, ...]) -> None:
        self.node = node
        self.line = line  # where Python says it starts
        self.indents = indents  # the indentation of the blocks around it, outermost first
        self.ranges: dict[cst.CSTNode, Span] | None = None


class Positions:
    """(line, column, end_line, end_column) of nodes of one module, as libcst's PositionProvider gives
    them (columns 1-based here). Raises SyntaxError (and the like) when Python cannot parse the text, and
    Mismatch when the trees do not pair up: the caller then asks libcst."""

    def __init__(self, module: cst.Module, text: str) -> None:
        self.module = module
        self._walk = self._statements(module.body, ast.parse(text).body, ())
        self._met: list[Statement] = []  # the statements paired so far, in source order
        # Each statement met, and each small statement of a line (`a = 1; b()`), by node.
        self._heads: dict[int, Statement] = {}
        self._owner: dict[int, Statement] = {}  # every node of the statements walked so far
        self._walked = 0  # how many of the statements met have been walked

    def span(self, node: cst.CSTNode, within: cst.CSTNode | None = None) -> Span | None:
        """Where `node` is; `within`, the statement that holds it where the caller knows it, spares walking
        every node before it."""
        owner = self._statement(within) if within is not None else None
        found = self._locate(node, owner) if owner is not None else None
        if found is None:
            owner = self._owner_of(node)
            found = self._locate(node, owner) if owner is not None else None
        return found

    def _locate(self, node: cst.CSTNode, owner: Statement) -> Span | None:
        if owner.ranges is None:
            try:
                owner.ranges = self._generate(owner)
            except RecursionError:
                owner.ranges = {}
        if not owner.ranges:
            # An expression nested past Python's recursion limit (libcst generates code recursively): what
            # the statement holds is located at the statement's start, which takes no code to find.
            column = sum(len(indent) for indent in owner.indents) + 1
            return owner.line, column, owner.line, column
        return owner.ranges.get(node)

    def _met_one(self) -> bool:
        statement = next(self._walk, None)
        if statement is None:
            return False
        node = statement.node
        self._met.append(statement)
        self._heads[id(node)] = statement
        # The small statements of a line, and of a block on its header's line (`if x: a()`, located with it).
        lines = [node] if type(node) is cst.SimpleStatementLine else [getattr(node, "body", None)]
        orelse = getattr(node, "orelse", None)
        if type(orelse) is cst.Else:
            lines.append(orelse.body)
        for line in lines:
            if type(line) in (cst.SimpleStatementLine, cst.SimpleStatementSuite):
                for small in line.body:
                    self._heads[id(small)] = statement
        return True

    def _statement(self, head: cst.CSTNode) -> Statement | None:
        while id(head) not in self._heads:
            if not self._met_one():
                return None
        return self._heads[id(head)]

    def _owner_of(self, node: cst.CSTNode) -> Statement | None:
        owner = self._owner.get(id(node))
        while owner is None:
            if self._walked == len(self._met) and not self._met_one():
                return None
            self._own(self._met[self._walked])
            self._walked += 1
            owner = self._owner.get(id(node))
        return owner

    # -- pairing statements ------------------------------------------------------------------

    def _statements(self, body, python: list[ast.stmt], indents: tuple[str, ...]) -> Iterator[Statement]:
        """The statements of a block and of every block inside it, in source order, each with Python's line."""
        at = 0
        for stmt in body:
            if at >= len(python):
                raise Mismatch(type(stmt).__name__)
            first = python[at]
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if at >= len(python) or type(python[at]) is not _SMALL.get(type(small)):
                        raise Mismatch(type(small).__name__)
                    at += 1
                yield Statement(stmt, first.lineno, indents)
                continue
            if not isinstance(first, _COMPOUND.get(type(stmt), ())):
                raise Mismatch(type(stmt).__name__)
            at += 1
            yield Statement(stmt, first.lineno, indents)
            yield from self._inner(stmt, first, indents)
        if at != len(python):
            raise Mismatch("block")

    def _inner(self, stmt, python, indents: tuple[str, ...]) -> Iterator[Statement]:
        """The statements of a compound statement's blocks."""
        if isinstance(stmt, cst.Match):
            if len(stmt.cases) != len(python.cases):
                raise Mismatch("case")
            # The cases are a block of their own, indented under `match`.
            inside = indents + (stmt.indent if stmt.indent is not None else self.module.default_indent,)
            for case, matched in zip(stmt.cases, python.cases):
                yield from self._block(case.body, matched.body, inside)
            return
        yield from self._block(stmt.body, python.body, indents)
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            if len(stmt.handlers) != len(python.handlers):
                raise Mismatch("except")
            for handler, caught in zip(stmt.handlers, python.handlers):
                yield from self._block(handler.body, caught.body, indents)
            if stmt.finalbody is not None:
                yield from self._block(stmt.finalbody.body, python.finalbody, indents)
        orelse = getattr(stmt, "orelse", None)
        if isinstance(orelse, cst.If):
            # `elif`: Python nests it as the only statement of the else branch. Its header is located with
            # the `if` (alone, libcst would write it as an `if`).
            if len(python.orelse) != 1 or not isinstance(python.orelse[0], ast.If):
                raise Mismatch("elif")
            yield from self._inner(orelse, python.orelse[0], indents)
        elif orelse is not None:
            yield from self._block(orelse.body, python.orelse, indents)

    def _block(self, block, python: list[ast.stmt], indents: tuple[str, ...]) -> Iterator[Statement]:
        if isinstance(block, cst.SimpleStatementSuite):
            return  # `if x: a()`: on the header's line, located with the header
        indent = block.indent if block.indent is not None else self.module.default_indent
        yield from self._statements(block.body, python, indents + (indent,))

    # -- what a statement holds --------------------------------------------------------------

    def _own(self, statement: Statement) -> None:
        """Record the statement and the nodes it holds outside its indented blocks (they are statements of
        their own, met next)."""
        owner = self._owner
        stack: list[cst.CSTNode] = [statement.node]
        while stack:
            node = stack.pop()
            owner[id(node)] = statement
            if type(node) is cst.IndentedBlock:
                continue
            for name in _fields(type(node)):
                value = getattr(node, name)
                if isinstance(value, cst.CSTNode):
                    stack.append(value)
                elif type(value) is tuple or type(value) is list:
                    stack.extend(v for v in value if isinstance(v, cst.CSTNode))

    def _generate(self, statement: Statement) -> dict[cst.CSTNode, Span]:
        """Generate the statement's code with libcst's position state, from the block's indentation, and
        move what it records to the statement's line."""
        recorded = SimpleNamespace(_computed={})
        state = PositionProvidingCodegenState(
            default_indent=self.module.default_indent,
            default_newline=self.module.default_newline,
            provider=recorded,
            indent_tokens=list(statement.indents),
        )
        statement.node._codegen(state)
        computed = recorded._computed
        shift = statement.line - computed[statement.node].start.line
        return {
            node: (r.start.line + shift, r.start.column + 1, r.end.line + shift, r.end.column + 1)
            for node, r in computed.items()
        }
