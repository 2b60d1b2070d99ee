"""Every rule on its fixtures: each flagged script is reported (once, unless said), each clean look-alike is not."""
from __future__ import annotations

import pytest
from rule_fixtures import STATIC, count

# Scripts reported more than once: GL303 reports every oversized init call of a network.
EXPECTED = {("GL303", "randn_parameters"): 3, ("GL303", "randn_manual_regression"): 3}

CASES = [
    (code.name, kind, script)
    for code in sorted(STATIC.iterdir())
    for kind in ("flagged", "clean")
    for script in sorted([*(code / kind).glob("*.py"), *(code / kind).glob("*.ipynb")])
]


@pytest.mark.parametrize("code, kind, script", CASES, ids=lambda v: getattr(v, "stem", v))
def test_fixture_is_reported_as_its_folder_says(code, kind, script):
    expected = EXPECTED.get((code, script.stem), 1) if kind == "flagged" else 0
    assert count(script, code) == expected


def test_every_rule_has_flagged_and_clean_fixtures():
    from gradlint.checks import all_rules

    for rule in all_rules():
        if rule.check is None:
            continue
        assert (STATIC / rule.code / "flagged").is_dir() and (STATIC / rule.code / "clean").is_dir(), rule.code
