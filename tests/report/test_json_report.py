from __future__ import annotations

import json

import pytest
from report_helpers import CLIP_FIX, make_finding, sample_findings, sample_rules

from gradlint.report import FORMATS, render


def as_json(findings) -> str:
    return render(findings, "json", rules=sample_rules(), files_checked=3)


def test_json_is_an_array_of_finding_dicts():
    findings = sample_findings()
    out = as_json(findings)
    assert json.loads(out) == [f.to_dict() for f in findings]
    assert out.endswith("]\n")
    assert out.startswith("[\n  {")  # indent 2


def test_json_keeps_fix_edits_and_notebook_cell():
    findings = [make_finding(fix=CLIP_FIX), make_finding(path="nb.ipynb", cell=2)]
    first, second = json.loads(as_json(findings))
    assert first["cell"] is None
    assert first["fix"] == {
        "description": "Clip gradients before optimizer.step()",
        "edits": [{"start": 120, "end": 120, "text": "clip_grad_norm_(model.parameters(), 1.0)\n"}],
    }
    assert second["cell"] == 2 and second["fix"] is None
    assert set(first) >= {"code", "name", "severity", "path", "line", "column", "end_line", "end_column", "message"}


def test_json_with_no_findings_is_an_empty_array():
    assert as_json([]) == "[]\n"


def test_unknown_format_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        render([], "xml", rules=[], files_checked=0)


def test_every_advertised_format_renders():
    for fmt in FORMATS:
        assert isinstance(render(sample_findings(), fmt, rules=sample_rules(), files_checked=1), str)


def test_json_carries_the_help_apart_from_the_message():
    findings = [make_finding(help="add `clipnorm=1.0` to the optimizer"), make_finding()]
    first, second = json.loads(as_json(findings))
    assert first["message"] == "LSTM trained without gradient clipping"
    assert first["help"] == "add `clipnorm=1.0` to the optimizer"
    assert second["help"] is None
