"""Training paths: the ordered events (zero_grad, backward, unscale, clip, step) of a training loop.

Calls into functions and methods of the same module are followed, so clipping inside a helper
counts where the helper is called.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.index import ClassInfo, Cond, Scope, Site, dotted, opposite
from gradlint.facts.models import Model
from gradlint.facts.names import LOCAL, lookup, qualified_name, rebuilt
from gradlint.facts.values import _keyword
from gradlint.source import BACKWARD_MARKERS, has_training_marker

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

BACKWARD = "backward"
STEP = "step"
MANUAL_STEP = "manual-step"
ZERO_GRAD = "zero_grad"
CLIP = "clip"
UNSCALE = "unscale"
SCALE = "scale"
SCHEDULER = "scheduler"

CLIP_FUNCTIONS = frozenset(
    {
        "torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_value_",
        "torch.nn.utils.clip_grad_norm", "torch.nn.utils.clip_grads_with_norm_",
        "tf.clip_by_global_norm", "tf.clip_by_norm", "tf.clip_by_value",
        "tf.math.clip_by_global_norm", "tf.math.clip_by_norm", "tf.math.clip_by_value",
    }
)
# Method names that clip on the object they are called on (accelerate, Fabric, FSDP, Lightning).
CLIP_METHODS = frozenset(
    {"clip_grad_norm_", "clip_grad_value_", "clip_gradients", "clip_grad_norm", "clip_grads_with_norm_"}
)
OPTIMIZER_PREFIXES = ("torch.optim.", "transformers.", "bitsandbytes.", "apex.", "timm.optim", "torch_optimizer.", "keras.optimizers.")
SCHEDULER_PREFIXES = ("torch.optim.lr_scheduler.", "transformers.get_", "transformers.optimization.get_")
# nn.Module methods that return the module itself (`model = model.cuda()`).
RETURNS_MODULE = frozenset({"to", "cuda", "cpu", "double", "float", "half", "bfloat16", "train", "eval"})
# torch.distributed.autograd: backward(context_id, [loss]) accumulates into the context, not `.grad`.
DIST_AUTOGRAD_BACKWARD = "torch.distributed.autograd.backward"
DIST_AUTOGRAD_CONTEXT = "torch.distributed.autograd.context"
SCALERS = ("torch.amp.GradScaler", "torch.GradScaler", "torch.cuda.amp.GradScaler")
TF_CLIP_FUNCTIONS = frozenset(q for q in CLIP_FUNCTIONS if q.startswith("tf."))
# What hands back gradients in TensorFlow: `tape.gradient`, `optimizer.compute_gradients`, `tf.gradients`.
GRADIENT_METHODS = frozenset({"gradient", "compute_gradients", "get_gradients"})
GRADIENT_FUNCTIONS = frozenset({"tf.gradients"})
# Calls that pass gradients through in another shape: `zip(grads, vars)`, `list(grads)`.
PASS_THROUGH = frozenset({"zip", "list", "tuple", "enumerate"})


@dataclass(eq=False)
class Event:
    kind: str
    site: Site
    loops: tuple[cst.CSTNode, ...]
    conds: tuple[tuple[Cond, Scope], ...]
    via: tuple[Site, ...] = ()
    # The file the event's code is in, when it is another file than the path's (a helper of the project).
    facts: "FileFacts | None" = None

    @property
    def node(self) -> cst.CSTNode:
        return self.site.node

    @property
    def call(self) -> cst.Call | None:
        return self.site.node if type(self.site.node) is cst.Call else None


@dataclass(eq=False)
class TrainingPath:
    root: Scope
    events: list[Event] = field(default_factory=list)

    def of(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.kind in kinds]

    @property
    def updates(self) -> list[Event]:
        return self.of(STEP, MANUAL_STEP)

    @property
    def is_training(self) -> bool:
        return (bool(self.of(BACKWARD)) or any(minimizes(e) for e in self.updates)) and bool(self.updates)

    def iteration(self, event: Event) -> list[Event]:
        """The events of one iteration of the innermost loop around `event` (the whole path if none)."""
        if not event.loops:
            return self.events
        return self.inside(event.loops[-1])

    def inside(self, loop: cst.CSTNode) -> list[Event]:
        """The events within `loop`, in order."""
        return self._events_by_loop.get(id(loop), [])

    @cached_property
    def _events_by_loop(self) -> dict[int, list[Event]]:
        # Built once: rules ask for each event's loop, and scanning the path each time is
        # quadratic in its size (3,000 loops in one file).
        by_loop: dict[int, list[Event]] = {}
        for e in self.events:
            for key in {id(loop) for loop in e.loops}:
                by_loop.setdefault(key, []).append(e)
        return by_loop

    def training_loop(self, event: Event) -> cst.CSTNode | None:
        """The innermost loop around `event` whose iteration both computes and applies gradients.

        Loops over parameters or optimizers (`for p in model.parameters(): p.grad.clamp_(...)`) are
        skipped: the training loop is the one around them. None when no loop does both.
        """
        for loop in reversed(event.loops):
            inside = self.inside(loop)
            if any(e.kind == BACKWARD for e in inside) and any(e.kind in (STEP, MANUAL_STEP) for e in inside):
                return loop
        return None

    def training_iteration(self, event: Event) -> list[Event]:
        """The events of one iteration of `training_loop(event)`, in order (the whole path if none)."""
        loop = self.training_loop(event)
        if loop is None:
            return self.events
        return self.inside(loop)


def minimizes(event: Event) -> bool:
    """`optimizer.minimize(loss)`: TensorFlow's step that computes the gradients and applies them."""
    call = event.call
    return event.kind == STEP and call is not None and type(call.func) is cst.Attribute and call.func.attr.value == "minimize"


