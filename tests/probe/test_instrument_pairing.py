"""Each step is paired with the backward whose gradients it applies, also when the backward runs inside
optimizer.step(closure) as Lightning and LBFGS do (issue 12, item 10). In-process, fast."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from gradlint.probe.instrument import Recorder  # noqa: E402


def test_step_with_closure_records_the_gradients_it_applies():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    features, targets = torch.randn(32, 4), torch.randn(32, 1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(features), targets)
        loss.backward()
        return loss

    expected = []
    for _ in range(3):  # the gradient norm and loss at the weights each step starts from, without the probe
        with torch.enable_grad():
            loss = nn.functional.mse_loss(model(features), targets)
            grads = torch.autograd.grad(loss, list(model.parameters()))
        expected.append((torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads])).item(), loss.item()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= 0.1 * g
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    records = []
    recorder = Recorder(records.append, roots=[model])
    recorder.install()
    try:
        for _ in range(3):
            optimizer.step(closure)
    finally:
        recorder.uninstall()
    got = [(r["grad_norm"], r["loss"]) for r in records if r["type"] == "step"]
    assert got == [pytest.approx(pair, rel=1e-5) for pair in expected]
