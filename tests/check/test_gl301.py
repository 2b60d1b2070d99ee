"""GL301: deep stacks of fully connected layers with no normalization and no residual connection."""
from __future__ import annotations

from pathlib import Path

import pytest
from rule_fixtures import STATIC, findings

from gradlint import lint_paths
from gradlint.config import parse_table


def test_depth_from_argparse_is_named_and_reported_at_the_class():
    [finding] = [f for f in lint_paths([STATIC / "GL301" / "flagged" / "mlp_depth_from_argparse.py"]).findings if f.code == "GL301"]
    assert finding.line == 12
    assert "class PlainMLP stacks 14 fully connected layers" in finding.message
    assert "--depth default at line 7" in finding.message


SEQ = """
import torch.nn as nn
{setup}
net = nn.Sequential({body})
"""


@pytest.mark.parametrize(
    "setup, body, flagged",
    [
        ("", "*[nn.Linear(8, 8) for _ in range(8)]", True),
        ("", "*[nn.Linear(8, 8) for _ in range(7)]", False),
        ("N = 4", "*[nn.Linear(8, 8) for _ in range(2 * N)]", True),
        ("", "*[nn.Linear(8, 8) for _ in range(n_layers)]", False),
        ("", "*[m for _ in range(9) for m in (nn.Linear(8, 8), nn.LayerNorm(8))]", False),
        ("", "*[nn.Linear(8, 8) for _ in range(9)], nn.BatchNorm1d(8)", False),
        ("", "*([nn.Linear(8, 8)] * 4), *([nn.Linear(8, 8)] * 4)", True),
        ("layers = []\nfor i in range(3):\n    for j in range(3):\n        layers.append(nn.Linear(8, 8))", "*layers", True),
        ("dims = [8, 16, 16, 16, 16, 16, 16, 16, 16, 1]\nlayers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]", "*layers", True),
        ("dims = [8, 16, 16, 16, 16, 16, 16, 1]\nlayers = [nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])]", "*layers", False),
        ("layers = [nn.Linear(8, 8) for _ in range(len([1, 2, 3, 4, 5, 6, 7, 8]))]", "*layers", True),
    ],
    ids=["eight", "seven", "constant-arithmetic", "unknown", "norm-interleaved", "norm-after", "list-products",
         "nested-loops", "zip-dims-9", "zip-dims-7", "range-len"],
)
def test_depth_forms(setup, body, flagged):
    assert bool(findings(SEQ.format(setup=setup, body=body), "GL301")) is flagged


def test_submodule_repeated_in_a_class_counts_with_its_multiplicity_and_is_reported_once():
    source = """
import torch.nn as nn
class Layer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.a = nn.Linear(d, d)
        self.b = nn.Linear(d, d)
    def forward(self, x):
        return self.b(self.a(x).relu()).relu()
class Net(nn.Module):
    def __init__(self, depth=5):
        super().__init__()
        self.layers = nn.ModuleList([Layer(32) for _ in range(depth)])
    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
"""
    [finding] = findings(source, "GL301")
    assert "class Net stacks 10 fully connected layers" in finding.message
    assert findings(source.replace("x = layer(x)", "x = x + layer(x)"), "GL301") == []


def test_constructor_argument_overrides_the_default_and_callers_that_disagree_are_unknown():
    source = """
import torch.nn as nn
class MLP(nn.Module):
    def __init__(self, depth=10):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(4, 4) for _ in range(depth))
    def forward(self, x):
        for fc in self.fcs:
            x = fc(x).tanh()
        return x
{calls}
"""
    assert len(findings(source.format(calls=""), "GL301")) == 1
    assert findings(source.format(calls="m = MLP(depth=3)"), "GL301") == []
    assert findings(source.format(calls="m = MLP(3)\nn = MLP(12)"), "GL301") == []
    assert len(findings(source.format(calls="m = MLP(12)"), "GL301")) == 1


def test_keras_functional_with_add_is_residual():
    source = """
from tensorflow import keras
from tensorflow.keras import layers
inputs = keras.Input(shape=(16,))
x = inputs
for _ in range(10):
    h = layers.Dense(16, activation="relu")(x)
    x = {combine}
model = keras.Model(inputs, layers.Dense(1)(x))
"""
    assert len(findings(source.format(combine="h"), "GL301")) == 1
    assert findings(source.format(combine="layers.Add()([x, h])"), "GL301") == []


def test_option_max_plain_depth():
    settings = parse_table({"max-plain-depth": 4}, Path("pyproject.toml"))
    source = SEQ.format(setup="", body="*[nn.Linear(8, 8) for _ in range(5)]")
    assert findings(source, "GL301") == []
    assert len(findings(source, "GL301", settings)) == 1