def exclusive(a: Event, b: Event) -> bool:
    """Whether two events sit on opposite sides of one `if` (they never run in the same pass)."""
    return opposite((c for c, _ in a.conds), (c for c, _ in b.conds))


def _mentions_grad(node: cst.CSTNode) -> bool:
    """Whether an expression reads some `.grad` (a manual update reads the gradient)."""
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.Attribute:
            if current.attr.value == "grad":
                return True
            stack.append(current.value)
        elif t is cst.BinaryOperation:
            stack.extend((current.left, current.right))
        elif t is cst.UnaryOperation:
            stack.append(current.expression)
        elif t is cst.Call:
            stack.append(current.func)
            stack.extend(a.value for a in current.args)
        elif t is cst.Subscript:
            stack.append(current.value)
        elif t is cst.Name:
            continue
    return False


def _is_grad_target(node: cst.CSTNode) -> bool:
    """`p.grad`, `p.grad.data`, `self.w.grad`."""
    while type(node) is cst.Attribute:
        if node.attr.value == "grad":
            return True
        if node.attr.value != "data":
            return False
        node = node.value
    return False


class LoopFacts:
    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        self._events: dict[int, list[Event]] = {}
        self._callees: dict[int, Scope | None] = {}
        self._local_callees: dict[int, Scope | None] = {}
        self._paths: list[TrainingPath] | None = None
        # Nodes of other files on this file's paths, by id: the call here that runs them, and their file.
        self.anchors: dict[int, tuple[Site, "FileFacts"]] = {}

    def home(self, scope: Scope) -> "FileFacts":
        """The facts of the file `scope` is in: this file's, or those of another file of the project."""
        project = self.facts.project
        owner = project.owner(scope) if project is not None else None
        return owner if owner is not None else self.facts

    def scope_of_call(self, call: cst.Call) -> Scope:
        """The scope a call is made in, in this file or, for a call found through another file, in its own."""
        site = self.facts.site_of(call)
        if site is None and self.facts.project is not None:
            site = self.facts.project.site_of(call)
        return site.scope if site is not None else self.facts.index.scope

    # -- object kinds ------------------------------------------------------------------------

    def object_kind(self, expr: cst.BaseExpression, scope: Scope, before: int | None) -> str | None:
        """'optimizer', 'scheduler', 'scaler' or None, from how the object was made or named."""
        made = self.constructor(expr, scope, before)
        if made is not None:
            qual = qualified_name(made.func, scope) or ""
            if qual in SCALERS or qual.endswith("GradScaler"):
                return "scaler"
            if qual.startswith(SCHEDULER_PREFIXES) or "lr_scheduler" in qual or "Scheduler" in qual or "LR" in qual.rsplit(".", 1)[-1]:
                return "scheduler"
            if qual.startswith(OPTIMIZER_PREFIXES) or qual.endswith("Optimizer") or qual.split(".")[-1] in _OPTIMIZER_NAMES:
                return "optimizer"
        if type(expr) is cst.Call and type(expr.func) is cst.Attribute and expr.func.attr.value in ("optimizers", "optimizer"):
            return "optimizer"  # Lightning manual optimization: self.optimizers()
        name = (dotted(expr) or "").rsplit(".", 1)[-1].lower()
        if not name:
            return None
        if "sched" in name:
            return "scheduler"
        if "scaler" in name:
            return "scaler"
        if "optim" in name or name in ("opt", "o") or name.startswith("opt_") or name.endswith("_opt"):
            return "optimizer"
        return None

    def constructor(
        self, expr: cst.BaseExpression, scope: Scope, before: int | None, depth: int = 0, follow_params: bool = True
    ) -> cst.Call | None:
        """The call that made the object a name holds (`opt = torch.optim.SGD(...)` -> that call).

        `follow_params=False` stops at parameters; the call graph itself is built with it, since
        following a parameter to its callers needs the call graph.
        """
        if depth > 6:
            return None
        if type(expr) is cst.Call:
            qual = qualified_name(expr.func, scope, before) or ""
            home = self.home(scope)
            function = None
            if qual.startswith(LOCAL + "."):
                function = home.function(qual[len(LOCAL) + 1 :])
            elif qual and home.project is not None:
                # A maker of another file of the project (`helper.get_optimizer(model, lr)`).
                found = home.project.find_function(qual, home.path)
                function = found[1] if found is not None else None
            if function is not None:
                for returned in function.returns:
                    made = self.constructor(returned, function, None, depth + 1, follow_params)
                    if made is not None:
                        maker = self.home(function)
                        if home is self.facts and maker is not self.facts:
                            # Made in another file by a call of this one: reported at that call.
                            site = home.site_of(expr)
                            if site is not None:
                                self.anchors.setdefault(id(made), (site, self.home(self.scope_of_call(made))))
                        return made
            project = self.facts.project
            if home is not self.facts and project is not None and id(expr) not in self.anchors:
                # Made in a function or method of another file that a call of this file runs (a trainer
                # class's `__init__` run by `Trainer(...)`): reported at that call.
                site = next((s for f, s in project.callers(scope) if f is self.facts), None)
                if site is not None:
                    self.anchors[id(expr)] = (site, home)
            return expr
        if type(expr) is cst.Name:
            binding = lookup(expr.value, scope, before)
            if binding is None:
                return None
            if binding.kind == "assign" and binding.value is not None:
                made = self.constructor(binding.value, binding.scope, binding.seq, depth + 1, follow_params)
                home = self.home(binding.scope)
                if made is None and rebuilt(binding, home.site_of):
                    # `if checkpoint is None: opt = Adam(...)` / `else: opt = checkpoint["opt"]`: the
                    # assignment the defaults run.
                    taken = home.values.taken_assignment(binding)
                    if taken is not None and taken is not binding and taken.value is not None:
                        made = self.constructor(taken.value, taken.scope, taken.seq, depth + 1, follow_params)
                return made
            if binding.kind == "param" and follow_params:
                home = self.home(binding.scope)
                project = self.facts.project
                # Its callers in its own file, then those in other files (`train_epoch(model, opt)` in train.py).
                callers = [home] + list({id(f): f for f, _ in project.callers(binding.scope)}.values() if project else [])
                for caller in callers:
                    for site, arg in caller.call_args_for(binding.scope, binding.name):
                        if arg is not None:
                            made = caller.loops.constructor(arg, site.scope, site.seq, depth + 1)
                            if made is not None:
                                return made
            return None
        if type(expr) is cst.Attribute and type(expr.value) is cst.Name and expr.value.value == "self":
            cls = scope.cls
            if cls is None:
                return None
            for binding in cls.self_attrs.get(expr.attr.value, []):
                if binding.value is not None:
                    made = self.constructor(binding.value, binding.scope, binding.seq, depth + 1, follow_params)
                    if made is not None:
                        return made
        return None

    # -- classification ----------------------------------------------------------------------

    def classify(self, site: Site) -> str | None:
        node = site.node
        t = type(node)
        if t is cst.Call:
            return self._classify_call(node, site)
        if t is cst.Assign:
            targets = [tg.target for tg in node.targets]
            flat = [e.value for tg in targets if type(tg) in (cst.Tuple, cst.List) for e in tg.elements]
            if any(_is_grad_target(tg) for tg in targets + flat):
                # `p.grad = None`, `p.grad = torch.zeros_like(p)`, `a.grad, b.grad = None, None`: the old
                # gradient is dropped, so nothing accumulates (unless the new value reads it).
                if not _mentions_grad(node.value):
                    return ZERO_GRAD
                return None
            if _mentions_grad(node.value) and site.ctx.no_grad or any(
                type(tg) is cst.Attribute and tg.attr.value == "data" for tg in targets
            ) and _mentions_grad(node.value):
                return MANUAL_STEP
            return None
        if t is cst.AugAssign:
            if _is_grad_target(node.target):
                return None
            if _mentions_grad(node.value) and type(node.operator) in (cst.SubtractAssign, cst.AddAssign):
                return MANUAL_STEP
        return None

    def _classify_call(self, call: cst.Call, site: Site) -> str | None:
        func = call.func
        if type(func) is cst.Attribute:
            method = func.attr.value
            receiver = func.value
            if method == "backward":
                return BACKWARD
            if method == "zero_grad":
                return ZERO_GRAD
            if method in CLIP_METHODS:
                return CLIP
            if method == "step":
                kind = self.object_kind(receiver, site.scope, site.seq)
                if kind in ("optimizer", "scaler"):
                    return STEP
                if kind == "scheduler":
                    return SCHEDULER
                return None
            if method == "unscale_":
                return UNSCALE
            if method == "scale" and self.object_kind(receiver, site.scope, site.seq) == "scaler":
                return SCALE
            if method in ("clamp_", "clamp", "clip_", "clip", "clamp_max_", "clamp_min_") and _is_grad_target(receiver):
                return CLIP
            if method in ("zero_", "fill_") and _is_grad_target(receiver):
                return ZERO_GRAD
            if method in ("sub_", "add_", "copy_", "addcdiv_", "addcmul_") and not _is_grad_target(receiver):
                if any(_mentions_grad(a.value) for a in call.args):
                    return MANUAL_STEP
            if method == "apply_gradients":
                return STEP
            if method == "minimize" and self._built_optimizer(receiver, site):
                return STEP
            if method == "gradient" and self._is_tape(receiver, site):
                return BACKWARD
            if method == "compute_gradients" and self._built_optimizer(receiver, site):
                return BACKWARD
        qual = qualified_name(func, site.scope, site.seq) or ""
        if qual in TF_CLIP_FUNCTIONS:
            # `tf.clip_by_value(y_pred, 1e-9, 1.0)` in a loss clips predictions: only gradients count.
            first = call.args[0].value if call.args and call.args[0].keyword is None else None
            return CLIP if first is not None and self.holds_gradients(first, site) else None
        if qual in CLIP_FUNCTIONS:
            return CLIP
        if qual == "torch.autograd.backward" or qual in GRADIENT_FUNCTIONS:
            return BACKWARD
        if qual == DIST_AUTOGRAD_CONTEXT:
            # A distributed autograd context starts with no gradients: entering one clears them.
            return ZERO_GRAD
        return None

    def gradient_store(self, event: Event) -> str:
        """Where a backward adds its gradients: `.grad`, or the distributed autograd context it names."""
        call = event.call
        if call is not None and qualified_name(call.func, event.site.scope, event.site.seq) == DIST_AUTOGRAD_BACKWARD:
            return "its distributed autograd context"
        return "`.grad`"

    def _built_optimizer(self, receiver: cst.BaseExpression, site: Site) -> bool:
        """An optimizer by how it was made (not by its name: `scipy.optimize.minimize` is no step)."""
        made = self.constructor(receiver, site.scope, site.seq)
        if made is None:
            return False
        qual = qualified_name(made.func, self.facts.scope_of_call(made)) or ""
        return qual.startswith(OPTIMIZER_PREFIXES) or (qual.startswith("tf.") and qual.endswith("Optimizer"))

    def holds_gradients(self, expr: cst.BaseExpression, site: Site) -> bool:
        """Whether an expression holds gradients: what a gradient call returned, a comprehension or loop
        variable over them, a name that says so (`grads`), or a helper's parameter its callers fill so."""
        return self._gradients(expr, site.scope, site.seq, site.ctx.repeats, 0)

    def _gradients(self, expr, scope: Scope, before: int | None, repeats: tuple, depth: int) -> bool:
        if depth > 6:
            return False
        t = type(expr)
        if t is cst.Name:
            if "grad" in expr.value.lower():
                return True
            for comp in reversed(repeats):
                for_in = getattr(comp, "for_in", None)
                while for_in is not None:
                    if expr.value in _target_names(for_in.target):
                        return self._gradients(for_in.iter, scope, before, (), depth + 1)
                    for_in = for_in.inner_for_in
            binding = lookup(expr.value, scope, before)
            if binding is None:
                return False
            if binding.kind in ("assign", "unpack") and binding.value is not None:
                return self._gradients(binding.value, binding.scope, binding.seq, (), depth + 1)
            if binding.kind == "for" and type(binding.node) is cst.For:
                return self._gradients(binding.node.iter, binding.scope, binding.seq, (), depth + 1)
            if binding.kind == "param":
                return any(
                    arg is not None and self._gradients(arg, caller.scope, caller.seq, caller.ctx.repeats, depth + 1)
                    for caller, arg in self.facts.call_args_for(binding.scope, binding.name)
                )
            return False
        if t is cst.Call:
            func = expr.func
            if type(func) is cst.Attribute and func.attr.value in GRADIENT_METHODS:
                return True
            qual = qualified_name(func, scope, before) or ""
            if qual in GRADIENT_FUNCTIONS:
                return True
            if qual in PASS_THROUGH:
                return any(self._gradients(a.value, scope, before, repeats, depth + 1) for a in expr.args)
            return False
        if t in (cst.Subscript, cst.Attribute):
            return self._gradients(expr.value, scope, before, repeats, depth + 1)
        if t in (cst.List, cst.Tuple):
            return any(self._gradients(e.value, scope, before, repeats, depth + 1) for e in expr.elements)
        if t in (cst.ListComp, cst.GeneratorExp):
            return self._gradients(expr.for_in.iter, scope, before, repeats, depth + 1)
        return False

    def _is_tape(self, receiver: cst.BaseExpression, site: Site) -> bool:
        if type(receiver) is not cst.Name:
            return False
        binding = lookup(receiver.value, site.scope, site.seq)
        if binding is None or binding.value is None:
            return False
        qual = qualified_name(getattr(binding.value, "func", binding.value), binding.scope) or ""
        return qual.endswith("GradientTape")

    # -- paths -------------------------------------------------------------------------------

    def callee(self, site: Site) -> Scope | None:
        """The function of this module a call runs, when it can be told."""
        key = id(site)
        if key not in self._callees:
            self._callees[key] = self._callee(site)
        return self._callees[key]

    def local_callee(self, site: Site) -> Scope | None:
        """The function of this file a call runs, found without reading other files (callee() parses the
        file an imported name comes from): enough where only this file's functions matter."""
        key = id(site)
        if key not in self._local_callees:
            self._local_callees[key] = self._local_callee(site)
        return self._local_callees[key]

    def _callee(self, site: Site) -> Scope | None:
        target = self._local_callee(site)
        if target is None and self.facts.project is not None:
            target = self._project_callee(site)
            if target is not None:
                self.facts.project.add_caller(target, self.facts, site)
        if target is None:
            target = self.returned_function(site)
        return target

    def returned_function(self, site: Site) -> Scope | None:
        """`train_step = model.trainer(optimizer)` then `train_step(batch)`: the function the maker returns
        (a step closure defined inside a method, of this file or another)."""
        func = site.node.func
        binding = lookup(func.value, site.scope, site.seq) if type(func) is cst.Name else None
        if binding is None or binding.kind != "assign" or type(binding.value) is not cst.Call:
            return None
        made_at = self.facts.site_of(binding.value)
        maker = self.callee(made_at) if made_at is not None else None
        if maker is None:
            return None
        home = self.home(maker)
        for returned in maker.returns:
            inner = lookup(returned.value, maker, None) if type(returned) is cst.Name else None
            if inner is not None and inner.kind == "def" and inner.scope is maker:
                return next((f for f in home.index.functions if f.node is inner.node), None)
        return None

    def _project_callee(self, site: Site) -> Scope | None:
        """A function or method of another file of the project: `train_epoch(...)` imported from
        trainer.py, `trainer.train_epoch(...)`, `model.fit_epoch(...)` on an instance of an imported class."""
        func = site.node.func
        qual = qualified_name(func, site.scope, site.seq)
        if qual and not qual.startswith(LOCAL):
            found = self.facts.project.find_function(qual, self.facts.path)
            if found is not None:
                return found[1]
            # `Trainer(model, optimizer)`, `CharModel(vocab)` of another file run its `__init__` (a TF1
            # class builds its graph and training op there), and bind its parameters to these arguments.
            init = self.facts.constructor_of(site)
            if init is not None:
                return init
        if type(func) is cst.Attribute and not (type(func.value) is cst.Name and func.value.value == "self"):
            made = self.constructor(func.value, site.scope, site.seq, follow_params=False)
            for _ in range(4):
                # `model = model.cuda()`: the module itself, moved; its class is the one that built it.
                if made is None or type(made.func) is not cst.Attribute or made.func.attr.value not in RETURNS_MODULE:
                    break
                at = self.facts.site_of(made) or self.facts.project.site_of(made)
                made = self.constructor(made.func.value, at.scope, at.seq, follow_params=False) if at else None
            other = self._made_class(made) if made is not None else None
            if other is not None:
                return other[0].method(other[1], func.attr.value)
        return None

    def _made_class(self, made: cst.Call) -> "tuple[FileFacts, ClassInfo] | None":
        """The class of the project a constructor call builds, read in the file the call is in (a maker of
        another file may have built it: `model = create_model(name)`). By its name only: the call graph is
        being built, so values that follow parameters to their callers cannot be asked."""
        scope = self.scope_of_call(made)
        home = self.home(scope)
        qual = qualified_name(made.func, scope)
        project = self.facts.project
        if not qual and type(made.func) is cst.Subscript and project is not None and not project.reading_registry:
            # A registry (`model_dict[FLAGS.model](sess)`): the key's value may come through parameters,
            # whose callers the call graph being built gives: calls met while it is read (in any file of
            # the project) go without registries.
            project.reading_registry = True
            try:
                site = home.site_of(made)
                qual = home.values.class_name(made.func, scope, site.seq if site is not None else None)
            finally:
                project.reading_registry = False
        if not qual:
            return None
        if qual.startswith(LOCAL + "."):
            info = home.index.classes.get(qual[len(LOCAL) + 1 :])
            # A class of this file is found by _local_callee.
            return (home, info) if info is not None and home is not self.facts else None
        return home.imported_class(qual)

    def _local_callee(self, site: Site) -> Scope | None:
        call = site.node
        func = call.func
        if type(func) is cst.Name:
            qual = qualified_name(func, site.scope, site.seq) or ""
            if qual.startswith(LOCAL + "."):
                return self.facts.function(qual[len(LOCAL) + 1 :])
            binding = lookup(func.value, site.scope, site.seq)
            if binding is not None and binding.kind == "def":
                for scope in self.facts.index.functions:
                    if scope.node is binding.node:
                        return scope
            return None
        if type(func) is cst.Attribute:
            owner = func.value
            cls = None
            if type(owner) is cst.Name and owner.value == "self":
                cls = site.scope.cls
            else:
                made = self.constructor(owner, site.scope, site.seq, follow_params=False)
                if made is not None:
                    qual = qualified_name(made.func, site.scope) or ""
                    if qual.startswith(LOCAL + "."):
                        cls = self.facts.index.classes.get(qual[len(LOCAL) + 1 :])
            if cls is not None:
                return self.facts.method(cls, func.attr.value)
        return None

    def events(self, scope: Scope, _stack: tuple = ()) -> list[Event]:
        cached = self._events.get(id(scope))
        if cached is not None:
            return cached
        result: list[Event] = []
        for site in scope.sites:
            kind = self.classify(site)
            own_conds = tuple((c, site.scope) for c in site.ctx.conds)
            targets = []
            if type(site.node) is cst.Call and len(_stack) < 8:
                if kind == STEP:
                    # `optimizer.step(closure)` (LBFGS) runs the closure's backward before stepping.
                    targets.extend(self._closures(site))
                targets.append(self.callee(site))
            for target in targets:
                if target is not None and target is not scope and target not in _stack:
                    home = self.home(target)
                    inners = home.loops.events(target, _stack + (scope,))
                    if kind == STEP and any(e.kind in (STEP, MANUAL_STEP) for e in inners):
                        # `self.optimizer.step()` on the project's own wrapper (which clips, then steps the
                        # torch optimizer it holds): the update is the one inside, not this call.
                        kind = None
                    for inner in inners:
                        elsewhere = inner.facts or home
                        elsewhere = elsewhere if elsewhere is not self.facts else None
                        if elsewhere is not None:
                            # Reported here, at the call that runs it (its own file may never know its model).
                            self.anchors.setdefault(id(inner.site.node), (site, elsewhere))
                        result.append(
                            Event(
                                inner.kind,
                                inner.site,
                                site.ctx.loops + inner.loops,
                                own_conds + inner.conds,
                                (site,) + inner.via,
                                elsewhere,
                            )
                        )
            if kind is not None:
                result.append(Event(kind, site, site.ctx.loops, own_conds))
        if not _stack:
            self._events[id(scope)] = result
        return result

    def _closures(self, site: Site) -> list[Scope]:
        """Functions of this module passed to a call as arguments (`step(closure)`)."""
        found = []
        for arg in site.node.args:
            if type(arg.value) is not cst.Name:
                continue
            binding = lookup(arg.value.value, site.scope, site.seq)
            if binding is not None and binding.kind == "def":
                found.extend(f for f in self.facts.index.functions if f.node is binding.node)
        return found

    def paths(self) -> list[TrainingPath]:
        """Training paths from every root: the module body and each function no local code calls."""
        if self._paths is not None:
            return self._paths
        data = self.facts.source_bytes
        if data is not None and not has_training_marker(data, BACKWARD_MARKERS):
            # No backward pass can be on a path of a file that never calls one, unless the path goes on
            # into another file of the project: skip building the paths.
            if not self.facts.trains_through_project:
                self._paths = []
                return self._paths
        called: set[int] = set()
        for function in self.facts.index.functions:
            for site in function.calls:
                target = self.callee(site)
                if target is not None and target is not function:
                    called.add(id(target))
        for site in self.facts.index.scope.calls:
            target = self.callee(site)
            if target is not None:
                called.add(id(target))
        roots = [self.facts.index.scope] + [f for f in self.facts.index.functions if id(f) not in called]
        paths = []
        for root in roots:
            path = TrainingPath(root, self.events(root))
            # A script that drives its own training shows what it trains with: a one-step function it
            # never calls (no loop of its own) is left over, not training code. In a file with no driver
            # (a module of helpers) such a function is the step its importers call.
            leftover = paths and paths[0].root is self.facts.index.scope and not any(e.loops for e in path.updates)
            if path.is_training and not leftover:
                paths.append(path)
        self._paths = paths
        return paths

    def holds(self, event: Event) -> bool | None:
        """Whether every condition around the event holds with the defaults (None: unknown)."""
        result: bool | None = True
        for cond, scope in event.conds:
            truth = self.home(scope).values.truth(cond.test, scope)
            if truth is None:
                result = None
                continue
            if truth != cond.holds:
                return False
        return result


