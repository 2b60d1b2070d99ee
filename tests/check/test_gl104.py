"""GL104 ineffective-clip-threshold on the fixtures and on inline look-alikes."""
from __future__ import annotations

from functools import partial

import pytest
from rule_fixtures import findings
from rule_fixtures import only as only_fixture

from gradlint import lint_source

CODE = "GL104"


found = partial(findings, code=CODE)


only = partial(only_fixture, CODE)


def test_message_says_where_the_value_came_from():
    finding = only("argparse_huge_clip.py")
    assert "5000.0 from --clip default at line 8" in finding.message
    assert "clip-threshold-max (1000)" in finding.message


def test_zero_clip_value_from_a_class_default():
    finding = only("zero_clip_value.py")
    assert "0.0 from Config.clip_value default at line 7" in finding.message
    assert "not positive" in finding.message


CLIP = """
import math
import torch
model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
{setup}
for x in data:
    opt.zero_grad()
    model(x).sum().backward()
    {clip}
    opt.step()
"""


@pytest.mark.parametrize(
    "setup, clip, flagged",
    [
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)", False),
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), float('inf'))", True),
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=math.inf)", True),
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), 999.0)", False),
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1000)", True),
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), -1)", True),
        ("CLIP = 0", "if CLIP:\n        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)", False),
        ("CLIP = 0", "if flag:\n        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)", False),
        ("CLIP = 1e6", "if flag:\n        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)", True),
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), threshold)", False),
        ("", "for p in model.parameters():\n        p.grad.clamp_(-1e4, 1e4)", True),
        ("", "for p in model.parameters():\n        p.grad.clamp_(-5, 5)", False),
        ("", "accelerator.clip_grad_norm_(model.parameters(), float('inf'))", True),
        ("", "fabric.clip_gradients(model, opt, max_norm=1e5)", True),
        ("", "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float('inf'))", False),
        ("", "norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1e9)", True),
        ("", "utils.clip_grad_norm_(model.parameters(), 0)", False),
        ("", "engine.clip_grad_norm_(model.parameters(), max_norm=0)", False),
    ],
    ids=[
        "sane", "inf", "math-inf", "below-max", "at-max", "negative", "zero-guarded", "zero-unknown-condition",
        "huge-unknown-condition", "unknown", "clamp-huge", "clamp-sane", "accelerate-inf", "fabric-huge",
        "inf-measures-norm", "huge-with-result", "other-library-zero", "other-method-zero",
    ],
)
def test_torch_thresholds(setup, clip, flagged):
    assert bool(found(CLIP.format(setup=setup, clip=clip))) is flagged


def test_option_changes_the_limit():
    from gradlint.config import DEFAULT_OPTIONS, Settings

    source = CLIP.format(setup="", clip="torch.nn.utils.clip_grad_norm_(model.parameters(), 50.0)")
    settings = Settings(options={**DEFAULT_OPTIONS, "clip-threshold-max": 10.0})
    assert [f.code for f in lint_source(source, settings=settings)].count(CODE) == 1
    assert found(source) == []


@pytest.mark.parametrize(
    "value, flagged",
    [("None", False), ("0", False), ("0.5", False), ("-1.0", True), ("float('inf')", True), ("1e4", True)],
)
def test_lightning_zero_and_none_mean_no_clipping(value, flagged):
    source = f"""
import lightning.pytorch as pl
trainer = pl.Trainer(gradient_clip_val={value})
trainer.fit(model)
"""
    assert bool(found(source)) is flagged


def test_hf_max_grad_norm_huge_is_flagged():
    source = """
from transformers import Trainer, TrainingArguments
args = TrainingArguments(output_dir="o", max_grad_norm=1e9)
Trainer(model=model, args=args).train()
"""
    assert len(found(source)) == 1
    assert found(source.replace("1e9", "1.0")) == []
