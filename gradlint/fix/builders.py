"""The safe fixes, one builder per kind of edit. Each returns NoFix, with the reason, when it cannot prove
the edit right."""
from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.index import Scope, Site
from gradlint.facts.loops import (
    BACKWARD, CLIP, MANUAL_STEP, SCALE, STEP, UNSCALE, Event, TrainingPath, exclusive, optimizer_params,
)
from gradlint.facts.names import lookup, qualified_name
from gradlint.fix.edits import add_keyword, insert_lines_before, move_before, replace_node, torch_module
from gradlint.findings import Fix

if TYPE_CHECKING:
    from gradlint.facts import FileFacts
    from gradlint.facts.frameworks import KerasCompile

MAX_NORM = "1.0"
KERAS_OPTIMIZERS = {
    "adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adadelta": "Adadelta",
    "adamax": "Adamax", "nadam": "Nadam", "adamw": "AdamW", "ftrl": "Ftrl", "lion": "Lion",
}


@dataclass(frozen=True)
class NoFix:
    """Why no fix is offered: the finding says so, so that `--fix` leaving it alone is no surprise."""

    reason: str


def _free_names(node: cst.CSTNode) -> list[str]:
    """The names an expression reads (the heads of attribute chains, not attribute or keyword names)."""
    names: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.Name:
            names.append(current.value)
        elif t is cst.Attribute:
            stack.append(current.value)
        elif t is cst.Call:
            stack.append(current.func)
            stack.extend(a.value for a in current.args)
        elif t is cst.Subscript:
            stack.append(current.value)
            stack.extend(e.slice.value for e in current.slice if type(e.slice) is cst.Index)
        elif t is cst.BinaryOperation:
            stack.extend((current.left, current.right))
        elif t in (cst.List, cst.Tuple):
            stack.extend(e.value for e in current.elements)
        elif t is not cst.SimpleString:
            return ["<unsupported>"]  # comprehensions, lambdas: bindings of their own
    return names


def _same_meaning(expr: cst.CSTNode, home: Scope, there: Scope, there_seq: int | None) -> bool:
    """Whether every name `expr` reads (written in `home`) means the same at a point of `there`."""
    for name in _free_names(expr):
        if name == "<unsupported>":
            return False
        if name == "self":
            if home.cls is None or home.cls is not there.cls:
                return False
            continue
        binding = lookup(name, there, there_seq)
        if lookup(name, home) is not binding or (binding is None and not hasattr(builtins, name)):
            return False
    return True


def _sides(event: Event) -> set[tuple[int, bool]]:
    """The branches an event runs under: it runs whenever another with a superset of them does."""
    return {(id(c.node), c.holds) for c, _ in event.conds}


def _statement(event: Event) -> cst.CSTNode | None:
    return event.site.ctx.stmt


def _receiver(event: Event) -> cst.BaseExpression | None:
    call = event.call
    if call is None or type(call.func) is not cst.Attribute:
        return None
    return call.func.value


def stepped_optimizer(facts: "FileFacts", step: Event) -> cst.BaseExpression | None:
    """The optimizer expression of `opt.step()` or `scaler.step(opt)`; None for other updates."""
    receiver = _receiver(step)
    if step.kind != STEP or receiver is None or step.call.func.attr.value != "step":
        return None
    if facts.loops.object_kind(receiver, step.site.scope, step.site.seq) == "scaler":
        return step.call.args[0].value if step.call.args else None
    return receiver


# -- GL101: which parameters to clip -------------------------------------------------------------


def _is_parameters_call(node: cst.CSTNode) -> bool:
    """`model.parameters()`: a fresh generator of the model's tensors each time it is evaluated."""
    return type(node) is cst.Call and type(node.func) is cst.Attribute and node.func.attr.value == "parameters"


def _builtin(node: cst.CSTNode, scope: Scope, name: str) -> bool:
    return type(node) is cst.Name and node.value == name and lookup(name, scope) is None


