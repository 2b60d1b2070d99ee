"""The rules, grouped by family. Importing this package registers every rule."""
from __future__ import annotations

from gradlint.checks import architecture, clipping, data, loop, regularization  # noqa: F401  (register the rules)
from gradlint.checks.registry import RULES, Rule


def all_rules() -> list[Rule]:
    """Every rule, sorted by code."""
    return [RULES[c] for c in sorted(RULES)]
