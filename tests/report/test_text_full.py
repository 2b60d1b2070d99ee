"""The full text form: each finding's line, its source with a caret span under the range, its help."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from report_helpers import make_finding, sample_rules

from gradlint.findings import Severity
from gradlint.report import render

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def full(findings, **kwargs) -> str:
    kwargs.setdefault("files_checked", 1)
    return render(findings, "text", rules=sample_rules(), **kwargs)


def gradlint(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--no-cache", *args], cwd=REPO, capture_output=True, text=True, env=env
    )


def test_a_fixture_reads_as_line_source_carets_and_help():
    path = "fixtures/fix/GL402_no_zero_grad.py"
    [finding] = json.loads(gradlint(path, "--format", "json").stdout)
    source = (REPO / path).read_text(encoding="utf-8").splitlines()[finding["line"] - 1]
    width = len(str(finding["line"]))
    span = finding["end_column"] - finding["column"]
    out = gradlint(path).stdout
    assert out.splitlines() == [
        f"{path}:{finding['line']}:{finding['column']}: GL402 [error] {finding['message']} [*]",
        " " * width + " |",
        f"{finding['line']} | {source}",
        " " * width + " | " + " " * (finding["column"] - 1) + "^" * span,
        " " * width + " |",
        f"help: {finding['help']}",
        "",
        "Found 1 finding (1 error, 0 warnings, 0 info) in 1 file.",
        "[*] 1 fixable with the --fix option.",
    ]
    assert source[finding["column"] - 1 :].startswith("optimizer.step()") and span == len("optimizer.step()")


def test_concise_and_quiet_keep_one_line_a_finding():
    path = "fixtures/fix/GL402_no_zero_grad.py"
    concise = gradlint(path, "--output-format", "concise").stdout.splitlines()
    assert len(concise) == 3 and concise[0].startswith(f"{path}:12:9: GL402 [error] ") and "help" not in concise[0]
    assert concise[1].startswith("Found 1 finding")
    assert gradlint(path, "--quiet").stdout.splitlines() == concise[:1]
    bad = gradlint(path, "--output-format", "long")
    assert bad.returncode == 2 and "unknown output format 'long'" in bad.stderr


def test_the_pre_commit_hooks_print_the_concise_form():
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    entries = re.findall(r"entry: (.*)", hooks)
    assert entries and all("--output-format concise" in entry for entry in entries)


def test_a_notebook_finding_shows_the_line_of_its_cell():
    path = "fixtures/static/GL101/flagged/tape_loop_notebook.ipynb"
    out = gradlint(path, "--select", "GL101").stdout
    assert f"{path}:cell 3:7:5: GL101 [warning] " in out
    assert "7 |     optimizer.apply_gradients(zip(gradients, variables))" in out


def test_tabs_and_wide_characters_keep_the_carets_under_the_range(tmp_path):
    file = tmp_path / "train.py"
    file.write_text("import torch\n\tx = '日本'; opt.step()\n", encoding="utf-8")
    finding = make_finding(path=str(file), line=2, column=12, end_column=22, help="clear the gradients")
    lines = full([finding]).splitlines()
    assert lines[2] == "2 |     x = '日本'; opt.step()"
    assert lines[3] == "  |                 ^^^^^^^^^^"
    assert lines[3].index("^") == lines[2].index("opt.step()") + 2  # the two wide characters take two columns each


def test_a_long_range_shows_its_first_lines_and_its_last(tmp_path):
    file = tmp_path / "model.py"
    file.write_text("".join(f"layer_{n} = 1\n" for n in range(1, 13)), encoding="utf-8")
    finding = make_finding(path=str(file), line=2, column=1, end_line=11, end_column=12)
    block = full([finding]).split("\n\n")[0].splitlines()[1:]
    gutter = [line.split("|")[0].strip() for line in block if "^" not in line]
    assert gutter == ["", "2", "3", "4", "..", "11", ""]
    assert sum("^" in line for line in block) == 4  # every line shown has its carets


def test_no_frame_for_a_file_that_cannot_be_read_now(tmp_path):
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)  # reading it would block the report
    findings = [make_finding(path=str(tmp_path / "gone.py"), help="h"), make_finding(path=str(fifo))]
    lines = full(findings).splitlines()
    assert lines[:4] == [
        f"{tmp_path / 'gone.py'}:3:5: GL101 [warning] LSTM trained without gradient clipping",
        "help: h",
        "",
        f"{fifo}:3:5: GL101 [warning] LSTM trained without gradient clipping",
    ]


def test_colour_paints_the_same_text(tmp_path):
    file = tmp_path / "train.py"
    file.write_text("import torch\nopt.step()  # [bold]not markup[/bold]\n", encoding="utf-8")
    finding = make_finding(
        path=str(file), line=2, column=1, end_column=11, severity=Severity.ERROR, help="use [red]this[/red]"
    )
    coloured = full([finding], color=True)
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == full([finding])
    assert "help: use [red]this[/red]" in ANSI.sub("", coloured)
