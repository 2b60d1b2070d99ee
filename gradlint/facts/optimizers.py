"""Optimizers: which ones a file builds, their family, and their resolved learning rate and weight decay."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.index import Scope, Site
from gradlint.facts.names import lookup, qualified_name
from gradlint.facts.values import Value, _arg, _keyword

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts
    from gradlint.facts.loops import Event

ADAPTIVE = frozenset(
    {
        "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adagrad", "Adadelta", "RMSprop", "SparseAdam",
        "Adafactor", "Lion", "LAMB", "Lamb", "FusedAdam", "FusedLAMB", "AdaBelief", "Adan", "Nadam",
        "Ftrl", "AdamWScheduleFree", "Muon",
    }
)
PLAIN = frozenset({"SGD", "ASGD", "SGDW"})
# Defaults a reader of the library's signature would see (torch, then Keras where they differ).
TORCH_DEFAULTS = {
    "SGD": {"lr": 1e-3, "weight_decay": 0.0},
    "Adam": {"lr": 1e-3, "weight_decay": 0.0},
    "AdamW": {"lr": 1e-3, "weight_decay": 0.01},
    "RMSprop": {"lr": 1e-2, "weight_decay": 0.0},
    "Adagrad": {"lr": 1e-2, "weight_decay": 0.0},
    "Adadelta": {"lr": 1.0, "weight_decay": 0.0},
    "Adamax": {"lr": 2e-3, "weight_decay": 0.0},
    "NAdam": {"lr": 2e-3, "weight_decay": 0.0},
    "RAdam": {"lr": 1e-3, "weight_decay": 0.0},
}
KERAS_DEFAULTS = {
    "SGD": {"learning_rate": 0.01, "weight_decay": None},
    "Adam": {"learning_rate": 1e-3, "weight_decay": None},
    "AdamW": {"learning_rate": 1e-3, "weight_decay": 0.004},
    "RMSprop": {"learning_rate": 1e-3, "weight_decay": None},
    "Adagrad": {"learning_rate": 1e-3, "weight_decay": None},
    "Nadam": {"learning_rate": 1e-3, "weight_decay": None},
    "Adamax": {"learning_rate": 1e-3, "weight_decay": None},
    "Adadelta": {"learning_rate": 1e-3, "weight_decay": None},
}
# torch optimizers that take no weight_decay at all: they never penalise weights.
for _name in ("LBFGS", "Rprop", "SparseAdam"):
    TORCH_DEFAULTS[_name] = {"weight_decay": None}
# TF1's optimizers (`tf.train.AdamOptimizer(learning_rate)`), by family; none of them decays weights.
TF1_FAMILIES = {
    "GradientDescentOptimizer": "plain", "MomentumOptimizer": "plain", "AdamOptimizer": "adaptive",
    "RMSPropOptimizer": "adaptive", "AdagradOptimizer": "adaptive", "AdadeltaOptimizer": "adaptive",
    "FtrlOptimizer": "adaptive",
}
TF1_DEFAULT_LR = {"AdamOptimizer": 1e-3, "AdadeltaOptimizer": 1e-3}
# Keyword, position in the torch signature (params first); Keras takes no params argument.
TORCH_LR = ("lr", 1)
# Where torch's optimizers take weight_decay positionally (params first): `SGD(params, lr, momentum,
# dampening, weight_decay)`, `Adagrad(params, lr, lr_decay, weight_decay)`, `ASGD(params, lr, lambd, alpha,
# t0, weight_decay)`. An optimizer of another library with more than (params, lr) given positionally may be
# given its weight_decay among them: unknown.
TORCH_WD_POSITION = {
    "SGD": 4, "Adam": 4, "AdamW": 4, "RMSprop": 4, "Adadelta": 4, "Adamax": 4, "NAdam": 4, "RAdam": 4,
    "Adagrad": 3, "ASGD": 5,
}
# Wrappers built from an optimizer class and that optimizer's arguments:
# `DistributedOptimizer(optim.SGD, param_rrefs, lr=0.05)` is an SGD over remote parameters.
WRAPPERS = frozenset({"torch.distributed.optim.DistributedOptimizer"})


def params_arg(call: cst.Call, wrapped: bool) -> cst.BaseExpression | None:
    """The parameters an optimizer call is given (after the optimizer class, for a wrapper)."""
    position = 1 if wrapped else 0
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if len(positional) > position:
        return positional[position].value
    return _keyword(call, "params")


@dataclass(eq=False)
class Optimizer:
    call: cst.Call
    scope: Scope
    qualname: str  # torch.optim.SGD, keras.optimizers.Adam, transformers.AdamW ...
    name: str  # SGD, Adam ...
    family: str  # "plain" (SGD), "adaptive" (Adam family, RMSprop, Adagrad) or "other"
    lr: Value | None  # None: unknown
    weight_decay: Value | None  # None: unknown; Value(0.0) when absent and the default is 0
    keras: bool
    # Built through a wrapper such as DistributedOptimizer: it holds no `param_groups` of its own.
    wrapped: bool = False

    @property
    def adaptive(self) -> bool:
        return self.family == "adaptive"


class OptimizerFacts:
    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        self._by_call: dict[int, Optimizer | None] = {}

    def all(self) -> list[Optimizer]:
        """Every optimizer the file constructs."""
        found = []
        for site in self.facts.index.all_sites:
            if type(site.node) is cst.Call:
                optimizer = self.from_call(site.node, site)
                if optimizer is not None:
                    found.append(optimizer)
        return found

    def from_call(self, call: cst.Call, site: Site | None = None) -> Optimizer | None:
        if id(call) in self._by_call:
            return self._by_call[id(call)]
        scope = site.scope if site is not None else self.facts.loops.scope_of_call(call)
        home = self.facts.loops.home(scope)
        if home is not self.facts:
            # Built in another file of the project (a model class's `add_optimizer`): read it there.
            result = home.optimizers.from_call(call, site)
            self._by_call[id(call)] = result
            return result
        before = site.seq if site else None
        qual = qualified_name(call.func, scope, before) or ""
        wrapped = qual in WRAPPERS
        if wrapped:
            first = call.args[0] if call.args and call.args[0].keyword is None else None
            qual = (self.facts.values.class_name(first.value, scope, before) if first is not None else None) or ""
        name = qual.rsplit(".", 1)[-1]
        result = None
        is_torch = qual.startswith("torch.optim.") and not qual.startswith("torch.optim.lr_scheduler")
        is_keras = qual.startswith("keras.optimizers.")
        is_other = (
            qual.startswith(("transformers.", "bitsandbytes.", "apex.", "timm.optim", "torch_optimizer.", "lion_pytorch."))
            and (name in ADAPTIVE or name in PLAIN or name.endswith(("Adam", "AdamW", "SGD", "8bit")))
        )
        if qual.startswith("tf.train.") and name in TF1_FAMILIES:
            result = Optimizer(call, scope, qual, name, TF1_FAMILIES[name], self._tf1_lr(call, scope, name),
                               Value(None, f"{name} takes no weight decay", call), False)
        elif is_torch or is_keras or is_other:
            family = "adaptive" if name in ADAPTIVE or "Adam" in name else "plain" if name in PLAIN else "other"
            result = Optimizer(
                call, scope, qual, name, family,
                self._setting(call, scope, name, "lr", is_keras, wrapped),
                self._torch_decay(call, scope, name, is_torch, wrapped) if not is_keras
                else self._setting(call, scope, name, "weight_decay", is_keras, wrapped),
                is_keras,
                wrapped,
            )
        self._by_call[id(call)] = result
        return result

    def _torch_decay(self, call: cst.Call, scope: Scope, name: str, is_torch: bool, wrapped: bool) -> Value | None:
        """weight_decay of a torch-style optimizer: by keyword, or at its place in torch's signature; unknown
        when it may be among positional arguments whose places are not known (`*args`, another library)."""
        if _keyword(call, "weight_decay") is None:
            positional = [a for a in call.args if a.keyword is None and a.star != "**"]
            if any(a.star == "*" for a in positional):
                return None
            position = TORCH_WD_POSITION.get(name) if is_torch else None
            if position is None:
                if len(positional) > 2 + wrapped and not (is_torch and name in TORCH_DEFAULTS
                                                          and TORCH_DEFAULTS[name].get("weight_decay", 0) is None):
                    return None  # weight_decay may be one of them
            elif len(positional) > position + wrapped:
                return self.facts.values.value(positional[position + wrapped].value, scope)
        return self._setting(call, scope, name, "weight_decay", False, wrapped)

    def _tf1_lr(self, call: cst.Call, scope: Scope, name: str) -> Value | None:
        node = _arg(call, 0, "learning_rate")
        if node is not None:
            return self.facts.values.value(node, scope)
        if name in TF1_DEFAULT_LR and not any(a.star for a in call.args):
            return Value(TF1_DEFAULT_LR[name], f"{name} default", call)
        return None

    def _setting(self, call: cst.Call, scope: Scope, name: str, key: str, keras: bool, wrapped: bool = False) -> Value | None:
        if keras:
            keyword = "learning_rate" if key == "lr" else key
            node = _keyword(call, keyword)
            if node is None and key == "lr":
                node = _keyword(call, "lr")  # Keras 2 spelling
                if node is None:
                    node = _arg(call, 0, "learning_rate")
            defaults = KERAS_DEFAULTS.get(name, {})
            default_key = keyword
        else:
            node = _keyword(call, key)
            if node is None and key == "lr":
                node = _arg(call, TORCH_LR[1] + wrapped, "lr")
            defaults = TORCH_DEFAULTS.get(name, {})
            default_key = key
        if node is not None:
            return self.facts.values.value(node, scope)
        if any(a.star == "**" for a in call.args):
            return None
        if default_key in defaults:
            return Value(defaults[default_key], f"{name} default", call)
        return None

    def construction(self, expr: cst.BaseExpression, scope: Scope, before: int | None) -> cst.Call | None:
        """The call that built the optimizer an expression holds, as loops.constructor finds it; and where
        that stops at a parameter no caller passes (`def build(..., optimizer=Adam(lr=4e-3))`, then
        `model.compile(optimizer=optimizer)`), the parameter's default."""
        made = self.facts.loops.constructor(expr, scope, before)
        if made is not None:
            return made
        for _ in range(4):
            if type(expr) is not cst.Name:
                return None
            binding = lookup(expr.value, scope, before)
            if binding is None:
                return None
            if binding.kind == "assign" and type(binding.value) is cst.Name:
                expr, scope, before = binding.value, binding.scope, binding.seq  # `opt = optimizer`
                continue
            if binding.kind != "param":
                return None
            param = binding.node
            default = getattr(param, "default", None)
            if type(default) is not cst.Call or self._passed(binding.scope, binding.name):
                return None
            home = self.facts.loops.home(binding.scope)
            outer = binding.scope.parent or binding.scope
            return home.loops.constructor(default, outer, None)
        return None

    def _passed(self, function: Scope, name: str) -> bool:
        """Whether a caller of the function (in its file, or one the project has seen) may pass `name`."""
        for facts in self.facts.loops.home(function).caller_files(function):
            for _site, arg in facts.call_args_for(function, name):
                if arg is not None:
                    return True
            # A caller passing `*args`/`**kwargs` may pass it: call_args_for leaves those out.
            for site in facts.calls_of(function):
                if any(a.star for a in site.node.args):
                    return True
        return False

    def for_event(self, event: "Event") -> Optimizer | None:
        """The optimizer an update event steps (`opt.step()`, `scaler.step(opt)`)."""
        from gradlint.facts.loops import STEP, along

        call = event.call
        if event.kind != STEP or call is None or type(call.func) is not cst.Attribute:
            return None
        loops = self.facts.loops
        receiver = call.func.value
        scope, before = event.site.scope, event.site.seq
        if loops.object_kind(receiver, scope, before) == "scaler" and call.args:
            receiver = call.args[0].value
        # A helper called with several optimizers steps the one each call of the event's chain passes.
        receiver, at, at_before, _ = along(loops, receiver, scope, before, event.via)
        made = self.construction(receiver, at, at_before)
        optimizer = self.from_call(made) if made is not None else None
        if optimizer is not None:
            home = loops.home(optimizer.scope)
            if home is not self.facts and id(made) not in loops.anchors:
                # Built in another file: reported at the call here that runs its step (or at the step).
                anchor = loops.anchors.get(id(event.site.node))
                if anchor is None and loops.home(event.site.scope) is self.facts:
                    anchor = (event.site, home)
                if anchor is not None:
                    loops.anchors[id(made)] = (anchor[0], home)
        return optimizer
