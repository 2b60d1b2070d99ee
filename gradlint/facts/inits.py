"""Weight initialisation: which calls draw weights, at what scale, and for how many layers.

Forms: `nn.init.normal_(w, mean, std)`, `nn.init.uniform_(w, a, b)`, the tensor methods
`w.data.normal_(mean, std)` / `w.uniform_(from, to)`, and an unscaled `torch.randn(fan_in, fan_out)`
made a parameter (`nn.Parameter(torch.randn(...))`, `torch.randn(..., requires_grad=True)`).
An init that targets a loop variable over `model.modules()` or the argument of a function applied
with `model.apply(fn)` covers every layer of the model its `isinstance` guard admits. An init in a layer
class counts once per copy a network builds (`nn.Sequential(MyLinear(...), MyLinear(...), ...)`), and one
in a comprehension (`[torch.randn(d, d, requires_grad=True) for _ in range(12)]`) once per iteration.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.architecture import Count
from gradlint.facts.index import ClassInfo, Scope, Site, dotted
from gradlint.facts.models import EMBEDDING, NORMALIZATION, Layer, iter_calls
from gradlint.facts.names import LOCAL, lookup, qualified_name
from gradlint.facts.values import Value, _arg

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

NORMAL = frozenset({"torch.nn.init.normal_", "torch.nn.init.normal"})
UNIFORM = frozenset({"torch.nn.init.uniform_", "torch.nn.init.uniform"})
RANDN = frozenset({"torch.randn"})
PARAMETER = frozenset({"torch.nn.Parameter", "torch.nn.parameter.Parameter"})
CONTAINERS = frozenset({"torch.nn.Sequential", "torch.nn.ModuleList", "keras.Sequential", "keras.models.Sequential"})
MODULE_ITERATORS = frozenset({"modules", "named_modules", "children", "named_children"})
PARAM_ITERATORS = frozenset({"parameters", "named_parameters"})
_EMBEDDING_NAME = re.compile(r"(embed|token|(^|_)(emb|embs|wte|wpe|tok|pos|cls)(_|$|\d))", re.IGNORECASE)
# Layers whose weight is a matrix that feeds the next layer.
WEIGHTED = ("Linear", "Conv", "Bilinear", "Dense", "RNN", "LSTM", "GRU")


@dataclass(eq=False)
class Init:
    call: cst.Call
    site: Site
    form: str  # "nn.init.normal_", ".normal_", "torch.randn" ...
    scale: Value  # std, or the largest bound in absolute value
    target: str  # source text of what is initialised
    group: object  # the network: a ClassInfo, or the scope of manual weights
    count: Count  # how many weight tensors this one call initialises
    exempt: str | None = None  # why it does not count: "embedding table", "bias" ...
    covers: str = ""  # "the 4 Linear layers of class MLP"


class InitFacts:
    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        self._all: list[Init] | None = None
        self._instance_counts: dict[int, int] = {}

    def all(self) -> list[Init]:
        if self._all is None:
            self._all = []
            for site in self.facts.index.all_sites:
                if type(site.node) is cst.Call:
                    found = self._init(site)
                    if found is not None:
                        self._all.append(found)
        return self._all

    def oversized(self, minimum: int = 3) -> list[tuple[Init, int]]:
        """Inits drawing at a scale >= 1, in networks where at least `minimum` weight tensors are so drawn."""
        big = [i for i in self.all() if i.exempt is None and _large(i.scale.value)]
        totals: dict[int, int] = {}
        for init in big:
            totals[id(init.group)] = totals.get(id(init.group), 0) + init.count.n * self._instances(init.group)
        return [(i, totals[id(i.group)]) for i in big if totals[id(i.group)] >= minimum]

    def _instances(self, group: object) -> int:
        """How many copies of a layer class a network builds (its weights are drawn once per copy):
        calls inside another module class or inside an nn.Sequential/ModuleList, loops and comprehensions
        counted. 1 when none does: a model built on its own (twice for a target network is still one)."""
        if not isinstance(group, ClassInfo):
            return 1
        if id(group) not in self._instance_counts:
            total = 0
            arch = self.facts.architecture
            for site in self.facts.index.all_sites:
                call = site.node
                if type(call) is not cst.Call or qualified_name(call.func, site.scope, site.seq) != f"{LOCAL}.{group.name}":
                    continue
                if self._built_into_network(site, group):
                    total += arch.site_times(site).n
            self._instance_counts[id(group)] = max(total, 1)
        return self._instance_counts[id(group)]

    def _built_into_network(self, site: Site, layer_class: ClassInfo) -> bool:
        owner = site.scope.cls
        if owner is not None and owner is not layer_class and self.facts.models.is_module_class(owner):
            return True
        stmt = site.ctx.stmt
        value = getattr(stmt, "value", None)
        if value is None:
            return False
        for container in iter_calls(value):
            qual = qualified_name(container.func, site.scope, site.seq) or ""
            if qual in CONTAINERS and any(c is site.node for a in container.args for c in iter_calls(a.value)):
                return True
        return False

    # -- one call ----------------------------------------------------------------------------

    def _init(self, site: Site) -> Init | None:
        call = site.node
        scope = site.scope
        qual = qualified_name(call.func, scope, site.seq) or ""
        values = self.facts.values
        if qual in NORMAL:
            target = _arg(call, 0, "tensor")
            std = _arg(call, 2, "std")
            scale = values.value(std, scope, site.seq) if std is not None else Value(1.0, "the default std=1.0", call)
            form = "nn.init." + qual.rsplit(".", 1)[-1]
        elif qual in UNIFORM:
            target = _arg(call, 0, "tensor")
            scale = self._bound(call, scope, site, (1, "a", 0.0), (2, "b", 1.0))
            form = "nn.init." + qual.rsplit(".", 1)[-1]
        elif type(call.func) is cst.Attribute and call.func.attr.value in ("normal_", "uniform_") and not qual.startswith("torch.nn.init"):
            target = call.func.value
            if type(target) is cst.Call:
                target = _assigned(site) or target
            if call.func.attr.value == "normal_":
                std = _arg(call, 1, "std")
                scale = values.value(std, scope, site.seq) if std is not None else Value(1.0, "the default std=1", call)
            else:
                scale = self._bound(call, scope, site, (0, "from", 0.0), (1, "to", 1.0))
            form = "." + call.func.attr.value
        elif qual in RANDN:
            target = self._randn_target(call, site)
            if target is None:
                return None
            scale = Value(1.0, "torch.randn (std 1, unscaled)", call)
            form = "torch.randn"
        else:
            return None
        if target is None or scale is None or not isinstance(scale.value, (int, float)) or isinstance(scale.value, bool):
            return None
        return self._place(call, site, form, scale, target)

    def _bound(self, call, scope, site, low, high) -> Value | None:
        bounds = []
        for position, keyword, default in (low, high):
            node = _arg(call, position, keyword)
            v = self.facts.values.value(node, scope, site.seq) if node is not None else Value(default, "the default bounds (0, 1)", call)
            if v is None or not isinstance(v.value, (int, float)) or isinstance(v.value, bool):
                return None
            bounds.append(v)
        return max(bounds, key=lambda v: abs(v.value))

    def _randn_target(self, call: cst.Call, site: Site) -> cst.BaseExpression | None:
        """`nn.Parameter(torch.randn(a, b))` / `w = torch.randn(a, b, requires_grad=True)`, unscaled, 2-D."""
        sizes = [a.value for a in call.args if a.keyword is None and not a.star]
        if len(sizes) == 1 and type(sizes[0]) in (cst.Tuple, cst.List):
            sizes = [e.value for e in sizes[0].elements]
        if len(sizes) != 2:
            return None
        rows = self.facts.values.value(sizes[0], site.scope, site.seq)
        if rows is not None and rows.value == 1:
            return None  # a row vector: a token or a scale, not a weight matrix (a column is a layer to one unit)
        stmt = site.ctx.stmt
        if type(stmt) is not cst.Assign or len(stmt.targets) != 1:
            return None
        value = stmt.value
        # A list of weights: `[torch.randn(d, d, requires_grad=True) for _ in range(12)]`, also in a ParameterList.
        if type(value) is cst.Call and (qualified_name(value.func, site.scope, site.seq) or "").endswith("ParameterList") and value.args:
            value = value.args[0].value
        if type(value) is cst.ListComp:
            value = value.elt
        if type(value) is cst.Call and value is call:
            grad = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == "requires_grad"), None)
            if grad is None or not (type(grad) is cst.Name and grad.value == "True"):
                return None
            target = stmt.targets[0].target
            # A tensor with requires_grad is a weight only if something updates it (tests draw inputs so).
            if type(target) is not cst.Name or not self._updated(target.value):
                return None
            return target
        if type(value) is cst.Call and len(value.args) >= 1 and value.args[0].value is call:
            qual = qualified_name(value.func, site.scope, site.seq) or ""
            if qual in PARAMETER:
                return stmt.targets[0].target
        return None

    # -- what the call initialises -----------------------------------------------------------

    def _place(self, call, site: Site, form: str, scale: Value, target: cst.BaseExpression) -> Init:
        scope = site.scope
        text = self.facts.code(target).strip()
        parts = (dotted(target) or text).split(".")
        parts = [p for p in parts if p != "data"]
        init = Init(call, site, form, scale, text, _group(scope), self.facts.architecture.site_times(site))
        last = parts[-1] if parts else ""
        if "bias" in last.lower():
            init.exempt = "bias"
            return init
        if any(_EMBEDDING_NAME.search(p) for p in parts):
            init.exempt = "embedding table"
            return init
        if len(parts) >= 2 and parts[0] == "self" and scope.cls is not None:
            if not self._is_weight(parts, scope, site):
                init.exempt = "not a weight (noise or data)"
                return init
            layer = self._self_layer(parts[1], scope)
            if layer is not None and (layer in EMBEDDING or layer in NORMALIZATION):
                init.exempt = "embedding table" if layer in EMBEDDING else "normalization weight"
            return init
        base = parts[0]
        if not self._is_weight(parts, scope, site):
            init.exempt = "not a weight (noise or data)"
            return init
        binding = lookup(base, scope, site.seq)
        if binding is not None and binding.kind == "unpack" and type(binding.node) is cst.For:
            binding = type(binding)(binding.name, "for", binding.node, None, binding.scope, binding.seq)
        if binding is None or binding.kind not in ("for", "param"):
            return init
        guard = self._guard(site, base)
        if guard is not None and guard and all(g in EMBEDDING or g in NORMALIZATION or _short(g) in ("Embedding", "LayerNorm", "BatchNorm") for g in guard):
            init.exempt = "embedding table" if any(g in EMBEDDING for g in guard) else "normalization weight"
            return init
        found = self._covered_layers(binding, site)
        if found is None:
            return init  # a loop over a list of weights: counted by the loop's length
        owner, layers = found
        chosen = [l for l in layers if _matches(l, guard)]
        if guard is None:
            chosen = [l for l in chosen if any(w in l.short for w in WEIGHTED)]
        total = Count()
        arch = self.facts.architecture
        for layer in chosen:
            total.add(arch.site_times(layer.site) if layer.site is not None and layer.facts is self.facts else Count(1))
        init.count = total
        init.group = owner
        kinds = sorted({l.short for l in chosen})
        init.covers = f"the {total.n} {'/'.join(kinds)} layers of {_label(owner)}" if chosen else ""
        return init

    def _updated(self, name: str) -> bool:
        """Whether an optimizer is built over `name` or a manual update writes it from a gradient."""
        from gradlint.facts.loops import _mentions_grad

        for site in self.facts.index.all_sites:
            node = site.node
            if type(node) is cst.Call:
                if self.facts.optimizers.from_call(node, site) is not None and any(
                    _mentions_name(a.value, name) for a in node.args
                ):
                    return True
                func = node.func
                if (
                    type(func) is cst.Attribute and func.attr.value in ("sub_", "add_", "copy_")
                    and self._writes(func.value, name, site)
                    and any(_mentions_grad(a.value) for a in node.args)
                ):
                    return True
            elif type(node) in (cst.AugAssign, cst.Assign):
                targets = [node.target] if type(node) is cst.AugAssign else [t.target for t in node.targets]
                if any(self._writes(t, name, site) for t in targets) and _mentions_grad(node.value):
                    return True
        return False

    def _writes(self, target: cst.BaseExpression, name: str, site: Site) -> bool:
        """Whether `target` is `name` (or part of it), or a loop variable over it (`for w in weights`)."""
        head = (dotted(target) or "").split(".")[0]
        if head == name:
            return True
        binding = lookup(head, site.scope, site.seq) if head else None
        return (
            binding is not None and binding.kind == "for" and type(binding.node) is cst.For
            and type(binding.node.iter) is cst.Name and binding.node.iter.value == name
        )

    def _is_weight(self, parts: list[str], scope: Scope, site: Site) -> bool:
        """A weight: `.weight`/`.kernel` attributes, a parameter, or a loop variable over parameters."""
        if any(p.lower().startswith(("weight", "kernel")) for p in parts[1:]):
            return True
        if type(site.node) is cst.Call and (qualified_name(site.node.func, scope, site.seq) or "") in RANDN:
            return True  # made a parameter or given requires_grad (checked where the target was found)
        if parts[0] == "self" and len(parts) == 2 and scope.cls is not None:
            bindings = scope.cls.self_attrs.get(parts[1], [])
        else:
            binding = lookup(parts[0], scope, site.seq)
            if binding is not None and binding.kind in ("for", "unpack") and type(binding.node) is cst.For:
                it = binding.node.iter
                if type(it) in (cst.Tuple, cst.List) and it.elements and len(parts) == 1:
                    names = [dotted(e.value) for e in it.elements]
                    return all(n and self._is_weight(n.split("."), scope, site) for n in names)
                return type(it) is cst.Call and type(it.func) is cst.Attribute and it.func.attr.value in PARAM_ITERATORS
            bindings = [binding] if binding is not None and len(parts) == 1 else []
        for b in bindings:
            if type(b.value) is cst.Call:
                qual = qualified_name(b.value.func, b.scope, b.seq) or ""
                if qual in PARAMETER or _keyword_true(b.value, "requires_grad"):
                    return True
        return False

    def _self_layer(self, attr: str, scope: Scope) -> str | None:
        for binding in scope.cls.self_attrs.get(attr, []):
            if type(binding.value) is cst.Call:
                return qualified_name(binding.value.func, binding.scope, binding.seq)
        return None

    def _guard(self, site: Site, name: str) -> list[str] | None:
        """The layer kinds an `isinstance(name, ...)` / class-name test around the init admits."""
        for cond in site.ctx.conds:
            if not cond.holds:
                continue
            kinds = self._guard_kinds(cond.test, name, site.scope)
            if kinds is not None:
                return kinds
        return None

    def _guard_kinds(self, test, name: str, scope: Scope) -> list[str] | None:
        if type(test) is cst.BooleanOperation:
            return self._guard_kinds(test.left, name, scope) or self._guard_kinds(test.right, name, scope)
        if type(test) is cst.Call:
            qual = qualified_name(test.func, scope) or ""
            if qual == "isinstance" and len(test.args) == 2 and dotted(test.args[0].value) == name:
                kinds = test.args[1].value
                items = [e.value for e in kinds.elements] if type(kinds) in (cst.Tuple, cst.List) else [kinds]
                return [qualified_name(i, scope) or dotted(i) or "?" for i in items]
        if type(test) is cst.Comparison:
            # `classname.find("Linear") != -1`, `"Conv" in classname`, `type(m) == nn.Linear`
            for node in (test.left, *(c.comparator for c in test.comparisons)):
                if type(node) is cst.SimpleString and isinstance(node.evaluated_value, str):
                    return ["*" + node.evaluated_value]
                if type(node) is cst.Call and type(node.func) is cst.Attribute and node.func.attr.value == "find" and node.args:
                    first = node.args[0].value
                    if type(first) is cst.SimpleString and isinstance(first.evaluated_value, str):
                        return ["*" + first.evaluated_value]
                if type(node) is cst.Attribute or type(node) is cst.Name:
                    qual = qualified_name(node, scope) or ""
                    if qual.startswith(("torch.nn.", "keras.layers.")):
                        return [qual]
        return None

    def _covered_layers(self, binding, site: Site) -> tuple[object, list[Layer]] | None:
        """The network a loop variable / init-function argument ranges over, and its layers."""
        if binding.kind == "for":
            loop = binding.node
            it = loop.iter if type(loop) is cst.For else None
            if type(it) is not cst.Call or type(it.func) is not cst.Attribute:
                return None
            if it.func.attr.value not in MODULE_ITERATORS | PARAM_ITERATORS:
                return None
            return self._model_layers(it.func.value, binding.scope, binding.seq)
        # The argument of a function applied with `model.apply(fn)`.
        function = binding.scope
        for other in self.facts.index.all_sites:
            call = other.node
            if type(call) is not cst.Call or type(call.func) is not cst.Attribute or call.func.attr.value != "apply":
                continue
            if len(call.args) != 1:
                continue
            fn = call.args[0].value
            if not self._names_function(fn, other, function):
                continue
            return self._model_layers(call.func.value, other.scope, other.seq)
        return None

    def _names_function(self, fn, site: Site, function: Scope) -> bool:
        if type(fn) is cst.Name:
            bound = lookup(fn.value, site.scope, site.seq)
            return bound is not None and bound.kind == "def" and bound.node is function.node
        if type(fn) is cst.Attribute and type(fn.value) is cst.Name and fn.value.value == "self":
            cls = site.scope.cls
            return cls is not None and self.facts.method(cls, fn.attr.value) is function
        return False

    def _model_layers(self, owner, scope: Scope, before) -> tuple[object, list[Layer]] | None:
        if type(owner) is cst.Name and owner.value == "self":
            cls = scope.cls
            if cls is None:
                return None
            return cls, self.facts.models.class_layers(cls)
        model = self.facts.models.model_of(owner, scope, before)
        if model is None:
            return None
        return (model.info or model.node), model.layers


def _mentions_name(node: cst.CSTNode, name: str) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.Name:
            if current.value == name:
                return True
        elif t in (cst.List, cst.Tuple, cst.Set):
            stack.extend(e.value for e in current.elements)
        elif t is cst.BinaryOperation:
            stack.extend((current.left, current.right))
        elif t is cst.Call:
            stack.extend(a.value for a in current.args)
    return False


def _keyword_true(call: cst.Call, keyword: str) -> bool:
    node = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == keyword), None)
    return type(node) is cst.Name and node.value == "True"


def _large(value) -> bool:
    return abs(value) >= 1


def _short(qual: str) -> str:
    return qual.rsplit(".", 1)[-1]


def _matches(layer: Layer, guard: list[str] | None) -> bool:
    if guard is None:
        return True
    for kind in guard:
        if kind.startswith("*"):
            if kind[1:] and kind[1:] in layer.short:
                return True
        elif kind == layer.qualname or _short(kind) == layer.short:
            return True
    return False


def _group(scope: Scope) -> object:
    current = scope
    while current is not None:
        if current.cls is not None:
            return current.cls
        current = current.parent
    return scope


def _label(owner) -> str:
    if isinstance(owner, ClassInfo):
        return f"class {owner.name}"
    return "the model"


def _assigned(site: Site) -> cst.BaseExpression | None:
    stmt = site.ctx.stmt
    if type(stmt) is cst.Assign and len(stmt.targets) == 1:
        return stmt.targets[0].target
    return None
