"""Verdicts on synthetic histories for the kinds of issue 12: growth judged on the recent trend (several run
lengths), one series per optimizer, clipping that only trims, loss scaling. Pure Python, fast."""
from __future__ import annotations

import pytest
from test_analysis import make_steps

from gradlint.probe.analysis import analyze


def fall_then_grow(n: int) -> dict[str, list[float]]:
    """G falls 5% a step for 25 steps, then grows 40x a step; the loss follows it."""
    grads = [10.0 * 0.95**i if i < 25 else 10.0 * 0.95**24 * 40.0 ** (i - 24) for i in range(n)]
    losses = [2.0 * 0.97**i if i < 25 else 2.0 * 0.97**24 * 100.0 ** (i - 24) for i in range(n)]
    return {"grads": grads, "losses": losses}


def warmup(n: int) -> dict[str, list[float]]:
    """G rises 12% a step over the first 35 steps (63x), then settles; the loss falls all along; updates stay
    small while the learning rate warms up."""
    grads = [0.05 * 1.12 ** min(i, 35) * (1.0 + 0.05 * (-1) ** i) for i in range(n)]
    losses = [3.0 * 0.98**i for i in range(n)]
    updates = [1e-5 * min(i + 1, 35) for i in range(n)]
    return {"grads": grads, "losses": losses, "updates": updates}


@pytest.mark.parametrize("n", [12, 20, 26, 27])
def test_falling_run_is_not_exploding_before_it_grows_for_long(n):
    history = fall_then_grow(n)
    assert analyze(make_steps(history["grads"], losses=history["losses"])).verdict == "healthy"


@pytest.mark.parametrize("n", [28, 30, 35, 40])
def test_run_that_falls_then_grows_is_exploding(n):
    history = fall_then_grow(n)
    result = analyze(make_steps(history["grads"], losses=history["losses"]))
    assert result.verdict == "exploding"
    assert "from its minimum" in result.reason and "at step 25" in result.reason
    assert "the loss is not falling" in result.reason


@pytest.mark.parametrize("n", [12, 20, 30, 45, 60])
def test_warmup_rise_with_falling_loss_is_healthy(n):
    history = warmup(n)
    steps = make_steps(history["grads"], losses=history["losses"], updates=history["updates"])
    assert analyze(steps).verdict == "healthy"


def test_growth_with_falling_loss_but_growing_weights_is_exploding():
    grads = [1.4**i for i in range(12)]
    losses = [1.0 - 0.01 * i for i in range(12)]
    params = [10.0 * 1.3**i for i in range(12)]
    result = analyze(make_steps(grads, losses=losses, params=params))
    assert result.verdict == "exploding"
    assert "the weights grew" in result.reason


def test_growth_with_falling_loss_and_updates_growing_large_is_exploding():
    grads = [1.4**i for i in range(12)]
    losses = [1.0 - 0.01 * i for i in range(12)]
    updates = [0.01 * 1.5**i for i in range(12)]
    result = analyze(make_steps(grads, losses=losses, updates=updates))
    assert result.verdict == "exploding"
    assert "the updates grew" in result.reason


def test_two_optimizers_alternating_are_two_series():
    # A GAN: the discriminator's G is ~1, the generator's ~20; alternating, one series would spike every step.
    grads = [1.0 if i % 2 == 0 else 20.0 for i in range(16)]
    steps = make_steps(grads)
    for i, step in enumerate(steps):
        step.optimizer = "Adam" if i % 2 == 0 else "Adam#2"
        step.grads_cleared = None if i < 2 else True
    result = analyze(steps)
    assert result.verdict == "healthy"
    assert not result.has_finding("spike-recovered")
    assert not result.has_finding("gradients-not-cleared")


def test_one_series_of_two_exploding_names_its_optimizer():
    grads = []
    for i in range(12):
        grads += [1.0, 1.5**i]
    steps = make_steps(grads)
    for i, step in enumerate(steps):
        step.optimizer = "SGD" if i % 2 == 0 else "SGD#2"
    result = analyze(steps)
    assert result.verdict == "exploding"
    assert result.reason.startswith("SGD#2: G grew")


def test_clipping_that_only_trims_is_healthy_with_a_note():
    # The Hugging Face Trainer's default max_grad_norm=1.0 on gradients of norm ~1.3.
    grads = [1.3, 1.25, 1.35, 1.2, 1.3, 1.28]
    result = analyze(make_steps(grads, after=[1.0] * 6, clipped=True))
    assert result.verdict == "healthy"
    note = next(f.message for f in result.findings if f.id == "clipping-ran")
    assert "threshold 1" in note and "at most 1.35x" in note


def test_scaler_skips_are_a_note_not_a_verdict():
    steps = make_steps([1.0, 1.1, 0.9, 1.0, 1.05])
    steps[0].skipped_scales = [65536.0, 32768.0, 16384.0]
    steps[0].loss_scale = 8192.0
    result = analyze(steps)
    assert result.verdict == "healthy"
    note = next(f.message for f in result.findings if f.id == "scaler-skipped")
    assert note.startswith("scaler skipped 3 steps, scale 65536 -> 8192")


def test_clipping_scaled_gradients_is_a_finding_not_clipped():
    steps = make_steps([1.0, 1.1, 0.9, 1.0])
    for step in steps:
        step.clip_scaled = True
    result = analyze(steps)
    assert result.verdict == "healthy"
    assert result.has_finding("clip-scaled-gradients")


def test_gl103_is_confirmed_by_clipping_on_scaled_gradients():
    from gradlint.probe.report import confirmation

    steps = make_steps([1.0, 1.1, 0.9, 1.0])
    assert confirmation("GL103", analyze(steps)) == "not confirmed"
    for step in steps:
        step.clip_scaled = True
    assert confirmation("GL103", analyze(steps)) == "confirmed"


def test_swinging_back_up_below_the_warmup_peak_is_not_growth():
    # After a warmup peak of 2.3, G dips to 0.1 and climbs back to 0.8 while the loss wobbles up a little.
    grads = [0.03 * 1.2**i for i in range(22)] + [2.0, 1.0, 0.5, 0.2, 0.1, 0.15, 0.22, 0.3, 0.4, 0.55, 0.7, 0.8]
    losses = [3.0 * 0.95**i for i in range(27)] + [0.75 + 0.01 * i for i in range(7)]
    assert analyze(make_steps(grads, losses=losses)).verdict == "healthy"
