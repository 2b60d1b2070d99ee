"""GL101 on the fixtures: every flagged script is reported, no clean look-alike is."""
from __future__ import annotations

from pathlib import Path

import pytest

from gradlint import lint_paths, lint_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "static" / "GL101"


def codes_in(path: Path) -> list[str]:
    return [f.code for f in lint_paths([path]).findings]


def gl101(findings) -> list:
    """Only this rule's findings: other rules may fire on the same scripts."""
    return [f for f in findings if f.code == "GL101"]


def test_model_imported_from_a_sibling_file_is_known_by_its_layers():
    [finding] = [f for f in lint_paths([FIXTURES / "project"]).findings if f.code == "GL101"]
    assert finding.path.endswith("train.py")
    assert "GRU (built at model.py:7)" in finding.message


def test_message_names_the_layer_where_it_is_built_and_the_fix():
    [finding] = gl101(lint_paths([FIXTURES / "flagged" / "lstm_language_model.py"]).findings)
    assert finding.line == 33  # the optimizer step
    assert "LSTM (built at line 17) in class RNNModel" in finding.message
    assert "clip_grad_norm_(model.parameters(), max_norm=1.0)" in finding.help


def test_clipping_that_never_runs_with_the_defaults_is_named():
    [finding] = gl101(lint_paths([FIXTURES / "flagged" / "clip_disabled_by_default.py"]).findings)
    assert "the clipping at line 23 never runs with the defaults" in finding.message
    assert "(`args.clip > 0` is False)" in finding.help and "clip_grad_norm_(params, max_norm=1.0)" in finding.help


def test_keras_string_optimizer_says_a_string_cannot_clip():
    [finding] = gl101(lint_paths([FIXTURES / "flagged" / "keras_string_optimizer.py"]).findings)
    assert "string optimizer cannot clip" in finding.help


LOOP = """
import torch
{imports}
model = torch.nn.LSTM(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
{setup}
for x in data:
    opt.zero_grad()
    model(x)[0].sum().backward()
    {clip}
    opt.step()
"""


@pytest.mark.parametrize(
    "imports, setup, clip, flagged",
    [
        ("", "", "pass", True),
        ("", "", "torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)", False),
        ("from torch.nn.utils import clip_grad", "", "clip_grad.clip_grad_norm_(model.parameters(), 1.0)", False),
        ("", "CLIP = 0", "if CLIP:\n        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)", True),
        ("", "CLIP = 5.0", "if CLIP:\n        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)", False),
        ("", "", "if unknown_flag:\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 1)", False),
        ("", "def clip_all(m):\n    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)", "clip_all(model)", False),
    ],
    ids=["none", "clip-value", "module-alias", "const-zero", "const-positive", "unknown-condition", "helper"],
)
def test_clipping_forms(imports, setup, clip, flagged):
    source = LOOP.format(imports=imports, setup=setup, clip=clip)
    assert ("GL101" in [f.code for f in lint_source(source)]) is flagged


def test_local_name_shadowing_an_import_is_not_the_import():
    source = """
import torch
from torch.nn import LSTM

def LSTM(*args):
    return torch.nn.Linear(4, 4)

model = LSTM(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in data:
    opt.zero_grad()
    model(x).sum().backward()
    opt.step()
"""
    assert gl101(lint_source(source)) == []


def test_typer_and_click_defaults_decide_conditional_clipping():
    source = """
import click
import torch

@click.command()
@click.option("--clip", default=0.0)
def main(clip):
    model = torch.nn.GRU(4, 4)
    opt = torch.optim.Adam(model.parameters())
    for x in data:
        opt.zero_grad()
        model(x)[0].sum().backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
"""
    assert [f.code for f in gl101(lint_source(source))] == ["GL101"]
    assert gl101(lint_source(source.replace("default=0.0", "default=1.0"))) == []


def test_function_default_overridden_by_the_caller():
    source = """
import torch

def train(model, clip=0.0):
    opt = torch.optim.Adam(model.parameters())
    for x in data:
        opt.zero_grad()
        model(x)[0].sum().backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

train(torch.nn.LSTM(4, 4), clip=1.0)
"""
    assert gl101(lint_source(source)) == []
    assert [f.code for f in gl101(lint_source(source.replace("clip=1.0)", "clip=0)")))] == ["GL101"]


def test_lbfgs_closure_backward_counts_as_the_steps_backward():
    source = """
import torch

model = torch.nn.LSTMCell(1, 8)
optimizer = torch.optim.LBFGS(model.parameters(), lr=0.8)
for i in range(10):
    def closure():
        optimizer.zero_grad()
        loss = model(x)[0].sum()
        loss.backward()
        {clip}
        return loss
    optimizer.step(closure)
"""
    # LBFGS has no weight decay: GL201 is reported too.
    assert [f.code for f in lint_source(source.format(clip="pass"))] == ["GL201", "GL101"]
    assert [f.code for f in lint_source(source.format(clip="torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"))] == ["GL201"]
