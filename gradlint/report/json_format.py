"""The json format: one object per finding, as Finding.to_dict() gives it."""
from __future__ import annotations

import json
from typing import Sequence

from gradlint.findings import Finding


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"
