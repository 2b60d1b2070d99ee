"""Sources: find the files to lint, read them, and turn notebooks into code."""
from __future__ import annotations

import bisect
import fnmatch
import functools
import io
import os
import re
import stat
import string
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gradlint.notebook import NotebookError, notebook_code

SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "__pycache__", "build", "dist",
        ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".gradlint_cache",
        "node_modules", "site-packages", ".ipynb_checkpoints", ".eggs",
    }
)

# A file that never names a deep-learning framework cannot be training code; this test is
# cheap enough to run on every file before paying for a parse.
FRAMEWORK_IMPORT = re.compile(
    rb"^[ \t]*(?:import|from)[ \t]+(?:torch|tensorflow|keras|lightning|pytorch_lightning|transformers|accelerate|tf_keras)\b",
    re.MULTILINE,
)
# What `\w` matches in a bytes pattern.
WORD_BYTES = frozenset((string.ascii_letters + string.digits + "_").encode())


# What a marker's match must have before it, tested on the bytes before the match (a look-behind in the
# pattern would keep it from being searched for as a substring).
def _starts_word(data: bytes, at: int) -> bool:
    return at == 0 or data[at - 1] not in WORD_BYTES


def _after_word(data: bytes, at: int) -> bool:
    return at > 0 and data[at - 1] in WORD_BYTES


def _not_after(prefix: bytes):
    return lambda data, at: data[max(0, at - len(prefix)) : at] != prefix


# The name a `def` or `class` statement defines: `def train_epoch(`, `class MyOptimizer(`.
DEFINED = re.compile(rb"[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w*)")


def _not_defined(data: bytes, at: int) -> bool:
    match = DEFINED.match(data, data.rfind(b"\n", 0, at) + 1)
    return match is None or not match.start(1) <= at < match.end(1)


def _with_tensorflow(data: bytes, at: int) -> bool:
    return b"tensorflow" in data or b"keras" in data


# Strings and comments, found from the start of a text as the tokenizer finds them: a string's prefix (r, b,
# f) does not change where it ends, and a backslash escapes the next character in raw strings too.
STRING_OR_COMMENT = re.compile(
    rb"""#[^\r\n]*|'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^\\'\r\n])*'|"(?:\\.|[^\\"\r\n])*\"""",
    re.DOTALL,
)


class Code:
    """Which offsets of a text are code, outside strings and comments. Found only as far as asked: a marker
    in a training script is met early, and most of torch's are in docstrings (`>>> loss.backward()`)."""

    def __init__(self, data: bytes) -> None:
        self._found = STRING_OR_COMMENT.finditer(data)
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._known = 0  # where the text is placed up to

    def holds(self, at: int) -> bool:
        while self._known <= at:
            match = next(self._found, None)
            if match is None:
                self._known = sys.maxsize
                break
            self._starts.append(match.start())
            self._ends.append(match.end())
            self._known = match.end()
        i = bisect.bisect_right(self._starts, at) - 1
        return i < 0 or at >= self._ends[i]


