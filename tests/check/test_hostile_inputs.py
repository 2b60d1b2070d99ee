"""Hostile inputs cost one file, never the run: one run of `gradlint check` for each class of
../shared/bugs/reliability/INDEX.md, with the inputs of that class beside two training files that are
known to be flagged (an LSTM trained without clipping: GL101).

The inputs are generated from shapes and mutations rather than listed. What each input must give is
decided the way a user would decide it: Python itself (compile) says whether a .py file is source, the
json module whether a notebook is JSON, and the flagged script keeps its GL101 under any change that
leaves its code the same (an encoding Python reads, other line endings, a character in a comment).
Every run must end with no traceback, and with exit 2 exactly when a file got GL001 or an internal error.
"""
from __future__ import annotations

import codecs
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import tokenize
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradlint.cli import app
from gradlint.config import Settings
from gradlint.engine import CACHE_DIR, lint_paths
from rule_fixtures import FLAGGED

STEP_LINE = 11  # where GL101 points in FLAGGED
KNOWN = ("train_a.py", "train_b.py")


# --- running and judging ---------------------------------------------------------------------------


def setup_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in KNOWN:
        (folder / name).write_text(FLAGGED)
    return folder


def gradlint(folder: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--format", "json", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def survived(run: subprocess.CompletedProcess) -> dict[str, list[dict]]:
    """The run's findings by file, after the checks every run must pass."""
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stdout, run.stdout[-3000:]
    by_path: dict[str, list[dict]] = {}
    for finding in json.loads(run.stdout):
        by_path.setdefault(finding["path"], []).append(finding)
    for name in KNOWN:
        assert [(f["code"], f["line"]) for f in by_path.get(name, [])] == [("GL101", STEP_LINE)], (name, run.stderr)
    failed = any(f["code"] == "GL001" for fs in by_path.values() for f in fs) or "internal error" in run.stderr
    assert run.returncode == (2 if failed else 1), (run.returncode, run.stderr)
    # Files the run says it did not check (an internal error, or a file libcst cannot read): known limits,
    # said on stderr, one line each.
    for line in run.stderr.splitlines():
        said = re.match(r"gradlint: (?:error|warning): (.+?): (?:internal error|not checked)", line)
        if said:
            by_path.setdefault(said.group(1), []).append({"code": "not checked", "message": line, "line": 1})
    return by_path


def python_reads(data: bytes) -> bool:
    """Whether `python file.py` runs past parsing: the file decoded whole by its BOM or coding cookie, then
    compiled. (compile() of the bytes is laxer: it lets undecodable bytes in comments pass.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            compile(data.decode(encoding), "<hostile>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, LookupError, RecursionError, MemoryError, OverflowError):
            return False
    return True


def codes_of(found: list[dict]) -> list[str]:
    return sorted(f["code"] for f in found)


def judge_python(by_path: dict[str, list[dict]], name: str, data: bytes, flagged: bool) -> None:
    """A file Python reads is never a syntax error (a parser crash or stall is "not checked"); a flagged
    script Python reads keeps its GL101 unless the run says it did not check it, one it refuses is GL001;
    anything else Python refuses is GL001 or, holding no training code, may be left unreported."""
    found = by_path.get(name, [])
    if python_reads(data):
        assert not any(f["message"].startswith(("syntax error", "cannot")) for f in found), (name, found)
        if flagged:
            assert codes_of(found) in (["GL101"], ["not checked"]), (name, found)
        else:
            assert all(f["code"] in ("GL001", "not checked") for f in found), (name, found)
    else:
        if flagged:
            assert codes_of(found) == ["GL001"], (name, found)
        else:
            assert codes_of(found) in ([], ["GL001"]), (name, found)


def lint_folder(folder: Path, files: dict[str, bytes], flagged: bool, args: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    for name, data in files.items():
        (folder / name).write_bytes(data)
    by_path = survived(gradlint(folder, "--no-cache", *args))
    for name, data in files.items():
        judge_python(by_path, name, data, flagged)
    return by_path


# --- deep nesting, long chains, huge strings, self-reference ----------------------------------------

# An expression nested `n` levels deep, for each shape of nesting.
NESTINGS = {
    "parens": lambda n: "(" * n + "1" + ")" * n,
    "lists": lambda n: "[" * n + "]" * n,
    "sets": lambda n: "{" * n + "1" + "}" * n,
    "calls": lambda n: "f(" * n + ")" * n,
    "subscripts": lambda n: "a" + "[0" * n + "]" * n,
    "attributes": lambda n: "a" + ".b" * n,
    "call_chain": lambda n: "a" + ".b()" * n,
    "nots": lambda n: "not " * n + "a",
    "negations": lambda n: "-" * n + "a",
    "lambdas": lambda n: "lambda: " * n + "0",
    "ternaries": lambda n: "a if b else " * n + "c",
    "brackets_in_a_string": lambda n: repr("(" * n),  # brackets only inside a literal
}
# Statement-level nesting: blocks inside blocks.
BLOCKS = {
    "ifs": lambda n: "".join("    " * i + "if a:\n" for i in range(n)) + "    " * n + "pass\n",
    "defs": lambda n: "".join("    " * i + f"def f{i}():\n" for i in range(n)) + "    " * n + "pass\n",
}


def training_file(body: str) -> bytes:
    """`body` in a file gradlint parses: it imports torch and calls backward() (others are skipped unread)."""
    return f"import torch\n{body}loss.backward()\n".encode()


def nested_sources(depths: tuple[int, ...]) -> dict[str, bytes]:
    files = {}
    for depth in depths:
        for shape, make in NESTINGS.items():
            files[f"nest_{shape}_{depth}.py"] = training_file(f"v = {make(depth)}\n")
        for shape, make in BLOCKS.items():
            files[f"block_{shape}_{depth}.py"] = training_file(make(depth))
    return files


BINARY = ["+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^", "@", "<", "==", "is not", "in", "and", "or"]


def chain_sources(lengths: tuple[int, ...]) -> dict[str, bytes]:
    files = {}
    for n in lengths:
        for i, op in enumerate(BINARY):
            files[f"chain_{i:02}_{n}.py"] = training_file(f"v = {f' {op} '.join(['a'] * n)}\n")
    return files


def test_deep_nesting_and_long_chains(tmp_path):
    """Reproducers 2 and 22: nesting and chains at depths Python reads, and past its own limits."""
    folder = setup_folder(tmp_path)
    files = nested_sources((90, 300)) | chain_sources((300,))
    lint_folder(folder, files, flagged=False)


@pytest.mark.slow
def test_nesting_and_chains_past_the_parsers_stack(tmp_path):
    """Reproducer 22: depths that take libcst's native parser seconds or overflow its stack, under --jobs 2;
    a short parse-timeout keeps the stalls short."""
    folder = setup_folder(tmp_path)
    (folder / "gradlint.toml").write_text("parse-timeout = 3\n")
    files = nested_sources((1_000, 8_000)) | chain_sources((1_000, 10_000))
    lint_folder(folder, files, flagged=False, args=("--jobs", "2"))


def flagged_with(before_loop: str = "", lr: str = "0.1") -> str:
    """FLAGGED with statements before the training loop and the learning rate given as an expression."""
    head, loop = FLAGGED.split("for x, y", 1)
    return head.replace("lr=0.1", f"lr={lr}") + before_loop + "for x, y" + loop


def test_values_built_from_themselves_and_from_long_chains(tmp_path):
    """Reproducers 1 and 2 where the values matter: the learning rate and the layer size are read from
    names re-assigned from themselves, from each other, and from long arithmetic; every file still trains
    an LSTM without clipping, so each keeps its GL101, quickly."""
    folder = setup_folder(tmp_path)
    files = {}
    for n in (15, 300):
        files[f"self_{n}.py"] = flagged_with("lr = 1e-3\n" + "lr = lr * 2\n" * n, "lr")
        files[f"augmented_{n}.py"] = flagged_with("lr = 1e-3\n" + "lr *= 1.01\n" * n, "lr")
        files[f"pair_{n}.py"] = flagged_with("a = b = 1e-3\n" + "a, b = b * 2, a / 2\n" * n, "a")
        files[f"attr_{n}.py"] = flagged_with("cfg.lr = 1e-3\n" + "cfg.lr = cfg.lr * 2\n" * n, "cfg.lr")
        files[f"key_{n}.py"] = flagged_with("cfg = {'lr': 1e-3}\n" + "cfg['lr'] = cfg['lr'] * 2\n" * n, "cfg['lr']")
        files[f"loop_{n}.py"] = flagged_with(f"lr = 1e-3\nfor _ in range({n}):\n    lr = lr * 2\n", "lr")
        files[f"sum_{n}.py"] = flagged_with("", " + ".join(["1e-5"] * (n * 3)))
        files[f"layer_{n}.py"] = flagged_with("", "0.1").replace("nn.LSTM(10, 20)", "nn.LSTM(10, h)").replace(
            "model = ", "h = 20\n" + "h = h + 1\n" * n + "model = ", 1
        )
    files["unbound.py"] = flagged_with("lr = lr\n", "lr")
    files["cycle.py"] = flagged_with("a = b\nb = c\nc = a\n", "a")
    files["mutual.py"] = flagged_with("def f():\n    return g()\ndef g():\n    return f()\nlr = f()\n", "lr")
    files["recursive.py"] = flagged_with("def f(x):\n    return f(x * 2)\nlr = f(1e-3)\n", "lr")
    start = time.monotonic()
    lint_folder(folder, {name: text.encode() for name, text in files.items()}, flagged=True)
    assert time.monotonic() - start < 30


@pytest.mark.slow
def test_huge_literals(tmp_path):
    """Reproducer 21: implicitly concatenated strings, one huge string, one huge line."""
    folder = setup_folder(tmp_path)
    files = {
        "concat_10k.py": "v = (\n" + "".join(f"    'a{i}'\n" for i in range(10_000)) + ")\n",
        "concat_line.py": "v = " + " ".join(f"'a{i}'" for i in range(20_000)) + "\n",
        "fstrings.py": "v = (\n" + "".join(f"    f'{{a}}{i}'\n" for i in range(5_000)) + ")\n",
        "big_string.py": "v = '" + "x" * 5_000_000 + "'\n",
        "big_number.py": "v = " + "9" * 100_000 + "\n",
        "long_line.py": "v = [" + ", ".join("1" for _ in range(200_000)) + "]\n",
    }
    flagged = flagged_with("doc = (\n" + "".join(f"    'a{i}'\n" for i in range(5_000)) + ")\n").encode()
    (folder / "flagged_concat.py").write_bytes(flagged)
    by_path = lint_folder(folder, {k: training_file(v) for k, v in files.items()}, flagged=False)
    judge_python(by_path, "flagged_concat.py", flagged, flagged=True)


@pytest.mark.slow
def test_a_hundred_thousand_concatenated_strings(tmp_path):
    """Reproducer 21 at full size: libcst 1.9 cannot read it; a warning, not exit 2."""
    folder = setup_folder(tmp_path)
    text = "v = (\n" + "".join(f"    'a{i}'\n" for i in range(100_000)) + ")\n"
    lint_folder(folder, {"concat_100k.py": training_file(text)}, flagged=False)


# --- bytes: NUL, undecodable bytes, BOMs, coding cookies ---------------------------------------------

BOM = codecs.BOM_UTF8
COOKIES = ["utf-8", "latin-1", "cp1252", "euc-jp", "utf-8-sig", "ascii", "unicode_escape", "utf-16", "rot13", "klingon"]


def encoded_variants() -> dict[str, bytes]:
    """The flagged script as bytes Python may or may not read: every cookie on line 1, 2 and 3 (Python
    reads only the first two), with and without a BOM, with a non-ASCII comment, and with bad bytes."""
    lines = FLAGGED.splitlines(keepends=True)
    files = {}
    for cookie in COOKIES:
        for line in (0, 1, 2):
            text = "".join(lines[:line]) + f"# -*- coding: {cookie} -*-\n" + "".join(lines[line:])
            for bom in (b"", BOM):
                for comment in ("", "# naïve café\n"):
                    # Line by line, so that the file keeps its lines in every codec (unicode_escape
                    # would write a newline as a backslash and an n).
                    try:
                        encode = codecs.getincrementalencoder(cookie)().encode
                        body = b"".join(encode(part) + b"\n" for part in (text + comment).splitlines())
                    except (LookupError, UnicodeEncodeError, TypeError):
                        body = (text + comment).encode("utf-8")
                    files[f"cookie_{cookie.replace('-', '_')}_{line}_{len(bom)}_{len(comment)}.py"] = bom + body
    data = FLAGGED.encode()
    insert = data.index(b"opt = ")
    for name, bad in {
        "nul": b"\x00", "ff_byte": b"\xff", "surrogate": b"\xed\xa0\x80", "overlong": b"\xc0\xaf",
        "truncated": b"\xe2\x82", "bom_inside": BOM,
    }.items():
        files[f"bytes_{name}_code.py"] = data[:insert] + bad + data[insert:]
        files[f"bytes_{name}_comment.py"] = data[:insert] + b"# " + bad + b"\n" + data[insert:]
        files[f"bytes_{name}_end.py"] = data + bad
    files["double_bom.py"] = BOM + BOM + data
    files["utf16.py"] = FLAGGED.encode("utf-16")
    files["utf32.py"] = FLAGGED.encode("utf-32")
    return files


def test_nul_bytes_bad_bytes_boms_and_coding_cookies(tmp_path):
    """Reproducers 12 and 23's class: a file Python reads keeps its GL101, one it refuses is GL001."""
    folder = setup_folder(tmp_path)
    files = encoded_variants()
    by_path = lint_folder(folder, files, flagged=True)
    read = [name for name, data in files.items() if python_reads(data)]
    # Both verdicts are exercised: the generator is no use if Python reads all or none of them.
    assert 20 < len(read) < len(files) - 20
    assert all(codes_of(by_path[name]) == ["GL101"] for name in read)


# --- line endings and characters Python does not end lines at ----------------------------------------

ODD_CHARACTERS = {"ff": "\x0c", "vt": "\x0b", "fs": "\x1c", "nel": "\x85", "ls": "\u2028", "ps": "\u2029"}


def line_variants() -> dict[str, str]:
    """The flagged script with other line endings, and with characters that str.splitlines (but not
    Python) ends a line at, in comments, in strings, on lines of their own and in indentation."""
    lines = FLAGGED.splitlines()
    files = {
        "crlf.py": "\r\n".join(lines) + "\r\n",
        "cr.py": "\r".join(lines) + "\r",
        "mixed.py": "".join(line + ("\r\n", "\r", "\n")[i % 3] for i, line in enumerate(lines)),
        "no_final_newline.py": FLAGGED.rstrip("\n"),
        "tabs.py": FLAGGED.replace("    ", "\t"),
        "continuations.py": FLAGGED.replace("loss.backward()", "loss.\\\n    backward()"),
    }
    for name, char in ODD_CHARACTERS.items():
        files[f"{name}_comment.py"] = FLAGGED.replace("opt.zero_grad()", f"opt.zero_grad()  # a{char}b")
        files[f"{name}_string.py"] = FLAGGED.replace("opt.zero_grad()", f"opt.zero_grad(); s = 'a{char}b'")
        files[f"{name}_own_line.py"] = FLAGGED.replace("for x, y", f"{char}\nfor x, y")
        files[f"{name}_indent.py"] = FLAGGED.replace("    opt.zero_grad()", f"{char}    opt.zero_grad()")
        files[f"{name}_code.py"] = FLAGGED.replace("opt.zero_grad()", f"opt.zero_grad(){char}")
    return files


def test_line_endings_form_feeds_and_line_separators(tmp_path):
    """Reproducers 6, 7 and 21: each variant Python reads keeps its GL101 on the line Python counts, and a
    noqa after a page break suppresses on its own line only."""
    folder = setup_folder(tmp_path)
    files = {name: text.encode() for name, text in line_variants().items()}
    page = FLAGGED.replace("for x, y", "\x0c\nfor x, y")
    files["noqa_here.py"] = page.replace("opt.step()", "opt.step()  # noqa: GL101").encode()
    files["noqa_above.py"] = page.replace("loss.backward()", "loss.backward()  # noqa: GL101").encode()
    by_path = lint_folder(folder, {k: v for k, v in files.items() if not k.startswith("noqa")}, flagged=True)
    for name, data in files.items():
        if name.startswith("noqa"):
            continue
        if python_reads(data):
            # The step's line as Python counts lines: only \r\n, \r and \n end one.
            before = data[: data.rindex(b"opt.step()")]
            assert [f["line"] for f in by_path[name]] == [len(re.findall(rb"\r\n|\r|\n", before)) + 1], name
    for name in ("noqa_here.py", "noqa_above.py"):
        (folder / name).write_bytes(files[name])
    by_path = survived(gradlint(folder, "--no-cache"))
    assert "noqa_here.py" not in by_path
    assert [(f["code"], f["line"]) for f in by_path["noqa_above.py"]] == [("GL101", STEP_LINE + 1)]


# --- notebooks -------------------------------------------------------------------------------------

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# Training\n"]},
        {
            "cell_type": "code", "id": "c", "execution_count": 1, "metadata": {"tags": []},
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["ok\n"]}],
            "source": FLAGGED.splitlines(keepends=True),
        },
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}
# Fields that hold no code: whatever they hold, the notebook's code is read as it is.
NOT_CODE = ("metadata", "outputs", "execution_count", "id", "nbformat", "nbformat_minor")
WRONG_VALUES = [None, 7, 1.5, True, "text", [], [1, None], {}, {"cells": []}]


