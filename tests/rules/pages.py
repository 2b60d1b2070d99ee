"""Read the rule pages in rules/: their sections and the code examples under each."""
from __future__ import annotations

import re
from pathlib import Path

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
SECTIONS = ("What it does", "Why it matters", "Example", "Use instead", "Options", "Fix")
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def page_codes() -> list[str]:
    return sorted(p.stem for p in RULES_DIR.glob("GL*.md"))


def sections(code: str) -> dict[str, str]:
    text = (RULES_DIR / f"{code}.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def examples(code: str, section: str) -> list[str]:
    return _BLOCK.findall(sections(code).get(section, ""))
