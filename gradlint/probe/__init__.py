"""The runtime probe: run training for a few steps and tell whether its gradients explode.

Importing this package does not import torch; GradientMonitor imports it when it starts watching.
"""
from gradlint.probe.monitor import GradientMonitor

__all__ = ["GradientMonitor"]
