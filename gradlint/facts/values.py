"""Values: what an expression evaluates to, where a reader of the file could tell.

Literals, module constants, simple arithmetic, argparse/click/typer defaults, TF1/absl flag defaults,
dataclass and class-attribute defaults, dict configs, config files the code reads (JSON, YAML, TOML, Hydra's
composed config: see facts.configs), and a function's parameter default, or the value its callers in the
module pass instead. Anything else is unknown (None): rules stay silent then.
"""
from __future__ import annotations

import math
import operator
import os.path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import libcst as cst

from gradlint.facts.index import Binding, Scope, Site, dotted
from gradlint.facts.names import LOCAL, canonical, lookup, qualified_name

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

MAX_DEPTH = 12


@dataclass(frozen=True)
class Value:
    value: Any
    # Where the value came from, for messages: "literal", "--lr default", "constant LR" ...
    origin: str
    node: cst.CSTNode | None = field(default=None, repr=False, compare=False)

    def with_origin(self, origin: str, node: cst.CSTNode | None) -> "Value":
        return Value(self.value, origin, node)


@dataclass(frozen=True)
class ArgOption:
    dest: str
    flag: str
    default: Value | None
    node: cst.Call


class Namespace:
    """Marker value: the result of `parser.parse_args()` (or a config object we understand).

    `options` are those of the file whose parser made it, where that is another file than the one reading it
    (`args, _ = config.get_args()`); None: the reading file's own."""

    def __init__(self, options: "dict[str, ArgOption] | None" = None) -> None:
        self.options = options

    def __repr__(self) -> str:
        # Values are compared by repr (do all assignments agree?): namespaces of one parser are one value.
        return "Namespace()" if self.options is None else f"Namespace(options at {id(self.options):x})"


NAMESPACE = Namespace()


def _spaced(v: "Value | None") -> bool:
    return v is not None and isinstance(v.value, Namespace)


class FlagValues:
    """Marker value: TF1/absl `FLAGS`, whose attributes are the defaults of the `DEFINE_*` calls of the file."""


FLAGS = FlagValues()

# Modules whose `DEFINE_float(...)` defines a flag and whose `FLAGS` holds them (canonical spellings).
_FLAG_MODULES = frozenset({"tf.app.flags", "tf.flags", "absl.flags", "tf.python.platform.flags", "gflags"})
# The flag kinds read, with how a default given as a string is parsed (as absl does).
_FLAG_KINDS = {
    "float": float,
    "integer": int,
    "string": str,
    "enum": str,
    "boolean": None,
    "bool": None,
}

# Config file readers: (kind of file, what the first argument is). "handle" is an open file (`open(p)`,
# `with open(p) as f`), "text" the file's text (`f.read()`, `Path(p).read_text()`), "path" a path.
_LOADERS = {
    "json.load": ("json", ("handle",)),
    "json.loads": ("json", ("text",)),
    "yaml.safe_load": ("yaml", ("handle", "text")),
    "yaml.load": ("yaml", ("handle", "text")),
    "yaml.full_load": ("yaml", ("handle", "text")),
    "omegaconf.OmegaConf.load": ("yaml", ("path", "handle")),
    "tomllib.load": ("toml", ("handle",)),
    "tomllib.loads": ("toml", ("text",)),
    "tomli.load": ("toml", ("handle",)),
    "tomli.loads": ("toml", ("text",)),
    "toml.load": ("toml", ("path", "handle")),
    "toml.loads": ("toml", ("text",)),
}
_OPENERS = frozenset({"open", "io.open", "codecs.open"})
_PATHS = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "os.path.join"})
_SAME_PATH = frozenset({"os.path.abspath", "os.path.realpath", "os.path.normpath", "str", "os.fspath"})

_BINOPS = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.Divide: operator.truediv,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
    cst.Power: operator.pow,
}
_COMPARE = {
    cst.GreaterThan: operator.gt,
    cst.GreaterThanEqual: operator.ge,
    cst.LessThan: operator.lt,
    cst.LessThanEqual: operator.le,
    cst.Equal: operator.eq,
    cst.NotEqual: operator.ne,
    cst.Is: operator.is_,
    cst.IsNot: operator.is_not,
    cst.In: lambda a, b: a in b,
    cst.NotIn: lambda a, b: a not in b,
}
_INF_NAMES = frozenset({"math.inf", "numpy.inf", "np.inf", "torch.inf", "float.inf"})
_NAMESPACE_PARAMS = frozenset(
    {"args", "opt", "opts", "options", "flags", "FLAGS", "hparams", "hp", "cfg", "config", "conf", "params", "a"}
)


