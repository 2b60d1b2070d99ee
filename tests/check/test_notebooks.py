"""Notebooks: malformed ones are one clean GL001, valid ones are read the way IPython reads them."""
from __future__ import annotations

import difflib
import json
import subprocess
import sys
import warnings

import pytest
from typer.testing import CliRunner

from gradlint.cli import app
from gradlint.notebook import cell_code

# GL101 at line 7, column 5 (the step of an LSTM trained without clipping).
FLAGGED = """\
import torch
model = torch.nn.LSTM(4, 4)
opt = torch.optim.AdamW(model.parameters())
for x in data:
    opt.zero_grad()
    model(x)[0].sum().backward()
    opt.step()
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--no-cache", *args], catch_exceptions=False)
    return result.exit_code, result.stdout


def code_cell(source: object) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}


def notebook(*cells: dict) -> str:
    return json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def findings(path: str) -> list[tuple[str, int | None, int, int]]:
    code, out = check(path, "--format", "json")
    assert code in (0, 1), out
    return [(f["code"], f["cell"], f["line"], f["column"]) for f in json.loads(out)]


TORCH = code_cell("import torch\n")
DEEP = b'{"metadata": ' + b"[" * 50_000 + b"]" * 50_000 + b', "cells": []}'


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (notebook(TORCH, code_cell(["x = 1\n", 3])), "cells[1].source[1] is a number, not a string"),
        (notebook(TORCH, code_cell([None])), "cells[1].source[0] is null, not a string"),
        (notebook(TORCH, code_cell([["x"]])), "cells[1].source[0] is an array, not a string"),
        (notebook(TORCH, code_cell(7)), "cells[1].source is a number, not a string or an array of strings"),
        (notebook(TORCH, code_cell('s = "\ud800"\n')), "code cell 2, line 1 holds a lone surrogate (U+D800)"),
        (notebook(TORCH, code_cell("x = 1\ns = '\x00'\n")), "code cell 2, line 2 holds a NUL character"),
        (notebook(TORCH, "cell"), "cells[1] is a string, not an object"),
        (DEEP, "JSON nested too deeply"),
        (b"\xff\xfe{}", "not UTF-8 text (invalid byte at offset 0)"),
        ('{"cells": [', "invalid JSON: Expecting value: line 1 column 12 (char 11)"),
        ("[]", "the top level is an array, not an object"),
        ('{"nbformat": 4}', "no 'cells' array"),
        ('{"worksheets": [{"cells": 1}]}', "no 'worksheets[0].cells' array"),
    ],
    ids=["int", "null", "array", "number", "surrogate", "nul", "cell", "deep", "bytes", "json", "top", "cells", "v3"],
)
def test_unreadable_notebook_is_one_gl001_and_the_other_files_are_linted(tmp_path, data, reason):
    (tmp_path / "nb.ipynb").write_bytes(data if isinstance(data, bytes) else data.encode())
    (tmp_path / "good.py").write_text(FLAGGED)
    code, out = check(".")
    assert code == 2
    assert f"nb.ipynb:1:1: GL001 [error] cannot read notebook: {reason}" in out
    assert "good.py:7:5: GL101" in out


def test_crashing_notebooks_give_no_traceback_in_a_real_run(tmp_path):
    (tmp_path / "ints.ipynb").write_text(notebook(TORCH, code_cell(["x = 1\n", 3])))
    (tmp_path / "surrogate.ipynb").write_text(notebook(TORCH, code_cell('s = "\ud800"\n')))
    (tmp_path / "deep.ipynb").write_bytes(DEEP)
    (tmp_path / "good.py").write_text(FLAGGED)
    done = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--no-cache", "."], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stdout.count("GL001 [error] cannot read notebook: ") == 3
    assert "good.py:7:5: GL101" in done.stdout


def test_only_cr_and_lf_end_lines(tmp_path):
    # U+2028 and a form feed inside string literals; the cell's own lines end in \r\n and \r.
    setup = 'import torch\nsep = "a\u2028b"\npage = "c\x0cd"\n'
    lines = FLAGGED.splitlines()[1:]
    loop = "\r\n".join(lines[:3]) + "\r\n" + "\r".join(lines[3:]) + "\r"
    (tmp_path / "nb.ipynb").write_text(notebook(code_cell(setup), code_cell(loop)))
    assert findings("nb.ipynb") == [("GL101", 2, 6, 5)]


def test_nbformat_3_cells_in_worksheets(tmp_path):
    cell = {"cell_type": "code", "input": FLAGGED.splitlines(keepends=True), "language": "python", "outputs": []}
    heading = {"cell_type": "heading", "level": 1, "source": "Training"}
    data = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [heading, cell]}]}
    (tmp_path / "v3.ipynb").write_text(json.dumps(data))
    assert findings("v3.ipynb") == [("GL101", 1, 7, 5)]


def test_magics_and_help_are_skipped_where_ipython_skips_them(tmp_path):
    first = (
        "%matplotlib inline\n"
        "!pip install -q torch\n"
        "try:\n"
        "    %tensorflow_version 2.x\n"
        "except Exception:\n"
        "    pass\n"
        "files = !ls\n"
        "elapsed = %time sum(range(3))\n"
        "import torch\n"
        "model = torch.nn.LSTM(4, 4)\n"
        "model?\n"
        "??torch.nn.LSTM\n"
        "model??\n"
        'message = ("%d layers"\n'
        "           % 1)\n"
    )
    second = "%%bash\nls (\n"
    third = FLAGGED.split("\n", 2)[2].replace("opt.zero_grad()", "opt.zero_grad()\n    %time f(x)")
    (tmp_path / "nb.ipynb").write_text(notebook(code_cell(first), code_cell(second), code_cell(third)))
    assert findings("nb.ipynb") == [("GL101", 3, 6, 5)]


def test_each_line_keeps_its_place():
    cell = 'x = 1\n%time f(x,\\\n  y)\nmodel?\ndoc = """\n%not a magic\n"""\n'
    assert cell_code(cell) == ["x = 1", "pass", "", "pass", 'doc = """', "%not a magic", '"""']
    assert cell_code("%%bash\necho (\n\n") == ["", "", ""]


ORACLE_CELLS = [
    "%matplotlib inline\nimport torch\n",
    "!pip install torch\nimport torch\n",
    "!!ls\n",
    "x = %time sum(range(3))\nprint(x)\n",
    "files = !ls -la\nprint(files)\n",
    "files =   !ls\n",
    "a[0] = !pwd\n",
    "x = %env HOME\n",
    "f(a=%time)\n",
    "try:\n    %tensorflow_version 2.x\nexcept Exception:\n    pass\n",
    "if True:\n    !pip install -q transformers\n",
    "for i in range(3):\n    %time f(i)\n    print(i)\n",
    "with open('f') as fh:\n    data = !cat f\n",
    "msg = ('%d items'\n       % n)\n",
    "total = (a\n%b)\n",
    "y = 10 \\\n% 3\n",
    "lr = 1e-3 \\\n    %  2\n",
    "print('%d' %\n      3)\n",
    's = """\n%not a magic\n!nor this\n"""\n',
    "def f():\n    '''\n    %doc\n    '''\n    return 1\n",
    'd = {\n"a": 1,\n}\n%time d\n',
    's = "a\u2028b"\nprint(s)\n',
    't = "c\x0cd"\nprint(t)\n',
    's = "a\u2028b"\n%time print(s)\n',
    "# a\u2028b\nx = 1\n",
    "x = 1\u2028%time y\n",
    "model?\n",
    "??model\n",
    "model??\n",
    "torch.nn.LSTM?\n",
    "x[0]?\n",
    "?\n",
    "%timeit?\n",
    "print(1)?\n",
    "if x:\n    model?\n",
    "%%bash\necho hi\nls (\n",
    "%%time\nx = 1\n",
    "%%writefile a.py\nimport torch\n",
    "%%timeit?\n",
    "  x = 1\n  %time x\n",
    "x = 1\n  %time x\n",
    "x = (1,\n%time 2\n",
    "%time x = (1,\n2)\n",
    "%time f(x,\\\n  y)\nz = 1\n",
    "a = 5\n%store a\n!echo $a\n",
    "!echo \"it's\"\nx = 1\n",
    "!echo (\nx = 1\n",
    "x = !echo (\ny = 2\n",
    "%load_ext autoreload\n%autoreload 2\n",
    "def f(x):\n    return x\n/f 1\n",
    ",f a b\n",
    ";f a b\n",
    "%= 2\n",
    "x = 3\n!= 2\n",
    "if x:\n    pass\n# %comment\n",
    "x = 1  # %magic in a comment\n",
    "%config InlineBackend.figure_format = 'retina'\n",
    "x = 1\n\n\n!ls\n",
    "class A:\n    %time pass\n",
    "def f(:\n    %time x\n",
]


def compiles(code: str) -> bool:
    try:
        compile(code, "x", "exec")
    except SyntaxError:
        return False
    return True


@pytest.mark.parametrize("cell", ORACLE_CELLS)
def test_agrees_with_ipython(cell):
    inputtransformer2 = pytest.importorskip("IPython.core.inputtransformer2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = inputtransformer2.TransformerManager().transform_cell(cell)
        ours = cell_code(cell)
        assert compiles("\n".join(ours) + "\n") == compiles(theirs)
    # Lines IPython keeps as they are, ours keeps too.
    given = cell.split("\n")[:-1]
    kept = difflib.SequenceMatcher(None, given, theirs.split("\n"), autojunk=False).get_matching_blocks()
    for block in kept:
        for i in range(block.a, block.a + block.size):
            assert ours[i] == given[i]
