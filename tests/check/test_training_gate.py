"""The training-marker gate: a file whose text spells nothing a rule needs is not parsed, and skipping it
changes no finding of any fixture (nor of the corpus under tests/corpus, when one is there)."""
from __future__ import annotations

import functools
import importlib.util
import io
import re
import tokenize
from pathlib import Path

import pytest

import gradlint.source as source
from gradlint import lint_paths
from gradlint.config import Settings
from gradlint.jobs import lint_file as _lint_file
from gradlint.facts.project import Project
from gradlint.source import read_unit

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = [ROOT / "fixtures" / name for name in ("static", "fix", "probe")] + [ROOT / "tests" / "corpus"]
FILES = sorted(p for folder in FOLDERS if folder.is_dir() for p in folder.rglob("*") if p.suffix in (".py", ".ipynb"))


def _framework_only(data: bytes, path: Path | None = None) -> bool:
    return source.FRAMEWORK_IMPORT.search(data) is not None


def _findings(path: Path) -> list:
    found, _, error, unchecked = _lint_file(str(path), str(path), Settings(), Project())
    assert error is None, error
    return sorted((f.code, f.line, f.column, f.message) for f in found)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_gate_changes_no_finding(path, monkeypatch):
    gated = _findings(path)
    # Without the gate every file is parsed (an entry point importing no framework may train through its
    # project: `import trainer; trainer.Trainer(args).train()`).
    monkeypatch.setattr(source, "may_be_training_code", lambda data, path=None: True)
    assert gated == _findings(path)


def test_the_gate_skips_fixtures():
    # The gate is worth having only if it skips something: the clean fixtures include inference-only code.
    skipped = [p for p in FILES if p.suffix == ".py" and read_unit(p)[0] is None and _framework_only(p.read_bytes())]
    assert skipped


def _unit(tmp_path: Path, text: str):
    path = tmp_path / "f.py"
    path.write_text(text)
    return read_unit(path)[0]


@pytest.mark.parametrize(
    "text",
    [
        "import torch\nloss = model(x).sum()\nloss . backward ()\n",
        "import tensorflow as tf\nwith tf.GradientTape() as tape:\n    l = f(x)\ng = tape.gradient(l, v)\n",
        "import keras\nm.compile('sgd')\nm.fit(x, y)\n",
        "from transformers import Trainer as T\nt = T(model=m)\n",
        "import torch\nlayers = [torch.nn.Linear(8, 8) for _ in range(10)]\n",
        "from torch.nn import Linear as L\nlayers = [L(8, 8) for _ in range(10)]\n",
        "import torch\nfor m in net.modules():\n    m.weight.data.normal_(0, 2)\n",
        "import torch\nw = torch.nn.Parameter(torch.randn(10, 10))\n",
        "import torch\ntrain_loader = torch.utils.data.DataLoader(ds, batch_size=4096)\n",
    ],
)
def test_what_a_rule_needs_is_parsed(tmp_path, text):
    assert _unit(tmp_path, text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "import torch\nwith torch.no_grad():\n    y = model(x)\n",
        "import torch\nclass F(torch.autograd.Function):\n    def backward(ctx, g):\n        return g\n",
        "import torch\nx = torch.randn(3, 3)\n",  # a random input, not a parameter
        "import torch\nloader = DataLoader(ds, batch_size=4096)\n",  # nothing says it trains
        "import numpy\nloss.backward()\n",  # no framework
        # Naming a layer builds none (torch's own modules do it in many ways).
        "import torch\nif isinstance(m, torch.nn.Linear):\n    m.reset_parameters()\n",
    ],
)
def test_what_no_rule_needs_is_skipped(tmp_path, text):
    assert _unit(tmp_path, text) is None


TRAINER = (
    "import torch\ndef run_epoch(net, opt):\n    for x in data:\n        net(x).sum().backward()\n        opt.step()\n"
)
TF_MODEL = (
    "import tensorflow as tf\nclass Model:\n    def __init__(self):\n"
    "        self.train_op = tf.train.AdamOptimizer().minimize(loss)\n"
)