def _variable_owners(call: cst.Call, site: Site) -> list[tuple[cst.BaseExpression, Scope, int | None]]:
    """The models whose variables `apply_gradients(zip(grads, vars))`/`minimize(loss, var_list=vars)` updates,
    through names (`tvars = lstm.trainable_variables + dense.trainable_variables`)."""
    found = []
    stack = [(call if call.func.attr.value == "apply_gradients" else _keyword(call, "var_list"), site.scope, site.seq, 0)]
    while stack:
        node, scope, before, depth = stack.pop()
        if node is None:
            continue
        owners = _parameter_owners(node)
        found.extend((owner, scope, before) for owner in owners)
        if owners or depth > 3:
            continue
        for name in _names_in(node):
            binding = lookup(name, scope, before)
            if binding is not None and binding.kind == "assign" and binding.value is not None:
                stack.append((binding.value, binding.scope, binding.seq, depth + 1))
    return found


def _names_in(node: cst.CSTNode) -> list[str]:
    """Bare names among a call's arguments and containers: `zip(grads, tvars)` -> grads, tvars."""
    t = type(node)
    if t is cst.Name:
        return [node.value]
    if t is cst.Call:
        return [n for a in node.args for n in _names_in(a.value)]
    if t in (cst.List, cst.Tuple):
        return [n for e in node.elements for n in _names_in(e.value)]
    if t is cst.BinaryOperation:
        return _names_in(node.left) + _names_in(node.right)
    return []


