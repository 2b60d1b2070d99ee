"""Parsing a module with libcst, without checking again what its own parser built.

libcst checks every node it constructs (`CSTNode.__post_init__` runs the node's `_validate`): a safety net for
trees built by hand, redundant for a tree its parser made from source text, and a third of the time that
parsing takes. A visit of a tree rebuilds every node, and would check them all again. The fixes' own nodes
are built outside these, and are still checked.

Those checks also refuse a few texts that libcst's grammar reads and Python rejects (`'a' b'b'`): such a file is
linted, and reported as GL001 only when it has findings, as other files that Python refuses to compile.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import libcst as cst

# What gradlint treats as "libcst cannot read this text".
PARSE_ERRORS = (cst.ParserSyntaxError, RecursionError)


# The parser calls `__post_init__` on each node it builds (thousands a file): a function of C that takes no
# argument costs less than a no-op in Python (about 2% of a parse).
_UNCHECKED = staticmethod(tuple)


@contextmanager
def unchecked_nodes() -> Iterator[None]:
    checked = cst.CSTNode.__dict__["__post_init__"]
    cst.CSTNode.__post_init__ = _UNCHECKED
    try:
        yield
    finally:
        cst.CSTNode.__post_init__ = checked


def parse_module(text: str) -> cst.Module:
    with unchecked_nodes():
        return cst.parse_module(text)
