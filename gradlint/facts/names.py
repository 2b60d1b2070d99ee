"""Names: which binding a name refers to, and the qualified name behind imports."""
from __future__ import annotations

import bisect
import builtins
import functools
from operator import attrgetter

import libcst as cst

from gradlint.facts.index import Binding, Scope, dotted, opposite

_BUILTINS = frozenset(dir(builtins))

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

# What `from <module> import *` brings in, for the names rules ask about, where a file star-imports
# from more than one framework module (`from keras.layers import *` beside `from keras.models import *`).
_LAYERS = (
    "SimpleRNN LSTM GRU SimpleRNNCell LSTMCell GRUCell CuDNNLSTM CuDNNGRU ConvLSTM1D ConvLSTM2D ConvLSTM3D RNN "
    "Bidirectional TimeDistributed Dense Embedding BatchNormalization LayerNormalization GroupNormalization "
    "UnitNormalization Input InputLayer Add add Dropout Flatten Activation Concatenate concatenate"
)
_OPTIMIZERS = "SGD Adam AdamW Adamax Nadam Adagrad Adadelta RMSprop Ftrl Lion"
STAR_MEMBERS = {
    "keras.layers": frozenset(_LAYERS.split()),
    "keras.models": frozenset({"Sequential", "Model", "load_model", "clone_model"}),
    "keras": frozenset({"Sequential", "Model", "Input", "layers", "models", "optimizers", "regularizers"}),
    "keras.optimizers": frozenset(_OPTIMIZERS.split()),
    "keras.regularizers": frozenset({"l1", "l2", "l1_l2", "L1", "L2", "L1L2"}),
    "torch.nn": frozenset(
        "RNN LSTM GRU RNNCell LSTMCell GRUCell Linear LazyLinear Embedding Sequential ModuleList Module "
        "LayerNorm BatchNorm1d BatchNorm2d GroupNorm RMSNorm Parameter".split()
    ),
    "torch.optim": frozenset(
        "SGD Adam AdamW Adamax NAdam RAdam Adagrad Adadelta RMSprop Rprop LBFGS SparseAdam ASGD".split()
    ),
}
# Modules whose star import is followed: the frameworks' own, never a file of the project.
_STAR_FRAMEWORKS = ("torch", "keras", "tf")


def star_imported(name: str, scope: Scope) -> str | None:
    """`LSTM` -> `keras.layers.LSTM` after `from tensorflow.keras.layers import *` in the module.
    With star imports from several framework modules, only a name known to be in one of them (the last
    such import wins, as in Python); None when unknown."""
    root = scope
    while root.parent is not None:
        root = root.parent
    if not root.star_imports:
        return None
    modules = [canonical(m) for m in root.star_imports if not m.startswith(".")]
    modules = [m for m in modules if m.split(".")[0] in _STAR_FRAMEWORKS]
    if len(modules) == 1:
        return f"{modules[0]}.{name}"
    for module in reversed(modules):
        if name in STAR_MEMBERS.get(module, ()):
            return f"{module}.{name}"
    return None


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
    if name in scope.globals:
        # `global checkpoint` in main(): the name is the module's, whatever main assigns to it.
        while current.parent is not None:
            current = current.parent
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


def rebuilt(binding: Binding, site_of) -> bool:
    """Whether an assignment in one branch of an if/else has a sibling on the other side that builds the
    name with a call (`opt = Adam(...)` / `else: opt = checkpoint["opt"]`): only then can the assignment
    the defaults run be another. `site_of` finds a statement's site."""
    site = site_of(binding.node) if binding.kind == "assign" else None
    if site is None or not site.ctx.conds:
        return False
    for other in binding.scope.bindings.get(binding.name, ()):
        if other is binding or other.kind != "assign" or type(other.value) is not cst.Call:
            continue
        other_site = site_of(other.node)
        if other_site is not None and opposite(site.ctx.conds, other_site.ctx.conds):
            return True
    return False


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
        starred = star_imported(head, scope) if head not in _BUILTINS else None
        if starred is not None:
            return canonical(f"{starred}.{rest}" if rest else starred)
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
