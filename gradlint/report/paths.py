"""Path forms that CI services understand."""
from __future__ import annotations

import os
from pathlib import Path, PurePath


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
