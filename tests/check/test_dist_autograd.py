"""torch.distributed.autograd: backward(context_id, ...) adds into its context, which a new context clears."""
from __future__ import annotations

from rule_fixtures import only

from gradlint import lint_source

LOOP = """
import torch
import torch.distributed.autograd as dist_autograd
from torch import optim
from torch.distributed.optim import DistributedOptimizer

model = torch.nn.Linear(4, 1)
opt = DistributedOptimizer(optim.SGD, params, lr=0.01)
{body}
"""


def test_a_context_per_iteration_clears():
    body = (
        "for x in data:\n    with dist_autograd.context() as cid:\n"
        "        dist_autograd.backward(cid, [model(x).sum()])\n        opt.step(cid)\n"
    )
    assert [f for f in lint_source(LOOP.format(body=body)) if f.code == "GL402"] == []


def test_one_context_for_the_run_accumulates_into_it_not_into_grad():
    finding = only("GL402", "dist_autograd_one_context.py")
    assert "distributed autograd context" in finding.message and ".grad" not in finding.message
    assert finding.fix is None and "no automatic fix" in finding.help