def mutations(root: object, values: list = WRONG_VALUES, node: object = None, path: tuple = ()):
    """(path, copy of root) for every node of a JSON document replaced by each of `values` of another type."""
    node = root if not path else node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        for wrong in values:
            if type(wrong) is not type(child):
                yield path + (key,), _replaced(root, path + (key,), wrong)
        yield from mutations(root, values, child, path + (key,))


def _replaced(node: object, path: tuple, value: object) -> object:
    if not path:
        return value
    copy = dict(node) if isinstance(node, dict) else list(node)
    copy[path[0]] = _replaced(node[path[0]], path[1:], value)
    return copy


def notebook_variants() -> dict[str, tuple[bytes, bool]]:
    """name -> (bytes, whether the code is untouched and must keep its GL101)."""
    files = {}
    for i, (path, nb) in enumerate(mutations(NOTEBOOK)):
        files[f"mut_{i:03}.ipynb"] = (json.dumps(nb).encode(), any(key in NOT_CODE for key in path))
    text = json.dumps(NOTEBOOK, indent=1)
    for cut in range(1, len(text), max(1, len(text) // 25)):
        files[f"cut_{cut:05}.ipynb"] = (text[:cut].encode(), False)
    whole = text.encode()
    files.update({
        "bom.ipynb": (BOM + whole, True),
        "utf16.ipynb": (text.encode("utf-16"), False),
        "latin1.ipynb": (text.replace("Training", "Entraînement").encode("latin-1"), False),
        "nul.ipynb": (whole.replace(b"opt.step()", b"opt.step()\x00"), False),
        "escaped_nul.ipynb": (whole.replace(b"opt.step()", b"opt.step()\\u0000"), False),
        "surrogate.ipynb": (whole.replace(b"opt.step()", b"opt.step()  # \\udc00"), False),
        "empty.ipynb": (b"", False),
        "blank.ipynb": (b" \n\t", False),
        "nan.ipynb": (whole.replace(b'"nbformat": 4', b'"nbformat": NaN'), True),
        "huge_int.ipynb": (whole.replace(b'"nbformat": 4', b'"nbformat": ' + b"9" * 5_000), False),
        "deep.ipynb": (b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b', "cells": []}', False),
        "ls_in_string.ipynb": (whole.replace(b"opt.zero_grad()", b"opt.zero_grad(); s = '\\u2028'"), True),
        "cr_lines.ipynb": (json.dumps({**NOTEBOOK, "cells": [{**NOTEBOOK["cells"][1], "source": FLAGGED.replace("\n", "\r")}]}).encode(), True),
    })
    return files


def test_malformed_notebooks(tmp_path):
    """Reproducers 3 to 6 and 26, generated: every node of a notebook swapped for values of the wrong
    shape, the notebook cut short, and odd bytes. A notebook is read or is one GL001 "cannot read
    notebook" (or a syntax error in a swapped-in source); never an internal error. One whose code was not touched keeps its GL101."""
    folder = setup_folder(tmp_path)
    files = notebook_variants()
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    run = gradlint(folder, "--no-cache")
    by_path = survived(run)
    assert "internal error" not in run.stderr
    unreadable = 0
    for name, (data, code_kept) in files.items():
        found = by_path.get(name, [])
        if any(f["code"] == "GL001" for f in found):
            # A string swapped into the source is code, and may be a syntax error.
            assert len(found) == 1 and found[0]["message"].startswith(("cannot read notebook: ", "syntax error")), (name, found)
            unreadable += 1
        try:
            json.loads(data.decode("utf-8-sig"))
        except (ValueError, RecursionError):
            assert codes_of(found) == ["GL001"], name
        if code_kept:
            assert codes_of(found) == ["GL101"], (name, found)
    assert 50 < unreadable < len(files) - 50


# --- files that are not regular files --------------------------------------------------------------


def non_regular_files(folder: Path) -> list[str]:
    os.mkfifo(folder / "fifo.py")
    os.mkfifo(folder / "fifo.ipynb")
    (folder / "zero.py").symlink_to("/dev/zero")
    (folder / "null.py").symlink_to("/dev/null")
    (folder / "dangling.py").symlink_to(folder / "nowhere.py")
    (folder / "loop_a.py").symlink_to(folder / "loop_b.py")
    (folder / "loop_b.py").symlink_to(folder / "loop_a.py")
    (folder / "folder.py").mkdir()
    (folder / "up").symlink_to(folder)  # a folder link back up: walking it must not loop
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "socket.py"))
    server.close()
    return ["fifo.py", "fifo.ipynb", "zero.py", "null.py", "dangling.py", "loop_a.py", "socket.py"]