# Most files that import a framework define or use models and never train one. Every rule needs one of these
# words in the file's own code (the facts layer follows calls only within a file, and reads a neighbour only
# for a file that has them), so a file without them is not parsed at all. Each is (the word, a pattern that
# starts with it and finds it where it counts, what must hold of the text around it): a pattern that starts
# with a literal is searched for at the speed of a substring, where one alternation of them with look-behinds
# was tried at every byte (2.6 s over the 46 MB of torch's sources). A match in a string or a comment does
# not count: torch's docstrings show `loss.backward()` in a hundred files that train nothing.
NOT_DEF = _not_after(b"def ")
TRAINING_MARKERS = (
    # loss.backward(), torch.autograd.backward()
    (b"backward", re.compile(rb"backward\s*\("), (_starts_word, NOT_DEF)),
    # TF: tape.gradient(), apply_gradients(), tf.gradients(), and the TF1 graph's optimizer.minimize()
    (b"gradient", re.compile(rb"gradients?\s*\("), (NOT_DEF, _with_tensorflow)),
    (b"minimize", re.compile(rb"minimize\s*\("), (NOT_DEF, _with_tensorflow)),
    # Keras compile/fit, Lightning's Trainer.fit
    (b"fit", re.compile(rb"\.\s*fit(?:_generator)?\s*\("), ()),
    (b"train_on_batch", re.compile(rb"\.\s*train_on_batch\s*\("), ()),
    (b"Trainer", re.compile(rb"Trainer"), ()),  # Hugging Face trainers
    # GL301: plain stacks, trained here or not, counted from the layers a file builds (`nn.Linear(...)`,
    # `Dense(...)`, or under an alias it imports); torch's own modules name Linear in many other ways.
    (b"Linear", re.compile(rb"Linear\s*\(|Linear\s+as\b"), ()),
    (b"Dense", re.compile(rb"Dense\s*\(|Dense\s+as\b"), ()),
    (b"normal", re.compile(rb"normal_?\s*\("), (_starts_word, NOT_DEF)),  # GL303: initialisation calls
    (b"uniform", re.compile(rb"uniform_?\s*\("), (_starts_word, NOT_DEF)),
)
# The first three: what a backward pass (or TF1's minimize) is spelt with.
BACKWARD_MARKERS = TRAINING_MARKERS[:3]


def has_training_marker(data: bytes, markers: tuple = TRAINING_MARKERS, code: Code | None = None) -> bool:
    """Whether the code of a text spells one of `markers` (TRAINING_MARKERS, or HANDS_OFF's) where it counts;
    `code` places the text's strings and comments when another search has begun to."""
    for word, pattern, conditions in markers:
        if word not in data:
            continue
        for match in pattern.finditer(data):
            at = match.start()
            if all(holds(data, at) for holds in conditions):
                code = code or Code(data)
                if code.holds(at):
                    return True
    return False


# GL303 also counts an unscaled torch.randn made a parameter; GL401 reports a loader named for training even
# where the file does not train. Markers as TRAINING_MARKERS are, each table met by one of its own.
RANDN = ((b"randn", re.compile(rb"randn\s*\(|randn\s+as\b"), (_starts_word,)),)  # a call, or an alias of it
PARAMETER = ((b"Parameter", re.compile(rb"Parameter"), ()), (b"requires_grad", re.compile(rb"requires_grad"), ()))
BATCH = (
    (b"DataLoader", re.compile(rb"DataLoader\s*\("), ()),
    (b"Iterator", re.compile(rb"Iterator\s*\("), ()),
    (b"batch", re.compile(rb"\.\s*(?:padded_)?batch\s*\("), ()),
    (b"batch_size", re.compile(rb"batch_size"), ()),
)
TRAIN = re.compile(rb"train", re.IGNORECASE)
# A training path may go on into another file of the project (`train_epoch(model, optimizer, loader)` from
# trainer.py, `model.fit_epoch(loader)`): a file that imports a file of its project (or adds a folder to
# sys.path) is parsed too when it may hand one on. One that imports a framework does when it calls something
# named for training or builds an optimizer it can pass on (`optim.Adam(`, `keras.optimizers.SGD(`,
# `AdamOptimizer(`, `build_optimizer(`, `from torch import optim`), or runs a TF1 session
# (`sess.run(model.train_op)`, `tf.global_variables_initializer().run()`: its graph, training op included, may
# be built by a class of its project it constructs). Naming optimizers is not enough: torch's compiler does
# it in a hundred files (`isinstance(o, torch.optim.Optimizer)`), and calls `.run(` on graphs and processes.
# Defining a function or a class so named is not calling it (`def training(self)`, `class LocalOptimizer(`);
# `fits_in_main_body(` and `optimization_hints(` are not training. They are markers as TRAINING_MARKERS are
# (as one alternation led by `\b` they ran at 10 MB/s).
SESSION_RUN = re.compile(rb"\.run\s*\(")
HANDS_OFF = (
    (b"train", re.compile(rb"train\w*\s*\("), (_starts_word, _not_defined)),
    (b"fit", re.compile(rb"fit(?:_\w*|[A-Z]\w*)?\s*\("), (_starts_word, _not_defined)),
    (b"optim", re.compile(rb"optim\s*\.\s*[A-Z]\w*\s*\("), ()),
    (b"optimizers", re.compile(rb"optimizers\s*\.\s*(?:legacy\s*\.\s*)?\w+\s*\("), ()),
    (b"Optimizer", re.compile(rb"Optimizer\s*\("), (_after_word, _not_defined)),
    (b"optimi", re.compile(rb"optimi[sz]ers?\s*\("), (_not_after(b"is_"), _not_defined)),
    (b"optim", re.compile(rb"optim(?:izers)?\s+import"), ()),
    (b"import", re.compile(rb"import\s+optim(?:izers)?\b"), ()),
    (b".run", SESSION_RUN, (_with_tensorflow,)),
)
# One that imports no framework at all (it trains through its project, if at all) is parsed on any of these.
HANDS_OFF_ANYWHERE = (
    HANDS_OFF[0], HANDS_OFF[1], (b"optim", re.compile(rb"optim(?!al|um|i[sz]ation)"), ()), (b".run", SESSION_RUN, ())
)
# `from .models import Net, train` (the dots, the module, the names) and `import trainer, utils.data as d`.
IMPORT = re.compile(
    rb"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\r\n#;]*)|import[ \t]+([\w. \t,]+))",
    re.MULTILINE,
)
MAX_HOPS = 3  # how many imported files on a hand-off is looked for


