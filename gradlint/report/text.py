"""The text format: ruff-style lines for people, with a summary."""
from __future__ import annotations

import io
from collections import Counter
from typing import Sequence

from gradlint.findings import Finding, Severity
from gradlint.report.paths import printable

SEVERITY_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render_text(
    findings: Sequence[Finding],
    *,
    files_checked: int,
    files_not_checked: int = 0,
    color: bool = False,
    statistics: bool = False,
) -> str:
    paint = Painter(color)
    lines = statistics_lines(findings, paint) if statistics else [finding_line(f, paint) for f in findings]
    lines.extend(summary_lines(findings, files_checked, files_not_checked, paint))
    return paint.render(lines)


def location(finding: Finding) -> str:
    if finding.cell is not None:
        # ruff's notebook form: the cell, then line and column within it.
        return f"{printable(finding.path)}:cell {finding.cell}:{finding.line}:{finding.column}"
    return f"{printable(finding.path)}:{finding.line}:{finding.column}"


def finding_line(finding: Finding, paint: Painter) -> str:
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