def _tensors(node: cst.CSTNode, scope: Scope, depth: int = 0) -> bool:
    """Whether an expression yields parameter tensors (not param-group dicts, (name, tensor) pairs or
    optimizer classes), as far as can be read."""
    if depth > 4:
        return False
    t = type(node)
    if _is_parameters_call(node):
        return True
    if t is cst.Call and node.args and (_builtin(node.func, scope, "list") or _builtin(node.func, scope, "filter")):
        return _tensors(node.args[-1].value, scope, depth + 1)
    if t in (cst.List, cst.Tuple):
        return all(
            _tensors(e.value, scope, depth + 1) if type(e) is cst.StarredElement else _tensor(e.value, scope)
            for e in node.elements
        )
    if t is cst.BinaryOperation and type(node.operator) is cst.Add:
        return _tensors(node.left, scope, depth + 1) and _tensors(node.right, scope, depth + 1)
    if t in (cst.ListComp, cst.GeneratorExp):
        target = node.for_in.target
        return (
            node.for_in.inner_for_in is None and type(target) is cst.Name and type(node.elt) is cst.Name
            and node.elt.value == target.value and _tensors(node.for_in.iter, scope, depth + 1)
        )
    if t is cst.Name:
        binding = lookup(node.value, scope)
        return binding is not None and binding.kind == "assign" and binding.value is not None and _tensors(
            binding.value, binding.scope, depth + 1
        )
    return False


def _tensor(node: cst.CSTNode, scope: Scope) -> bool:
    """One element of a parameter list: a tensor such as `model.weight` or `w`, not a dict or a call."""
    if type(node) is cst.Attribute:
        return True
    if type(node) is cst.Name:
        binding = lookup(node.value, scope)
        return binding is not None and (binding.kind != "assign" or type(binding.value) not in (cst.Dict, cst.Call))
    return False


def _reiterable(node: cst.CSTNode, scope: Scope) -> bool:
    """Whether evaluating the expression again gives the tensors again: an inline `model.parameters()` or a
    list, not a name holding a generator or a `filter` that the optimizer has already consumed."""
    if type(node) is not cst.Name:
        return True
    binding = lookup(node.value, scope)
    value = binding.value if binding is not None else None
    return type(value) in (cst.List, cst.Tuple, cst.ListComp, cst.BinaryOperation) or (
        type(value) is cst.Call and _builtin(value.func, binding.scope, "list")
    )


def clip_params(facts: "FileFacts", step: Event) -> str | None:
    """The parameters a clip before `step` must cover: the optimizer's own argument where it is a
    re-iterable expression of tensors that means the same at the step, else read back from the optimizer
    (exactly what it updates, whatever it was given); None when neither can be vouched for."""
    optimizer = stepped_optimizer(facts, step)
    if optimizer is None:
        return None
    scope, seq = step.site.scope, step.site.seq
    found = optimizer_params(facts.loops, step, follow_names=False)
    # An optimizer a function is handed was read from one of its callers: another call may hand it an
    # optimizer of another model, and a global that names the model only where the function is called
    # from `__main__` would clip the wrong one. Such a step clips what its own optimizer holds.
    handed = facts.loops.home(scope).loops.constructor(optimizer, scope, seq, follow_params=False) is None
    if found is not None and not handed:
        expr, home = found
        text = facts.code(expr).strip()
        if (
            "\n" not in text and _tensors(expr, home) and _reiterable(expr, home)
            and _same_meaning(expr, home, scope, seq)
        ):
            return text
    built = facts.optimizers.for_event(step)
    if built is None or built.keras or built.wrapped:
        return None  # only a torch optimizer is known to hold `param_groups` (a DistributedOptimizer does not)
    return f'[p for group in {facts.code(optimizer).strip()}.param_groups for p in group["params"]]'


# -- GL101: the fix ------------------------------------------------------------------------------


