"""One walk over a parsed module: scopes, bindings, imports, classes, calls and statements in order.

This is deliberately not a libcst visitor: a visitor dispatches on every node (whitespace included)
and costs about as much as the parse itself. The walk below only descends through statements and
the expression fields that can hold calls, and records what the facts layer asks about later.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

import libcst as cst

# Expression nodes that can never hold a call: the walk stops at them.
_LEAVES = (
    cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis,
)
_SKIP_FIELDS = frozenset(
    {
        "lpar", "rpar", "comma", "equal", "star", "dot", "colon", "semicolon", "operator",
        "lbracket", "rbracket", "lbrace", "rbrace", "whitespace_after_func",
        "whitespace_before_args", "whitespace_after_star", "whitespace_after_arg", "keyword",
        "whitespace_before", "whitespace_after", "whitespace_after_value", "prefix", "quote",
        "start", "end", "attr", "whitespace_after_lambda", "whitespace_after_for",
        "whitespace_before_in", "whitespace_after_in", "whitespace_before_if",
        "whitespace_after_if", "whitespace_before_else", "whitespace_after_else",
        "whitespace_after_await", "whitespace_before_walrus", "whitespace_after_walrus",
        "whitespace_after_from", "whitespace_after_yield", "asynchronous", "value_str",
        "whitespace_before_colon", "whitespace_after_colon", "whitespace_before_value",
        "whitespace_after_param", "whitespace_before_indicator", "whitespace_after_indicator",
    }
)
_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(node_type: type) -> tuple[str, ...]:
    names = _FIELDS.get(node_type)
    if names is None:
        names = tuple(
            f.name for f in dataclasses.fields(node_type) if f.name not in _SKIP_FIELDS
        )
        _FIELDS[node_type] = names
    return names


_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)


@dataclass(eq=False)
class Cond:
    """One enclosing branch: `test` held (`holds=True`) or did not (the else side)."""

    test: cst.BaseExpression
    holds: bool
    node: cst.CSTNode


def opposite(a: Iterable[Cond], b: Iterable[Cond]) -> bool:
    """Whether two points with these enclosing branches sit on opposite sides of one `if` (never both run)."""
    sides = {id(c.node): c.holds for c in a}
    return any(id(c.node) in sides and sides[id(c.node)] != c.holds for c in b)


class Ctx:
    """Where a point of the code sits: its scope, and the loops, branches and blocks around it.

    A plain class with slots rather than a dataclass: the walk makes one per block and statement,
    and `dataclasses.replace` cost a tenth of the walk.
    """

    __slots__ = ("scope", "loops", "conds", "no_grad", "repeats", "stmt")

    def __init__(self, scope: "Scope", loops=(), conds=(), no_grad=False, repeats=(), stmt=None) -> None:
        self.scope = scope
        self.loops: tuple[cst.CSTNode, ...] = loops
        self.conds: tuple[Cond, ...] = conds
        self.no_grad: bool = no_grad
        # Comprehensions and for-loops enclosing the point, innermost last (for layer counts).
        self.repeats: tuple[cst.CSTNode, ...] = repeats
        self.stmt: cst.CSTNode | None = stmt


@dataclass(eq=False)
class Binding:
    name: str
    kind: str  # "assign", "param", "import", "def", "class", "for", "with", "unpack", "aug"
    node: cst.CSTNode
    value: cst.BaseExpression | None
    scope: "Scope"
    seq: int
    qualname: str | None = None  # for imports
    index: int | None = None  # position in a tuple unpacking


@dataclass(eq=False)
class Site:
    """A call or an assignment statement at one point of a scope, in evaluation order."""

    node: cst.CSTNode
    ctx: Ctx
    seq: int

    @property
    def scope(self) -> "Scope":
        return self.ctx.scope


@dataclass(eq=False)
class Scope:
    name: str
    node: cst.CSTNode
    parent: "Scope | None"
    cls: "ClassInfo | None" = None
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    sites: list[Site] = field(default_factory=list)
    returns: list[cst.BaseExpression] = field(default_factory=list)
    params: list[cst.Param] = field(default_factory=list)
    # qualified_name's answers for this scope, by (node id, point): rules ask the same ones often.
    qualnames: dict[tuple[int, int | None], str | None] = field(default_factory=dict)
    # Names a function declares `global`: they are the module's names (names.lookup reads them there).
    globals: set[str] = field(default_factory=set)
    # Modules imported with `from module import *` (only a module may), as written (`.models` if relative).
    star_imports: list[str] = field(default_factory=list)

    def bind(self, binding: Binding) -> None:
        # Bindings are made with increasing seq, so each name's list stays sorted by seq
        # (names.lookup bisects it).
        self.bindings.setdefault(binding.name, []).append(binding)

    @cached_property
    def calls(self) -> list[Site]:
        # Asked once per event by some facts (a model's `.add(...)` calls): filtering the sites
        # each time made a long scope cost quadratic time. Read only after the walk.
        return [s for s in self.sites if type(s.node) is cst.Call]

    @property
    def is_function(self) -> bool:
        return isinstance(self.node, cst.FunctionDef)


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: cst.ClassDef
    scope: Scope  # the class body
    outer: Scope
    methods: dict[str, Scope] = field(default_factory=dict)
    # `self.x = value` in any method, in order.
    self_attrs: dict[str, list[Binding]] = field(default_factory=dict)


class ModuleIndex:
    """Everything one walk learns about a module."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.scope = Scope("<module>", module, None)
        self.functions: list[Scope] = []
        self.classes: dict[str, ClassInfo] = {}
        self.all_sites: list[Site] = []
        self._class_infos: list[ClassInfo] = []  # every class, nested ones of the same name too
        self._seq = 0
        self._walk_body(module.body, Ctx(self.scope))

    def release(self) -> None:
        """Break the cycles of scopes with their sites, bindings and classes, so that reference counting
        frees the index, and the syntax tree it holds, once its facts are dropped: the cycle collector
        would walk every node of the tree to find them (a tenth of a run's time)."""
        for info in self._class_infos:
            info.methods.clear()
            info.self_attrs.clear()
        for scope in (self.scope, *self.functions, *(info.scope for info in self._class_infos)):
            scope.sites.clear()
            scope.bindings.clear()
            scope.qualnames.clear()
            scope.cls = None
            scope.__dict__.pop("calls", None)
        self.all_sites.clear()
        self.functions.clear()
        self.classes.clear()
        self._class_infos.clear()

    # -- statements --------------------------------------------------------------------------

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _walk_body(self, body, ctx: Ctx) -> None:
        if isinstance(body, cst.SimpleStatementSuite):
            # `if args.clip: clip_grad_norm_(...)`: small statements on the header's line.
            for small in body.body:
                self._small(small, ctx)
            return
        if isinstance(body, cst.IndentedBlock):
            body = body.body
        for stmt in body:
            self._stmt(stmt, ctx)

    def _stmt(self, node: cst.CSTNode, ctx: Ctx) -> None:
        t = type(node)
        if t is cst.SimpleStatementLine:
            for small in node.body:
                self._small(small, ctx)
        elif t is cst.FunctionDef:
            self._function(node, ctx)
        elif t is cst.ClassDef:
            self._class(node, ctx)
        elif t is cst.If:
            self._expr(node.test, ctx)
            self._walk_body(node.body, _with(ctx, conds=ctx.conds + (Cond(node.test, True, node),)))
            orelse = node.orelse
            if orelse is not None:
                else_ctx = _with(ctx, conds=ctx.conds + (Cond(node.test, False, node),))
                if type(orelse) is cst.If:
                    self._stmt(orelse, else_ctx)
                else:
                    self._walk_body(orelse.body, else_ctx)
        elif t is cst.For:
            self._expr(node.iter, ctx)
            self._bind_target(node.target, None, ctx, kind="for", source=node)
            inner = _with(ctx, loops=ctx.loops + (node,), repeats=ctx.repeats + (node,))
            self._walk_body(node.body, inner)
            if node.orelse is not None:
                self._walk_body(node.orelse.body, ctx)
        elif t is cst.While:
            self._expr(node.test, ctx)
            self._walk_body(node.body, _with(ctx, loops=ctx.loops + (node,)))
            if node.orelse is not None:
                self._walk_body(node.orelse.body, ctx)
        elif t is cst.With:
            no_grad = ctx.no_grad
            for item in node.items:
                self._expr(item.item, ctx)
                if _is_no_grad(item.item):
                    no_grad = True
                if item.asname is not None:
                    self._bind_target(item.asname.name, item.item, ctx, kind="with", source=node)
            self._walk_body(node.body, _with(ctx, no_grad=no_grad))
        elif t is cst.Try or t is cst.TryStar:
            self._walk_body(node.body, ctx)
            for handler in node.handlers:
                self._walk_body(handler.body, ctx)
            if node.orelse is not None:
                self._walk_body(node.orelse.body, ctx)
            if node.finalbody is not None:
                self._walk_body(node.finalbody.body, ctx)
        elif t is cst.Match:
            self._expr(node.subject, ctx)
            for case in node.cases:
                self._walk_body(case.body, ctx)

    def _small(self, node: cst.CSTNode, ctx: Ctx) -> None:
        t = type(node)
        sctx = _with(ctx, stmt=node)
        if t is cst.Expr:
            self._expr(node.value, sctx)
        elif t is cst.Assign:
            self._expr(node.value, sctx)
            self._site(node, sctx)
            for target in node.targets:
                self._bind_target(target.target, node.value, sctx, kind="assign", source=node)
        elif t is cst.AnnAssign:
            if node.value is not None:
                self._expr(node.value, sctx)
                self._site(node, sctx)
            self._bind_target(node.target, node.value, sctx, kind="assign", source=node)
        elif t is cst.AugAssign:
            self._expr(node.value, sctx)
            self._site(node, sctx)
            if type(node.target) is cst.Name:
                ctx.scope.bind(
                    Binding(node.target.value, "aug", node, node.value, ctx.scope, self._next())
                )
        elif t is cst.Return:
            if node.value is not None:
                self._expr(node.value, sctx)
                ctx.scope.returns.append(node.value)
        elif t is cst.Import:
            for alias in node.names:
                dotted = _dotted_name(alias.name)
                if alias.asname is not None:
                    local = alias.asname.name.value
                    qual = dotted
                else:
                    local = dotted.split(".")[0]
                    qual = local
                ctx.scope.bind(Binding(local, "import", node, None, ctx.scope, self._next(), qual))
        elif t is cst.ImportFrom:
            if isinstance(node.names, cst.ImportStar):
                module = _dotted_name(node.module) if node.module is not None else ""
                ctx.scope.star_imports.append("." * len(node.relative) + module)
                return
            base = "." * len(node.relative) + (_dotted_name(node.module) if node.module else "")
            for alias in node.names:
                name = _dotted_name(alias.name)
                local = alias.asname.name.value if alias.asname is not None else name
                qual = f"{base}.{name}" if not base.endswith(".") else f"{base}{name}"
                ctx.scope.bind(Binding(local, "import", node, None, ctx.scope, self._next(), qual))
        elif t is cst.Global:
            ctx.scope.globals.update(item.name.value for item in node.names)
        elif t is cst.Raise:
            if node.exc is not None:
                self._expr(node.exc, sctx)
        elif t is cst.Assert:
            self._expr(node.test, sctx)

    def _function(self, node: cst.FunctionDef, ctx: Ctx) -> None:
        for decorator in node.decorators:
            self._expr(decorator.decorator, ctx)
        outer = ctx.scope
        cls = outer.cls if outer.cls is not None and outer is outer.cls.scope else None
        parent = cls.outer if cls is not None else outer
        name = f"{cls.name}.{node.name.value}" if cls is not None else node.name.value
        scope = Scope(name, node, parent, cls=cls)
        if cls is not None:
            cls.methods[node.name.value] = scope
        else:
            outer.bind(Binding(node.name.value, "def", node, None, outer, self._next()))
        self.functions.append(scope)
        params = node.params
        all_params = (
            list(params.posonly_params) + list(params.params) + list(params.kwonly_params)
        )
        for extra in (params.star_arg, params.star_kwarg):
            if isinstance(extra, cst.Param):
                all_params.append(extra)
        scope.params = all_params
        for param in all_params:
            if param.default is not None:
                self._expr(param.default, ctx)
            scope.bind(Binding(param.name.value, "param", param, param.default, scope, self._next()))
        self._walk_body(node.body, Ctx(scope))

    def _class(self, node: cst.ClassDef, ctx: Ctx) -> None:
        for decorator in node.decorators:
            self._expr(decorator.decorator, ctx)
        for base in node.bases:
            self._expr(base.value, ctx)
        outer = ctx.scope
        outer.bind(Binding(node.name.value, "class", node, None, outer, self._next()))
        scope = Scope(node.name.value, node, outer)
        info = ClassInfo(node.name.value, node, scope, outer)
        scope.cls = info
        self._class_infos.append(info)
        # A nested class with the same name as a top-level one is rare; the first one wins.
        self.classes.setdefault(node.name.value, info)
        self._walk_body(node.body, Ctx(scope))

    def _bind_target(self, target, value, ctx: Ctx, *, kind: str, source) -> None:
        t = type(target)
        scope = ctx.scope
        if t is cst.Name:
            scope.bind(Binding(target.value, kind, source, value, scope, self._next()))
        elif t is cst.Tuple or t is cst.List:
            for i, element in enumerate(target.elements):
                inner = element.value
                if type(inner) is cst.Name:
                    scope.bind(
                        Binding(inner.value, "unpack", source, value, scope, self._next(), index=i)
                    )
                else:
                    self._bind_target(inner, None, ctx, kind="unpack", source=source)
        elif t is cst.Attribute and type(target.value) is cst.Name and target.value.value == "self":
            cls = _enclosing_class(scope)
            if cls is not None:
                cls.self_attrs.setdefault(target.attr.value, []).append(
                    Binding(target.attr.value, kind, source, value, scope, self._next())
                )

    # -- expressions -------------------------------------------------------------------------

    def _site(self, node: cst.CSTNode, ctx: Ctx) -> None:
        site = Site(node, ctx, self._next())
        ctx.scope.sites.append(site)
        self.all_sites.append(site)

    def _expr(self, node: cst.CSTNode, ctx: Ctx) -> None:
        t = type(node)
        if t in _LEAF_TYPES:
            return
        if t is cst.Call:
            self._expr(node.func, ctx)
            for arg in node.args:
                self._expr(arg.value, ctx)
            self._site(node, ctx)
            return
        if t is cst.Attribute:
            self._expr(node.value, ctx)
            return
        if t in _COMP_TYPES:
            ctx = _with(ctx, repeats=ctx.repeats + (node,))
        elif t is cst.Lambda:
            return  # calls inside a lambda do not run where it is written
        for name in _child_fields(t):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                self._expr(value, ctx)
            elif isinstance(value, (tuple, list)):
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        self._expr(item, ctx)


_LEAF_TYPES = frozenset(_LEAVES)
_COMP_TYPES = frozenset(_COMPREHENSIONS)


def _with(ctx: Ctx, **changes) -> Ctx:
    new = Ctx(ctx.scope, ctx.loops, ctx.conds, ctx.no_grad, ctx.repeats, ctx.stmt)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


def _enclosing_class(scope: Scope) -> ClassInfo | None:
    while scope is not None:
        if scope.cls is not None:
            return scope.cls
        scope = scope.parent
    return None


def _dotted_name(node: cst.CSTNode) -> str:
    if type(node) is cst.Name:
        return node.value
    if type(node) is cst.Attribute:
        return f"{_dotted_name(node.value)}.{node.attr.value}"
    return ""


def dotted(node: cst.CSTNode) -> str | None:
    """`a.b.c` for a chain of names, else None."""
    parts = []
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is not cst.Name:
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


def _is_no_grad(item: cst.BaseExpression) -> bool:
    # A syntactic test on the last attribute suffices: `no_grad`/`inference_mode` are not names
    # anything else uses, and the walk has no qualified names yet.
    func = item.func if type(item) is cst.Call else item
    name = dotted(func) or ""
    return name.split(".")[-1] in ("no_grad", "inference_mode")
