"""The project one file runs: the other files of the tree it imports, each read once (lazily, when a fact
needs a class or function it defines) and shared by every file of a worker's batch."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import libcst as cst

from gradlint.facts.index import ClassInfo, Scope, Site
from gradlint.facts.modules import is_third_party, module_files, path_entries, star_imports
from gradlint.parse import PARSE_ERRORS, parse_module
from gradlint.source import SourceError, decode_python

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts


class Disk:
    """What the projects of a worker's batch read from the disk, shared by them (the disk does not change
    during a batch, and reading it is what costs): parsed files, and where modules and paths lead. The facts
    a project holds are its own: they hold what one linted file learnt from its callers, and must not carry
    over to the next file (its findings would depend on which files came before it)."""

    def __init__(self) -> None:
        # Parsed files: text and tree, None when unreadable.
        self.trees: dict[Path, tuple[str, cst.Module] | None] = {}
        # module_files' answers (the files found, and every file looked for): each stats a few files and
        # resolves a path, and every file of a folder asks for the same modules.
        self.modules: dict[tuple, tuple[list[Path], list[str]]] = {}
        self.resolved: dict[str, Path] = {}


class Project:
    """Parses the project's files on demand (once each) to answer questions about what they define."""

    def __init__(
        self,
        avoid: frozenset[str] = frozenset(),
        watch: Callable[[tuple], None] | None = None,
        disk: Disk | None = None,
    ) -> None:
        self._facts: dict[Path, FileFacts | None] = {}
        self.disk = disk if disk is not None else Disk()
        # Which file each module scope belongs to (events and values cross files).
        self._owners: dict[int, FileFacts] = {}
        # find_class's and find_function's answers: rules ask about the same names many times, and each
        # question stats files.
        self._found: dict[tuple[str, str, str], tuple | None] = {}
        # Each file's literal `sys.path` additions, read once (every lookup from the file asks for them).
        self._entries: dict[Path, tuple[Path, ...]] = {}
        # Calls from one file into functions of another, by the callee's scope.
        self._callers: dict[int, list[tuple[FileFacts, Site]]] = {}
        # Every file the answers so far depended on, or looked for and did not find (for the cache).
        self.used: dict[str, set[str]] = {}
        # Config files read by values (facts.configs), by (path, kind): each is parsed once.
        self.configs: dict[tuple[str, str], dict | None] = {}
        # Files not to read (they crashed or stalled a worker), and who to tell before reading a file
        # (the worker's parent, so that it can blame the right file).
        self.avoid = avoid
        self.watch = watch
        # Whether a class picked from a registry by a value is being read (facts.loops._made_class): the
        # call graph those values follow is then being built, and must not ask again.
        self.reading_registry = False
        # Every file's facts built with this project, to release when it is done.
        self.built: list[FileFacts] = []

    def release(self) -> None:
        """Drop the facts of every file this project read (the linted file's findings are made)."""
        for facts in self.built:
            facts.release()
        self.built.clear()
        self._facts.clear()
        self._owners.clear()
        self._callers.clear()
        self._found.clear()

    def resolve(self, path: "Path | str") -> Path:
        """A path resolved (links, `..`) once a run: facts ask for the same few files thousands of times."""
        key = str(path)
        resolved = self.disk.resolved
        if key not in resolved:
            resolved[key] = Path(path).resolve()
        return resolved[key]

    def uses(self, path: "Path | str") -> set[str]:
        """The files a file's findings depend on, or looked for (for the cache): add to it."""
        return self.used.setdefault(str(self.resolve(path)), set())

    def _path_entries(self, facts: "FileFacts") -> tuple[Path, ...]:
        path = self.resolve(facts.path)
        if path not in self._entries:
            self._entries[path] = path_entries(facts.module, path.parent)
        return self._entries[path]

    def facts_for(self, path: Path) -> "FileFacts | None":
        path = self.resolve(path)
        if path not in self._facts:
            self._facts[path] = None  # guards against import cycles
            if str(path) in self.avoid:
                return None
            trees = self.disk.trees
            if path not in trees:
                trees[path] = self._parse(path)
            if trees[path] is None:
                return None
            text, module = trees[path]
            from gradlint.facts.file import FileFacts

            self.remember(path, FileFacts(str(path), module, self, text))
        return self._facts[path]

    def _parse(self, path: Path) -> "tuple[str, cst.Module] | None":
        if self.watch is not None:
            self.watch(("enter", str(path)))
        try:
            text = decode_python(path.read_bytes())
            return text, parse_module(text)
        except (OSError, SourceError, *PARSE_ERRORS):
            return None
        finally:
            if self.watch is not None:
                self.watch(("leave", str(path)))

    def tree(self, path: Path, text: str) -> "cst.Module | None":
        """The tree of a file already parsed in this batch (as a neighbour of another), if its text is `text`."""
        entry = self.disk.trees.get(self.resolve(path))
        return entry[1] if entry is not None and entry[0] == text else None

    def parsed(self) -> list[str]:
        """The files this project has read so far (for measuring what a run reached)."""
        return [str(path) for path, facts in self._facts.items() if facts is not None]

    def files(self) -> "list[FileFacts]":
        """The facts of every file read so far."""
        return [facts for facts in self._facts.values() if facts is not None]

    def known(self, path: Path) -> "FileFacts | None":
        """Facts already built for a file (as a neighbour of another), without parsing it."""
        return self._facts.get(self.resolve(path))

    def remember(self, path: Path, facts: "FileFacts") -> None:
        """Keep a linted file's facts, so that a neighbour importing from it does not parse it again."""
        self._facts[self.resolve(path)] = facts
        self._owners[id(facts.index.scope)] = facts

    def depends(self, path: Path) -> set[str]:
        """Every file a file's findings depended on or looked for, through the files it read in turn
        (train.py reads trainer.py, which reads utils.py: editing utils.py re-checks train.py)."""
        found: set[str] = set()
        todo = [str(self.resolve(path))]
        while todo:
            for used in self.used.get(todo.pop(), ()):
                if used not in found:
                    found.add(used)
                    todo.append(used)
        return found

    def owner(self, scope: Scope) -> "FileFacts | None":
        """The facts of the file a scope belongs to, among the files this project read or was given."""
        while scope.parent is not None:
            scope = scope.parent
        return self._owners.get(id(scope))

    def site_of(self, node) -> Site | None:
        """The site of a node of any file the project holds."""
        facts = self.facts_of(node)
        return facts.site_of(node) if facts is not None else None

    def facts_of(self, node) -> "FileFacts | None":
        """The facts of the file that holds a node (a call or a statement), among the files the project holds."""
        for facts in self._owners.values():
            if facts.site_of(node) is not None:
                return facts
        return None

    def find_class(self, qual: str, from_path: str) -> "tuple[FileFacts, ClassInfo] | None":
        return self._find(qual, from_path, "class")

    def find_function(self, qual: str, from_path: str) -> "tuple[FileFacts, Scope] | None":
        """A module-level function of another file of the project (`from trainer import train_epoch`)."""
        return self._find(qual, from_path, "def")

    def _find(self, qual: str, from_path: str, kind: str):
        key = (qual, from_path, kind)
        if key not in self._found:
            self._found[key] = None  # a re-export cycle ends here
            try:
                self._found[key] = self._lookup(qual, from_path, kind)
            except BaseException:
                # A lookup that failed (a RecursionError a caller catches) is not an answer: asked again,
                # it is looked up again rather than found missing.
                del self._found[key]
                raise
        return self._found[key]

    def _lookup(self, qual: str, from_path: str, kind: str):
        if is_third_party(qual):
            return None
        module_name, _, name = qual.rpartition(".")
        used = self.uses(from_path)
        here = self.known(Path(from_path))
        if not module_name:
            # An unbound name: it may come from a `from model import *` of the file.
            stars = star_imports(here.module) if here is not None else []
            return next((f for m in stars if (f := self._find(f"{m}.{name}", from_path, kind))), None)
        extra = self._path_entries(here) if here is not None else ()
        for candidate in self.module_files(module_name, Path(from_path), used, extra):
            facts = self.facts_for(candidate)
            if facts is None:
                continue
            found = facts.index.classes.get(name) if kind == "class" else facts.function(name)
            if found is not None:
                return facts, found
            # `from .models import Net` where models/__init__.py re-exports Net, by name or by `*`.
            for binding in facts.index.scope.bindings.get(name, []):
                if binding.kind == "import" and binding.qualname and binding.qualname != qual:
                    found = self._find(binding.qualname, str(candidate), kind)
                    if found is not None:
                        return found
            if not facts.index.scope.bindings.get(name):
                found = self._find(name, str(candidate), kind)
                if found is not None:
                    return found
        return None

    def module_files(self, module_name: str, from_path: Path, used: set[str], extra: tuple[Path, ...]) -> list[Path]:
        key = (module_name, str(from_path), extra)
        modules = self.disk.modules
        if key not in modules:
            looked: set[str] = set()
            modules[key] = (module_files(module_name, from_path, looked, extra), sorted(looked))
        found, looked_at = modules[key]
        used.update(looked_at)
        return found

    def imports_project(self, facts: "FileFacts") -> bool:
        """Whether a file imports some other file of the project (without reading it)."""
        used = self.uses(facts.path)
        extra = self._path_entries(facts)
        for bindings in facts.index.scope.bindings.values():
            for binding in bindings:
                qual = binding.qualname if binding.kind == "import" else None
                if qual and not is_third_party(qual):
                    # `from pkg import name`: the module is `pkg` (or `pkg.name`, a submodule).
                    module = qual.rpartition(".")[0] if isinstance(binding.node, cst.ImportFrom) else qual
                    if module and self.module_files(module, Path(facts.path), used, extra):
                        return True
        return bool(star_imports(facts.module))

    def add_caller(self, target: Scope, facts: "FileFacts", site: Site) -> None:
        """Record a call from another file into `target` (its arguments bind the target's parameters)."""
        self._callers.setdefault(id(target), []).append((facts, site))

    def callers(self, target: Scope) -> "list[tuple[FileFacts, Site]]":
        return self._callers.get(id(target), [])
