"""Data: the batch sizes a file feeds training with, where they come from, and which loaders only evaluate.

Sources: `DataLoader(..., batch_size=)`, Keras `model.fit(..., batch_size=)`, `tf.data` `.batch(n)`,
Hugging Face `TrainingArguments(per_device_train_batch_size=)`, torchtext's `BucketIterator`/`Iterator`
(and their `.splits`), given directly or through `**kwargs` from a dict the file spells out. A loader is an *evaluation* loader when
its name, its dataset's name or the function building it says so (val/valid/test/eval/dev, a function
named evaluate/validate/test or a Lightning `val_dataloader`), or when every loop over it runs under
`torch.no_grad()`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.facts.index import Scope, Site, dotted
from gradlint.facts.names import lookup, qualified_name
from gradlint.facts.values import Value, _arg, _keyword

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

DATALOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader", "torch_geometric.loader.DataLoader"})
# torchtext's iterators: `BucketIterator(train, batch_size)` and `BucketIterator.splits((train, ...), batch_size=)`.
TORCHTEXT_ITERATORS = frozenset({"BucketIterator", "Iterator", "BPTTIterator"})
HF_ARGUMENTS = ("TrainingArguments", "SFTConfig", "DPOConfig", "RewardConfig", "GRPOConfig", "PPOConfig")
_EVAL = re.compile(r"(^|_|\b)(val|valid|validation|test|testing|eval|evaluation|evaluate|dev|holdout|inference|predict|infer)(_|$|\b|\d|set|data|loader|ds|dl)", re.IGNORECASE)
_EVAL_FUNCTIONS = re.compile(r"^(_?)(evaluate|eval|validate|validation|test|predict|inference|infer)|_(val|valid|validation|test|eval|predict)_?(data)?(loader|dataloader)s?$|(^|_)(val|test|eval|predict)_dataloader", re.IGNORECASE)
_TRAIN = re.compile(r"train", re.IGNORECASE)


@dataclass(eq=False)
class BatchSize:
    call: cst.Call  # where it is set: the DataLoader / fit / batch / TrainingArguments call
    site: Site
    source: str  # "DataLoader", "fit", "tf.data batch", "TrainingArguments"
    value: Value | None
    node: cst.BaseExpression | None  # the batch size expression
    evaluation: str | None  # why the batch only evaluates, if it does
    named_train: bool  # the loader or its builder is named for training


class DataFacts:
    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        self._batches: list[BatchSize] | None = None

    def batch_sizes(self) -> list[BatchSize]:
        if self._batches is not None:
            return self._batches
        result = []
        keras = self._uses_keras()
        for site in self.facts.index.all_sites:
            call = site.node
            if type(call) is not cst.Call:
                continue
            found = self._batch(call, site, keras)
            if found is not None:
                result.append(found)
        self._batches = result
        return result

    def _uses_keras(self) -> bool:
        for bindings in self.facts.index.scope.bindings.values():
            for b in bindings:
                if b.kind == "import" and (b.qualname or "").split(".")[0] in ("keras", "tensorflow", "tf_keras"):
                    return True
        return False

    def _batch(self, call: cst.Call, site: Site, keras: bool) -> BatchSize | None:
        scope = site.scope
        qual = qualified_name(call.func, scope, site.seq) or ""
        func = call.func
        if qual in DATALOADERS or qual.endswith(".DataLoader") and qual.startswith("torch"):
            found = self._argument(call, site, 1, "batch_size")
            if found is None:
                return None  # DataLoader's default is 1
            return self._make(call, site, "DataLoader", *found)
        if qual.startswith(("transformers.", "trl.")) and qual.endswith(HF_ARGUMENTS):
            found = self._argument(call, site, None, "per_device_train_batch_size")
            if found is None:
                return None  # default 8
            return self._make(call, site, "per_device_train_batch_size", *found)
        if qual.startswith("torchtext.") and _torchtext_iterator(qual):
            splits = qual.endswith(".splits")
            found = self._argument(call, site, None if splits else 1, "batch_size")
            if found is None and splits:
                # `batch_sizes=(train, valid, test)`: the first one trains.
                sizes = self._argument(call, site, None, "batch_sizes")
                if sizes is not None and type(sizes[0]) in (cst.Tuple, cst.List) and sizes[0].elements:
                    found = (sizes[0].elements[0].value, sizes[1], sizes[2])
            if found is None:
                return None
            return self._make(call, site, "torchtext iterator", *found)
        if type(func) is cst.Attribute and func.attr.value in ("fit", "fit_generator") and keras:
            node = _arg(call, 2, "batch_size")
            if node is None:
                return None  # Keras's default is 32
            return self._make(call, site, "fit", node)
        if type(func) is cst.Attribute and func.attr.value in ("batch", "padded_batch") and self._tf_dataset(func.value, site):
            node = _arg(call, 0, "batch_size")
            if node is None:
                return None
            return self._make(call, site, "tf.data batch", node)
        return None

    def _tf_dataset(self, receiver: cst.BaseExpression, site: Site, depth: int = 0) -> bool:
        """Whether a receiver chain starts at a `tf.data` call: `tf.data.Dataset.from_tensor_slices(x).shuffle(n)`."""
        if depth > 8:
            return False
        if type(receiver) is cst.Call:
            qual = qualified_name(receiver.func, site.scope, site.seq) or ""
            if qual.startswith(("tf.data.", "tensorflow.data.")):
                return True
            if type(receiver.func) is cst.Attribute:
                return self._tf_dataset(receiver.func.value, site, depth + 1)
            return False
        if type(receiver) is cst.Attribute:
            qual = qualified_name(receiver, site.scope, site.seq) or ""
            return qual.startswith(("tf.data.", "tensorflow.data."))
        if type(receiver) is cst.Name:
            binding = lookup(receiver.value, site.scope, site.seq)
            if binding is not None and binding.kind == "assign" and binding.value is not None:
                inner = self.facts.site_of(binding.node)
                return self._tf_dataset(binding.value, inner or site, depth + 1)
        return False

    def _argument(
        self, call: cst.Call, site: Site, position: int | None, keyword: str
    ) -> tuple[cst.BaseExpression, Scope, int | None] | None:
        """An argument given in the call, or through `**kwargs` built from a dict the file spells out,
        with the scope and point it is read at. None when absent or when a `**` dict cannot be read."""
        node = _keyword(call, keyword) if position is None else _arg(call, position, keyword)
        if node is not None:
            return node, site.scope, site.seq
        for arg in call.args:
            if arg.star == "**":
                found = self._dict_entry(arg.value, site.scope, site.seq, keyword)
                if found is not None:
                    return None if found is _UNKNOWN else found
        return None

    def _dict_entry(self, expr: cst.BaseExpression, scope: Scope, before: int | None, key: str, depth: int = 0):
        """`key`'s entry in a dict: a literal, `dict(...)`, or a name bound to one and then `.update`d or
        assigned `d[key] = ...` before the point of use; the latest write wins. None when the dict has no
        such key, _UNKNOWN when it cannot be read."""
        if depth > 4:
            return _UNKNOWN
        found = None
        if type(expr) is cst.Dict:
            for element in expr.elements:
                if type(element) is cst.StarredDictElement:
                    found = self._dict_entry(element.value, scope, before, key, depth + 1) or found
                    continue
                k = self.facts.values.value(element.key, scope, before)
                if k is None:
                    found = _UNKNOWN
                elif k.value == key:
                    found = (element.value, scope, before)
            return found
        if type(expr) is cst.Call and qualified_name(expr.func, scope, before) == "dict":
            return self._written(expr.args, scope, before, key, depth, found)
        if type(expr) is not cst.Name:
            return _UNKNOWN
        binding = lookup(expr.value, scope, before)
        if binding is None or binding.kind != "assign" or binding.value is None:
            return _UNKNOWN
        found = self._dict_entry(binding.value, binding.scope, binding.seq, key, depth + 1)
        # Later writes in the same scope: `kwargs.update({...})`, `kwargs.update(batch_size=...)`, `kwargs[key] = ...`.
        for site in binding.scope.sites:
            if site.seq <= binding.seq or (before is not None and binding.scope is scope and site.seq >= before):
                continue
            node = site.node
            if type(node) is cst.Call and type(node.func) is cst.Attribute and node.func.attr.value == "update":
                if dotted(node.func.value) == expr.value:
                    found = self._written(node.args, site.scope, site.seq, key, depth, found)
            elif type(node) is cst.Assign:
                for target in node.targets:
                    t = target.target
                    if type(t) is cst.Subscript and dotted(t.value) == expr.value and len(t.slice) == 1:
                        index = t.slice[0].slice
                        k = self.facts.values.value(index.value, site.scope, site.seq) if type(index) is cst.Index else None
                        if k is None:
                            found = _UNKNOWN
                        elif k.value == key:
                            found = (node.value, site.scope, site.seq)
        return found

    def _written(self, args, scope: Scope, before: int | None, key: str, depth: int, found):
        """What `dict(...)` or `d.update(...)` arguments write to `key`, over what `found` held."""
        for arg in args:
            if arg.keyword is not None:
                if arg.keyword.value == key:
                    found = (arg.value, scope, before)
            else:
                found = self._dict_entry(arg.value, scope, before, key, depth + 1) or found
        return found

    def _make(
        self, call: cst.Call, site: Site, source: str, node: cst.BaseExpression,
        scope: Scope | None = None, before: int | None = None,
    ) -> BatchSize:
        if scope is None:
            scope, before = site.scope, site.seq
        value = self.facts.values.value(node, scope, before)
        names = self._names(call, site)
        evaluation = self._evaluation(call, site, names, source)
        named_train = any(_TRAIN.search(n) for n in names) or source in ("fit", "per_device_train_batch_size")
        return BatchSize(call, site, source, value, node, evaluation, named_train)

    def _names(self, call: cst.Call, site: Site) -> list[str]:
        """The names that say what a loader is for: its target, its dataset, its enclosing functions."""
        names = []
        stmt = site.ctx.stmt
        if type(stmt) is cst.Assign and len(stmt.targets) == 1:
            target = dotted(stmt.targets[0].target)
            if target:
                names.append(target.split(".")[-1])
        if type(stmt) is cst.Return or type(stmt) is cst.Assign:
            pass
        first = call.args[0].value if call.args and call.args[0].keyword is None else _keyword(call, "dataset")
        text = dotted(first) if first is not None else None
        if text:
            names.append(text.split(".")[-1])
        elif type(call.func) is cst.Attribute:
            receiver = dotted(call.func.value)
            if receiver:
                names.append(receiver.split(".")[-1])
        return names

    def _evaluation(self, call: cst.Call, site: Site, names: list[str], source: str) -> str | None:
        if source == "per_device_train_batch_size":
            return None
        for name in names:
            if _EVAL.search(name) and not _TRAIN.search(name):
                return f"`{name}` is named for evaluation"
        scope = site.scope
        while scope is not None:
            function = scope.name.rsplit(".", 1)[-1]
            if scope.is_function and _EVAL_FUNCTIONS.search(function) and not _TRAIN.search(function):
                return f"it is built in `{function}`"
            scope = scope.parent
        loops = self._loops_over(site)
        if loops and all(no_grad for no_grad in loops):
            return "every loop over it runs under torch.no_grad()"
        return None

    def _loops_over(self, site: Site) -> list[bool]:
        """For each for-loop over the name the loader is assigned to: whether its body runs under no_grad."""
        stmt = site.ctx.stmt
        if type(stmt) is not cst.Assign or len(stmt.targets) != 1 or type(stmt.targets[0].target) is not cst.Name:
            return []
        name = stmt.targets[0].target.value
        loops: dict[int, bool] = {}
        for other in site.scope.sites:
            for loop in other.ctx.loops:
                if type(loop) is not cst.For:
                    continue
                it = loop.iter
                while type(it) is cst.Call and it.args and (qualified_name(it.func, site.scope) or "") in ("enumerate", "tqdm.tqdm", "tqdm", "zip", "iter"):
                    it = it.args[0].value
                if type(it) is cst.Name and it.value == name:
                    loops[id(loop)] = loops.get(id(loop), True) and other.ctx.no_grad
        return list(loops.values())


_UNKNOWN = object()


def _torchtext_iterator(qual: str) -> bool:
    parts = qual.split(".")
    if parts[-1] == "splits":
        parts = parts[:-1]
    return parts[-1] in TORCHTEXT_ITERATORS
