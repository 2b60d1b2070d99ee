"""What a check function receives: the file's facts, the rule options, and a way to report."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from gradlint.checks.registry import RULES
from gradlint.config import DEFAULT_OPTIONS
from gradlint.facts import FileFacts
from gradlint.findings import Finding, Fix


@dataclass
class CheckContext:
    facts: FileFacts
    options: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> Any:
        return self.options.get(name, DEFAULT_OPTIONS[name])

    def finding(
        self, code: str, node: cst.CSTNode, message: str, help: str | None = None, fix: Fix | None = None
    ) -> Finding:
        rule = RULES[code]
        anchor = self.facts.loops.anchors.get(id(node))
        if anchor is not None:
            # Code of another file of the project on this file's training path: reported at the call here
            # that runs it (that file alone may not know the model); its fix would edit the other file.
            site, elsewhere = anchor
            where = self.where(node, elsewhere)
            message = f"{message} (at {where}, run by this call)"
            if fix is not None and help is not None:
                help = f"{help} (no automatic fix: the code to change is at {where}, in another file)"
            node, fix = site.node, None
        line, column, end_line, end_column = self.facts.span(node)
        return Finding(
            code=code,
            name=rule.name,
            severity=rule.severity,
            path=self.facts.path,
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            message=message,
            fix=fix,
            help=help,
        )

    def where(self, node: cst.CSTNode, facts: FileFacts | None = None) -> str:
        """`line 12`, or `model.py:12` for a node of another file."""
        anchor = self.facts.loops.anchors.get(id(node)) if facts is None else None
        owner = facts or (anchor[1] if anchor is not None else self.facts)
        if owner.site_of(node) is None and self.facts.project is not None:
            # Values and layers reach a rule from other files without saying so (`--lr` of config.py).
            owner = self.facts.project.facts_of(node) or owner
        line = owner.line(node)
        if owner is self.facts:
            return f"line {line}"
        from pathlib import Path

        return f"{Path(owner.path).name}:{line}"