# A training script whose model comes from a neighbouring file; that file is a FIFO or /dev/zero here.
USES_NEIGHBOUR = FLAGGED.replace("from torch import nn\n", "from torch import nn\nfrom model import Net\n")


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
def test_fifos_devices_sockets_and_broken_links(tmp_path, cache):
    """Reproducer 9: in a folder they are skipped; named on the command line each is one GL001; a
    training script whose neighbour is a FIFO or a device is linted without it. With the cache too: it
    hashes linted files and neighbours, and must not read a FIFO or /dev/zero either."""
    folder = setup_folder(tmp_path)
    names = non_regular_files(folder)
    (folder / "sub").mkdir()
    (folder / "sub" / "train.py").write_text(USES_NEIGHBOUR)
    os.mkfifo(folder / "sub" / "model.py")
    (folder / "dev").mkdir()
    (folder / "dev" / "train.py").write_text(USES_NEIGHBOUR)
    (folder / "dev" / "model.py").symlink_to("/dev/zero")
    args = () if cache else ("--no-cache",)
    for _ in range(2 if cache else 1):  # with the cache: fill it, then read it
        by_path = survived(gradlint(folder, *args, ".", timeout=60))
        assert sorted(by_path) == sorted([*KNOWN, "dev/train.py", "sub/train.py"]), by_path
    # A missing path named on the command line is a usage error; a link to nowhere is one.
    named = [name for name in names if (folder / name).exists()]
    found = survived(gradlint(folder, *args, *KNOWN, *named, timeout=60))
    assert all(codes_of(found[name]) == ["GL001"] for name in named), found
    assert len(named) == len(names) - 2


