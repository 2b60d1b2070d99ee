"""Clipping rules: recurrent nets trained without clipping (GL101)."""
from __future__ import annotations

from typing import Iterator

from gradlint.checks.context import CheckContext
from gradlint.checks.registry import register
from gradlint.facts.frameworks import Clipping
from gradlint.facts.loops import CLIP, TrainingPath, optimizer_params, trained_models
from gradlint.facts.models import Layer, Model
from gradlint.findings import Finding, Severity



def torch_fix(ctx: CheckContext, path: TrainingPath) -> str:
    found = optimizer_params(ctx.facts.loops, path.updates[0], follow_names=False)
    params = ctx.facts.code(found[0]).strip() if found is not None else "model.parameters()"
    if "\n" in params:
        params = "model.parameters()"
    return f"add `torch.nn.utils.clip_grad_norm_({params}, max_norm=1.0)` between backward() and step()"


def describe_layer(ctx: CheckContext, layer: Layer) -> str:
    return f"{layer.short} layer (built at {ctx.where(layer.call, layer.facts)})"


def _recurrent(models: list[Model]) -> tuple[Model, Layer] | None:
    for model in models:
        if model.recurrent_layers:
            return model, model.recurrent_layers[0]
    return None


def path_clipping(ctx: CheckContext, path: TrainingPath) -> tuple[bool, str]:
    """Whether clipping runs on the path with the defaults, and a note on clipping that never runs."""
    skipped = []
    for event in path.of(CLIP):
        holds = ctx.facts.loops.holds(event)
        if holds is not False:
            return True, ""
        skipped.append(event)
    if skipped:
        event = skipped[0]
        cond = next(c for c, scope in event.conds if ctx.facts.values.truth(c.test, scope) != c.holds)
        test = ctx.facts.code(cond.test).strip()
        return False, f"; the clipping at {ctx.where(event.node)} never runs with the defaults (`{test}` is {not cond.holds})"
    return False, ""


@register(
    "GL101",
    "rnn-without-clipping",
    Severity.WARNING,
    "A recurrent network is trained with no gradient clipping on its training path.",
)
def rnn_without_clipping(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    for path in facts.loops.paths():
        found = _recurrent(trained_models(facts.loops, path))
        if found is None:
            continue
        clipped, note = path_clipping(ctx, path)
        if clipped:
            continue
        model, layer = found
        step = path.updates[0]
        yield ctx.finding(
            "GL101",
            step.node,
            f"{describe_layer(ctx, layer)} in {model.label} is trained with no gradient clipping"
            f"{note}: recurrent nets are prone to exploding gradients; {torch_fix(ctx, path)}",
        )
    for compile_ in facts.frameworks.keras_compiles():
        yield from _framework_finding(ctx, compile_.model, compile_.clipping, compile_.site.node, keras=True)
    for fit in facts.frameworks.lightning_fits():
        yield from _framework_finding(ctx, fit.model, fit.clipping, fit.trainer_call, lightning=True)
    for training in facts.frameworks.hf_trainings():
        yield from _framework_finding(ctx, training.model, training.clipping, training.trainer_call)


def _framework_finding(ctx, model, clipping: Clipping, node, *, keras=False, lightning=False):
    if model is None or clipping.clips is not False:
        return
    found = _recurrent([model])
    if found is None:
        return
    model, layer = found
    # Lightning modules that clip by hand in their hooks are clipped all the same.
    if lightning and model.info is not None:
        for scope in model.info.methods.values():
            if any(e.kind == CLIP for e in ctx.facts.loops.events(scope)):
                return
    if keras:
        if clipping.setting.startswith("optimizer=") or clipping.setting.startswith("no optimizer"):
            fix = (
                "a string optimizer cannot clip: pass an optimizer object, e.g. "
                "`keras.optimizers.Adam(clipnorm=1.0)`"
            )
        else:
            fix = "add `clipnorm=1.0` to the optimizer"
    elif lightning:
        fix = "pass `gradient_clip_val=1.0` to the Trainer"
    else:
        fix = "set `max_grad_norm=1.0` in TrainingArguments"
    yield ctx.finding(
        "GL101",
        node,
        f"{describe_layer(ctx, layer)} in {model.label} is trained with no gradient clipping "
        f"({clipping.setting}): recurrent nets are prone to exploding gradients; {fix}",
    )