# Imports from these packages are never files of the user's project.
THIRD_PARTY = (
    "torch", "keras", "tf", "tensorflow", "transformers", "lightning", "pytorch_lightning",
    "accelerate", "numpy", "np", "jax", "flax", "timm", "torchvision", "datasets", "sklearn",
)
MAX_UP = 3  # how many folders up an absolute import may be found
# Each package in these folders is a project of its own: linting torch where it is installed must not take
# `import sympy` for a file of torch's project.
INSTALLED = frozenset({"site-packages", "dist-packages"})


def is_third_party(qual: str) -> bool:
    """Whether an import names a framework or the standard library, never a file of the project."""
    head = qual.split(".")[0]
    return head in THIRD_PARTY or head in sys.stdlib_module_names


def import_folders(folder: Path) -> list[Path]:
    """The folders an absolute import from a file in `folder` is looked for in, nearest first: the folder
    (Python puts a script's own folder on its path), and up to MAX_UP above it, short of a folder of
    installed packages."""
    folders = [folder]
    for above in list(folder.parents)[:MAX_UP]:
        if above.name in INSTALLED:
            break
        folders.append(above)
    return folders


class SourceError(Exception):
    """A file that cannot be read or decoded; `line`/`column` say where, when known."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class SourceUnit:
    path: str
    text: str
    # For notebooks: the (cell, line-in-cell) of each line of `text`, 1-based.
    cell_lines: tuple[tuple[int, int], ...] | None = None

    def locate(self, line: int) -> tuple[int | None, int]:
        """Map a line of `text` to (cell, line) for notebooks, (None, line) otherwise."""
        if self.cell_lines is None or not (1 <= line <= len(self.cell_lines)):
            return None, line
        return self.cell_lines[line - 1]


def is_virtualenv(path: str | Path) -> bool:
    return os.path.exists(os.path.join(path, "pyvenv.cfg"))


def matches_any(rel: str, patterns: tuple[str, ...]) -> bool:
    """gitignore-style matching: a pattern matches the path, any of its parents, or its name."""
    parts = rel.split("/")
    for pattern in patterns:
        pat = pattern.rstrip("/")
        anchored = pat.startswith("/")
        pat = pat.lstrip("/")
        if "/" in pat or anchored:
            candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        else:
            candidates = parts
        if any(fnmatch.fnmatchcase(c, pat) for c in candidates):
            return True
    return False


def discover(
    paths: list[Path], exclude: tuple[str, ...] = (), root: Path | None = None, *, force_exclude: bool = False
) -> list[Path]:
    """Every .py and .ipynb file under `paths`, skipping excluded, hidden tool and virtualenv folders,
    and anything in a folder that is not a regular file (a FIFO would block the read, /dev/zero never ends).

    Files named explicitly are returned as they are (pre-commit passes exactly the files it wants), unless
    `force_exclude` makes them honour `exclude` too. Raises FileNotFoundError for a path that does not exist.
    """
    found: list[Path] = []
    seen: set[str] = set()
    base = root or Path.cwd()
    for given in paths:
        if not given.exists():
            raise FileNotFoundError(str(given))
        if not given.is_dir():
            if force_exclude and exclude and matches_any(_relative(given, base), exclude):
                continue
            if str(given) not in seen:
                seen.add(str(given))
                found.append(given)
            continue
        for file in _walk(str(given), exclude, base):
            if file not in seen:
                seen.add(file)
                found.append(Path(file))
    return found


def _walk(top: str, exclude: tuple[str, ...], base: Path) -> Iterator[str]:
    """The source files under `top` in os.walk's order (a folder's files, then its subfolders by name),
    from the entries os.scandir gives: their file types cost no stat of their own. Like os.walk, folders
    that are symbolic links are not entered and folders that cannot be read are skipped."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        folders = []
        for entry in entries:
            name = entry.name
            if _is_dir(entry):
                if (
                    name not in SKIP_DIRS
                    and not name.endswith(".egg-info")
                    and not entry.is_symlink()
                    and not is_virtualenv(entry.path)
                    and not (exclude and matches_any(_relative(Path(entry.path), base), exclude))
                ):
                    folders.append(entry.path)
            elif (
                name.endswith((".py", ".ipynb"))
                and not (exclude and matches_any(_relative(Path(entry.path), base), exclude))
                and _is_regular(entry)
            ):
                yield entry.path
        stack.extend(reversed(folders))


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_regular(entry: os.DirEntry) -> bool:
    # Follows a link as os.stat does; a FIFO, a socket or a device is not a regular file.
    try:
        return entry.is_file()
    except OSError:
        return False


