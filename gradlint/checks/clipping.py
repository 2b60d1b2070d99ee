"""Clipping rules: no clipping (GL101), clipping in the wrong place (GL102), of scaled gradients (GL103),
with a threshold that cannot clip (GL104)."""
from __future__ import annotations

import math
from typing import Iterator

import libcst as cst

from gradlint.checks.context import CheckContext
from gradlint.checks.registry import register
from gradlint.facts.frameworks import TF_UPDATES, Clipping
from gradlint.facts.loops import (
    BACKWARD, CLIP, CLIP_FUNCTIONS, MANUAL_STEP, SCALE, STEP, UNSCALE, Event, TrainingPath, _parameter_owners,
    exclusive, optimizer_params, trained_models,
)
from gradlint.facts.index import Scope, dotted
from gradlint.facts.names import qualified_name
from gradlint.facts.values import Value, _arg, _keyword
from gradlint.facts.models import Layer, Model
from gradlint.findings import Finding, Fix, Severity
from gradlint.fix.builders import (
    NoFix, clip_before_steps, clip_params, keras_clipnorm, move_clip_before_step, stepped_optimizer,
    unscale_before_clip,
)



def torch_fix(ctx: CheckContext, update: Event) -> str:
    params = clip_params(ctx.facts, update) or "model.parameters()"
    return f"add `torch.nn.utils.clip_grad_norm_({params}, max_norm=1.0)` between backward() and step()"


def tf_update(event: Event) -> str | None:
    """`apply_gradients` or `minimize` for a TensorFlow update, else None."""
    call = event.call
    if call is None or type(call.func) is not cst.Attribute or call.func.attr.value not in TF_UPDATES:
        return None
    return call.func.attr.value


def update_fix(ctx: CheckContext, update: Event) -> str:
    """How to clip before this update, in its framework's words."""
    method = tf_update(update)
    if method is None:
        return torch_fix(ctx, update)
    clip = "`grads, _ = tf.clip_by_global_norm(grads, 1.0)`"
    if ctx.facts.frameworks.update_clipping(update) is not None:
        return f"add `clipnorm=1.0` to the optimizer, or clip the gradients before {method}() with {clip}"
    if method == "minimize":
        return (
            "minimize() cannot clip: compute the gradients with compute_gradients(), clip them with "
            f"{clip} and apply them with apply_gradients()"
        )
    return f"clip the gradients before apply_gradients() with {clip}"


def optimizer_clips(ctx: CheckContext, update: Event) -> bool:
    """Whether the update's own (Keras) optimizer clips, or may: clipnorm/clipvalue/global_clipnorm."""
    clipping = ctx.facts.frameworks.update_clipping(update)
    return clipping is not None and clipping.clips is not False


def offered(help: str, built: Fix | NoFix | None) -> tuple[str, Fix | None]:
    """The help, saying why when there is no fix, and the fix."""
    if isinstance(built, NoFix):
        return f"{help} (no automatic fix: {built.reason})", None
    return help, built


def describe_layer(ctx: CheckContext, layer: Layer) -> str:
    return f"{layer.short} (built at {ctx.where(layer.call, layer.facts)})"


def _recurrent(models: list[Model]) -> tuple[Model, Layer] | None:
    for model in models:
        if model.recurrent_layers:
            return model, model.recurrent_layers[0]
    return None


def path_clipping(ctx: CheckContext, path: TrainingPath) -> tuple[bool, tuple[str, str] | None]:
    """Whether clipping runs on the path with the defaults; if not, and there is clipping that never runs,
    where it is and the condition that keeps it off (`line 30`, "`args.clip > 0` is False")."""
    skipped = []
    for event in path.of(CLIP):
        holds = ctx.facts.loops.holds(event)
        if holds is not False:
            return True, None
        skipped.append(event)
    if skipped:
        event = skipped[0]
        cond = next(c for c, scope in event.conds if ctx.facts.values.truth(c.test, scope) != c.holds)
        test = ctx.facts.code(cond.test).strip()
        return False, (ctx.where(event.node), f"`{test}` is {not cond.holds}")
    return False, None


