"""GL102 clip-out-of-order on the fixtures and on inline look-alikes."""
from __future__ import annotations

from functools import partial

import pytest
from rule_fixtures import findings
from rule_fixtures import only as only_fixture

CODE = "GL102"


found = partial(findings, code=CODE)


only = partial(only_fixture, CODE)


def test_clip_before_backward_names_the_backward_and_the_step():
    finding = only("clip_before_backward.py")
    assert finding.line == 12
    assert "runs before `loss.backward()` at line 14" in finding.message
    assert "before `optimizer.step()` at line 15" in finding.help


def test_clip_after_step_names_the_step():
    finding = only("clip_after_step.py")
    assert "runs after `opt.step()` at line 13" in finding.message


def test_clip_in_a_helper_called_after_step_is_reported_in_the_helper():
    finding = only("clip_helper_after_step.py")
    assert finding.line == 12
    assert "`self.optimizer.step()` at line 19" in finding.message


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
        (["opt.zero_grad()", "model(x).sum().backward()", "CLIP", "opt.step()"], False),
        (["opt.zero_grad()", "CLIP", "model(x).sum().backward()", "opt.step()"], True),
        (["opt.zero_grad()", "model(x).sum().backward()", "opt.step()", "CLIP"], True),
        (["model(x).sum().backward()", "opt.step()", "opt.zero_grad()", "CLIP"], True),
        (["model(x).sum().backward()", "if i % 4 == 3:", "    CLIP", "    opt.step()", "    opt.zero_grad()"], False),
        (["model(x).sum().backward()", "for p in model.parameters():", "    p.grad.clamp_(-1, 1)", "opt.step()"], False),
        (["if flag:", "    CLIP", "model(x).sum().backward()", "opt.step()"], True),
    ],
    ids=["between", "before-backward", "after-step", "after-zero-grad", "accumulation", "param-loop", "conditional"],
)
def test_orders(body, flagged):
    lines = "\n".join("    " + line.replace("CLIP", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)") for line in body)
    assert bool(found(LOOP.format(body=lines))) is flagged


def test_clip_that_never_runs_with_the_defaults_is_left_to_gl101():
    source = LOOP.format(body="\n".join([
        "    opt.zero_grad()",
        "    if False:",
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
        "    model(x).sum().backward()",
        "    opt.step()",
    ]))
    assert found(source) == []


def test_clip_in_the_other_branch_from_the_step_is_judged_on_its_own_branch():
    source = """
import torch
model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.cuda.amp.GradScaler()
for x in data:
    opt.zero_grad()
    if use_amp:
        scaler.scale(model(x).sum()).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
    else:
        model(x).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
"""
    assert found(source) == []


def test_single_step_function_without_a_loop_is_ordered_too():
    source = """
import torch

def train_step(model, opt, x):
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
"""
    assert len(found(source)) == 1
