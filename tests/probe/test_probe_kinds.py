"""Kinds of training the probe must judge right (issue 12): each fixture through the real probe, with the
verdict and the evidence that decides it."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

FLOAT16_MAX = 65504.0


def test_huge_finite_first_gradient_is_exploding_not_non_finite(probe_json):
    run = probe_json("exploding_huge_finite.py")
    assert run.data["verdict"] == "exploding"
    assert "huge update at step 1" in run.data["reason"]
    first = run.data["history"][0]
    assert first["nonfinite"] == []
    assert 1e20 < first["grad_norm"] < 1e30  # its square overflows float32: measured exactly all the same


def test_model_held_in_float16_is_healthy_with_norms_above_float16_range(probe_json):
    run = probe_json("healthy_fp16_model.py")
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12
    assert all(FLOAT16_MAX < step["grad_norm"] < 1e6 for step in run.data["history"])


def test_sparse_embedding_gradients_are_measured(probe_json):
    run = probe_json("healthy_sparse_embedding.py")
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12
    sparse = [step for step in run.data["history"] if step["optimizer"] == "SparseAdam"]
    assert len(sparse) == 6
    assert all(0 < step["grad_norms"]["EmbeddingBag.weight"] < 1 for step in sparse)
