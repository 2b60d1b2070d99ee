"""Verdicts from probe records. Pure Python: it never imports torch, so it is testable on synthetic records.

The criteria are the table in the probe contract (shared/spec/probe.md). The thresholds below are named
after what they mean there; a change here is a change of the contract.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from gradlint.probe.records import RecurrentRecord, RunInfo, StepRecord, encode_float, is_finite

EXIT_CODES = {
    "exploding": 1,
    "clipped": 0,
    "vanishing": 1,
    "non-finite": 1,
    "healthy": 0,
    "inconclusive": 3,
}

MIN_STEPS = 3
HUGE_UPDATE = 1.0  # U at or above this right before a non-finite value: the update blew the weights up
GROWTH_FACTOR = 10.0  # G grew this much: exploding, not a fluctuation
MIN_LOG_SLOPE = math.log(1.05)  # sustained growth: at least 5% per step on average
MIN_RISING_SHARE = 0.6  # share of step-to-step ratios above 1 for sustained growth
RECENT_WINDOW = 8  # growth is judged on the trend of these last steps
CLIP_CUT = 10.0  # clipping that divides G by this much is what holds training together
VANISHING_RATIO = 1e-4  # first layer's gradient vs last layer's
VANISHING_FLOOR = 1e-7  # every gradient below this
LARGE_UPDATE = 0.1
WEIGHT_GROWTH = 2.0
LOSS_GROWTH = 10.0
SPIKE_FACTOR = 5.0  # a one-step jump this large over the recent level is a spike worth a note
SPIKE_RECOVERED = 2.0  # back within this factor of the level before it


@dataclass(frozen=True)
class ProbeFinding:
    id: str
    message: str


@dataclass(frozen=True)
class LayerSummary:
    name: str
    first: float | None
    last: float | None  # last finite value
    max: float | None
    growth: float | None  # last / largest of the first three: one tiny early value must not dominate

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "first": encode_float(self.first),
            "last": encode_float(self.last),
            "max": encode_float(self.max),
            "growth": encode_float(self.growth),
        }


@dataclass
class ProbeResult:
    verdict: str
    reason: str
    steps: list[StepRecord]
    findings: list[ProbeFinding] = field(default_factory=list)
    layers: list[LayerSummary] = field(default_factory=list)
    recurrent: list[RecurrentRecord] = field(default_factory=list)
    run: RunInfo = field(default_factory=RunInfo)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def has_finding(self, finding_id: str) -> bool:
        return any(f.id == finding_id for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "steps": len(self.steps),
            "reason": self.reason,
            "findings": [{"id": f.id, "message": f.message} for f in self.findings],
            "history": [record.to_json() for record in self.steps],
            "layers": [layer.to_json() for layer in self.layers],
            "recurrent": [r.to_json() for r in self.recurrent],
            "script_error": self.run.end.error if self.run.end else None,
        }


def analyze(
    steps: list[StepRecord], recurrent: list[RecurrentRecord] | None = None, run: RunInfo | None = None
) -> ProbeResult:
    """Give the verdict for a run from its step records (in step order)."""
    run = run or RunInfo()
    recurrent = recurrent or []
    verdict, reason = _verdict(steps, run)
    return ProbeResult(
        verdict=verdict,
        reason=reason,
        steps=steps,
        findings=_secondary_findings(steps, recurrent, verdict),
        layers=summarize_layers(steps),
        recurrent=recurrent,
        run=run,
    )


def _series(steps: list[StepRecord]) -> list[tuple[str | None, list[StepRecord]]]:
    """One series of steps per optimizer: a GAN's two optimizers alternate, and each has its own G, loss and
    gradients, so growth, spikes and clearing are judged within a series, never across two."""
    groups: dict[str | None, list[StepRecord]] = {}
    for s in steps:
        groups.setdefault(s.optimizer, []).append(s)
    return list(groups.items())


def _series_label(label: str | None) -> str:
    return label or "hand-written updates"


_SEVERITY = ("exploding", "vanishing", "clipped", "healthy")


def _verdict(steps: list[StepRecord], run: RunInfo) -> tuple[str, str]:
    first_bad = next((s for s in steps if s.nonfinite), None)
    if first_bad is not None:
        series = [s for s in steps if s.optimizer == first_bad.optimizer]
        return _nonfinite_verdict(series, series.index(first_bad))
    if len(steps) < MIN_STEPS:
        return "inconclusive", _inconclusive_reason(steps, run)
    series = [(label, part) for label, part in _series(steps) if len(part) >= MIN_STEPS] or [(None, steps)]
    judged = [(label, *_series_verdict(part)) for label, part in series]
    label, verdict, reason = min(judged, key=lambda item: _SEVERITY.index(item[1]))
    if verdict != "healthy":
        return verdict, f"{_series_label(label)}: {reason}" if len(series) > 1 else reason
    grads = [s.grad_norm for s in steps]
    return "healthy", (
        f"{len(steps)} steps, G from {_fmt(grads[0])} to {_fmt(grads[-1])} (max {_fmt(max(grads))}), "
        "all values finite"
    )


def _series_verdict(steps: list[StepRecord]) -> tuple[str, str]:
    """The verdict on one optimizer's finite steps."""
    growth = _sustained_growth(steps)
    clip_cut = _clip_cut(steps)
    if clip_cut or (growth and _clipping_ran_mostly(steps)):
        return "clipped", clip_cut or f"{growth}; clipping ran on every step that mattered"
    if growth:
        return "exploding", growth
    vanishing = _vanishing(steps)
    if vanishing:
        return "vanishing", vanishing
    return "healthy", ""


