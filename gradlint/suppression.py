"""Suppression comments: `# noqa`, `# noqa: GL101,GL402`, `# gradlint: disable-file=GL301`."""
from __future__ import annotations

import re

from gradlint.findings import Finding

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
# Only spaces and tabs inside the comment: a newline would let the next line's text pass for a code.
DISABLE_FILE = re.compile(
    r"#[ \t]*gradlint:[ \t]*disable-file[ \t]*=[ \t]*(?P<codes>[A-Z]+[0-9]*(?:[ \t]*,[ \t]*[A-Z]+[0-9]*)*)",
    re.IGNORECASE,
)
# Only these end a line for Python and for the reported line numbers (str.splitlines also splits at \f, \x1c,
# U+2028 ...).
LINE_END = re.compile(r"\r\n|\r|\n")


def source_lines(text: str) -> list[str]:
    """The lines of a file's text as Python numbers them, for `suppressed`."""
    return LINE_END.split(text)


def _codes(text: str) -> set[str]:
    return {c.upper() for c in re.split(r"[\s,]+", text.strip()) if c}


def file_disabled(text: str) -> set[str]:
    codes: set[str] = set()
    if "gradlint:" not in text:
        return codes
    for match in DISABLE_FILE.finditer(text):
        codes |= _codes(match.group("codes"))
    return codes


def suppressed(finding: Finding, lines: list[str], disabled: set[str]) -> bool:
    """Whether a `disable-file` code or a `# noqa` on the finding's line silences it; `lines` from source_lines."""
    if finding.code in disabled or any(finding.code.startswith(p) for p in disabled):
        return True
    if finding.code == "GL001":
        return False
    # The comment may sit on any line of a multi-line statement's first or last line.
    for number in {finding.line, finding.end_line}:
        if not 1 <= number <= len(lines):
            continue
        line = lines[number - 1]
        if "noqa" not in line.lower():
            continue
        match = NOQA.search(line)
        if match is None:
            continue
        if match.group("codes") is None:
            return True
        if finding.code in _codes(match.group("codes")):
            return True
    return False
