"""GL401: training batch sizes of at least max-batch-size."""
from __future__ import annotations

from pathlib import Path

import pytest
from rule_fixtures import STATIC, findings

from gradlint import lint_paths
from gradlint.config import parse_table


def test_message_says_where_the_batch_size_came_from():
    [finding] = [f for f in lint_paths([STATIC / "GL401" / "flagged" / "argparse_batch.py"]).findings if f.code == "GL401"]
    assert "batch size 8192 from --batch-size default at line 8" in finding.message
    assert finding.line == 13


LOADER = """
import torch
from torch.utils.data import DataLoader
{setup}
{name} = DataLoader(ds, {args})
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in train_loader:
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()
"""


@pytest.mark.parametrize(
    "setup, name, args, flagged",
    [
        ("", "train_loader", "batch_size=1024, shuffle=True", True),
        ("", "train_loader", "batch_size=1023, shuffle=True", False),
        ("", "train_loader", "2048, True", True),  # positional batch_size
        ("BS = 512", "train_loader", "batch_size=BS * 4", True),
        ("", "val_loader", "batch_size=4096", False),
        ("", "test_dl", "batch_size=4096, shuffle=False", False),
        ("", "train_loader", "batch_size=bs", False),
        ("", "train_loader", "batch_size=None", False),
    ],
)
def test_loader_forms(setup, name, args, flagged):
    assert bool(findings(LOADER.format(setup=setup, name=name, args=args), "GL401")) is flagged


def test_caller_overriding_a_huge_default_is_silent_and_an_agreeing_one_is_flagged():
    source = """
import torch
from torch.utils.data import DataLoader
def make(ds, batch_size=8192):
    return DataLoader(ds, batch_size=batch_size, shuffle=True)
loader = make(train_ds{override})
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in loader:
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()
"""
    assert findings(source.format(override=", batch_size=32"), "GL401") == []
    [finding] = findings(source.format(override=""), "GL401")
    assert "default of parameter batch_size" in finding.message


def test_a_file_without_training_is_silent_unless_the_loader_is_named_for_training():
    assert findings("from torch.utils.data import DataLoader\nloader = DataLoader(ds, batch_size=4096)\n", "GL401") == []
    source = "from torch.utils.data import DataLoader\ntrain_loader = DataLoader(ds, batch_size=4096, shuffle=True)\n"
    assert len(findings(source, "GL401")) == 1


def test_generic_batch_method_is_not_tf_data():
    source = """
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
model.compile(optimizer="sgd", loss="mse")
chunks = my_reader.batch(4096)
model.fit(x, y)
"""
    assert findings(source, "GL401") == []


def test_option_max_batch_size():
    settings = parse_table({"max-batch-size": 4096}, Path("pyproject.toml"))
    source = LOADER.format(setup="", name="train_loader", args="batch_size=2048")
    assert len(findings(source, "GL401")) == 1
    assert findings(source, "GL401", settings) == []
