"""GL201: models at risk trained with no weight penalty."""
from __future__ import annotations

from pathlib import Path

import pytest
from rule_fixtures import findings, fixtures

from gradlint.config import parse_table

TORCH = """
import torch
import torch.nn as nn
model = nn.LSTM(8, 8)
opt = {optimizer}
for x in data:
    opt.zero_grad()
    loss = model(x)[0].pow(2).mean()
    {penalty}
    loss.backward()
    opt.step()
"""


@pytest.mark.parametrize(
    "optimizer, penalty, flagged",
    [
        ("torch.optim.Adam(model.parameters())", "pass", True),
        ("torch.optim.AdamW(model.parameters())", "pass", False),
        ("torch.optim.AdamW(model.parameters(), weight_decay=0.0)", "pass", True),
        ("torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)", "pass", False),
        ("torch.optim.SGD(model.parameters(), 0.1, 0.9, 0, 1e-4)", "pass", False),  # positional weight_decay
        ("torch.optim.SGD(model.parameters(), 0.1, 0.9, 0, 0)", "pass", True),  # positional weight_decay 0
        ("torch.optim.SGD(model.parameters(), 0.1, 0.9)", "pass", True),  # (params, lr, momentum): no decay
        ("torch.optim.Adam(model.parameters(), 1e-3, (0.9, 0.99))", "pass", True),  # (params, lr, betas)
        ("torch.optim.Adagrad(model.parameters(), 0.01, 0, 1e-5)", "pass", False),  # Adagrad's 4th
        ("torch.optim.Adam(*args)", "pass", False),  # it may be among them
        ("torch.optim.Adam(model.parameters())", "loss = loss + 1e-4 * sum(torch.norm(p) for p in model.parameters())", False),
        ("torch.optim.Adam(model.parameters())", "loss += 1e-5 * model.weight_hh_l0.pow(2).sum()", False),
        ("torch.optim.Adam(model.parameters(), **cfg)", "pass", False),
        ("build_optimizer(model)", "pass", False),
    ],
    ids=["adam", "adamw-default", "adamw-zero", "sgd-decay", "positional-decay", "positional-zero",
         "positional-momentum", "positional-betas", "adagrad-positional-decay", "star-args", "norm-genexp",
         "named-weight", "kwargs", "unknown-optimizer"],
)
def test_weight_penalty_forms(optimizer, penalty, flagged):
    source = TORCH.format(optimizer=optimizer, penalty=penalty)
    assert bool(findings(source, "GL201")) is flagged


def test_reported_at_the_optimizer_with_the_setting_and_its_origin():
    source = """
import argparse
import torch
p = argparse.ArgumentParser()
p.add_argument("--wd", type=float, default=0.0)
args = p.parse_args()
net = torch.nn.GRU(4, 4)
opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, weight_decay=args.wd)
for x in data:
    opt.zero_grad()
    net(x)[0].sum().backward()
    opt.step()
"""
    [finding] = findings(source, "GL201")
    assert finding.line == 8
    assert "GRU at line 7" in finding.message
    assert "weight_decay=0 from --wd default at line 5" in finding.message


def test_keras_decay_is_named_as_learning_rate_decay():
    path = Path(fixtures("GL201", "flagged")[0]).parent / "keras_decay_is_lr_decay.py"
    from gradlint import lint_paths

    [finding] = [f for f in lint_paths([path]).findings if f.code == "GL201"]
    assert "`decay=` is learning-rate decay" in finding.message


KERAS = """
from tensorflow import keras
model = keras.Sequential([keras.layers.LSTM(32{reg}), keras.layers.Dense(1)])
model.compile(optimizer={optimizer}, loss="mse")
model.fit(x, y)
"""


@pytest.mark.parametrize(
    "reg, optimizer, flagged",
    [
        ("", '"adam"', True),
        ("", '"adamw"', False),
        ("", "keras.optimizers.AdamW()", False),
        ("", "keras.optimizers.Adam(weight_decay=1e-4)", False),
        ("", "keras.optimizers.Adam(decay=1e-4)", True),
        (", recurrent_regularizer=keras.regularizers.l2(1e-4)", '"adam"', False),
        (", kernel_regularizer=None", '"adam"', True),
    ],
)
def test_keras_forms(reg, optimizer, flagged):
    source = KERAS.format(reg=reg, optimizer=optimizer)
    assert bool(findings(source, "GL201")) is flagged


DEEP = """
import torch
from torch import nn
model = nn.Sequential(*[nn.Linear(16, 16) for _ in range({depth})])
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for x, y in loader:
    opt.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
"""


def test_deep_plain_mlp_is_at_risk_and_a_shallow_one_is_not():
    [finding] = findings(DEEP.format(depth=10), "GL201")
    assert "10 plain fully connected layers" in finding.message
    assert findings(DEEP.format(depth=3), "GL201") == []


def test_scope_all_flags_any_trained_model():
    settings = parse_table({"regularization-scope": "all"}, Path("pyproject.toml"))
    assert len(findings(DEEP.format(depth=3), "GL201", settings)) == 1
    assert findings(DEEP.format(depth=3).replace("lr=0.01", "lr=0.01, weight_decay=1e-4"), "GL201", settings) == []


def test_inference_only_is_not_training():
    source = """
import torch
model = torch.nn.LSTM(4, 4)
model.eval()
with torch.no_grad():
    print(model(x))
"""
    assert findings(source, "GL201") == []