# String methods with no arguments whose result a reader computes in their head.
STR_METHODS = frozenset({"upper", "lower", "strip", "capitalize", "title", "casefold"})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Resolver:
    """Resolves expressions of one file to values."""

    def __init__(self, facts: "FileFacts") -> None:
        self.facts = facts
        self.index = facts.index
        # binding_value's answers by (binding id, depth), and _agrees' by (scope id, name, depth):
        # a name re-assigned from itself (`lr = lr * 2`) asks the same ones again and again, so
        # without them the cost grows exponentially with the number of assignments.
        self._binding_values: dict[tuple[int, int], Value | None] = {}
        self._agreements: dict[tuple[int, str, int], bool] = {}
        self._class_names: dict[tuple[int, int, int | None], str | None] = {}
        self._taken: dict[int, Binding | None] = {}
        self.arg_options = _collect_arg_options(self)
        # The file's flag definitions, collected when a `FLAGS.name` is first read.
        self._flags: dict[str, Value | None] | None = None
        self._hydras: dict[int, Value | None] = {}

    def forget(self) -> None:
        """Drop the answers kept so far (they were read before the callers of a parameter were known)."""
        self._binding_values.clear()
        self._agreements.clear()
        self._class_names.clear()
        self._taken.clear()
        self._hydras.clear()

    # -- entry points ------------------------------------------------------------------------

    def value(self, node: cst.BaseExpression | None, scope: Scope, before: int | None = None) -> Value | None:
        if node is None:
            return None
        try:
            return self._value(node, scope, before, 0)
        except (ArithmeticError, TypeError, ValueError, OverflowError, RecursionError):
            return None

    def truth(self, test: cst.BaseExpression, scope: Scope) -> bool | None:
        """Whether a condition holds with the defaults; None when it cannot be told."""
        v = self.value(test, scope)
        if v is None or _spaced(v):
            return None
        try:
            return bool(v.value)
        except Exception:  # a value whose truth is ambiguous
            return None

    def class_name(self, node: cst.BaseExpression, scope: Scope, before: int | None = None) -> str | None:
        """The qualified name of the class (or function) an expression names, where a reader could tell.

        Beyond imports (`nn.LSTM`): a name assigned a class (`RNN = layers.LSTM`), the assignment
        the defaults take among if/elif branches, a parameter its callers (else its default) fill
        with a class, `self.cell = cell`, `getattr(nn, "GRU")` and `{"gru": nn.GRU}[args.rnn]`
        with a resolvable name or key. None when it cannot be told.
        """
        key = (id(node), id(scope), before)
        if key not in self._class_names:
            try:
                self._class_names[key] = self._class(node, scope, before, 0)
            except RecursionError:
                self._class_names[key] = None
        return self._class_names[key]

    def class_alternatives(self, node: cst.BaseExpression, scope: Scope, before: int | None = None) -> tuple[str, ...]:
        """The classes a name may hold when the branch that picks it cannot be told: one per assignment of
        the name (`if args.model == "rnn": cell_fn = rnn.RNNCell` / `elif ...: cell_fn = rnn.GRUCell`), in
        order, leaving out branches the defaults rule out. Empty when one of them names no known class."""
        if type(node) is not cst.Name:
            return ()
        binding = lookup(node.value, scope, before)
        if binding is None or binding.kind != "assign":
            return ()
        found: list[str] = []
        for candidate in binding.scope.bindings.get(binding.name, []):
            if candidate.seq > binding.seq:
                break
            if candidate.kind != "assign" or candidate.value is None:
                return ()
            site = self.facts.site_of(candidate.node)
            conds = site.ctx.conds if site is not None else ()
            if any(self.truth(c.test, binding.scope) is (not c.holds) for c in conds):
                continue
            qual = self.class_name(candidate.value, candidate.scope, candidate.seq)
            if qual is None:
                return ()
            if qual not in found:
                found.append(qual)
        return tuple(found)

    def _class(self, node, scope: Scope, before, depth: int) -> str | None:
        if depth > MAX_DEPTH:
            return None
        qual = qualified_name(node, scope, before)
        if qual is not None:
            return qual
        t = type(node)
        if t is cst.Name:
            binding = lookup(node.value, scope, before)
            if binding is None:
                return None
            if binding.kind == "param":
                return self._class_param(binding, depth)
            taken = self.taken_assignment(binding)
            if taken is None or taken.value is None:
                return None
            return self._class(taken.value, taken.scope, taken.seq, depth + 1)
        if t is cst.Attribute and type(node.value) is cst.Name and node.value.value == "self":
            cls = scope.cls
            bindings = cls.self_attrs.get(node.attr.value, []) if cls is not None else []
            if not bindings or any(b.value is None for b in bindings):
                return None
            found = {self._class(b.value, b.scope, b.seq, depth + 1) for b in bindings}
            return found.pop() if len(found) == 1 else None
        if t is cst.IfExp:
            test = self._value(node.test, scope, before, depth + 1)
            if test is None or _spaced(test):
                return None
            return self._class(node.body if test.value else node.orelse, scope, before, depth + 1)
        if t is cst.Subscript:
            if len(node.slice) != 1 or type(node.slice[0].slice) is not cst.Index:
                return None
            return self._class_from_dict(node.value, node.slice[0].slice.value, None, scope, before, depth)
        if t is cst.Call:
            func = node.func
            if qualified_name(func, scope, before) == "getattr" and len(node.args) in (2, 3):
                owner = qualified_name(node.args[0].value, scope, before)
                name = self._value(node.args[1].value, scope, before, depth + 1)
                if owner is None or owner.startswith(LOCAL) or name is None or not isinstance(name.value, str):
                    return None
                return canonical(f"{owner}.{name.value}")
            if type(func) is cst.Attribute and func.attr.value == "get" and len(node.args) in (1, 2):
                default = node.args[1].value if len(node.args) == 2 else None
                return self._class_from_dict(func.value, node.args[0].value, default, scope, before, depth)
        return None

    def _class_param(self, binding: Binding, depth: int) -> str | None:
        """A parameter's class: the one every caller passes, else its default."""
        passed = set()
        for site, arg in self.facts.call_args_for(binding.scope, binding.name):
            if arg is not None:
                passed.add(self._class(arg, site.scope, site.seq, depth + 1))
        if passed:
            return passed.pop() if len(passed) == 1 else None
        default = binding.node.default
        if default is None:
            return None
        return self._class(default, binding.scope.parent or binding.scope, None, depth + 1)

    def _class_from_dict(self, owner, key_node, default, scope: Scope, before, depth: int) -> str | None:
        """`{"lstm": nn.LSTM, "gru": nn.GRU}[key]` (or `.get(key, default)`) with a known key."""
        if type(owner) is cst.Name:
            binding = lookup(owner.value, scope, before)
            taken = self.taken_assignment(binding) if binding is not None else None
            if taken is None:
                return None
            owner, owner_scope, owner_before = taken.value, taken.scope, taken.seq
        else:
            owner_scope, owner_before = scope, before
        key = self._value(key_node, scope, before, depth + 1)
        if type(owner) is not cst.Dict or key is None or _spaced(key):
            return None
        for element in owner.elements:
            if type(element) is not cst.DictElement:
                return None
            k = self._value(element.key, owner_scope, owner_before, depth + 1)
            if k is None:
                return None
            if k.value == key.value:
                return self._class(element.value, owner_scope, owner_before, depth + 1)
        if default is not None:
            return self._class(default, scope, before, depth + 1)
        return None

    def taken_assignment(self, binding: Binding) -> Binding | None:
        """Among the assignments of a name in its scope, the last one the defaults run.

        `if cell_type == "LSTM": cell = nn.LSTM` / `else: cell = nn.GRU`: the branch each
        assignment sits in is tested with the defaults; one that cannot be told stops the search.
        """
        key = id(binding)
        if key not in self._taken:
            self._taken[key] = self._taken_assignment(binding)
        return self._taken[key]

    def _taken_assignment(self, binding: Binding) -> Binding | None:
        scope = binding.scope
        candidates = [b for b in scope.bindings.get(binding.name, []) if b.seq <= binding.seq]
        for candidate in reversed(candidates):
            if candidate.kind != "assign":
                return None
            site = self.facts.site_of(candidate.node)
            taken = True
            for cond in site.ctx.conds if site is not None else ():
                holds = self.truth(cond.test, scope)
                if holds is None:
                    return None
                if holds != cond.holds:
                    taken = False
                    break
            if taken:
                return candidate
        return None

    # -- the evaluator -----------------------------------------------------------------------

    def _value(self, node, scope: Scope, before, depth: int) -> Value | None:
        if depth > MAX_DEPTH:
            return None
        t = type(node)
        if t is cst.Integer or t is cst.Float:
            return Value(node.evaluated_value, "literal", node)
        if t is cst.SimpleString or t is cst.ConcatenatedString:
            value = node.evaluated_value
            return None if value is None else Value(value, "literal", node)
        if t is cst.UnaryOperation:
            inner = self._value(node.expression, scope, before, depth + 1)
            if inner is None:
                return None
            op = type(node.operator)
            if op is cst.Minus and _number(inner.value):
                return Value(-inner.value, inner.origin, inner.node)
            if op is cst.Plus and _number(inner.value):
                return inner
            if op is cst.Not and not _spaced(inner):
                return Value(not inner.value, inner.origin, inner.node)
            return None
        if t is cst.BinaryOperation:
            fn = _BINOPS.get(type(node.operator))
            left = self._value(node.left, scope, before, depth + 1)
            right = self._value(node.right, scope, before, depth + 1)
            if fn is None or left is None or right is None:
                return None
            if not (_number(left.value) and _number(right.value)):
                return None
            if fn is operator.pow and abs(right.value) > 64:
                return None
            origin = left if left.origin != "literal" else right
            return Value(fn(left.value, right.value), origin.origin, origin.node)
        if t is cst.Comparison:
            return self._compare(node, scope, before, depth)
        if t is cst.BooleanOperation:
            left = self._value(node.left, scope, before, depth + 1)
            right = self._value(node.right, scope, before, depth + 1)
            if left is None or right is None:
                # `x and y` where one side is known False/True decides on its own.
                known = left or right
                if known is not None and type(node.operator) is cst.And and not known.value:
                    return known
                if known is not None and type(node.operator) is cst.Or and known.value and not _spaced(known):
                    return known
                return None
            if type(node.operator) is cst.And:
                return right if left.value else left
            return left if left.value else right
        if t is cst.Name:
            return self._name(node, scope, before, depth)
        if t is cst.Attribute:
            return self._attribute(node, scope, before, depth)
        if t is cst.Subscript:
            return self._subscript(node, scope, before, depth)
        if t is cst.Call:
            return self._call(node, scope, before, depth)
        if t is cst.IfExp:
            test = self._value(node.test, scope, before, depth + 1)
            if test is None:
                return None
            return self._value(node.body if test.value else node.orelse, scope, before, depth + 1)
        if t is cst.Tuple or t is cst.List:
            items = [self._value(e.value, scope, before, depth + 1) for e in node.elements]
            if any(i is None for i in items):
                return None
            return Value(tuple(i.value for i in items), "literal", node)
        return None

    def _compare(self, node: cst.Comparison, scope, before, depth) -> Value | None:
        left = self._value(node.left, scope, before, depth + 1)
        if left is None or _spaced(left):
            return None
        origin = left
        for target in node.comparisons:
            fn = _COMPARE.get(type(target.operator))
            right = self._value(target.comparator, scope, before, depth + 1)
            if fn is None or right is None or _spaced(right):
                return None
            try:
                if not fn(left.value, right.value):
                    return Value(False, origin.origin, origin.node)
            except TypeError:
                return None
            left = right
        return Value(True, origin.origin, origin.node)

    def _name(self, node: cst.Name, scope, before, depth) -> Value | None:
        name = node.value
        if name in ("True", "False", "None"):
            return Value({"True": True, "False": False, "None": None}[name], "literal", node)
        binding = lookup(name, scope, before)
        if binding is None:
            # A linted script is judged as it runs: as the main module.
            return Value("__main__", "literal", node) if name == "__name__" else None
        return self.binding_value(binding, depth)

    def binding_value(self, binding: Binding, depth: int = 0) -> Value | None:
        key = (id(binding), depth)
        if key not in self._binding_values:
            self._binding_values[key] = self._binding_value(binding, depth)
        return self._binding_values[key]

    def _binding_value(self, binding: Binding, depth: int) -> Value | None:
        kind = binding.kind
        if kind == "assign":
            if binding.scope.parent is None and not self._agrees(binding.scope, binding.name, depth):
                return None
            v = self._value(binding.value, binding.scope, binding.seq, depth + 1)
            if v is None:
                return None
            if v.origin == "literal" and binding.scope.parent is None:
                return Value(v.value, f"constant {binding.name}", binding.node)
            return v
        if kind == "unpack":
            if binding.value is not None and type(binding.value) is cst.Call:
                func = binding.value.func
                if type(func) is cst.Attribute and func.attr.value == "parse_known_args":
                    return Value(NAMESPACE, "argparse", binding.value) if binding.index == 0 else None
                return self._returned_namespace(binding.value, binding.scope, binding.seq, depth, binding.index)
            return None
        if kind == "param":
            return self._param(binding, depth)
        if kind == "import" and binding.name == "FLAGS" and binding.qualname:
            # `from absl.flags import FLAGS`
            if canonical(binding.qualname).rpartition(".")[0] in _FLAG_MODULES:
                return Value(FLAGS, "flags", binding.node)
        return None

    def portable(self, v: Value) -> Value:
        """A value as another file's resolver can read it: a namespace made here carries this file's options."""
        if v.value is NAMESPACE:
            return Value(Namespace(self.arg_options), v.origin, v.node)
        return v

    def _returned_namespace(self, call: cst.Call, scope: Scope, before, depth: int, index: int | None) -> Value | None:
        """The namespace a function of this file or of another file of the project returns (`get_args()`),
        or item `index` of the tuple it returns (`args, unparsed = config.get_args()`)."""
        qual = qualified_name(call.func, scope, before)
        if qual is None or depth >= MAX_DEPTH - 2:
            return None
        if qual.startswith(LOCAL + "."):
            facts, function = self.facts, self.facts.function(qual[len(LOCAL) + 1 :])
        elif self.facts.project is not None:
            found = self.facts.project.find_function(qual, self.facts.path)
            facts, function = found if found is not None else (None, None)
        else:
            return None
        if function is None or not function.returns:
            return None
        results = []
        for returned in function.returns:
            if index is not None:
                if type(returned) is not cst.Tuple or len(returned.elements) <= index:
                    return None
                returned = returned.elements[index].value
            results.append(facts.values._value(returned, function, None, depth + 1))
        if not all(_spaced(r) for r in results):
            return None
        return Value(facts.values.portable(results[0]).value, "argparse", call)

    def _agrees(self, scope: Scope, name: str, depth: int) -> bool:
        """Whether a name assigned more than once in `scope` is given one value by every assignment.

        A name assigned more than once in its scope (outside the point of use) is a variable, not
        a constant; only the single-assignment case is trusted at module level.
        """
        key = (id(scope), name, depth)
        if key not in self._agreements:
            same = scope.bindings.get(name, [])
            agrees = True
            if sum(1 for b in same if b.kind != "import") > 1:
                agrees = len({self._plain(b, depth) for b in same if b.kind == "assign"}) == 1
            self._agreements[key] = agrees
        return self._agreements[key]

    def _plain(self, binding: Binding, depth: int):
        v = self._value(binding.value, binding.scope, binding.seq, depth + 1)
        return None if v is None else repr(v.value)

    def _param(self, binding: Binding, depth: int) -> Value | None:
        """A parameter's value: what its callers pass when they agree, else its default."""
        scope = binding.scope
        param: cst.Param = binding.node
        name = binding.name
        hydra = self._hydra_main(scope) if getattr(scope.node, "decorators", None) else None
        if hydra is not None and scope.params and scope.params[0] is param:
            # `@hydra.main(...) def main(cfg)`: Hydra passes the composed config, whatever callers write.
            return hydra if hydra.value is not None else None
        passed = []
        # Its callers in this file, then those of other files the project has seen (`RNNModel(args.model)`
        # in main.py), each read by its own file's resolver.
        for caller in self.facts.caller_files(scope):
            for site, arg in caller.call_args_for(scope, name):
                if arg is None:
                    continue
                v = caller.values._value(arg, site.scope, site.seq, depth + 1)
                if v is None:
                    return None  # a caller passes something we cannot read
                passed.append(caller.values.portable(v))
        if passed:
            if len({repr(v.value) for v in passed if not _spaced(v)}) > 1:
                return None
            return passed[0]
        option = self._decorator_option(scope, name)
        if option is not None:
            return option
        if param.default is not None:
            default = param.default
            # typer.Option(0.1, ...) / typer.Argument(...) carry the default as first argument.
            if type(default) is cst.Call:
                qual = qualified_name(default.func, scope.parent or scope) or ""
                if qual in ("typer.Option", "typer.Argument"):
                    first = _arg(default, 0, "default")
                    v = self._value(first, scope.parent or scope, None, depth + 1) if first is not None else None
                    return None if v is None else Value(v.value, f"default of --{name.replace('_', '-')}", default)
            v = self._value(default, scope.parent or scope, None, depth + 1)
            if v is None:
                return None
            return Value(v.value, f"default of parameter {name}", param)
        if name in _NAMESPACE_PARAMS and self.arg_options:
            return Value(NAMESPACE, "argparse", param)
        return None

    def _decorator_option(self, scope: Scope, name: str) -> Value | None:
        """click: `@click.option("--lr", default=0.1)` above the function gives `lr`'s value."""
        node = scope.node
        if not isinstance(node, cst.FunctionDef):
            return None
        for decorator in node.decorators:
            call = decorator.decorator
            if type(call) is not cst.Call:
                continue
            qual = qualified_name(call.func, scope.parent or scope) or ""
            if qual not in ("click.option", "click.argument"):
                continue
            flags = [a.value.evaluated_value for a in call.args if a.keyword is None and type(a.value) is cst.SimpleString]
            if _dest(flags) != name:
                continue
            default = _keyword(call, "default")
            if default is None:
                return None
            v = self._value(default, scope.parent or scope, None, 1)
            return None if v is None else Value(v.value, f"default of {flags[0]}", call)
        return None

    def _attribute(self, node: cst.Attribute, scope, before, depth) -> Value | None:
        name = dotted(node)
        if name is not None:
            qual = qualified_name(node, scope, before)
            if qual in _INF_NAMES or (name in _INF_NAMES and qual is not None):
                return Value(math.inf, "literal", node)
            if qual in ("math.pi", "math.e"):
                return Value(getattr(math, qual.split(".")[1]), "literal", node)
        attr = node.attr.value
        base = node.value
        if attr == "FLAGS" and self._flags_module(base, scope, before):
            return Value(FLAGS, "flags", node)
        if type(base) is cst.Name and base.value == "self":
            return self._self_attr(scope, attr, depth)
        owner = self._value(base, scope, before, depth + 1)
        if owner is None:
            # `Config.lr` on a class of this file.
            qual = qualified_name(base, scope, before)
            if qual and qual.startswith(LOCAL + "."):
                info = self.index.classes.get(qual[len(LOCAL) + 1 :])
                if info is not None:
                    return self._class_attr(info, attr, None, depth)
            return None
        if _spaced(owner):
            options = owner.value.options if owner.value.options is not None else self.arg_options
            option = options.get(attr)
            if option is None:
                return None
            return option.default
        if owner.value is FLAGS:
            return self.flag_defaults().get(attr)
        if isinstance(owner.value, ClassInstance):
            return self._class_attr(owner.value.info, attr, owner.value.call, depth)
        if isinstance(owner.value, dict) and attr in owner.value:
            # OmegaConf's `cfg.model.lr` names its key as `cfg["model"]["lr"]` would.
            return _item(owner, attr)
        return None

    def _self_attr(self, scope: Scope, attr: str, depth: int) -> Value | None:
        cls = scope.cls
        if cls is None:
            return None
        bindings = cls.self_attrs.get(attr, [])
        if len(bindings) != 1:
            return None
        b = bindings[0]
        return self._value(b.value, b.scope, b.seq, depth + 1)

    def _class_attr(self, info, attr: str, call: cst.Call | None, depth: int) -> Value | None:
        if call is not None and self.facts.is_dataclass(info):
            fields = self.facts.dataclass_fields(info)
            if attr in fields:
                passed = _keyword(call, attr)
                if passed is None:
                    position = list(fields).index(attr)
                    passed = _arg(call, position, attr)
                if passed is not None:
                    return self._value(passed, self.facts.scope_of_call(call), None, depth + 1)
        bindings = info.scope.bindings.get(attr, [])
        if len(bindings) != 1 or bindings[0].value is None:
            return None
        v = self._value(bindings[0].value, info.scope, None, depth + 1)
        return None if v is None else Value(v.value, f"{info.name}.{attr} default", bindings[0].node)

    def _subscript(self, node: cst.Subscript, scope, before, depth) -> Value | None:
        if len(node.slice) != 1 or type(node.slice[0].slice) is not cst.Index:
            return None
        owner = self._value(node.value, scope, before, depth + 1)
        key = self._value(node.slice[0].slice.value, scope, before, depth + 1)
        if owner is None or key is None:
            return None
        if isinstance(owner.value, dict):
            if key.value in owner.value:
                return Value(owner.value[key.value], f"{owner.origin}[{key.value!r}]", owner.node)
            return None
        if isinstance(owner.value, (tuple, str)) and isinstance(key.value, int):
            return Value(owner.value[key.value], owner.origin, owner.node)
        return None

    def _call(self, node: cst.Call, scope, before, depth) -> Value | None:
        func = node.func
        if type(func) is cst.Attribute and func.attr.value in ("parse_args",):
            return Value(NAMESPACE, "argparse", node)
        if type(func) is cst.Attribute and func.attr.value == "get" and len(node.args) >= 1:
            owner = self._value(func.value, scope, before, depth + 1)
            key = self._value(node.args[0].value, scope, before, depth + 1)
            if owner is not None and key is not None and isinstance(owner.value, dict):
                if key.value in owner.value:
                    return _item(owner, key.value)
                if len(node.args) >= 2:
                    return self._value(node.args[1].value, scope, before, depth + 1)
            return None
        if type(func) is cst.Attribute and func.attr.value in STR_METHODS and not node.args:
            # `args.rnn_type.upper()`: a string method on a resolved string, as in getattr(nn, ...).
            inner = self._value(func.value, scope, before, depth + 1)
            if inner is None or not isinstance(inner.value, str):
                return None
            return Value(getattr(inner.value, func.attr.value)(), inner.origin, inner.node)
        qual = qualified_name(func, scope, before)
        if qual in _LOADERS:
            return self._config_file(node, qual, scope, before, depth)
        if qual in ("omegaconf.OmegaConf.to_container", "omegaconf.OmegaConf.to_object") and node.args:
            return self._value(node.args[0].value, scope, before, depth + 1)
        if qual in ("float", "int") and len(node.args) == 1:
            inner = self._value(node.args[0].value, scope, before, depth + 1)
            if inner is None:
                return None
            try:
                return Value(float(inner.value) if qual == "float" else int(inner.value), inner.origin, inner.node)
            except (TypeError, ValueError):
                return None
        if qual in ("min", "max") and node.args:
            items = [self._value(a.value, scope, before, depth + 1) for a in node.args]
            if any(i is None or not _number(i.value) for i in items) or len(items) < 2:
                return None
            pick = (min if qual == "min" else max)(items, key=lambda v: v.value)
            return pick
        if qual == "dict":
            result = {}
            for arg in node.args:
                if arg.keyword is None:
                    return None
                v = self._value(arg.value, scope, before, depth + 1)
                result[arg.keyword.value] = None if v is None else v.value
            return Value(result, "dict", node)
        if qual and qual.startswith(LOCAL + "."):
            name = qual[len(LOCAL) + 1 :]
            info = self.index.classes.get(name)
            if info is not None:
                return Value(ClassInstance(info, node), f"{name}()", node)
            function = self.facts.function(name)
            if function is not None and depth < MAX_DEPTH - 2:
                results = [self._value(r, function, None, depth + 1) for r in function.returns]
                if results and all(_spaced(r) for r in results):
                    return Value(NAMESPACE, "argparse", node)
                # `def load_config(path): with open(path) as f: return json.load(f)`, the path as its
                # callers agree on it: the file's mapping.
                if results and all(r is not None and _from_file(r.origin) for r in results):
                    if len({repr(r.value) for r in results}) == 1:
                        return results[0]
        if qual in ("argparse.Namespace", "types.SimpleNamespace"):
            result = {}
            for arg in node.args:
                if arg.keyword is not None:
                    v = self._value(arg.value, scope, before, depth + 1)
                    if v is not None:
                        result[arg.keyword.value] = v.value
            return Value(result, f"{qual.split('.')[-1]}()", node)
        if qual and not qual.startswith(LOCAL + "."):
            # `args = config.get_args()`: a parser built in another file of the project.
            return self._returned_namespace(node, scope, before, depth, None)
        return None

    # -- config files and flags --------------------------------------------------------------

    def _config_file(self, node: cst.Call, qual: str, scope, before, depth) -> Value | None:
        """`json.load(open("config.json"))`, `yaml.safe_load(f)`, `OmegaConf.load(p)` ...: the file's mapping."""
        from gradlint.facts import configs

        head = dotted(node.func).split(".")[0]
        binding = lookup(head, scope, before)
        if binding is None or binding.kind != "import" or not node.args or node.args[0].keyword is not None:
            return None  # a reader of this name the file does not import (yaml.safe_load without `import yaml`)
        kind, accepts = _LOADERS[qual]
        arg = node.args[0].value
        written = None
        for form in accepts:
            if form == "handle":
                written = self._opened(arg, scope, before, depth + 1)
            elif form == "text":
                written = self._read_text(arg, scope, before, depth + 1)
            else:
                written = self._path(arg, scope, before, depth + 1)
            if written is not None:
                break
        if written is None:
            return None
        data = configs.load(self.facts, written, kind)
        if data is None:
            return None
        if qual.startswith("omegaconf."):
            data = configs.omegaconf(data)
        shown = os.path.basename(written) if os.path.isabs(written) else written
        return Value(data, shown, node)

    def _opened(self, node, scope, before, depth) -> str | None:
        """The path of an open file: `open(p)`, `Path(p).open()`, or a name bound to one (`with open(p) as f`)."""
        if depth > MAX_DEPTH:
            return None
        t = type(node)
        if t is cst.Call:
            func = node.func
            if qualified_name(func, scope, before) in _OPENERS:
                first = _arg(node, 0, "file")
                return None if first is None else self._path(first, scope, before, depth + 1)
            if type(func) is cst.Attribute and func.attr.value == "open":
                return self._path(func.value, scope, before, depth + 1, path_only=True)
            return None
        if t is cst.Name:
            binding = lookup(node.value, scope, before)
            if binding is not None and binding.kind == "assign":
                binding = self.taken_assignment(binding)
            if binding is None or binding.kind not in ("with", "assign") or binding.value is None:
                return None
            return self._opened(binding.value, binding.scope, binding.seq, depth + 1)
        return None

    def _read_text(self, node, scope, before, depth) -> str | None:
        """The path of a file whose text this is: `f.read()`, `open(p).read()`, `Path(p).read_text()`."""
        if type(node) is not cst.Call or type(node.func) is not cst.Attribute or node.args:
            return None
        method = node.func.attr.value
        if method == "read":
            return self._opened(node.func.value, scope, before, depth + 1)
        if method in ("read_text", "read_bytes"):
            return self._path(node.func.value, scope, before, depth + 1, path_only=True)
        return None

    def _path(self, node, scope, before, depth, path_only: bool = False) -> str | None:
        """A file path as a string: a resolvable string, `Path(...)`, `os.path.join(...)`, `a / "b"`,
        `os.path.dirname(__file__)`, `Path(__file__).parent`. With `path_only`, only what is surely a
        path object (the owner of `.open()` or `.read_text()`)."""
        if depth > MAX_DEPTH:
            return None
        t = type(node)
        if t is cst.Name:
            binding = lookup(node.value, scope, before)
            if binding is None and node.value == "__file__":
                from gradlint.facts.configs import folder

                here = folder(self.facts)
                return None if here is None else str(here / os.path.basename(self.facts.path))
            if binding is not None and binding.kind == "assign":
                taken = self.taken_assignment(binding)
                if taken is not None and taken.value is not None:
                    return self._path(taken.value, taken.scope, taken.seq, depth + 1, path_only)
        elif t is cst.Call:
            qual = qualified_name(node.func, scope, before)
            if qual in _PATHS or qual in _SAME_PATH or qual == "os.path.dirname":
                parts = [self._path(a.value, scope, before, depth + 1) for a in node.args]
                if any(p is None for p in parts) or any(a.keyword or a.star for a in node.args):
                    return None
                if qual == "os.path.dirname":
                    return os.path.dirname(parts[0]) if len(parts) == 1 else None
                if qual in _SAME_PATH:
                    return parts[0] if len(parts) == 1 else None
                return os.path.join(*parts) if parts else "."
            func = node.func
            if type(func) is cst.Attribute and func.attr.value in ("resolve", "absolute", "expanduser") and not node.args:
                return self._path(func.value, scope, before, depth + 1, path_only=True)
            if path_only:
                return None
        elif t is cst.Attribute and node.attr.value == "parent":
            inner = self._path(node.value, scope, before, depth + 1, path_only=True)
            return None if inner is None else os.path.dirname(inner)
        elif t is cst.BinaryOperation and type(node.operator) is cst.Divide:
            left = self._path(node.left, scope, before, depth + 1, path_only=True)
            right = self._path(node.right, scope, before, depth + 1)
            return None if left is None or right is None else os.path.join(left, right)
        elif path_only:
            return None
        v = self._value(node, scope, before, depth + 1)
        return v.value if v is not None and isinstance(v.value, str) else None

    def _hydra_main(self, scope: Scope) -> "Value | None":
        """For a function decorated `@hydra.main(config_path=..., config_name=...)`: its config as a Value
        (whose value is None when it cannot be read); None for any other function. Composed once per function."""
        key = id(scope)
        if key not in self._hydras:
            self._hydras[key] = self._compose_hydra_main(scope)
        return self._hydras[key]

    def _compose_hydra_main(self, scope: Scope) -> "Value | None":
        node = scope.node
        if not isinstance(node, cst.FunctionDef) or not node.decorators:
            return None
        for decorator in node.decorators:
            call = decorator.decorator
            if type(call) is not cst.Call or qualified_name(call.func, scope.parent or scope) != "hydra.main":
                continue
            outer = scope.parent or scope
            path_node, name_node = _arg(call, 0, "config_path"), _arg(call, 1, "config_name")
            path = self.value(path_node, outer) if path_node is not None else None
            name = self.value(name_node, outer) if name_node is not None else None
            if path is None or name is None or not isinstance(path.value, str) or not isinstance(name.value, str):
                return Value(None, "hydra", call)  # no config_path: Hydra reads no file (or one we cannot tell)
            from gradlint.facts import configs

            data = configs.hydra(self.facts, path.value, name.value)
            origin = os.path.join(path.value, name.value)
            return Value(data, origin if origin.endswith((".yaml", ".yml")) else f"{origin}.yaml", call)
        return None

    def _flags_module(self, node, scope, before) -> bool:
        """Whether an expression names a flags module: `tf.app.flags`, `absl.flags`, or a name assigned one
        (`flags = tf.app.flags`)."""
        if qualified_name(node, scope, before) in _FLAG_MODULES:
            return True
        if type(node) is cst.Name:
            binding = lookup(node.value, scope, before)
            if binding is not None and binding.kind == "assign" and binding.value is not None:
                same = binding.scope.bindings.get(binding.name, [])
                return len(same) == 1 and qualified_name(binding.value, binding.scope, binding.seq) in _FLAG_MODULES
        return False

    def flag_defaults(self) -> dict[str, Value | None]:
        """The defaults of the file's `DEFINE_float("lr", 0.1, ...)` calls, by flag name (None: unknown)."""
        if self._flags is None:
            self._flags = {}
            required: list[cst.Arg] = []
            for site in self.index.all_sites:
                call = site.node
                if type(call) is not cst.Call:
                    continue
                func = call.func
                method = func.attr.value if type(func) is cst.Attribute else func.value if type(func) is cst.Name else ""
                if method in ("mark_flag_as_required", "mark_flags_as_required"):
                    required.extend(call.args[:1])
                    continue
                if not method.startswith("DEFINE_"):
                    continue
                if type(func) is cst.Attribute:
                    if not self._flags_module(func.value, site.scope, site.seq):
                        continue
                elif (qualified_name(func, site.scope, site.seq) or "").rpartition(".")[0] not in _FLAG_MODULES:
                    continue
                self._define_flag(call, method[len("DEFINE_"):], site)
            for arg in required:
                # `flags.mark_flag_as_required("lr")`: the user passes it, so its default never runs.
                names = self.value(arg.value, self.index.scope)
                if names is None:
                    self._flags = {}  # which flags cannot be told: none is known
                    break
                for name in names.value if isinstance(names.value, tuple) else (names.value,):
                    self._flags[name] = None
        return self._flags

    def _define_flag(self, call: cst.Call, kind: str, site: Site) -> None:
        name_node = _arg(call, 0, "name")
        name = self.value(name_node, site.scope, site.seq) if name_node is not None else None
        if name is None or not isinstance(name.value, str):
            return
        value = None
        default_node = _arg(call, 1, "default")
        default = self.value(default_node, site.scope, site.seq) if default_node is not None else None
        if kind in _FLAG_KINDS and default is not None:
            value = _flag_value(kind, default.value)
        found = None if value is None else Value(value[0], f"--{name.value} default", call)
        if name.value in self._flags and self._flags[name.value] != found:
            found = None  # defined twice with different defaults: which one runs is unknown
        self._flags[name.value] = found

    def dict_literal(self, node: cst.Dict, scope: Scope) -> dict | None:
        result = {}
        for element in node.elements:
            if type(element) is not cst.DictElement:
                return None
            key = self.value(element.key, scope)
            value = self.value(element.value, scope)
            if key is None:
                return None
            result[key.value] = None if value is None else value.value
        return result


