"""Thin adapters that run a GradientMonitor inside Lightning and Hugging Face training.

Each framework is imported only when its adapter is built, so gradlint needs neither. After training, the
verdict is in `callback.result` (a ProbeResult) and the report is printed once.
"""
from __future__ import annotations

from typing import Any

from gradlint.probe.analysis import ProbeResult
from gradlint.probe.monitor import GradientMonitor


def lightning_callback(print_report: bool = True) -> Any:
    """A `lightning.pytorch.Callback` (or `pytorch_lightning.Callback`) that probes `trainer.fit`."""
    try:
        from lightning.pytorch import Callback
    except ImportError:
        from pytorch_lightning import Callback

    class GradlintProbeCallback(Callback):
        def __init__(self) -> None:
            self.monitor: GradientMonitor | None = None
            self.result: ProbeResult | None = None

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            # Lightning calls optimizer.step itself: the global step hooks see every optimizer it steps.
            self.monitor = GradientMonitor(pl_module)

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            if self.monitor is None:
                return
            self.monitor.close()
            self.result = self.monitor.report() if print_report else self.monitor.result()

    return GradlintProbeCallback()


def huggingface_callback(print_report: bool = True) -> Any:
    """A `transformers.TrainerCallback` that probes `Trainer.train`."""
    from transformers import TrainerCallback

    class GradlintProbeCallback(TrainerCallback):
        def __init__(self) -> None:
            self.monitor: GradientMonitor | None = None
            self.result: ProbeResult | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if model is not None:
                self.monitor = GradientMonitor(model)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.monitor is None:
                return
            self.monitor.close()
            self.result = self.monitor.report() if print_report else self.monitor.result()

    return GradlintProbeCallback()