def _reachable(loops: LoopFacts, root: Scope) -> list[Scope]:
    """`root`, the functions and methods it calls, and the classes it builds, transitively (a method
    root brings its class along)."""
    todo = [root] + (list(root.cls.methods.values()) if root.cls is not None else [])
    seen: dict[int, Scope] = {}
    while todo:
        scope = todo.pop()
        if id(scope) in seen:
            continue
        seen[id(scope)] = scope
        # A scope of another file of the project (a class whose constructor builds the graph) is read by
        # that file's facts.
        home = loops.home(scope)
        for site in scope.calls:
            target = home.loops.callee(site)
            if target is not None:
                todo.append(target)
            qual = qualified_name(site.node.func, site.scope, site.seq) or ""
            info = home.index.classes.get(qual[len(LOCAL) + 1 :]) if qual.startswith(LOCAL + ".") else None
            if info is not None:
                todo.extend(info.methods.values())
            elif target is not None and target.cls is not None and target.name == "__init__":
                todo.extend(target.cls.methods.values())  # a class of another file, built here
    return list(seen.values())


def _target_names(node: cst.CSTNode) -> set[str]:
    """Names a `for` target binds: `g`, `(g, v)`."""
    if type(node) is cst.Name:
        return {node.value}
    if type(node) in (cst.Tuple, cst.List):
        return {n for e in node.elements for n in _target_names(e.value)}
    return set()


