"""Autofixes: exact output, clean re-lint, idempotence, atomic writes that keep the file as it was."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradlint import lint_source
from gradlint.cli import app
from gradlint.config import Settings
from gradlint.engine import lint_paths
from gradlint.findings import Edit
from gradlint.fix.apply import apply_edits, fix_text

REPO = Path(__file__).resolve().parents[2]
FIX_CASES = sorted((REPO / "fixtures" / "fix").glob("*.py"))
ALL_FIXTURES = sorted(p for p in (REPO / "fixtures").rglob("*.py"))


def fixed(text: str, path: str = "case.py") -> str:
    return fix_text(text, path, Settings())[0]


@pytest.mark.parametrize("case", FIX_CASES, ids=lambda p: p.stem)
def test_fix_output_matches_the_expected_file_to_the_character(case):
    source = case.read_text(encoding="utf-8")
    expected = case.with_suffix(".fixed").read_text(encoding="utf-8")
    code = case.stem.split("_")[0]
    assert code in [f.code for f in lint_source(source, case.name)]
    assert fixed(source, case.name) == expected


@pytest.mark.parametrize("case", FIX_CASES, ids=lambda p: p.stem)
def test_fixed_code_relints_clean_compiles_and_a_second_fix_changes_nothing(case):
    result = fixed(case.read_text(encoding="utf-8"), case.name)
    compile(result, case.name, "exec")
    code = case.stem.split("_")[0]
    assert code not in [f.code for f in lint_source(result, case.name)]
    assert fixed(result, case.name) == result


@pytest.mark.parametrize("script", ALL_FIXTURES, ids=lambda p: str(p.relative_to(REPO / "fixtures")))
def test_fix_on_every_fixture_leaves_no_fixable_finding(script):
    source = script.read_text(encoding="utf-8")
    result = fixed(source, str(script))
    compile(result, str(script), "exec")
    assert [f.code for f in lint_source(result, str(script)) if f.fix is not None] == []
    assert fixed(result, str(script)) == result


def test_rule_without_a_provably_safe_edit_offers_none():
    # The clip exists but never runs with the default: adding a second clip would hide the real bug.
    source = (REPO / "fixtures/static/GL101/flagged/clip_disabled_by_default.py").read_text()
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert finding.fix is None


def test_lbfgs_closure_step_gets_no_clip_before_the_step():
    source = """
import torch
model = torch.nn.LSTM(1, 8)
opt = torch.optim.LBFGS(model.parameters())
for _ in range(3):
    def closure():
        opt.zero_grad()
        loss = model(x)[0].sum()
        loss.backward()
        return loss
    opt.step(closure)
"""
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert finding.fix is None


def test_conditional_step_is_accumulation_and_gets_no_zero_grad_fix():
    source = """
import torch
model = torch.nn.Linear(4, 4)
opt = torch.optim.AdamW(model.parameters())
for i, x in enumerate(data):
    model(x).sum().backward()
    if i % 4 == 3:
        opt.step()
"""
    for finding in lint_source(source):
        assert finding.code != "GL402" or finding.fix is None


def test_clip_params_are_read_through_the_optimizer_group_when_names_differ_at_the_step():
    source = """
import torch

def make(model):
    return torch.optim.AdamW(model.parameters())

net = torch.nn.GRU(4, 4)
opt = make(net)
for x in data:
    opt.zero_grad()
    net(x)[0].sum().backward()
    opt.step()