def update_models(ctx: CheckContext, update: Event) -> list[Model]:
    """The models whose parameters an update's optimizer was built with (empty when unreadable)."""
    found = optimizer_params(ctx.facts.loops, update)
    if found is None:
        return []
    params, scope = found
    models = (ctx.facts.models.model_of(owner, scope) for owner in _parameter_owners(params))
    return [m for m in models if m is not None]


def _param_owner(ctx: CheckContext, expr: cst.BaseExpression | None, scope: Scope) -> cst.CSTNode | None:
    """The call that built `model` in `model.parameters()`, or the optimizer in `opt.param_groups`."""
    if expr is None:
        return None
    node = expr
    if type(node) is cst.ListComp:
        node = node.for_in.inner_for_in.iter if node.for_in.inner_for_in is not None else node.for_in.iter
    if type(node) is cst.Call and type(node.func) is cst.Attribute and node.func.attr.value == "parameters":
        node = node.func.value
    elif type(node) is cst.Subscript:
        node = node.value  # `group["params"]` reads `opt.param_groups`
    if type(node) is cst.Attribute and node.attr.value == "param_groups":
        node = node.value
    if type(node) is not cst.Name:
        return None
    return ctx.facts.loops.constructor(node, scope, None)


def _covers(ctx: CheckContext, clip: Event, update: Event, several: bool) -> bool:
    """Whether a clip limits the gradients an update applies: in the same pass, and, where several
    optimizers step, over that optimizer's parameters (or parameters that cannot be told apart)."""
    if exclusive(clip, update):
        return False
    if not several or clip.call is None or not clip.call.args:
        return True
    clipped = _param_owner(ctx, clip.call.args[0].value, clip.site.scope)
    optimizer = stepped_optimizer(ctx.facts, update)
    if clipped is None or optimizer is None:
        return True
    if clipped is ctx.facts.loops.constructor(optimizer, update.site.scope, update.site.seq):
        return True
    if ctx.facts.optimizers.from_call(clipped) is not None:
        return False  # another optimizer's parameters
    found = optimizer_params(ctx.facts.loops, update, follow_names=False)
    stepped = _param_owner(ctx, *found) if found is not None else None
    if stepped is None:
        return True
    # Separately built models: the clip covers the other only if one was built from the other.
    return clipped is stepped or _mentions(ctx, clipped, stepped) or _mentions(ctx, stepped, clipped)


def _mentions(ctx: CheckContext, outer: cst.Call, inner: cst.Call) -> bool:
    """Whether `outer` was built with `inner` as an argument (a model wrapping a submodule)."""
    scope = ctx.facts.scope_of_call(outer)
    return any(
        type(a.value) is cst.Name and ctx.facts.loops.constructor(a.value, scope, None) is inner for a in outer.args
    )


@register(
    "GL101",
    "rnn-without-clipping",
    Severity.WARNING,
    "A recurrent network is trained with no gradient clipping on its training path.",
    fixable=True,
)
def rnn_without_clipping(ctx: CheckContext) -> Iterator[Finding]:
    return _unique(_rnn_without_clipping(ctx))


