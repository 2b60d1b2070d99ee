"""The verdict rules on synthetic records: pure Python, no torch, fast."""
from __future__ import annotations

import json
import math

from gradlint.probe.analysis import analyze, summarize_layers
from gradlint.probe.records import EndRecord, RecurrentRecord, RunInfo, StepRecord


def make_steps(
    grads: list[float],
    *,
    after: list[float] | None = None,
    clipped: bool = False,
    layers: list[dict[str, float]] | None = None,
    updates: list[float | None] | None = None,
    losses: list[float] | None = None,
    nonfinite: dict[int, list[str]] | None = None,
    origin: dict[int, str] | None = None,
    cleared: bool | None = True,
    params: list[float] | None = None,
) -> list[StepRecord]:
    records = []
    for i, g in enumerate(grads):
        records.append(
            StepRecord(
                step=i + 1,
                kind="optimizer",
                loss=losses[i] if losses else 1.0,
                grad_norm=g,
                grad_norm_after=after[i] if after else g,
                param_norm=params[i] if params else 10.0,
                update_ratio=updates[i] if updates else 0.001,
                lr=0.01,
                clipped=clipped,
                clip_threshold=1.0 if clipped else None,
                grad_norms=layers[i] if layers else {"Net.fc1.weight": g * 0.6, "Net.fc2.weight": g * 0.8},
                nonfinite=(nonfinite or {}).get(i + 1, []),
                nonfinite_origin=(origin or {}).get(i + 1),
                grads_cleared=None if i == 0 else cleared,
            )
        )
    return records


def test_flat_gradients_are_healthy():
    result = analyze(make_steps([1.0, 0.9, 1.1, 1.0, 0.95, 1.05, 1.0, 0.9, 1.0, 1.1]))
    assert result.verdict == "healthy"
    assert result.exit_code == 0


def test_one_step_spike_that_recovers_is_a_note_not_exploding():
    grads = [1.0, 1.1, 0.9, 1.0, 25.0, 1.2, 1.0, 0.9, 1.1, 1.0, 1.0, 0.95]
    result = analyze(make_steps(grads))
    assert result.verdict == "healthy"
    assert result.has_finding("spike-recovered")


def test_spike_on_the_last_step_is_not_sustained_growth():
    grads = [1.0, 1.1, 0.9, 1.0, 1.2, 1.0, 0.9, 1.1, 1.0, 1.0, 0.95, 25.0]
    assert analyze(make_steps(grads)).verdict == "healthy"


def test_repeated_spikes_that_recover_are_healthy():
    grads = [1.0, 1.0, 1.0, 20.0, 1.0, 1.0, 25.0, 1.1, 1.0, 18.0, 1.0, 1.0]
    result = analyze(make_steps(grads))
    assert result.verdict == "healthy"
    assert sum(f.id == "spike-recovered" for f in result.findings) == 3


def test_sustained_growth_is_exploding():
    grads = [1.0 * 1.4**i for i in range(12)]
    result = analyze(make_steps(grads))
    assert result.verdict == "exploding"
    assert result.exit_code == 1
    assert "grew" in result.reason


def test_growth_that_stopped_rising_is_not_exploding():
    # Grew 38x and mostly rose overall, but fell over the last steps: it settled, it is not exploding.
    grads = [1.5**i for i in range(10)] + [37.0, 36.0, 35.0, 34.0, 33.0, 32.0]
    assert analyze(make_steps(grads)).verdict == "healthy"
    assert analyze(make_steps(grads[:10])).verdict == "exploding"


def test_slow_growth_below_ten_times_is_not_exploding():
    grads = [1.0 * 1.1**i for i in range(12)]  # 2.9x overall
    assert analyze(make_steps(grads)).verdict == "healthy"


def test_nonfinite_after_huge_update_is_exploding():
    steps = make_steps([1.0, 2.0, math.inf], updates=[0.01, 3.0, None], nonfinite={3: ["grad", "loss"]})
    result = analyze(steps)
    assert result.verdict == "exploding"
    assert "huge update at step 2" in result.reason


def test_nonfinite_after_growth_is_exploding():
    steps = make_steps([1.0, 1.0, 1.0, 30.0, 400.0, math.nan], nonfinite={6: ["grad"]})
    result = analyze(steps)
    assert result.verdict == "exploding"
    assert "400x" in result.reason


def test_nonfinite_from_nowhere_names_the_input_batch():
    steps = make_steps([1.0, 1.0, 1.0, math.nan], nonfinite={4: ["loss", "grad"]}, origin={4: "input"})
    result = analyze(steps)
    assert result.verdict == "non-finite"
    assert result.exit_code == 1
    assert "input batch" in result.reason


