"""Benchmark: whole-project analysis on real multi-file projects, against bare parsing of the files it reads (by hand).

    python tests/bench/bench_projects.py [--labels tests/corpus/labels/projects.json] [--repeat 3]

The projects are the labelled entry points of the real-code corpus (tests/corpus, read from the fetched mirror
as score.py reads it). For each repository: `gradlint check --jobs 1` on its entry points, cold (`--no-cache`) and
warm (the cache filled by a run before), medians of --repeat runs, against `libcst.parse_module` over
every file the analysis read (the entry points and the project files their paths reached), and the same
analysis in this process (no process start: parse, facts and rules). Issue 15 asks that project analysis cost
no more than parsing each reached file once.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "corpus"))

from score import has_commit, load_labels, materialise, mirror_of  # noqa: E402


def reached(tree: Path, entries: list[Path]) -> list[Path]:
    """The files an analysis of `entries` reads: the entry points and the project files it parsed for them."""
    from gradlint.config import Settings
    from gradlint.facts.project import Project
    from gradlint.lint import check_unit
    from gradlint.source import SourceUnit, decode_python

    project = Project()
    for entry in entries:
        check_unit(SourceUnit(str(entry), decode_python(entry.read_bytes())), Settings(root=tree), project)
    return sorted({Path(p) for p in project.parsed()} | set(entries))


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def parse_time(files: list[Path]) -> float:
    import libcst

    from gradlint.source import decode_python

    texts = [decode_python(f.read_bytes()) for f in files]
    start = time.perf_counter()
    for text in texts:
        try:
            libcst.parse_module(text)
        except Exception:
            pass
    return time.perf_counter() - start


def lint_time(tree: Path, entries: list[Path], cached: bool = False) -> float:
    cmd = [sys.executable, "-m", "gradlint", "check", "--exit-zero", "--quiet", "--jobs", "1"]
    cmd += [] if cached else ["--no-cache"]
    start = time.perf_counter()
    subprocess.run(cmd + [str(e) for e in entries], cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, default=REPO / "tests" / "corpus" / "labels" / "projects.json")
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gradlint-corpus")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    by_snapshot: dict[tuple[str, str], list[str]] = defaultdict(list)
    for entry in load_labels([args.labels]):
        by_snapshot[(entry.repo, entry.commit)].append(entry.path)
    totals = {"cold": 0.0, "warm": 0.0, "analysis": 0.0, "parse": 0.0, "files": 0, "projects": 0}
    for (repo, commit), paths in sorted(by_snapshot.items()):
        if not mirror_of(repo, args.mirrors).is_dir() or not has_commit(repo, commit, args.mirrors):
            print(f"{repo}: not in the mirror, skipped")
            continue
        tree = materialise(repo, commit, args.mirrors, args.cache)
        entries = [tree / p for p in paths if (tree / p).is_file()]
        files = reached(tree, entries)
        analysis = statistics.median(timed(reached, tree, entries) for _ in range(args.repeat))
        cold = statistics.median(lint_time(tree, entries) for _ in range(args.repeat))
        lint_time(tree, entries, cached=True)  # fills the cache
        warm = statistics.median(lint_time(tree, entries, cached=True) for _ in range(args.repeat))
        parse = statistics.median(parse_time(files) for _ in range(args.repeat))
        print(
            f"{repo}: {len(entries)} entry point(s), {len(files)} files read; cold {cold:.2f}s, warm {warm:.2f}s, "
            f"in-process analysis {analysis:.2f}s, parse {parse:.2f}s"
        )
        totals["cold"] += cold
        totals["warm"] += warm
        totals["parse"] += parse
        totals["analysis"] += analysis
        totals["files"] += len(files)
        totals["projects"] += 1
    # A process start (Python, libcst, gradlint's imports) is in every lint run and in no parse: say it apart.
    start = statistics.median(
        lint_time(REPO, [REPO / "gradlint" / "version.py"]) for _ in range(args.repeat)
    )
    n = totals["projects"]
    print(
        f"\n{n} projects, {totals['files']} files read: cold {totals['cold']:.1f}s "
        f"({totals['cold'] - n * start:.1f}s without {n} process starts of {start:.2f}s), warm {totals['warm']:.1f}s, "
        f"bare parse of the files read {totals['parse']:.1f}s\n"
        f"in-process analysis (parse, facts, rules) of the files read {totals['analysis']:.1f}s: "
        f"{totals['analysis'] / totals['parse']:.2f}x the bare parse"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
