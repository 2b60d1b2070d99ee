"""GL302: plain (ungated) RNNs that are trained."""
from __future__ import annotations

import pytest
from rule_fixtures import findings

LOOP = """
import torch
{imports}
model = {layer}
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in data:
    opt.zero_grad()
    model(x)[0].sum().backward()
    opt.step()
"""


@pytest.mark.parametrize(
    "imports, layer, flagged",
    [
        ("", "torch.nn.RNN(4, 4)", True),
        ("from torch.nn import RNN as Plain", "Plain(4, 4)", True),
        ("from torch import nn", "nn.RNNCell(4, 4)", True),
        ("", "torch.nn.GRU(4, 4)", False),
        ("", "torch.nn.LSTMCell(4, 4)", False),
    ],
)
def test_layer_forms(imports, layer, flagged):
    assert bool(findings(LOOP.format(imports=imports, layer=layer), "GL302")) is flagged


def test_reported_at_the_layer_with_the_training_line():
    [finding] = findings(LOOP.format(imports="", layer="torch.nn.RNN(4, 4)"), "GL302")
    assert finding.line == 4
    assert finding.severity.value == "info"
    assert "trained (at line 9)" in finding.message and "nn.LSTM" in finding.help


def test_keras_simple_rnn_inside_bidirectional_is_flagged():
    source = """
from tensorflow import keras
model = keras.Sequential([keras.layers.Bidirectional(keras.layers.SimpleRNN(16)), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y)
"""
    [finding] = findings(source, "GL302")
    assert "keras.layers.LSTM" in finding.help


def test_two_models_trained_in_one_loop_report_each_layer_once():
    source = """
import torch
enc = torch.nn.RNN(4, 4)
dec = torch.nn.RNN(4, 4)
opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()))
for epoch in range(2):
    for x in data:
        opt.zero_grad()
        dec(enc(x)[0])[0].sum().backward()
        opt.step()
"""
    assert [f.line for f in findings(source, "GL302")] == [3, 4]
