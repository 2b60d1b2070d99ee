from __future__ import annotations

import re

from report_helpers import CLIP_FIX, make_finding, sample_findings, sample_rules

from gradlint.findings import Severity
from gradlint.report import render

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def text(findings, **kwargs) -> str:
    """The concise form: one line a finding (the full form has tests of its own, in test_text_full.py)."""
    kwargs.setdefault("files_checked", 5)
    kwargs.setdefault("concise", True)
    return render(findings, "text", rules=sample_rules(), **kwargs)


def test_one_ruff_style_line_per_finding_then_summary():
    out = text(sample_findings())
    assert out.splitlines() == [
        "train.py:3:5: GL101 [warning] LSTM trained without gradient clipping [*]",
        "train.py:7:5: GL201 [error] SGD lr=10.0 is too high",
        "model.py:12:5: GL101 [warning] LSTM trained without gradient clipping [*]",
        "model.py:20:5: GL301 [info] 40 plain layers",
        "Found 4 findings (1 error, 2 warnings, 1 info) in 5 files.",
        "[*] 2 fixable with the --fix option.",
    ]
    assert out.endswith("\n")


def test_findings_keep_the_order_they_arrive_in():
    findings = [make_finding(path="b.py"), make_finding(path="a.py")]
    lines = text(findings).splitlines()
    assert lines[0].startswith("b.py:") and lines[1].startswith("a.py:")


def test_no_findings_says_all_checks_passed():
    assert text([], files_checked=5) == "All checks passed! (5 files)\n"
    assert text([], files_checked=1) == "All checks passed! (1 file)\n"


def test_summary_uses_singular_forms_and_omits_fix_line_without_fixes():
    out = text([make_finding(severity=Severity.ERROR)], files_checked=1)
    assert out.splitlines()[-1] == "Found 1 finding (1 error, 0 warnings, 0 info) in 1 file."
    assert "--fix" not in out
    assert "[*]" not in out


def test_notebook_finding_shows_cell_then_line_and_column():
    out = text([make_finding(path="nb.ipynb", cell=3, line=4, column=1)])
    assert out.splitlines()[0].startswith("nb.ipynb:cell 3:4:1: GL101 [warning] ")


def test_no_colour_codes_unless_asked():
    out = text(sample_findings(), color=False)
    assert "\x1b" not in out


def test_colour_when_asked_and_same_text_underneath(monkeypatch):
    # The caller decides on colour; the environment must not override it.
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "20")
    long_message = "x" * 200
    findings = sample_findings() + [make_finding(path="z.py", message=long_message)]
    coloured = text(findings, color=True)
    assert "\x1b[" in coloured
    assert "\x1b[31m" in coloured or "\x1b[1;31m" in coloured  # the error code in red
    assert ANSI.sub("", coloured) == text(findings, color=False)


def test_colour_mode_shows_markup_like_text_literally():
    findings = [make_finding(path="[red]x.py", message="use [bold]clip_grad_norm_[/bold] here")]
    plain = ANSI.sub("", text(findings, color=True))
    assert "[red]x.py:3:5:" in plain
    assert "use [bold]clip_grad_norm_[/bold] here" in plain


def test_statistics_counts_codes_most_frequent_first():
    findings = sample_findings() + [make_finding(path="other.py", fix=CLIP_FIX)]
    lines = text(findings, statistics=True).splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["3", "GL101"], ["1", "GL201"], ["1", "GL301"]]
    assert lines[0].endswith("[*] rnn-without-clipping")
    assert lines[1].endswith("sgd-lr-too-high") and "[*]" not in lines[1]
    # No per-finding lines in statistics mode.
    assert not any("train.py" in line for line in lines)
    assert lines[3] == "Found 5 findings (1 error, 3 warnings, 1 info) in 5 files."
    assert lines[4] == "[*] 3 fixable with the --fix option."


def test_statistics_marks_codes_where_only_some_findings_are_fixable():
    findings = [make_finding(fix=CLIP_FIX), make_finding(line=9)]
    first = text(findings, statistics=True).splitlines()[0]
    assert first.split()[:3] == ["2", "GL101", "[-]"]


def test_statistics_with_no_findings_is_just_the_summary():
    assert text([], statistics=True) == "All checks passed! (5 files)\n"
