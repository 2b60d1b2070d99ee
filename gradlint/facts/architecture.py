"""Architecture: how deep a network's fully connected stack is, and what keeps it trainable.

A *stack* is one unit a reader would call a network: a module class, or an `nn.Sequential` /
`keras.Sequential` / functional `keras.Model` built outside a class. For each one this module
counts the fully connected layers it builds (with multiplicities: loops and comprehensions over
`range(n)`, `[...] * n`, a builder method called in a loop), whether a normalization layer is
built anywhere in it, and whether its forward pass has a residual connection. Submodules (local
classes, builder functions, classes of sibling files) are children, counted with their own
multiplicity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import libcst as cst

from gradlint.facts.index import ClassInfo, Scope, Site
from gradlint.facts.models import (
    KERAS_MODEL, KERAS_SEQUENTIAL, LINEAR, NORMALIZATION, functional_graph, functional_outputs, iter_calls,
)
from gradlint.facts.names import LOCAL, lookup, qualified_name
from gradlint.facts.values import Value

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

FUNCTIONAL_NORMS = frozenset(
    {
        "torch.nn.functional.layer_norm", "torch.nn.functional.batch_norm", "torch.nn.functional.group_norm",
        "torch.nn.functional.rms_norm", "torch.nn.functional.instance_norm", "torch.nn.utils.weight_norm",
        "torch.nn.utils.spectral_norm", "torch.nn.utils.parametrizations.weight_norm",
        "torch.nn.utils.parametrizations.spectral_norm",
    }
)
SEQUENTIAL = KERAS_SEQUENTIAL | {"torch.nn.Sequential"}
KERAS_ADD = frozenset({"keras.layers.Add", "keras.layers.add", "torch.add"})
FORWARD_METHODS = frozenset({"forward", "__call__", "call"})
# Above this a loop count is not a layer count a reader would believe (a data loop, not a stack).
MAX_REPEAT = 10_000


@dataclass
class Count:
    """A lower bound on a number of layers; `unknown` when some repeat count could not be read."""

    n: int = 0
    unknown: bool = False
    origins: list[Value] = field(default_factory=list)

    def add(self, other: "Count", times: int = 1) -> None:
        self.n += other.n * times
        self.unknown = self.unknown or other.unknown
        self.origins.extend(o for o in other.origins if o not in self.origins)


@dataclass(eq=False)
class Stack:
    label: str  # "class MLP", "nn.Sequential at line 12"
    node: cst.CSTNode  # where to report: the class name, the Sequential/Model call
    scope: Scope
    info: ClassInfo | None = None
    own: Count = field(default_factory=Count)  # fully connected layers built directly
    norm: bool = False
    residual: bool = False
    children: list[tuple["Stack", Count]] = field(default_factory=list)
    first_linear: cst.Call | None = None
    facts: "FileFacts | None" = None
    _linear: Count | None = field(default=None, repr=False)
    _flags: dict = field(default_factory=dict, repr=False)

    def linear(self, _seen: frozenset = frozenset()) -> Count:
        """Fully connected layers in the whole stack, submodules included (memoised: stacks share children)."""
        if self._linear is not None:
            return self._linear
        total = Count(self.own.n, self.own.unknown, list(self.own.origins))
        for child, times in self.children:
            if id(child) in _seen or child is self:
                continue
            inner = child.linear(_seen | {id(self)})
            total.add(Count(inner.n * times.n, inner.unknown or times.unknown, inner.origins + times.origins))
        if not _seen:
            self._linear = total
        return total

    def has_norm(self, _seen: frozenset = frozenset()) -> bool:
        return self._closure("norm", _seen)

    def has_residual(self, _seen: frozenset = frozenset()) -> bool:
        return self._closure("residual", _seen)

    def _closure(self, flag: str, _seen: frozenset) -> bool:
        cached = self._flags.get(flag)
        if cached is not None:
            return cached
        result = getattr(self, flag) or any(
            c._closure(flag, _seen | {id(self)}) for c, _ in self.children if id(c) not in _seen and c is not self
        )
        if not _seen:
            self._flags[flag] = result
        return result

    def plain_deep(self, threshold: int) -> bool:
        """At least `threshold` fully connected layers, no normalization, no residual connection."""
        return self.linear().n >= threshold and not self.has_norm() and not self.has_residual()

    def deepest_plain(self, threshold: int, _seen: frozenset = frozenset()) -> "Stack | None":
        """The innermost plain deep stack in this one (a child that is one on its own, else self)."""
        key = ("deepest", threshold)
        if key in self._flags:
            return self._flags[key]
        found = None
        for child, _ in self.children:
            if id(child) in _seen or child is self:
                continue
            found = child.deepest_plain(threshold, _seen | {id(self)})
            if found is not None:
                break
        if found is None and self.plain_deep(threshold):
            found = self
        if not _seen:
            self._flags[key] = found
        return found


class ArchitectureFacts:
    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        self._classes: dict[str, Stack] = {}
        self._functions: dict[int, list[Stack]] = {}
        self._method_times: dict[int, Count] = {}
        self._list_times: dict[int, dict[int, Count]] = {}
        self._anchors: dict[int, Stack] | None = None
        self._open: set[int] = set()
        self._imports = True
        self._iterations: dict[int, Count] = {}

    # -- the stacks of the file --------------------------------------------------------------

    def stacks(self) -> list[Stack]:
        """Every network the file builds: its module classes and the Sequential/Model calls outside them."""
        result = []
        for info in self.facts.index.classes.values():
            if self.facts.models.is_module_class(info):
                result.append(self.class_stack(info))
        for scope in [self.facts.index.scope] + self.facts.index.functions:
            if scope.cls is None and not _inside_class(scope):
                result.extend(self.function_stacks(scope))
        return result

    def plain_deep_stacks(self, threshold: int) -> list[Stack]:
        """Stacks deep and plain on their own, none of whose children is (the innermost one is reported)."""
        return [s for s in self.stacks() if s.deepest_plain(threshold) is s]

    def stack_of_model(self, model) -> Stack | None:
        """The stack a `models.Model` is: its class, or the Sequential/Model call that builds it."""
        if model is None:
            return None
        if model.info is not None:
            owner = self.facts
            if model.info.name in owner.index.classes and owner.index.classes[model.info.name] is model.info:
                return self.class_stack(model.info)
            for layer in model.layers:
                other = layer.facts
                if other is not self.facts and model.info.name in other.index.classes:
                    return other.architecture.class_stack(model.info, imports=False)
            return None
        if model.node is not None:
            anchors = self._anchor_map()
            if id(model.node) in anchors:
                return anchors[id(model.node)]
            if isinstance(model.node, cst.FunctionDef):
                for scope in self.facts.index.functions:
                    if scope.node is model.node:
                        stacks = self.function_stacks(scope)
                        return stacks[0] if len(stacks) == 1 else None
        return None

    def _anchor_map(self) -> dict[int, Stack]:
        if self._anchors is None:
            self._anchors = {}
            for scope in [self.facts.index.scope] + self.facts.index.functions:
                if scope.cls is None and not _inside_class(scope):
                    for stack in self.function_stacks(scope):
                        self._anchors[id(stack.node)] = stack
        return self._anchors

    # -- classes -----------------------------------------------------------------------------

    def class_stack(self, info: ClassInfo, imports: bool = True) -> Stack:
        """The stack of a module class. `imports=False` (a class seen from another file) stops at this file."""
        cached = self._classes.get(info.name)
        if cached is not None:
            return cached
        if not imports:
            saved, self._imports = self._imports, False
            try:
                return self.class_stack(info)
            finally:
                self._imports = saved
        stack = Stack(f"class {info.name}", info.node.name, info.scope, info, facts=self.facts)
        self._classes[info.name] = stack  # before recursing: a class that builds itself ends here
        forward_like = self._forward_scopes(info)
        # Layers built on the two sides of an if/else are alternatives: the larger side counts.
        branches: dict[int, dict[bool, Stack]] = {}
        for name, scope in info.methods.items():
            for site in scope.calls:
                qual = qualified_name(site.node.func, scope, site.seq) or ""
                if not self._relevant(qual):
                    continue
                branch = self._branch(site)
                if branch is False:
                    continue  # a branch that does not run with the defaults
                target = stack
                if branch is not None:
                    sides = branches.setdefault(id(branch[0]), {})
                    target = sides.get(branch[1])
                    if target is None:
                        target = sides[branch[1]] = Stack(stack.label, stack.node, scope, info, facts=self.facts)
                # Lazy: reading loop bounds costs a value resolution, and most calls are not layers.
                times = (lambda site=site, scope=scope: _times(self.site_times(site), self._method_times_of(scope, info)))
                self._add_call(target, site.node, scope, site.seq, times)
            if scope in forward_like and _has_residual(self.facts, scope, loose=True):
                stack.residual = True
        for sides in branches.values():
            best = max(sides.values(), key=lambda b: b.linear().n)
            stack.own.add(best.own)
            stack.children.extend(best.children)
            if stack.first_linear is None:
                stack.first_linear = best.first_linear
            stack.norm = stack.norm or any(b.norm for b in sides.values())
            stack.residual = stack.residual or any(b.residual for b in sides.values())
        # A base class's layers are ours only when we do not build our own in __init__ (an overriding
        # __init__ may skip the base's, or replace its attributes).
        if "__init__" not in info.methods:
            for base in info.node.bases:
                qual = qualified_name(base.value, info.outer) or ""
                child = self._class_ref(qual)
                if child is not None:
                    stack.children.append((child, Count(1)))
        return stack

    def _relevant(self, qual: str) -> bool:
        return bool(qual) and (
            qual in LINEAR or qual in NORMALIZATION or qual in FUNCTIONAL_NORMS or qual in KERAS_ADD
            or qual.startswith(LOCAL + ".") or (self._imports and qual.rsplit(".", 1)[-1][:1].isupper())
        )

    def _branch(self, site: Site):
        """The outermost if/else side a call is on: (if node, side); None when on no side; False when dead."""
        for cond in site.ctx.conds:
            truth = self.facts.values.truth(cond.test, site.scope)
            if truth is not None and truth != cond.holds:
                return False
        if site.ctx.conds:
            cond = site.ctx.conds[0]
            if self.facts.values.truth(cond.test, site.scope) is None:
                return (cond.node, cond.holds)
        return None

    def _forward_scopes(self, info: ClassInfo) -> list[Scope]:
        scopes = [s for n, s in info.methods.items() if n in FORWARD_METHODS or "forward" in n]
        # Helpers the forward pass calls on self.
        for scope in list(scopes):
            for site in scope.calls:
                target = self.facts.loops.local_callee(site)
                if target is not None and target.cls is info and target not in scopes:
                    scopes.append(target)
        return scopes

    def _method_times_of(self, scope: Scope, info: ClassInfo, _seen: frozenset = frozenset()) -> Count:
        """How many times a method that builds layers runs: the sum over its callers in the class."""
        cached = self._method_times.get(id(scope))
        if cached is not None:
            return cached
        total = Count()
        callers = 0
        for other in info.methods.values():
            if other is scope or id(other) in _seen:
                continue
            for site in other.calls:
                if self.facts.loops.local_callee(site) is scope:
                    callers += 1
                    outer = self._method_times_of(other, info, _seen | {id(scope)})
                    total.add(_times(self.site_times(site), outer))
        result = total if callers else Count(1)
        if not _seen:
            self._method_times[id(scope)] = result
        return result

    def _class_ref(self, qual: str) -> Stack | None:
        if qual.startswith(LOCAL + "."):
            info = self.facts.index.classes.get(qual[len(LOCAL) + 1 :])
            if info is not None and self.facts.models.is_module_class(info):
                return self.class_stack(info)
            return None
        # Another file of the folder: only names that read as classes, one file deep.
        if qual and self._imports and qual.rsplit(".", 1)[-1][:1].isupper():
            other = self.facts.imported_class(qual)
            if other is not None:
                facts, info = other
                return facts.architecture.class_stack(info, imports=False)
        return None

    def _add_call(self, stack: Stack, call: cst.Call, scope: Scope, before: int | None, times) -> None:
        qual = qualified_name(call.func, scope, before) or ""
        if not (qual in LINEAR or qual.startswith(LOCAL + ".") or (qual and self._imports and qual.rsplit(".", 1)[-1][:1].isupper())):
            if qual in NORMALIZATION or qual in FUNCTIONAL_NORMS:
                stack.norm = True
            elif qual in KERAS_ADD:
                stack.residual = True
            return
        if callable(times):
            times = times()
        if qual in LINEAR:
            stack.own.add(times)
            if stack.first_linear is None:
                stack.first_linear = call
        elif qual in NORMALIZATION or qual in FUNCTIONAL_NORMS:
            stack.norm = True
        elif qual in KERAS_ADD:
            stack.residual = True
        elif qual.startswith(LOCAL + "."):
            child = self._class_ref(qual)
            if child is not None:
                stack.children.append((child, times))
                return
            function = self.facts.function(qual[len(LOCAL) + 1 :])
            if function is not None and id(function) not in self._open:
                inners = self.function_stacks(function)
                for inner in inners:
                    if inner is not stack:
                        stack.children.append((inner, times))
                if not inners:
                    # A builder with no Sequential of its own (a list, a ModuleList): its layers are ours.
                    self._open.add(id(function))
                    for site in function.calls:
                        self._add_call(stack, site.node, function, site.seq, _times(times, self.site_times(site)))
                    self._open.discard(id(function))
        elif qual:
            child = self._class_ref(qual)
            if child is not None:
                stack.children.append((child, times))

    # -- Sequential and functional models outside classes ------------------------------------

    def function_stacks(self, scope: Scope) -> list[Stack]:
        """The Sequential / keras.Model calls a function (or the module body) builds, outermost only."""
        cached = self._functions.get(id(scope))
        if cached is not None:
            return cached
        self._functions[id(scope)] = []
        anchors = []
        for site in scope.calls:
            qual = qualified_name(site.node.func, scope, site.seq) or ""
            if qual in SEQUENTIAL or qual in KERAS_MODEL:
                anchors.append((site, qual))
        nested: set[int] = set()
        for site, _ in anchors:
            for arg in site.node.args:
                nested.update(id(c) for c in iter_calls(arg.value))
        stacks = []
        for site, qual in anchors:
            if id(site.node) in nested:
                continue
            short = "nn.Sequential" if qual == "torch.nn.Sequential" else qual.replace("keras.models.", "keras.")
            stack = Stack(f"{short} at line {self.facts.line(site.node)}", site.node, scope, facts=self.facts)
            if qual in SEQUENTIAL:
                self._fill_sequential(stack, site, scope, anchors)
            else:
                self._fill_functional(stack, site, scope, anchors)
            stacks.append(stack)
        self._functions[id(scope)] = stacks
        return stacks

    def _fill_sequential(self, stack: Stack, site: Site, scope: Scope, anchors) -> None:
        list_times = self._list_multipliers(scope)
        exprs: list[cst.BaseExpression] = []
        for arg in site.node.args:
            value = arg.value
            if type(value) is cst.Name:
                exprs.extend(self._list_contents(value.value, scope, site.seq))
            else:
                exprs.append(value)
        # `model = Sequential(...)` then `model.add(...)`, until the name is bound to another model (a
        # notebook builds `model` again in a later cell).
        target = _assigned_name(scope, site)
        if target is not None:
            own = next((b for b in scope.bindings.get(target, []) if b.seq > site.seq), None)
            if own is not None:
                window = _window(target, scope, own.seq)
                exprs.extend(self._added_to(target, scope, ("add", "add_module", "append"), window))
        for expr in exprs:
            for call in iter_calls(expr):
                inner = self.facts.site_of(call)
                times = self.site_times(inner) if inner is not None else Count(1)
                extra = list_times.get(id(call))
                if extra is not None:
                    times = _times(times, extra)
                self._add_call(stack, call, scope, inner.seq if inner else None, times)

    def _fill_functional(self, stack: Stack, site: Site, scope: Scope, anchors) -> None:
        """The layers on the way from the model's inputs to its outputs (not every layer of the scope: a
        script often builds an encoder model and an autoencoder from the same layers)."""
        outputs = functional_outputs(site.node)
        if outputs is None:
            return
        inside: set[int] = set()
        for other, qual in anchors:
            if qual in SEQUENTIAL:
                for arg in other.node.args:
                    inside.update(id(c) for c in iter_calls(arg.value))
        for node, where in functional_graph(outputs, scope, site.seq):
            if type(node) is cst.BinaryOperation and _residual_add(node, loose=True):
                stack.residual = True
            if type(node) is not cst.Call or id(node) in inside:
                continue
            qual = qualified_name(node.func, where) or ""
            if qual in SEQUENTIAL or qual in KERAS_MODEL:
                continue
            inner = self.facts.site_of(node)
            times = self.site_times(inner) if inner is not None else Count(1)
            self._add_call(stack, node, where, inner.seq if inner else None, times)

    def _list_contents(self, name: str, scope: Scope, point: int) -> list[cst.BaseExpression]:
        """What a list name holds at `point`: the values it was assigned and what is appended/extended/added
        to it since it was last bound anew."""
        window = _window(name, scope, point)
        exprs: list[cst.BaseExpression] = []
        for binding in scope.bindings.get(name, []):
            if binding.kind in ("assign", "aug") and binding.value is not None and _within(binding.seq, window):
                exprs.append(binding.value)
        exprs.extend(self._added_to(name, scope, ("append", "extend", "insert", "add_module", "add"), window))
        return exprs

    def _added_to(
        self, name: str, scope: Scope, methods: tuple[str, ...], window: tuple[int, int | None]
    ) -> list[cst.BaseExpression]:
        exprs = []
        for site in scope.calls:
            func = site.node.func
            if (
                type(func) is cst.Attribute
                and func.attr.value in methods
                and type(func.value) is cst.Name
                and func.value.value == name
                and _within(site.seq, window)
            ):
                exprs.extend(a.value for a in site.node.args)
        return exprs

    def _list_multipliers(self, scope: Scope) -> dict[int, Count]:
        """Calls inside `[...] * n` in a scope -> n (nested products multiply)."""
        cached = self._list_times.get(id(scope))
        if cached is not None:
            return cached
        result: dict[int, Count] = {}
        roots: list[cst.CSTNode] = []
        for site in scope.sites:
            node = site.node
            if type(node) in (cst.Assign, cst.AnnAssign, cst.AugAssign):
                if node.value is not None:
                    roots.append(node.value)
            elif type(node) is cst.Call:
                roots.extend(a.value for a in node.args)
        done: set[int] = set()
        for root in roots:
            for product in _products(root):
                if id(product) in done:
                    continue
                done.add(id(product))
                seq_side, n_side = (
                    (product.left, product.right)
                    if type(product.left) in (cst.List, cst.Tuple, cst.ListComp)
                    else (product.right, product.left)
                )
                times = _count_of(self.value(n_side, scope))
                for call in iter_calls(seq_side):
                    previous = result.get(id(call))
                    result[id(call)] = times if previous is None else _times(previous, times)
        self._list_times[id(scope)] = result
        return result

    # -- multiplicities ----------------------------------------------------------------------

    def site_times(self, site: Site) -> Count:
        """How many times a call runs where it is written: the product of the loops around it."""
        total = Count(1)
        for node in site.ctx.repeats:
            total = _times(total, self.iterations(node, site.scope))
        return total

    def iterations(self, node: cst.CSTNode, scope: Scope) -> Count:
        """Iterations of a for-loop or comprehension, when they can be read."""
        cached = self._iterations.get(id(node))
        if cached is None:
            cached = self._iterations[id(node)] = self._count_iterations(node, scope)
        return cached

    def _count_iterations(self, node: cst.CSTNode, scope: Scope) -> Count:
        if type(node) is cst.For:
            return self.length(node.iter, scope)
        comp = getattr(node, "for_in", None)
        total = Count(1)
        while comp is not None:
            total = _times(total, self.length(comp.iter, scope))
            comp = comp.inner_for_in
        return total

    def length(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> Count:
        if depth > 6:
            return Count(0, True)
        t = type(expr)
        if t is cst.Call:
            qual = qualified_name(expr.func, scope) or ""
            args = [a.value for a in expr.args if a.keyword is None and not a.star]
            if qual == "range" and 1 <= len(args) <= 3:
                values = [self.integer(a, scope, depth) for a in args]
                if any(v is None for v in values):
                    return Count(0, True)
                nums = [v.value for v in values]
                start, stop, step = (0, nums[0], 1) if len(nums) == 1 else (nums[0], nums[1], nums[2] if len(nums) == 3 else 1)
                if step == 0:
                    return Count(0, True)
                n = max(0, math.ceil((stop - start) / step))
                if n > MAX_REPEAT:
                    return Count(0, True)
                return Count(n, False, [v for v in values if v.origin != "literal"])
            if qual in ("enumerate", "reversed", "list", "tuple", "sorted") and args:
                return self.length(args[0], scope, depth + 1)
            if qual == "zip" and args:
                counts = [self.length(a, scope, depth + 1) for a in args]
                if any(c.unknown for c in counts):
                    return Count(0, True)
                best = min(counts, key=lambda c: c.n)
                return best
            return Count(0, True)
        if t in (cst.List, cst.Tuple):
            if any(type(e) is cst.StarredElement for e in expr.elements):
                return Count(0, True)
            if expr.elements and all(type(e.value) in (cst.SimpleString, cst.ConcatenatedString) for e in expr.elements):
                # A loop over names ("input", "forget", ...) builds parallel branches: width, not depth.
                return Count(1)
            return Count(len(expr.elements))
        if t is cst.Subscript and len(expr.slice) == 1 and type(expr.slice[0].slice) is cst.Slice:
            inner = self.value(expr.value, scope)
            sl = expr.slice[0].slice
            if inner is None or not isinstance(inner.value, (tuple, list, str)):
                return Count(0, True)
            bounds = []
            for part in (sl.lower, sl.upper, sl.step):
                if part is None:
                    bounds.append(None)
                    continue
                v = self.value(part, scope)
                if v is None or not isinstance(v.value, int):
                    return Count(0, True)
                bounds.append(v.value)
            return Count(len(inner.value[slice(*bounds)]), False, _named([inner]))
        v = self.value(expr, scope)
        if v is not None and isinstance(v.value, (tuple, list, str)):
            return Count(len(v.value), False, _named([v]))
        if t is cst.Name:
            binding = lookup(expr.value, scope)
            if binding is not None and binding.kind == "assign" and type(binding.value) in (cst.List, cst.Tuple):
                return self.length(binding.value, binding.scope, depth + 1)
        return Count(0, True)

    def value(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> Value | None:
        """facts.values, plus a constructor's parameters: `MLP(32, depth=10)` gives `__init__`'s `depth`."""
        if depth > 4:
            return None
        if type(expr) is cst.Attribute and type(expr.value) is cst.Name and expr.value.value == "self" and scope.cls:
            bindings = scope.cls.self_attrs.get(expr.attr.value, [])
            if len(bindings) == 1 and bindings[0].value is not None:
                return self.value(bindings[0].value, bindings[0].scope, depth + 1)
        if type(expr) is cst.Name:
            binding = lookup(expr.value, scope)
            if binding is not None and binding.kind == "param":
                passed = self._constructor_args(binding, depth)
                if passed is not None:
                    return passed or None
        return self.facts.values.value(expr, scope)

    def _constructor_args(self, binding, depth: int):
        """The value the class's instantiations pass for an `__init__` parameter.

        None: not an `__init__` parameter, or nobody passes it (the default stands); False: the
        callers pass something unreadable or disagree.
        """
        owner = binding.scope
        info = owner.cls
        if info is None or not isinstance(owner.node, cst.FunctionDef) or owner.node.name.value != "__init__":
            return None
        names = [p.name.value for p in owner.params]
        position = names.index(binding.name) - 1
        passed = []
        for site in self.facts.index.all_sites:
            call = site.node
            if type(call) is not cst.Call or qualified_name(call.func, site.scope, site.seq) != f"{LOCAL}.{info.name}":
                continue
            arg = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == binding.name), None)
            positional = [a.value for a in call.args if a.keyword is None and not a.star]
            if arg is None and any(a.star for a in call.args):
                return False
            if arg is None and 0 <= position < len(positional):
                arg = positional[position]
            if arg is None:
                continue
            found = self.value(arg, site.scope, depth + 1)
            if found is None:
                return False
            passed.append(found)
        if not passed:
            return None
        return passed[0] if len({repr(p.value) for p in passed}) == 1 else False

    def integer(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> Value | None:
        """An int-valued expression, `len(x)` included."""
        if type(expr) is cst.Call and (qualified_name(expr.func, scope) or "") == "len" and len(expr.args) == 1:
            count = self.length(expr.args[0].value, scope, depth + 1)
            if count.unknown:
                return None
            origin = count.origins[0] if count.origins else None
            return Value(count.n, origin.origin if origin else "literal", origin.node if origin else expr)
        v = self.value(expr, scope)
        if v is None or isinstance(v.value, bool) or not isinstance(v.value, (int, float)):
            return None
        if isinstance(v.value, float) and not v.value.is_integer():
            return None
        return Value(int(v.value), v.origin, v.node)


# -- helpers over small subtrees ---------------------------------------------------------------


def _named(values: list[Value]) -> list[Value]:
    return [v for v in values if v.origin != "literal"]


def _count_of(v: Value | None) -> Count:
    if v is None or isinstance(v.value, bool) or not isinstance(v.value, int) or not 0 <= v.value <= MAX_REPEAT:
        return Count(0, True)
    return Count(v.value, False, _named([v]))


def _times(a: Count, b: Count) -> Count:
    return Count(a.n * b.n, a.unknown or b.unknown, a.origins + [o for o in b.origins if o not in a.origins])


def _window(name: str, scope: Scope, point: int) -> tuple[int, int | None]:
    """The stretch of a scope in which `name` holds what it was last assigned at `point`: from that
    assignment to the next one (None: to the end)."""
    start, end = -1, None
    for binding in scope.bindings.get(name, []):
        if binding.kind != "assign":
            continue
        if binding.seq <= point:
            start = binding.seq
        elif end is None:
            end = binding.seq
    return start, end


def _within(seq: int, window: tuple[int, int | None]) -> bool:
    start, end = window
    return seq >= start and (end is None or seq < end)


def _inside_class(scope: Scope) -> bool:
    current = scope.parent
    while current is not None:
        if current.cls is not None:
            return True
        current = current.parent
    return False


def _assigned_name(scope: Scope, site: Site) -> str | None:
    stmt = site.ctx.stmt
    if type(stmt) is cst.Assign and stmt.value is site.node and len(stmt.targets) == 1:
        target = stmt.targets[0].target
        if type(target) is cst.Name:
            return target.value
    return None


def _products(node: cst.CSTNode) -> Iterator[cst.BinaryOperation]:
    """`[...] * n` / `n * [...]` inside an expression."""
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.BinaryOperation:
            if type(current.operator) is cst.Multiply and (
                type(current.left) in (cst.List, cst.Tuple, cst.ListComp)
                or type(current.right) in (cst.List, cst.Tuple, cst.ListComp)
            ):
                yield current
            stack.extend((current.left, current.right))
        elif t is cst.Call:
            stack.extend(a.value for a in current.args)
        elif t in (cst.List, cst.Tuple):
            stack.extend(e.value for e in current.elements)
        elif t is cst.StarredElement:
            stack.append(current.value)


def _number(node: cst.CSTNode) -> bool:
    if type(node) is cst.UnaryOperation:
        node = node.expression
    return type(node) in (cst.Integer, cst.Float)


def _residual_add(node: cst.CSTNode, loose: bool) -> bool:
    """`x + f(x)`, `f(x) + x`, `x + h`: an addition with a variable on one side."""
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.BinaryOperation:
            if type(current.operator) is cst.Add and not _number(current.left) and not _number(current.right):
                sides = (current.left, current.right)
                names = [s for s in sides if type(s) in (cst.Name, cst.Subscript)]
                calls = [s for s in sides if type(s) is cst.Call]
                if (loose and names) or (names and calls):
                    return True
            stack.extend((current.left, current.right))
        elif t is cst.Call:
            stack.extend(a.value for a in current.args)
        elif t in (cst.List, cst.Tuple):
            stack.extend(e.value for e in current.elements)
        elif t is cst.IfExp:
            stack.extend((current.body, current.orelse))
    return False


def _has_residual(facts: "FileFacts", scope: Scope, loose: bool) -> bool:
    roots: list[cst.CSTNode] = list(scope.returns)
    for site in scope.sites:
        node = site.node
        t = type(node)
        if t is cst.AugAssign:
            if type(node.operator) is cst.AddAssign and not _number(node.value) and (
                loose or type(node.value) is cst.Call
            ):
                return True
        elif t in (cst.Assign, cst.AnnAssign):
            if node.value is not None:
                roots.append(node.value)
        elif t is cst.Call:
            qual = qualified_name(node.func, scope, site.seq) or ""
            if qual in KERAS_ADD:
                return True
            roots.extend(a.value for a in node.args)
    return any(_residual_add(r, loose) for r in roots)
