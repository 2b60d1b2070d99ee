"""Gradient norms are exact for every finite value, whatever the dtype or layout (issue 12, item 1 and 4)."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from gradlint.probe.instrument import Recorder, _norms, exact_norm  # noqa: E402


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([3e20, 4e20], torch.float32, 5e20),  # squares overflow float32
        ([30000.0, 40000.0], torch.float16, 50000.0),
        ([3e4, 4e4, 6e4], torch.float16, math.sqrt(9e8 + 16e8 + 36e8)),  # norm above float16's 65504
        ([3e37, 4e37], torch.bfloat16, 5e37),
        ([3e200, 4e200], torch.float64, 5e200),  # squares overflow even float64
        ([3e20 + 4e20j], torch.complex64, 5e20),
    ],
)
def test_exact_norm_of_huge_finite_values(values, dtype, expected):
    tensor = torch.tensor(values, dtype=dtype)
    assert exact_norm(tensor) == pytest.approx(float(torch.tensor(expected, dtype=torch.float64)), rel=1e-2)


def test_fast_norms_agree_with_float64_whatever_the_layout():
    tensors = [torch.randn(300, 200), torch.randn(50, 40).t(), torch.empty(0), torch.randn(7, dtype=torch.float64)]
    got = [float(norm) for norm in _norms(tensors)]
    assert got == pytest.approx([float(t.double().norm()) for t in tensors], rel=1e-6)


def test_exact_norm_keeps_real_non_finite_values():
    assert math.isinf(exact_norm(torch.tensor([1.0, math.inf])))
    assert math.isnan(exact_norm(torch.tensor([1.0, math.nan])))


def test_sparse_gradient_norm_sums_repeated_indices_first():
    # Row 1 twice (2 + 2 after summing), row 2 once (1 + 1).
    grad = torch.sparse_coo_tensor([[1, 1, 2]], torch.ones(3, 2), (5, 2), check_invariants=True)
    assert exact_norm(grad) == pytest.approx(math.sqrt(4 + 4 + 1 + 1))


def test_recorder_measures_float16_model_norms_above_float16_range():
    records = []
    model = torch.nn.Linear(64, 64).half()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    recorder = Recorder(records.append, roots=[model])
    recorder.install()
    try:
        for _ in range(2):
            optimizer.zero_grad()
            model.weight.grad = torch.full((64, 64), 2000.0, dtype=torch.float16)  # norm 128000
            model.bias.grad = torch.zeros(64, dtype=torch.float16)
            optimizer.step()
    finally:
        recorder.uninstall()
    assert records[0]["grad_norm"] == pytest.approx(128000.0)
    assert records[0]["nonfinite"] == []


def test_recorder_measures_complex_and_float64_parameters():
    records = []
    weights = {
        "complex": torch.nn.Parameter(torch.tensor([3.0 + 4.0j], dtype=torch.complex64)),
        "double": torch.nn.Parameter(torch.tensor([1e200], dtype=torch.float64)),
    }
    optimizer = torch.optim.SGD(weights.values(), lr=0.0)
    recorder = Recorder(records.append)
    recorder.install()
    try:
        weights["complex"].grad = torch.tensor([3e20 + 4e20j], dtype=torch.complex64)
        weights["double"].grad = torch.tensor([1e200], dtype=torch.float64)
        optimizer.step()
    finally:
        recorder.uninstall()
    assert sorted(records[0]["grad_norms"].values()) == [pytest.approx(5e20), pytest.approx(1e200)]
    assert records[0]["param_norm"] == pytest.approx(1e200)
    assert records[0]["nonfinite"] == []


def _train(model, optimizer, steps: int, max_steps: int | None = None):
    """Records of a small regression run, and each step's parameters (before, after), copied."""
    inputs, targets = torch.randn(16, 8), torch.randn(16, 4)
    records, snapshots = [], []
    recorder = Recorder(records.append, max_steps=max_steps)
    recorder.install()
    try:
        for _ in range(steps):
            loss = torch.nn.functional.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            before = [p.detach().clone() for p in model.parameters()]
            optimizer.step()
            snapshots.append((before, [p.detach().clone() for p in model.parameters()]))
    finally:
        recorder.uninstall()
    return [r for r in records if r["type"] == "step"], snapshots


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.cat([t.reshape(-1) for t in tensors]).double().norm())


def _train_linear(lr: float, steps: int) -> tuple[list[dict], list[float]]:
    """Records of a small SGD run whose budget is `steps`, and the true parameter norm after each step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    records, snapshots = _train(model, torch.optim.SGD(model.parameters(), lr=lr), steps, max_steps=steps)
    return records, [_norm(after) for _, after in snapshots]


def test_parameter_norms_of_quiet_steps_are_measured_every_fourth_step_and_at_the_end():
    steps, truth = _train_linear(lr=1e-4, steps=10)
    assert all(step["update_ratio"] < 0.01 for step in steps)
    measured = [step["step"] for step in steps if step["param_norm"] is not None]
    assert measured == [1, 5, 9, 10]
    for step in steps:
        if step["param_norm"] is None:
            assert step["param_norms"] == {}
        else:
            assert step["param_norm"] == pytest.approx(truth[step["step"] - 1], rel=1e-6)
            assert set(step["param_norms"]) == {"Linear.weight", "Linear.bias"}


def test_parameter_norms_are_measured_on_every_step_after_a_large_update():
    steps, truth = _train_linear(lr=0.5, steps=6)
    assert all(step["update_ratio"] >= 0.01 for step in steps)
    assert [step["param_norm"] for step in steps] == pytest.approx(truth, rel=1e-6)


class _NewMemorySGD(torch.optim.Optimizer):
    """Steps by giving each parameter new memory (`p.data = ...`), as some hand-written optimizers do."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.data = p.data - group["lr"] * p.grad


def _transposed_linear() -> torch.nn.Module:
    model = torch.nn.Linear(8, 4)
    model.weight = torch.nn.Parameter(torch.randn(8, 4).t())  # not contiguous: its sample is a copy
    return model


@pytest.mark.parametrize(
    "build, optimizer_class",
    [
        (lambda: torch.nn.Linear(8, 4), torch.optim.Adam),
        (lambda: torch.nn.Linear(8, 4), _NewMemorySGD),
        (_transposed_linear, torch.optim.SGD),
    ],
)
def test_update_ratio_is_the_change_of_the_parameters_over_their_norm_on_every_step(build, optimizer_class):
    torch.manual_seed(0)
    model = build()
    steps, snapshots = _train(model, optimizer_class(model.parameters(), lr=0.05), 4)
    truth = [_norm([a - b for a, b in zip(after, before)]) / _norm(before) for before, after in snapshots]
    assert [step["update_ratio"] for step in steps] == pytest.approx(truth, rel=1e-5)
