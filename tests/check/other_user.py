"""Run gradlint as uid/gid 65534, for the tests about files the user may not write."""
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOBODY = 65534
REPO = Path(__file__).resolve().parents[2]


def run_as_nobody(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run `python -m gradlint ARGS` as uid/gid 65534 with no supplementary groups.

    setpriv rather than subprocess's user=: it drops root's rights only at exec, so an interpreter reached
    through a private folder (a venv linking into /root) still starts. PYTHONPATH names this checkout, since an
    editable install's finder may sit where the other user cannot read.
    """
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-m", "gradlint", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@functools.cache
def _why_not() -> str:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return "needs root and setpriv to act as another user"
    probe = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable, "-c", "import gradlint.cli"],
        cwd="/", capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if probe.returncode != 0:
        # CI installs into root's private interpreter: the other user starts Python but cannot read its packages.
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"uid {NOBODY} cannot import gradlint from this interpreter ({last})"
    return ""


def needs_other_user(test):
    """Skip unless this machine lets uid 65534 run this interpreter with gradlint and its dependencies."""
    reason = _why_not()
    return pytest.mark.skipif(bool(reason), reason=reason)(test)
