"""Shared helpers for the per-rule fixture tests: the codes a file or a snippet is reported with."""
from __future__ import annotations

from pathlib import Path

from gradlint import lint_paths, lint_source

STATIC = Path(__file__).resolve().parents[2] / "fixtures" / "static"

# An LSTM trained with no clipping: GL101 at the step (line 11), and nothing else.
FLAGGED = """import torch
from torch import nn

model = nn.LSTM(10, 20)
opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)
for x, y in loader:
    opt.zero_grad()
    out, _ = model(x)
    loss = ((out - y) ** 2).mean()
    loss.backward()
    opt.step()
"""


def fixtures(code: str, kind: str) -> list[Path]:
    return sorted((STATIC / code / kind).glob("*.py"))


def count(path: Path, code: str) -> int:
    return [f.code for f in lint_paths([path]).findings].count(code)


def findings(source: str, code: str, settings=None) -> list:
    return [f for f in lint_source(source, settings=settings) if f.code == code]


def only(code: str, name: str):
    """The one finding of `code` on the flagged fixture `name`."""
    [finding] = [f for f in lint_paths([STATIC / code / "flagged" / name]).findings if f.code == code]
    return finding
