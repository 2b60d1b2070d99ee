"""gradlint.parse: a tree parsed without libcst's node checks is the tree libcst's own parse_module builds, and
the checks are back on for every node built afterwards (the fixes' nodes)."""
from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from gradlint.notebook import notebook_code
from gradlint.parse import parse_module
from gradlint.source import decode_python

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for p in (ROOT / "fixtures").rglob("*") if p.suffix in (".py", ".ipynb"))
EDGES = {
    "walrus and match": "if (n := 3) > 2:\n    match n:\n        case [a, *rest] if a: pass\n        case {'k': v, **kw}: pass\n",
    "decorators, lambdas and stars": "@d(x)\nasync def f(a, /, b=1, *c, d, **e):\n    return lambda *a, k=1: (yield from g())\n",
    "strings": "x = f'{a!r:>{w}}' '''\n''' u'é'\ny = rb'\\x00' b'c'\n",
    "comments and semicolons": "a = 1; b = 2  # c\n\n\n# end\n",
    "tabs and continuation": "if x:\n\ty = [1,\n\t  2] + \\\n\t  z\n",
}


def _text(path: Path) -> str:
    if path.suffix == ".ipynb":
        return notebook_code(path.read_bytes())[0]
    return decode_python(path.read_bytes())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_fixture_parses_to_the_tree_libcst_builds(path: Path) -> None:
    text = _text(path)
    try:
        expected = cst.parse_module(text)
    except cst.ParserSyntaxError:
        with pytest.raises(cst.ParserSyntaxError):
            parse_module(text)
        return
    assert parse_module(text).deep_equals(expected)


@pytest.mark.parametrize("text", EDGES.values(), ids=EDGES.keys())
def test_edges_parse_to_the_tree_libcst_builds(text: str) -> None:
    module = parse_module(text)
    assert module.deep_equals(cst.parse_module(text))
    assert module.code == text


def test_nodes_built_after_a_parse_are_checked_again() -> None:
    parse_module("x = 1\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("")
    with pytest.raises(cst.ParserSyntaxError):
        parse_module("def (:\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("")
