"""The engine: files -> facts (process pool, cache) -> checks -> findings."""
from __future__ import annotations

import ast
import gc
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import libcst as cst

from gradlint import __version__
from gradlint.checks.context import CheckContext
from gradlint.checks.registry import RULES, all_rules
from gradlint.config import Settings
from gradlint.facts import FileFacts
from gradlint.facts.project import Project
from gradlint.findings import Edit, Finding, Fix, Severity
from gradlint.source import SourceError, SourceUnit, discover, read_unit
from gradlint.suppression import file_disabled, suppressed

CACHE_DIR = ".gradlint_cache"
# Below this many files, a process pool costs more to start than it saves.
POOL_MIN_FILES = 16
BATCH_MAX = 64


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    internal_errors: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        """A file could not be read, parsed or checked (exit code 2)."""
        return bool(self.internal_errors) or any(f.code == "GL001" for f in self.findings)


def _syntax_finding(path: str, message: str, line: int, column: int) -> Finding:
    rule = RULES["GL001"]
    return Finding("GL001", rule.name, rule.severity, path, line, column, line, column, message)


def _parse_error(exc: cst.ParserSyntaxError, text: str) -> tuple[str, int, int]:
    # libcst only says where it stopped; Python's own parser (asked only on failure) says what
    # is wrong and where, as `python file.py` would.
    try:
        ast.parse(text)
    except SyntaxError as py_exc:
        return f"syntax error: {py_exc.msg}", py_exc.lineno or 1, py_exc.offset or 1
    except (ValueError, RecursionError, MemoryError):
        pass
    return "syntax error: libcst cannot parse this construct", exc.raw_line, exc.raw_column + 1


def check_unit(
    unit: SourceUnit, settings: Settings, project: Project | None = None, real_path: Path | None = None
) -> list[Finding]:
    """Parse one source unit, build its facts, and run the enabled rules on them.

    With `real_path`, facts the project already built for that file (as a neighbour of another
    file) are reused rather than parsed again.
    """
    facts = project.known(real_path) if project is not None and real_path is not None else None
    if facts is not None and facts.source_text == unit.text and unit.cell_lines is None:
        facts.path = unit.path
    else:
        try:
            module = cst.parse_module(unit.text)
        except cst.ParserSyntaxError as exc:
            message, line, column = _parse_error(exc, unit.text)
            return _relocate([_syntax_finding(unit.path, message, line, column)], unit)
        except RecursionError:
            return [_syntax_finding(unit.path, "syntax error: nesting too deep to parse", 1, 1)]
        facts = FileFacts(unit.path, module, project, unit.text)
        if project is not None and real_path is not None and unit.cell_lines is None:
            project.remember(real_path, facts)
    enabled = settings.enabled_codes(list(RULES), unit.path)
    ctx = CheckContext(facts, settings.options)
    findings: list[Finding] = []
    for rule in all_rules():
        if rule.check is None or rule.code not in enabled:
            continue
        findings.extend(rule.check(ctx))
    lines = unit.text.splitlines()
    disabled = file_disabled(unit.text)
    kept = [f for f in findings if not suppressed(f, lines, disabled)]
    return _relocate(kept, unit)


def _relocate(findings: list[Finding], unit: SourceUnit) -> list[Finding]:
    """Notebook findings: lines of the joined code become (cell, line in cell)."""
    if unit.cell_lines is None:
        return findings
    moved = []
    for f in findings:
        cell, line = unit.locate(f.line)
        _, end_line = unit.locate(f.end_line)
        moved.append(
            Finding(f.code, f.name, f.severity, f.path, line, f.column, end_line, f.end_column, f.message, None, cell)
        )
    return moved


def lint_source(text: str, path: str = "<string>", settings: Settings | None = None) -> list[Finding]:
    """Lint Python source given as a string (the file need not exist)."""
    unit = SourceUnit(path, text)
    return sorted(check_unit(unit, settings or Settings(), Project()), key=Finding.sort_key)


def _lint_file(
    path: str, display: str, settings: Settings, project: Project
) -> tuple[list[Finding], list[tuple[str, str]], str | None]:
    """Lint one file; returns its findings, the neighbouring files (with hashes) they depend on, and
    a one-line description of an internal error, if gradlint itself failed on the file."""
    try:
        unit, _ = read_unit(Path(path), display)
    except SourceError as exc:
        return [_syntax_finding(display, str(exc), exc.line, exc.column)], [], None
    if unit is None:
        return [], [], None
    try:
        findings = check_unit(unit, settings, project, Path(path))
    except Exception as exc:  # a bug of ours must not stop the other files from being linted
        return [], [], f"{display}: internal error, file not checked ({type(exc).__name__}: {exc}); please report it"
    deps = []
    for dep in sorted(project.used.get(str(Path(path).resolve()), ())):
        try:
            deps.append((str(dep), _digest(dep.read_bytes())))
        except OSError:
            pass
    return findings, deps, None