# --- configuration ---------------------------------------------------------------------------------

# Values of each type; each key takes one of them and must refuse the others.
VALUES = {"str": '"x"', "int": "0", "negative": "-1", "float": "nan", "inf": "inf", "bool": "true",
          "list": '["GL1", 5]', "table": "{a = 1}", "date": "1979-05-27"}
KEYS = ["select", "ignore", "extend-select", "exclude", "extend-exclude", "per-file-ignores", "fail-on",
        "max-plain-depth", "max-batch-size", "max-sgd-lr", "max-adaptive-lr", "clip-threshold-max",
        "regularization-scope", "parse-timeout"]


def broken_configs() -> dict[str, tuple[str, bytes]]:
    """id -> (file name, contents): every key with values of every wrong type, and broken files."""
    configs = {}
    for key in KEYS:
        for kind, value in VALUES.items():
            configs[f"{key}={kind}"] = ("pyproject.toml", f"[tool.gradlint]\n{key} = {value}\n".encode())
    for kind, value in VALUES.items():
        configs[f"tool={kind}"] = ("pyproject.toml", f"tool = {value}\n".encode())
        configs[f"tool.gradlint={kind}"] = ("pyproject.toml", f"[tool]\ngradlint = {value}\n".encode())
    configs.update({
        "unknown-key": ("pyproject.toml", b"[tool.gradlint]\nmax-depth = 3\n"),
        "invalid-toml": ("pyproject.toml", b"[tool.gradlint\nselect = [\n"),
        "latin-1": ("pyproject.toml", '[tool.gradlint]\n# é\nselect = ["GL1"]\n'.encode("latin-1")),
        "nul": ("pyproject.toml", b"[tool.gradlint]\nselect = [\"GL1\x00\"]\n"),
        "deep-array": ("pyproject.toml", b"x = " + b"[" * 5_000 + b"]" * 5_000 + b"\n[tool.gradlint]\n"),
        "deep-table": ("pyproject.toml", b"x = " + b"{a = " * 3_000 + b"1" + b"}" * 3_000 + b"\n[tool.gradlint]\n"),
        "gradlint.toml-list": ("gradlint.toml", b'select = "GL1"\n'),
        "gradlint.toml-bad": ("gradlint.toml", b"select = [\n"),
        "per-file-code": ("pyproject.toml", b'[tool.gradlint]\nper-file-ignores = {"a.py" = ["XX9"]}\n'),
        "per-file-str": ("pyproject.toml", b'[tool.gradlint]\nper-file-ignores = {"a.py" = "GL101"}\n'),
    })
    return configs


