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


def test_loss_scaler_skips_are_a_note_and_the_run_is_healthy(probe_json):
    run = probe_json("healthy_amp_scaler_skips.py")
    assert run.data["verdict"] == "healthy"
    note = next(f["message"] for f in run.data["findings"] if f["id"] == "scaler-skipped")
    assert note.startswith("scaler skipped 5 steps, scale 65536 -> 8192")
    first = run.data["history"][0]
    assert first["skipped_scales"] == [65536.0, 32768.0, 16384.0] and first["loss_scale"] == 8192.0
    assert all(step["loss"] < 1000 for step in run.data["history"])  # the loss, not the loss times the scale


def test_clipping_before_unscale_is_gl103_not_clipped(probe_json):
    run = probe_json("healthy_amp_clip_before_unscale.py")
    assert run.data["verdict"] == "healthy"
    assert "clip-scaled-gradients" in run.finding_ids()
    assert not any(step["clipped"] for step in run.data["history"])
    assert all(1 < step["grad_norm"] < 100 for step in run.data["history"])  # G unscaled, before the clip
    assert {s["code"]: s["confirmation"] for s in run.data["static"]}.get("GL103") == "confirmed"


@pytest.mark.parametrize(
    ("name", "names"),
    [
        ("healthy_bare_tensors.py", ["w1", "w2"]),
        ("healthy_autograd_grad.py", ["weight", "bias"]),
        ("healthy_func_grad.py", ["params['w1']", "params['b1']", "params['w2']"]),
    ],
)
def test_training_without_module_or_optimizer_is_measured(probe_json, name, names):
    run = probe_json(name)
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12
    history = run.data["history"]
    assert list(history[0]["grad_norms"]) == names
    assert all(0 < step["update_ratio"] < 0.1 for step in history)
    assert history[-1]["loss"] < history[0]["loss"]


def test_get_total_norm_with_clip_grads_with_norm_is_clipping(probe_json):
    run = probe_json("clipped_grads_with_norm.py")
    assert run.data["verdict"] == "clipped"
    assert all(step["clipped"] and step["grad_norm"] > 1e10 for step in run.data["history"])


def test_clipping_that_trims_is_healthy_with_a_note(probe_json):
    run = probe_json("healthy_clip_trims.py")
    assert run.data["verdict"] == "healthy"
    assert "clipping-ran" in run.finding_ids()
    assert all(1 < step["grad_norm"] < 5 for step in run.data["history"])


@pytest.mark.parametrize("steps", [12, 32])
def test_run_that_falls_then_grows_is_exploding_once_it_grows(probe_json, steps):
    run = probe_json("exploding_after_falling.py", steps=steps)
    if steps == 12:
        assert run.data["verdict"] == "healthy"  # still falling: nothing has exploded yet
        return
    assert run.data["verdict"] == "exploding"
    assert "from its minimum" in run.data["reason"] and "the loss is not falling" in run.data["reason"]
    grads = [step["grad_norm"] for step in run.data["history"]]
    assert grads[-1] > 1e6 * min(grads)


@pytest.mark.parametrize("steps", [20, 45])
def test_warmup_shaped_rise_with_falling_loss_is_healthy(probe_json, steps):
    run = probe_json("healthy_warmup.py", steps=steps)
    assert run.data["verdict"] == "healthy"
    grads = [step["grad_norm"] for step in run.data["history"]]
    assert max(grads) > 30 * grads[0]  # G rose well past 10x during the warmup


def test_lbfgs_steps_are_paired_with_their_own_first_closure(probe_json):
    run = probe_json("healthy_lbfgs.py")
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12
    first, second = run.data["history"][:2]
    assert first["grad_norm"] > 1 and first["grads_cleared"] is None  # the gradient at the initial weights
    assert second["loss"] < first["loss"]


def test_two_optimizers_of_a_gan_are_judged_apart(probe_json):
    run = probe_json("healthy_gan.py")
    assert run.data["verdict"] == "healthy"
    assert not {"gradients-not-cleared", "spike-recovered"} & run.finding_ids()
    assert [step["optimizer"] for step in run.data["history"][:4]] == ["Adam", "Adam#2", "Adam", "Adam#2"]
    assert all(step["grads_cleared"] for step in run.data["history"][2:])


def test_accumulation_cleared_after_each_update_is_not_gradients_not_cleared(probe_json):
    run = probe_json("healthy_accumulation.py")
    assert run.data["verdict"] == "healthy"
    assert "gradients-not-cleared" not in run.finding_ids()
    assert all(step["grads_cleared"] for step in run.data["history"][1:])


def test_first_layers_come_from_forward_order_not_parameter_groups(probe_json):
    run = probe_json("vanishing_head_first_groups.py")
    assert run.data["verdict"] == "vanishing"
    assert "(Sequential.0)" in run.data["reason"] and "(Sequential.28)" in run.data["reason"]
    assert list(run.data["history"][0]["grad_norms"])[0] == "Sequential.0.weight"
