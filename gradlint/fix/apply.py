"""Apply the fixes of findings to files: in memory, as a diff, or written back keeping the file as it was."""
from __future__ import annotations

import codecs
import errno
import io
import os
import stat
import tempfile
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path

from gradlint.config import Settings
from gradlint.findings import Edit, Finding

MAX_ROUNDS = 10  # fixes can enable others (a moved clip, then its unscale); stop well before a loop


def apply_edits(text: str, edits: list[Edit]) -> str:
    """Apply non-overlapping edits (a duplicate once; an edit overlapping one already taken is skipped)."""
    out = []
    position = 0
    for edit in sorted(set(edits), key=lambda e: (e.start, e.end, e.text)):
        if edit.start < position:
            continue  # the next round re-lints and retries it
        out.append(text[position : edit.start])
        out.append(edit.text)
        position = edit.end
    out.append(text[position:])
    return "".join(out)


def _fix_groups(findings: list[Finding]) -> list[list[Edit]]:
    return [list(f.fix.edits) for f in findings if f.fix is not None and f.fix.edits]


def fix_text(text: str, path: str, settings: Settings) -> tuple[str, int]:
    """Apply every safe fix, re-linting between rounds; returns the fixed text and the fixes applied.

    A round whose result does not compile is tried again one fix at a time, so that a fix that would
    leave broken code is left out without holding back the others.
    """
    from gradlint.lint import check_unit
    from gradlint.facts.project import Project
    from gradlint.source import SourceUnit

    total = 0
    for _ in range(MAX_ROUNDS):
        # Checked as the file at `path`, as the lint checks it: the project follows a file's star imports
        # (`from utils import *`) only for a file it knows, and without them a fix would add a second clip
        # beside a helper's clipping that the lint sees.
        unit = SourceUnit(path, text)
        groups = _disjoint(_fix_groups(check_unit(unit, settings, Project(), Path(path))))
        applied = 0
        for attempt in [groups] + ([[g] for g in groups] if len(groups) > 1 else []):
            new_text = apply_edits(text, [e for edits in attempt for e in edits])
            # compile() also catches what a parser accepts but Python rejects (a repeated keyword).
            if new_text != text and compiles(new_text, path):
                text, applied = new_text, len(attempt)
                break
        if not applied:
            break
        total += applied
    return text, total


def _disjoint(groups: list[list[Edit]]) -> list[list[Edit]]:
    """The fixes whose edits overlap no earlier one's: a fix's edits go in together or not at all, and
    overlapping fixes wait for the next round (an edit two fixes share is one edit)."""
    taken: list[Edit] = []
    occupied: list[tuple[int, int]] = []
    chosen = []
    for edits in groups:
        spans = [(e.start, e.end) for e in edits if e not in taken]
        if any(_overlaps(a, b) for a in spans for b in occupied):
            continue
        taken.extend(e for e in edits if e not in taken)
        occupied.extend(spans)
        chosen.append(edits)
    return chosen


def compiles(text: str, path: str) -> bool:
    """Whether Python compiles `text`; its warnings are about the user's code, not the fix, so they stay quiet."""
    with warnings.catch_warnings():
        # "ignore" also keeps PYTHONWARNINGS=error from turning a SyntaxWarning into a failed compile.
        warnings.simplefilter("ignore")
        try:
            compile(text, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
            return False
    return True


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether two edit ranges share characters (an insertion overlaps a range it falls strictly inside)."""
    return max(a[0], b[0]) < min(a[1], b[1])


@dataclass
class FileFix:
    path: Path
    original: str
    fixed: str
    fixes: int
    encoding: str
    bom: bool

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    def diff(self) -> str:
        import difflib  # only --diff asks: a worker imports this module on the way to its first file

        name = str(self.path)
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                self.fixed.splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )

    def write(self) -> None:
        """Write the fixed text into the file, keeping its links, owner, group and mode.

        A symlink's target is written. The new text goes to a temporary file that replaces the original in
        one rename, unless that would lose something: a second hard link, or an owner or group the temporary
        file cannot be given. Then the file is rewritten in place, as an editor would.
        """
        data = _encode(self.fixed, self.encoding, self.bom)
        # Resolved only for a link: an absolute path fails where a folder above the current one is closed to us.
        target = self.path.resolve(strict=True) if self.path.is_symlink() else self.path
        st = target.stat()
        # A rename ignores the file's write bit, and os.access says yes to root: read the mode itself.
        if not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, "read-only file, not fixed")
        if st.st_nlink > 1 or not _replace(target, data, st):
            _rewrite(target, data)


def _encode(text: str, encoding: str, bom: bool) -> bytes:
    data = text.encode(encoding)
    return codecs.BOM_UTF8 + data if bom else data


def _replace(target: Path, data: bytes, st: os.stat_result) -> bool:
    """Atomically replace `target` by `data` with its owner, group and mode; False when they cannot be kept."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError:
        return False  # a folder we may not create files in; the file itself is writable
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            # Only root may give a file away; anyone may "change" it to the owner and group it already has.
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:
            return False
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, target)
        tmp = None
        return True
    finally:
        if tmp is not None:
            os.unlink(tmp)


def _rewrite(target: Path, data: bytes) -> None:
    with open(target, "r+b") as out:
        out.write(data)
        out.truncate()
        out.flush()
        os.fsync(out.fileno())


def file_encoding(data: bytes) -> tuple[str, bool] | None:
    """(encoding, BOM) to write a fixed file in, or None when decoding and encoding again does not give
    back the same bytes (unicode_escape turns a newline into a backslash and an n on the way back: the
    whole file would change)."""
    from gradlint.source import SourceError, decode_python

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        bom = data.startswith(codecs.BOM_UTF8)
        if encoding == "utf-8-sig":
            encoding = "utf-8"
        if _encode(decode_python(data), encoding, bom) != data:
            return None
    except (SyntaxError, SourceError, UnicodeEncodeError, LookupError):
        return None
    return encoding, bom


def fix_file(path: Path, settings: Settings, display: str | None = None) -> FileFix | None:
    """The fixed text of one .py file; None for files that cannot be fixed (notebooks, unreadable, not a
    regular file, or in an encoding that does not give back the same bytes)."""
    from gradlint.source import SourceError, decode_python, may_be_training_code

    if path.suffix != ".py" or not path.is_file():
        return None
    try:
        data = path.read_bytes()
        text = decode_python(data)
    except (OSError, SourceError):
        return None
    if not may_be_training_code(data, path):
        return None
    written_as = file_encoding(data)
    if written_as is None:
        return None
    fixed, count = fix_text(text, display or str(path), settings)
    return FileFix(path, text, fixed, count, *written_as)