_OPTIMIZER_NAMES = frozenset(
    {
        "SGD", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "RMSprop", "NAdam", "RAdam",
        "LBFGS", "SparseAdam", "ASGD", "Rprop", "Lion", "Adafactor", "LAMB", "Lamb", "Muon",
        "FusedAdam", "FusedLAMB", "SGDW", "AdaBelief",
    }
)


PARAMETER_METHODS = frozenset({"parameters", "named_parameters", "trainable_variables", "trainable_weights", "trainable_params"})


def _parameter_owners(node: cst.CSTNode) -> list[cst.BaseExpression]:
    """`model.parameters()`, `model.trainable_variables` ... inside an expression -> the models."""
    owners = []
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.Call:
            func = current.func
            if type(func) is cst.Attribute and func.attr.value in PARAMETER_METHODS:
                owners.append(func.value)
                continue
            stack.append(func)
            stack.extend(a.value for a in current.args)
        elif t is cst.Attribute:
            if current.attr.value in PARAMETER_METHODS:
                owners.append(current.value)
            else:
                stack.append(current.value)
        elif t in (cst.List, cst.Tuple, cst.Set):
            stack.extend(e.value for e in current.elements)
        elif t is cst.Dict:
            stack.extend(e.value for e in current.elements if type(e) is cst.DictElement)
        elif t is cst.BinaryOperation:
            stack.extend((current.left, current.right))
        elif t in (cst.ListComp, cst.GeneratorExp):
            stack.append(current.elt)
            stack.append(current.for_in.iter)
    return owners


