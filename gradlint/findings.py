"""Findings: what a rule reports, and how bad it is."""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True)
class Edit:
    """Replace source[start:end] (character offsets into the file's text) by `text`."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Fix:
    description: str
    edits: tuple[Edit, ...] = ()


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    severity: Severity
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    # What is wrong and the evidence; the fix is said in `help`.
    message: str
    fix: Fix | None = None
    # For notebooks: 1-based code cell index; line/column are then within the cell.
    cell: int | None = None
    # How to fix it, in the words of the code's framework (Keras advice for Keras code).
    help: str | None = None

    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity.value,
            "path": self.path,
            "cell": self.cell,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "message": self.message,
            "help": self.help,
            "fix": None
            if self.fix is None
            else {
                "description": self.fix.description,
                "edits": [
                    {"start": e.start, "end": e.end, "text": e.text} for e in self.fix.edits
                ],
            },
        }


# GL001 is the one code the engine reports itself (a file that could not be read, parsed or checked),
# also in the parent process, which does not load the rules.
SYNTAX_ERROR = "syntax-error"


def syntax_finding(path: str, message: str, line: int, column: int) -> Finding:
    return Finding("GL001", SYNTAX_ERROR, Severity.ERROR, path, line, column, line, column, message)