TF1 = """
import tensorflow as tf
cell = tf.compat.v1.nn.rnn_cell.GRUCell(10)
outputs, _ = tf.nn.dynamic_rnn(cell, X, dtype=tf.float32)
loss = tf.reduce_mean(tf.square(outputs[:, -1] - Y))
{penalty}
train = {optimizer}.minimize(loss)
with tf.Session() as sess:
    for i in range(10):
        sess.run(train)
"""


@pytest.mark.parametrize(
    "optimizer, penalty, flagged",
    [
        ("tf.train.AdamOptimizer(0.002, 0.9, 0.999)", "pass", True),
        ("tf.compat.v1.train.MomentumOptimizer(0.01, 0.9)", "pass", True),
        ("tf.compat.v1.train.RMSPropOptimizer(0.01, 0.9, 0.0, 1e-10)", "pass", True),
        ("tf.train.AdamOptimizer(0.002, 0.9, 0.999)", "loss += tf.losses.get_regularization_loss()", False),
        ("tf.train.AdamOptimizer(0.002, 0.9)", "loss += tf.add_n(tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES))", False),
    ],
    ids=["adam-betas", "momentum", "rmsprop", "regularization-loss", "regularization-collection"],
)
def test_tf1_optimizers_take_no_weight_decay_whatever_their_positional_arguments(optimizer, penalty, flagged):
    assert bool(findings(TF1.format(optimizer=optimizer, penalty=penalty), "GL201")) is flagged


def _project(tmp_path: Path, driver: str) -> Path:
    package = tmp_path / "summ"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "seq2seq.py").write_text(
        "from keras.models import Model\n"
        "from keras.layers import Input, Embedding, LSTM, Dense\n\n\n"
        "class Summarizer(object):\n"
        "    def __init__(self, n):\n"
        "        inputs = Input(shape=(None,))\n"
        "        hidden = LSTM(64)(Embedding(n, 32)(inputs))\n"
        "        model = Model(inputs, Dense(n, activation='softmax')(hidden))\n"
        "        model.compile(loss='categorical_crossentropy', optimizer='rmsprop')\n"
        "        self.model = model\n\n"
        "    def fit(self, gen, steps):\n"
        "        return self.model.fit_generator(gen, steps_per_epoch=steps)\n\n"
        "    def summarize(self, text):\n"
        "        return self.model.predict(text)\n"
    )
    demo = tmp_path / "demo"
    demo.mkdir()
    script = demo / "train.py"
    script.write_text(driver)
    return script


def test_a_wrapper_class_of_another_file_built_and_fitted_here(tmp_path):
    from gradlint import lint_paths

    script = _project(
        tmp_path,
        "import pandas as pd\nfrom summ.seq2seq import Summarizer\n\n\ndef main():\n"
        "    summarizer = Summarizer(5000)\n    summarizer.fit(gen, 100)\n\n\nmain()\n",
    )
    found = [(f.code, f.line) for f in lint_paths([script]).findings]
    assert sorted(found) == [("GL101", 6), ("GL201", 6)]  # at the call here that builds (and compiles) it


def test_a_wrapper_class_of_another_file_built_but_never_fitted_here(tmp_path):
    from gradlint import lint_paths

    script = _project(
        tmp_path,
        "from summ.seq2seq import Summarizer\n\nsummarizer = Summarizer(5000)\nprint(summarizer.summarize(text))\n"
        "train_stats(summarizer)\n",
    )
    from gradlint.source import read_unit

    assert read_unit(script)[0] is not None  # it is read: its calls are followed
    assert [f.code for f in lint_paths([script]).findings if f.code in ("GL101", "GL201")] == []


BUILDER = (
    "from tensorflow.keras.optimizers import {optimizer}\n"
    "from tensorflow.keras.layers import Input, Embedding, LSTM, Dense\n"
    "from tensorflow.keras.models import Model\n\n\n"
    "def build_model(n, cfg, optimizer={optimizer}({arguments})):\n"
    "    inputs = Input(shape=(40,))\n"
    "    hidden = LSTM(128)(Embedding(n, 32)(inputs))\n"
    "    model = Model(inputs=[inputs], outputs=[Dense(n, activation='softmax')(hidden)])\n"
    "    model.compile(loss='categorical_crossentropy', optimizer=optimizer)\n"
    "    return model\n"
)
TEXTGEN = (
    "from .model import build_model\n\n\n"
    "class TextGen(object):\n"
    "    def __init__(self, n):\n"
    "        self.model = build_model(n, cfg={{}})\n\n"
    "    def train_on_texts(self, gen, epochs=5):\n"
    "        model_t = self.model\n"
    "        model_t.fit(gen, epochs=epochs)\n"
)


@pytest.mark.parametrize(
    "optimizer, arguments, expected",
    [
        ("Adam", "lr=4e-3", ["GL101", "GL201"]),
        ("AdamW", "learning_rate=4e-3, clipnorm=1.0", []),
    ],
    ids=["adam-default", "adamw-clipnorm-default"],
)
def test_a_model_a_builder_of_another_file_compiles_with_its_default_optimizer(tmp_path, optimizer, arguments, expected):
    from gradlint import lint_paths

    package = tmp_path / "textgen"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(BUILDER.format(optimizer=optimizer, arguments=arguments))
    (package / "textgen.py").write_text(TEXTGEN.format())
    found = lint_paths([package / "textgen.py"]).findings
    assert sorted(f.code for f in found if f.code in ("GL101", "GL201")) == expected
    assert all(f.line == 10 and "(at model.py:10, run by this call)" in f.message for f in found)  # at the fit
