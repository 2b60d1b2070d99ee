"""gradlint: find the causes of exploding gradients in training code, and prove them."""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["__version__", "Finding", "Severity", "lint_paths", "lint_source", "GradientMonitor"]

if TYPE_CHECKING:
    from gradlint.engine import lint_paths, lint_source
    from gradlint.findings import Finding, Severity
    from gradlint.probe import GradientMonitor


def __getattr__(name: str):
    # Lazy, so that `import gradlint` stays cheap (pre-commit runs it on every commit).
    if name in ("lint_paths", "lint_source"):
        from gradlint import engine

        return getattr(engine, name)
    if name in ("Finding", "Severity"):
        from gradlint import findings

        return getattr(findings, name)
    if name == "GradientMonitor":
        from gradlint.probe import GradientMonitor

        return GradientMonitor
    raise AttributeError(f"module 'gradlint' has no attribute {name!r}")