"""
    result = fixed(source)
    assert 'clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], max_norm=1.0)' in result


def test_overlapping_edits_apply_once_and_duplicates_once():
    text = "abcdef"
    edits = [Edit(1, 3, "X"), Edit(2, 4, "Y"), Edit(0, 0, "<"), Edit(0, 0, "<")]
    assert apply_edits(text, edits) == "<aXdef"


def cli(*args):
    return CliRunner().invoke(app, ["check", *args], catch_exceptions=False)


def test_fix_writes_atomically_keeps_mode_line_endings_and_comments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = (REPO / "fixtures/fix/GL402_no_zero_grad.py").read_text().replace("\n", "\r\n")
    target = tmp_path / "train.py"
    target.write_bytes(source.encode())
    os.chmod(target, 0o750)
    result = cli("train.py", "--fix", "--no-cache")
    assert result.exit_code == 0, result.stdout
    data = target.read_bytes().decode()
    assert "        optimizer.zero_grad()\r\n" in data
    assert "\n" not in data.replace("\r\n", "")
    assert "# one pass over the data" in data
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]  # no temporary file left


def test_fix_exit_codes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.py").write_text((REPO / "fixtures/fix/GL402_no_zero_grad.py").read_text())
    assert cli("a.py", "--fix", "--exit-non-zero-on-fix", "--no-cache").exit_code == 1
    assert cli("a.py", "--fix", "--exit-non-zero-on-fix", "--no-cache").exit_code == 0  # nothing left to fix
    # A finding with no fix remains: exit 1 after --fix.
    (tmp_path / "b.py").write_text((REPO / "fixtures/static/GL101/flagged/clip_disabled_by_default.py").read_text())
    assert cli("b.py", "--fix", "--no-cache").exit_code == 1


def test_diff_shows_the_edit_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    original = (REPO / "fixtures/fix/GL103_no_unscale.py").read_text()
    (tmp_path / "amp.py").write_text(original)
    result = cli("amp.py", "--diff")
    assert result.exit_code == 1
    assert "+    scaler.unscale_(opt)\n" in result.stdout
    assert (tmp_path / "amp.py").read_text() == original
    (tmp_path / "amp.py").write_text(fixed(original))
    assert cli("amp.py", "--diff").exit_code == 0


def test_bom_and_declared_encoding_survive_a_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + (REPO / "fixtures/fix/GL402_no_zero_grad.py").read_text()
    (tmp_path / "l.py").write_bytes(source.encode("latin-1"))
    assert cli("l.py", "--fix", "--no-cache").exit_code == 0
    assert "# caf\xe9" in (tmp_path / "l.py").read_bytes().decode("latin-1")
    (tmp_path / "b.py").write_bytes(b"\xef\xbb\xbf" + (REPO / "fixtures/fix/GL402_no_zero_grad.py").read_bytes())
    assert cli("b.py", "--fix", "--no-cache").exit_code == 0
    assert (tmp_path / "b.py").read_bytes().startswith(b"\xef\xbb\xbfimport torch")


@pytest.mark.parametrize("script", ALL_FIXTURES, ids=lambda p: str(p.relative_to(REPO / "fixtures")))
def test_every_offered_fix_compiles_on_its_own(script):
    # A fix that fix_text would have to drop is a finding that claims a fix it cannot give.
    source = script.read_text(encoding="utf-8")
    for finding in lint_source(source, str(script)):
        if finding.fix is not None:
            compile(apply_edits(source, list(finding.fix.edits)), str(script), "exec")


def test_an_optimizer_class_is_never_taken_for_the_parameters():
    source = """
import torch
from torch import optim
from torch.distributed.optim import DistributedOptimizer

model = torch.nn.LSTM(4, 4)
opt = DistributedOptimizer(optim.SGD, params, lr=0.05)
for x in data:
    model(x)[0].sum().backward()
    opt.step()
"""
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert "optim.SGD" not in finding.help.split("add `")[1]
    assert finding.fix is None
    assert "no automatic fix: gradlint cannot tell which parameters" in finding.help


def test_a_finding_without_a_fix_says_why():
    source = (REPO / "fixtures/static/GL101/flagged/clip_disabled_by_default.py").read_text()
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert "(no automatic fix: " in finding.help


def test_clipping_one_of_two_recurrent_models_leaves_the_other_flagged_and_fixed():
    source = """
import torch
encoder = torch.nn.GRU(4, 4)
decoder = torch.nn.LSTM(4, 4)
enc_opt = torch.optim.SGD(encoder.parameters(), lr=0.1)
dec_opt = torch.optim.SGD(decoder.parameters(), lr=0.1)
for x in data:
    enc_opt.zero_grad()
    dec_opt.zero_grad()
    decoder(encoder(x)[0])[0].sum().backward()
    torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
    enc_opt.step()
    dec_opt.step()
