"""Benchmark: gradlint check against bare libcst parsing, measured in the same run (run by hand).

    python tests/bench/bench_lint.py [CORPUS_DIR] [--repeat 3]

CORPUS_DIR defaults to the installed torch package (thousands of real .py files). Prints medians and ratios:
cold lint with 1 job and with all cores against `libcst.parse_module` over the same files, warm (cached)
against cold, and one training script as pre-commit runs it against `python -c "import libcst"`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def default_corpus() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        sys.exit("no corpus given and torch is not installed")
    return Path(spec.origin).parent


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def run(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def parse_all(files: list[Path]) -> None:
    import libcst

    for file in files:
        try:
            libcst.parse_module(file.read_bytes())
        except Exception:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from gradlint.source import discover, may_be_training_code

    # An installed gradlint has bytecode (pip compiles it); an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would recompile every module on every run and measure that instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "gradlint")], check=True)
    corpus = (args.corpus or default_corpus()).resolve()
    work = Path(tempfile.mkdtemp(prefix="gradlint-bench-"))
    tree = work / "corpus"
    shutil.copytree(corpus, tree, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyi", "*.h", "*.cpp"))
    files = [f for f in discover([tree]) if f.suffix == ".py"]
    parsed = [f for f in files if may_be_training_code(f.read_bytes())]
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"corpus: {corpus} ({len(files)} .py files, {size:.1f} MB; {len(parsed)} import a framework)")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, repeat {args.repeat} (medians)")
    gradlint = [sys.executable, "-m", "gradlint", "check", "--exit-zero", "--quiet"]
    cores = os.cpu_count() or 1

    parse_every = timed(lambda: parse_all(files), args.repeat)
    parse_framework = timed(lambda: parse_all(parsed), args.repeat)
    cold_1 = timed(lambda: run([*gradlint, "--no-cache", "--jobs", "1", str(tree)], work), args.repeat)
    cold_n = timed(lambda: run([*gradlint, "--no-cache", "--jobs", str(cores), str(tree)], work), args.repeat)

    def cold_then_warm() -> None:
        shutil.rmtree(work / ".gradlint_cache", ignore_errors=True)
        run([*gradlint, str(tree)], work)

    warm_runs = []
    for _ in range(args.repeat):
        cold_then_warm()
        start = time.perf_counter()
        run([*gradlint, str(tree)], work)
        warm_runs.append(time.perf_counter() - start)
    warm = statistics.median(warm_runs)

    script = REPO / "fixtures" / "static" / "GL101" / "flagged" / "lstm_language_model.py"
    import_libcst = timed(lambda: run([sys.executable, "-c", "import libcst"], work), args.repeat * 3)
    one_file = timed(lambda: run([*gradlint, "--no-cache", str(script)], work), args.repeat * 3)

    rows = [
        ("libcst.parse_module, every file", parse_every, None),
        ("libcst.parse_module, files gradlint parses", parse_framework, None),
        ("gradlint cold, 1 job", cold_1, cold_1 / parse_every),
        (f"gradlint cold, {cores} jobs", cold_n, cold_n / parse_every),
        ("gradlint warm cache", warm, warm / cold_1),
        ('python -c "import libcst"', import_libcst, None),
        ("gradlint check one script", one_file, one_file / import_libcst),
    ]
    print(f"{'measure':45} {'median s':>9} {'ratio':>7}  against")
    against = [None, None, "parse, every file", "parse, every file", "cold, 1 job", None, "import libcst"]
    for (name, seconds, ratio), base in zip(rows, against):
        shown = f"{ratio:7.2f}" if ratio is not None else " " * 7
        print(f"{name:45} {seconds:9.3f} {shown}  {base or ''}")
    print(f"cold 1 job against parsing only the files gradlint parses: {cold_1 / parse_framework:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
