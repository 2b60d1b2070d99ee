"""The forward NaN/Inf checks: one reduction per layer that can make a value non-finite (issue 13, item 3),
and the origin still named right."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import gradlint.probe.instrument as instrument  # noqa: E402
from gradlint.probe.instrument import Recorder  # noqa: E402


def _train_one_step(model, inputs):
    records = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder(records.append)
    recorder.install()
    try:
        loss = model(inputs).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    finally:
        recorder.uninstall()
    return [r for r in records if r["type"] == "step"]


def test_activations_and_the_container_passing_its_last_output_on_are_not_checked(monkeypatch):
    checked = []
    real = instrument._finite_probe
    monkeypatch.setattr(instrument, "_finite_probe", lambda t: checked.append(t.shape) or real(t))
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2))
    steps = _train_one_step(model, torch.ones(3, 4))
    assert len(steps) == 1 and steps[0]["nonfinite"] == []
    # The input batch and the two Linear outputs; not the ReLU, the Dropout, nor the Sequential's own output.
    assert checked == [torch.Size([3, 4]), torch.Size([3, 8]), torch.Size([3, 2])]


def test_the_layer_that_overflows_is_named_not_the_activation_after_it():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    with torch.no_grad():
        model[2].weight.fill_(math.inf)
    steps = _train_one_step(model, torch.ones(2, 4))
    assert "loss" in steps[0]["nonfinite"]
    assert steps[0]["nonfinite_origin"].endswith("2")


class _Doubling(torch.nn.Module):
    """A container that writes its last child's output in place: that output must be checked again."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)

    def forward(self, x):
        out = self.layer(x)
        out.mul_(math.inf)
        return out


def test_an_output_written_in_place_after_its_check_is_checked_again():
    steps = _train_one_step(_Doubling(), torch.ones(1, 2))
    assert steps[0]["nonfinite_origin"] == "_Doubling"
