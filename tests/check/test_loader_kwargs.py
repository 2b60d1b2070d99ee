"""GL401 through keyword dicts: the batch size a loader gets from `**kwargs` is read where the dict is written."""
from __future__ import annotations

import pytest
from rule_fixtures import findings

LOOP = """
import torch
from torch.utils.data import DataLoader
{setup}
loader = DataLoader(dataset, **kw)
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for x, y in loader:
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()
"""


@pytest.mark.parametrize(
    "setup",
    [
        "kw = {'batch_size': 4096}",
        "kw = dict(batch_size=4096)",
        "kw = {'shuffle': True}\nkw['batch_size'] = 4096",
        "kw = {'shuffle': True}\nkw.update({'batch_size': 4096})",
        "base = {'batch_size': 4096}\nkw = {**base, 'shuffle': True}",
        "kw = {'batch_size': 64}\nkw.update(batch_size=4096)",
    ],
)
def test_a_large_batch_through_kwargs_is_reported(setup):
    assert len(findings(LOOP.format(setup=setup), "GL401")) == 1


@pytest.mark.parametrize(
    "setup",
    [
        "kw = {'shuffle': True}",  # DataLoader's default batch size, 1
        "kw = {'batch_size': 4096}\nkw['batch_size'] = 64",
        "kw = {'batch_size': 4096}\nkw.update(load_settings())",  # overwritten by what nobody can read
        "kw = {'batch_size': 4096}\nkw[key] = 64",
        "kw = make_kwargs()",
    ],
)
def test_a_small_or_unknown_batch_through_kwargs_is_not(setup):
    assert findings(LOOP.format(setup=setup), "GL401") == []
