"""The README's rules table and Quick start stay true to the code."""
from __future__ import annotations

import re
from pathlib import Path

from gradlint.checks import all_rules

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_rules_table_matches_the_registry():
    rows = re.findall(r"^\| (GL\d{3}) \| ([a-z-]+) \| (\w+) \| (\w+) \|$", README, re.MULTILINE)
    expected = [(r.code, r.name, r.severity.value, "yes" if r.fixable else "no") for r in all_rules()]
    assert rows == expected


def test_quick_start_has_two_shell_blocks_before_anything_else():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", quick, re.DOTALL)
    assert [lang for lang, _ in blocks] == ["bash", "bash"]
    assert "gradlint check fixtures/" in blocks[0][1]
    assert "pytest" in blocks[1][1]
