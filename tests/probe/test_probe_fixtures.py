"""Every fixture through the real probe (a child process, real torch steps): verdict, exit code, evidence."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def test_deep_mlp_with_oversized_init_explodes_on_a_huge_update(probe_json):
    run = probe_json("exploding_deep_mlp.py")
    assert run.exit_code == 1
    assert run.data["verdict"] == "exploding"
    assert "huge update at step 1" in run.data["reason"]
    assert "large-update-ratio" in run.finding_ids()


def test_relu_rnn_explodes_and_its_recurrent_weight_is_named(probe_json):
    run = probe_json("exploding_relu_rnn.py", steps=16)
    assert run.exit_code == 1
    assert run.data["verdict"] == "exploding"
    radius = [f["message"] for f in run.data["findings"] if f["id"] == "recurrent-spectral-radius"]
    assert radius and radius[0].startswith("Tagger.rnn.weight_hh_l0 at the first step")
    assert "= 1.6 > 1" in radius[0]
    assert "Tagger.rnn.weight_hh_l0" in [layer["name"] for layer in run.data["layers"][:2]]


def test_learning_rate_past_the_stability_edge_is_sustained_growth(probe_json, tmp_path):
    plot = tmp_path / "probe.png"
    run = probe_json("exploding_sgd_lr.py", "--plot", str(plot))
    assert run.exit_code == 1
    assert run.data["verdict"] == "exploding"
    assert "is still rising" in run.data["reason"]
    top = run.data["layers"][0]
    assert top["name"] in {"Linear.weight", "Linear.bias"} and top["growth"] > 1e4
    assert {"loss-diverging", "large-update-ratio"} <= run.finding_ids()
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_hand_written_update_counts_backward_steps_and_is_healthy(probe_json):
    run = probe_json("healthy_manual_update.py")
    assert run.exit_code == 0
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12
    assert {step["kind"] for step in run.data["history"]} == {"backward"}
    assert all(0 < step["update_ratio"] < 0.1 for step in run.data["history"])


def test_loop_without_zero_grad_reports_gradients_not_cleared(probe_json):
    run = probe_json("gradients_not_cleared.py")
    assert "gradients-not-cleared" in run.finding_ids()
    assert run.data["verdict"] == "healthy"
    assert all(step["grads_cleared"] is False for step in run.data["history"][1:])


def test_nan_in_the_data_is_non_finite_from_the_input_batch_and_stops_early(probe_json):
    run = probe_json("nonfinite_data.py")
    assert run.exit_code == 1
    assert run.data["verdict"] == "non-finite"
    assert "the origin is the input batch" in run.data["reason"]
    assert run.data["steps"] == 4  # the fourth batch holds the NaN; the probe stops there
    assert run.data["history"][-1]["nonfinite_origin"] == "input"


def test_deep_sigmoid_mlp_is_vanishing(probe_json):
    run = probe_json("vanishing_sigmoid_mlp.py")
    assert run.exit_code == 1
    assert run.data["verdict"] == "vanishing"
    assert "(Sequential.0)" in run.data["reason"]


def test_clipped_exploding_model_is_clipped_and_clipping_was_seen(probe_json):
    run = probe_json("clipped_deep_mlp.py")
    assert run.exit_code == 0
    assert run.data["verdict"] == "clipped"
    history = run.data["history"]
    assert all(step["clipped"] and step["clip_threshold"] == 1.0 for step in history)
    assert all(step["grad_norm"] > 1e3 * step["grad_norm_after"] for step in history)


@pytest.mark.parametrize(
    "name", ["healthy_mlp.py", "healthy_cnn.py", "healthy_lstm.py", "healthy_dataloader_workers.py"]
)
def test_healthy_scripts_are_healthy(probe_json, name):
    run = probe_json(name)
    assert run.exit_code == 0
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 12


def test_arguments_after_the_double_dash_reach_the_script(probe_json):
    run = probe_json("healthy_needs_args.py", "--", "--lr", "0.001", "--hidden", "16")
    assert run.data["verdict"] == "healthy"
    assert run.data["history"][0]["lr"] == 0.001
    assert "Sequential.2.weight" in run.data["history"][0]["grad_norms"]


def test_script_missing_its_required_argument_is_inconclusive_with_its_error(probe_json):
    run = probe_json("healthy_needs_args.py")
    assert run.exit_code == 3
    assert "sys.exit(2)" in run.data["reason"]
    assert any("required" in line for line in run.data["output_tail"])


def test_model_imported_from_a_sibling_file(probe_json):
    run = probe_json("healthy_sibling_import.py")
    assert run.data["verdict"] == "healthy"
    assert "SmallNet.head.weight" in {layer["name"] for layer in run.data["layers"]}


def test_crash_after_one_step_keeps_the_step_and_shows_the_error(probe_json):
    run = probe_json("crash_after_one_step.py")
    assert run.exit_code == 3
    assert run.data["verdict"] == "inconclusive"
    assert "RuntimeError: checkpoint folder /nonexistent is not writable" in run.data["reason"]
    assert len(run.data["history"]) == 1
    assert run.data["output_tail"][-1] == "RuntimeError: checkpoint folder /nonexistent is not writable"


def test_crash_report_in_text_ends_with_the_scripts_error():
    from probe_helpers import FIXTURES, run_cli

    run = run_cli(str(FIXTURES / "crash_after_one_step.py"))
    assert run.exit_code == 3
    assert run.stdout.startswith("INCONCLUSIVE")
    assert run.stdout.rstrip().splitlines()[-1].strip() == "RuntimeError: checkpoint folder /nonexistent is not writable"


def test_inference_only_is_inconclusive(probe_json):
    run = probe_json("inference_only.py")
    assert run.exit_code == 3
    assert "never called backward()" in run.data["reason"]


def test_sys_exit_after_two_steps_keeps_both_steps(probe_json):
    run = probe_json("exits_after_two_steps.py")
    assert run.exit_code == 3
    assert "sys.exit(0)" in run.data["reason"]
    assert [step["step"] for step in run.data["history"]] == [1, 2]
