"""facts.positions gives the answer libcst's PositionProvider gives: for every node any rule reports on every
fixture and rule-page example, for every call, assignment, class and function of those files, and for every
node of sources written to try the edges (line endings, tabs, form feeds, non-ASCII, notebooks, every kind of
block)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from gradlint.config import Settings
from gradlint.facts import FileFacts
from gradlint.facts.positions import Positions
from gradlint.facts.project import Project
from gradlint.lint import check_unit
from gradlint.notebook import notebook_code
from gradlint.source import SourceUnit, decode_python

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rules"))
from pages import examples, page_codes  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted(
    p for folder in ("static", "fix", "probe") for p in (ROOT / "fixtures" / folder).rglob("*") if p.suffix in (".py", ".ipynb")
)
PAGES = [
    (f"{code}-{section}-{i}", text)
    for code in page_codes()
    for section in ("Example", "Use instead")
    for i, text in enumerate(examples(code, section))
]
ASKED = (cst.Call, cst.Assign, cst.ClassDef, cst.FunctionDef)


def _unit(path: Path) -> SourceUnit:
    data = path.read_bytes()
    if path.suffix == ".ipynb":
        text, cells = notebook_code(data)
        return SourceUnit(str(path), text, cells)
    return SourceUnit(str(path), decode_python(data))


def _provider(module: cst.Module) -> dict:
    ranges = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return {node: (r.start.line, r.start.column + 1, r.end.line, r.end.column + 1) for node, r in ranges.items()}


def _reported(unit: SourceUnit, monkeypatch) -> list[tuple[FileFacts, cst.CSTNode, tuple]]:
    """Every (facts, node, answer) the rules asked span() for while checking the unit."""
    asked = []
    span = FileFacts.span

    def spy(self, node):
        answer = span(self, node)
        asked.append((self, node, answer))
        return answer

    monkeypatch.setattr(FileFacts, "span", spy)
    check_unit(unit, Settings(), Project())
    monkeypatch.undo()
    return asked


def _check_reported_and_asked(unit: SourceUnit, monkeypatch) -> None:
    reported = _reported(unit, monkeypatch)
    by_facts: dict[int, dict] = {}
    for facts, node, answer in reported:
        expected = by_facts.setdefault(id(facts), _provider(facts.module))
        assert answer == expected.get(node, (1, 1, 1, 1)), (unit.path, facts.code(node)[:60])
    module = cst.parse_module(unit.text)
    expected = _provider(module)
    positions = Positions(module, unit.text)
    nodes = [n for n in expected if isinstance(n, ASKED)]
    for node in nodes:
        assert positions.span(node) == expected[node], (unit.path, module.code_for_node(node)[:60])
    # Calls and assignments, located through the statement the facts know holds them.
    facts = FileFacts(unit.path, module, None, unit.text)
    for site in facts.index.all_sites:
        assert facts.span(site.node) == expected[site.node], (unit.path, module.code_for_node(site.node)[:60])


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture_positions_are_libcsts(path, monkeypatch):
    _check_reported_and_asked(_unit(path), monkeypatch)


@pytest.mark.parametrize("name, text", PAGES, ids=[name for name, _ in PAGES])
def test_rule_page_positions_are_libcsts(name, text, monkeypatch):
    _check_reported_and_asked(SourceUnit(f"{name}.py", text), monkeypatch)


def test_every_fixture_folder_is_covered():
    assert {p.relative_to(ROOT / "fixtures").parts[0] for p in FIXTURES} == {"static", "fix", "probe"}


BLOCKS = '''\
import torch  # comment
from torch import nn as N, optim
x = 1; y = (2 +
  3); z = [4,
     5]
a = b = \\
    f(x)

@decorator(1)
# between decorators
@other
async def g(p, q=call(1), *args, k: int = h(), **kw) -> T:
    """Doc."""
    async with m() as u, n():
        await u(v)
    async for i in it():
        pass
    return lambda w: w(1)

class C(Base, metaclass=M):
    attr: int = field(default=1)

    def method(self):
        if self.a(): pass
        elif self.b():
            self.c()
        else:
            if d(): e()
        while w():
            break
        else:
            z()
        for i in range(3):
            continue
        else:
            z()
        try:
            t()
        except (E, F) as exc:
            raise G() from exc
        except H:
            pass
        else:
            o()
        finally:
            fin()
        with (open(a) as f1,
              open(b) as f2):
            f1.read(f2)
        match cmd:
            case [1, *rest] if guard(rest):
                act(rest)
            case {"k": v, **more}:
                act2()
            case Point(x=0) | None:
                pass
        del a[b()], c
        global gg
        assert check(), msg()
        x += inc()
        y: int
        print(f"{val(1)!r:>{width()}} and {{braces}}")
        data = {k: v(k) for k in ks if k} | {*s} | [*(q for q in r())]
        return (yield from gen()) if cond else -x ** ~y @ z

try:
    pass
except* ValueError:
    handle()
# trailing comment
'''

EDGES = {
    "blocks": BLOCKS,
    "crlf": BLOCKS.replace("\n", "\r\n"),
    "cr": "import torch\rx = f(1)\rif x:\r    y = g(2)\r    z = h(\r        3)\r",
    "tabs": "import torch\nclass A:\n\tdef f(self):\n\t\tif x:\n\t\t        y = g(\t1)\n\t\treturn y\n",
    "form feeds": "import torch\n\x0c\ndef f():\n    x = g(1)\n\x0c\n    return x\nclass B: pass\n",
    "non-ascii": "import torch\n# é\nnom = 'héllo wörld'; café = f('ü', 𝔵=1)\ndef ф(): return 'Ω' + g('日本')\n",
    "no final newline": "import torch\ndef f():\n    return g(1)",
    "odd indents": "import torch\nif a:\n  b()\n  if c:\n        d()\n  e = (1,\n2)\n",
    "only comments in block": "import torch\ndef f():\n    # only\n    pass\n    # after\n",
    "continuations": "import torch\nx = 1 + \\\n    f(2)\nif a and \\\n   b:\n    c = \\\n      d()\n",
}


def _every_node(module: cst.Module) -> list[cst.CSTNode]:
    """Every node but the module, whitespace and comments, which no rule reports."""
    found = []

    class Collect(cst.CSTVisitor):
        def on_visit(self, node):
            found.append(node)
            return True

    module.visit(Collect())
    return [n for n in found if "Whitespace" not in type(n).__name__ and not isinstance(n, (cst.Module, cst.Newline, cst.EmptyLine, cst.Comment))]


@pytest.mark.parametrize("name", list(EDGES))
def test_every_node_of_edge_sources(name):
    text = EDGES[name]
    module = cst.parse_module(text)
    expected = _provider(module)
    positions = Positions(module, text)
    for node in _every_node(module):
        if node in expected:
            assert positions.span(node) == expected[node], (name, type(node).__name__, module.code_for_node(node)[:40])


def test_notebook_cells_joined(tmp_path):
    cells = [
        {"cell_type": "code", "source": ["import torch\n", "%matplotlib inline\n", "model = torch.nn.LSTM(1, 2)"]},
        {"cell_type": "markdown", "source": ["# title"]},
        {"cell_type": "code", "source": ["!pip install x\n", "for x in data():\n", "    loss = model(x)\n", "    loss.backward()"]},
    ]
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}))
    text, _ = notebook_code(notebook.read_bytes())
    module = cst.parse_module(text)
    expected = _provider(module)
    positions = Positions(module, text)
    for node in _every_node(module):
        if node in expected:
            assert positions.span(node) == expected[node]


def test_asking_in_any_order_gives_the_same_answers():
    module = cst.parse_module(BLOCKS)
    expected = _provider(module)
    nodes = [n for n in _every_node(module) if n in expected]
    positions = Positions(module, BLOCKS)
    for node in reversed(nodes):
        assert positions.span(node) == expected[node]


def test_a_valid_file_with_a_very_long_sum_is_linted(tmp_path):
    from gradlint import lint_paths

    script = tmp_path / "long_sum.py"
    script.write_text(
        "import torch\nfrom torch import nn\n\nmodel = nn.LSTM(10, 20)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)\n"
        "for x, y in loader:\n    opt.zero_grad()\n    out, _ = model(x)\n"
        "    loss = ((out - y) ** 2).mean()\n    loss.backward()\n    opt.step()\n"
        "v = " + " + ".join(["a"] * 350) + "\n"
    )
    result = lint_paths([script])
    assert not result.internal_errors
    assert [(f.code, f.line, f.column) for f in result.findings] == [("GL101", 11, 5)]
