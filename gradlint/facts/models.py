"""Models: the layers a network builds, found through classes, containers and builder functions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import libcst as cst

from gradlint.facts.index import Binding, ClassInfo, Scope, Site, dotted, opposite
from gradlint.facts.names import LOCAL, lookup, qualified_name, rebuilt
from gradlint.facts.values import _arg, _keyword

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

TORCH_RECURRENT = frozenset(
    f"torch.nn.{n}" for n in ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
)
KERAS_RECURRENT = frozenset(
    f"keras.layers.{n}"
    for n in (
        "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "CuDNNLSTM",
        "CuDNNGRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    )
)
# TF1 cells, under the one spelling names.canonical gives `tf.contrib.rnn` and `tf.compat.v1.nn.rnn_cell`.
TF1_RECURRENT = frozenset(
    f"tf.nn.rnn_cell.{n}"
    for n in (
        "BasicRNNCell", "RNNCell", "BasicLSTMCell", "LSTMCell", "GRUCell", "LayerNormBasicLSTMCell",
        "LSTMBlockCell", "GRUBlockCell", "GRUBlockCellV2", "NASCell", "UGRNNCell", "GLSTMCell",
        "CoupledInputForgetGateLSTMCell", "TimeFreqLSTMCell", "IntersectionRNNCell",
    )
)
RECURRENT = TORCH_RECURRENT | KERAS_RECURRENT | TF1_RECURRENT
PLAIN_RNN = frozenset(
    {
        "torch.nn.RNN", "torch.nn.RNNCell", "keras.layers.SimpleRNN", "keras.layers.SimpleRNNCell",
        "tf.nn.rnn_cell.BasicRNNCell",
    }
)
LINEAR = frozenset({"torch.nn.Linear", "torch.nn.LazyLinear", "keras.layers.Dense"})
NORMALIZATION = frozenset(
    [f"torch.nn.{n}" for n in (
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
        "LazyBatchNorm3d", "SyncBatchNorm", "LayerNorm", "GroupNorm", "RMSNorm",
        "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm",
    )]
    + [f"keras.layers.{n}" for n in (
        "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    )]
)
EMBEDDING = frozenset({"torch.nn.Embedding", "torch.nn.EmbeddingBag", "keras.layers.Embedding"})
MODULE_BASES = frozenset(
    {
        "torch.nn.Module", "lightning.pytorch.LightningModule", "lightning.LightningModule",
        "keras.Model", "keras.models.Model", "keras.layers.Layer", "keras.Sequential",
        "keras.models.Sequential", "transformers.PreTrainedModel",
    }
)
LIGHTNING_BASES = frozenset({"lightning.pytorch.LightningModule", "lightning.LightningModule"})
KERAS_SEQUENTIAL = frozenset({"keras.Sequential", "keras.models.Sequential"})
KERAS_MODEL = frozenset({"keras.Model", "keras.models.Model"})


def _is_layer_name(qual: str) -> bool:
    return qual.startswith("torch.nn.") or qual.startswith("keras.layers.") or qual in TF1_RECURRENT


@dataclass(eq=False)
class Layer:
    qualname: str  # canonical: torch.nn.LSTM, keras.layers.Dense
    call: cst.Call
    scope: Scope
    site: Site | None
    # The facts of the file that builds the layer (another file of the folder, at times).
    facts: "FileFacts"
    # The classes it may be, when the code picks one by a value that cannot be read (all recurrent).
    choices: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return "/".join(c.rsplit(".", 1)[-1] for c in self.choices or (self.qualname,))

    @property
    def recurrent(self) -> bool:
        return self.qualname in RECURRENT


@dataclass(eq=False)
class Model:
    """A trained network as far as the file shows it: a class, or layers built in one expression/scope."""

    label: str  # "class Seq2Seq", "nn.Sequential at line 12" ...
    layers: list[Layer] = field(default_factory=list)
    info: ClassInfo | None = None
    node: cst.CSTNode | None = None

    @property
    def recurrent_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.recurrent]


def iter_calls(node: cst.CSTNode) -> Iterator[cst.Call]:
    """Calls in an expression, comprehensions and list products included (not inside lambdas)."""
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.Call:
            yield current
            stack.append(current.func)
            stack.extend(a.value for a in current.args)
        elif t is cst.Attribute:
            stack.append(current.value)
        elif t in (cst.List, cst.Tuple, cst.Set):
            stack.extend(e.value for e in current.elements)
        elif t in (cst.ListComp, cst.GeneratorExp, cst.SetComp):
            stack.append(current.elt)
        elif t is cst.BinaryOperation:
            stack.extend((current.left, current.right))
        elif t is cst.StarredElement:
            stack.append(current.value)
        elif t is cst.Dict:
            stack.extend(e.value for e in current.elements if type(e) is cst.DictElement)
        elif t is cst.IfExp:
            stack.extend((current.body, current.orelse))


def _without_alternatives(layers: list[Layer]) -> list[Layer]:
    """One layer where the two sides of an if/else build the same class under the same name
    (`if tf.__version__ >= "1": cell = tf.contrib.rnn.GRUCell(n) else: cell = tf.nn.rnn_cell.GRUCell(n)`):
    only one side runs."""
    kept: list[Layer] = []
    for layer in layers:
        if not any(_alternatives(layer, other) for other in kept):
            kept.append(layer)
    return kept


def _alternatives(a: Layer, b: Layer) -> bool:
    if a.qualname != b.qualname or a.site is None or b.site is None or a.scope is not b.scope:
        return False
    target = _assigned_to(a.site)
    if target is None or target != _assigned_to(b.site):
        return False
    return _exclusive(a.site, b.site)


def _exclusive(a: Site, b: Site) -> bool:
    """Whether two statements sit on opposite sides of one `if` (they never run in the same pass)."""
    return opposite(a.ctx.conds, b.ctx.conds)


def _assigned_to(site: Site) -> str | None:
    stmt = site.ctx.stmt
    if type(stmt) is cst.Assign and len(stmt.targets) == 1:
        return dotted(stmt.targets[0].target)
    return None


def held_names(node: cst.CSTNode) -> Iterator[cst.Name]:
    """Names an expression passes on as values (call arguments, list items), not the names it calls."""
    stack = [node]
    while stack:
        current = stack.pop()
        t = type(current)
        if t is cst.Name:
            yield current
        elif t is cst.Call:
            stack.extend(a.value for a in current.args)
        elif t in (cst.List, cst.Tuple):
            stack.extend(e.value for e in current.elements)
        elif t is cst.StarredElement:
            stack.append(current.value)


class ModelFacts:
    """Answers: which layers does this class / expression / builder build?"""

    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        self._class_layers: dict[str, list[Layer]] = {}
        self._added: dict[tuple, list[Layer]] = {}
        self._attribute_sites: dict[tuple[int, str], list[Site]] = {}
        self._sites_by_seq: dict[int, dict[int, Site]] = {}

    def is_module_class(self, info: ClassInfo, seen: frozenset = frozenset()) -> bool:
        for base in info.node.bases:
            qual = qualified_name(base.value, info.outer) or ""
            if qual in MODULE_BASES or qual.endswith("LightningModule"):
                return True
            if qual.startswith(LOCAL + "."):
                parent = self.facts.index.classes.get(qual[len(LOCAL) + 1 :])
                if parent is not None and parent.name not in seen and self.is_module_class(parent, seen | {info.name}):
                    return True
            elif qual:
                other = self.facts.imported_class(qual)
                if other is not None:
                    return True
        return False

    def is_lightning_class(self, info: ClassInfo) -> bool:
        for base in info.node.bases:
            qual = qualified_name(base.value, info.outer) or ""
            if qual in LIGHTNING_BASES or qual.endswith("LightningModule"):
                return True
            if qual.startswith(LOCAL + "."):
                parent = self.facts.index.classes.get(qual[len(LOCAL) + 1 :])
                if parent is not None and parent is not info and self.is_lightning_class(parent):
                    return True
        return "training_step" in info.methods and self.is_module_class(info)

    def class_layers(self, info: ClassInfo, _seen: frozenset = frozenset()) -> list[Layer]:
        """Layers built in the class's methods, its base classes, and the submodule classes it builds."""
        if info.name in self._class_layers:
            return self._class_layers[info.name]
        if info.name in _seen:
            return []
        seen = _seen | {info.name}
        layers: list[Layer] = []
        scopes = list(info.methods.values())
        for scope in scopes:
            for site in scope.calls:
                layers.extend(self._layers_of_call(site.node, scope, site, seen))
        for base in info.node.bases:
            layers.extend(self._class_ref_layers(qualified_name(base.value, info.outer), seen))
        self._class_layers[info.name] = layers
        return layers

    def _ruled_out(self, site: Site, scope: Scope) -> bool:
        """Whether the defaults never run a statement: a condition around it that reads the other way
        (`if rnn_type in ["LSTM", "GRU"]: ... else: self.rnn = nn.RNN(...)` built as an LSTM)."""
        for cond in site.ctx.conds:
            truth = self.facts.values.truth(cond.test, scope)
            if truth is not None and truth != cond.holds:
                return True
        return False

    def _layers_of_call(self, call: cst.Call, scope: Scope, site: Site | None, seen) -> list[Layer]:
        if site is not None and site.ctx.conds and self._ruled_out(site, scope):
            return []
        qual = self.facts.values.class_name(call.func, scope, site.seq if site else None)
        if qual is None:
            # A class picked by a value that cannot be read, among recurrent classes only: recurrent
            # whichever it is (plain only if every choice is).
            choices = self.facts.values.class_alternatives(call.func, scope, site.seq if site else None)
            if not choices:
                choices = self._inherited_classes(call.func, scope)
                if len(choices) == 1 and choices[0] in RECURRENT:
                    return [Layer(choices[0], call, scope, site, self.facts)]
            if len(choices) > 1 and all(c in RECURRENT for c in choices):
                gated = [c for c in choices if c not in PLAIN_RNN]
                return [Layer((gated or choices)[0], call, scope, site, self.facts, choices)]
            return []
        if _is_layer_name(qual):
            return [Layer(qual, call, scope, site, self.facts)]
        return self._class_ref_layers(qual, seen)

    def _inherited_classes(self, func: cst.BaseExpression, scope: Scope) -> tuple[str, ...]:
        """`self.rnn = self.rnn_cell(...)` where a base class of another file sets `self.rnn_cell` (`if
        rnn_cell == "lstm": self.rnn_cell = nn.LSTM` / `elif ...: nn.GRU`): the classes its assignments name,
        those on branches the defaults rule out left out; empty when one cannot be told."""
        info = scope.cls
        if (
            info is None or type(func) is not cst.Attribute or type(func.value) is not cst.Name
            or func.value.value != "self" or info.self_attrs.get(func.attr.value)
        ):
            return ()
        for base in info.node.bases:
            qual = qualified_name(base.value, info.outer) or ""
            other = self.facts.imported_class(qual) if qual and not qual.startswith(LOCAL) else None
            if other is None:
                continue
            facts, parent = other
            classes = []
            for binding in parent.self_attrs.get(func.attr.value, []):
                at = facts.site_of(binding.node)
                if at is not None and at.ctx.conds and facts.models._ruled_out(at, binding.scope):
                    continue
                found = facts.values.class_name(binding.value, binding.scope, binding.seq) if binding.value is not None else None
                if found is None:
                    return ()
                classes.append(found)
            return tuple(dict.fromkeys(classes))
        return ()

    def _class_ref_layers(self, qual: str | None, seen) -> list[Layer]:
        if not qual:
            return []
        if qual.startswith(LOCAL + "."):
            name = qual[len(LOCAL) + 1 :]
            info = self.facts.index.classes.get(name)
            if info is not None:
                return self.class_layers(info, seen)
            function = self.facts.function(name)
            if function is not None and name not in seen:
                return self.scope_layers(function, seen | {name})
            return []
        other = self.facts.imported_class(qual)
        if other is not None:
            facts, info = other
            return facts.models.class_layers(info)
        return []

    def scope_layers(self, scope: Scope, seen: frozenset = frozenset()) -> list[Layer]:
        """Layers built anywhere in a function (a model builder) or module body."""
        layers = []
        for site in scope.calls:
            layers.extend(self._layers_of_call(site.node, scope, site, seen))
        return _without_alternatives(layers)

    def expression_layers(self, node: cst.CSTNode, scope: Scope, before: int | None = None, depth: int = 0) -> list[Layer]:
        """Layers built in an expression, and those it holds by name (`rnn = LSTM(64)` then `model.add(rnn)`,
        `cell = LSTMCell(8)` then `RNN(cell=cell)`)."""
        layers = []
        for call in iter_calls(node):
            layers.extend(self._layers_of_call(call, scope, None, frozenset()))
        if depth < 4:
            for name in held_names(node):
                binding = lookup(name.value, scope, before)
                if binding is not None and binding.kind == "assign" and binding.value is not None:
                    layers.extend(self.expression_layers(binding.value, binding.scope, binding.seq, depth + 1))
        return layers

    def model_of(self, expr: cst.BaseExpression | None, scope: Scope, before: int | None = None, depth: int = 0) -> Model | None:
        """The model an expression holds: `model`, `self.net`, `model.to(dev)`, `DDP(model)` ..."""
        if expr is None or depth > 8:
            return None
        t = type(expr)
        if t is cst.Call:
            func = expr.func
            if type(func) is cst.Attribute and func.attr.value in (
                "to", "cuda", "cpu", "double", "float", "half", "bfloat16", "train", "to_empty",
            ):
                return self.model_of(func.value, scope, before, depth + 1)
            qual = self.facts.values.class_name(func, scope, before) or ""
            if qual.startswith(LOCAL + "."):
                name = qual[len(LOCAL) + 1 :]
                info = self.facts.index.classes.get(name)
                if info is not None:
                    layers = self.class_layers(info) + self._passed_layers(expr, scope, before, depth)
                    return Model(f"class {name}", layers, info, info.node)
                function = self.facts.function(name)
                if function is not None:
                    return self.built_by(function, name, depth)
            if qual in KERAS_SEQUENTIAL or qual == "torch.nn.Sequential":
                return Model(qual.rsplit(".", 1)[-1], self.expression_layers(expr, scope, before), None, expr)
            if qual in KERAS_MODEL:
                # Functional API: the layers that feed the outputs, else all those built in the scope.
                outputs = functional_outputs(expr)
                layers = self.functional_layers(outputs, scope, before) if outputs is not None else []
                return Model("keras.Model", layers or self.scope_layers(scope), None, expr)
            other = self.facts.imported_class(qual) if qual else None
            if other is not None:
                facts, info = other
                layers = facts.models.class_layers(info) + self._passed_layers(expr, scope, before, depth)
                return Model(f"class {info.name}", layers, info, info.node)
            builder = self.imported_function(qual) if qual else None
            if builder is not None:
                # A builder function of another file (`from utils.helper import get_model`): its own file
                # reads what it returns.
                facts, function = builder
                return facts.models.built_by(function, function.name, depth)
            # Wrappers that hold the model as first argument.
            if (
                qual.endswith("DataParallel")
                or qual.endswith("DistributedDataParallel")
                or qual in ("torch.compile", "torch.jit.script")
                or qual.endswith("FullyShardedDataParallel")
            ) and expr.args:
                return self.model_of(expr.args[0].value, scope, before, depth + 1)
            if _is_layer_name(qual):
                return Model(qual.rsplit(".", 1)[-1], [Layer(qual, expr, scope, None, self.facts)], None, expr)
            if not qual:
                chosen = self._layers_of_call(expr, scope, self.facts.site_of(expr), frozenset())
                if chosen:
                    return Model(chosen[0].short, chosen, None, expr)
            return None
        if t is cst.Name:
            binding = self._reaching(expr.value, scope, before)
            if binding is None:
                return None
            if binding.kind in ("assign", "with") and binding.value is not None:
                model = self.model_of(binding.value, binding.scope, binding.seq, depth + 1)
                if model is None and rebuilt(binding, self.facts.site_of):
                    # `if checkpoint is None: decoder = Decoder(...)` / `else: decoder = checkpoint["decoder"]`:
                    # the assignment the defaults run.
                    taken = self.facts.values.taken_assignment(binding)
                    if taken is not None and taken is not binding and taken.value is not None:
                        binding = taken
                        model = self.model_of(taken.value, taken.scope, taken.seq, depth + 1)
                if model is not None:
                    model = self._with_added_layers(model, binding)
                return model
            if binding.kind == "unpack" and binding.index is not None and type(binding.value) is cst.Call:
                return self._unpacked(binding.value, binding.index, depth)
            if binding.kind == "param":
                # Its callers in this file, then those of other files (`Trainer(model, ...)` in train.py).
                for caller, site, arg in self._arguments(binding):
                    if arg is not None:
                        model = caller.models.model_of(arg, site.scope, site.seq, depth + 1)
                        if model is not None:
                            return model
            return None
        if t is cst.Attribute and type(expr.value) is cst.Name and expr.value.value == "self":
            cls = scope.cls
            if cls is None:
                return None
            for binding in cls.self_attrs.get(expr.attr.value, []):
                model = self.model_of(binding.value, binding.scope, binding.seq, depth + 1)
                if model is not None:
                    return model
            return None
        if t is cst.Attribute and expr.attr.value == "module":
            return self.model_of(expr.value, scope, before, depth + 1)
        if t is cst.Attribute:
            # `tf.model = keras.Sequential()` then `tf.model.add(...)`, `tf.model.compile(...)`: an attribute
            # set on a module or object holds what was last assigned to it in this scope.
            text = dotted(expr)
            assigned = self._last_assignment(text, scope, before) if text is not None else None
            if assigned is not None:
                model = self.model_of(assigned.node.value, scope, assigned.seq, depth + 1)
                if model is not None:
                    added = self._added_layers(text, scope, assigned.seq, self._next_assignment(text, scope, assigned.seq))
                    model = Model(model.label, model.layers + added, model.info, model.node) if added else model
                return model
        return None

    def _unpacked(self, call: cst.Call, index: int, depth: int) -> Model | None:
        """`model, loss = builder.build()`: the `index`th item of the tuples the function or method the call
        runs returns (of this file or another, read by its own file's facts)."""
        site = self.facts.site_of(call)
        target = self.facts.loops.callee(site) if site is not None else None
        if target is None:
            return None
        home = self.facts.loops.home(target)
        for returned in target.returns:
            if type(returned) is cst.Tuple and len(returned.elements) > index:
                item = returned.elements[index].value
                if type(item) is cst.StarredElement:
                    return None
                model = home.models.model_of(item, target, None, depth + 1)
                if model is not None and model.layers:
                    return model
        return None

    def _reaching(self, name: str, scope: Scope, before: int | None) -> Binding | None:
        """The binding of `name` in force at the statement numbered `before` of `scope`, past assignments on
        the other side of an if/else from it (`if resume: model = checkpoint.model` / `else: ...Adam(
        model.parameters())` uses the parameter)."""
        binding = lookup(name, scope, before)
        use = self._site_at(scope, before) if before is not None else None
        for _ in range(8):
            if use is None or binding is None or binding.scope is not scope or binding.seq >= use.seq:
                return binding
            at = self.facts.site_of(binding.node)
            if at is None or not _exclusive(at, use):
                return binding
            earlier = lookup(name, scope, binding.seq)
            if earlier is None or earlier is binding or earlier.seq >= binding.seq:
                return binding
            binding = earlier
        return binding

    def _site_at(self, scope: Scope, seq: int) -> Site | None:
        sites = self._sites_by_seq.get(id(scope))
        if sites is None:
            sites = self._sites_by_seq[id(scope)] = {s.seq: s for s in scope.sites}
        return sites.get(seq)

    def _arguments(self, binding: Binding) -> "Iterator[tuple[FileFacts, Site, cst.BaseExpression | None]]":
        """What the calls of a parameter's function pass for it: this file's calls, then other files'."""
        for site, arg in self.facts.call_args_for(binding.scope, binding.name):
            yield self.facts, site, arg
        project = self.facts.project
        if project is None:
            return
        for caller in {id(f): f for f, _ in project.callers(binding.scope)}.values():
            if caller is not self.facts:
                for site, arg in caller.call_args_for(binding.scope, binding.name):
                    yield caller, site, arg

    def imported_function(self, qual: str) -> "tuple[FileFacts, Scope] | None":
        """A module-level function imported from another file of the project, with that file's facts."""
        project = self.facts.project
        if project is None or qual.startswith(LOCAL):
            return None
        return project.find_function(qual, self.facts.path)

    def built_by(self, function: Scope, name: str, depth: int = 0) -> Model | None:
        """The model a builder function of this file makes: what it returns, else everything it builds."""
        for returned in function.returns:
            model = self.model_of(returned, function, None, depth + 1)
            if model is not None and model.layers:
                return model
        layers = self.scope_layers(function)
        return Model(f"{name}()", layers, None, function.node) if layers else None

    def _attribute_assignments(self, text: str, scope: Scope) -> list[Site]:
        key = (id(scope), text)
        found = self._attribute_sites.get(key)
        if found is None:
            found = self._attribute_sites[key] = [
                site for site in scope.sites
                if type(site.node) is cst.Assign
                and any(dotted(t.target) == text for t in site.node.targets)
            ]
        return found

    def _last_assignment(self, text: str, scope: Scope, before: int | None) -> Site | None:
        sites = [s for s in self._attribute_assignments(text, scope) if before is None or s.seq < before]
        return sites[-1] if sites else None

    def _next_assignment(self, text: str, scope: Scope, after: int) -> int | None:
        return next((s.seq for s in self._attribute_assignments(text, scope) if s.seq > after), None)

    def _passed_layers(self, call: cst.Call, scope: Scope, before: int | None, depth: int) -> list[Layer]:
        """The layers of the models a constructor is given: `Seq2Seq(encoder, decoder)` holds and trains
        both (the class keeps them as attributes)."""
        layers = []
        for arg in call.args:
            if arg.star or type(arg.value) not in (cst.Name, cst.Call, cst.Attribute):
                continue
            if type(arg.value) is cst.Name:
                binding = lookup(arg.value.value, scope, before)
                if binding is None or binding.kind != "assign":
                    continue  # a parameter or an import: not a model built here
            model = self.model_of(arg.value, scope, before, depth + 1)
            if model is not None:
                layers.extend(layer for layer in model.layers if layer not in layers)
        return layers

    def _with_added_layers(self, model: Model, binding: Binding) -> Model:
        """Keras `model.add(layer)` and torch `model.add_module(name, layer)` calls on the name while it
        holds this model (a notebook rebinds `model` cell after cell)."""
        later = [b.seq for b in binding.scope.bindings.get(binding.name, []) if b.seq > binding.seq]
        added = self._added_layers(binding.name, binding.scope, binding.seq, min(later) if later else None)
        if not added:
            return model
        return Model(model.label, model.layers + added, model.info, model.node)

    def _added_layers(self, receiver: str, scope: Scope, start: int, end: int | None) -> list[Layer]:
        # Read once per binding: model_of is asked once per training step, and reading the whole scope
        # each time made a file of many loops cost quadratic time.
        key = (receiver, id(scope), start)
        if key in self._added:
            return self._added[key]
        added = []
        for site in scope.calls:
            if site.seq < start or (end is not None and site.seq > end):
                continue
            func = site.node.func
            if (
                type(func) is cst.Attribute
                and func.attr.value in ("add", "add_module", "append")
                and dotted(func.value) == receiver
            ):
                for arg in site.node.args:
                    added.extend(self.expression_layers(arg.value, scope, site.seq))
        self._added[key] = added
        return added

    def functional_layers(self, expr: cst.BaseExpression, scope: Scope, before: int | None) -> list[Layer]:
        """Layers a Keras functional graph applies on the way to `expr`: `outputs = Dense(1)(x)` with
        `x = LSTM(16)(inputs)` gives both, and a layer held by a name (`lstm = LSTM(16)`, `lstm(x)`)."""
        layers: list[Layer] = []
        for node, where in functional_graph(expr, scope, before):
            if type(node) is cst.Call:
                layers.extend(self._layers_of_call(node, where, None, frozenset()))
        return layers


