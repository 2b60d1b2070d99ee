"""A worker's side of a run: read, parse and check files (the parent only discovers, caches and reports,
and never imports this module: it and libcst are most of a short run's start-up, which a worker started
early spends while the parent reads its options)."""
from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

from gradlint.config import Settings
from gradlint.facts.project import Disk, Project
from gradlint.findings import Finding, syntax_finding
from gradlint.fix.apply import FileFix, file_encoding, fix_file
from gradlint.lint import ParserLimit, check_unit
from gradlint.source import SourceError, read_unit


def lint_file(
    path: str, display: str, settings: Settings, project: Project
) -> tuple[list[Finding], list[str], str | None, str | None]:
    """Lint one file; returns its findings, the neighbouring files its findings depend on, a one-line
    description of an internal error (gradlint failed on the file), and one of why a valid file could
    not be checked."""
    try:
        unit, data = read_unit(Path(path), display)
    except SourceError as exc:
        return [syntax_finding(display, str(exc), exc.line, exc.column)], [], None, None
    if unit is None:
        return [], [], None, None
    try:
        findings = check_unit(unit, settings, project, Path(path))
    except ParserLimit as exc:
        return [], [], None, f"{display}: not checked: {exc}"
    except Exception as exc:  # a bug of ours must not stop the other files from being linted
        return [], [], f"{display}: internal error, file not checked ({type(exc).__name__}: {exc}); please report it", None
    if any(f.fix is not None for f in findings) and file_encoding(data) is None:
        # --fix leaves such a file alone: its findings must not claim a fix.
        findings = [replace(f, fix=None) for f in findings]
    return findings, sorted(project.depends(Path(path))), None, None


def fix_one(path: str, display: str, settings: Settings, project: Project) -> tuple[FileFix | None, str | None]:
    try:
        return fix_file(Path(path), settings, display), None
    except ParserLimit:
        return None, None  # the lint that follows says why the file was not checked
    except Exception as exc:
        return None, f"{display}: internal error, file not fixed ({type(exc).__name__}: {exc}); please report it"


def work(settings: Settings, fixing: bool, batch: list[tuple[str, str]], avoid: frozenset, notify) -> None:
    """A worker's batch: the files parsed for one file (as neighbours) serve the next, each file gets a
    project of its own (its findings never depend on the files before it); nothing outlives the batch
    (a later run must see edited neighbours)."""
    disk = Disk()
    # The syntax trees a batch holds are millions of objects: with the cycle collector on, each of
    # its full passes walks them all (measured: a third of the run). The batch is freed at its end.
    gc.disable()
    try:
        for position, (path, display) in enumerate(batch):
            notify(("start", position))
            project = Project(avoid=avoid, watch=notify, disk=disk)
            if fixing:
                result = fix_one(path, display, settings, project)
            else:
                result = lint_file(path, display, settings, project)
                project.release()  # no cycle left for the collector, whose pass walks every syntax tree
            notify(("done", position, result))
    finally:
        gc.enable()
