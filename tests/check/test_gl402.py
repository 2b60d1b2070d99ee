"""GL402 gradients-not-cleared on the fixtures and on inline look-alikes."""
from __future__ import annotations

from functools import partial

import pytest
from rule_fixtures import findings
from rule_fixtures import only as only_fixture

CODE = "GL402"


found = partial(findings, code=CODE)


only = partial(only_fixture, CODE)


def test_reported_at_the_step_with_the_loop():
    finding = only("no_zero_grad.py")
    assert finding.line == 14
    assert "training loop at line 11 never clears" in finding.message


def test_clearing_outside_the_loop_is_named():
    finding = only("zero_grad_once_per_epoch.py")
    assert "the only clearing, `opt.zero_grad()` at line 8, runs outside the loop" in finding.help


LOOP = """
import torch
model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i, x in enumerate(data):
{body}
"""


@pytest.mark.parametrize(
    "body, flagged",
    [
        (["model(x).sum().backward()", "opt.step()"], True),
        (["opt.zero_grad()", "model(x).sum().backward()", "opt.step()"], False),
        (["model(x).sum().backward()", "opt.step()", "model.zero_grad()"], False),
        (["model(x).sum().backward()", "opt.step()", "for p in model.parameters():", "    p.grad = None"], False),
        (["model(x).sum().backward()", "opt.step()", "for p in model.parameters():", "    p.grad.data.zero_()"], False),
        (["model(x).sum().backward()", "if (i + 1) % 4 == 0:", "    opt.step()", "    opt.zero_grad()"], False),
        (["model(x).sum().backward()", "opt.step()", "trainer.reset_grad()"], False),
        (["model(x).sum().backward()", "opt.step()", "model.weight.grad, model.bias.grad = None, None"], False),
        (["model(x).sum().backward()", "opt.step()", "for p in model.parameters():", "    p.grad = torch.zeros_like(p)"], False),
        (["model(x).sum().backward()", "opt.step()", "for p in model.parameters():", "    p.grad = p.grad * 0.9"], True),
        (["grads = torch.autograd.grad(model(x).sum(), model.parameters())"], False),
    ],
    ids=[
        "none", "zero-grad", "model-zero-grad", "grad-none", "grad-zero", "accumulation", "named-helper",
        "tuple-none", "zeros-like", "decayed-not-cleared", "autograd-grad",
    ],
)
def test_forms(body, flagged):
    lines = "\n".join("    " + line for line in body)
    assert bool(found(LOOP.format(body=lines))) is flagged


def test_backward_and_step_in_a_loop_over_optimizers_is_judged_on_the_training_loop():
    source = """
import torch
for x in data:
    for opt in optimizers:
        opt.zero_grad()
    model(x).sum().backward()
    for opt in optimizers:
        opt.step()
"""
    assert found(source) == []
    assert len(found(source.replace("        opt.zero_grad()\n", "        pass\n"))) == 1


def test_backward_outside_the_loop_of_the_step_is_not_a_training_loop():
    source = """
import torch
def step(model, opt, x):
    model(x).sum().backward()
    for _ in range(3):
        opt.step()
"""
    assert found(source) == []