def _method_parameter_owners(loops: LoopFacts, params: cst.BaseExpression, scope: Scope) -> list[cst.BaseExpression]:
    """`model.learnable_parameters()`: a method of the model's class (of any file) that returns its own
    parameters (`[p for p in self.parameters() if p.requires_grad]`) -> the model."""
    if type(params) is not cst.Call or type(params.func) is not cst.Attribute:
        return []
    home = loops.home(scope)
    site = home.site_of(params)
    method = home.loops.callee(site) if site is not None else None
    if method is None or method.cls is None:
        return []
    for returned in method.returns:
        if any(type(o) is cst.Name and o.value == "self" for o in _parameter_owners(returned)):
            return [params.func.value]
    return []


def along(loops: LoopFacts, expr: cst.BaseExpression, scope: Scope, before: int | None, via: tuple):
    """`expr` read where the event's own chain of calls (`via`) passes it, while it is a parameter of the
    function the chain calls: `train_epoch(model, loader, opt)` called once with the generator and its
    optimizer and once with the discriminator and its own gives each step the pair its call passes, not
    the function's first caller's. Returns (expr, scope, before, the rest of the chain)."""
    for _ in range(8):
        if type(expr) is not cst.Name or not via:
            break
        binding = lookup(expr.value, scope, before)
        if binding is None or binding.kind != "param" or binding.scope is not scope:
            break
        call_site = via[-1]
        if loops.home(call_site.scope).loops.callee(call_site) is not scope:
            break
        arg = _argument_for(call_site.node, scope, binding.name)
        if arg is None:
            break  # not passed (its default), or maybe through *args/**kwargs: the usual reading
        expr, scope, before, via = arg, call_site.scope, call_site.seq, via[:-1]
    return expr, scope, before, via


