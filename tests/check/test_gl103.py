"""GL103 clip-scaled-gradients on the fixtures and on inline look-alikes."""
from __future__ import annotations

from functools import partial

import pytest
from rule_fixtures import findings
from rule_fixtures import only as only_fixture

CODE = "GL103"


found = partial(findings, code=CODE)


only = partial(only_fixture, CODE)


def test_message_names_the_scale_and_the_fix():
    finding = only("amp_clip_without_unscale.py")
    assert finding.line == 15
    assert "`scaler.scale(...)` at line 14" in finding.message
    assert "`scaler.unscale_(optimizer)`" in finding.help


def test_scaler_off_by_default_is_still_wrong_when_turned_on_and_says_so():
    finding = only("amp_flag_clamp.py")
    assert "off by default, --amp default at line 8" in finding.message


AMP = """
import torch
model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.cuda.amp.GradScaler()
for x in data:
    opt.zero_grad()
    scaler.scale(model(x).sum()).backward()
    {between}
    {clip}
    scaler.step(opt)
    scaler.update()
"""


@pytest.mark.parametrize(
    "between, clip, flagged",
    [
        ("pass", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)", True),
        ("scaler.unscale_(opt)", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)", False),
        ("pass", "torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)", True),
        ("pass", "accelerator.clip_grad_norm_(model.parameters(), 1.0)", False),
        ("pass", "fabric.clip_gradients(model, opt, max_norm=1.0)", False),
        ("if amp: scaler.unscale_(opt)", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)", False),
        ("pass", "pass", False),
    ],
    ids=["no-unscale", "unscale", "clip-value", "accelerate", "fabric", "conditional-unscale", "no-clip"],
)
def test_forms(between, clip, flagged):
    assert bool(found(AMP.format(between=between, clip=clip))) is flagged


def test_unscale_from_the_previous_iteration_does_not_count():
    source = AMP.format(between="pass", clip="torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    source = source.replace("    opt.zero_grad()\n", "    opt.zero_grad()\n    scaler.unscale_(opt)\n")
    assert len(found(source)) == 1
