"""GL405 high-learning-rate on the fixtures and on inline look-alikes."""
from __future__ import annotations

from functools import partial

import pytest
from rule_fixtures import STATIC, findings
from rule_fixtures import only as only_fixture

CODE = "GL405"


found = partial(findings, code=CODE)


only = partial(only_fixture, CODE)


def test_message_says_where_the_lr_came_from():
    finding = only("sgd_lr_argparse.py")
    assert finding.line == 12
    assert "learning rate 20 from --lr default at line 8" in finding.message
    assert "max-sgd-lr (1)" in finding.message


LOOP = """
import torch
{setup}
model = torch.nn.Linear(4, 2)
opt = torch.optim.{optimizer}(model.parameters(), lr={lr})
for x in data:
    opt.zero_grad()
    model(x).sum().backward()
    {clip}
    opt.step()
"""
CLIP = "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"


@pytest.mark.parametrize(
    "setup, optimizer, lr, clip, flagged",
    [
        ("", "SGD", "1.0", "pass", True),
        ("", "SGD", "0.5", "pass", False),
        ("", "SGD", "5.0", CLIP, False),
        ("", "Adam", "0.1", "pass", True),
        ("", "Adam", "0.01", "pass", False),
        ("", "AdamW", "0.3", CLIP, False),
        ("", "RMSprop", "0.2", "pass", True),
        ("", "Adadelta", "1.0", "pass", False),
        ("", "SGD", "lr", "pass", False),
        ("BASE = 0.1\nBATCH = 4096", "SGD", "BASE * BATCH / 256", "pass", True),
        ("CLIP = 0", "SGD", "10", "if CLIP:\n        " + CLIP, True),
        ("", "LBFGS", "1", "pass", False),
    ],
    ids=[
        "sgd-at-limit", "sgd-below", "sgd-clipped", "adam-at-limit", "adam-below", "adamw-clipped", "rmsprop",
        "adadelta", "unknown", "scaled-by-batch", "clip-off-by-default", "lbfgs",
    ],
)
def test_forms(setup, optimizer, lr, clip, flagged):
    assert bool(found(LOOP.format(setup=setup, optimizer=optimizer, lr=lr, clip=clip))) is flagged


def test_options_change_the_limits():
    from gradlint.config import DEFAULT_OPTIONS, Settings

    source = LOOP.format(setup="", optimizer="SGD", lr="0.5", clip="pass")
    settings = Settings(options={**DEFAULT_OPTIONS, "max-sgd-lr": 0.5})
    assert len(found(source, settings=settings)) == 1
    source = LOOP.format(setup="", optimizer="Adam", lr="0.1", clip="pass")
    settings = Settings(options={**DEFAULT_OPTIONS, "max-adaptive-lr": 0.5})
    assert found(source, settings=settings) == []


def test_warmup_scheduler_still_reaches_the_base_lr():
    source = LOOP.format(setup="", optimizer="SGD", lr="2.0", clip="pass")
    source += "sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=100)\n"
    assert len(found(source)) == 1


def test_lambda_scheduler_makes_the_base_lr_a_mere_factor():
    # The Noam schedule (the Annotated Transformer): Adam(lr=1.0) times a lambda of ~1e-3.
    source = LOOP.format(setup="", optimizer="Adam", lr="1.0", clip="pass")
    source += "sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda step: rate(step, 512, 1, 4000))\n"
    assert found(source) == []


@pytest.mark.parametrize(
    "update, flagged",
    [
        ("p.data -= 2.0 * p.grad", True),
        ("p.data.add_(p.grad, alpha=-3.0)", True),
        ("p.sub_(0.01 * p.grad)", False),
        ("p.data -= step_size * p.grad", False),
    ],
)
def test_manual_updates(update, flagged):
    source = f"""
import torch
params = [torch.zeros(3, requires_grad=True)]
for x in data:
    sum((p * x).sum() for p in params).backward()
    with torch.no_grad():
        for p in params:
            {update}
            p.grad.zero_()
"""
    assert bool(found(source)) is flagged


def test_keras_gradient_tape_loop_with_clipnorm_is_clipped():
    source = """
import tensorflow as tf
model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
optimizer = tf.keras.optimizers.SGD(learning_rate=2.0{clip})
for x, y in dataset:
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
"""
    assert len(found(source.format(clip=""))) == 1
    assert found(source.format(clip=", clipnorm=1.0")) == []


def test_clip_on_the_if_line_counts_as_clipping():
    # awd-lstm-lm writes `if args.clip: torch.nn.utils.clip_grad_norm_(params, args.clip)` on one line.
    source = """
import argparse
import torch
parser = argparse.ArgumentParser()
parser.add_argument("--clip", type=float, default=0.25)
args = parser.parse_args()
model = torch.nn.LSTM(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=30)
for x in data:
    opt.zero_grad()
    model(x)[0].sum().backward()
    if args.clip: torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    opt.step()
"""
    assert found(source) == []
    assert len(found(source.replace("default=0.25", "default=0"))) == 1


def test_lightning_optimizer_is_judged_with_the_trainers_clipping():
    [finding] = found((STATIC / "GL405" / "flagged" / "lightning_high_sgd_lr.py").read_text())
    assert "learning rate 5 from constant LR at line 5" in finding.message
    assert "`Trainer(gradient_clip_val=1.0)`" in finding.help
    clipping_by_hand = (STATIC / "GL405" / "flagged" / "lightning_high_sgd_lr.py").read_text().replace(
        "    def configure_optimizers(self):",
        "    def on_before_optimizer_step(self, optimizer):\n"
        "        torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)\n\n"
        "    def configure_optimizers(self):",
    )
    assert found(clipping_by_hand) == []