def _nonfinite_verdict(steps: list[StepRecord], first_bad: int) -> tuple[str, str]:
    bad = steps[first_bad]
    what = "/".join(_NONFINITE_WORDS[k] for k in bad.nonfinite)
    where = f"{what} went non-finite at step {bad.step}"
    before = steps[max(0, first_bad - 3) : first_bad]
    # The step that produced the non-finite value may itself report a finite, huge update.
    updates = [(s.step, s.update_ratio) for s in (*before, bad) if is_finite(s.update_ratio)]
    huge = [(step, u) for step, u in updates if u >= HUGE_UPDATE]
    if huge:
        step, u = max(huge, key=lambda pair: pair[1])
        return "exploding", f"{where}, right after a huge update at step {step} (update/weight U = {_fmt(u)})"
    baseline_steps = [s.grad_norm for s in steps[: min(MIN_STEPS, first_bad)] if is_finite(s.grad_norm)]
    recent = [s.grad_norm for s in (*before, bad) if is_finite(s.grad_norm)]
    if baseline_steps and recent:
        baseline = statistics.median(baseline_steps)
        peak = max(recent)
        if baseline > 0 and peak >= GROWTH_FACTOR * baseline:
            return "exploding", (
                f"{where}, after G grew {_fmt(peak / baseline)}x (from {_fmt(baseline)} to {_fmt(peak)})"
            )
    origin = next((s.nonfinite_origin for s in steps[first_bad:] if s.nonfinite_origin), None)
    if origin == "input":
        source = "the origin is the input batch: it already held NaN/Inf before any module ran"
    elif origin:
        source = f"the origin is {origin}: its output went non-finite while its inputs were finite"
    else:
        source = "the origin was not seen in a module's output (it arose outside the forward pass)"
    return "non-finite", f"{where} with no huge update and no growth before it; {source}"


_NONFINITE_WORDS = {"loss": "loss", "grad": "gradients", "param": "parameters"}


def _inconclusive_reason(steps: list[StepRecord], run: RunInfo) -> str:
    seen = f"only {len(steps)} step{'s' if len(steps) != 1 else ''} observed (3 needed)"
    end = run.end
    if run.timed_out:
        return f"{seen}: the script timed out"
    if end is None:
        code = f" (exit status {run.returncode})" if run.returncode is not None else ""
        return f"{seen}: the script's process died before it could report{code}"
    if end.status == "error":
        return f"{seen}: the script failed with {end.error}"
    if end.status == "running":
        return f"{seen} so far"
    if end.status == "exit":
        return f"{seen}: the script called sys.exit({end.exit_code})"
    if not steps and end.backward_calls == 0:
        if end.forward_calls:
            return f"{seen}: the script ran its model {end.forward_calls} times but never called backward()"
        return f"{seen}: the script never trained a torch model"
    return f"{seen}: the script ended"


def _log_slope(values: list[float]) -> float:
    """Least-squares slope of ln(value) per step."""
    logs = [math.log(v) for v in values]
    n = len(logs)
    mean_x = (n - 1) / 2
    mean_y = sum(logs) / n
    var = sum((i - mean_x) ** 2 for i in range(n))
    return sum((i - mean_x) * (y - mean_y) for i, y in enumerate(logs)) / var


def _rising_share(values: list[float]) -> float:
    ratios = [b / a for a, b in zip(values, values[1:])]
    return sum(r > 1 for r in ratios) / len(ratios)


