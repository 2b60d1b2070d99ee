"""The runtime probe: run training for a few steps and tell whether its gradients explode.

Importing this package does not import torch; GradientMonitor imports it when it starts watching.
The monitor itself is imported on first use, so that the linter's start-up (which registers the
probe command) does not pay for it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["GradientMonitor"]

if TYPE_CHECKING:
    from gradlint.probe.monitor import GradientMonitor


def __getattr__(name: str):
    if name == "GradientMonitor":
        from gradlint.probe.monitor import GradientMonitor

        return GradientMonitor
    raise AttributeError(f"module 'gradlint.probe' has no attribute {name!r}")