def _relative(path: Path, base: Path) -> str:
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def may_be_training_code(data: bytes, path: Path | None = None) -> bool:
    """Whether a file can hold a finding: it imports a framework and spells what some rule needs, or
    (given its path) it may run a training path in another file of its project."""
    if FRAMEWORK_IMPORT.search(data) is None:
        # A script that imports no framework may still train through a module of its project that does
        # (`summarizer = Seq2SeqSummarizer(config)`, then `summarizer.fit(...)`).
        return path is not None and _hands_off(data, path, framework=False, code=Code(data))
    code = Code(data)
    if has_training_marker(data, TRAINING_MARKERS, code):
        return True
    if has_training_marker(data, RANDN, code) and has_training_marker(data, PARAMETER, code):
        return True
    if TRAIN.search(data) and has_training_marker(data, BATCH, code):
        return True
    return path is not None and _hands_off(data, path, framework=True, code=code)


def decode_python(data: bytes) -> str:
    """Decode Python source with its declared encoding (PEP 263), as the interpreter would."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        raise SourceError(f"cannot decode file: {exc}") from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        line, column = _position_of_offset(data, getattr(exc, "start", 0))
        raise SourceError(f"cannot decode file as {encoding}: invalid byte at line {line}", line, column) from None
    if "\x00" in text:
        line, column = _position_of_offset(data, data.index(b"\x00"))
        raise SourceError("file holds a NUL byte: not Python source", line, column)
    return text  # utf-8-sig dropped the one BOM Python allows; a second one is an error, as for Python


def _position_of_offset(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1) + 1
    return line, column


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a folder" if stat.S_ISDIR(mode) else "not a file"


def read_unit(path: Path, display: str | None = None) -> tuple[SourceUnit | None, bytes]:
    """Read one file; returns (None, data) when it cannot be training code."""
    shown = display or str(path)
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise SourceError(f"cannot read file: not a regular file ({_file_kind(mode)})")
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read file: {exc.strerror or exc}") from None
    if path.suffix == ".ipynb":
        try:
            text, cell_lines = notebook_code(data)
        except NotebookError as exc:
            raise SourceError(f"cannot read notebook: {exc}") from None
        if not may_be_training_code(text.encode()):
            return None, data
        return SourceUnit(shown, text, cell_lines), data
    # Decode before the framework test so that a binary or mis-encoded .py file is reported,
    # not silently skipped.
    text = decode_python(data)
    if not may_be_training_code(data, path):
        return None, data
    return SourceUnit(shown, text), data


def hands_training_on(data: bytes, code: Code | None = None) -> bool:
    """Whether a file's text may run a training path in another file of its project (HANDS_OFF); `code` as
    for has_training_marker."""
    return _hands_on(data, FRAMEWORK_IMPORT.search(data) is not None, code)


def _hands_on(data: bytes, framework: bool, code: Code | None = None) -> bool:
    return has_training_marker(data, HANDS_OFF if framework else HANDS_OFF_ANYWHERE, code)


def _hands_off(data: bytes, path: Path, framework: bool, code: Code) -> bool:
    """Whether a file (`framework`: that imports a framework) may run a training path in another file of its
    project: it spells a hand-off, and a file of its project it imports may train (read as text, not parsed)."""
    if not _hands_on(data, framework, code):
        return False
    if b"sys.path" in data:
        return True  # it adds a folder of its own to the import path: its imports cannot be told here
    return _imports_training(data, path.resolve())


def _imports_training(data: bytes, path: Path) -> bool:
    """Whether a file imports a file of its project that may train: one that spells a training marker or
    a hand-off of its own, or (up to MAX_HOPS files on, for a package's `__init__.py` that re-exports) one
    that imports such a file. An import whose file cannot be found or read may be anything: it counts."""
    files = _project_imports(data, path)
    seen: set[Path] = set()
    for _ in range(MAX_HOPS + 1):
        if files is None:
            return True
        further: list[Path] | None = []
        for file in files:
            if file in seen:
                continue
            seen.add(file)
            try:
                trains, imports = _read_imports(file, _stamp(file))
            except OSError:
                return True
            if trains:
                return True
            if imports is None or further is None:
                further = None
            else:
                further.extend(imports)
        files = further
    return False


def _stamp(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_mtime_ns, status.st_size


# Every file of a folder asks about the same modules: each is read once a process while it is unchanged (the
# stamp is its modification time and size).
@functools.lru_cache(maxsize=4096)
def _read_imports(path: Path, stamp: tuple[int, int]) -> tuple[bool, tuple[Path, ...] | None]:
    """Whether a project file may train by its own text, and the project files it imports (None: one of them
    cannot be found)."""
    text = path.read_bytes()
    code = Code(text)  # one scan of its strings and comments serves both searches
    trains = has_training_marker(text, TRAINING_MARKERS, code) or hands_training_on(text, code)
    imports = _project_imports(text, path)
    return trains, None if imports is None else tuple(imports)


def _project_imports(data: bytes, path: Path) -> list[Path] | None:
    files: list[Path] = []
    for match in IMPORT.finditer(data):
        found = _import_files(match, path)
        if found is None:
            return None
        files.extend(found)
    return files


def _import_files(match: re.Match, path: Path) -> list[Path] | None:
    """The files of the project an import statement reads, as the facts layer finds them: the module, and
    the names it imports that are submodules. None for a relative import that names no file."""
    dots, module, names, plain = (g.decode("ascii", "replace") if g else "" for g in match.groups())
    if plain:
        wanted = [(name.split()[0], ()) for name in plain.split(",") if name.strip()]
    else:
        imported = tuple(name.split()[0] for name in names.strip("()").replace("\\", " ").split(",") if name.split())
        wanted = [(module, imported)]
    files: list[Path] = []
    for name, imported in wanted:
        if dots:
            base = path.parent
            for _ in range(len(dots) - 1):
                base = base.parent
            folders = [base]
        elif is_third_party(name):
            continue
        else:
            folders = import_folders(path.parent)
        parts = [p for p in name.split(".") if p]
        for folder in folders:
            target = folder.joinpath(*parts)
            candidates = [target / "__init__.py", *(target / f"{n}.py" for n in imported)]
            candidates += [target / n / "__init__.py" for n in imported]
            if parts:
                candidates.append(target.with_suffix(".py"))
            found = [f for f in candidates if f.is_file()]
            if found:
                files.extend(found)
                break
        else:
            if dots:
                return None
    return files
