"""Jupyter notebooks: the Python code of the code cells, read the way IPython reads it."""
from __future__ import annotations

import json
import os
import re
import tokenize

# Only these end a line of Python: str.splitlines would also cut at U+2028, form feeds and
# other characters that may sit inside a string literal.
LINE_END = re.compile(r"\r\n|\r|\n")
INDENT = re.compile(r"[ \t]*")

# What starts an IPython command at the beginning of a logical line: a magic, a shell escape,
# help, an autocall. `%=`, `!=`, `/=` and `//` are Python operators there, not escapes.
ESCAPE = re.compile(r"%(?!=)|!(?!=)|/(?![=/])|[?,;]")

# A cell magic (%%bash, %%time) makes the whole cell something other than Python; `%%time?` is
# help on the magic and leaves the cell alone.
CELL_MAGIC = re.compile(r"%%(?!\w+\?)")
# Cell magics that run the rest of the cell as Python in the notebook's namespace (`%%time` above a
# model.fit): the cell is read as code.
PYTHON_CELL_MAGIC = re.compile(r"%%(time|capture)(\s|$)")

# IPython's help syntax at the end of a logical line: `model?`, `nn.LSTM??`, `x[0]?`, `%time?`.
HELP_END = re.compile(r"%{0,2}(?!\d)[\w*]+(?:\.(?!\d)[\w*]+|\[-?[0-9]+\])*\?\??$")

OPEN, CLOSE = frozenset("([{"), frozenset(")]}")


class NotebookError(ValueError):
    """A notebook that cannot be read; the message is a one-line reason."""


