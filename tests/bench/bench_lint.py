"""Benchmark: gradlint check against bare libcst parsing of the same files, measured in the same run (by hand).

    python tests/bench/bench_lint.py [CORPUS_DIR | --no-package] [--training DIR | --mirror DIR [--per-repo 10]] [--repeat 3]

Two corpora, each timed against `libcst.parse_module` over every one of its files:
- CORPUS_DIR, by default the installed torch package: thousands of real .py files, few of which train;
- a training-code corpus: the fixtures, plus a folder of training scripts and notebooks (--training DIR), or
  one built in a temporary folder from git repositories fetched under --mirror DIR (each `NAME/repo` a git
  directory or a clone; the `.py`/`.ipynb` files of their newest commit that spell a training call, at most
  --per-repo of each). Public code is read from there, never committed.
Prints medians: cold lint with 1 job and with all cores against the bare parse (each ratio the median of
rounds that time the three back to back), warm (cached) against cold, and one training script as pre-commit
runs it against `python -c "import libcst"` (the median of pairs of runs, back to back).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Training calls, as the issue that asked for this corpus lists them: wider than gradlint's own gate on purpose.
TRAINING_CALL = re.compile(
    rb"backward\(|\.fit\(|\.step\(|apply_gradients|train_on_batch|minimize\(|Trainer\(|TrainingArguments"
)


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


def code_of(file: Path) -> str | bytes:
    if file.suffix == ".ipynb":
        from gradlint.notebook import notebook_code

        return notebook_code(file.read_bytes())[0]
    return file.read_bytes()


def parse_all(files: list[Path]) -> None:
    import libcst

    for file in files:
        try:
            libcst.parse_module(code_of(file))
        except Exception:
            pass


def _git_dir(repo: Path) -> Path | None:
    for candidate in (repo / "repo" / ".git", repo / "repo"):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    return None


def from_mirror(mirror: Path, into: Path, per_repo: int) -> list[str]:
    """Write the training files of each fetched repository's newest commit under `into`; returns the names."""
    names = []
    for repo in sorted(p for p in mirror.iterdir() if p.is_dir()):
        git = _git_dir(repo)
        if git is None:
            continue
        listing = subprocess.run(
            ["git", f"--git-dir={git}", "ls-tree", "-r", "-z", "HEAD"], capture_output=True, check=False
        ).stdout
        blobs = []
        for record in listing.split(b"\0"):
            meta, _, path = record.partition(b"\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == b"blob" and parts[0] != b"120000" and path.endswith((b".py", b".ipynb")):
                blobs.append((parts[2].decode(), path.decode("utf-8", "surrogateescape")))
        kept = 0
        for sha, path in blobs:
            data = subprocess.run(["git", f"--git-dir={git}", "cat-file", "blob", sha], capture_output=True).stdout
            if not TRAINING_CALL.search(data):
                continue
            target = into / repo.name / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            kept += 1
            if kept >= per_repo:
                break
        if kept:
            names.append(repo.name)
    return names


def measure(name: str, tree: Path, files: list[Path], work: Path, repeat: int) -> list[tuple[str, float, float | None, str]]:
    from gradlint.source import may_be_training_code

    parsed = [f for f in files if may_be_training_code(_bytes(f))]
    size = sum(f.stat().st_size for f in files) / 1e6
    print(f"\n{name}: {len(files)} files, {size:.1f} MB; {len(parsed)} pass gradlint's gate and are parsed")
    gradlint = [sys.executable, "-m", "gradlint", "check", "--exit-zero", "--quiet"]
    cores = os.cpu_count() or 1
    # Each round times the bare parse and the cold runs back to back, and a ratio is the median of the rounds'
    # ratios: this machine's speed drifts by a tenth from one minute to the next.
    rounds = [
        (
            timed(lambda: parse_all(files), 1),
            timed(lambda: run([*gradlint, "--no-cache", "--jobs", "1", str(tree)], work), 1),
            timed(lambda: run([*gradlint, "--no-cache", "--jobs", str(cores), str(tree)], work), 1),
        )
        for _ in range(repeat)
    ]
    parse_every, cold_1, cold_n = (statistics.median(r[i] for r in rounds) for i in range(3))
    ratio_1, ratio_n = (statistics.median(r[i] / r[0] for r in rounds) for i in (1, 2))
    warm_runs = []
    for _ in range(repeat):
        shutil.rmtree(work / ".gradlint_cache", ignore_errors=True)
        run([*gradlint, str(tree)], work)
        start = time.perf_counter()
        run([*gradlint, str(tree)], work)
        warm_runs.append(time.perf_counter() - start)
    warm = statistics.median(warm_runs)
    shutil.rmtree(work / ".gradlint_cache", ignore_errors=True)
    return [
        ("libcst.parse_module, every file", parse_every, None, ""),
        ("gradlint check --no-cache --jobs 1", cold_1, ratio_1, "bare parse"),
        (f"gradlint check --no-cache --jobs {cores}", cold_n, ratio_n, "bare parse"),
        ("gradlint check, warm cache", warm, warm / cold_1, "cold, 1 job"),
    ]


def _bytes(file: Path) -> bytes:
    code = code_of(file)
    return code.encode() if isinstance(code, str) else code


def show(rows) -> None:
    print(f"{'measure':45} {'median s':>9} {'ratio':>7}  against")
    for name, seconds, ratio, base in rows:
        shown = f"{ratio:7.2f}" if ratio is not None else " " * 7
        print(f"{name:45} {seconds:9.3f} {shown}  {base}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path)
    parser.add_argument("--training", type=Path, help="a folder of training scripts and notebooks")
    parser.add_argument("--mirror", type=Path, help="fetched repositories to build the training corpus from")
    parser.add_argument("--per-repo", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-package", action="store_true", help="skip the package corpus (it takes the longest)")
    args = parser.parse_args()
    from gradlint.source import discover

    # An installed gradlint has bytecode (pip compiles it); an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would recompile every module on every run and measure that instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "gradlint")], check=True)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, repeat {args.repeat} (medians)")
    work = Path(tempfile.mkdtemp(prefix="gradlint-bench-"))
    try:
        if not args.no_package:
            corpus = (args.corpus or default_corpus()).resolve()
            tree = work / "package"
            shutil.copytree(corpus, tree, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyi", "*.h", "*.cpp"))
            files = [f for f in discover([tree]) if f.suffix == ".py"]
            show(measure(f"corpus {corpus}", tree, files, work, args.repeat))

        training = work / "training"
        shutil.copytree(REPO / "fixtures", training / "fixtures", ignore=shutil.ignore_patterns("__pycache__"))
        if args.training is not None:
            shutil.copytree(args.training, training / "scripts", ignore=shutil.ignore_patterns("__pycache__"))
        elif args.mirror is not None:
            names = from_mirror(args.mirror, training / "scripts", args.per_repo)
            print(f"\ntraining scripts from {len(names)} repositories: {', '.join(n.replace('+', '/') for n in names)}")
        files = discover([training])
        show(measure("training-code corpus (fixtures + scripts)", training, files, work, args.repeat))

        script = REPO / "fixtures" / "static" / "GL101" / "flagged" / "lstm_language_model.py"
        gradlint = [sys.executable, "-m", "gradlint", "check", "--exit-zero", "--quiet"]
        import_command = [sys.executable, "-c", "import libcst"]
        lint_command = [*gradlint, "--no-cache", str(script)]
        pairs = []  # (import libcst, gradlint), back to back, which goes first alternating
        for i in range(args.repeat * 5):
            if i % 2 == 0:
                base = timed(lambda: run(import_command, work), 1)
                one = timed(lambda: run(lint_command, work), 1)
            else:
                one = timed(lambda: run(lint_command, work), 1)
                base = timed(lambda: run(import_command, work), 1)
            pairs.append((base, one))
        import_libcst, one_file = (statistics.median(p[k] for p in pairs) for k in (0, 1))
        one_ratio = statistics.median(one / base for base, one in pairs)
        print()
        show([
            ('python -c "import libcst"', import_libcst, None, ""),
            ("gradlint check one training script", one_file, one_ratio, "import libcst"),
        ])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