def clip_before_steps(facts: "FileFacts", path: TrainingPath, steps: list[Event]) -> Fix | NoFix:
    """GL101: `torch.nn.utils.clip_grad_norm_(<params>, max_norm=1.0)` before each of `steps`, after
    `scaler.unscale_(optimizer)` when a scaler steps; every step or none."""
    if facts.source_text is None:
        return NoFix("the file's text is not at hand")
    found = torch_module(facts, [s.site.scope for s in steps])
    if found is None:
        return NoFix("`torch` names something else here")
    torch, edits = found
    done: set[int] = set()
    for step in steps:
        if id(step.site) in done:
            continue  # one step reached by several calls: one clip
        done.add(id(step.site))
        lines = _clip_lines(facts, path, step, torch)
        if isinstance(lines, NoFix):
            return lines
        edit = insert_lines_before(facts, _statement(step), lines)
        if edit is None:
            return NoFix(f"the step at line {facts.line(step.node)} shares its line with other code")
        edits.append(edit)
    return Fix(f"clip gradients to norm {MAX_NORM} before the step", tuple(edits))


def _clip_lines(facts: "FileFacts", path: TrainingPath, step: Event, torch: str) -> list[str] | NoFix:
    where = f"line {facts.line(step.node)}"
    optimizer = stepped_optimizer(facts, step)
    if optimizer is None:
        return NoFix(f"the update at {where} is not an optimizer's `step()`")
    receiver = _receiver(step)
    scaled = optimizer is not receiver
    if not scaled and step.call.args:
        return NoFix(f"`step(closure)` at {where} runs its backward inside the step: the clip belongs in the closure")
    params = clip_params(facts, step)
    if params is None:
        return NoFix(f"gradlint cannot tell which parameters the optimizer stepped at {where} updates")
    lines = []
    if scaled:
        unscaled = _unscale_before(facts, path, step, optimizer)
        if isinstance(unscaled, NoFix):
            return unscaled
        if not unscaled:
            lines.append(f"{facts.code(receiver).strip()}.unscale_({facts.code(optimizer).strip()})")
    lines.append(f"{torch}.nn.utils.clip_grad_norm_({params}, max_norm={MAX_NORM})")
    return lines


def _unscale_before(facts: "FileFacts", path: TrainingPath, step: Event, optimizer: cst.BaseExpression) -> bool | NoFix:
    """Whether `scaler.unscale_(optimizer)` already runs before the step whenever the step does."""
    events = path.training_iteration(step)
    text = facts.code(optimizer).strip()
    for event in events[: events.index(step)]:
        if event.kind != UNSCALE or exclusive(event, step):
            continue
        args = event.call.args if event.call is not None else ()
        if args and facts.code(args[0].value).strip() != text:
            continue
        if not _sides(event) <= _sides(step):
            return NoFix(f"the `unscale_` at line {facts.line(event.node)} runs only under a condition")
        return True
    return False


def _keras_prefix(facts: "FileFacts") -> str | None:
    """How the module reaches Keras: `keras` or `tf.keras`."""
    for name, prefix in (("keras", "keras"), ("tf", "tf.keras")):
        for binding in facts.index.scope.bindings.get(name, []):
            if binding.kind == "import" and binding.qualname in ("keras", "tensorflow", "tensorflow.keras"):
                return prefix if binding.qualname != "tensorflow.keras" else "keras"
    return None


def keras_clipnorm(facts: "FileFacts", compile_: "KerasCompile") -> Fix | NoFix:
    """GL101 for Keras: `clipnorm=1.0` on the optimizer object, or an object in place of a string."""
    if facts.source_text is None:
        return NoFix("the file's text is not at hand")
    call = compile_.optimizer_call
    if call is not None:
        qual = qualified_name(call.func, facts.scope_of_call(call)) or ""
        if not qual.startswith("keras.optimizers."):
            return NoFix(f"`{facts.code(call.func).strip()}` is not a Keras optimizer class gradlint knows")
        if any(a.star for a in call.args):
            return NoFix("the optimizer's arguments are unpacked from `*`/`**`: a `clipnorm` may be among them")
        if any(a.keyword is not None and a.keyword.value in ("clipnorm", "clipvalue", "global_clipnorm") for a in call.args):
            # A clip setting that cannot clip is GL104's to report: the user must choose the value.
            return NoFix("the optimizer has a clip setting that does not clip: set its value instead")
        return Fix(f"add clipnorm={MAX_NORM} to the optimizer", (add_keyword(facts, call, f"clipnorm={MAX_NORM}"),))
    node = compile_.optimizer
    if node is None:
        return NoFix("`compile()` is given no optimizer (Keras's default is the string 'rmsprop')")
    if type(node) is not cst.SimpleString:
        return NoFix("the optimizer's string is not written in the `compile()` call")
    name = KERAS_OPTIMIZERS.get(str(node.evaluated_value).lower())
    if name is None:
        return NoFix(f"gradlint knows no Keras optimizer class for {node.value}")
    prefix = _keras_prefix(facts)
    if prefix is None:
        # Importing Keras would have to choose between standalone Keras and tf.keras for the file.
        return NoFix("the module imports neither `keras` nor `tensorflow` by name to build the optimizer with")
    replacement = f"{prefix}.optimizers.{name}(clipnorm={MAX_NORM})"
    return Fix(f"replace the string optimizer by {replacement}", (replace_node(facts, node, replacement),))