def _rnn_without_clipping(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    for path in facts.loops.paths():
        found = _recurrent(trained_models(facts.loops, path))
        if found is None:
            continue
        clipped, off = path_clipping(ctx, path)
        clips = [c for c in path.of(CLIP) if facts.loops.holds(c) is not False]
        several = len({facts.code(o).strip() for u in path.updates if (o := stepped_optimizer(facts, u)) is not None}) > 1
        unclipped = [
            u for u in path.updates
            if _recurrent(update_models(ctx, u) or [found[0]])
            and not any(_covers(ctx, c, u, several) for c in clips)
            and not optimizer_clips(ctx, u)
        ]
        for steps in _by_optimizer(ctx, unclipped):
            yield _unclipped_finding(ctx, path, found, steps, off, clips)
    for compile_ in facts.frameworks.keras_compiles():
        yield from _framework_finding(
            ctx, compile_.model, compile_.clipping, compile_.site.node, keras=True,
            fix=keras_clipnorm(facts, compile_),
        )
    for fit in facts.frameworks.lightning_fits():
        yield from _framework_finding(ctx, fit.model, fit.clipping, fit.trainer_call, lightning=True)
    for training in facts.frameworks.hf_trainings():
        yield from _framework_finding(ctx, training.model, training.clipping, training.trainer_call)


def _unclipped_finding(
    ctx: CheckContext, path: TrainingPath, found: tuple[Model, Layer], steps: list[Event],
    off: tuple[str, str] | None, clips: list[Event],
) -> Finding:
    """GL101 for the unclipped updates of one optimizer, reported at the first."""
    model, layer = _recurrent(update_models(ctx, steps[0])) or found
    step = steps[0]
    advice = update_fix(ctx, step)
    # Reported at a call here for a step of another file, the message also says where that step is.
    anchored = id(step.node) in ctx.facts.loops.anchors
    note = ""
    if off is not None:
        where, condition = off
        # Anchored, the message already names the other file's step: the clipping's place goes to the help.
        note = ": clipping is off by default" if anchored else f": the clipping at {where} never runs with the defaults"
        place = f" at {where}" if anchored else ""
        advice = f"make the clipping{place} run by default ({condition}), or {advice}"
        built = NoFix("the clipping is there but off by default: change the default instead")
    else:
        if clips:
            note = f": the clipping at {ctx.where(clips[0].node)} does not reach {call_text(ctx, step)}"
        if tf_update(step) is not None:
            built = NoFix("a TensorFlow update is clipped by its optimizer or in the step: which is the author's choice")
        else:
            built = clip_before_steps(ctx.facts, path, steps)
    help, fix = offered(advice, built)
    owner = "" if model.label == layer.short else f" in {model.label}"
    message = f"{describe_layer(ctx, layer)}{owner} is trained with no gradient clipping{note}"
    return ctx.finding("GL101", step.node, message, help, fix=fix)


def _by_optimizer(ctx: CheckContext, updates: list[Event]) -> list[list[Event]]:
    """The updates grouped by the optimizer they step (the call that built it): a GAN's generator and
    discriminator, or two optimizers of one model, are each a mistake of their own; updates whose
    optimizer cannot be told are one group."""
    groups: dict[int | None, list[Event]] = {}
    for update in updates:
        optimizer = stepped_optimizer(ctx.facts, update)
        made = None
        if optimizer is not None:
            made = ctx.facts.loops.home(update.site.scope).loops.constructor(optimizer, update.site.scope, update.site.seq)
        groups.setdefault(id(made) if made is not None else None, []).append(update)
    return list(groups.values())


def _framework_finding(ctx, model, clipping: Clipping, node, *, keras=False, lightning=False, fix=None):
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
            advice = (
                "a string optimizer cannot clip: pass an optimizer object, e.g. "
                "`keras.optimizers.Adam(clipnorm=1.0)`"
            )
        else:
            advice = "add `clipnorm=1.0` to the optimizer, e.g. `keras.optimizers.Adam(clipnorm=1.0)`"
    elif lightning:
        advice = "clip in the Trainer: `Trainer(gradient_clip_val=1.0)`"
    else:
        advice = "clip in the Trainer's arguments: `TrainingArguments(max_grad_norm=1.0)`"
    advice, fix = offered(advice, fix)
    yield ctx.finding(
        "GL101",
        node,
        f"{describe_layer(ctx, layer)} in {model.label} is trained without clipping ({clipping.setting})",
        advice,
        fix=fix,
    )


# -- helpers shared by GL102-GL104 ----------------------------------------------------------


def call_text(ctx: CheckContext, event: Event) -> str:
    """`optimizer.step()`, `torch.nn.utils.clip_grad_norm_()`: the called name, for messages."""
    call = event.call
    if call is None:
        text = ctx.facts.code(event.node).strip().splitlines()[0]
        return f"`{text}`"
    site = getattr(event, "site", None)
    if site is not None and qualified_name(call.func, site.scope, site.seq) in CLIP_FUNCTIONS:
        # A library function is known by its name; its module path (`torch.nn.utils.`) only lengthens the message.
        return f"`{qualified_name(call.func, site.scope, site.seq).rsplit('.', 1)[-1]}()`"
    func = ctx.facts.code(call.func).strip()
    if "\n" in func or len(func) > 60:
        func = func.splitlines()[-1].strip()[-60:]
    return f"`{func}()`"


def at(ctx: CheckContext, event: Event, home: Scope | None = None) -> str:
    """`line 12`, or `line 12 (in clip_all, via line 40)` for an event in a helper that `home`
    (the function holding the training loop) calls."""
    return ctx.where(event.node) + via(ctx, event, home)


def via(ctx: CheckContext, event: Event, home: Scope | None = None) -> str:
    """` (in clip_all, via line 40)` for an event in a helper that `home` calls, else ''."""
    if home is None or event.site.scope is home:
        return ""
    call = next((site for site in event.via if site.scope is home), None)
    return f" (in {event.site.scope.name}, via {ctx.where(call.node)})" if call is not None else ""


def loop_home(path: TrainingPath, loop) -> Scope | None:
    """The function whose body holds `loop`."""
    if loop is None:
        return path.root
    for event in path.events:
        for site in (event.site, *event.via):
            if loop in site.ctx.loops:
                return site.scope
    return None


def clip_flavour(ctx: CheckContext, event: Event) -> str:
    """'function' (torch/tf clip functions), 'clamp' (`p.grad.clamp_`) or 'method' (accelerator, Fabric, FSDP)."""
    call = event.call
    if call is None:
        return "method"
    qual = qualified_name(call.func, event.site.scope, event.site.seq) or ""
    if qual in CLIP_FUNCTIONS:
        return "function"
    if type(call.func) is cst.Attribute and call.func.attr.value in ("clamp_", "clamp", "clip_", "clip", "clamp_max_", "clamp_min_"):
        return "clamp"
    return "method"


def _scan(events: list[Event], start: Event, forward: bool, cyclic: bool) -> Iterator[tuple[Event, bool]]:
    """The events after (or before) `start` in `events`, wrapping round once when `cyclic`; each with
    whether the scan has wrapped. Events on the other side of an `if` from `start` are left out."""
    index = next(i for i, e in enumerate(events) if e is start)
    step = 1 if forward else -1
    n = len(events)
    for k in range(1, n if cyclic else (n - index if forward else index + 1)):
        j = index + step * k
        wrapped = not 0 <= j < n
        event = events[j % n]
        if event is start:
            return
        if not exclusive(event, start):
            yield event, wrapped


def _unique(findings: Iterator[Finding]) -> Iterator[Finding]:
    """One finding per code and place: a helper reached from several paths (a loss function called by the
    train and test steps, a step called from two loops) is one mistake, whatever path it is seen on."""
    seen = set()
    for finding in findings:
        key = (finding.code, finding.line, finding.column)
        if key not in seen:
            seen.add(key)
            yield finding


# -- GL102 ----------------------------------------------------------------------------------


@register(
    "GL102",
    "clip-out-of-order",
    Severity.ERROR,
    "Gradient clipping runs before the backward() it should limit or after the step() it should protect.",
    fixable=True,
)
def clip_out_of_order(ctx: CheckContext) -> Iterator[Finding]:
    return _unique(_clip_out_of_order(ctx))


def _clip_out_of_order(ctx: CheckContext) -> Iterator[Finding]:
    loops = ctx.facts.loops
    for path in loops.paths():
        for clip in path.of(CLIP):
            if loops.holds(clip) is False:
                continue  # never runs with the defaults: GL101's business
            loop = path.training_loop(clip)
            if loop is None and any(e.loops for e in path.updates):
                continue  # a clip outside the training loop (once, before or after training): not judged
            events = path.training_iteration(clip)
            home = loop_home(path, loop)
            updates_before = [
                e for e, _ in _scan(events, clip, forward=False, cyclic=False) if e.kind in (STEP, MANUAL_STEP)
            ]
            for event, wrapped in _scan(events, clip, forward=True, cyclic=loop is not None):
                if event.kind in (STEP, MANUAL_STEP):
                    break  # the next update sees the clipped gradients
                if event.kind != BACKWARD:
                    continue
                if not wrapped:
                    update = next(
                        (e for e, _ in _scan(events, event, True, False) if e.kind in (STEP, MANUAL_STEP)), None
                    )
                    yield _moved(
                        ctx,
                        clip,
                        f"{call_text(ctx, clip)}{via(ctx, clip, home)} runs before {call_text(ctx, event)} at "
                        f"{at(ctx, event, home)}, so it clips stale gradients",
                        update,
                    )
                else:
                    last = updates_before[0] if updates_before else None
                    after = f" {call_text(ctx, last)} at {at(ctx, last, home)}" if last else " the update"
                    yield _moved(
                        ctx,
                        clip,
                        f"{call_text(ctx, clip)}{via(ctx, clip, home)} runs after{after} has applied unclipped gradients",
                        last,
                    )
                break
            else:
                if loop is None and updates_before:
                    last = updates_before[0]
                    yield _moved(
                        ctx,
                        clip,
                        f"{call_text(ctx, clip)}{via(ctx, clip, home)} runs after {call_text(ctx, last)} at "
                        f"{at(ctx, last, home)} has applied unclipped gradients",
                        last,
                    )


def _between(ctx: CheckContext, clip: Event) -> str:
    """Where a clip belongs, in the words of its framework."""
    call = clip.call
    if call is not None and (qualified_name(call.func, clip.site.scope, clip.site.seq) or "").startswith("tf."):
        return "between computing the gradients and apply_gradients()"
    return "between backward() and step()"


def _moved(ctx: CheckContext, clip: Event, message: str, update: Event | None) -> Finding:
    if update is None or update.kind != STEP:
        built = NoFix("no optimizer step follows in the iteration to move it before")
    else:
        built = move_clip_before_step(ctx.facts, clip, update)
    before = f" (before {call_text(ctx, update)} at {ctx.where(update.node)})" if update is not None else ""
    help, fix = offered(f"move the clipping {_between(ctx, clip)}{before}", built)
    return ctx.finding("GL102", clip.node, message, help, fix=fix)


# -- GL103 ----------------------------------------------------------------------------------


@register(
    "GL103",
    "clip-scaled-gradients",
    Severity.ERROR,
    "Gradients scaled by a GradScaler are clipped without scaler.unscale_(optimizer) first.",
    fixable=True,
)
def clip_scaled_gradients(ctx: CheckContext) -> Iterator[Finding]:
    return _unique(_clip_scaled_gradients(ctx))


def _clip_scaled_gradients(ctx: CheckContext) -> Iterator[Finding]:
    loops = ctx.facts.loops
    for path in loops.paths():
        if not path.of(SCALE):
            continue
        for clip in path.of(CLIP):
            if clip_flavour(ctx, clip) == "method" or loops.holds(clip) is False:
                continue  # accelerate/Fabric/Lightning clip methods unscale for you
            loop = path.training_loop(clip)
            events = path.training_iteration(clip)
            home = loop_home(path, loop)
            for event, _ in _scan(events, clip, forward=False, cyclic=loop is not None):
                if event.kind in (UNSCALE, STEP, MANUAL_STEP):
                    break
                if event.kind == SCALE and loops.holds(event) is not False:
                    scaler = event.call.func.value
                    note = _scaler_note(ctx, scaler, event)
                    if note is None:
                        break
                    text = ctx.facts.code(scaler).strip()
                    help, fix = offered(
                        f"call `{text}.unscale_(optimizer)` after backward() and before the clipping",
                        unscale_before_clip(ctx.facts, path, clip),
                    )
                    message = (
                        f"{call_text(ctx, clip)}{via(ctx, clip, home)} clips gradients still scaled by "
                        f"`{text}.scale(...)` at {at(ctx, event, home)}{note}"
                    )
                    yield ctx.finding("GL103", clip.node, message, help, fix=fix)
                    break


def _scaler_note(ctx: CheckContext, scaler: cst.BaseExpression, event: Event) -> str | None:
    """'' for a scaler that is on; a note when it is off by default but can be turned on; None when it
    is switched off for good (`GradScaler(enabled=False)`)."""
    made = ctx.facts.loops.constructor(scaler, event.site.scope, event.site.seq)
    if made is None:
        return ""
    enabled = _keyword(made, "enabled")
    if enabled is None:
        return ""
    v = ctx.facts.values.value(enabled, ctx.facts.scope_of_call(made))
    if v is None or v.value:
        return ""
    if v.origin in ("literal",) or v.origin.startswith("constant"):
        return None
    return f" (off by default, {v.origin} at {ctx.where(v.node)})"


# -- GL104 ----------------------------------------------------------------------------------

# Clip call -> (position after the parameters, keyword) of its threshold.
_TORCH_THRESHOLDS = {
    "clip_grad_norm_": (1, "max_norm"),
    "clip_grad_norm": (1, "max_norm"),
    "clip_grad_value_": (1, "clip_value"),
    "clip_by_global_norm": (1, "clip_norm"),
    "clip_by_norm": (1, "clip_norm"),
}
_FRAMEWORK_KEYS = ("max_norm", "clip_val", "gradient_clip_val", "clip_value")


def _describe(ctx: CheckContext, key: str, v: Value, arg: cst.CSTNode) -> str:
    text = ctx.facts.code(arg).strip()
    if v.origin == "literal":
        return f"{key} `{text}`" if key else f"`{text}`"
    source = f"{v.origin} at {ctx.where(v.node)}" if v.node is not None else v.origin
    return f"`{text}` ({v.value} from {source})"


def _verdict(value, limit: float, *, zero_disables: bool) -> str | None:
    """Why a threshold cannot clip, or None when it can (or is not a number)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        return None
    if math.isinf(value) and value > 0:
        return "is infinite: nothing is ever clipped"
    if value < 0 or (value == 0 and not zero_disables):
        return "is not positive: every gradient becomes zero" if not zero_disables else (
            "is negative: clipping is off"
        )
    if value >= limit:
        return f"is at least clip-threshold-max ({limit:g}): it never clips"
    return None


@register(
    "GL104",
    "ineffective-clip-threshold",
    Severity.WARNING,
    "A gradient clipping threshold resolves to a value that cannot clip (inf, <= 0, or huge).",
    options=("clip-threshold-max",),
)
def ineffective_clip_threshold(ctx: CheckContext) -> Iterator[Finding]:
    return _unique(_ineffective_clip_threshold(ctx))


def _ineffective_clip_threshold(ctx: CheckContext) -> Iterator[Finding]:
    facts = ctx.facts
    limit = float(ctx.option("clip-threshold-max"))
    fix = "use a threshold such as 1.0 (or remove the call if no clipping is meant)"
    keras_fix = "use a threshold such as `clipnorm=1.0` (or remove the argument if no clipping is meant)"
    for path in facts.loops.paths():
        for clip in path.of(CLIP):
            holds = facts.loops.holds(clip)
            if holds is False:
                continue  # never runs with the defaults: GL101's business
            for key, arg, v, bounds in _clip_thresholds(ctx, clip):
                if bounds:
                    reason = _verdict(v.value, limit, zero_disables=True) if v.value > 0 or math.isinf(v.value) else None
                else:
                    reason = _verdict(v.value, limit, zero_disables=False)
                    if reason is not None and v.value <= 0 and holds is not True:
                        continue  # a condition we cannot read may be what keeps it from running
                if reason is None:
                    continue
                if math.isinf(v.value) and _result_used(clip):
                    continue  # `norm = clip_grad_norm_(params, inf)` measures the norm on purpose
                yield ctx.finding(
                    "GL104", arg, f"clip threshold {_describe(ctx, key, v, arg)} {reason}", fix
                )
    for optimizer in facts.optimizers.all():
        if not optimizer.keras:
            continue
        for key in ("clipnorm", "clipvalue", "global_clipnorm"):
            arg = _keyword(optimizer.call, key)
            v = facts.values.value(arg, optimizer.scope) if arg is not None else None
            if v is None or v.value is None:
                continue  # None: no clipping asked for
            reason = _verdict(v.value, limit, zero_disables=False)
            if reason is not None:
                yield ctx.finding(
                    "GL104", arg, f"clip threshold {_describe(ctx, key, v, arg)} of {optimizer.name} {reason}", keras_fix
                )
    for fit in facts.frameworks.lightning_fits():
        yield from _zero_disables(ctx, fit.trainer_call, "gradient_clip_val", limit, "Trainer")
    for training in facts.frameworks.hf_trainings():
        if training.arguments_call is not None:
            yield from _zero_disables(ctx, training.arguments_call, "max_grad_norm", limit, "TrainingArguments")


def _result_used(event: Event) -> bool:
    """Whether the clip call's return value (the total norm) is kept: it is not a bare statement."""
    stmt = event.site.ctx.stmt
    return not (type(stmt) is cst.Expr and stmt.value is event.node)


def _zero_disables(ctx: CheckContext, call: cst.Call, key: str, limit: float, owner: str) -> Iterator[Finding]:
    """Lightning's gradient_clip_val and HF's max_grad_norm: 0 or None mean "do not clip", not a bad threshold."""
    arg = _keyword(call, key)
    if arg is None:
        return
    v = ctx.facts.values.value(arg, ctx.facts.scope_of_call(call))
    if v is None or v.value is None:
        return
    reason = _verdict(v.value, limit, zero_disables=True)
    if reason is not None:
        yield ctx.finding(
            "GL104", arg, f"clip threshold {_describe(ctx, key, v, arg)} of {owner} {reason}",
            f"use a threshold such as `{owner}({key}=1.0)` (0 or None if no clipping is meant)",
        )


def _clip_thresholds(ctx: CheckContext, clip: Event) -> Iterator[tuple[str, cst.CSTNode, Value, bool]]:
    """(keyword, argument, value, is-a-bound) for each threshold of a clip call that resolves to a number."""
    call = clip.call
    if call is None:
        return
    scope, before = clip.site.scope, clip.site.seq
    values = ctx.facts.values
    name = call.func.attr.value if type(call.func) is cst.Attribute else getattr(call.func, "value", "")
    flavour = clip_flavour(ctx, clip)
    receiver = (dotted(call.func.value) or "").lower() if type(call.func) is cst.Attribute else ""

    def resolved(node):
        v = values.value(node, scope, before) if node is not None else None
        if v is None or not isinstance(v.value, (int, float)) or isinstance(v.value, bool):
            return None
        return v

    if flavour == "clamp" or name == "clip_by_value":
        # Bounds: `p.grad.clamp_(-c, c)`, `tf.clip_by_value(g, -c, c)`: ineffective only when both are huge.
        offset = 1 if name == "clip_by_value" else 0
        low = resolved(_arg(call, offset, "min" if offset == 0 else "clip_value_min"))
        high = resolved(_arg(call, offset + 1, "max" if offset == 0 else "clip_value_max"))
        if low is not None and high is not None and -low.value >= 0 and high.value >= 0:
            node = _arg(call, offset + 1, "max" if offset == 0 else "clip_value_max")
            bound = min(-low.value, high.value)
            yield "", node, Value(bound, high.origin, high.node), True
        return
    if name in _TORCH_THRESHOLDS and flavour == "function":
        position, keyword = _TORCH_THRESHOLDS[name]
        node = _arg(call, position, keyword)
        v = resolved(node)
        if v is not None:
            yield keyword, node, v, False
        return
    if name in ("clip_grad_norm_", "clip_grad_value_") and "accelerator" in receiver:
        # accelerate's methods take torch's signature and defer to torch's functions.
        position, keyword = _TORCH_THRESHOLDS[name]
        node = _arg(call, position, keyword)
        v = resolved(node)
        if v is not None:
            yield keyword, node, v, False
        return
    # Fabric `clip_gradients(module, optimizer, clip_val=, max_norm=)`, Lightning `self.clip_gradients(opt,
    # gradient_clip_val=)`: keywords only, and None means "not this kind of clipping". Other libraries'
    # methods of these names (DeepSpeed, fairseq) read 0 as "do not clip": only fabric/Lightning keywords.
    if not ("fabric" in receiver or receiver == "self" or name == "clip_gradients"):
        return
    for keyword in _FRAMEWORK_KEYS:
        node = _keyword(call, keyword)
        v = resolved(node)
        if v is not None:
            yield keyword, node, v, False