def _argument_for(call: cst.Call, function: Scope, name: str) -> cst.BaseExpression | None:
    """The argument a call of `function` passes for its parameter `name` (None: not passed, or unknown)."""
    names = [p.name.value for p in function.params]
    if name not in names:
        return None
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    if any(a.star for a in call.args):
        return None
    position = names.index(name)
    if function.cls is not None and names[0] in ("self", "cls"):
        position -= 1
    positional = [a for a in call.args if a.keyword is None]
    return positional[position].value if 0 <= position < len(positional) else None


def optimizer_params(loops: LoopFacts, event: Event, follow_names: bool = True) -> tuple[cst.BaseExpression, Scope] | None:
    """The parameters expression the optimizer stepped by `event` was built with, and its scope.

    With `follow_names`, a name (`params`) is replaced by the expression assigned to it.
    """
    found = _optimizer_params(loops, event, follow_names)
    return found[:2] if found is not None else None


def _optimizer_params(loops: LoopFacts, event: Event, follow_names: bool = True):
    """optimizer_params, with the rest of the event's chain of calls where the optimizer was found."""
    call = event.call
    if call is None or type(call.func) is not cst.Attribute or event.kind != STEP:
        return None
    receiver = call.func.value
    scope, before = event.site.scope, event.site.seq
    home = loops.home(scope).loops
    optimizer = receiver
    if home.object_kind(receiver, scope, before) == "scaler" and call.args:
        optimizer = call.args[0].value
    optimizer, scope, before, via = along(loops, optimizer, scope, before, event.via)
    loops = loops.home(scope).loops
    made = loops.constructor(optimizer, scope, before)
    if made is None:
        return None
    params = made.args[0].value if made.args and made.args[0].keyword is None else None
    for arg in made.args:
        if arg.keyword is not None and arg.keyword.value in ("params", "model_parameters"):
            params = arg.value
    if params is None:
        return None
    made_scope = loops.scope_of_call(made)
    if made_scope is not scope:
        via = ()  # built elsewhere than where the chain led: its parameters are that scope's own
    if follow_names and type(params) is cst.Name:
        binding = lookup(params.value, made_scope, None)
        if binding is not None and binding.kind == "assign" and binding.value is not None:
            return binding.value, binding.scope, via
    return params, made_scope, via


