"""Reports that encode in UTF-8 whatever the file names, and a summary that never hides an unchecked file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_helpers import CLIP_FIX, make_finding, sample_rules

from gradlint.report import FORMATS, render
from gradlint.report.paths import printable

BAD = "bad\udcff.py"  # how Python holds the name b"bad\xff.py", which is not UTF-8
TRAINING = """import torch
model = torch.nn.LSTM(4, 4)
opt = torch.optim.AdamW(model.parameters())
for x in data:
    opt.zero_grad()
    model(x)[0].sum().backward()
    opt.step()
"""


def rendered(fmt: str, findings, **kwargs) -> str:
    return render(findings, fmt, rules=sample_rules(), files_checked=1, **kwargs)


def test_printable_shows_undecodable_bytes_as_escapes_and_other_surrogates_as_replacement():
    assert printable(BAD) == "bad\\xff.py"
    assert printable("caf\u00e9 \ud800") == "caf\u00e9 \ufffd"
    assert printable("train.py") == "train.py"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", [BAD, f"sub/{BAD}", str(Path.cwd() / BAD)])
def test_every_format_encodes_in_utf8_with_a_name_that_is_not(fmt, path):
    findings = [make_finding(path=path, fix=CLIP_FIX, message="value \ud800 read"), make_finding(path=path, cell=2)]
    for root in (None, Path.cwd()):
        out = rendered(fmt, findings, root=root)
        out.encode("utf-8")
        if fmt in ("json", "sarif"):
            json.loads(out)


def test_sarif_uri_percent_encodes_the_names_bytes():
    log = json.loads(rendered("sarif", [make_finding(path=f"sub/{BAD}", fix=CLIP_FIX)]))
    (result,) = log["runs"][0]["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "sub/bad%FF.py"
    assert result["fixes"][0]["artifactChanges"][0]["artifactLocation"]["uri"] == "sub/bad%FF.py"
    absolute = json.loads(rendered("sarif", [make_finding(path=f"/repo/{BAD}")], root=Path("/elsewhere")))
    location = absolute["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location["uri"] == "file:///repo/bad%FF.py"


def test_text_and_github_show_the_name_with_the_byte_escaped():
    assert rendered("text", [make_finding(path=BAD)]).startswith("bad\\xff.py:3:5: GL101")
    assert "file=bad\\xff.py," in rendered("github", [make_finding(path=BAD)])


@pytest.fixture
def bad_name_folder(tmp_path) -> Path:
    try:
        with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.py"), "w") as out:
            out.write(TRAINING)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    return tmp_path


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("to_file", [False, True], ids=["stdout", "output"])
def test_cli_writes_every_format_for_a_name_that_is_not_utf8(bad_name_folder, fmt, to_file):
    args = [sys.executable, "-m", "gradlint", "check", "--no-cache", "--format", fmt, "."]
    if to_file:
        args += ["--output", "report.out"]
    run = subprocess.run(
        args, cwd=bad_name_folder, capture_output=True, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},  # a strict UTF-8 stdout
    )
    assert b"Traceback" not in run.stderr, run.stderr.decode("utf-8", "replace")
    assert run.returncode == 1
    out = (bad_name_folder / "report.out").read_bytes() if to_file else run.stdout
    text = out.decode("utf-8")
    assert "GL101" in text
    expected = {"sarif": "bad%FF.py", "json": "bad\\udcff.py"}.get(fmt, "bad\\xff.py")
    assert expected in text


def test_summary_never_says_all_checks_passed_with_a_file_not_checked():
    assert rendered("text", [], files_not_checked=1).splitlines() == [
        "No findings (1 file).",
        "1 file not checked (see the messages on stderr).",
    ]
    lines = render([make_finding()], "text", rules=sample_rules(), files_checked=3, files_not_checked=2).splitlines()
    assert lines[-1] == "2 files not checked (see the messages on stderr)."
    assert rendered("text", [], statistics=True, files_not_checked=1).splitlines()[-1].startswith("1 file not checked")
    assert rendered("text", []) == "All checks passed! (1 file)\n"


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_machine_formats_take_the_count_and_do_not_change(fmt):
    findings = [make_finding()]
    assert rendered(fmt, findings, files_not_checked=3) == rendered(fmt, findings)
