"""GradientMonitor: the probe inside your own loop (a notebook, a custom trainer), with the same verdicts.

    monitor = GradientMonitor(model, optimizer)
    for batch in loader:
        ...  # your loop, unchanged
    result = monitor.report()  # prints the report and returns the ProbeResult
    monitor.close()

It uses the same hooks and the same analysis as `gradlint probe`. torch is imported when monitoring starts,
not when this module is imported.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradlint.probe.analysis import ProbeResult, analyze
from gradlint.probe.records import EndRecord, RecurrentRecord, RunInfo, StepRecord

if TYPE_CHECKING:
    import torch
    from rich.console import Console


class GradientMonitor:
    """Watch one model (and optionally one optimizer) from now until close().

    Without an optimizer, steps of any torch optimizer count, and so do hand-written updates after backward().
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        from gradlint.probe.instrument import Recorder

        self.steps: list[StepRecord] = []
        self.recurrent: list[RecurrentRecord] = []
        self._recorder: Any = Recorder(
            self._collect, roots=[model], optimizers=[optimizer] if optimizer is not None else None
        )
        self._recorder.install()
        self._closed = False

    def _collect(self, record: dict[str, Any]) -> None:
        if record["type"] == "step":
            self.steps.append(StepRecord.from_json(record))
        elif record["type"] == "recurrent":
            self.recurrent.append(RecurrentRecord.from_json(record))

    def result(self) -> ProbeResult:
        """The verdict over the steps seen so far."""
        end = EndRecord(
            "completed" if self._closed else "running",
            forward_calls=self._recorder.forward_calls,
            backward_calls=self._recorder.backward_calls,
        )
        return analyze(list(self.steps), list(self.recurrent), RunInfo(end=end))

    def report(self, console: Console | None = None) -> ProbeResult:
        """Print the text report (to stdout, or the given rich console) and return the result."""
        from rich.console import Console

        from gradlint.probe.report import render_text

        result = self.result()
        render_text("GradientMonitor", result, None, console or Console())
        return result

    def close(self) -> None:
        """Measure a last hand-written update still pending, and remove every hook."""
        if self._closed:
            return
        self._recorder.finish()
        self._recorder.uninstall()
        self._closed = True

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
