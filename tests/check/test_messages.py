"""Findings people can read: a short message (what is wrong and the evidence) and a help line (the fix), the
help in the words of the code's framework."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradlint import lint_source

REPO = Path(__file__).resolve().parents[2]
# "At most about 120 characters": the evidence names lines, values and where they come from, so a few run longer.
MESSAGE_LIMIT = 130

TORCH_IMPORT = re.compile(r"^\s*(import|from) torch\b", re.M)
TF_IMPORT = re.compile(r"^\s*(import|from) (tensorflow|keras|tf_keras)\b", re.M)
LIGHTNING_IMPORT = re.compile(r"^\s*(import|from) (lightning|pytorch_lightning)\b", re.M)


@pytest.fixture(scope="module")
def fixture_findings() -> list[dict]:
    run = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "fixtures/", "--format", "json", "--no-cache", "--exit-zero"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert run.returncode in (0, 2), run.stderr
    return json.loads(run.stdout)


def source_of(finding: dict) -> str:
    return (REPO / finding["path"]).read_text(encoding="utf-8", errors="replace")


def test_every_message_is_short_and_every_rule_says_how_to_fix(fixture_findings):
    assert {f["code"] for f in fixture_findings} >= {"GL101", "GL102", "GL103", "GL104", "GL201", "GL301", "GL402"}
    for finding in fixture_findings:
        assert len(finding["message"]) <= MESSAGE_LIMIT, finding
        if finding["code"] != "GL001":
            assert finding["help"], finding
            # The fix is said once, in the help; the message no longer ends with it.
            assert not re.search(r"; (add|use|call|pass|move) `", finding["message"]), finding


def test_keras_and_tensorflow_code_gets_no_torch_advice(fixture_findings):
    tf_only = [f for f in fixture_findings if TF_IMPORT.search(source_of(f)) and not TORCH_IMPORT.search(source_of(f))]
    assert {f["code"] for f in tf_only} >= {"GL101", "GL201", "GL301", "GL302"}
    for finding in tf_only:
        if finding["help"]:
            assert "torch" not in finding["help"] and "nn.LayerNorm" not in finding["help"], finding


def test_lightning_code_is_told_the_trainers_option(fixture_findings):
    lightning = [f for f in fixture_findings if LIGHTNING_IMPORT.search(source_of(f))]
    clipping = [f for f in lightning if f["code"] in ("GL101", "GL104", "GL405")]
    assert {f["code"] for f in clipping} >= {"GL101", "GL104", "GL405"}
    for finding in clipping:
        assert "Trainer(gradient_clip_val=1.0)" in finding["help"], finding
        assert "clip_grad_norm_" not in finding["help"], finding


HF_TRAINING = """
import torch
from transformers import Trainer, TrainingArguments

class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(8, 8)

    def forward(self, x):
        return self.rnn(x)[0]

args = TrainingArguments(output_dir="out", max_grad_norm={norm})
trainer = Trainer(model=Tagger(), args=args, train_dataset=data)
trainer.train()
"""


@pytest.mark.parametrize("norm, code", [("0", "GL101"), ("float('inf')", "GL104")])
def test_hugging_face_code_is_told_the_training_arguments_option(norm, code):
    [finding] = [f for f in lint_source(HF_TRAINING.format(norm=norm)) if f.code == code]
    assert "TrainingArguments(max_grad_norm=1.0)" in finding.help
    assert "clip_grad_norm_" not in finding.help


def test_plain_pytorch_is_told_the_torch_call():
    source = (REPO / "fixtures/fix/GL101_torch_loop.py").read_text(encoding="utf-8")
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    assert "torch.nn.utils.clip_grad_norm_(" in finding.help and "clip_grad_norm_" not in finding.message


def test_the_editor_shows_the_help_on_a_second_line():
    pytest.importorskip("lsprotocol")
    from gradlint.server import Positions, diagnostic

    source = (REPO / "fixtures/fix/GL101_torch_loop.py").read_text(encoding="utf-8")
    [finding] = [f for f in lint_source(source) if f.code == "GL101"]
    shown = diagnostic(finding, Positions(source))
    assert shown.message == f"{finding.message}\nhelp: {finding.help}"
