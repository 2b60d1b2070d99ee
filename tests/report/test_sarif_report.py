from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_helpers import CLIP_FIX, make_finding, sample_findings, sample_rules

from gradlint.findings import Severity
from gradlint.report import render

jsonschema = pytest.importorskip("jsonschema")

# In CI the repository is cloned beside a copy of shared/, so look next to the repo, not at /work.
SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shared" / "schemas" / "sarif-schema-2.1.0.json"


def sarif(findings, rules=None, root: Path | None = None) -> dict:
    rules = sample_rules() if rules is None else rules
    out = render(findings, "sarif", rules=rules, files_checked=3, root=root)
    assert out.endswith("\n")
    return json.loads(out)


def assert_valid(log: dict) -> None:
    if not SCHEMA_PATH.is_file():
        pytest.skip(f"SARIF schema not found at {SCHEMA_PATH} (shared/ must sit beside the repository)")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)  # the schema says draft-04
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_findings_give_a_schema_valid_log():
    findings = sample_findings() + [make_finding(path="nb.ipynb", cell=2, fix=CLIP_FIX)]
    assert_valid(sarif(findings))


def test_no_findings_give_a_valid_log_with_empty_results():
    log = sarif([])
    assert_valid(log)
    assert log["version"] == "2.1.0"
    assert "$schema" in log
    assert log["runs"][0]["results"] == []
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == 4


def test_schema_validation_catches_a_broken_log():
    log = sarif(sample_findings())
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError):
        assert_valid(log)


def test_driver_lists_every_rule_with_help():
    driver = sarif([])["runs"][0]["tool"]["driver"]
    assert driver["name"] == "gradlint"
    assert driver["version"]  # "0.0.0" when gradlint is not installed
    assert driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == ["GL001", "GL101", "GL201", "GL301"]
    gl101 = driver["rules"][1]
    assert gl101["name"] == "rnn-without-clipping"
    assert gl101["fullDescription"]["text"] == "Recurrent model trained without gradient clipping."
    assert gl101["helpUri"].endswith("/rules/GL101.md")
    assert gl101["helpUri"] in gl101["help"]["text"]
    assert f"]({gl101['helpUri']})" in gl101["help"]["markdown"]
    assert gl101["properties"]["tags"]
    assert [r["defaultConfiguration"]["level"] for r in driver["rules"]] == ["error", "warning", "error", "note"]


def test_results_point_at_their_rule_and_region():
    log = sarif(sample_findings())
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    results = log["runs"][0]["results"]
    assert [r["level"] for r in results] == ["warning", "error", "warning", "note"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    first = results[0]
    assert first["message"]["text"] == "LSTM trained without gradient clipping"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "train.py"}
    assert location["region"] == {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 15}


def test_finding_for_a_rule_not_passed_in_still_has_a_rule_entry():
    log = sarif([make_finding(code="GL999", name="mystery")], rules=[])
    assert_valid(log)
    result = log["runs"][0]["results"][0]
    assert log["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "GL999"


def test_paths_under_root_are_relative_with_srcroot(tmp_path: Path):
    inside = str(tmp_path / "pkg" / "my train.py")
    outside = str(tmp_path.parent / "elsewhere.py")
    log = sarif([make_finding(path=inside), make_finding(path=outside)], root=tmp_path)
    assert_valid(log)
    run = log["runs"][0]
    first, second = (r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"])
    assert first == {"uri": "pkg/my%20train.py", "uriBaseId": "%SRCROOT%"}
    assert second["uri"].startswith("file://") and "uriBaseId" not in second
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")


def test_relative_paths_are_resolved_from_the_working_directory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = sarif([make_finding(path="./src/train.py")], root=tmp_path)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "src/train.py", "uriBaseId": "%SRCROOT%"}


def test_notebook_cell_in_message_and_properties_with_line_as_given():
    log = sarif([make_finding(path="nb.ipynb", cell=3, line=4, column=1, fix=CLIP_FIX)])
    result = log["runs"][0]["results"][0]
    assert result["message"]["text"] == "cell 3: LSTM trained without gradient clipping"
    assert result["properties"] == {"cell": 3}
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 4
    # Fix offsets are into the cell's text, not the .ipynb file, so no SARIF fix is offered.
    assert "fixes" not in result


def test_fix_becomes_a_sarif_replacement():
    result = sarif([make_finding(fix=CLIP_FIX)])["runs"][0]["results"][0]
    (fix,) = result["fixes"]
    assert fix["description"]["text"] == "Clip gradients before optimizer.step()"
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "train.py"
    assert change["replacements"] == [
        {
            "deletedRegion": {"charOffset": 120, "charLength": 0},
            "insertedContent": {"text": "clip_grad_norm_(model.parameters(), 1.0)\n"},
        }
    ]


def test_fingerprints_are_stable_across_line_moves_and_distinct_for_duplicates():
    moved = sarif([make_finding(line=3)])["runs"][0]["results"][0]["partialFingerprints"]
    again = sarif([make_finding(line=40)])["runs"][0]["results"][0]["partialFingerprints"]
    assert moved == again
    other = sarif([make_finding(message="another message")])["runs"][0]["results"][0]["partialFingerprints"]
    assert other != moved
    twins = sarif([make_finding(line=3), make_finding(line=9)])["runs"][0]["results"]
    assert twins[0]["partialFingerprints"] != twins[1]["partialFingerprints"]


def test_bad_end_position_is_dropped_not_emitted():
    log = sarif([make_finding(line=5, column=3, end_line=5, end_column=0, severity=Severity.ERROR)])
    assert_valid(log)
    assert log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 5,
        "startColumn": 3,
    }


def test_result_message_is_the_message_and_the_help_goes_alongside():
    finding = make_finding(fix=CLIP_FIX, help="add `torch.nn.utils.clip_grad_norm_(params, 1.0)`")
    log = sarif([finding, make_finding(path="nb.ipynb", cell=2, help="add `clipnorm=1.0`")])
    assert_valid(log)
    result, notebook = log["runs"][0]["results"]
    assert result["message"]["text"] == "LSTM trained without gradient clipping"
    assert result["properties"] == {"help": "add `torch.nn.utils.clip_grad_norm_(params, 1.0)`"}
    assert result["fixes"][0]["artifactChanges"][0]["replacements"]
    assert notebook["properties"] == {"help": "add `clipnorm=1.0`", "cell": 2}
    # The rule's own help (its summary and page) is in the descriptor the result points at.
    rule = log["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]
    assert rule["help"]["text"] and rule["helpUri"].endswith("GL101.md")
