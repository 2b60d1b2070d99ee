from __future__ import annotations

from pathlib import Path

from report_helpers import make_finding, sample_findings, sample_rules

from gradlint.findings import Severity
from gradlint.report import render
from gradlint.report.github import escape_data, escape_property


def github(findings, root: Path | None = None) -> str:
    return render(findings, "github", rules=sample_rules(), files_checked=3, root=root)


def test_one_workflow_command_per_finding_with_level_by_severity():
    lines = github(sample_findings()).splitlines()
    assert lines[0] == (
        "::warning file=train.py,line=3,col=5,endLine=3,endColumn=15,"
        "title=GL101 (rnn-without-clipping)::LSTM trained without gradient clipping"
    )
    assert [line.split(" ", 1)[0] for line in lines] == ["::warning", "::error", "::warning", "::notice"]


def test_no_findings_prints_nothing():
    assert github([]) == ""


def test_message_escapes_percent_and_newlines():
    out = github([make_finding(message="100% sure\r\nsecond line: a, b")])
    # ':' and ',' are fine in the message; only %, \r and \n are escaped there.
    assert out.endswith("::100%25 sure%0D%0Asecond line: a, b\n")
    assert out.count("\n") == 1


def test_property_values_escape_colon_and_comma():
    out = github([make_finding(path="C:/proj/a,b%.py")])
    assert "file=C%3A/proj/a%2Cb%25.py," in out


def test_escape_functions_follow_github_rules():
    assert escape_data("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad:e,f"
    assert escape_property("a%b\rc\nd:e,f") == "a%25b%0Dc%0Ad%3Ae%2Cf"
    # Percent first, so existing escapes are not mangled into double escapes.
    assert escape_data("%0A") == "%250A"


def test_notebook_cell_goes_into_the_message():
    out = github([make_finding(path="nb.ipynb", cell=3, line=4, column=1, end_column=6)])
    assert out.startswith("::warning file=nb.ipynb,line=4,col=1,")
    assert out.rstrip("\n").endswith("::cell 3: LSTM trained without gradient clipping")


def test_paths_are_made_relative_to_root(tmp_path: Path):
    path = str(tmp_path / "src" / "train.py")
    out = github([make_finding(path=path, severity=Severity.ERROR)], root=tmp_path)
    assert out.startswith("::error file=src/train.py,")


def test_end_before_start_is_left_out():
    out = github([make_finding(line=5, end_line=4, end_column=1)])
    assert "endLine" not in out and "endColumn" not in out


def test_help_follows_the_message_on_a_line_of_its_own():
    out = github([make_finding(help="add `clipnorm=1.0`, or lower the lr")])
    assert out.endswith("::LSTM trained without gradient clipping%0Ahelp: add `clipnorm=1.0`, or lower the lr\n")