def test_nonfinite_names_the_first_module():
    steps = make_steps([1.0, math.nan], nonfinite={2: ["loss"]}, origin={2: "Net.log_layer"})
    result = analyze(steps)
    assert result.verdict == "non-finite"  # fewer than 3 steps, but a NaN is certain
    assert "Net.log_layer" in result.reason


def test_clipping_that_cuts_ten_times_is_clipped():
    grads = [50.0, 60.0, 55.0, 70.0, 65.0, 80.0]
    result = analyze(make_steps(grads, after=[1.0] * 6, clipped=True))
    assert result.verdict == "clipped"
    assert result.exit_code == 0
    assert "threshold 1" in result.reason


def test_growth_held_by_clipping_is_clipped():
    grads = [1.0 * 1.4**i for i in range(12)]
    result = analyze(make_steps(grads, after=[min(g, 5.0) for g in grads], clipped=True))
    assert result.verdict == "clipped"


def test_clipping_that_rarely_cuts_is_healthy():
    grads = [1.0, 0.9, 1.2, 1.0, 1.1, 0.8]
    assert analyze(make_steps(grads, after=[min(g, 1.0) for g in grads], clipped=True)).verdict == "healthy"


def test_first_layer_far_below_last_is_vanishing():
    layers = [{"Net.0.weight": 1e-7, "Net.0.bias": 1e-8, "Net.9.weight": 0.1, "Net.9.bias": 0.05}] * 5
    result = analyze(make_steps([0.1] * 5, layers=layers))
    assert result.verdict == "vanishing"
    assert "Net.0" in result.reason


def test_all_tiny_gradients_are_vanishing():
    layers = [{"Net.0.weight": 1e-9, "Net.1.weight": 2e-9}] * 4
    assert analyze(make_steps([1e-9] * 4, layers=layers)).verdict == "vanishing"


def test_fewer_than_three_steps_is_inconclusive_with_the_error():
    run = RunInfo(end=EndRecord("error", error="RuntimeError: boom"))
    result = analyze(make_steps([1.0, 1.0]), run=run)
    assert result.verdict == "inconclusive"
    assert result.exit_code == 3
    assert "RuntimeError: boom" in result.reason


def test_never_trained_is_inconclusive():
    run = RunInfo(end=EndRecord("completed", forward_calls=4))
    result = analyze([], run=run)
    assert result.verdict == "inconclusive"
    assert "never called backward" in result.reason


def test_timeout_is_inconclusive():
    assert "timed out" in analyze(make_steps([1.0]), run=RunInfo(timed_out=True)).reason


def test_gradients_never_cleared_is_a_finding():
    grads = [1.0 * (i + 1) for i in range(6)]
    assert analyze(make_steps(grads, cleared=False)).has_finding("gradients-not-cleared")
    assert not analyze(make_steps(grads, cleared=True)).has_finding("gradients-not-cleared")


def test_recurrent_radius_above_one_is_a_finding():
    records = [RecurrentRecord("Net.rnn.weight_hh_l0", 2.5, 1.0, "start")]
    result = analyze(make_steps([1.0] * 3), recurrent=records)
    assert result.has_finding("recurrent-spectral-radius")
    calm = [RecurrentRecord("Net.rnn.weight_hh_l0", 0.9, 1.0, "start")]
    assert not analyze(make_steps([1.0] * 3), recurrent=calm).has_finding("recurrent-spectral-radius")


def test_gated_recurrent_radius_is_recorded_not_reported():
    records = [RecurrentRecord("Net.lstm.weight_hh_l0", 1.2, 1.0, "start", gated=True)]
    result = analyze(make_steps([1.0] * 3), recurrent=records)
    assert not result.has_finding("recurrent-spectral-radius")
    assert result.to_json()["recurrent"][0]["gated"] is True


def test_large_updates_growing_weights_and_diverging_loss_are_findings():
    steps = make_steps(
        [1.0] * 5, updates=[0.5] * 5, params=[1.0, 2.0, 3.0, 4.0, 5.0], losses=[1.0, 1.0, 1.0, 5.0, 20.0]
    )
    result = analyze(steps)
    ids = {f.id for f in result.findings}
    assert {"large-update-ratio", "weights-growing", "loss-diverging"} <= ids


def test_layer_table_puts_the_fastest_growing_first():
    layers = [{"Net.a.weight": 1.0, "Net.b.weight": 1.0 * 3**i} for i in range(4)]
    summaries = summarize_layers(make_steps([1.0] * 4, layers=layers))
    assert summaries[0].name == "Net.b.weight"
    assert summaries[0].growth == 3.0  # last (27) over the largest of the first three (9)


def test_json_is_strict_json_even_with_nan():
    steps = make_steps([1.0, math.nan], nonfinite={2: ["grad"]})
    text = json.dumps(analyze(steps).to_json(), allow_nan=False)
    assert '"nan"' in text
    round_trip = StepRecord.from_json(steps[1].to_json())
    assert math.isnan(round_trip.grad_norm)