@pytest.mark.parametrize(
    "text",
    [
        "import torch\nfrom trainer import run_epoch\nopt = torch.optim.Adam(net.parameters())\nrun_epoch(net, opt)\n",
        "import torch\nfrom torch import optim\nfrom trainer import run_epoch\nrun_epoch(net, optim.SGD(ps, 0.1))\n",
        "import torch\nfrom trainer import run_epoch, build_optimizer\nrun_epoch(net, build_optimizer(net))\n",
        "import torch\nfrom trainer import Loop\nLoop(net).train_epochs(3)\n",
        "import tensorflow as tf\nfrom model import Model\nm = Model()\nsess.run(m.train_op)\n",
        "from model import Model\nm = Model()\nsess.run(m.train_op)\n",  # imports no framework
        "import torch\nimport trainer as t, model\nt.run_epoch(net, torch.optim.SGD(ps, 0.1))\n",
    ],
)
def test_a_file_that_may_hand_training_to_its_project_is_parsed(tmp_path, text):
    (tmp_path / "trainer.py").write_text(TRAINER)
    (tmp_path / "model.py").write_text(TF_MODEL)
    assert _unit(tmp_path, text) is not None


ENTRY = "import torch\nfrom {} import run_epoch\nrun_epoch(net, torch.optim.SGD(ps, 0.1))\n"


def test_a_hand_off_to_files_that_cannot_train_is_skipped(tmp_path):
    # torch's compiler: `from .utils import fit_in(...)` into modules with no training marker.
    (tmp_path / "trainer.py").write_text("import torch\ndef run_epoch(net, opt):\n    return net\n")
    assert _unit(tmp_path, ENTRY.format("trainer")) is None
    (tmp_path / "trainer.py").write_text(TRAINER)
    assert _unit(tmp_path, ENTRY.format("trainer")) is not None


@pytest.mark.parametrize(
    ("files", "module"),
    [
        # A package that re-exports the loop from a submodule, or holds it as a submodule.
        ({"loops/__init__.py": "from .epoch import run_epoch\n", "loops/epoch.py": TRAINER}, "loops"),
        ({"loops/__init__.py": "", "loops/epoch.py": TRAINER}, "loops.epoch"),
        # Two files on: the entry's module calls one that trains.
        ({"runner.py": "from trainer import run_epoch as go\n", "trainer.py": TRAINER}, "runner"),
    ],
)
def test_a_hand_off_is_followed_through_the_files_it_imports(tmp_path, files, module):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert _unit(tmp_path, ENTRY.format(module)) is not None


