"""The command line: check, probe, rules, explain."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from gradlint.version import __version__

app = typer.Typer(
    name="gradlint",
    help="Find the causes of exploding gradients in training code, and prove them.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def fail(message: str, code: int = EXIT_USAGE) -> "typer.Exit":
    """Print a one-line error on stderr and leave with `code`."""
    typer.echo(f"gradlint: error: {message}", err=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradlint {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """gradlint: a linter and a runtime probe for exploding gradients."""


def _codes(values: Optional[List[str]]) -> tuple[str, ...]:
    codes: list[str] = []
    for value in values or []:
        codes.extend(c.strip().upper() for c in value.split(",") if c.strip())
    return tuple(codes)


@app.command()
def check(
    paths: List[Path] = typer.Argument(None, help="Files or folders to lint (default: .)."),
    select: Optional[List[str]] = typer.Option(None, "--select", help="Codes or prefixes to run (replaces the configured set)."),
    ignore: Optional[List[str]] = typer.Option(None, "--ignore", help="Codes or prefixes to skip."),
    extend_select: Optional[List[str]] = typer.Option(None, "--extend-select", help="Codes or prefixes to add."),
    output_format: str = typer.Option("text", "--format", help="text, json, sarif or github."),
    text_style: str = typer.Option(
        "full", "--output-format", help="For text: full (source and help) or concise (one line a finding)."
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report to a file."),
    statistics: bool = typer.Option(False, "--statistics", help="Show counts per rule instead of each finding."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the cache."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Worker processes (default: all cores)."),
    exit_zero: bool = typer.Option(False, "--exit-zero", help="Exit 0 even when findings fail the run."),
    fix: bool = typer.Option(False, "--fix", help="Apply the safe fixes and write the files (atomically)."),
    diff: bool = typer.Option(False, "--diff", help="Show the safe fixes as a unified diff; write nothing."),
    exit_non_zero_on_fix: bool = typer.Option(
        False, "--exit-non-zero-on-fix", help="With --fix, exit 1 when any file was fixed, even if nothing remains."
    ),
    config: Optional[Path] = typer.Option(None, "--config", help="Read settings from this file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print findings only, no summary."),
    force_exclude: bool = typer.Option(
        False, "--force-exclude", help="Files named on the command line honour `exclude` too (as pre-commit passes them)."
    ),
) -> None:
    """Lint training code for the causes of exploding gradients."""
    from dataclasses import replace

    from gradlint.catalog import CODES
    from gradlint.config import ConfigError, check_code, load_settings
    from gradlint.engine import lint_paths
    from gradlint.report import FORMATS, TEXT_STYLES, render

    if output_format not in FORMATS:
        fail(f"unknown format '{output_format}' (choose from {', '.join(FORMATS)})")
    if text_style not in TEXT_STYLES:
        fail(f"unknown output format '{text_style}' (choose from {', '.join(TEXT_STYLES)})")
    try:
        settings = load_settings(config)
        for option, values in (("--select", select), ("--ignore", ignore), ("--extend-select", extend_select)):
            if values is not None and not _codes(values):
                raise ConfigError(f"{option}: no code given")
            for code in _codes(values):
                check_code(code, list(CODES), option)
                if option == "--ignore" and "GL001".startswith(code) and code != "GL":
                    raise ConfigError(f"{option}: GL001 cannot be ignored (a file that cannot be read or parsed is not checked)")
    except ConfigError as exc:
        fail(str(exc))
    if select:
        settings = replace(settings, select=_codes(select))
    if ignore:
        settings = replace(settings, ignore=settings.ignore + _codes(ignore))
    if extend_select:
        settings = replace(settings, extend_select=settings.extend_select + _codes(extend_select))
    targets = paths or [Path(".")]
    fixed_files = 0
    failed = False
    fix_errors: dict[str, str] = {}
    if fix or diff:
        try:
            fixed_files, failed, fix_errors = _apply_fixes(
                targets, settings, jobs=jobs, write=fix and not diff, force_exclude=force_exclude
            )
        except FileNotFoundError as exc:
            fail(f"path not found: {exc.args[0]}")
        if diff:
            for error in fix_errors.values():
                typer.echo(f"gradlint: error: {_printable(error)}", err=True)
            raise typer.Exit(EXIT_USAGE if failed or fix_errors else EXIT_FINDINGS if fixed_files else EXIT_OK)
        if fixed_files and not quiet:
            # Said before the lint, so that a run that then fails still tells which files changed.
            typer.echo(f"Fixed {fixed_files} file{'s' if fixed_files != 1 else ''}.", err=True)
    try:
        result = lint_paths(targets, settings, jobs=jobs, use_cache=not no_cache, force_exclude=force_exclude)
    except FileNotFoundError as exc:
        fail(f"path not found: {exc.args[0]}")
    color = (
        output is None and output_format == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    text = render(
        result.findings,
        output_format,
        rules=_rules() if output_format == "sarif" else (),
        files_checked=result.files_checked,
        color=color,
        statistics=statistics,
        root=settings.root,
        files_not_checked=len(result.internal_errors) + len(result.unchecked),
        # --quiet is for hooks and scripts: one line a finding.
        concise=quiet or text_style == "concise",
    )
    if quiet and output_format == "text" and not statistics:
        text = "".join(line + "\n" for line in text.splitlines() if line and ":" in line and " [" in line)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
    # A file the fixes failed on is said once: by the lint, when it failed there too.
    linted_errors = {display for display in fix_errors for error in result.internal_errors if error.startswith(f"{display}: ")}
    for error in [*result.internal_errors, *(e for d, e in fix_errors.items() if d not in linted_errors)]:
        typer.echo(f"gradlint: error: {_printable(error)}", err=True)
    for warning in result.unchecked:
        typer.echo(f"gradlint: warning: {_printable(warning)}", err=True)
    if result.has_errors or failed or fix_errors:
        raise typer.Exit(EXIT_USAGE)
    failing = any(f.severity.rank >= settings.fail_on.rank for f in result.findings)
    if fix and exit_non_zero_on_fix and fixed_files:
        raise typer.Exit(EXIT_FINDINGS)
    raise typer.Exit(EXIT_FINDINGS if failing and not exit_zero else EXIT_OK)


def _rules():
    # Only SARIF describes the rules; loading them costs most of a short run's start-up.
    from gradlint.checks import all_rules

    return all_rules()


def _apply_fixes(
    paths: list[Path], settings, *, jobs: Optional[int], write: bool, force_exclude: bool
) -> tuple[int, bool, dict[str, str]]:
    """Fix every file under `paths` (or print the diffs when not writing). Returns how many files
    changed, whether a file could not be written (said on stderr; the others go on), and the files
    gradlint failed on, with the error."""
    from gradlint.engine import fix_paths

    fixes, errors = fix_paths(paths, settings, jobs=jobs, force_exclude=force_exclude)
    changed = 0
    failed = False
    for result in fixes:
        if not write:
            sys.stdout.write(result.diff())
            changed += 1
            continue
        try:
            result.write()
        except OSError as exc:
            typer.echo(f"gradlint: error: cannot write {_printable(str(result.path))}: {exc.strerror or exc}", err=True)
            failed = True
            continue
        changed += 1
    return changed, failed, errors


def _printable(text: str) -> str:
    """A file name that is not valid UTF-8 (surrogate escapes) must not crash the message about it."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def rules_folder() -> Path:
    """The rule pages: shipped inside the wheel, or the repository's rules/ folder."""
    here = Path(__file__).resolve().parent
    shipped = here / "rules_pages"
    return shipped if shipped.is_dir() else here.parent / "rules"


