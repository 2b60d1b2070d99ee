"""GL303: weights drawn at a scale (std or bound >= 1) that grows signals layer by layer."""
from __future__ import annotations

import pytest
from rule_fixtures import findings

CLASS = """
import math
import torch
import torch.nn as nn
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.fc3 = nn.Linear(8, 8)
        for fc in [self.fc1, self.fc2, self.fc3]:
            {init}
"""


@pytest.mark.parametrize(
    "init, flagged",
    [
        ("nn.init.normal_(fc.weight)", True),  # default std=1.0
        ("nn.init.normal_(fc.weight, 0.0, 1.0)", True),  # positional mean, std
        ("nn.init.normal_(fc.weight, mean=0.0, std=0.5)", False),
        ("torch.nn.init.normal_(fc.weight, std=1 / math.sqrt(8))", False),
        ("nn.init.uniform_(fc.weight)", True),  # default bounds (0, 1)
        ("nn.init.uniform_(fc.weight, -0.1, 0.1)", False),
        ("nn.init.uniform_(fc.weight, a=-3, b=0.5)", True),
        ("fc.weight.data.normal_(0, 1)", True),
        ("fc.weight.data.normal_(0.0, 0.02)", False),
        ("fc.weight.data.uniform_(-1, 1)", True),
        ("nn.init.xavier_uniform_(fc.weight)", False),
        ("nn.init.kaiming_normal_(fc.weight)", False),
        ("nn.init.normal_(fc.bias, std=1.0)", False),
        ("nn.init.normal_(fc.weight, std=scale)", False),  # unknown scale
    ],
)
def test_init_forms(init, flagged):
    assert bool(findings(CLASS.format(init=init), "GL303")) is flagged


def test_two_layers_at_std_one_are_not_a_network():
    source = CLASS.format(init="nn.init.normal_(fc.weight, std=2.0)").replace(", self.fc3]", "]")
    assert findings(source, "GL303") == []


def test_embedding_tables_are_exempt_by_type_and_by_name():
    source = """
import torch
import torch.nn as nn
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.lookup = nn.Embedding(100, 16)
        self.wpe = nn.Parameter(torch.randn(512, 16))
        self.tok_emb = nn.Parameter(torch.randn(100, 16))
        self.apply(self._init)
        nn.init.normal_(self.lookup.weight, std=1.0)
    def _init(self, m):
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=1.0)
"""
    assert findings(source, "GL303") == []


def test_apply_counts_the_models_layers_of_the_guarded_kind():
    source = """
import torch.nn as nn
def init_fn(m):
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, std=1.0)
net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8, 2), nn.Linear(2, 2))
net.apply(init_fn)
"""
    assert findings(source, "GL303") == []  # two Conv2d layers only
    [finding] = findings(source.replace("nn.Flatten()", "nn.Conv2d(8, 8, 3), nn.Flatten()"), "GL303")
    assert "in the 3 Conv2d layers" in finding.message
    assert finding.line == 5


def test_manual_randn_weights_with_requires_grad():
    source = """
import torch
W1 = torch.randn(784, 256, requires_grad=True)
W2 = torch.randn(256, 256, requires_grad=True)
W3 = torch.randn(256, 10, requires_grad=True)
b1 = torch.randn(1, 256, requires_grad=True)
opt = torch.optim.SGD([W1, W2, W3, b1], lr=0.1)
"""
    assert len(findings(source, "GL303")) == 3
    # Tensors that nothing updates are inputs (as in autograd tests), not weights.
    assert findings(source.replace("opt = torch.optim.SGD([W1, W2, W3, b1], lr=0.1)", ""), "GL303") == []
    assert findings(source.replace(", requires_grad=True)", ") * 0.01"), "GL303") == []


def test_noise_and_data_tensors_drawn_at_std_one_are_not_weights():
    source = """
import torch
import torch.nn as nn
noise = torch.empty(64, 100)
fixed = torch.FloatTensor(64, 100, 1, 1).normal_(0, 1)
for i in range(5):
    noise.data.normal_(0, 1)
    nn.init.normal_(noise)
W = nn.Parameter(torch.empty(4, 4))
V = nn.Parameter(torch.empty(4, 4))
U = torch.empty(4, 4, requires_grad=True)
"""
    assert findings(source, "GL303") == []
    [finding] = findings(source + "for w in (W, V, U):\n    nn.init.normal_(w, std=2)\n", "GL303")
    assert "at std 2" in finding.message
