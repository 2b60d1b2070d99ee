"""Path forms that CI services understand."""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePath
from urllib.parse import quote

_SURROGATE = re.compile("[\ud800-\udfff]")


def relative_to_root(path: str, root: Path | None) -> str | None:
    """`path` as a POSIX path relative to `root`, or None when it lies outside it.

    A relative `path` is taken relative to the current directory, as the user gave it.
    """
    if root is None:
        return None
    try:
        rel = Path(os.path.abspath(path)).relative_to(Path(os.path.abspath(root)))
    except ValueError:
        return None
    return rel.as_posix()


def posix(path: str) -> str:
    """The path with forward slashes, which is what SARIF and GitHub expect."""
    return PurePath(path).as_posix()


def printable(text: str) -> str:
    """`text` in a form that encodes in UTF-8.

    A file name that is not UTF-8 reaches Python with each bad byte as a surrogate escape (U+DC80..U+DCFF);
    it is shown as `\\xNN`, as Python's repr shows the byte. Any other lone surrogate becomes U+FFFD.
    """
    return _SURROGATE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def uri_path(path: str) -> str:
    """A relative POSIX path percent-encoded for a URI, from the file name's bytes (which need not be UTF-8)."""
    return quote(os.fsencode(path))