def _sustained_growth(steps: list[StepRecord]) -> str | None:
    """Criterion (b), on the recent trend: over the last steps G keeps rising to new highs and stands >= 10x
    above the run's minimum, and the run is not improving over that window or the weights or updates grow with it.

    The trend is the recent window's, not the whole run's: a run that first falls and then grows is exploding
    once its recent steps say so. The companion condition is what tells growth from warmup, where G rises
    while the loss falls."""
    grads = [s.grad_norm for s in steps]
    if len(grads) < MIN_STEPS or any(g <= 0 for g in grads):
        return None
    low = min(grads)
    # Growth that started at the run's minimum, inside the window, is judged from there: the falling steps
    # before it are not part of the trend.
    start = len(grads) - RECENT_WINDOW
    if len(grads) - grads.index(low) > MIN_STEPS:
        start = max(start, grads.index(low))
    window = steps[max(0, start) :]
    recent = grads[max(0, start) :]
    # Growth reaches new highs: G swinging back up below a level it already had (Adam settling after a
    # warmup's peak) is not growth, however far above the minimum it stands.
    if recent[-1] < GROWTH_FACTOR * low or recent[-1] < max(grads[: max(0, start)], default=0.0):
        return None
    slope = _log_slope(recent)
    if slope < MIN_LOG_SLOPE or _rising_share(recent) < MIN_RISING_SHARE:
        return None
    companion = _growth_companion(window)
    if companion is None:
        return None
    return (
        f"G grew {_fmt(recent[-1] / low)}x from its minimum ({_fmt(low)} at step {steps[grads.index(low)].step}) "
        f"to {_fmt(recent[-1])} at step {steps[-1].step}, {_fmt(math.exp(slope))}x per step over the last "
        f"{len(recent)} steps, and is still rising; {companion}"
    )


def _growth_companion(window: list[StepRecord]) -> str | None:
    """Why growing G is trouble over this window: the loss is not falling, or the weights or updates grow with
    G. None: the run is improving with G rising and nothing else growing, as in a learning-rate warmup."""
    losses = [s.loss for s in window if is_finite(s.loss)]
    if len(losses) < MIN_STEPS:
        return "no loss was recorded to show the run improving"
    half = len(losses) // 2
    early, late = statistics.median(losses[:half]), statistics.median(losses[-half:])
    if late >= early:
        return f"the loss is not falling ({_fmt(early)} -> {_fmt(late)} over those steps)"
    params = [s.param_norm for s in window if is_finite(s.param_norm) and s.param_norm > 0]
    if len(params) >= 2 and params[-1] >= WEIGHT_GROWTH * params[0]:
        return f"the weights grew {_fmt(params[-1] / params[0])}x with it"
    updates = [s.update_ratio for s in window if is_finite(s.update_ratio) and s.update_ratio > 0]
    # Updates count as growing when they both grew with G and ended large: a warmup's learning rate makes
    # small updates grow too.
    if len(updates) >= 2 and updates[-1] >= GROWTH_FACTOR * updates[0] and updates[-1] >= LARGE_UPDATE:
        return f"the updates grew with it (update/weight U {_fmt(updates[0])} -> {_fmt(updates[-1])})"
    return None


def _clipping_ran_mostly(steps: list[StepRecord]) -> bool:
    return sum(s.clipped for s in steps) * 2 > len(steps)


def _clip_cut(steps: list[StepRecord]) -> str | None:
    cuts = [
        s.grad_norm / s.grad_norm_after
        for s in steps
        if s.clipped and s.grad_norm_after > 0 and s.grad_norm / s.grad_norm_after >= CLIP_CUT
    ]
    if len(cuts) * 2 <= len(steps):
        return None
    threshold = next((s.clip_threshold for s in steps if s.clip_threshold is not None), None)
    at = f" (threshold {_fmt(threshold)})" if threshold is not None else ""
    return (
        f"clipping{at} cut G by at least {_fmt(CLIP_CUT)}x on {len(cuts)} of {len(steps)} steps "
        f"(median cut {_fmt(statistics.median(cuts))}x): clipping is what holds this training together"
    )


