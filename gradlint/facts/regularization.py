"""Weight penalties: L1/L2 terms over parameters added to a loss, Keras regularizers, per-group decay."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import libcst as cst

from gradlint.facts.index import Scope
from gradlint.facts.loops import PARAMETER_METHODS
from gradlint.facts.names import lookup, qualified_name
from gradlint.facts.optimizers import params_arg
from gradlint.facts.values import _keyword

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts
    from gradlint.facts.models import Model

NORM_FUNCTIONS = frozenset(
    {
        "torch.norm", "torch.linalg.norm", "torch.linalg.vector_norm", "torch.linalg.matrix_norm",
        "torch.square", "torch.abs", "torch.frobenius_norm", "tf.nn.l2_loss", "tf.norm", "tf.square",
        "tf.abs", "tf.math.square", "tf.math.abs", "keras.ops.square", "keras.ops.abs", "keras.ops.norm",
    }
)
NORM_METHODS = frozenset({"norm", "pow", "square", "abs", "square_"})
# Attributes that name weights: `fc.weight`, `lstm.weight_hh_l0`, `dense.kernel`.
WEIGHT_ATTRS = ("weight", "kernel", "recurrent_kernel")
PARAM_ATTRS = PARAMETER_METHODS | {"weights", "variables", "trainable_weights"}
KERAS_REGULARIZER_KEYS = ("kernel_regularizer", "recurrent_regularizer")
TF_VARIABLES = frozenset({"tf.Variable", "tf.get_variable"})
# TF1: the penalties layers and variable scopes put in the REGULARIZATION_LOSSES collection, gathered.
TF_REGULARIZATION_LOSSES = frozenset(
    {
        "tf.losses.get_regularization_loss", "tf.losses.get_regularization_losses",
        "tf.contrib.layers.apply_regularization", "tf.contrib.layers.apply_regularizer",
    }
)
TF_COLLECTIONS = frozenset({"tf.get_collection", "tf.get_collection_ref"})
# Keywords that put a weight penalty on what a TensorFlow call builds (`tf.layers.dense(...,
# kernel_regularizer=...)`, `tf.variable_scope(..., regularizer=...)`, contrib's `weights_regularizer`).
TF_REGULARIZER_KEYS = ("kernel_regularizer", "recurrent_regularizer", "weights_regularizer", "regularizer")


def _is_norm(node: cst.CSTNode, scope: Scope) -> bool:
    t = type(node)
    if t is cst.BinaryOperation and type(node.operator) is cst.Power:
        return True
    if t is cst.Call:
        func = node.func
        if type(func) is cst.Attribute and func.attr.value in NORM_METHODS:
            return True
        qual = qualified_name(func, scope) or ""
        return qual in NORM_FUNCTIONS
    return False


def _walk(node: cst.CSTNode) -> Iterable[cst.CSTNode]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        t = type(current)
        if t is cst.Call:
            stack.append(current.func)
            stack.extend(a.value for a in current.args)
        elif t is cst.Attribute:
            stack.append(current.value)
        elif t is cst.BinaryOperation:
            stack.extend((current.left, current.right))
        elif t is cst.UnaryOperation:
            stack.append(current.expression)
        elif t in (cst.List, cst.Tuple, cst.Set):
            stack.extend(e.value for e in current.elements)
        elif t in (cst.ListComp, cst.GeneratorExp, cst.SetComp):
            stack.append(current.elt)
            comp = current.for_in
            while comp is not None:
                stack.append(comp.iter)
                comp = comp.inner_for_in
        elif t is cst.Subscript:
            stack.append(current.value)
        elif t is cst.IfExp:
            stack.extend((current.body, current.orelse))


def _mentions_params(node: cst.CSTNode, scope: Scope) -> bool:
    """`model.parameters()`, `fc.weight`, `lstm.weight_hh_l0`, `model.trainable_variables` in an expression,
    or a name bound to a TensorFlow variable (`W = tf.Variable(...)`, then `tf.nn.l2_loss(W)`)."""
    for current in _walk(node):
        t = type(current)
        if t is cst.Attribute:
            attr = current.attr.value
            if attr in PARAM_ATTRS or attr.startswith(WEIGHT_ATTRS):
                return True
        elif t is cst.Name:
            binding = lookup(current.value, scope)
            if (
                binding is not None and binding.kind == "assign" and type(binding.value) is cst.Call
                and qualified_name(binding.value.func, binding.scope) in TF_VARIABLES
            ):
                return True
    return False


def _param_iteration(node: cst.CSTNode, scope: Scope) -> bool:
    """A comprehension or for-loop iterable that ranges over parameters (`params = list(model.parameters())`)."""
    if type(node) is cst.Name:
        binding = lookup(node.value, scope)
        return (
            binding is not None and binding.kind == "assign" and binding.value is not None
            and _mentions_params(binding.value, binding.scope)
        )
    return _mentions_params(node, scope)


class RegularizationFacts:
    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts

    def reachable(self, roots: Iterable[Scope]) -> list[Scope]:
        """The scopes the roots run, following calls into functions and methods of the module, and into
        the constructors of the model classes they build (a TF1 model adds its L2 term to the loss in
        `__init__`, in this file or a sibling's)."""
        seen: dict[int, Scope] = {}
        stack = list(roots)
        while stack:
            scope = stack.pop()
            if id(scope) in seen or len(seen) > 200:
                continue
            seen[id(scope)] = scope
            home = self.facts.loops.home(scope)
            for site in scope.calls:
                target = home.loops.callee(site) or self._constructor(home, site)
                if target is not None and id(target) not in seen:
                    stack.append(target)
        return list(seen.values())

    @staticmethod
    def _constructor(home: "FileFacts", site) -> Scope | None:
        qual = qualified_name(site.node.func, site.scope, site.seq) or ""
        if not qual.rsplit(".", 1)[-1][:1].isupper():
            return None  # only names that read as classes
        return home.constructor_of(site)

    def loss_penalty(self, scopes: Iterable[Scope]) -> cst.CSTNode | None:
        """The first L1/L2 penalty over parameters computed in these scopes, if any."""
        for scope in scopes:
            for site in scope.sites:
                node = site.node
                in_param_loop = any(
                    type(loop) is cst.For and _param_iteration(loop.iter, scope) for loop in site.ctx.loops
                )
                if type(node) is cst.Call:
                    func = node.func
                    if (
                        type(func) is cst.Attribute and func.attr.value == "add_loss" and node.args
                        and self.facts.loops.home(scope).loops.callee(site) is None
                    ):
                        # Keras: a loss added on the model (a regularizer, as a rule); not a method of the
                        # project's own model class that builds its training loss (`model.add_loss()`).
                        return node
                    if _is_norm(node, scope) and (in_param_loop or _mentions_params(node, scope)):
                        return node
                    if self._tf_regularization(node, site):
                        return node
                    continue
                value = getattr(node, "value", None)
                if value is None:
                    continue
                for current in _walk(value):
                    if type(current) in (cst.ListComp, cst.GeneratorExp) and _param_iteration(current.for_in.iter, scope):
                        if any(_is_norm(n, scope) for n in _walk(current.elt)):
                            return current
        return None

    @staticmethod
    def _tf_regularization(call: cst.Call, site) -> bool:
        """TensorFlow's own weight penalties: the regularization losses gathered
        (`tf.losses.get_regularization_loss()`, `tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)`), or
        a regularizer given to what a TF1 call builds (`tf.layers.dense`, `tf.variable_scope`: a penalty the
        author means to train with)."""
        func = call.func
        last = func.attr.value if type(func) is cst.Attribute else func.value if type(func) is cst.Name else ""
        if not last.startswith(("get_regularization", "apply_regulariz", "get_collection")) and not any(
            a.keyword is not None and a.keyword.value in TF_REGULARIZER_KEYS for a in call.args
        ):
            return False  # cheap: most calls are neither
        qual = qualified_name(call.func, site.scope, site.seq) or ""
        if qual in TF_REGULARIZATION_LOSSES:
            return True
        if qual in TF_COLLECTIONS and call.args:
            key = call.args[0].value
            if type(key) is cst.Attribute and key.attr.value == "REGULARIZATION_LOSSES":
                return True
            return type(key) is cst.SimpleString and key.evaluated_value == "regularization_losses"
        if qual.startswith("tf."):
            # Keras layers' regularizers are their model's (keras_regularized), not the whole file's.
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value in TF_REGULARIZER_KEYS:
                    if not (type(arg.value) is cst.Name and arg.value.value == "None"):
                        return True
        return False

    def keras_regularized(self, model: "Model | None") -> cst.CSTNode | None:
        """A layer of the model built with a kernel/recurrent regularizer (not None)."""
        if model is None:
            return None
        for layer in model.layers:
            if not layer.qualname.startswith("keras."):
                continue
            for key in KERAS_REGULARIZER_KEYS:
                node = _keyword(layer.call, key)
                if node is not None and not (type(node) is cst.Name and node.value == "None"):
                    return node
        return None

    def group_decay(self, optimizer_call: cst.Call) -> bool | None:
        """Parameter groups that set their own weight decay: True when one does (unknown: None)."""
        optimizer = self.facts.optimizers.from_call(optimizer_call)
        params = params_arg(optimizer_call, optimizer is not None and optimizer.wrapped)
        if params is None:
            return False
        scope = self.facts.loops.scope_of_call(optimizer_call)
        if type(params) is cst.Name:
            binding = lookup(params.value, scope)
            if binding is None or binding.value is None:
                return False
            params = binding.value
            scope = binding.scope
        for node in _walk_dicts(params):
            for element in node.elements:
                if type(element) is not cst.DictElement:
                    continue
                key = self.facts.values.value(element.key, scope)
                if key is not None and key.value == "weight_decay":
                    v = self.facts.values.value(element.value, scope)
                    if v is None or not isinstance(v.value, (int, float)):
                        return None
                    if v.value > 0:
                        return True
        return False


def _walk_dicts(node: cst.CSTNode) -> Iterable[cst.Dict]:
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.Dict:
            yield current
        elif t in (cst.List, cst.Tuple):
            stack.extend(e.value for e in current.elements)
        elif t in (cst.ListComp, cst.GeneratorExp):
            stack.append(current.elt)
        elif t is cst.BinaryOperation:
            stack.extend((current.left, current.right))
