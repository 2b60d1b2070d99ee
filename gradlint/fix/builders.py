"""The safe fixes, one builder per kind of edit. Each returns None when it cannot prove the edit safe."""
from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.index import Scope
from gradlint.facts.loops import UNSCALE, Event, TrainingPath, optimizer_params
from gradlint.facts.names import lookup, qualified_name
from gradlint.fix.edits import (
    add_keyword,
    insert_lines_before,
    move_before,
    replace_node,
    torch_import,
)
from gradlint.findings import Fix

if TYPE_CHECKING:
    from gradlint.facts import FileFacts
    from gradlint.facts.frameworks import KerasCompile

MAX_NORM = "1.0"
KERAS_OPTIMIZERS = {
    "adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad", "adadelta": "Adadelta",
    "adamax": "Adamax", "nadam": "Nadam", "adamw": "AdamW", "ftrl": "Ftrl", "lion": "Lion",
}


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
        else:
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
        if lookup(name, home) is not lookup(name, there, there_seq) or lookup(name, there, there_seq) is None:
            return False
    return True


def _statement(event: Event) -> cst.CSTNode | None:
    stmt = event.site.ctx.stmt
    return stmt if stmt is not None else None


def _receiver(event: Event) -> cst.BaseExpression | None:
    call = event.call
    if call is None or type(call.func) is not cst.Attribute:
        return None
    return call.func.value


def clip_before_step(facts: "FileFacts", path: TrainingPath, step: Event) -> Fix | None:
    """GL101: `torch.nn.utils.clip_grad_norm_(<params>, max_norm=1.0)` on the line before the step."""
    stmt = _statement(step)
    receiver = _receiver(step)
    if stmt is None or receiver is None or facts.source_text is None:
        return None
    scope = step.site.scope
    code = lambda node: facts.code(node).strip()  # noqa: E731
    optimizer = receiver
    lines: list[str] = []
    if facts.loops.object_kind(receiver, scope, step.site.seq) != "scaler" and step.call.args:
        return None  # `step(closure)`: the backward runs inside the step; the clip belongs in the closure
    if facts.loops.object_kind(receiver, scope, step.site.seq) == "scaler":
        if not step.call.args:
            return None
        optimizer = step.call.args[0].value
        unscaled = any(e.kind == UNSCALE for e in path.iteration(step)[: path.iteration(step).index(step)])
        if not unscaled:
            lines.append(f"{code(receiver)}.unscale_({code(optimizer)})")
    found = optimizer_params(facts.loops, step, follow_names=False)
    params = None
    if found is not None:
        expr, home = found
        text = code(expr)
        if "\n" not in text and _same_meaning(expr, home, scope, step.site.seq):
            params = text
    if params is None:
        params = f'[p for group in {code(optimizer)}.param_groups for p in group["params"]]'
    lines.append(f"torch.nn.utils.clip_grad_norm_({params}, max_norm={MAX_NORM})")
    edit = insert_lines_before(facts, stmt, lines)
    if edit is None:
        return None
    return Fix(f"clip gradients to norm {MAX_NORM} before the step", tuple(torch_import(facts) + [edit]))


def _keras_prefix(facts: "FileFacts") -> str | None:
    """How the module reaches Keras: `keras` or `tf.keras`."""
    for name, prefix in (("keras", "keras"), ("tf", "tf.keras")):
        for binding in facts.index.scope.bindings.get(name, []):
            if binding.kind == "import" and binding.qualname in ("keras", "tensorflow", "tensorflow.keras"):
                return prefix if binding.qualname != "tensorflow.keras" else "keras"
    return None


def keras_clipnorm(facts: "FileFacts", compile_: "KerasCompile") -> Fix | None:
    """GL101 for Keras: `clipnorm=1.0` on the optimizer object, or an object in place of a string."""
    if facts.source_text is None:
        return None
    call = compile_.optimizer_call
    if call is not None:
        qual = qualified_name(call.func, facts.scope_of_call(call)) or ""
        if not qual.startswith("keras.optimizers.") or any(a.star for a in call.args):
            return None
        if any(a.keyword is not None and a.keyword.value in ("clipnorm", "clipvalue", "global_clipnorm") for a in call.args):
            return None  # a clip setting that cannot clip is GL104's to report: the user must choose the value
        return Fix(f"add clipnorm={MAX_NORM} to the optimizer", (add_keyword(facts, call, f"clipnorm={MAX_NORM}"),))
    node = compile_.optimizer
    if type(node) is not cst.SimpleString:
        return None
    name = KERAS_OPTIMIZERS.get(str(node.evaluated_value).lower())
    prefix = _keras_prefix(facts)
    if name is None or prefix is None:
        return None
    replacement = f"{prefix}.optimizers.{name}(clipnorm={MAX_NORM})"
    return Fix(f"replace the string optimizer by {replacement}", (replace_node(facts, node, replacement),))


def unscale_before_clip(facts: "FileFacts", clip: Event, scaler_step: Event) -> Fix | None:
    """GL103: `scaler.unscale_(optimizer)` on the line before the clip."""
    stmt = _statement(clip)
    receiver = _receiver(scaler_step)
    if stmt is None or receiver is None or not scaler_step.call.args or facts.source_text is None:
        return None
    if clip.site.scope is not scaler_step.site.scope:
        return None
    optimizer = scaler_step.call.args[0].value
    text = f"{facts.code(receiver).strip()}.unscale_({facts.code(optimizer).strip()})"
    edit = insert_lines_before(facts, stmt, [text])
    return None if edit is None else Fix("unscale the gradients before clipping them", (edit,))


def move_clip_before_step(facts: "FileFacts", clip: Event, step: Event) -> Fix | None:
    """GL102: move the clip statement to the line before the step it should protect."""
    clip_stmt, step_stmt = _statement(clip), _statement(step)
    if clip_stmt is None or step_stmt is None or facts.source_text is None:
        return None
    if type(clip_stmt) is not cst.Expr or clip_stmt.value is not clip.call:
        return None  # the clip's result is used: moving it would move more than the clip
    if clip.site.scope is not step.site.scope or clip.via or step.via:
        return None
    if clip.site.ctx.conds != step.site.ctx.conds or clip.site.ctx.loops != step.site.ctx.loops:
        return None  # different blocks: moving the line would change when it runs
    edits = move_before(facts, clip_stmt, step_stmt)
    return None if edits is None else Fix("move the clipping between backward() and step()", tuple(edits))


def zero_grad_at_loop_top(facts: "FileFacts", loop: cst.CSTNode, step: Event) -> Fix | None:
    """GL402: `optimizer.zero_grad()` as the first statement of the training loop."""
    receiver = _receiver(step)
    if receiver is None or step.via or facts.source_text is None:
        return None
    if not step.site.ctx.loops or step.site.ctx.loops[-1] is not loop:
        return None
    if step.site.ctx.conds and any(id(c.node) in _inside(loop) for c in step.site.ctx.conds):
        return None  # a conditional step is an accumulation pattern: clearing every iteration would break it
    optimizer = receiver
    if facts.loops.object_kind(receiver, step.site.scope, step.site.seq) == "scaler":
        if not step.call.args:
            return None
        optimizer = step.call.args[0].value
    body = loop.body
    if not isinstance(body, cst.IndentedBlock) or not body.body:
        return None
    edit = insert_lines_before(facts, body.body[0], [f"{facts.code(optimizer).strip()}.zero_grad()"])
    return None if edit is None else Fix("clear the gradients at the top of the loop", (edit,))


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