def unscale_before_clip(facts: "FileFacts", path: TrainingPath, clip: Event) -> Fix | NoFix:
    """GL103: `scaler.unscale_(optimizer)` once, before the first clip of the iteration and outside any loop
    over parameters, for each optimizer the scaler steps with the clipped gradients."""
    if facts.source_text is None:
        return NoFix("the file's text is not at hand")
    events = path.training_iteration(clip)
    first = _first_clip(facts, events, clip)
    steps = _scaler_steps(facts, events, first)
    if not steps:
        return NoFix("no `scaler.step(optimizer)` follows the clipping to name the optimizer")
    point = _unscale_point(path, first, path.training_loop(first))
    stmt, site = point if point is not None else (_statement(first), first.site)
    for unscale in events:
        if unscale.kind == UNSCALE and not exclusive(unscale, first):
            return NoFix(f"the `unscale_` at line {facts.line(unscale.node)} runs after the clipping: move it before")
    lines = []
    for step in steps:
        optimizer = stepped_optimizer(facts, step)
        if not _sides(step) <= _sides(first):
            return NoFix(f"the scaler steps at line {facts.line(step.node)} only under a condition the clipping does not share")
        for expr in (_receiver(step), optimizer):
            if not _same_meaning(expr, step.site.scope, site.scope, site.seq):
                return NoFix(f"`{facts.code(expr).strip()}` does not mean the same before the clipping")
        line = f"{facts.code(_receiver(step)).strip()}.unscale_({facts.code(optimizer).strip()})"
        if line not in lines:
            lines.append(line)
    edit = insert_lines_before(facts, stmt, lines)
    if edit is None:
        return NoFix(f"the clipping at line {facts.line(first.node)} shares its line with other code")
    return Fix("unscale the gradients before clipping them", (edit,))


def _first_clip(facts: "FileFacts", events: list[Event], clip: Event) -> Event:
    """The earliest clip of the same pass since the gradients were last computed (or unscaled)."""
    first = clip
    for event in reversed(events[: events.index(clip)]):
        if exclusive(event, clip):
            continue
        if event.kind in (BACKWARD, SCALE, UNSCALE, STEP, MANUAL_STEP):
            break
        if event.kind == CLIP:
            first = event
    return first


def _scaler_steps(facts: "FileFacts", events: list[Event], clip: Event) -> list[Event]:
    """The `scaler.step(optimizer)` calls after the clip that apply its gradients (up to the next backward)."""
    found = []
    for event in events[events.index(clip) + 1 :]:
        if event.kind == BACKWARD:
            break
        receiver = _receiver(event)
        if event.kind == STEP and not exclusive(event, clip) and receiver is not None and facts.loops.object_kind(
            receiver, event.site.scope, event.site.seq
        ) == "scaler" and stepped_optimizer(facts, event) is not None:
            found.append(event)
    return found


def _unscale_point(path: TrainingPath, clip: Event, loop: cst.CSTNode | None) -> tuple[cst.CSTNode, Site] | None:
    """The outermost loop around the clip (here or in a caller) inside the training iteration that runs no
    backward, with the site it sits at: a loop over parameters, which must not unscale once per parameter.
    None when the clip is in no such loop."""
    point = None
    for site in (clip.site, *reversed(clip.via)):
        for inner in reversed(site.ctx.loops):
            if inner is loop or any(inner in e.loops for e in path.of(BACKWARD, SCALE)):
                return point
            point = (inner, site)
    return point


