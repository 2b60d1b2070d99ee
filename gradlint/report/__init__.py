"""Reporters: turn sorted findings into the text the user (or a CI service) reads."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gradlint.findings import Finding

if TYPE_CHECKING:
    from gradlint.checks.registry import Rule

FORMATS = ("text", "json", "sarif", "github")
# How the text format shows each finding: with its source and help (full), or on one line (concise).
TEXT_STYLES = ("full", "concise")


def render(
    findings: Sequence[Finding],
    fmt: str,
    *,
    rules: Sequence[Rule],
    files_checked: int,
    files_not_checked: int = 0,
    color: bool = False,
    statistics: bool = False,
    root: Path | None = None,
    concise: bool = False,
) -> str:
    """Render `findings` (already sorted) in output format `fmt`.

    `files_not_checked` (files gradlint failed on or skipped), `color`, `statistics` and `concise` (one line
    a finding, without its source and help) only affect the text format; `root` makes paths relative in the sarif and github formats, which CI services resolve
    against the repository root.
    """
    # Imported here so `import gradlint.report` stays cheap (rich is only needed for text).
    if fmt == "text":
        from gradlint.report.text import render_text

        return render_text(
            findings,
            files_checked=files_checked,
            files_not_checked=files_not_checked,
            color=color,
            statistics=statistics,
            concise=concise,
        )
    if fmt == "json":
        from gradlint.report.json_format import render_json

        return render_json(findings)
    if fmt == "sarif":
        from gradlint.report.sarif import render_sarif

        return render_sarif(findings, rules=rules, root=root)
    if fmt == "github":
        from gradlint.report.github import render_github

        return render_github(findings, root=root)
    raise ValueError(f"unknown output format {fmt!r}; expected one of: {', '.join(FORMATS)}")


__all__ = ["FORMATS", "TEXT_STYLES", "render"]
