"""Names: which binding a name refers to, and the qualified name behind imports."""
from __future__ import annotations

import bisect
import functools
from operator import attrgetter

import libcst as cst

from gradlint.facts.index import Binding, Scope, dotted

# The qualified-name prefix given to classes and functions defined in the file itself.
LOCAL = "<local>"

# Framework modules that are re-exported under another name.
ALIASES = {
    "tf.keras": "keras",
    "tensorflow.keras": "keras",
    "tensorflow.python.keras": "keras",
    "tf_keras": "keras",
    "keras.src": "keras",
    # Keras 2's layer modules, imported as `from keras.layers import recurrent` in older code.
    "keras.layers.recurrent": "keras.layers",
    "keras.layers.recurrent_v2": "keras.layers",
    "keras.layers.cudnn_recurrent": "keras.layers",
    "keras.layers.core": "keras.layers",
    "keras.layers.wrappers": "keras.layers",
    "pytorch_lightning": "lightning.pytorch",
    "lightning.pytorch": "lightning.pytorch",
    "torch.nn.modules.rnn": "torch.nn",
    "torch.nn.modules.linear": "torch.nn",
    "torch.nn.modules.container": "torch.nn",
    "torch.nn.modules.normalization": "torch.nn",
    "torch.nn.modules.batchnorm": "torch.nn",
    "torch.nn.utils.clip_grad": "torch.nn.utils",
    "torch.cuda.amp": "torch.amp",
    "torch.cpu.amp": "torch.amp",
    "torch.amp.grad_scaler": "torch.amp",
    "keras.optimizers.legacy": "keras.optimizers",
    "keras.optimizers.experimental": "keras.optimizers",
    "tf.optimizers": "keras.optimizers",
    # TF1: the compat module is TF1's API, and its RNN cells live under three names.
    "tf.compat.v1.keras": "keras",
    "tf.compat.v1.nn.rnn_cell": "tf.nn.rnn_cell",
    "tf.compat.v1": "tf",
    "tf.contrib.rnn": "tf.nn.rnn_cell",
}


_PREFIXES = sorted(ALIASES, key=len, reverse=True)


@functools.lru_cache(maxsize=4096)
def canonical(qualname: str) -> str:
    """Map re-exports to one spelling: `tf.keras.layers.LSTM` -> `keras.layers.LSTM`."""
    if qualname.startswith("tensorflow.") and not qualname.startswith("tensorflow.keras"):
        qualname = "tf." + qualname[len("tensorflow."):]
    for prefix in _PREFIXES:
        if qualname == prefix or qualname.startswith(prefix + "."):
            return ALIASES[prefix] + qualname[len(prefix):]
    return qualname


_seq = attrgetter("seq")


def lookup(name: str, scope: Scope, before: int | None = None) -> Binding | None:
    """The binding `name` refers to from `scope` (Python's LEGB, class bodies skipped).

    Within a scope, the last binding before `before` wins; with none before it, the first
    binding (a function body runs after the module has finished binding its names).
    """
    current: Scope | None = scope
    while current is not None:
        bindings = current.bindings.get(name)
        if bindings:
            if before is not None and current is scope:
                # Bindings are kept in seq order: the last one before `before` is found by bisection.
                i = bisect.bisect_left(bindings, before, key=_seq)
                if i:
                    return bindings[i - 1]
            return bindings[-1] if current is not scope or before is None else bindings[0]
        current = current.parent
        # Methods do not see their class body's names.
        while current is not None and current.cls is not None and current is current.cls.scope:
            current = current.parent
    return None


def qualified_name(node: cst.BaseExpression, scope: Scope, before: int | None = None) -> str | None:
    """`nn.LSTM` -> `torch.nn.LSTM` through the imports in force; None for local values.

    Names bound by the file itself to a class or function give `<local>.Name`; names bound by
    assignment (shadowing an import) give None; unbound names are builtins and stay as written.
    """
    key = (id(node), before)
    cache = scope.qualnames
    if key in cache:
        return cache[key]
    result = _qualified_name(node, scope, before)
    cache[key] = result
    return result


def _qualified_name(node: cst.BaseExpression, scope: Scope, before: int | None) -> str | None:
    name = dotted(node)
    if name is None:
        return None
    head, _, rest = name.partition(".")
    binding = lookup(head, scope, before)
    if binding is None:
        return name
    if binding.kind == "import":
        qual = binding.qualname or head
    elif binding.kind in ("class", "def") and binding.scope.parent is None:
        qual = f"{LOCAL}.{head}"
    else:
        return None
    full = f"{qual}.{rest}" if rest else qual
    return canonical(full)


def last_name(node: cst.BaseExpression) -> str | None:
    """The last identifier of a call target: `self.opt.step` -> `step`."""
    if type(node) is cst.Attribute:
        return node.attr.value
    if type(node) is cst.Name:
        return node.value
    return None