def _lint_batch(batch: list[tuple[str, str]], settings: Settings):
    # One project per batch: neighbouring files parsed for one file serve the next, and
    # nothing outlives the run (a later run must see edited neighbours).
    project = Project()
    # The syntax trees a batch holds are millions of objects: with the cycle collector on, each of
    # its full passes walks them all (measured: a third of the run). The batch is freed at its end.
    gc.disable()
    try:
        return [(path, *_lint_file(path, display, settings, project)) for path, display in batch]
    finally:
        gc.enable()


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Cache:
    """Findings per file, keyed by content hash, gradlint version and the settings that apply."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.folder = root / CACHE_DIR
        self.file = self.folder / f"findings-{__version__}-{settings.cache_key()}.json"
        self.entries: dict[str, dict] = {}
        self.changed = False
        try:
            self.entries = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.entries = {}

    def get(self, path: str, digest: str, display: str) -> list[Finding] | None:
        entry = self.entries.get(path)
        if entry is None or entry["hash"] != digest or entry["display"] != display:
            return None
        for dep, dep_hash in entry["deps"]:
            try:
                if _digest(Path(dep).read_bytes()) != dep_hash:
                    return None
            except OSError:
                return None
        return [_finding_from_dict(d) for d in entry["findings"]]

    def put(self, path: str, digest: str, display: str, findings: list[Finding], deps) -> None:
        self.entries[path] = {
            "hash": digest,
            "display": display,
            "deps": deps,
            "findings": [f.to_dict() for f in findings],
        }
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by gradlint.\n*\n", encoding="utf-8")
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.entries, out)
            os.replace(tmp, self.file)
        except OSError:
            pass  # a read-only tree still lints; it just is not cached


def _finding_from_dict(d: dict) -> Finding:
    fix = None
    if d.get("fix"):
        fix = Fix(d["fix"]["description"], tuple(Edit(e["start"], e["end"], e["text"]) for e in d["fix"]["edits"]))
    return Finding(
        d["code"], d["name"], Severity(d["severity"]), d["path"], d["line"], d["column"],
        d["end_line"], d["end_column"], d["message"], fix, d.get("cell"),
    )


def lint_paths(
    paths: Sequence[str | Path],
    settings: Settings | None = None,
    *,
    jobs: int | None = None,
    use_cache: bool = False,
) -> LintResult:
    """Lint files and folders. Raises FileNotFoundError for a path that does not exist."""
    settings = settings or Settings()
    files = discover([Path(p) for p in paths], settings.exclude, settings.root)
    cache = Cache(settings.root, settings) if use_cache else None
    result = LintResult(files_checked=len(files))
    todo: list[tuple[str, str]] = []
    digests: dict[str, str] = {}
    for file in files:
        display = str(file)
        if cache is not None:
            key = str(file.resolve())
            try:
                digest = _digest(file.read_bytes())
            except OSError:
                digest = ""
            digests[key] = digest
            cached = cache.get(key, digest, display)
            if cached is not None:
                result.findings.extend(cached)
                continue
        todo.append((str(file), display))
    displays = dict(todo)
    for path, findings, deps, error in _run(todo, settings, jobs):
        result.findings.extend(findings)
        if error is not None:
            result.internal_errors.append(error)
            continue  # never cached: the next run tries again
        if cache is not None:
            key = str(Path(path).resolve())
            cache.put(key, digests.get(key, ""), displays[path], findings, deps)
    if cache is not None:
        cache.save()
    result.findings.sort(key=Finding.sort_key)
    return result


def _run(todo: list[tuple[str, str]], settings: Settings, jobs: int | None) -> Iterable:
    workers = jobs or os.cpu_count() or 1
    # Batches keep the inter-process traffic low and bound the memory a batch's project holds;
    # files come sorted by folder, so a batch mostly holds the neighbours its files import from.
    size = BATCH_MAX if workers <= 1 else max(1, min(BATCH_MAX // 2, len(todo) // (workers * 8)))
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    if workers <= 1 or len(todo) < POOL_MIN_FILES:
        return [result for batch in batches for result in _lint_batch(batch, settings)]
    from concurrent.futures import ProcessPoolExecutor  # not imported for a run of a few files

    # Largest batches first, so that no worker is left with a big one while the others idle.
    batches.sort(key=_batch_bytes, reverse=True)
    results = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for batch in pool.map(_lint_batch, batches, [settings] * len(batches)):
            results.extend(batch)
    return results


def _batch_bytes(batch: list[tuple[str, str]]) -> int:
    total = 0
    for path, _ in batch:
        try:
            total += os.stat(path).st_size
        except OSError:
            pass
    return total
