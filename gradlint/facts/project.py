"""What one file knows of its neighbours: model classes imported from other files of the folder."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import libcst as cst

from gradlint.facts.index import ClassInfo
from gradlint.source import SourceError, decode_python

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

# Imports from these packages are never files of the user's project.
THIRD_PARTY = (
    "torch", "keras", "tf", "tensorflow", "transformers", "lightning", "pytorch_lightning",
    "accelerate", "numpy", "np", "jax", "flax", "timm", "torchvision", "datasets", "sklearn",
)
MAX_UP = 3  # how many folders up an absolute import may be found


class Project:
    """Parses neighbouring files on demand (once each) to answer questions about their classes."""

    def __init__(
        self, avoid: frozenset[str] = frozenset(), watch: Callable[[tuple], None] | None = None
    ) -> None:
        self._facts: dict[Path, FileFacts | None] = {}
        # Every file the answers so far depended on, or looked for and did not find (for the cache).
        self.used: dict[str, set[str]] = {}
        # Files not to read (they crashed or stalled a worker), and who to tell before reading a file
        # (the worker's parent, so that it can blame the right file).
        self.avoid = avoid
        self.watch = watch

    def facts_for(self, path: Path) -> "FileFacts | None":
        path = path.resolve()
        if path not in self._facts:
            self._facts[path] = None  # guards against import cycles
            if str(path) in self.avoid:
                return None
            if self.watch is not None:
                self.watch(("enter", str(path)))
            try:
                text = decode_python(path.read_bytes())
                module = cst.parse_module(text)
            except (OSError, SourceError, cst.ParserSyntaxError, RecursionError):
                return None
            finally:
                if self.watch is not None:
                    self.watch(("leave", str(path)))
            from gradlint.facts.file import FileFacts

            self._facts[path] = FileFacts(str(path), module, self, text)
        return self._facts[path]

    def known(self, path: Path) -> "FileFacts | None":
        """Facts already built for a file (as a neighbour of another), without parsing it."""
        return self._facts.get(path.resolve())

    def remember(self, path: Path, facts: "FileFacts") -> None:
        """Keep a linted file's facts, so that a neighbour importing from it does not parse it again."""
        self._facts[path.resolve()] = facts

    def find_class(self, qual: str, from_path: str) -> "tuple[FileFacts, ClassInfo] | None":
        if qual.split(".")[0] in THIRD_PARTY:
            return None
        module_name, _, class_name = qual.rpartition(".")
        if not module_name:
            return None
        used = self.used.setdefault(str(Path(from_path).resolve()), set())
        for candidate in self._module_files(module_name, Path(from_path), used):
            facts = self.facts_for(candidate)
            if facts is None:
                continue
            info = facts.index.classes.get(class_name)
            if info is not None:
                return facts, info
            # `from .models import Net` where models/__init__.py re-exports Net.
            for binding in facts.index.scope.bindings.get(class_name, []):
                if binding.kind == "import" and binding.qualname and binding.qualname != qual:
                    found = self.find_class(binding.qualname, str(candidate))
                    if found is not None:
                        return found
        return None

    def _module_files(self, module_name: str, from_path: Path, looked_at: set[str]) -> list[Path]:
        here = from_path.resolve().parent
        if module_name.startswith("."):
            dots = len(module_name) - len(module_name.lstrip("."))
            base = here
            for _ in range(dots - 1):
                base = base.parent
            bases = [base]
            parts = module_name.lstrip(".").split(".") if module_name.strip(".") else []
        else:
            bases = [here, *list(here.parents)[:MAX_UP]]
            parts = module_name.split(".")
        found = []
        for base in bases:
            target = base.joinpath(*parts) if parts else base
            for candidate in (target.with_suffix(".py") if parts else None, target / "__init__.py"):
                if candidate is None or candidate == from_path.resolve():
                    continue
                # Looked at whether it exists or not: a file created later changes the answer.
                looked_at.add(str(candidate))
                if candidate.is_file():
                    found.append(candidate)
            if found:
                break
        return found
