"""The rule registry: every rule's code, name, severity and check function."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from gradlint.catalog import CODES
from gradlint.findings import SYNTAX_ERROR, Severity

if TYPE_CHECKING:
    from gradlint.checks.context import CheckContext
    from gradlint.findings import Finding

CheckFn = Callable[["CheckContext"], Iterable["Finding"]]

DOCS_URL = "https://github.com/gradlint/gradlint/blob/main/rules/{code}.md"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str
    check: CheckFn | None = None
    fixable: bool = False
    options: tuple[str, ...] = ()

    @property
    def help_uri(self) -> str:
        return DOCS_URL.format(code=self.code)


RULES: dict[str, Rule] = {}


def register(
    code: str,
    name: str,
    severity: Severity,
    summary: str,
    *,
    fixable: bool = False,
    options: tuple[str, ...] = (),
) -> Callable[[CheckFn], CheckFn]:
    """Decorator that adds a check function to the registry under `code`."""

    def wrap(fn: CheckFn) -> CheckFn:
        if code in RULES:
            raise ValueError(f"rule code {code} registered twice")
        if code not in CODES:
            raise ValueError(f"rule code {code} is not in the catalog (gradlint/catalog.py)")
        RULES[code] = Rule(code, name, severity, summary, fn, fixable, options)
        return fn

    return wrap


RULES["GL001"] = Rule(
    "GL001",
    SYNTAX_ERROR,
    Severity.ERROR,
    "The file cannot be read or parsed.",
)