@app.command("rules")
def rules_command(
    config: Optional[Path] = typer.Option(None, "--config", help="Read settings from this file."),
) -> None:
    """List every rule: code, name, severity, whether it is enabled, and whether it has an autofix."""
    from rich.console import Console
    from rich.table import Table

    from gradlint.checks import all_rules
    from gradlint.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(str(exc))
    rules = all_rules()
    enabled = settings.enabled_codes([r.code for r in rules])
    table = Table("code", "name", "severity", "enabled", "autofix", "summary")
    for rule in rules:
        table.add_row(
            rule.code, rule.name, rule.severity.value, "yes" if rule.code in enabled else "no",
            "yes" if rule.fixable else "no", rule.summary,
        )
    Console().print(table)


@app.command()
def explain(code: str = typer.Argument(..., help="A rule code, e.g. GL101.")) -> None:
    """Show a rule's page: what it does, why it matters, examples and options."""
    from rich.console import Console
    from rich.markdown import Markdown

    page = rules_folder() / f"{code.upper()}.md"
    if not page.is_file():
        fail(f"no rule {code!r}; `gradlint rules` lists them")
    Console().print(Markdown(page.read_text(encoding="utf-8")))


@app.command()
def server() -> None:
    """Run the Language Server (LSP) over stdio: the findings and fixes of `check` in your editor."""
    try:
        from gradlint.server import main as serve
    except ImportError as exc:
        fail(f"gradlint server needs the lsp extra: pip install 'gradlint[lsp]' ({exc})")
    serve()


def _register_probe() -> None:
    from gradlint.probe.cli import probe

    app.command(
        "probe",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(probe)


def main() -> None:
    _register_probe()
    app()
