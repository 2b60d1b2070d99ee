"""The text format, ruff-style: each finding as a line, then (in full) its source with a caret span under
the reported range and a help line; a summary at the end."""
from __future__ import annotations

import io
import stat
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Sequence

from gradlint.findings import Finding, Severity
from gradlint.report.paths import printable

SEVERITY_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
GUTTER = "bold blue"
# A reported range longer than this shows its first lines and its last one.
MAX_FRAME_LINES = 4
TAB = "    "


def render_text(
    findings: Sequence[Finding],
    *,
    files_checked: int,
    files_not_checked: int = 0,
    color: bool = False,
    statistics: bool = False,
    concise: bool = False,
) -> str:
    paint = Painter(color)
    if statistics:
        lines = statistics_lines(findings, paint)
    elif concise:
        lines = [finding_line(f, paint) for f in findings]
    else:
        sources = Sources()
        lines = [line for f in findings for line in finding_block(f, sources.lines(f), paint)]
    lines.extend(summary_lines(findings, files_checked, files_not_checked, paint))
    return paint.render(lines)


def location(finding: Finding) -> str:
    if finding.cell is not None:
        # ruff's notebook form: the cell, then line and column within it.
        return f"{printable(finding.path)}:cell {finding.cell}:{finding.line}:{finding.column}"
    return f"{printable(finding.path)}:{finding.line}:{finding.column}"


def finding_line(finding: Finding, paint: Painter) -> str:
    """`path:line:col: CODE [severity] message`, and `[*]` when --fix can fix it."""
    line = (
        paint(location(finding) + ":", "bold")
        + " "
        + paint(finding.code, SEVERITY_STYLES[finding.severity])
        + " "
        + paint(f"[{finding.severity.value}]", SEVERITY_STYLES[finding.severity])
        + " "
        + paint(printable(finding.message))
    )
    if finding.fix is not None:
        line += " " + paint("[*]", "cyan")
    return line


def finding_block(finding: Finding, source: dict[int, str] | None, paint: Painter) -> list[str]:
    """The full form: the finding's line, its source lines with carets under the range, the help, a blank line."""
    lines = [finding_line(finding, paint), *source_frame(finding, source, paint)]
    if finding.help:
        lines.append(paint("help", "bold cyan") + paint(": " + printable(finding.help)))
    lines.append("")
    return lines


def source_frame(finding: Finding, source: dict[int, str] | None, paint: Painter) -> list[str]:
    """`  |`, `12 |     optimizer.step()`, `   |     ^^^^^^^^^^^^^^^^`: the reported lines, each with carets."""
    first, last = finding.line, max(finding.end_line, finding.line)
    if source is None or first not in source:
        return []
    numbers = [n for n in range(first, last + 1) if n in source]
    if len(numbers) > MAX_FRAME_LINES:
        numbers = numbers[: MAX_FRAME_LINES - 1] + [None, numbers[-1]]
    width = len(str(last))
    bar = paint(" " * width + " |", GUTTER)
    out = [bar]
    for number in numbers:
        if number is None:
            out.append(paint("." * width + " |", GUTTER))
            continue
        text = source[number]
        row = paint(f"{number:>{width}} |", GUTTER)
        out.append(row + paint(" " + shown(text)) if text else row)
        start = finding.column if number == first else len(text) - len(text.lstrip()) + 1
        end = finding.end_column if number == finding.end_line else len(text.rstrip()) + 1
        indent, span = cells(text[: start - 1]), cells(text[start - 1 : end - 1])
        if span:
            out.append(bar + " " * (indent + 1) + paint("^" * span, SEVERITY_STYLES[finding.severity]))
    out.append(bar)
    return out


def shown(text: str) -> str:
    """A source line as the terminal should show it: tabs as spaces, control characters as spaces."""
    return "".join(TAB if c == "\t" else " " if _is_control(c) else c for c in printable(text))


def cells(text: str) -> int:
    """Terminal columns `text` takes once shown: wide (East Asian) characters take two, combining marks none."""
    total = 0
    for c in printable(text):
        if c == "\t":
            total += len(TAB)
        elif unicodedata.combining(c) or unicodedata.category(c) == "Cf":
            continue
        else:
            total += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return total


def _is_control(c: str) -> bool:
    return unicodedata.category(c) in ("Cc", "Zl", "Zp")