def move_clip_before_step(facts: "FileFacts", clip: Event, step: Event) -> Fix | NoFix:
    """GL102: move the clip statement to the line before the step it should protect."""
    clip_stmt, step_stmt = _statement(clip), _statement(step)
    if clip_stmt is None or step_stmt is None or facts.source_text is None:
        return NoFix("the clipping is not a statement of its own")
    if type(clip_stmt) is not cst.Expr or clip_stmt.value is not clip.call:
        return NoFix("the clip's result is used: moving it would move more than the clip")
    if clip.site.scope is not step.site.scope:
        return NoFix("the clipping and the step are in different functions")
    if clip.site.ctx.conds != step.site.ctx.conds or clip.site.ctx.loops != step.site.ctx.loops:
        return NoFix("the clipping and the step are in different blocks: moving the line would change when it runs")
    edits = move_before(facts, clip_stmt, step_stmt)
    if edits is None:
        return NoFix("the clipping or the step shares its line with other code")
    return Fix("move the clipping between backward() and step()", tuple(edits))


def zero_grad_at_loop_top(facts: "FileFacts", loop: cst.CSTNode, updates: list[Event]) -> Fix | NoFix:
    """GL402: `optimizer.zero_grad()` as the first statement of the training loop, for every optimizer
    the loop steps."""
    body = loop.body
    if facts.source_text is None or not isinstance(body, cst.IndentedBlock) or not body.body:
        return NoFix("the loop body is on its header's line")
    branches = _inside(loop)
    lines = []
    for step in updates:
        where = f"line {facts.line(step.node)}"
        optimizer = stepped_optimizer(facts, step)
        if optimizer is None:
            return NoFix(f"the update at {where} is not an optimizer's `step()`")
        if step.via or not step.site.ctx.loops or step.site.ctx.loops[-1] is not loop:
            return NoFix(f"the step at {where} is not in the loop's own body")
        if any(id(c.node) in branches for c in step.site.ctx.conds):
            return NoFix(f"the step at {where} is conditional (gradient accumulation?): clearing every iteration would change the training")
        if _bound_inside(facts, loop, optimizer, step):
            return NoFix(f"`{facts.code(optimizer).strip()}` is bound inside the loop")
        line = f"{facts.code(optimizer).strip()}.zero_grad()"
        if line not in lines:
            lines.append(line)
    edit = insert_lines_before(facts, body.body[0], lines)
    if edit is None:
        return NoFix("the loop's first statement shares its line with other code")
    return Fix("clear the gradients at the top of the loop", (edit,))


def _bound_inside(facts: "FileFacts", loop: cst.CSTNode, expr: cst.CSTNode, step: Event) -> bool:
    """Whether a name `expr` reads is bound inside the loop (so the top of the loop may not see it yet)."""
    first, _, last, _ = facts.span(loop)
    for name in _free_names(expr):
        binding = lookup(name, step.site.scope, step.site.seq)
        if binding is None or (binding.scope is step.site.scope and first <= facts.line(binding.node) <= last):
            return True
    return False


def _inside(loop: cst.CSTNode) -> set[int]:
    """The ids of the `if` statements directly or indirectly inside a loop body."""
    found = set()
    stack = list(loop.body.body) if isinstance(loop.body, cst.IndentedBlock) else []
    while stack:
        node = stack.pop()
        if type(node) is cst.If:
            found.add(id(node))
            stack.extend(node.body.body if isinstance(node.body, cst.IndentedBlock) else [])
            if node.orelse is not None:
                stack.append(node.orelse) if type(node.orelse) is cst.If else stack.extend(
                    node.orelse.body.body if isinstance(node.orelse.body, cst.IndentedBlock) else []
                )
        elif isinstance(node, (cst.For, cst.While, cst.With, cst.Try)):
            stack.extend(node.body.body if isinstance(node.body, cst.IndentedBlock) else [])
    return found