def notebook_code(data: bytes) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The code cells of a notebook (the .ipynb file's bytes) joined into one module, and the
    (code cell, line in cell) of each of its lines, both 1-based."""
    lines: list[str] = []
    where: list[tuple[int, int]] = []
    for cell, source in enumerate(_code_sources(_load(data)), start=1):
        _check_text(cell, source)
        for number, line in enumerate(cell_code(source), start=1):
            lines.append(line)
            where.append((cell, number))
    return "\n".join(lines) + "\n", tuple(where)


def cell_code(text: str) -> list[str]:
    """The lines of one cell as Python: IPython syntax becomes a no-op of the same indentation, so
    every line keeps its place and a block holding only a magic stays valid."""
    lines = LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()
    lines = _dedent(lines)
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and PYTHON_CELL_MAGIC.match(lines[first]):
        return [""] * (first + 1) + _replace_commands(lines[first + 1 :])
    if first is not None and CELL_MAGIC.match(lines[first]):
        return [""] * len(lines)
    return _replace_commands(lines)


def _load(data: bytes) -> dict:
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise NotebookError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    except RecursionError:
        raise NotebookError("JSON nested too deeply") from None
    except ValueError as exc:  # bad JSON, or a number too long to convert
        raise NotebookError(f"invalid JSON: {exc}") from None
    if not isinstance(nb, dict):
        raise NotebookError(f"the top level is {_kind(nb)}, not an object")
    return nb


def _code_sources(nb: dict) -> list[str]:
    """The text of each code cell, in order; nbformat 3 keeps cells in worksheets, code in 'input'."""
    if "cells" not in nb and "worksheets" in nb:
        cells = [
            (f"worksheets[{i}].cells[{j}]", cell)
            for i, sheet in enumerate(_array(nb, "worksheets", ""))
            for j, cell in enumerate(_array(_object(sheet, f"worksheets[{i}]"), "cells", f"worksheets[{i}]."))
        ]
        key = "input"
    else:
        cells = [(f"cells[{j}]", cell) for j, cell in enumerate(_array(nb, "cells", ""))]
        key = "source"
    sources = []
    for where, cell in cells:
        if _object(cell, where).get("cell_type") != "code":
            continue
        source = cell.get(key, "")
        if isinstance(source, list):
            for k, part in enumerate(source):
                if not isinstance(part, str):
                    raise NotebookError(f"{where}.{key}[{k}] is {_kind(part)}, not a string")
            source = "".join(source)
        elif not isinstance(source, str):
            raise NotebookError(f"{where}.{key} is {_kind(source)}, not a string or an array of strings")
        sources.append(source)
    return sources


def _array(obj: dict, key: str, where: str) -> list:
    value = obj.get(key)
    if not isinstance(value, list):
        raise NotebookError(f"no '{where}{key}' array")
    return value


def _object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise NotebookError(f"{where} is {_kind(value)}, not an object")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _check_text(cell: int, source: str) -> None:
    """Python source is UTF-8 text without NUL; JSON escapes can still put a lone surrogate or a NUL
    in a cell, and the parser must not meet them."""
    bad = re.search(r"[\x00\ud800-\udfff]", source)
    if bad:
        line = len(LINE_END.findall(source, 0, bad.start())) + 1
        what = "a NUL character" if bad.group() == "\x00" else f"a lone surrogate (U+{ord(bad.group()):04X})"
        raise NotebookError(f"code cell {cell}, line {line} holds {what}: not Python source")


def _dedent(lines: list[str]) -> list[str]:
    """Remove the indentation common to all lines, as IPython does before running a cell."""
    indents = [INDENT.match(line).group() for line in lines if line.strip(" \t")]
    margin = os.path.commonprefix(indents) if indents else ""
    if not margin:
        return lines
    return [line[len(margin) :] if line.strip(" \t") else "" for line in lines]


def _replace_commands(lines: list[str]) -> list[str]:
    """Replace IPython commands at the start of logical lines, as IPython's own transformers find
    them: a logical line is only known by tokenizing, since brackets, backslashes and multi-line
    strings carry a line on, and a `%` that begins a continuation line is the modulo operator."""
    out = list(lines)
    start = 0
    while start < len(lines):
        indent = INDENT.match(lines[start]).group()
        if ESCAPE.match(lines[start], len(indent)):
            end = _continued_end(lines, start)
            out[start : end + 1] = [indent + "pass"] + [""] * (end - start)
            start = end + 1
            continue
        tokens, complete = _logical_line(lines, start, indent)
        if complete and len(tokens) > 2 and tokens[-2].string == "?":
            last = tokens[-1].start[0]
            if HELP_END.search(lines[last]):
                out[start : last + 1] = [indent + "pass"] + [""] * (last - start)
                start = last + 1
                continue
        command = _assigned_command(tokens)
        if command is not None:
            row, column = command.start
            end = _continued_end(lines, row)
            out[row : end + 1] = [lines[row][:column] + "..."] + [""] * (end - row)
            start = end + 1
            continue
        if not complete:
            break  # the rest of the cell does not tokenize: the parser will say why
        start = tokens[-1].start[0] + 1
    return out


def _logical_line(lines: list[str], start: int, indent: str) -> tuple[list[tokenize.TokenInfo], bool]:
    """The tokens of the logical line that begins at lines[start], with rows made 0-based indexes of
    `lines` and columns made columns of `lines`, and whether the line ended before the cell did.

    The indentation is cut before tokenizing so that the tokenizer, which starts afresh, sees no
    block structure."""

    def readline():
        yield lines[start][len(indent) :] + "\n"
        for row in range(start + 1, len(lines)):
            yield lines[row] + "\n"

    tokens = []
    depth = 0
    try:
        for token in tokenize.generate_tokens(readline().__next__):
            row, column = token.start
            shift = len(indent) if row == 1 else 0
            tokens.append(token._replace(start=(start + row - 1, column + shift)))
            if token.type == tokenize.NEWLINE or (token.type == tokenize.NL and depth == 0):
                return tokens, True
            if token.type == tokenize.OP and token.string in OPEN:
                depth += 1
            elif token.type == tokenize.OP and token.string in CLOSE and depth:
                depth -= 1
    except tokenize.TokenError:
        pass
    return tokens, False


def _assigned_command(tokens: list[tokenize.TokenInfo]) -> tokenize.TokenInfo | None:
    """The `%` of `x = %magic` or the `!` of `x = !command`: IPython assigns the command's result.

    Only the first `=` outside brackets counts, as in IPython."""
    depth = 0
    for i, token in enumerate(tokens):
        if token.string == "=" and depth == 0:
            # Python 3.11's tokenizer gives each blank before an unknown character as a token.
            after = [t for t in tokens[i + 1 :] if not (t.type == tokenize.ERRORTOKEN and t.string.isspace())][:2]
            if after and after[0].string == "!":
                return after[0]
            if len(after) > 1 and after[0].string == "%" and after[1].type == tokenize.NAME:
                return after[0]
            return None
        if token.string in OPEN:
            depth += 1
        elif token.string in CLOSE and depth:
            depth -= 1
    return None


def _continued_end(lines: list[str], row: int) -> int:
    """The last line of a command that goes on over lines ending in a backslash."""
    while row + 1 < len(lines) and lines[row].endswith("\\"):
        row += 1
    return row
