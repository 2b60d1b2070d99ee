"""gradlint: find the causes of exploding gradients in training code, and prove them."""
from __future__ import annotations

from typing import TYPE_CHECKING

from gradlint.version import __version__

__all__ = ["__version__", "Finding", "Severity", "lint_paths", "lint_source", "GradientMonitor"]

if TYPE_CHECKING:
    from gradlint.engine import lint_paths
    from gradlint.lint import lint_source
    from gradlint.findings import Finding, Severity
    from gradlint.probe import GradientMonitor


def __getattr__(name: str):
    # Lazy, so that `import gradlint` stays cheap (pre-commit runs it on every commit).
    if name == "lint_paths":
        from gradlint.engine import lint_paths

        return lint_paths
    if name == "lint_source":
        from gradlint.lint import lint_source

        return lint_source
    if name in ("Finding", "Severity"):
        import gradlint.findings

        return getattr(gradlint.findings, name)
    if name == "GradientMonitor":
        from gradlint.probe import GradientMonitor

        return GradientMonitor
    raise AttributeError(f"module 'gradlint' has no attribute {name!r}")