def functional_outputs(call: cst.Call) -> cst.BaseExpression | None:
    """The outputs of `keras.Model(inputs, outputs)` (Keras 1 spelled the keyword `output=`)."""
    return _arg(call, 1, "outputs") or _keyword(call, "output")


def functional_graph(expr: cst.BaseExpression, scope: Scope, before: int | None) -> Iterator[tuple[cst.CSTNode, Scope]]:
    """The expressions `expr` is computed from, following names back through their assignments: the
    layers and operations on the way from a functional model's inputs to its outputs, and no others
    (another model built from the same inputs in the same scope is not on the way)."""
    seen: set[int] = set()
    stack = [(expr, scope, before)]
    while stack:
        node, where, point = stack.pop()
        t = type(node)
        if t is cst.Name:
            binding = lookup(node.value, where, point)
            if binding is None or binding.value is None or id(binding) in seen or binding.kind not in ("assign", "unpack"):
                continue
            seen.add(id(binding))
            stack.append((binding.value, binding.scope, binding.seq))
            if type(binding.value) in (cst.List, cst.Tuple):
                # `outputs = []` then `outputs.append(out)` in a loop: the list holds what is appended.
                for site in binding.scope.calls:
                    func = site.node.func
                    if (
                        site.seq > binding.seq
                        and type(func) is cst.Attribute
                        and func.attr.value in ("append", "extend", "insert")
                        and type(func.value) is cst.Name
                        and func.value.value == node.value
                    ):
                        stack.extend((a.value, binding.scope, site.seq) for a in site.node.args)
            continue
        yield node, where
        if t is cst.Call:
            stack.append((node.func, where, point))
            stack.extend((a.value, where, point) for a in node.args)
        elif t in (cst.List, cst.Tuple):
            stack.extend((e.value, where, point) for e in node.elements)
        elif t in (cst.Subscript, cst.Attribute):
            stack.append((node.value, where, point))
        elif t is cst.BinaryOperation:
            stack.extend(((node.left, where, point), (node.right, where, point)))
