"""Apply the fixes of findings to files: in memory, as a diff, or written back atomically."""
from __future__ import annotations

import codecs
import difflib
import io
import os
import tempfile
import tokenize
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

    A round whose result does not parse is dropped: a fix must never leave broken code.
    """
    from gradlint.engine import check_unit
    from gradlint.facts.project import Project
    from gradlint.source import SourceUnit

    total = 0
    for _ in range(MAX_ROUNDS):
        findings = check_unit(SourceUnit(path, text), settings, Project())
        groups = _fix_groups(findings)
        if not groups:
            break
        taken: list[Edit] = []
        occupied: list[tuple[int, int]] = []
        count = 0
        for edits in groups:
            # A fix's edits go in together or not at all; overlapping fixes wait for the next round.
            spans = [(e.start, e.end) for e in edits if e not in taken]
            if any(_overlaps(a, b) for a in spans for b in occupied):
                continue
            taken.extend(e for e in edits if e not in taken)
            occupied.extend(spans)
            count += 1
        new_text = apply_edits(text, taken)
        try:
            # compile() also catches what a parser accepts but Python rejects (a repeated keyword).
            compile(new_text, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            break
        if new_text == text:
            break
        text = new_text
        total += count
    return text, total


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
        """Write atomically: a temporary file beside the original, its mode kept, then a rename."""
        data = self.fixed.encode(self.encoding)
        if self.bom:
            data = codecs.BOM_UTF8 + data
        mode = self.path.stat().st_mode
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(tmp, mode & 0o7777)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def fix_file(path: Path, settings: Settings, display: str | None = None) -> FileFix | None:
    """The fixed text of one .py file; None for files that cannot be fixed (notebooks, unreadable)."""
    from gradlint.source import SourceError, decode_python, may_be_training_code

    if path.suffix != ".py":
        return None
    try:
        data = path.read_bytes()
        text = decode_python(data)
    except (OSError, SourceError):
        return None
    if not may_be_training_code(data):
        return None
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    bom = data.startswith(codecs.BOM_UTF8)
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    fixed, count = fix_text(text, display or str(path), settings)
    return FileFix(path, text, fixed, count, encoding, bom)
