"""Regularization rules: a model at risk trained with no weight penalty (GL201)."""
from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradlint.checks.context import CheckContext
from gradlint.checks.registry import register
from gradlint.facts.loops import MANUAL_STEP, STEP, TrainingPath, trained_models
from gradlint.facts.models import Model
from gradlint.facts.optimizers import Optimizer
from gradlint.facts.values import _keyword
from gradlint.findings import Finding, Severity

FIX = "pass `weight_decay=1e-4` to the optimizer (or use AdamW), or add an L2 term over the parameters to the loss"
KERAS_FIX = (
    "add `kernel_regularizer=keras.regularizers.l2(1e-4)` to its layers (and `recurrent_regularizer` to the "
    "recurrent ones), or use `keras.optimizers.AdamW`"
)
TF1_FIX = "add an L2 term to the loss (`loss += 1e-4 * tf.add_n([tf.nn.l2_loss(v) for v in tf.trainable_variables()])`)"
LIGHTNING_FIX = (
    "pass `weight_decay=1e-4` to the optimizer configure_optimizers() returns (or use `torch.optim.AdamW`), "
    "or add an L2 term to the loss in training_step()"
)


def at_risk(ctx: CheckContext, models: list[Model]) -> tuple[Model, str] | None:
    """The first model at risk, with why: a recurrent layer, or a deep plain MLP (GL301)."""
    threshold = ctx.option("max-plain-depth")
    for model in models:
        recurrent = model.recurrent_layers
        if recurrent:
            layer = recurrent[0]
            return model, f"its {layer.short} at {ctx.where(layer.call, layer.facts)}"
        stack = ctx.facts.architecture.stack_of_model(model)
        deep = stack.deepest_plain(threshold) if stack is not None else None
        if deep is not None:
            return model, f"its {deep.linear().n} plain fully connected layers"
    if ctx.option("regularization-scope") == "all" and models:
        return models[0], ""
    return None


def decay_of(optimizer: Optimizer, ctx: CheckContext | None = None) -> tuple[bool | None, str]:
    """Whether the optimizer decays weights (None: unknown), and how its setting reads."""
    v = optimizer.weight_decay
    if v is None:
        return None, ""  # unknown: weight_decay may be one of the positional arguments, or built elsewhere
    if v.value is None:
        note = "no weight_decay"
    elif isinstance(v.value, (int, float)) and not isinstance(v.value, bool):
        if v.value > 0:
            return True, ""
        note = f"weight_decay={v.value:g}"
        if v.node is optimizer.call:
            note += " (its default)"
        elif v.origin != "literal" and v.node is not None and ctx is not None:
            note += f" from {v.origin} at {ctx.where(v.node)}"
    else:
        return None, ""
    if optimizer.keras and _keyword(optimizer.call, "decay") is not None:
        note += " (`decay=` is learning-rate decay)"
    return False, f"{optimizer.name} with {note}"


