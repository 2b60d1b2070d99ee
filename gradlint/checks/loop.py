"""Training-loop rules: gradients never cleared (GL402), untruncated BPTT (GL403), sum-reduced losses
(GL404), high learning rates (GL405)."""
from __future__ import annotations

import re
from typing import Iterator

import libcst as cst

from gradlint.checks.clipping import at, call_text, loop_home, offered, path_clipping, via
from gradlint.checks.context import CheckContext
from gradlint.checks.registry import register
from gradlint.facts.index import Scope, dotted
from gradlint.facts.loops import BACKWARD, CLIP, MANUAL_STEP, STEP, ZERO_GRAD, Event, TrainingPath
from gradlint.facts.names import lookup, qualified_name
from gradlint.facts.optimizers import Optimizer
from gradlint.facts.recurrence import carried_states
from gradlint.facts.values import Value, _arg, _keyword
from gradlint.findings import Finding, Severity
from gradlint.fix.builders import NoFix, zero_grad_at_loop_top


def torch_backward(event: Event) -> bool:
    """A `backward()` that adds into `.grad` (not a GradientTape's `gradient`, which returns fresh tensors)."""
    call = event.call
    return event.kind == BACKWARD and not (
        call is not None and type(call.func) is cst.Attribute and call.func.attr.value == "gradient"
    )


def torch_update(event: Event) -> bool:
    """An update that reads `.grad` (not Keras's `apply_gradients`)."""
    call = event.call
    if event.kind == MANUAL_STEP:
        return True
    return event.kind == STEP and not (
        call is not None and type(call.func) is cst.Attribute and call.func.attr.value == "apply_gradients"
    )


def _value_text(ctx: CheckContext, v: Value) -> str:
    if v.origin == "literal" or v.node is None:
        return f"{v.value:g}" if isinstance(v.value, float) else str(v.value)
    shown = f"{v.value:g}" if isinstance(v.value, float) else str(v.value)
    return f"{shown} from {v.origin} at {ctx.where(v.node)}"


# -- GL402 ----------------------------------------------------------------------------------

# Calls we cannot follow whose name says they clear gradients: `trainer.reset_grad()`, `clear_grads(model)`.
_CLEARS = re.compile(r"(zero|clear|reset)_?grad", re.IGNORECASE)


@register(
    "GL402",
    "gradients-not-cleared",
    Severity.ERROR,
    "A training loop calls backward() and applies updates but never clears the gradients.",
    fixable=True,
)
def gradients_not_cleared(ctx: CheckContext) -> Iterator[Finding]:
    loops = ctx.facts.loops
    reported: set[int] = set()
    for path in loops.paths():
        for update in path.updates:
            if not torch_update(update):
                continue
            loop = path.training_loop(update)
            if loop is None or id(loop) in reported:
                continue
            inside = path.inside(loop)
            backwards = [e for e in inside if torch_backward(e)]
            if not backwards or any(e.kind == ZERO_GRAD for e in inside):
                continue
            if _clears_by_name(ctx, path, loop):
                continue
            reported.add(id(loop))
            home = loop_home(path, loop)
            outside = [e for e in path.of(ZERO_GRAD) if set(e.loops) < set(update.loops) and loop not in e.loops]
            note = (
                f"; the only clearing, {call_text(ctx, outside[0])} at {at(ctx, outside[0], home)}, runs outside the loop"
                if outside else ""
            )
            store = loops.gradient_store(backwards[0])
            if store == "`.grad`":
                advice = f"call {_zero_grad_text(ctx, update)} once per iteration (before backward() or after step()){note}"
                built = zero_grad_at_loop_top(ctx.facts, loop, [e for e in inside if torch_update(e)])
            else:
                advice = f"open a new `dist_autograd.context()` in each iteration{note}"
                built = NoFix("the context has to be moved into the loop by hand")
            help, fix = offered(advice, built)
            message = (
                f"{call_text(ctx, update)}{via(ctx, update, home)} applies gradients the training loop at "
                f"{ctx.where(loop)} never clears from {store}"
            )
            yield ctx.finding("GL402", update.node, message, help, fix=fix)


def _zero_grad_text(ctx: CheckContext, update: Event) -> str:
    """`g_opt.zero_grad()` for `g_opt.step()`; for a manual update, the ways to clear a tensor's gradient."""
    call = update.call
    if update.kind == STEP and call is not None and type(call.func) is cst.Attribute:
        return f"`{ctx.facts.code(call.func.value).strip()}.zero_grad()`"
    return "`model.zero_grad()` (or set each parameter's `.grad = None`)"


