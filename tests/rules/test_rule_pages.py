"""Every rule has a page, every page a rule, and each page's examples behave as the page says."""
from __future__ import annotations

import pytest

from gradlint import lint_source
from gradlint.checks import all_rules

from pages import SECTIONS, examples, page_codes, sections

CODES = [r.code for r in all_rules()]
CHECKED = [c for c in CODES if c != "GL001"]


def test_every_rule_has_a_page_and_every_page_a_rule():
    assert sorted(CODES) == page_codes()


def test_codes_are_distinct_and_well_formed():
    names = [r.name for r in all_rules()]
    assert len(set(names)) == len(names)
    assert all(len(c) == 5 and c.startswith("GL") and c[2:].isdigit() for c in CODES)


@pytest.mark.parametrize("code", CODES)
def test_page_has_every_section(code):
    assert [s for s in SECTIONS if s not in sections(code)] == []


@pytest.mark.parametrize("code", CHECKED)
def test_page_example_is_flagged(code):
    blocks = examples(code, "Example")
    assert blocks, f"{code}.md has no python example"
    for block in blocks:
        found = [f.code for f in lint_source(block, f"{code}_example.py")]
        assert code in found, f"{code} example not flagged:\n{block}"


@pytest.mark.parametrize("code", CHECKED)
def test_page_use_instead_is_clean(code):
    blocks = examples(code, "Use instead")
    assert blocks, f"{code}.md has no 'use instead' example"
    for block in blocks:
        found = [f.code for f in lint_source(block, f"{code}_clean.py")]
        assert code not in found, f"{code} fires on its clean example:\n{block}"


@pytest.mark.parametrize("rule", [r for r in all_rules() if r.check is not None], ids=lambda r: r.code)
def test_page_fix_section_shows_the_fix_or_says_there_is_none(rule):
    from gradlint.config import Settings
    from gradlint.fix.apply import fix_text

    shown = examples(rule.code, "Fix")
    if rule.fixable:
        [expected] = shown
        first = examples(rule.code, "Example")[0]
        assert fix_text(first, f"{rule.code}_example.py", Settings())[0] == expected
    else:
        assert shown == []
        assert sections(rule.code)["Fix"].strip().startswith("None")