"""
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert "dec_opt.step()" in finding.message and finding.fix is not None
    result = fixed(source)
    assert "    torch.nn.utils.clip_grad_norm_(decoder.parameters(), max_norm=1.0)\n    dec_opt.step()" in result
    assert [f for f in lint_source(result) if f.code == "GL101"] == []


def test_an_unscale_under_a_condition_gets_no_second_unscale():
    source = """
import torch
model = torch.nn.LSTM(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.amp.GradScaler("cuda")
for i, x in enumerate(data):
    opt.zero_grad()
    scaler.scale(model(x)[0].sum()).backward()
    if i % 10 == 0:
        scaler.unscale_(opt)
        log(opt)
    scaler.step(opt)
    scaler.update()
"""
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert finding.fix is None and "runs only under a condition" in finding.help


def test_unscale_goes_before_the_first_of_several_clips_once():
    source = """
import torch
model = torch.nn.LSTM(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
scaler = torch.amp.GradScaler("cuda")
for x in data:
    opt.zero_grad()
    scaler.scale(model(x)[0].sum()).backward()
    for p in model.parameters():
        p.grad.clamp_(-1, 1)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    scaler.step(opt)
    scaler.update()
"""
    result = fixed(source)
    assert result.count("scaler.unscale_(opt)") == 1
    assert "backward()\n    scaler.unscale_(opt)\n    for p in model.parameters():" in result


def test_fix_reads_the_neighbours_the_lint_reads(tmp_path, monkeypatch):
    # The clipping is in a helper the script takes by `from utils import *`: the lint sees it, and --fix
    # must not add a second clip beside it.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "utils.py").write_text(
        """
def clip_gradient(optimizer, grad_clip):
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad.data.clamp_(-grad_clip, grad_clip)
"""
    )
    source = """
import torch
from utils import *

model = torch.nn.LSTM(4, 4)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x in data:
    optimizer.zero_grad()
    model(x)[0].sum().backward()
    clip_gradient(optimizer, 5.0)
    optimizer.step()
"""
    (tmp_path / "train.py").write_text(source)
    assert "GL101" not in cli("train.py", "--no-cache").stdout
    assert cli("train.py", "--diff", "--no-cache").stdout == ""
    assert fix_text(source, "train.py", Settings()) == (source, 0)


@pytest.mark.parametrize(
    "imports, compile_args, reason",
    [
        ("from keras.models import Sequential", "optimizer='adam'", "imports neither `keras` nor `tensorflow` by name"),
        ("import keras\nfrom keras.models import Sequential", "optimizer='yogi'", "no Keras optimizer class for 'yogi'"),
        ("import keras\nfrom keras.models import Sequential", "loss='mse'", "is given no optimizer"),
        ("import keras\nfrom keras.models import Sequential", "optimizer=keras.optimizers.Adam(clipnorm=None)", "a clip setting that does not clip"),
    ],
)
def test_a_keras_compile_without_a_fix_says_why(imports, compile_args, reason):
    source = f"""
{imports}
from keras.layers import LSTM, Dense
model = Sequential()
model.add(LSTM(8))
model.add(Dense(1))
model.compile({compile_args})
model.fit(x, y)
"""
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert finding.fix is None and "(no automatic fix: " in finding.help and reason in finding.help
    assert fixed(source) == source


def test_a_step_in_another_file_gets_no_fix_and_says_why(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trainer.py").write_text(
        """
def train_epoch(model, optimizer, data):
    for x in data:
        optimizer.zero_grad()
        model(x)[0].sum().backward()
        optimizer.step()
"""
    )
    source = """
import torch
from trainer import train_epoch

model = torch.nn.LSTM(4, 4)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
train_epoch(model, optimizer, data)
"""
    (tmp_path / "train.py").write_text(source)
    [finding] = [f for f in lint_paths(["train.py"], Settings(root=tmp_path)).findings if f.code == "GL101"]
    assert finding.fix is None
    assert "(no automatic fix: the code to change is at trainer.py:6, in another file)" in finding.help
    assert cli("train.py", "--diff", "--no-cache").stdout == ""