def trained_models(loops: LoopFacts, path: TrainingPath) -> list:
    """The models a training path updates: from the optimizers' parameters, else its forward calls."""
    models = []
    seen: set[int] = set()
    asked: set = set()

    def add(owner: cst.BaseExpression, scope: Scope, before: int | None) -> None:
        # Thousands of events can name one model (loops stepping one optimizer, each calling
        # `model(x)`) and model_of reads the model's whole scope: ask once per binding of a name
        # (all a name's model depends on) or per expression, else the path costs quadratic time.
        if type(owner) is cst.Name:
            key = id(lookup(owner.value, scope, before))
        else:
            key = (id(owner), id(scope), before)
        if key in asked:
            return
        asked.add(key)
        home = loops.home(scope)
        if type(owner) is cst.Name and owner.value == "self" and scope.cls is not None and home.models.is_module_class(scope.cls):
            # A module that trains itself: `self.optimizer = Adam(self.parameters())` in its `__init__`.
            info = scope.cls
            model = Model(f"class {info.name}", home.models.class_layers(info), info, info.node)
        else:
            model = home.models.model_of(owner, scope, before)
        if model is not None and id(model.node) not in seen:
            seen.add(id(model.node))
            models.append(model)

    tf_updates = []
    for event in path.updates:
        call = event.call
        if call is not None and type(call.func) is cst.Attribute and call.func.attr.value in ("apply_gradients", "minimize"):
            tf_updates.append(event)
            for owner, scope, before in _variable_owners(call, event.site):
                add(owner, scope, before)
            continue
        found = _optimizer_params(loops, event)
        if found is not None:
            params, scope, via = found
            # Read where the parameters are taken (`model` may be rebound on another branch of an if).
            at = loops.home(scope).site_of(params) if type(params) is cst.Call else None
            before = at.seq if at is not None and at.scope is scope else None
            for owner in _parameter_owners(params) or _method_parameter_owners(loops, params, scope):
                # A parameter of the helper that built the optimizer: the model this event's call passes.
                owner_expr, owner_scope, owner_before, _ = along(loops, owner, scope, before, via)
                add(owner_expr, owner_scope, owner_before)
    if models:
        return models
    if tf_updates:
        # TensorFlow trains every variable its code built unless told which (`var_list=`): the layers
        # built on the way to the update, in the graph (TF1) or for the tape (TF2).
        if any(_keyword(e.call, "var_list") is not None for e in tf_updates):
            return models
        layers = [
            layer for scope in _reachable(loops, path.root) for layer in loops.home(scope).models.scope_layers(scope)
        ]
        return [Model("the TensorFlow model", layers, None, path.root.node)] if layers else []
    # No optimizer we can read: the models the path calls forward.
    scopes = {id(path.root): path.root}
    for event in path.events:
        scopes[id(event.site.scope)] = event.site.scope
    for scope in scopes.values():
        for site in scope.calls:
            func = site.node.func
            if type(func) is cst.Name or (
                type(func) is cst.Attribute and type(func.value) is cst.Name and func.value.value == "self"
            ):
                if loops.home(scope).loops.callee(site) is None:
                    add(func, scope, site.seq)
    return models
