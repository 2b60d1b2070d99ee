"""FileFacts: the root of the facts layer. It holds one parsed file, its index and lookups, and builds each
layer of facts (values, models, loops, optimizers ...) on first use; the fact modules receive it and never
import the package."""
from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Iterator

import libcst as cst

from gradlint.facts.index import ClassInfo, ModuleIndex, Scope, Site
from gradlint.facts.names import LOCAL, lookup, qualified_name
from gradlint.parse import unchecked_nodes
from gradlint.source import hands_training_on

if TYPE_CHECKING:
    from gradlint.facts.architecture import ArchitectureFacts
    from gradlint.facts.data import DataFacts
    from gradlint.facts.inits import InitFacts
    from gradlint.facts.regularization import RegularizationFacts
    from gradlint.facts.frameworks import FrameworkFacts
    from gradlint.facts.loops import LoopFacts
    from gradlint.facts.models import ModelFacts
    from gradlint.facts.optimizers import OptimizerFacts
    from gradlint.facts.project import Project
    from gradlint.facts.values import Resolver


class FileFacts:
    """Facts about one parsed file. Everything past the index is computed on first use."""

    def __init__(
        self, path: str, module: cst.Module, project: "Project | None" = None, source_text: str | None = None
    ) -> None:
        self.path = path
        self.module = module
        # The text the module was parsed from: autofixes place their edits in it.
        self.source_text = source_text
        self.project = project
        self.index = ModuleIndex(module)
        self._positions = None
        # constructor_of's answers by call: the call graph asks for each call of the file, and values read
        # through parameters ask again.
        self._constructors: dict[int, Scope | None] = {}
        self._calls: dict[bool, dict[int, list[Site]]] = {}
        self._building_calls = False
        self._asked_while_building = False
        if project is not None:
            project.built.append(self)

    def release(self) -> None:
        """Drop everything, breaking the cycles of the facts with the file (`self.facts`) and with the index:
        reference counting then frees them and the syntax tree (ModuleIndex.release)."""
        self.index.release()
        del self.project, self.index
        for value in vars(self).values():
            if type(value).__module__.startswith("gradlint.facts.") and hasattr(value, "__dict__"):
                vars(value).clear()  # a layer of facts, and its caches
        vars(self).clear()

    # -- layers of facts ---------------------------------------------------------------------

    @cached_property
    def values(self) -> "Resolver":
        from gradlint.facts.values import Resolver

        return Resolver(self)

    @cached_property
    def models(self) -> "ModelFacts":
        from gradlint.facts.models import ModelFacts

        return ModelFacts(self)

    @cached_property
    def loops(self) -> "LoopFacts":
        from gradlint.facts.loops import LoopFacts

        return LoopFacts(self)

    @cached_property
    def optimizers(self) -> "OptimizerFacts":
        from gradlint.facts.optimizers import OptimizerFacts

        return OptimizerFacts(self)

    @cached_property
    def architecture(self) -> "ArchitectureFacts":
        from gradlint.facts.architecture import ArchitectureFacts

        return ArchitectureFacts(self)

    @cached_property
    def inits(self) -> "InitFacts":
        from gradlint.facts.inits import InitFacts

        return InitFacts(self)

    @cached_property
    def regularization(self) -> "RegularizationFacts":
        from gradlint.facts.regularization import RegularizationFacts

        return RegularizationFacts(self)

    @cached_property
    def data(self) -> "DataFacts":
        from gradlint.facts.data import DataFacts

        return DataFacts(self)

    @cached_property
    def frameworks(self) -> "FrameworkFacts":
        from gradlint.facts.frameworks import FrameworkFacts

        return FrameworkFacts(self)

    @cached_property
    def source_bytes(self) -> bytes | None:
        """The text as bytes, for the gate's markers (they are searched for in bytes)."""
        return self.source_text.encode() if self.source_text is not None else None

    @cached_property
    def trains_through_project(self) -> bool:
        """Whether a training path from this file may go on into another file of its project: it imports
        one, and its text may hand training on as the gate judges it (source.HANDS_OFF). A file that only
        builds or names things calls into its project too, and following each call parses the files."""
        project = self.project
        if project is None or (self.source_bytes is not None and not hands_training_on(self.source_bytes)):
            return False
        return project.imports_project(self)

    # -- lookups -----------------------------------------------------------------------------

    @cached_property
    def _functions_by_name(self) -> dict[str, Scope]:
        # Module-level functions only: nested ones are reached through their enclosing scope.
        return {
            f.name: f for f in self.index.functions if f.parent is self.index.scope and f.cls is None
        }

    def function(self, name: str) -> Scope | None:
        return self._functions_by_name.get(name)

    def method(self, info: ClassInfo, name: str, _seen: frozenset = frozenset()) -> Scope | None:
        """A method of a class of this file, looked up through its local base classes."""
        if name in info.methods:
            return info.methods[name]
        for base in info.node.bases:
            qual = qualified_name(base.value, info.outer) or ""
            if qual.startswith(LOCAL + "."):
                parent = self.index.classes.get(qual[len(LOCAL) + 1 :])
                if parent is not None and parent.name not in _seen:
                    found = self.method(parent, name, _seen | {info.name})
                    if found is not None:
                        return found
        return None

    def qualname(self, node: cst.BaseExpression, scope: Scope, before: int | None = None) -> str | None:
        return qualified_name(node, scope, before)

    def calls_of(self, scope: Scope) -> list[Site]:
        """The calls of this file that run `scope` (a function, or a class's `__init__`)."""
        return self._call_graph(local=self.loops.home(scope) is self).get(id(scope), [])

    def _call_graph(self, local: bool) -> dict[int, list[Site]]:
        """Calls by the function they run. `local`: only those that run a function of this file, found
        without reading other files (which call runs an imported name is looked up in the file it comes
        from, and most questions are about this file's own functions)."""
        if local in self._calls:
            return self._calls[local]
        if self._building_calls:
            # Asked while it is built (which call a method call runs can hang on a condition over a parameter,
            # whose value its callers give): answered as if nothing called, so the parameter has its default.
            self._asked_while_building = True
            return {}
        self._building_calls = True
        try:
            calls: dict[int, list[Site]] = {}
            for site in self.index.all_sites:
                if type(site.node) is not cst.Call:
                    continue
                if local:
                    target = self._local_target(site)
                else:
                    target = self.loops.callee(site) or self.constructor_of(site)
                if target is not None:
                    calls.setdefault(id(target), []).append(site)
        finally:
            self._building_calls = False
        self._calls[local] = calls
        if self._asked_while_building:
            # Values read meanwhile took parameters at their defaults: read again, with the callers.
            self._asked_while_building = False
            for facts in [self, *(self.project.files() if self.project is not None else ())]:
                if "values" in facts.__dict__:
                    facts.values.forget()
        return calls

    def _local_target(self, site: Site) -> Scope | None:
        """What loops.callee or constructor_of give for a call, when it is a function of this file. A call
        that runs a function of another file has no local answer: its name is imported, or an attribute of
        something the file did not build from a class of its own."""
        loops = self.loops
        target = loops.local_callee(site)
        if target is None and type(site.node.func) is cst.Name:
            # `step = model.trainer(opt)`, then `step(batch)` (a project callee is never a name bound so).
            target = loops.returned_function(site)
            if target is not None and loops.home(target) is not self:
                return None
        if target is None:
            qual = qualified_name(site.node.func, site.scope, site.seq) or ""
            if qual.startswith(LOCAL + "."):
                target = self.constructor_of(site)
        return target

    def constructor_of(self, site: Site) -> Scope | None:
        """`Model(vocab, nn.LSTM)` runs `Model.__init__`: its parameters get these arguments."""
        key = id(site.node)
        if key not in self._constructors:
            self._constructors[key] = self._constructor(site)
        return self._constructors[key]

    def _constructor(self, site: Site) -> Scope | None:
        qual = qualified_name(site.node.func, site.scope, site.seq) or ""
        if not qual.startswith(LOCAL + "."):
            # A class of another file of the project (`Trainer(model, optimizer)` from trainer.py).
            other = self.imported_class(qual) if qual else None
            return other[0].method(other[1], "__init__") if other is not None else None
        info = self.index.classes.get(qual[len(LOCAL) + 1 :])
        return self.method(info, "__init__") if info is not None else None

    def caller_files(self, scope: Scope) -> list["FileFacts"]:
        """This file, where `scope` is defined, then the other files of the project seen calling it."""
        files: list[FileFacts] = [self]
        if self.project is not None:
            files += [f for f in {id(f): f for f, _ in self.project.callers(scope)}.values() if f is not self]
        return files

    def call_args_for(self, scope: Scope, param: str) -> Iterator[tuple[Site, cst.BaseExpression | None]]:
        """For each call of `scope` in this module: the argument it passes for `param` (None if none)."""
        names = [p.name.value for p in scope.params]
        if param not in names:
            return
        position = names.index(param)
        if scope.cls is not None and names and names[0] in ("self", "cls"):
            position -= 1
        for site in self.calls_of(scope):
            call = site.node
            found = None
            starred = False
            for arg in call.args:
                if arg.star:
                    starred = True
                if arg.keyword is not None and arg.keyword.value == param:
                    found = arg.value
            if found is None and not starred:
                positional = [a for a in call.args if a.keyword is None]
                if 0 <= position < len(positional):
                    found = positional[position].value
            if found is None and starred:
                continue  # **kwargs may carry it: unknown, so this caller says nothing
            yield site, found

    def is_dataclass(self, info: ClassInfo) -> bool:
        for decorator in info.node.decorators:
            target = decorator.decorator
            if type(target) is cst.Call:
                target = target.func
            qual = qualified_name(target, info.outer) or ""
            if qual.split(".")[-1] in ("dataclass", "define", "frozen", "attrs"):
                return True
        for base in info.node.bases:
            qual = qualified_name(base.value, info.outer) or ""
            if qual.endswith("NamedTuple") or qual.endswith("BaseModel"):
                return True
        return False

    def dataclass_fields(self, info: ClassInfo) -> dict[str, cst.BaseExpression | None]:
        fields: dict[str, cst.BaseExpression | None] = {}
        body = info.node.body.body if isinstance(info.node.body, cst.IndentedBlock) else ()
        for stmt in body:
            if type(stmt) is cst.SimpleStatementLine:
                for small in stmt.body:
                    if type(small) is cst.AnnAssign and type(small.target) is cst.Name:
                        fields[small.target.value] = small.value
        return fields

    @cached_property
    def _call_scopes(self) -> dict[int, Scope]:
        return {id(s.node): s.scope for s in self.index.all_sites}

    def scope_of_call(self, call: cst.Call) -> Scope:
        return self._call_scopes.get(id(call), self.index.scope)

    def site_of(self, node: cst.CSTNode) -> Site | None:
        return self._sites_by_node.get(id(node))

    @cached_property
    def _sites_by_node(self) -> dict[int, Site]:
        return {id(s.node): s for s in self.index.all_sites}

    def imported_class(self, qual: str) -> tuple["FileFacts", ClassInfo] | None:
        """A class imported from another file of the linted folder, with that file's facts."""
        if self.project is None or qual.startswith(LOCAL):
            return None
        return self.project.find_class(qual, self.path)

    def binding_of(self, name: str, scope: Scope, before: int | None = None):
        return lookup(name, scope, before)

    # -- positions ---------------------------------------------------------------------------

    def span(self, node: cst.CSTNode) -> tuple[int, int, int, int]:
        """(line, column, end_line, end_column), 1-based columns, computed only when reporting."""
        from gradlint.facts.positions import Mismatch, Positions

        if self._positions is None:
            text = self.source_text if self.source_text is not None else self.module.code
            try:
                self._positions = Positions(self.module, text)
            except (SyntaxError, ValueError, RecursionError, MemoryError, Mismatch):
                self._positions = self._provider()
        site = self.site_of(node)
        if site is not None:
            within = site.ctx.stmt
        else:
            within = node if isinstance(node, (cst.BaseSmallStatement, cst.BaseStatement)) else None
        try:
            found = self._positions.span(node, within)
        except Mismatch:
            self._positions = self._provider()
            found = self._positions.span(node)
        if found is None and isinstance(self._positions, Positions):
            # Not met by the cheap walk (it skips whitespace nodes): ask libcst from now on.
            self._positions = self._provider()
            found = self._positions.span(node)
        return found if found is not None else (1, 1, 1, 1)

    def _provider(self) -> "_ProviderPositions":
        from libcst.metadata import MetadataWrapper, PositionProvider

        # unsafe_skip_copy keeps node identity, so the nodes the facts hold can be looked up.
        with unchecked_nodes():
            return _ProviderPositions(MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider))

    def line(self, node: cst.CSTNode) -> int:
        return self.span(node)[0]

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


class _ProviderPositions:
    """libcst's own answer, from a code generation pass over the whole module: for texts Python cannot
    parse, whose statements facts.positions cannot pair up."""

    def __init__(self, ranges) -> None:
        self.ranges = ranges

    def span(self, node: cst.CSTNode, within: cst.CSTNode | None = None) -> tuple[int, int, int, int] | None:
        r = self.ranges.get(node)
        return None if r is None else (r.start.line, r.start.column + 1, r.end.line, r.end.column + 1)
