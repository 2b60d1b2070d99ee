"""Hand-built findings and rules shared by the reporter tests.

A uniquely named module rather than conftest.py, so the tests can import from it by name.
"""
from __future__ import annotations

from gradlint.checks.registry import Rule
from gradlint.findings import Edit, Finding, Fix, Severity


def make_finding(
    code: str = "GL101",
    name: str = "rnn-without-clipping",
    severity: Severity = Severity.WARNING,
    path: str = "train.py",
    line: int = 3,
    column: int = 5,
    end_line: int | None = None,
    end_column: int | None = None,
    message: str = "LSTM trained without gradient clipping",
    fix: Fix | None = None,
    cell: int | None = None,
    help: str | None = None,
) -> Finding:
    return Finding(
        code=code,
        name=name,
        severity=severity,
        path=path,
        line=line,
        column=column,
        end_line=line if end_line is None else end_line,
        end_column=column + 10 if end_column is None else end_column,
        message=message,
        fix=fix,
        cell=cell,
        help=help,
    )


CLIP_FIX = Fix(
    "Clip gradients before optimizer.step()",
    (Edit(120, 120, "clip_grad_norm_(model.parameters(), 1.0)\n"),),
)


def sample_rules() -> list[Rule]:
    return [
        Rule("GL001", "syntax-error", Severity.ERROR, "The file cannot be read or parsed."),
        Rule(
            "GL101",
            "rnn-without-clipping",
            Severity.WARNING,
            "Recurrent model trained without gradient clipping.",
            fixable=True,
        ),
        Rule("GL201", "sgd-lr-too-high", Severity.ERROR, "SGD learning rate far above a stable range."),
        Rule("GL301", "plain-deep-stack", Severity.INFO, "Deep stack with no normalization or residuals."),
    ]


def sample_findings() -> list[Finding]:
    return [
        make_finding(fix=CLIP_FIX),
        make_finding(
            code="GL201", name="sgd-lr-too-high", severity=Severity.ERROR, line=7, message="SGD lr=10.0 is too high"
        ),
        make_finding(code="GL101", path="model.py", line=12, fix=CLIP_FIX),
        make_finding(
            code="GL301",
            name="plain-deep-stack",
            severity=Severity.INFO,
            path="model.py",
            line=20,
            message="40 plain layers",
        ),
    ]