def _clears_by_name(ctx: CheckContext, path: TrainingPath, loop) -> bool:
    """A call in the loop we cannot follow whose name says it clears gradients."""
    scopes = {id(path.root): path.root}
    for event in path.events:
        for site in event.via:
            scopes[id(site.scope)] = site.scope
        scopes[id(event.site.scope)] = event.site.scope
    for scope in scopes.values():
        for site in scope.calls:
            if loop in site.ctx.loops:
                name = dotted(site.node.func) or ""
                if _CLEARS.search(name.rsplit(".", 1)[-1]):
                    return True
    return False


# -- GL403 ----------------------------------------------------------------------------------

_INIT_STATE = re.compile(r"init_?hidden|init_?state|begin_state|zero_state|initial_state|init_?hid|reset_?hidden", re.I)


@register(
    "GL403",
    "untruncated-bptt",
    Severity.WARNING,
    "A recurrent hidden state is carried across iterations without .detach(): backpropagation runs "
    "through the whole history.",
)
def untruncated_bptt(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    carried = [c for c in carried_states(facts) if c.cut is None and not c.site.ctx.no_grad]
    if not carried:
        return
    paths = facts.loops.paths()
    seen: set[int] = set()
    for state in carried:
        if id(state.site.node) in seen:
            continue
        backwards = [e for p in paths for e in p.events if torch_backward(e) and state.loop in e.loops]
        if not backwards:
            continue
        evidence = _recurrent_evidence(ctx, state)
        if evidence is None:
            continue
        seen.add(id(state.site.node))
        retain = next((e for e in backwards if _retains_graph(ctx, e)), None)
        symptom = (
            f"; `retain_graph=True` in {call_text(ctx, retain)} at {at(ctx, retain, state.site.scope)} only hides the symptom"
            if retain is not None else ""
        )
        name = state.name
        yield ctx.finding(
            "GL403",
            state.call,
            f"`{name}` from {call_text(ctx, _Shown(state.call))} ({evidence}) is fed back in the loop at "
            f"{ctx.where(state.loop)} without .detach()",
            f"detach it once per iteration, so that backward() stops there (`{name} = {name}.detach()`, or "
            f"`repackage_hidden({name})` for an LSTM's (h, c)){symptom}",
        )


class _Shown:
    """A stand-in event so call_text can name a call."""

    def __init__(self, call: cst.Call) -> None:
        self.call = call
        self.node = call


def _recurrent_evidence(ctx: CheckContext, state) -> str | None:
    """Why the carried value is a recurrent state: the model has recurrent layers, or it starts as one."""
    facts = ctx.facts
    model = facts.models.model_of(state.call.func, state.site.scope, state.site.seq)
    if model is not None and model.recurrent_layers:
        layer = model.recurrent_layers[0]
        return f"{layer.short} layer built at {ctx.where(layer.call, layer.facts)}"
    initial = state.initial.value
    if state.initial.kind == "assign" and type(initial) is cst.Call:
        name = dotted(initial.func) or ""
        if _INIT_STATE.search(name.rsplit(".", 1)[-1]):
            return f"started by `{facts.code(initial.func).strip()}()` at {ctx.where(state.initial.node)}"
    return None


def _retains_graph(ctx: CheckContext, event: Event) -> bool:
    call = event.call
    if call is None:
        return False
    node = _keyword(call, "retain_graph")
    if node is None:
        return False
    v = ctx.facts.values.value(node, event.site.scope, event.site.seq)
    return v is not None and bool(v.value) is True


# -- GL404 ----------------------------------------------------------------------------------

_SHAPE_METHODS = frozenset({"sum", "mean", "squeeze", "float", "to", "cuda", "double", "view", "reshape"})


@register(
    "GL404",
    "sum-reduced-loss",
    Severity.WARNING,
    "A sum-reduced loss drives a non-adaptive optimizer: the step grows with the batch size.",
)
def sum_reduced_loss(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    summed = _sum_losses(ctx)
    if not summed:
        return
    seen: set[int] = set()
    for path in facts.loops.paths():
        driver = _plain_driver(ctx, path)
        if driver is None:
            continue
        for backward in path.of(BACKWARD):
            if not torch_backward(backward):
                continue
            tensor = _backward_tensor(ctx, backward)
            if tensor is None:
                continue
            for loss in _trace(ctx, tensor, backward.site.scope, backward.site.seq, summed, 0):
                if id(loss) in seen:
                    continue
                seen.add(id(loss))
                how = summed[id(loss)]
                yield ctx.finding(
                    "GL404",
                    loss,
                    f"{how} feeds {call_text(ctx, backward)} at {at(ctx, backward)} and "
                    f"drives {driver}",
                    'use reduction="mean", or divide the loss by the batch (or token) count before backward()',
                )


def _sum_losses(ctx: CheckContext) -> dict[int, str]:
    """Loss constructors and functional losses of the file that sum over the batch: id(call) -> description."""
    found = {}
    values = ctx.facts.values
    for site in ctx.facts.index.all_sites:
        call = site.node
        if type(call) is not cst.Call:
            continue
        qual = qualified_name(call.func, site.scope, site.seq) or ""
        short = qual.rsplit(".", 1)[-1]
        if not ((qual.startswith("torch.nn.") and short.endswith("Loss")) or qual.startswith("torch.nn.functional.")):
            continue
        reduction = _keyword(call, "reduction")
        if reduction is not None:
            v = values.value(reduction, site.scope, site.seq)
            if v is not None and v.value == "sum":
                found[id(call)] = f"`{short}(reduction={ctx.facts.code(reduction).strip()})`"
            continue
        size_average = _keyword(call, "size_average")
        reduce = _keyword(call, "reduce")
        if size_average is not None and reduce is None:
            v = values.value(size_average, site.scope, site.seq)
            if v is not None and v.value is False:
                found[id(call)] = f"`{short}(size_average=False)`"
    return found


def _plain_driver(ctx: CheckContext, path: TrainingPath) -> str | None:
    """'torch.optim.SGD (built at line 9)' when every update of the path is non-adaptive; else None."""
    described = None
    for update in path.updates:
        if not torch_update(update):
            return None
        if update.kind == MANUAL_STEP:
            described = described or f"the manual update at {at(ctx, update)}"
            continue
        optimizer = ctx.facts.optimizers.for_event(update)
        if optimizer is None or optimizer.family != "plain":
            return None
        described = f"{optimizer.name} (built at {ctx.where(optimizer.call)}, not adaptive)"
    return described


def _backward_tensor(ctx: CheckContext, event: Event) -> cst.BaseExpression | None:
    call = event.call
    if call is None:
        return None
    func = call.func
    if type(func) is not cst.Attribute:
        first = _arg(call, 0, "tensors")
        return first
    receiver = func.value
    owner = (dotted(receiver) or "").rsplit(".", 1)[-1].lower()
    if ("accelerator" in owner or "fabric" in owner) and call.args:
        return call.args[0].value
    if type(receiver) is cst.Call and type(receiver.func) is cst.Attribute and receiver.func.attr.value == "scale":
        if receiver.args and ctx.facts.loops.object_kind(receiver.func.value, event.site.scope, event.site.seq) == "scaler":
            return receiver.args[0].value
    return receiver


def _trace(ctx: CheckContext, expr, scope: Scope, before: int | None, summed: dict, depth: int) -> list:
    """The sum-reduced loss calls whose value reaches `expr` without a division (unsure: none)."""
    if depth > 10 or expr is None:
        return []
    t = type(expr)
    if t is cst.BinaryOperation:
        op = type(expr.operator)
        if op in (cst.Add, cst.Subtract):
            return _trace(ctx, expr.left, scope, before, summed, depth + 1) + _trace(
                ctx, expr.right, scope, before, summed, depth + 1
            )
        if op is cst.Multiply:
            for tensor, factor in ((expr.left, expr.right), (expr.right, expr.left)):
                v = ctx.facts.values.value(factor, scope, before)
                if v is not None and isinstance(v.value, (int, float)) and v.value >= 1:
                    return _trace(ctx, tensor, scope, before, summed, depth + 1)
        return []  # divided, or scaled by something we cannot read
    if t is cst.UnaryOperation:
        return _trace(ctx, expr.expression, scope, before, summed, depth + 1)
    if t is cst.Name:
        binding = lookup(expr.value, scope, before)
        if binding is None:
            return []
        if binding.kind == "assign" and binding.value is not None:
            return _trace(ctx, binding.value, binding.scope, binding.seq, summed, depth + 1)
        if binding.kind == "aug" and type(binding.node) is cst.AugAssign:
            op = type(binding.node.operator)
            if op in (cst.AddAssign, cst.SubtractAssign):
                return _trace(ctx, binding.value, binding.scope, binding.seq, summed, depth + 1) + _trace(
                    ctx, expr, binding.scope, binding.seq, summed, depth + 1
                )
        return []
    if t is cst.Call:
        if id(expr) in summed:
            return [expr]
        func = expr.func
        if type(func) is cst.Attribute and func.attr.value in _SHAPE_METHODS and not expr.args or (
            type(func) is cst.Attribute and func.attr.value in ("to", "view", "reshape")
        ):
            return _trace(ctx, func.value, scope, before, summed, depth + 1)
        made = ctx.facts.loops.constructor(func, scope, before)
        if made is not None and id(made) in summed:
            return [made]
        site = ctx.facts.site_of(expr)
        if site is not None:
            target = ctx.facts.loops.callee(site)
            if target is not None and target.cls is None:
                found = []
                for returned in target.returns:
                    found += _trace(ctx, returned, target, None, summed, depth + 1)
                return found
    return []


# -- GL405 ----------------------------------------------------------------------------------

# Schedulers that set the learning rate themselves (OneCycleLR, CyclicLR), or multiply it by a factor the
# file computes at run time (LambdaLR, MultiplicativeLR: the Noam schedule builds Adam with lr=1.0 and a
# lambda that returns ~1e-3): with them the optimizer's lr is not the step size.
_OWN_LR_SCHEDULERS = ("OneCycleLR", "CyclicLR", "LambdaLR", "MultiplicativeLR")


@register(
    "GL405",
    "high-learning-rate",
    Severity.WARNING,
    "The learning rate is high for its optimizer and no gradient clipping bounds the step.",
    options=("max-sgd-lr", "max-adaptive-lr"),
)
def high_learning_rate(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    verdicts: dict[int, tuple[Optimizer, bool]] = {}
    manual: dict[int, tuple[Event, Value]] = {}
    for path in facts.loops.paths():
        clipped, _ = path_clipping(ctx, path)
        for update in path.updates:
            if update.kind == MANUAL_STEP:
                lr = _manual_lr(ctx, update)
                if lr is not None and not clipped:
                    manual.setdefault(id(update.node), (update, lr))
                continue
            optimizer = facts.optimizers.for_event(update)
            if optimizer is None:
                continue
            guarded = clipped or (optimizer.keras and _keras_clips(ctx, optimizer))
            old = verdicts.get(id(optimizer.call))
            verdicts[id(optimizer.call)] = (optimizer, guarded or (old is not None and old[1]))
    for compile_ in facts.frameworks.keras_compiles():
        if compile_.optimizer_call is None or compile_.clipping.clips is not False:
            continue
        optimizer = facts.optimizers.from_call(compile_.optimizer_call)
        if optimizer is not None and id(optimizer.call) not in verdicts:
            verdicts[id(optimizer.call)] = (optimizer, False)
    lightning = set()
    for optimizer in _lightning_optimizers(ctx):
        verdicts.setdefault(id(optimizer.call), (optimizer, False))
        lightning.add(id(optimizer.call))
    for optimizer, guarded in verdicts.values():
        if guarded:
            continue
        finding = _optimizer_finding(ctx, optimizer, lightning=id(optimizer.call) in lightning)
        if finding is not None:
            yield finding
    limit = float(ctx.option("max-sgd-lr"))
    for update, lr in manual.values():
        if lr.value >= limit:
            yield ctx.finding(
                "GL405",
                update.node,
                f"this manual update uses learning rate {_value_text(ctx, lr)}, at least "
                f"max-sgd-lr ({limit:g}), with no clipping",
                "lower the learning rate, or clip the gradients before the update "
                "(`torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)`)",
            )


def _lightning_optimizers(ctx: CheckContext) -> Iterator[Optimizer]:
    """Optimizers a LightningModule of this file builds in `configure_optimizers`, fitted by a Trainer
    that does not clip (`gradient_clip_val` unset or 0), in a module that does not clip by hand."""
    facts = ctx.facts
    for fit in facts.frameworks.lightning_fits():
        info = fit.model.info if fit.model is not None else None
        if fit.clipping.clips is not False or info is None or facts.index.classes.get(info.name) is not info:
            continue
        if any(e.kind == CLIP for scope in info.methods.values() for e in facts.loops.events(scope)):
            continue
        method = facts.method(info, "configure_optimizers")
        if method is None:
            continue
        for site in method.calls:
            optimizer = facts.optimizers.from_call(site.node, site)
            if optimizer is not None:
                yield optimizer


def _optimizer_finding(ctx: CheckContext, optimizer: Optimizer, *, lightning: bool = False) -> Finding | None:
    lr = optimizer.lr
    if lr is None or not isinstance(lr.value, (int, float)) or isinstance(lr.value, bool):
        return None
    if optimizer.family == "plain":
        key = "max-sgd-lr"
    elif optimizer.family == "adaptive" and optimizer.name != "Adadelta":
        key = "max-adaptive-lr"  # Adadelta's lr (default 1.0) only scales an already-normalised step
    else:
        return None
    limit = float(ctx.option(key))
    if lr.value < limit or _lr_set_by_scheduler(ctx, optimizer):
        return None
    if optimizer.keras:
        fix = "add `clipnorm=1.0` to the optimizer"
    elif optimizer.qualname.startswith("tf."):
        fix = "clip the gradients between compute_gradients() and apply_gradients() (`tf.clip_by_global_norm(grads, 1.0)`)"
    elif lightning:
        fix = "clip in the Trainer: `Trainer(gradient_clip_val=1.0)`"
    else:
        fix = "clip between backward() and step() (`torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)`)"
    return ctx.finding(
        "GL405",
        optimizer.call,
        f"{optimizer.name} learning rate {_value_text(ctx, lr)} is at least {key} ({limit:g}), with no clipping",
        f"lower the learning rate, or {fix}",
    )


def _keras_clips(ctx: CheckContext, optimizer: Optimizer) -> bool:
    for key in ("clipnorm", "clipvalue", "global_clipnorm"):
        node = _keyword(optimizer.call, key)
        if node is not None:
            v = ctx.facts.values.value(node, optimizer.scope)
            if v is None or v.value is None or not isinstance(v.value, (int, float)) or v.value > 0:
                return v is None or v.value is not None
    return any(a.star == "**" for a in optimizer.call.args)


def _lr_set_by_scheduler(ctx: CheckContext, optimizer: Optimizer) -> bool:
    """A scheduler of _OWN_LR_SCHEDULERS on this optimizer (or one we cannot tie to an optimizer) decides the lr."""
    facts = ctx.facts
    for site in facts.index.all_sites:
        call = site.node
        if type(call) is not cst.Call:
            continue
        qual = qualified_name(call.func, site.scope, site.seq) or ""
        if not qual.endswith(_OWN_LR_SCHEDULERS):
            continue
        target = _arg(call, 0, "optimizer")
        made = facts.loops.constructor(target, site.scope, site.seq) if target is not None else None
        if made is None or made is optimizer.call:
            return True
    return False


def _manual_lr(ctx: CheckContext, event: Event) -> Value | None:
    """The learning rate of `p.data -= lr * p.grad`, `p.add_(p.grad, alpha=-lr)`, `p.sub_(lr * p.grad)`."""
    node = event.node
    scope, before = event.site.scope, event.site.seq
    values = ctx.facts.values
    if type(node) is cst.AugAssign:
        expr = node.value
    elif type(node) is cst.Assign:
        expr = node.value
        if type(expr) is cst.BinaryOperation and type(expr.operator) in (cst.Subtract, cst.Add):
            expr = expr.right
    elif type(node) is cst.Call and node.args:
        alpha = _keyword(node, "alpha")
        if alpha is not None:
            v = values.value(alpha, scope, before)
            return _abs(v)
        if len(node.args) == 2 and node.args[1].keyword is None:
            return _abs(values.value(node.args[0].value, scope, before))  # add_(-lr, grad), the old form
        expr = node.args[0].value
    else:
        return None
    if type(expr) is cst.BinaryOperation and type(expr.operator) is cst.Multiply:
        for factor, other in ((expr.left, expr.right), (expr.right, expr.left)):
            if _reads_grad(other):
                return _abs(values.value(factor, scope, before))
    return None


def _reads_grad(node) -> bool:
    while type(node) is cst.Attribute:
        if node.attr.value == "grad":
            return True
        node = node.value
    return False


def _abs(v: Value | None) -> Value | None:
    if v is None or not isinstance(v.value, (int, float)) or isinstance(v.value, bool):
        return None
    return Value(abs(v.value), v.origin, v.node)