@dataclass(frozen=True)
class ClassInstance:
    info: Any
    call: cst.Call


def _arg(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    """An argument given by keyword or position (TorchFix's get_specific_arg)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [a for a in call.args if a.keyword is None and not a.star]
    if position is not None and 0 <= position < len(positional):
        return positional[position].value
    return None


def _keyword(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    return None


def _item(owner: Value, key: Any) -> Value:
    """An item of a mapping value; one read from a config file names its key (`config.json['lr']`)."""
    origin = f"{owner.origin}[{key!r}]" if _from_file(owner.origin) else owner.origin
    return Value(owner.value[key], origin, owner.node)


def _from_file(origin: str) -> bool:
    """Whether a value was read from a config file (its origin names the file, then its keys)."""
    return origin.split("[", 1)[0].endswith((".json", ".yaml", ".yml", ".toml"))


def _flag_value(kind: str, value: Any) -> tuple[Any] | None:
    """A flag's default as absl holds it (a one-tuple, since None is a default too); None when unknown."""
    if value is None:
        return (None,)
    if kind in ("boolean", "bool"):
        if isinstance(value, bool):
            return (value,)
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return (value.lower() in ("true", "1"),)
        return None
    parse = _FLAG_KINDS[kind]
    if parse is not str and isinstance(value, bool):
        return None
    if isinstance(value, (str, int, float)):
        try:
            return (parse(value),)
        except (TypeError, ValueError):
            return None
    return None


def _dest(flags: list[str]) -> str | None:
    longs = [f for f in flags if f.startswith("--")]
    chosen = longs[0] if longs else (flags[0] if flags else None)
    if chosen is None:
        return None
    return chosen.lstrip("-").replace("-", "_").split("/")[0]


def _collect_arg_options(resolver: Resolver) -> dict[str, ArgOption]:
    options: dict[str, ArgOption] = {}
    defaults: dict[str, Value] = {}
    for site in resolver.index.all_sites:
        call = site.node
        if type(call) is not cst.Call or type(call.func) is not cst.Attribute:
            continue
        method = call.func.attr.value
        if method == "set_defaults":
            for arg in call.args:
                if arg.keyword is not None:
                    v = resolver.value(arg.value, site.scope, site.seq)
                    if v is not None:
                        defaults[arg.keyword.value] = v.with_origin(f"set_defaults({arg.keyword.value}=...)", call)
            continue
        if method != "add_argument":
            continue
        flags = []
        for arg in call.args:
            if arg.keyword is None and type(arg.value) is cst.SimpleString:
                flag = arg.value.evaluated_value
                if isinstance(flag, str):
                    flags.append(flag)
        dest_node = _keyword(call, "dest")
        dest = None
        if dest_node is not None and type(dest_node) is cst.SimpleString:
            dest = dest_node.evaluated_value
        dest = dest or _dest(flags)
        if not dest:
            continue
        flag = next((f for f in flags if f.startswith("--")), flags[0] if flags else dest)
        action = _keyword(call, "action")
        action_name = action.evaluated_value if action is not None and type(action) is cst.SimpleString else None
        default_node = _keyword(call, "default")
        default: Value | None
        if default_node is not None:
            default = resolver.value(default_node, site.scope, site.seq)
            if default is not None:
                default = Value(_apply_type(call, default.value, site, resolver), f"{flag} default", call)
        elif action_name == "store_true":
            default = Value(False, f"{flag} default", call)
        elif action_name == "store_false":
            default = Value(True, f"{flag} default", call)
        elif _keyword(call, "required") is not None or not flag.startswith("-"):
            default = None  # the user must pass it: its value is unknown
        else:
            default = Value(None, f"{flag} default", call)
        options[dest] = ArgOption(dest, flag, default, call)
    for dest, v in defaults.items():
        if dest in options:
            options[dest] = ArgOption(dest, options[dest].flag, v, options[dest].node)
    return options


def _apply_type(call: cst.Call, value: Any, site: Site, resolver: Resolver) -> Any:
    type_node = _keyword(call, "type")
    if type_node is None or not isinstance(value, str):
        return value
    name = dotted(type_node)
    try:
        if name == "float":
            return float(value)
        if name == "int":
            return int(value)
    except ValueError:
        return value
    return value
