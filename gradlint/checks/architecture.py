"""Architecture rules: deep plain MLPs (GL301), vanilla RNNs (GL302), oversized initialisation (GL303)."""
from __future__ import annotations

from typing import Iterator

from gradlint.checks.context import CheckContext
from gradlint.checks.registry import register
from gradlint.facts.architecture import Stack
from gradlint.facts.loops import trained_models
from gradlint.facts.models import PLAIN_RNN, Layer, Model
from gradlint.facts.names import qualified_name
from gradlint.findings import Finding, Severity


def depth_note(ctx: CheckContext, stack: Stack) -> str:
    """`, 10 from --depth default at line 5`: where a repeat count of the stack came from."""
    count = stack.linear()
    if not count.origins:
        return ""
    v = count.origins[0]
    if isinstance(v.value, (tuple, list, str)):
        where = f" at {ctx.where(v.node, stack.facts)}" if v.node is not None else ""
        return f" (through a loop over {v.origin}{where})"
    if v.node is None:
        return f" ({v.value} repeats from {v.origin})"
    return f" ({v.value} repeats from {v.origin} at {ctx.where(v.node, stack.facts)})"


@register(
    "GL301",
    "deep-plain-mlp",
    Severity.WARNING,
    "A deep stack of fully connected layers is built with no normalization and no residual connection.",
    options=("max-plain-depth",),
)
def deep_plain_mlp(ctx: CheckContext) -> Iterator[Finding]:
    threshold = ctx.option("max-plain-depth")
    for stack in ctx.facts.architecture.plain_deep_stacks(threshold):
        if stack.facts is not ctx.facts:
            continue
        count = stack.linear().n
        if _keras_stack(stack):
            norm = "`keras.layers.LayerNormalization()` or `BatchNormalization()`"
            residual = "`keras.layers.Add()([x, f(x)])`"
        else:
            norm = "`nn.LayerNorm` or `nn.BatchNorm1d`"
            residual = "`x = x + f(x)`"
        yield ctx.finding(
            "GL301",
            stack.node,
            f"{stack.label} stacks {count} fully connected layers{depth_note(ctx, stack)} with no norm or residual",
            f"add {norm} between layers, or residual connections ({residual}), or use fewer layers "
            f"(at most max-plain-depth = {threshold})",
        )


def _keras_stack(stack: Stack) -> bool:
    """Whether the stack's layers are Keras (or TensorFlow) layers, whose fix is said in Keras words."""
    call, facts = stack.first_linear, stack.facts
    if call is None or facts is None:
        return False
    qual = qualified_name(call.func, facts.scope_of_call(call)) or ""
    return qual.startswith(("keras.", "tf."))


# -- GL302 -----------------------------------------------------------------------------------------


def trained(ctx: CheckContext) -> Iterator[tuple[Model, object]]:
    """Every trained model with the node its training is reported at: a torch step, compile, Trainer."""
    facts = ctx.facts
    for path in facts.loops.paths():
        for model in trained_models(facts.loops, path):
            yield model, path.updates[0].node
    for compile_ in facts.frameworks.keras_compiles():
        if compile_.model is not None:
            yield compile_.model, compile_.site.node
    for fit in facts.frameworks.lightning_fits():
        if fit.model is not None:
            yield fit.model, fit.trainer_call
    for training in facts.frameworks.hf_trainings():
        if training.model is not None:
            yield training.model, training.trainer_call


@register(
    "GL302",
    "vanilla-rnn",
    Severity.INFO,
    "A plain (ungated) RNN is trained; LSTM/GRU gates keep gradients in range far better.",
)
def vanilla_rnn(ctx: CheckContext) -> Iterator[Finding]:
    seen: set[int] = set()
    for model, update in trained(ctx):
        for layer in model.layers:
            if layer.qualname not in PLAIN_RNN or id(layer.call) in seen:
                continue
            seen.add(id(layer.call))
            yield _vanilla_finding(ctx, layer, model, update)


def _vanilla_finding(ctx: CheckContext, layer: Layer, model: Model, update) -> Finding:
    gated = "LSTM" if layer.short in ("RNN", "SimpleRNN") else "LSTMCell"
    if layer.qualname.startswith("keras."):
        gated = "keras.layers." + ("LSTM" if layer.short == "SimpleRNN" else "LSTMCell")
    elif layer.qualname.startswith("tf."):
        gated = "tf.nn.rnn_cell.LSTMCell"
    else:
        gated = "nn." + gated
    where = ""
    node = layer.call
    if layer.facts is not ctx.facts:
        # Built in a sibling file: report where this file trains it.
        where = f" (built at {ctx.where(layer.call, layer.facts)})"
        node = update
    return ctx.finding(
        "GL302",
        node,
        f"plain {layer.short}{where} in {model.label} is trained (at {ctx.where(update)}): its gradient through "
        f"time explodes or vanishes",
        f"use a gated {gated} or {gated.replace('LSTM', 'GRU')}, which keep the gradient in range",
    )


# -- GL303 -----------------------------------------------------------------------------------------


@register(
    "GL303",
    "oversized-init",
    Severity.WARNING,
    "Weights of a multi-layer network are drawn with a scale (std or bound >= 1) that grows signals layer by layer.",
)
def oversized_init(ctx: CheckContext) -> Iterator[Finding]:
    for init, total in ctx.facts.inits.oversized(3):
        scale = init.scale
        if init.form == "torch.randn":
            drawn = "is drawn from an unscaled torch.randn (std 1)"
            fix = "scale it, e.g. `torch.randn(fan_in, fan_out) / math.sqrt(fan_in)`"
        else:
            measure = "std" if "normal" in init.form else "bound"
            if scale.origin.startswith("the default"):
                origin = f" ({scale.origin})"
            elif scale.origin == "literal" or scale.node is None:
                origin = ""
            else:
                origin = f" from {scale.origin} at {ctx.where(scale.node)}"
            drawn = f"is drawn by {init.form} at {measure} {abs(scale.value):g}{origin}"
            fix = "use `nn.init.kaiming_normal_` / `xavier_uniform_`, or a std of about 1/sqrt(fan_in)"
        yield ctx.finding(
            "GL303",
            init.call,
            f"`{init.target}` {drawn} in {init.covers}" if init.covers
            else f"`{init.target}` {drawn}: {total} weight tensors of this network at that scale",
            fix,
        )