@register(
    "GL201",
    "no-weight-regularization",
    Severity.WARNING,
    "A model at risk of exploding gradients (recurrent, or a deep plain MLP) is trained with no weight penalty.",
    options=("regularization-scope", "max-plain-depth"),
)
def no_weight_regularization(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    reg = facts.regularization
    reported: set[int] = set()
    for path in facts.loops.paths():
        if path.of(MANUAL_STEP):
            continue
        # A step that never runs with the defaults (`if encoder_optimizer is not None:` where it is None)
        # says nothing about the penalty.
        steps = [e for e in path.of(STEP) if facts.loops.holds(e) is not False]
        optimizers = [facts.optimizers.for_event(e) for e in steps]
        if not optimizers or any(o is None for o in optimizers):
            continue  # an optimizer we cannot read: it may decay
        scopes = reg.reachable([path.root] + [e.site.scope for e in path.events])
        if reg.loss_penalty(scopes) is not None:
            continue
        # Each optimizer is judged on the models it trains: a GAN's discriminator, or a second optimizer
        # of the same model, is a finding of its own.
        by_call = {id(o.call): o for o in optimizers}
        for optimizer in by_call.values():
            if id(optimizer.call) in reported:
                continue
            if len(by_call) == 1:
                models = trained_models(facts.loops, path)
            else:
                others = {id(e) for e, o in zip(steps, optimizers) if o.call is not optimizer.call}
                models = trained_models(facts.loops, TrainingPath(path.root, [e for e in path.events if id(e) not in others]))
            risk = at_risk(ctx, models)
            if risk is None or reg.keras_regularized(risk[0]) is not None:
                continue
            decays, note = decay_of(optimizer, ctx)
            if decays is not False or reg.group_decay(optimizer.call) is not False:
                continue
            reported.add(id(optimizer.call))
            fix = KERAS_FIX if optimizer.keras else TF1_FIX if optimizer.qualname.startswith("tf.") else FIX
            yield _finding(ctx, optimizer.call, risk, note, fix)
    for compile_ in facts.frameworks.keras_compiles():
        risk = at_risk(ctx, [compile_.model] if compile_.model is not None else [])
        if risk is None or reg.keras_regularized(compile_.model) is not None:
            continue
        setting = _keras_setting(ctx, compile_)
        home = facts.loops.home(compile_.site.scope)  # this file, or the one a call of it compiles in
        if setting is None or home.regularization.loss_penalty(home.index.functions + [home.index.scope]) is not None:
            continue
        yield _finding(ctx, compile_.site.node, risk, setting, KERAS_FIX)
    for fit in facts.frameworks.lightning_fits():
        model = fit.model
        risk = at_risk(ctx, [model] if model is not None else [])
        if risk is None or model.info is None:
            continue
        configure = facts.method(model.info, "configure_optimizers")
        if configure is None:
            continue
        chosen = _configured_optimizer(ctx, reg.reachable([configure]))
        if chosen is None:
            continue
        optimizer, note = chosen
        if reg.loss_penalty(reg.reachable(model.info.methods.values())) is not None:
            continue
        if id(optimizer.call) not in reported:
            reported.add(id(optimizer.call))
            home = facts.loops.home(optimizer.scope)
            if home is not facts:
                # The module's file is another: reported at the Trainer here that fits it.
                facts.loops.anchors.setdefault(id(optimizer.call), (fit.trainer_site, home))
            yield _finding(ctx, optimizer.call, risk, note, LIGHTNING_FIX)


def _configured_optimizer(ctx: CheckContext, scopes) -> tuple[Optimizer, str] | None:
    """The optimizer `configure_optimizers` returns when none it may return decays weights, with how its
    setting reads. A branch the defaults never take (`if self.hparams.use_asgd:` with --use_asgd off) is
    left out; of the others, any that decays (or cannot be read) may be the one: None."""
    facts = ctx.facts
    candidates = []
    for scope in scopes:
        home = facts.loops.home(scope)
        cutoff = _returned_early(scope, home)
        for site in scope.calls:
            optimizer = facts.optimizers.from_call(site.node, site)
            if optimizer is None or (cutoff is not None and site.seq > cutoff):
                continue
            taken = True
            for cond in site.ctx.conds:
                truth = home.values.truth(cond.test, scope)
                if truth is None:
                    taken = None
                elif truth != cond.holds:
                    taken = False
                    break
            if taken is not False:
                candidates.append((taken, optimizer))
    if not candidates:
        return None
    found = None
    for taken, optimizer in candidates:
        decays, note = decay_of(optimizer, ctx)
        if decays is not False or facts.regularization.group_decay(optimizer.call) is not False:
            return None
        if found is None or (taken and not found[0]):
            found = (taken, optimizer, note)
    return found[1], found[2]


def _keras_setting(ctx: CheckContext, compile_) -> str | None:
    facts = ctx.facts.loops.home(compile_.site.scope)
    if compile_.optimizer_call is not None:
        optimizer = facts.optimizers.from_call(compile_.optimizer_call)
        if optimizer is None:
            return None
        decays, note = decay_of(optimizer, ctx)
        return note if decays is False else None
    if compile_.optimizer is None:
        return "the default 'rmsprop' optimizer (no weight decay)"
    v = facts.values.value(compile_.optimizer, compile_.site.scope, compile_.site.seq)
    if v is None or not isinstance(v.value, str):
        return None
    if v.value.lower() in ("adamw", "lion", "adafactor"):
        return None  # Keras 3 gives these a default weight decay
    return f"optimizer={v.value!r} (no weight decay)"


def _finding(ctx: CheckContext, node: cst.CSTNode, risk: tuple[Model, str], setting: str, fix: str) -> Finding:
    model, why = risk
    if id(node) in ctx.facts.loops.anchors:
        # Reported at a call here, the message then says where in the other file: kept short, the layer
        # named without its place, and a TF1 optimizer (which has no weight decay at all) by its name.
        why = why.split(" at ", 1)[0]
        if setting.endswith("Optimizer with no weight_decay"):
            setting = setting.split(" ", 1)[0]
    reason = f" ({why})" if why else ""
    return ctx.finding("GL201", node, f"{model.label}{reason} has no weight penalty: {setting}", fix)


def _returned_early(scope, home) -> int | None:
    """The point after which a function's body never runs with the defaults: `if <holds>: ... return ...`
    among its statements (what follows is the other choice). None when there is none."""
    node = scope.node
    if not isinstance(node, cst.FunctionDef) or type(node.body) is not cst.IndentedBlock:
        return None
    for stmt in node.body.body:
        if type(stmt) is not cst.If or stmt.orelse is not None or not stmt.body.body:
            continue
        last = stmt.body.body[-1]
        if not (type(last) is cst.SimpleStatementLine and any(type(s) is cst.Return for s in last.body)):
            continue
        if home.values.truth(stmt.test, scope) is True:
            inside = [s.seq for s in scope.sites if any(c.test is stmt.test for c in s.ctx.conds)]
            if inside:
                return max(inside)
    return None
