"""A file's facts cost time linear in its size: long chains of re-assignments and many loops lint fast.

Reproducers in ../shared/bugs/reliability/1: `lr = lr * 2` fifteen times took over a minute (each
assignment re-evaluated every other one), twelve `if lr > x: lr = lr / 2` took 35 s, and 3,000 small
loops sharing one model took time quadratic in their number.
"""
from __future__ import annotations

import time

import libcst as cst
import pytest

from gradlint.lint import lint_source

MODEL = """import torch
from torch import nn

model = nn.{layer}
opt = torch.optim.SGD(model.parameters(), lr={lr}, weight_decay=1e-4)
"""
LOOP = """for x in data:
    opt.zero_grad()
    loss = model(x)[0].sum()
    loss.backward()
    opt.step()
"""


def timed_lint(text: str) -> tuple[list, float]:
    start = time.perf_counter()
    findings = lint_source(text, "train.py")
    return findings, time.perf_counter() - start


def timed_parse(text: str) -> float:
    start = time.perf_counter()
    cst.parse_module(text)
    return time.perf_counter() - start


def codes(findings) -> list[tuple[str, int]]:
    return [(f.code, f.line) for f in findings]


def script(assignments: str, first: str = "0.1") -> str:
    """One training loop whose SGD learning rate is `lr = first`, then `assignments`."""
    head = MODEL.format(layer="Linear(10, 1)", lr="lr")
    return head.replace("\nmodel =", f"\nlr = {first}\n{assignments}model =", 1) + LOOP


def test_a_name_reassigned_from_itself_200_times_lints_fast():
    text = script("lr = lr * 2\n" * 200)
    findings, seconds = timed_lint(text)
    print(f"200 self-assignments: {seconds:.3f} s")
    assert seconds < 2
    # A name given different values is a variable: its value is unknown, so GL405 stays silent.
    assert "GL405" not in [f.code for f in findings]


def test_an_if_chain_over_one_name_lints_fast():
    text = script("if lr > 0.01:\n    lr = lr / 2\n" * 200)
    findings, seconds = timed_lint(text)
    print(f"200 if-guarded halvings: {seconds:.3f} s")
    assert seconds < 2
    assert "GL405" not in [f.code for f in findings]


@pytest.mark.parametrize("assignments", ["", "lr = 10.0\n", "lr = 10.0\n" * 50])
def test_a_high_learning_rate_assigned_once_or_always_alike_is_still_flagged(assignments):
    findings, seconds = timed_lint(script(assignments, first="10.0"))
    assert seconds < 2
    assert "GL405" in [f.code for f in findings]


def loops_scale(text: str, one_loop: str) -> None:
    """Linting the many-loop file costs a few parses of it at most, and finds what one loop's file finds."""
    parse = timed_parse(text)
    findings, seconds = timed_lint(text)
    print(f"3,000 loops: lint {seconds:.2f} s, parse alone {parse:.2f} s")
    # Relative to the parse (linear by construction), so a loaded machine slows both alike;
    # quadratic facts cost tens of parses here.
    assert seconds < 1 + 4 * parse
    expected = codes(lint_source(one_loop, "train.py"))
    assert codes(findings)[: len(expected)] == expected


def in_function(text: str) -> str:
    head, _, body = text.partition("\nmodel =")
    return head + "\ndef train(data):\n" + "".join(f"    {line}\n" for line in ("model =" + body).splitlines())


def test_3000_loops_in_one_function_sharing_one_model_lint_in_linear_time():
    text = in_function(MODEL.format(layer="Linear(10, 1)", lr="0.1") + LOOP * 3000)
    loops_scale(text, in_function(MODEL.format(layer="Linear(10, 1)", lr="0.1") + LOOP))


@pytest.mark.slow
def test_3000_loops_sharing_one_lstm_lint_in_linear_time_and_keep_the_first_loops_finding():
    text = MODEL.format(layer="LSTM(10, 20)", lr="0.1") + LOOP * 3000
    loops_scale(text, MODEL.format(layer="LSTM(10, 20)", lr="0.1") + LOOP)


RESUMABLE = '''
def train{i}(model, loader, resume=None):
    if resume is None:
        opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)
    else:
        opt = torch.load(resume)["optimizer"]
    for x, y in loader:
        opt.zero_grad()
        loss = model(x)[0].sum()
        loss.backward()
        opt.step()
'''


def test_functions_whose_optimizer_hangs_on_a_parameter_are_each_followed():
    """Which method `opt.step()` runs hangs on `resume`, a parameter, whose value the file's call graph gives:
    the graph was built again inside itself, once per such call, until the recursion limit, and the
    functions met past it lost their callers (2 of 20 flagged). It is built once; each function is flagged."""
    count = 20
    text = "import torch\nfrom torch import nn\n" + "".join(RESUMABLE.format(i=i) for i in range(count))
    text += "".join(f"train{i}(nn.LSTM(4, 8), [])\n" for i in range(count))
    findings, seconds = timed_lint(text)
    assert seconds < 2
    steps = [line for code, line in codes(findings) if code == "GL101"]
    assert steps == [13 + 11 * i for i in range(count)]
