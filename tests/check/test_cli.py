"""`gradlint check` end to end: exit codes, bad input, configuration, suppression, notebooks, cache."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradlint.cli import app

FLAGGED = """\
import torch
model = torch.nn.LSTM(4, 4)
opt = torch.optim.AdamW(model.parameters())
for x in data:
    opt.zero_grad()
    model(x)[0].sum().backward()
    opt.step()
"""
CLEAN = "import torch\nprint(torch.ones(1))\n"


def run(tmp_path: Path, *args: str):
    result = CliRunner().invoke(app, ["check", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_exit_codes_clean_findings_and_exit_zero(tmp_path):
    write(tmp_path / "clean.py", CLEAN)
    assert run(tmp_path, "clean.py")[0] == 0
    write(tmp_path / "bad.py", FLAGGED)
    code, out, _ = run(tmp_path, "bad.py")
    assert code == 1
    assert "bad.py:7:5: GL101 [warning]" in out
    assert run(tmp_path, "bad.py", "--exit-zero")[0] == 0


def test_syntax_error_is_gl001_exit_2_and_other_files_still_linted(tmp_path):
    # Training code (files with no training marker are not parsed at all, so not reported).
    write(tmp_path / "broken.py", "import torch\nloss.backward()\ndef f(:\n    pass\n")
    write(tmp_path / "bad.py", FLAGGED)
    code, out, err = run(tmp_path, ".")
    assert code == 2
    assert "broken.py:3:7: GL001 [error] syntax error: " in out
    assert "GL101" in out
    assert "Traceback" not in out + err


def test_binary_file_is_gl001(tmp_path):
    write(tmp_path / "blob.py", b"\x89PNG\x00\x01import torch\xff\xfe")
    code, out, _ = run(tmp_path, "blob.py")
    assert code == 2
    assert "GL001" in out


def test_undecodable_bytes_in_declared_encoding(tmp_path):
    write(tmp_path / "latin.py", b"import torch\nname = '\xe9t\xe9'\n")
    code, out, _ = run(tmp_path, "latin.py")
    assert code == 2 and "cannot decode file as utf-8: invalid byte at line 2" in out
    write(tmp_path / "declared.py", b"# -*- coding: latin-1 -*-\nimport torch\nname = '\xe9t\xe9'\n")
    assert run(tmp_path, "declared.py")[0] == 0


def test_missing_path_is_one_line_and_exit_2(tmp_path):
    code, out, err = run(tmp_path, "nope.py")
    assert code == 2
    assert err.strip() == "gradlint: error: path not found: nope.py"


@pytest.mark.parametrize(
    "table, message",
    [
        ("colour = 1", "unknown key 'colour'"),
        ("select = ['XX1']", "'XX1' matches no rule code"),
        ("fail-on = 'fatal'", "'fail-on' must be one of info, warning, error"),
        ("max-batch-size = -3", "'max-batch-size' must be a positive integer"),
        ("regularization-scope = 'some'", "'regularization-scope' must be"),
        ("select = 'GL101'", "'select' must be a list of strings"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, table, message):
    write(tmp_path / "pyproject.toml", f"[tool.gradlint]\n{table}\n")
    write(tmp_path / "a.py", CLEAN)
    code, out, err = run(tmp_path, "a.py")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err


def test_config_ignore_per_file_ignores_and_fail_on(tmp_path):
    write(tmp_path / "bad.py", FLAGGED)
    write(tmp_path / "pyproject.toml", "[tool.gradlint]\nignore = ['GL1']\n")
    assert run(tmp_path, "bad.py")[0] == 0
    write(tmp_path / "pyproject.toml", "[tool.gradlint]\nper-file-ignores = {'bad.py' = ['GL101']}\n")
    assert run(tmp_path, "bad.py")[0] == 0
    write(tmp_path / "pyproject.toml", "[tool.gradlint]\nfail-on = 'error'\n")
    code, out, _ = run(tmp_path, "bad.py")
    assert code == 0 and "GL101" in out


def test_command_line_select_and_ignore(tmp_path):
    write(tmp_path / "bad.py", FLAGGED)
    assert run(tmp_path, "bad.py", "--ignore", "GL101")[0] == 0
    assert run(tmp_path, "bad.py", "--select", "GL0")[0] == 0
    assert run(tmp_path, "bad.py", "--select", "GL1")[0] == 1
    code, _, err = run(tmp_path, "bad.py", "--select", "E501")
    assert code == 2 and "matches no rule code" in err


@pytest.mark.parametrize(
    "comment, suppressed",
    [("  # noqa", True), ("  # noqa: GL101", True), ("  # noqa: GL402, GL101", True), ("  # noqa: GL402", False)],
)
def test_noqa_on_the_reported_line(tmp_path, comment, suppressed):
    write(tmp_path / "bad.py", FLAGGED.replace("opt.step()", "opt.step()" + comment))
    assert (run(tmp_path, "bad.py")[0] == 0) is suppressed


def test_disable_file_comment(tmp_path):
    write(tmp_path / "bad.py", "# gradlint: disable-file=GL101\n" + FLAGGED)
    assert run(tmp_path, "bad.py")[0] == 0


def test_files_without_a_framework_import_are_skipped(tmp_path):
    write(tmp_path / "util.py", FLAGGED.replace("import torch", "import numpy"))
    assert run(tmp_path, "util.py")[0] == 0


def test_virtualenvs_and_excluded_folders_are_skipped(tmp_path):
    write(tmp_path / ".venv" / "lib" / "bad.py", FLAGGED)
    write(tmp_path / "env2" / "pyvenv.cfg", "home = /usr\n")
    write(tmp_path / "env2" / "bad.py", FLAGGED)
    write(tmp_path / "build" / "bad.py", FLAGGED)
    write(tmp_path / "legacy" / "old" / "bad.py", FLAGGED)
    write(tmp_path / "src" / "ok.py", CLEAN)
    write(tmp_path / "pyproject.toml", "[tool.gradlint]\nexclude = ['legacy/']\n")
    code, out, _ = run(tmp_path, ".")
    assert code == 0, out


def notebook(cells: list[tuple[str, str]]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": src.splitlines(keepends=True), "outputs": [], "execution_count": None}
                if kind == "code"
                else {"cell_type": kind, "metadata": {}, "source": src}
                for kind, src in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


def test_notebook_code_cells_are_linted_with_cell_locations(tmp_path):
    setup, loop = FLAGGED.split("for x in data:")
    write(
        tmp_path / "train.ipynb",
        notebook([("markdown", "# Title"), ("code", "%matplotlib inline\n!pip install torch\n" + setup), ("code", "for x in data:" + loop)]),
    )
    code, out, _ = run(tmp_path, "train.ipynb", "--format", "json")
    assert code == 1
    [finding] = json.loads(out)
    assert (finding["cell"], finding["line"]) == (2, 4)


def test_formats_json_sarif_github(tmp_path):
    write(tmp_path / "bad.py", FLAGGED)
    data = json.loads(run(tmp_path, "bad.py", "--format", "json")[1])
    assert data[0]["code"] == "GL101" and data[0]["name"] == "rnn-without-clipping"
    sarif = json.loads(run(tmp_path, "bad.py", "--format", "sarif")[1])
    assert sarif["runs"][0]["results"][0]["ruleId"] == "GL101"
    assert "::warning file=bad.py,line=7" in run(tmp_path, "bad.py", "--format", "github")[1]
    code, _, err = run(tmp_path, "bad.py", "--format", "xml")
    assert code == 2 and "unknown format 'xml'" in err


def test_output_file_and_statistics(tmp_path):
    write(tmp_path / "bad.py", FLAGGED)
    code, out, _ = run(tmp_path, "bad.py", "--output", "report.txt")
    assert code == 1 and out == ""
    assert "GL101" in (tmp_path / "report.txt").read_text()
    out = run(tmp_path, "bad.py", "--statistics")[1]
    assert "GL101" in out and "bad.py:" not in out


def test_cache_is_reused_and_invalidated_by_content_and_neighbours(tmp_path):
    write(tmp_path / "model.py", "import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 4)\n")
    train = FLAGGED.replace("model = torch.nn.LSTM(4, 4)", "from model import Net\nmodel = Net()")
    write(tmp_path / "train.py", train)
    assert run(tmp_path, ".")[0] == 0
    assert (tmp_path / ".gradlint_cache" / ".gitignore").is_file()
    # The neighbour now builds an LSTM: the cached clean result for train.py must not be reused.
    write(tmp_path / "model.py", (tmp_path / "model.py").read_text().replace("nn.Linear(4, 4)", "nn.LSTM(4, 4)"))
    assert run(tmp_path, ".")[0] == 1
    assert run(tmp_path, ".")[0] == 1
    write(tmp_path / "train.py", train.replace("opt.step()", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1)\n    opt.step()"))
    assert run(tmp_path, ".")[0] == 0


def test_parallel_jobs_give_the_same_findings(tmp_path):
    for i in range(20):
        write(tmp_path / f"s{i}.py", FLAGGED if i % 2 else CLEAN)
    one = run(tmp_path, ".", "--jobs", "1", "--no-cache", "--format", "json")[1]
    two = run(tmp_path, ".", "--jobs", "2", "--no-cache", "--format", "json")[1]
    assert json.loads(one) == json.loads(two) and len(json.loads(one)) == 10


def test_linter_never_writes_user_files_and_does_not_import_torch(tmp_path):
    write(tmp_path / "bad.py", FLAGGED)
    before = (tmp_path / "bad.py").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, gradlint.cli; sys.argv=['gradlint','check','bad.py','--no-cache']; "
         "import gradlint.engine, gradlint.checks\n"
         "try:\n    gradlint.cli.main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.stdout.strip().endswith("False"), proc.stdout + proc.stderr
    assert (tmp_path / "bad.py").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.py"]


def test_version():
    proc = subprocess.run([sys.executable, "-m", "gradlint", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("gradlint ")


def test_rules_lists_the_catalog_with_enabled_and_autofix(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.gradlint]\nignore = ['GL302']\n")
    result = CliRunner().invoke(app, ["rules"], catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = {
        cells[0]: cells
        for line in result.stdout.splitlines()
        if line.startswith("│ GL")
        for cells in [[c.strip() for c in line.split("│")[1:-1]]]
    }
    assert set(rows) >= {"GL001", "GL101", "GL405"}
    assert rows["GL101"][1:5] == ["rnn-without-clipping", "warning", "yes", "yes"]
    assert rows["GL302"][3] == "no"  # disabled by the config
    assert rows["GL301"][3] == "yes"


def test_explain_renders_the_page_and_rejects_unknown_codes():
    result = CliRunner().invoke(app, ["explain", "gl101"], catch_exceptions=False)
    assert result.exit_code == 0 and "Why it matters" in result.stdout and "Pascanu" in result.stdout
    result = CliRunner().invoke(app, ["explain", "GL999"], catch_exceptions=False)
    assert result.exit_code == 2 and "no rule 'GL999'" in result.stderr


def test_an_internal_error_on_one_file_is_one_line_exit_2_and_the_rest_is_linted(tmp_path, monkeypatch):
    from gradlint.checks.registry import RULES

    def broken(ctx):
        if ctx.facts.path.endswith("boom.py"):
            raise ValueError("simulated bug")
        return []

    monkeypatch.setitem(RULES, "GL302", RULES["GL302"].__class__(**{**RULES["GL302"].__dict__, "check": broken}))
    write(tmp_path / "boom.py", CLEAN + "loss.backward()\n")
    write(tmp_path / "bad.py", FLAGGED)
    code, out, err = run(tmp_path, ".", "--no-cache", "--jobs", "1")
    assert code == 2
    assert err.strip() == (
        "gradlint: error: boom.py: internal error, file not checked (ValueError: simulated bug); please report it"
    )
    assert "bad.py:7:5: GL101" in out
