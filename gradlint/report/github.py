"""The github format: GitHub Actions workflow commands, which become annotations on a PR."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from gradlint.findings import Finding, Severity
from gradlint.report.paths import posix, printable, relative_to_root

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    # '%' first, or the escapes added after it would be escaped again.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    # ':' and ',' would otherwise end the property list or the property itself.
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: Sequence[Finding], *, root: Path | None = None) -> str:
    return "".join(command(f, root) + "\n" for f in findings)


def command(finding: Finding, root: Path | None = None) -> str:
    path = printable(relative_to_root(finding.path, root) or posix(finding.path))
    props = [("file", path), ("line", str(finding.line)), ("col", str(finding.column))]
    if finding.end_line >= finding.line:
        props.append(("endLine", str(finding.end_line)))
        if finding.end_line > finding.line or finding.end_column >= finding.column:
            props.append(("endColumn", str(finding.end_column)))
    props.append(("title", f"{finding.code} ({finding.name})"))
    message = finding.message
    if finding.help is not None:
        message += f"\nhelp: {finding.help}"
    if finding.cell is not None:
        # GitHub only knows lines of the .ipynb file; the cell tells the reader where to look.
        message = f"cell {finding.cell}: {message}"
    prop_text = ",".join(f"{key}={escape_property(value)}" for key, value in props)
    return f"::{LEVELS[finding.severity]} {prop_text}::{escape_data(printable(message))}"
