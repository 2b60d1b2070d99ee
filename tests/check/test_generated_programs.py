"""Generated programs (hypothesmith) never take a run down, and give the same result every way they run.

Each program, under `import torch` and a backward() call so that it is not skipped, is linted beside a training script
known to be flagged (GL101), or put into that script (appended, or inserted before its training loop).
Python's own compile() says whether the program is source: a program it reads is never a syntax error,
one it refuses is GL001 or (holding no training code) unreported. The result must be the same under
--jobs 1 and --jobs 2, and when read back from the cache. Most examples call the engine in-process (it
checks each file in a worker process, so a crash there cannot end the test); a few go through the CLI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import pytest

hypothesmith = pytest.importorskip("hypothesmith")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from gradlint.config import Settings  # noqa: E402
from gradlint.engine import LintResult, lint_paths  # noqa: E402
from rule_fixtures import FLAGGED  # noqa: E402

pytestmark = pytest.mark.slow

# GL101 of FLAGGED, at the step.
EXPECTED = [("train.py", "GL101", 11)]

PROGRAMS = st.one_of(hypothesmith.from_grammar(), hypothesmith.from_node())
PLACES = st.sampled_from(["beside", "appended", "inserted"])
BOUNDED = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def python_reads(text: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(text, "<generated>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


def build(folder: Path, program: str, place: str) -> dict[str, str]:
    """The files of one example: the program beside FLAGGED, or put into it."""
    if place == "beside":
        # Imports torch and calls backward(): files that do neither are skipped unread.
        files = {"gen.py": "import torch\nloss.backward()\n" + program, "train.py": FLAGGED}
    elif place == "appended":
        files = {"train.py": FLAGGED + "\n" + program}
    else:
        head, loop = FLAGGED.split("for x, y", 1)
        files = {"train.py": head + program + ("" if program.endswith("\n") else "\n") + "for x, y" + loop}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return files


def outcome(result: LintResult) -> tuple:
    """All a run says, in a form two runs can be compared by."""
    return (
        tuple(json.dumps(f.to_dict(), sort_keys=True) for f in result.findings),
        tuple(result.internal_errors),
        tuple(result.unchecked),
    )


def judge(files: dict[str, str], result: LintResult, place: str) -> None:
    assert not result.internal_errors, result.internal_errors
    by_file: dict[str, list] = {}
    for f in result.findings:
        by_file.setdefault(Path(f.path).name, []).append(f)
    for name, text in files.items():
        found = by_file.get(name, [])
        if python_reads(text):
            assert not any(f.code == "GL001" and f.message.startswith("syntax error") for f in found), found
        else:
            assert [f.code for f in found] in ([], ["GL001"]) or name == "train.py", found
            if name == "train.py":  # the training code is there: Python's verdict is said
                assert [f.code for f in found] == ["GL001"], found
    if place == "beside":
        assert [(Path(f.path).name, f.code, f.line) for f in by_file.get("train.py", [])] == [EXPECTED[0]]


@BOUNDED
@given(program=PROGRAMS, place=PLACES)
def test_generated_programs_are_linted_the_same_every_way(program: str, place: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = build(folder, program, place)
        config = Settings(root=folder)
        plain = lint_paths([folder], config, jobs=1)
        judge(files, plain, place)
        # The cache is filled by a run of two workers and read by a run of one: all three agree.
        filled = lint_paths([folder], config, jobs=2, use_cache=True)
        assert outcome(filled) == outcome(plain)
        cached = lint_paths([folder], config, jobs=1, use_cache=True)
        assert outcome(cached) == outcome(plain)


def exit_code(result: LintResult) -> int:
    if result.has_errors:
        return 2
    return 1 if result.findings else 0


@settings(BOUNDED, max_examples=10)
@given(program=PROGRAMS, place=PLACES)
def test_generated_programs_through_the_command_line(program: str, place: str) -> None:
    """The CLI's exit code and report agree with the engine, with no traceback."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, program, place)
        expected = lint_paths([folder], Settings(root=folder), jobs=1)
        run = subprocess.run(
            [sys.executable, "-m", "gradlint", "check", "--no-cache", "--format", "json", "."],
            cwd=folder, capture_output=True, text=True, timeout=120,
        )
        assert "Traceback" not in run.stderr + run.stdout, run.stderr
        assert run.returncode == exit_code(expected), run.stderr
        assert [(f["path"], f["code"], f["line"]) for f in json.loads(run.stdout)] == [
            (f.path.removeprefix(str(folder) + "/"), f.code, f.line) for f in expected.findings
        ]