def test_broken_configs_are_one_line_errors(tmp_path, monkeypatch):
    """Reproducers 18 and 25, generated: a value of the wrong type for every key, a 'tool' that is not a
    table, undecodable and deeply nested files. Each is exit 2 with one line naming the file and no
    report, or (a value the key takes) a normal run. In-process: a traceback is an exception here."""
    configs = broken_configs()
    errors = 0
    for i, (case, (name, data)) in enumerate(configs.items()):
        folder = setup_folder(tmp_path / f"case{i}")
        (folder / name).write_bytes(data)
        monkeypatch.chdir(folder)
        result = CliRunner().invoke(app, ["check", "--no-cache", "--format", "json"], catch_exceptions=False)
        if result.exit_code == 2:
            [line] = result.stderr.splitlines()
            assert line.startswith("gradlint: error: ") and name in line, (case, line)
            assert result.stdout == "", case
            errors += 1
        else:
            assert result.exit_code == 1, (case, result.stderr)
            assert codes_of(json.loads(result.stdout)) == ["GL101", "GL101"], case
    # Both outcomes are exercised, and the keys refuse most types.
    assert len(configs) * 0.8 < errors < len(configs)


@pytest.mark.parametrize("case", ["tool=int", "deep-array"])
def test_broken_configs_in_a_real_run(tmp_path, case):
    name, data = broken_configs()[case]
    folder = setup_folder(tmp_path)
    (folder / name).write_bytes(data)
    run = gradlint(folder, "--no-cache")
    assert "Traceback" not in run.stderr
    assert run.returncode == 2 and run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith("gradlint: error: ") and name in line


