"""GL403 untruncated-bptt on the fixtures and on inline look-alikes."""
from __future__ import annotations

from functools import partial

import pytest
from rule_fixtures import findings
from rule_fixtures import only as only_fixture

CODE = "GL403"


found = partial(findings, code=CODE)


only = partial(only_fixture, CODE)


def test_message_names_the_layer_the_loop_and_retain_graph():
    finding = only("language_model_no_repackage.py")
    assert finding.line == 30
    assert "`hidden` from `model()` (LSTM layer built at line 11)" in finding.message
    assert "loop at line 27" in finding.message
    assert "`retain_graph=True` in `loss.backward()` at line 32" in finding.help
    assert "(in train" not in finding.help


LOOP = """
import torch
rnn = torch.nn.GRU(4, 4)
opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
h = torch.zeros(1, 1, 4)
for x in data:
{body}
    opt.zero_grad()
    out.sum().backward()
    opt.step()
"""


@pytest.mark.parametrize(
    "body, flagged",
    [
        (["out, h = rnn(x, h)"], True),
        (["out, h = rnn(x, hx=h)"], True),
        (["h = h.detach()", "out, h = rnn(x, h)"], False),
        (["out, h = rnn(x, h)", "h.detach_()"], False),
        (["out, h = rnn(x, h.detach())"], False),
        (["out, h = rnn(x, h.data)"], False),
        (["h = torch.zeros(1, 1, 4)", "out, h = rnn(x, h)"], False),
        (["out, _ = rnn(x, h)"], False),
        (["out, h = rnn(x)"], False),
        (["with torch.no_grad():", "    _, h = rnn(x, h)", "out, _ = rnn(x, h)"], False),
        (["if step % 35 == 0:", "    h = repackage(h)", "out, h = rnn(x, h)"], False),
    ],
    ids=[
        "carried", "keyword", "detach-before", "detach-inplace", "detach-arg", "data-arg", "reinit",
        "not-reassigned", "stateless", "no-grad", "truncated-every-k",
    ],
)
def test_forms(body, flagged):
    lines = "\n".join("    " + line for line in body)
    assert bool(found(LOOP.format(body=lines))) is flagged


def test_unknown_model_is_recurrent_when_its_state_starts_from_init_hidden():
    source = """
import torch
from mymodels import build
model = build()
opt = torch.optim.Adam(model.parameters())
hidden = model.init_hidden(8)
for x in data:
    out, hidden = model(x, hidden)
    opt.zero_grad()
    out.sum().backward()
    opt.step()
"""
    assert len(found(source)) == 1
    assert found(source.replace("model.init_hidden(8)", "None")) == []


def test_recurrence_inside_forward_over_time_steps_is_ordinary_bptt():
    source = """
import torch
import torch.nn as nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(4, 4)

    def forward(self, xs):
        h = (torch.zeros(1, 4), torch.zeros(1, 4))
        for x in xs:
            h = self.cell(x, h)
        return h[0]

net = Net()
opt = torch.optim.Adam(net.parameters())
for xs in data:
    opt.zero_grad()
    net(xs).sum().backward()
    opt.step()
"""
    assert found(source) == []


def test_running_best_fed_back_into_max_is_not_a_hidden_state():
    source = """
import torch
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
best = 0
for epoch in range(10):
    for x in data:
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    best = max(evaluate(model), best)
"""
    assert found(source) == []
