"""The Lightning callback and the Hugging Face TrainerCallback, for real: each framework's own trainer on a tiny
model, through `gradlint probe` and through the callback. Nothing is downloaded."""
from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from probe_helpers import FIXTURES

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _fixture_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), FIXTURES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lightning_trainer_through_the_probe(probe_json):
    run = probe_json("lightning_healthy.py")
    assert run.exit_code == 0
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12
    assert len(run.data["history"][0]["grad_norms"]) == 4  # both layers' weights and biases


def test_lightning_callback():
    from gradlint.probe.integrations import lightning_callback

    callback = lightning_callback(print_report=False)
    trainer, model, loader = _fixture_module("lightning_healthy.py").build(max_steps=10, callbacks=[callback])
    trainer.fit(model, loader)
    assert callback.result.verdict == "healthy"
    assert len(callback.result.steps) == 10


def test_huggingface_trainer_through_the_probe(probe_json):
    run = probe_json("hf_tiny_gpt2.py")
    assert run.exit_code == 0
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12
    assert all(step["clipped"] for step in run.data["history"])  # the Trainer's max_grad_norm=1.0


def test_huggingface_callback(tmp_path):
    from gradlint.probe.integrations import huggingface_callback

    callback = huggingface_callback(print_report=False)
    _fixture_module("hf_tiny_gpt2.py").build(str(tmp_path), max_steps=10, callbacks=[callback]).train()
    assert callback.result.verdict == "healthy"
    assert len(callback.result.steps) == 10