def _layer_of(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def _vanishing(steps: list[StepRecord]) -> str | None:
    """The first layer's gradients are negligible beside the last layer's (or all are tiny) on most steps."""
    hits = 0
    worst: tuple[float, str, str] | None = None
    for s in steps:
        layers: dict[str, float] = {}
        for name, norm in s.grad_norms.items():
            if is_finite(norm):
                layer = _layer_of(name)
                layers[layer] = max(layers.get(layer, 0.0), norm)
        if not layers:
            continue
        names = list(layers)
        first, last = layers[names[0]], layers[names[-1]]
        if all(v < VANISHING_FLOOR for v in layers.values()):
            hits += 1
            continue
        if len(names) >= 2 and last > 0 and first < VANISHING_RATIO * last:
            hits += 1
            ratio = first / last
            if worst is None or ratio < worst[0]:
                worst = (ratio, names[0], names[-1])
    if hits * 2 <= len(steps):
        return None
    if worst is None:
        return f"all gradient norms stayed below {VANISHING_FLOOR:g} on {hits} of {len(steps)} steps"
    ratio, first_name, last_name = worst
    return (
        f"the first layer's gradients ({first_name}) were below {VANISHING_RATIO:g} of the last layer's "
        f"({last_name}) on {hits} of {len(steps)} steps (down to {ratio:.1e})"
    )


def summarize_layers(steps: list[StepRecord]) -> list[LayerSummary]:
    """Per-parameter first/last/max gradient norm, sorted by growth (largest first)."""
    series: dict[str, list[float]] = {}
    for s in steps:
        for name, norm in s.grad_norms.items():
            series.setdefault(name, [])
            if is_finite(norm):
                series[name].append(norm)
    summaries = []
    for name, values in series.items():
        if not values:
            summaries.append(LayerSummary(name, None, None, None, None))
            continue
        start = max(values[:MIN_STEPS])
        growth = values[-1] / start if start > 0 else None
        summaries.append(LayerSummary(name, values[0], values[-1], max(values), growth))
    return sorted(summaries, key=lambda s: -(s.growth if s.growth is not None else -math.inf))


def _secondary_findings(
    steps: list[StepRecord], recurrent: list[RecurrentRecord], verdict: str
) -> list[ProbeFinding]:
    findings = _scaler_findings(steps) + _recurrent_findings(recurrent)
    series = _series(steps)
    for label, part in series:
        prefix = f"{_series_label(label)}: " if len(series) > 1 else ""
        findings.extend(ProbeFinding(f.id, prefix + f.message) for f in _series_findings(part))
    if verdict != "clipped":
        findings.extend(_clipping_note(steps))
    return findings


def _scaler_findings(steps: list[StepRecord]) -> list[ProbeFinding]:
    """Loss scaling at work: steps a GradScaler skipped (a note), and clipping before unscale_ (GL103)."""
    findings = []
    skipped = [scale for s in steps for scale in s.skipped_scales]
    if skipped:
        last = next((s.loss_scale for s in reversed(steps) if s.skipped_scales and s.loss_scale is not None), None)
        after = f" -> {last:g}" if last is not None else ""
        findings.append(
            ProbeFinding(
                "scaler-skipped",
                f"scaler skipped {len(skipped)} step{'s' if len(skipped) != 1 else ''}, scale {skipped[0]:g}{after}: "
                "its scaled gradients overflowed and it did not call the optimizer, which is normal loss scaling; "
                f"the verdict is judged on the {len(steps)} steps taken",
            )
        )
    scaled = [s for s in steps if s.clip_scaled]
    if scaled:
        findings.append(
            ProbeFinding(
                "clip-scaled-gradients",
                f"clipping ran on gradients still multiplied by the GradScaler's loss scale on {len(scaled)} of "
                f"{len(steps)} steps (no scaler.unscale_(optimizer) before it): its threshold was compared with "
                "scaled norms, so it did not bound the real gradients (GL103)",
            )
        )
    return findings


def _clipping_note(steps: list[StepRecord]) -> list[ProbeFinding]:
    """Clipping that ran without holding training together (it trimmed G a little, or rarely): worth a note."""
    cuts = [s.grad_norm / s.grad_norm_after for s in steps if s.clipped and s.grad_norm_after > 0]
    if not cuts:
        return []
    threshold = next((s.clip_threshold for s in steps if s.clip_threshold is not None), None)
    at = f" (threshold {_fmt(threshold)})" if threshold is not None else ""
    return [
        ProbeFinding(
            "clipping-ran",
            f"clipping{at} ran on {len(cuts)} of {len(steps)} steps and cut G by at most {_fmt(max(cuts))}x "
            f"(median {_fmt(statistics.median(cuts))}x): it trims the gradients, it is not what holds this "
            "training together",
        )
    ]


def _series_findings(steps: list[StepRecord]) -> list[ProbeFinding]:
    """Findings within one optimizer's steps."""
    findings: list[ProbeFinding] = []
    cleared = [s.grads_cleared for s in steps[1:] if s.grads_cleared is not None]
    if len(steps) >= MIN_STEPS and cleared and not any(cleared):
        grads = [s.grad_norm for s in steps if is_finite(s.grad_norm)]
        findings.append(
            ProbeFinding(
                "gradients-not-cleared",
                f"the same .grad tensors were never cleared over {len(steps)} steps (no zero_grad): "
                f"they accumulate, G went from {_fmt(grads[0])} to {_fmt(grads[-1])}"
                if grads
                else f"the same .grad tensors were never cleared over {len(steps)} steps (no zero_grad)",
            )
        )
    updates = [s.update_ratio for s in steps if is_finite(s.update_ratio)]
    if updates and statistics.median(updates) > LARGE_UPDATE:
        findings.append(
            ProbeFinding(
                "large-update-ratio",
                f"median update/weight ratio {_fmt(statistics.median(updates))} (max {_fmt(max(updates))}) "
                f"is above {LARGE_UPDATE:g}: each step rewrites a large part of the weights",
            )
        )
    params = [s.param_norm for s in steps if is_finite(s.param_norm) and s.param_norm > 0]
    if len(params) >= MIN_STEPS and params[-1] >= WEIGHT_GROWTH * params[0]:
        findings.append(
            ProbeFinding(
                "weights-growing",
                f"the parameter norm grew {_fmt(params[-1] / params[0])}x (from {_fmt(params[0])} "
                f"to {_fmt(params[-1])})",
            )
        )
    losses = [s.loss for s in steps if is_finite(s.loss)]
    if len(losses) >= MIN_STEPS and min(losses) > 0:
        start = statistics.median(losses[:MIN_STEPS])
        if losses[-1] >= LOSS_GROWTH * start:
            findings.append(
                ProbeFinding(
                    "loss-diverging",
                    f"the loss grew {_fmt(losses[-1] / start)}x (from {_fmt(start)} to {_fmt(losses[-1])})",
                )
            )
    findings.extend(_recovered_spikes(steps))
    return findings


def _recurrent_findings(recurrent: list[RecurrentRecord]) -> list[ProbeFinding]:
    findings = []
    # The condition as the script set it up ("start") is the cause; the value after training is the effect,
    # reported only when the weights were fine at the start and grew past it.
    by_name: dict[str, dict[str, RecurrentRecord]] = {}
    for r in recurrent:
        by_name.setdefault(r.name, {})[r.when] = r
    for name, records in by_name.items():
        r = next((records[w] for w in ("start", "end") if w in records and records[w].radius > 1), None)
        # The classical condition (Pascanu et al., 2013) is about plain recurrences. In an LSTM or GRU the
        # gates multiply this path by factors below 1 and the cell state adds a linear path, so a radius
        # above 1 there is common in healthy models: it is recorded, not reported.
        if r is None or r.gated:
            continue
        when = "at the first step" if r.when == "start" else "after training"
        findings.append(
            ProbeFinding(
                "recurrent-spectral-radius",
                f"{name} {when}: largest singular value {_fmt(r.sigma)} x activation derivative bound "
                f"{_fmt(r.derivative_bound)} = {_fmt(r.radius)} > 1, so gradients through time can grow "
                "geometrically",
            )
        )
    return findings


def _recovered_spikes(steps: list[StepRecord]) -> list[ProbeFinding]:
    """One-step jumps of G that came back down: normal in healthy training, worth a note, never a verdict."""
    notes = []
    grads = [s.grad_norm for s in steps]
    for i in range(1, len(grads) - 1):
        window = [g for g in grads[max(0, i - 3) : i] if is_finite(g) and g > 0]
        if not window or not is_finite(grads[i]):
            continue
        level = statistics.median(window)
        if grads[i] < SPIKE_FACTOR * level:
            continue
        later = next(
            (j for j in range(i + 1, len(grads)) if is_finite(grads[j]) and grads[j] <= SPIKE_RECOVERED * level),
            None,
        )
        if later is not None:
            notes.append(
                ProbeFinding(
                    "spike-recovered",
                    f"G jumped {_fmt(grads[i] / level)}x at step {steps[i].step} and recovered by step "
                    f"{steps[later].step}",
                )
            )
    return notes


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.2e}"
    return f"{value:.3g}"
