"""The engine: files -> facts (process pool, cache) -> checks -> findings."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from gradlint.version import __version__
from gradlint.config import Settings
from gradlint.findings import Edit, Finding, Fix, Severity, syntax_finding
from gradlint.source import discover
from gradlint.workers import Failure, Job, run_isolated

if TYPE_CHECKING:
    from gradlint.fix.apply import FileFix

__all__ = ["LintResult", "lint_paths", "fix_paths"]

CACHE_DIR = ".gradlint_cache"
BATCH_MAX = 64
DEFAULT_TIMEOUT = 10.0


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    internal_errors: list[str] = field(default_factory=list)
    # Files gradlint could not check though nothing is wrong with them (one line each, a warning).
    unchecked: list[str] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        """A file could not be read, parsed or checked (exit code 2)."""
        return bool(self.internal_errors) or any(f.code == "GL001" for f in self.findings)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Cache:
    """Findings per file, keyed by content hash, gradlint version and the settings that apply.

    A file's entry also holds the hash of every neighbouring file its findings were read from (or
    looked for: ABSENT when it did not exist), so that editing, adding or fixing a neighbour re-checks it.
    A file whose modification time and size are those recorded with its hash is not read again (as Black's
    cache does), unless it was modified within RACY_NS of being recorded: a rewrite of the same size in the
    same tick of the file system's clock would keep both.
    """

    def __init__(self, root: Path, settings: Settings) -> None:
        self.folder = root / CACHE_DIR
        self.file = self.folder / f"findings-{__version__}-{settings.cache_key()}.json"
        self.entries: dict[str, dict] = {}
        # path -> [mtime_ns, size, hash] of files hashed in earlier runs.
        self.stats: dict[str, list] = {}
        self.changed = False
        # Neighbours' hashes, read once a run: files of one folder share most of theirs.
        self._digests: dict[str, str] = {}
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            data = None
        # Anything of the wrong shape (a hand-edited or foreign file) is ignored like an unreadable cache.
        if isinstance(data, dict) and isinstance(data.get("files"), dict) and isinstance(data.get("stats"), dict):
            self.entries, self.stats = data["files"], data["stats"]

    def get(self, path: str, digest: str, display: str) -> list[Finding] | None:
        try:
            entry = self.entries.get(path)
            if entry is None or entry["hash"] != digest or entry["display"] != display:
                return None
            for dep, dep_hash in entry["deps"]:
                if self.digest(dep) != dep_hash:
                    return None
            return [_finding_from_dict(d) for d in entry["findings"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    def put(self, path: str, digest: str, display: str, findings: list[Finding], deps: list[str]) -> None:
        self.entries[path] = {
            "hash": digest,
            "display": display,
            "deps": [(dep, self.digest(dep)) for dep in deps],
            "findings": [f.to_dict() for f in findings],
        }
        self.changed = True

    def digest(self, path: str) -> str:
        if path not in self._digests:
            self._digests[path] = self._read_digest(path)
        return self._digests[path]

    def _read_digest(self, path: str) -> str:
        try:
            info = os.stat(path)
        except OSError:
            return ABSENT
        # A FIFO would block the read and /dev/zero never ends; neither is read as source anyway.
        if not stat.S_ISREG(info.st_mode):
            return ABSENT
        state = [info.st_mtime_ns, info.st_size]
        seen = self.stats.get(path)
        if isinstance(seen, list) and len(seen) == 3 and seen[:2] == state and type(seen[2]) is str:
            return seen[2]
        try:
            with open(path, "rb") as source:
                digest = _digest(source.read())
        except OSError:
            return ABSENT
        if time.time_ns() - info.st_mtime_ns > RACY_NS:
            self.stats[path] = [*state, digest]
            self.changed = True
        return digest

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
                json.dump({"files": self.entries, "stats": self.stats}, out)
            os.replace(tmp, self.file)
        except OSError:
            pass  # a read-only tree still lints; it just is not cached


ABSENT = "absent"
RACY_NS = 2_000_000_000  # a file system clock ticks in at most 2 s (FAT)


def _finding_from_dict(d: dict) -> Finding:
    """A finding read back from the cache; ValueError for one of the wrong shape (a hand-edited or foreign
    file), so that Cache.get checks the file again rather than report it (a path that is not text broke
    the sort of the report)."""
    fix = None
    if d.get("fix"):
        fix = Fix(d["fix"]["description"], tuple(Edit(e["start"], e["end"], e["text"]) for e in d["fix"]["edits"]))
        edits = [(e.start, e.end, e.text) for e in fix.edits]
        if type(fix.description) is not str or not all(_typed(e, (int, int, str)) for e in edits):
            raise ValueError("a cached fix of the wrong shape")
    finding = Finding(
        d["code"], d["name"], Severity(d["severity"]), d["path"], d["line"], d["column"],
        d["end_line"], d["end_column"], d["message"], fix, d.get("cell"), d["help"],
    )
    fields = (finding.code, finding.name, finding.path, finding.message, finding.line, finding.column)
    ends = (finding.end_line, finding.end_column)
    if not _typed(fields + ends, (str, str, str, str, int, int, int, int)) or type(finding.cell) not in (int, type(None)):
        raise ValueError("a cached finding of the wrong shape")
    if type(finding.help) not in (str, type(None)):
        raise ValueError("a cached finding of the wrong shape")
    return finding


def _typed(values: tuple, types: tuple) -> bool:
    # `type(...) is`, not isinstance: True is an int to isinstance.
    return all(type(value) is kind for value, kind in zip(values, types))


def _failure_finding(display: str, failure: Failure, timeout: float) -> Finding:
    what = "the parser crashed on this file" if failure.reason == "crashed" else f"checking this file took longer than {timeout:g} s (parse-timeout)"
    return syntax_finding(display, f"not checked: {what}", 1, 1)


def _timeout(settings: Settings) -> float:
    return float(settings.options.get("parse-timeout", DEFAULT_TIMEOUT))


def _display(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _neighbour_failure(path: str, failure: Failure, timeout: float) -> Finding:
    finding = _failure_finding(_display(failure.neighbour), failure, timeout)
    note = f"{finding.message}; files importing it were checked without it (first: {path})"
    return Finding(finding.code, finding.name, finding.severity, finding.path, 1, 1, 1, 1, note)


def lint_paths(
    paths: Sequence[str | Path],
    settings: Settings | None = None,
    *,
    jobs: int | None = None,
    use_cache: bool = False,
    force_exclude: bool = False,
) -> LintResult:
    """Lint files and folders, each file in a worker process (see gradlint.workers).

    Raises FileNotFoundError for a path that does not exist.
    """
    settings = settings or Settings()
    files = discover([Path(p) for p in paths], settings.exclude, settings.root, force_exclude=force_exclude)
    cache = Cache(settings.root, settings) if use_cache else None
    result = LintResult(files_checked=len(files))
    todo: list[tuple[str, str]] = []
    for file in files:
        display = str(file)
        if cache is not None:
            key = str(file.resolve())
            cached = cache.get(key, cache.digest(key), display)
            if cached is not None:
                result.findings.extend(cached)
                continue
        todo.append((str(file), display))
    failed_neighbours: set[str] = set()
    for (path, display), outcome, failure in _run(todo, settings, jobs, fixing=False):
        if failure is not None:
            if failure.neighbour is None:
                result.findings.append(_failure_finding(display, failure, _timeout(settings)))
            elif failure.neighbour not in failed_neighbours:
                failed_neighbours.add(failure.neighbour)
                result.findings.append(_neighbour_failure(display, failure, _timeout(settings)))
            continue  # never cached: the next run tries again
        findings, deps, error, unchecked = outcome
        result.findings.extend(findings)
        if error is not None or unchecked is not None:
            # Never cached: the next run tries again.
            result.internal_errors.extend([error] if error else [])
            result.unchecked.extend([unchecked] if unchecked else [])
            continue
        if cache is not None and not failed_neighbours.intersection(deps):
            key = str(Path(path).resolve())
            cache.put(key, cache.digest(key), display, findings, deps)
    if cache is not None:
        cache.save()
    result.findings = _unique(result.findings)
    result.findings.sort(key=Finding.sort_key)
    return result


def _unique(findings: list[Finding]) -> list[Finding]:
    """A neighbour that failed and was also linted itself is reported once."""
    seen: set[tuple] = set()
    kept = []
    for f in findings:
        key = (os.path.realpath(f.path), f.code, f.line, f.message) if f.code == "GL001" else None
        if key is not None:
            if (os.path.realpath(f.path), f.code) in seen:
                continue
            seen.add((os.path.realpath(f.path), f.code))
        kept.append(f)
    return kept


def fix_paths(
    paths: Sequence[str | Path], settings: Settings, *, jobs: int | None = None, force_exclude: bool = False
) -> tuple[list[FileFix], dict[str, str]]:
    """The fixes of every file under `paths`, computed in worker processes; returns the changed files'
    fixes and, by file, one line for each file gradlint failed on (files that crashed a worker are left to
    the lint)."""
    files = discover([Path(p) for p in paths], settings.exclude, settings.root, force_exclude=force_exclude)
    fixes: list[FileFix] = []
    errors: dict[str, str] = {}
    for (_, display), outcome, failure in _run([(str(f), str(f)) for f in files], settings, jobs, fixing=True):
        if failure is not None:
            continue
        fixed, error = outcome
        if error is not None:
            errors[display] = error
        elif fixed is not None and fixed.changed:
            fixes.append(fixed)
    fixes.sort(key=lambda f: str(f.path))
    return fixes, errors


def _run(todo: list[tuple[str, str]], settings: Settings, jobs: int | None, *, fixing: bool) -> Iterable:
    cores = os.cpu_count() or 1
    # More processes than cores only costs memory; more than batches, start-up time.
    workers = max(1, min(jobs or cores, cores))
    # Batches keep the inter-process traffic low and bound the memory a batch's project holds;
    # files come sorted by folder, so a batch mostly holds the neighbours its files import from.
    size = BATCH_MAX if workers <= 1 else max(1, min(BATCH_MAX // 2, len(todo) // (workers * 8)))
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    # Largest batches first, so that no worker is left with a big one while the others idle.
    batches.sort(key=_batch_bytes, reverse=True)
    # The worker imports the rules (and libcst); the parent never needs them.
    work = Job("gradlint.jobs", "work", (settings, fixing))
    return run_isolated(batches, work, min(workers, len(batches)), _timeout(settings))


def _batch_bytes(batch: list[tuple[str, str]]) -> int:
    total = 0
    for path, _ in batch:
        try:
            total += os.stat(path).st_size
        except OSError:
            pass
    return total