class Sources:
    """The lines of each reported file, read once, by cell (None for a .py file): {cell: {line: text}}.

    The text is the one the findings were located in (a .py file decoded as Python decodes it, a notebook's
    code cells as gradlint reads them); a file that cannot be read now simply gets no source frame.
    """

    def __init__(self) -> None:
        self.files: dict[str, dict | None] = {}

    def lines(self, finding: Finding) -> dict[int, str] | None:
        if finding.path not in self.files:
            self.files[finding.path] = _read_lines(finding.path)
        found = self.files[finding.path]
        return None if found is None else found.get(finding.cell)


def _read_lines(path: str) -> dict[int | None, dict[int, str]] | None:
    from gradlint.notebook import LINE_END, NotebookError, notebook_code
    from gradlint.source import SourceError, decode_python

    try:
        file = Path(path)
        # A FIFO would block the read and a device never ends: only regular files are shown.
        if not stat.S_ISREG(file.stat().st_mode):
            return None
        data = file.read_bytes()
        if file.suffix == ".ipynb":
            text, where = notebook_code(data)
            cells: dict[int | None, dict[int, str]] = {}
            for (cell, number), line in zip(where, LINE_END.split(text)):
                cells.setdefault(cell, {})[number] = line
            return cells
        text = decode_python(data)
    except (OSError, ValueError, SourceError, NotebookError):
        return None
    return {None: dict(enumerate(LINE_END.split(text), start=1))}


def statistics_lines(findings: Sequence[Finding], paint: Painter) -> list[str]:
    counts = Counter(f.code for f in findings)
    fixes = Counter(f.code for f in findings if f.fix is not None)
    names = {f.code: f.name for f in findings}
    severities = {f.code: f.severity for f in findings}
    # Most frequent first; the code breaks ties so the order is stable.
    ordered = sorted(counts, key=lambda code: (-counts[code], code))
    count_width = max((len(str(n)) for n in counts.values()), default=1)
    code_width = max((len(code) for code in counts), default=0)
    lines = []
    for code in ordered:
        if fixes[code] == counts[code]:
            marker = "[*]"
        elif fixes[code]:
            marker = "[-]"  # only some of them can be fixed automatically
        else:
            marker = "   "
        lines.append(
            f"{str(counts[code]).rjust(count_width)}  "
            + paint(code.ljust(code_width), SEVERITY_STYLES[severities[code]])
            + "  "
            + paint(marker, "cyan")
            + " "
            + paint(names[code])
        )
    return lines


def summary_lines(
    findings: Sequence[Finding], files_checked: int, files_not_checked: int, paint: Painter
) -> list[str]:
    files = plural(files_checked, "file")
    # A file gradlint failed on or skipped may hold findings: then nothing may be said to have passed.
    not_checked = (
        paint(f"{plural(files_not_checked, 'file')} not checked", "bold red") + " (see the messages on stderr)."
    )
    if not findings:
        if files_not_checked:
            return [paint("No findings", "bold") + f" ({files}).", not_checked]
        return [paint("All checks passed!", "bold green") + f" ({files})"]
    by_severity = Counter(f.severity for f in findings)
    breakdown = ", ".join(
        [
            plural(by_severity[Severity.ERROR], "error"),
            plural(by_severity[Severity.WARNING], "warning"),
            f"{by_severity[Severity.INFO]} info",
        ]
    )
    lines = [paint(f"Found {plural(len(findings), 'finding')}", "bold") + f" ({breakdown}) in {files}."]
    fixable = sum(1 for f in findings if f.fix is not None)
    if fixable:
        lines.append(paint("[*]", "cyan") + f" {fixable} fixable with the --fix option.")
    if files_not_checked:
        lines.append(not_checked)
    return lines


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class Painter:
    """Builds lines as plain text, or as rich markup when colour is on.

    Every piece of text goes through the painter, so finding text that looks like
    markup (`[bold]`, `[*]`) is escaped and shows literally.
    """

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, style: str | None = None) -> str:
        if not self.color:
            return text
        from rich.markup import escape

        text = escape(text)
        return f"[{style}]{text}[/{style}]" if style else text

    def render(self, lines: list[str]) -> str:
        if not self.color:
            return "".join(line + "\n" for line in lines)
        from rich.console import Console

        out = io.StringIO()
        # The caller has decided on colour, so NO_COLOR, the terminal width and
        # Jupyter detection must not change the result.
        console = Console(
            file=out,
            force_terminal=True,
            force_jupyter=False,
            color_system="standard",
            no_color=False,
            soft_wrap=True,
            highlight=False,
            emoji=False,
        )
        for line in lines:
            console.print(line)
        return out.getvalue()