# --- caches ----------------------------------------------------------------------------------------


def test_caches_of_the_wrong_shape_are_ignored(tmp_path):
    """Reproducer 10, generated: every node of a real cache swapped for values of the wrong shape, and
    dependencies that are a FIFO or /dev/zero. The run reads what it can and checks the rest again:
    the findings are those of a run without the cache. In-process: a traceback is an exception here."""
    folder = setup_folder(tmp_path / "project")
    config = Settings(root=folder)
    fresh = [f.to_dict() for f in lint_paths([folder], config, jobs=1).findings]
    assert [f["code"] for f in fresh] == ["GL101", "GL101"]
    # Old enough that their times and sizes are recorded with their hashes.
    for file in folder.iterdir():
        os.utime(file, (time.time() - 3600,) * 2)
    lint_paths([folder], config, jobs=1, use_cache=True)
    [cache] = (folder / CACHE_DIR).glob("findings-*.json")
    real = json.loads(cache.read_text())
    assert len(real["stats"]) == len(real["files"]) == 2
    os.mkfifo(tmp_path / "fifo.py")
    fifo_deps = [[str(tmp_path / "fifo.py"), "h"], ["/dev/zero", "h"]]
    foreign = [
        None, [], 5, "text", {"files": real["files"]}, {"files": [], "stats": real["stats"]},
        {**real, "files": {key: {**entry, "deps": fifo_deps} for key, entry in real["files"].items()}},
    ]
    for data in foreign:
        cache.write_text(json.dumps(data))
        assert [f.to_dict() for f in lint_paths([folder], config, jobs=1, use_cache=True).findings] == fresh, data
    # Every node of one file's entry and of the recorded times, each swapped for a null, a number and an array.
    first = next(iter(real["files"]))
    mutated = [
        data for path, data in mutations(real, [None, 7, []]) if len(path) < 2 or path[:2] == ("files", first)
        or path[0] == "stats"
    ]
    for data in mutated:
        cache.write_text(json.dumps(data))
        result = lint_paths([folder], config, jobs=1, use_cache=True)
        # Some swaps are of the right shape (no fix, no findings, a cell number) and are taken as they are;
        # whatever is reported is a finding of the right shape.
        assert not result.internal_errors
        for finding in result.findings:
            assert json.loads(json.dumps(finding.to_dict())) == finding.to_dict(), data
            assert all(type(getattr(finding, name)) is int for name in ("line", "column", "end_line", "end_column"))
            assert all(type(getattr(finding, name)) is str for name in ("code", "name", "path", "message"))
    assert len(mutated) > 50


def test_a_cache_of_the_wrong_shape_in_a_real_run(tmp_path):
    folder = setup_folder(tmp_path)
    survived(gradlint(folder))
    [cache] = (folder / CACHE_DIR).glob("findings-*.json")
    data = json.loads(cache.read_text())
    for entry in data["files"].values():
        entry["findings"][0]["line"] = "eleven"
        entry["deps"] = 5
    cache.write_text(json.dumps(data))
    survived(gradlint(folder))
