"""GL404 sum-reduced-loss on the fixtures and on inline look-alikes."""
from __future__ import annotations

from functools import partial

import pytest
from rule_fixtures import findings
from rule_fixtures import only as only_fixture

CODE = "GL404"


found = partial(findings, code=CODE)


only = partial(only_fixture, CODE)


def test_message_names_loss_backward_and_optimizer():
    finding = only("sum_criterion_sgd.py")
    assert finding.line == 6
    assert "`MSELoss(reduction=\"sum\")` feeds `loss.backward()` at line 12" in finding.message
    assert "SGD (built at line 7, not adaptive)" in finding.message


LOOP = """
import torch
import torch.nn as nn
import torch.nn.functional as F
model = nn.Linear(4, 2)
opt = torch.optim.{optimizer}(model.parameters(), lr=0.01)
crit = nn.CrossEntropyLoss(reduction="sum")
for x, y in data:
    opt.zero_grad()
{body}
    opt.step()
"""


@pytest.mark.parametrize(
    "optimizer, body, flagged",
    [
        ("SGD", ["loss = crit(model(x), y)", "loss.backward()"], True),
        ("Adam", ["loss = crit(model(x), y)", "loss.backward()"], False),
        ("RMSprop", ["loss = crit(model(x), y)", "loss.backward()"], False),
        ("Adagrad", ["loss = crit(model(x), y)", "loss.backward()"], False),
        ("SGD", ["loss = crit(model(x), y) / x.size(0)", "loss.backward()"], False),
        ("SGD", ["loss = crit(model(x), y)", "loss /= len(x)", "loss.backward()"], False),
        ("SGD", ["loss = crit(model(x), y)", "loss.div(len(x)).backward()"], False),
        ("SGD", ["loss = crit(model(x), y) + 0.1 * model.weight.norm()", "loss.backward()"], True),
        ("SGD", ["loss = crit(model(x), y) * (1 / 64)", "loss.backward()"], False),
        ("SGD", ["loss = crit(model(x), y) * scale", "loss.backward()"], False),
        ("SGD", ["F.mse_loss(model(x), y, reduction='sum').backward()"], True),
        ("SGD", ["F.mse_loss(model(x), y).backward()"], False),
        ("SGD", ["other = crit(model(x), y)", "F.mse_loss(model(x), y).backward()"], False),
    ],
    ids=[
        "sgd", "adam", "rmsprop", "adagrad", "divided", "aug-divided", "div-method", "arithmetic", "constant-fraction",
        "unknown-scale", "functional", "functional-mean", "unlinked",
    ],
)
def test_forms(optimizer, body, flagged):
    lines = "\n".join("    " + line for line in body)
    assert bool(found(LOOP.format(optimizer=optimizer, body=lines))) is flagged


def test_loss_through_a_local_helper_is_followed():
    source = """
import torch
crit = torch.nn.L1Loss(reduction="sum")

def compute_loss(out, y):
    return crit(out, y)

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for x, y in data:
    opt.zero_grad()
    compute_loss(model(x), y).backward()
    opt.step()
"""
    assert len(found(source)) == 1


def test_unknown_optimizer_is_silent():
    source = LOOP.format(optimizer="SGD", body="    loss = crit(model(x), y)\n    loss.backward()")
    source = source.replace("opt = torch.optim.SGD(model.parameters(), lr=0.01)", "opt = make_optimizer(model)")
    assert found(source) == []