def test_a_relative_import_of_no_file_may_be_anything(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    path = tmp_path / "pkg" / "train.py"
    path.write_text(ENTRY.format(".missing"))
    assert read_unit(path)[0] is not None
    (tmp_path / "pkg" / "missing.py").write_text("def run_epoch(net, opt):\n    return net\n")
    assert read_unit(path)[0] is None


def test_a_file_that_names_optimizers_without_building_one_is_skipped(tmp_path):
    # torch's compiler does this in a hundred files, and calls `.run(` on graphs and processes.
    (tmp_path / "trainer.py").write_text(TRAINER)
    text = "import torch\nfrom trainer import guard\nif is_optimizer(x) and guard(optimizer):\n    graph.run(x)\n"
    assert _unit(tmp_path, text) is None


def test_defining_a_function_named_for_training_hands_nothing_on(tmp_path):
    (tmp_path / "trainer.py").write_text(TRAINER)
    for text in ("import trainer\ndef training(self):\n    pass", "import trainer\nclass MyOptimizer(B):\n    pass"):
        assert _unit(tmp_path, text) is None
    assert _unit(tmp_path, "import trainer\nx = training(self)\n") is not None


def test_a_package_installed_beside_a_file_is_not_its_project(tmp_path):
    installed = tmp_path / "site-packages"
    (installed / "sympy").mkdir(parents=True)
    (installed / "sympy" / "__init__.py").write_text(TRAINER)
    (installed / "torch" / "fx").mkdir(parents=True)
    path = installed / "torch" / "fx" / "f.py"
    path.write_text("import torch\nimport sympy\nopt = torch.optim.SGD(ps, 0.1)\nsympy.run_epoch(opt)\n")
    assert read_unit(path)[0] is None
    # The same file in a project folder hands its optimizer to the project's `sympy` module.
    project = tmp_path / "project"
    (project / "sympy").mkdir(parents=True)
    (project / "sympy" / "__init__.py").write_text(TRAINER)
    (project / "f.py").write_text(path.read_text())
    assert read_unit(project / "f.py")[0] is not None


def test_a_skipped_file_with_a_syntax_error_is_not_reported(tmp_path):
    (tmp_path / "infer.py").write_text("import torch\ny = model(x\n")
    assert lint_paths([tmp_path]).findings == []


def test_a_neighbour_without_markers_is_read_for_a_training_file(tmp_path):
    (tmp_path / "model.py").write_text(
        "import torch\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.rnn = torch.nn.LSTM(4, 4)\n"
    )
    assert read_unit(tmp_path / "model.py")[0] is None
    (tmp_path / "train.py").write_text(
        "import torch\nfrom model import Net\nmodel = Net()\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for x in data:\n    opt.zero_grad()\n    model(x)[0].sum().backward()\n    opt.step()\n"
    )
    codes = [(Path(f.path).name, f.code) for f in lint_paths([tmp_path]).findings]
    assert ("train.py", "GL101") in codes


# The marker as one alternation with look-behinds, searched in the text with its strings and comments blanked
# by the tokenizer: has_training_marker answers as it does, faster.
ONE_PATTERN = re.compile(
    rb"""
    (?<!def\ )\bbackward\s*\(
    | \.\s*(?:fit|fit_generator|train_on_batch)\s*\(
    | Trainer
    | (?:Linear|Dense)(?:\s*\(|\s+as\b)
    | (?<!def\ )\b(?:normal_?|uniform_?)\s*\(
    """,
    re.VERBOSE,
)
TF_ONE_PATTERN = re.compile(rb"(?<!def\ )(?:gradients?|minimize)\s*\(")  # only where TensorFlow is named
EDGES = [
    b"loss.backward()", b"def backward(self):", b"xbackward()", b"_backward ()", b"backward", b"def  backward(",
    b"tape.gradient(l, v)", b"def gradient(x):", b"opt.apply_gradients(z)", b"tf.gradients (y, x)",
    b"opt.minimize(loss)", b"def minimize(f):", b"model . fit (x)", b"m.fit_generator(g)", b"m.train_on_batch(b)",
    b"fit(x)", b".fitness(x)", b"Trainer", b"nn.Linear", b"Dense", b"init.normal_(w)", b"np.random.normal(0, 1)",
    b"abnormal(x)", b"def normal(x):", b"uniform_ (w)", b"nonuniform(x)", b"", b"def \nbackward(",
    b"isinstance(m, nn.Linear)", b"nn.Linear (3, 4)", b"from torch.nn import Linear as L", b"Linear as_",
    b"Dense\n(1)", b"nnq.Linear: nn.Linear,",
    # In strings and comments, and code beside them.
    b"# loss.backward()", b"x = 1  # loss.backward()\n", b'"""\n>>> loss.backward()\n"""', b"s = 'loss.backward()'",
    b"s = '#'; loss.backward()", rb"s = r'\''; loss.backward()", b"s = '''a\\''''\nloss.backward()",
    b"s = 'a\\\nb'; loss.backward()", b"f'{x}' + \"Trainer\"", b"f\"{'a'}\"; Trainer", rb"b'\'' # Trainer",
    b"'''\n# '''; nn.Linear(3, 4)", b'"# Trainer"', b"x = '''Trainer'''", b"x = ''; Trainer",
    b"import tensorflow as tf\ntape.gradient(l, v)", b"import keras\nopt.minimize(loss)",
    b"import tensorflow as tf\n# tape.gradient(l, v)",
]


@functools.lru_cache(maxsize=None)  # both tests blank the same files
def _blanked(data: bytes) -> bytes | None:
    """The text with each byte of its strings and comments a space (lines kept), as the tokenizer finds them;
    None where it cannot."""
    lines = data.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(row: int, column: int) -> int:  # the tokenizer counts characters
        return starts[row - 1] + len(lines[row - 1].decode()[:column].encode()) if row <= len(lines) else starts[-1]

    out = bytearray(data)
    try:
        for token in tokenize.tokenize(io.BytesIO(data).readline):
            if token.type in (tokenize.STRING, tokenize.COMMENT):
                for i in range(offset(*token.start), offset(*token.end)):
                    out[i] = out[i] if out[i] in b"\r\n" else ord(" ")
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        return None
    return bytes(out)


def _sources() -> list[bytes]:
    torch_root = Path(importlib.util.find_spec("torch").origin).parent
    return [*EDGES, *(p.read_bytes() for p in FILES), *(p.read_bytes() for p in sorted(torch_root.rglob("*.py")))]


def _code(data: bytes, *patterns: re.Pattern) -> bytes | None:
    """The text to search: blanked where one of `patterns` is in it (the tokenizer is slow)."""
    return _blanked(data) if any(p.search(data) for p in patterns) else data


def _marker_oracle(code: bytes) -> bool:
    tensorflow = b"tensorflow" in code or b"keras" in code
    return bool(ONE_PATTERN.search(code) or (tensorflow and TF_ONE_PATTERN.search(code)))


def test_the_marker_search_answers_as_one_pattern_did():
    pairs = [(data, _code(data, ONE_PATTERN, TF_ONE_PATTERN)) for data in _sources()]
    differ = [
        data[:80]
        for data, code in pairs
        if code is not None and source.has_training_marker(data) != _marker_oracle(code)
    ]
    assert differ == []
    assert sum(code is None for _, code in pairs) < 5  # the tokenizer fails only on a few broken edges


# HANDS_OFF as one alternation (and, for a file with no framework, the wider one), searched in the blanked
# text: hands_training_on answers as it does, faster.
HANDS_OFF_ONE_PATTERN = re.compile(
    rb"\b(?:train\w*|fit(?:_\w*|[A-Z]\w*)?)\s*\(|optim\s*\.\s*[A-Z]\w*\s*\("
    rb"|optimizers\s*\.\s*(?:legacy\s*\.\s*)?\w+\s*\("
    rb"|\wOptimizer\s*\(|(?<!is_)optimi[sz]ers?\s*\(|optim(?:izers)?\s+import|import\s+optim(?:izers)?\b"
)
ANYWHERE_ONE_PATTERN = re.compile(rb"\b(?:train\w*|fit(?:_\w*|[A-Z]\w*)?)\s*\(|optim(?!al|um|i[sz]ation)|\.run\s*\(")
DEFINED_NAME = re.compile(rb"^([ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+)(\w+)", re.MULTILINE)
HANDS_EDGES = [
    b"train_epoch(m)", b"pretrain(x)", b"fit (x)", b"refit(x)", b"is_optimizer(o)", b"build_optimizer(m)",
    b"AdamOptimizer()", b"Optimizer(x)", b"torch.optim.SGD(p)", b"optim.lr_scheduler.StepLR(o)",
    b"keras.optimizers.legacy.Adam()", b"from torch.optim import Adam", b"from torch import optim", b"optimise(x)",
    b"sess.run(op)", b"import tensorflow\nsess.run(op)", b"import torch\nsess.run(op)",
    b"def training(self):", b"class MyOptimizer(Base):", b"x = training(self)", b"fits_in(x)", b"fit_epoch(m)",
    b"optimization_hints(x)", b"from s import optimization_hint", b"import optimizers", b"async def train_step(b):",
    b"# train_epoch(m)", b"'''train_epoch(m)'''", b"x = 'optim'", b"import tensorflow\n# sess.run(op)",
]


def _hands_oracle(data: bytes, code: bytes) -> bool:
    code = _undefined(code)
    if source.FRAMEWORK_IMPORT.search(data) is None:
        return ANYWHERE_ONE_PATTERN.search(code) is not None
    session = source.SESSION_RUN.search(code) and (b"tensorflow" in data or b"keras" in data)
    return bool(HANDS_OFF_ONE_PATTERN.search(code) or session)


def _undefined(code: bytes) -> bytes:
    """The text with the names that `def` and `class` statements define blanked."""
    return DEFINED_NAME.sub(lambda m: m.group(1) + b" " * len(m.group(2)), code)


def test_the_hands_off_search_answers_as_one_pattern_did():
    sources = [*HANDS_EDGES, *(b"import torch\n" + e for e in HANDS_EDGES), *_sources()]
    pairs = [(data, _code(data, ANYWHERE_ONE_PATTERN)) for data in sources]
    differ = [
        data[:80]
        for data, code in pairs
        if code is not None and source.hands_training_on(data) != _hands_oracle(data, code)
    ]
    assert differ == []
