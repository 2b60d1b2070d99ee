"""GradientMonitor inside an ordinary loop, and the framework adapters where those frameworks are installed."""
from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch")
from rich.console import Console  # noqa: E402
from torch import nn  # noqa: E402

from gradlint.probe import GradientMonitor  # noqa: E402


def train(model: nn.Module, optimizer: torch.optim.Optimizer | None, steps: int, lr: float = 0.0) -> None:
    features = torch.randn(64, 8)
    targets = features.sum(dim=1, keepdim=True)
    for _ in range(steps):
        loss = nn.functional.mse_loss(model(features), targets)
        if optimizer is not None:
            optimizer.zero_grad()
        loss.backward()
        if optimizer is not None:
            optimizer.step()
        else:
            with torch.no_grad():
                for p in model.parameters():
                    p -= lr * p.grad
                    p.grad = None


def test_monitor_gives_healthy_for_a_sane_loop_with_in_place_ops():
    torch.manual_seed(0)
    # In-place ReLU and an in-place add: global backward module hooks would break this model.
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(inplace=True), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    with GradientMonitor(model, optimizer) as monitor:
        train(model, optimizer, steps=6)
    result = monitor.result()
    assert result.verdict == "healthy"
    assert len(result.steps) == 6
    assert "Sequential.0.weight" in result.steps[0].grad_norms


def test_monitor_sees_a_hand_written_update_explode():
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    monitor = GradientMonitor(model)
    train(model, None, steps=12, lr=1.5)  # past 2 / curvature: the MSE curvature here is about 2-3
    monitor.close()
    result = monitor.result()
    assert result.verdict == "exploding"
    assert {s.kind for s in result.steps} == {"backward"}


def test_monitor_report_prints_the_verdict_and_closing_removes_the_hooks():
    torch.manual_seed(0)
    model = nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    monitor = GradientMonitor(model, optimizer)
    train(model, optimizer, steps=4)
    out = io.StringIO()
    monitor.report(Console(file=out, width=120))
    assert out.getvalue().startswith("HEALTHY")
    monitor.close()
    train(model, optimizer, steps=2)
    assert len(monitor.steps) == 4
    assert torch.Tensor.backward.__name__ == "backward" and not hasattr(torch.Tensor.backward, "__wrapped__")


def test_lightning_callback_builds_when_lightning_is_installed():
    pytest.importorskip("lightning")
    from gradlint.probe.integrations import lightning_callback

    callback = lightning_callback()
    assert callback.result is None


def test_huggingface_callback_builds_when_transformers_is_installed():
    pytest.importorskip("transformers")
    from gradlint.probe.integrations import huggingface_callback

    callback = huggingface_callback()
    assert callback.result is None
