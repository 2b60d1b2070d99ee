"""Apply `gradlint check --fix` to every labelled .py file of the real-code corpus and collect the diffs for
review (issue 11, "Autofix safety").

Each repository's snapshot is materialised as score.py does, then copied into a fresh temporary folder, so
nothing is fixed in the cache or the mirror. Each labelled .py file is fixed in its copied tree by the CLI
(`python -m gradlint check --fix --no-cache FILE`, run from the tree's root so its neighbours are read as in
the project), then fixed a second time, which must change nothing. Notebooks are not fixed. The fetched code
is only read, never run: "compiles" is Python's compile() of the fixed text.

Writes one unified diff per changed file under --out (owner+name/path.diff) and prints the counts: files,
files changed, fixes applied by code (fixable findings before the fix less those still offered after it),
second runs that were no-ops, compile failures, and every finding of a fixable code that offers no fix, by
the reason it gives.

Run by hand (CI has no mirror):  python tests/corpus/fix_review.py [--out /tmp/gradlint-fix-review]
"""

from __future__ import annotations

import argparse
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

from gradlint.config import Settings
from gradlint.engine import lint_paths
from gradlint.fix.apply import compiles

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from score import has_commit, load_labels, materialise, mirror_of  # noqa: E402

FIXABLE = ("GL101", "GL102", "GL103", "GL402")
NO_FIX = re.compile(r"\(no automatic fix: (.*)\)")


def fixable_findings(tree: Path, files: list[Path]) -> dict[Path, list]:
    """The findings of the fixable codes in each file, linted with `root` at its tree."""
    result = lint_paths([str(f) for f in files], Settings(root=tree))
    found: dict[Path, list] = defaultdict(list)
    for finding in result.findings:
        if finding.code in FIXABLE:
            found[Path(finding.path)].append(finding)
    return found


def run_fix(tree: Path, file: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "gradlint", "check", "--fix", "--no-cache", "--quiet", str(file.relative_to(tree))]
    return subprocess.run(command, cwd=tree, capture_output=True, text=True)


def reason(finding) -> str:
    """The reason a finding gives for offering no fix, with line numbers and names left out so alike
    reasons count together."""
    found = NO_FIX.search(f"{finding.message} {finding.help or ''}")
    if found is None:
        return "(no reason given)"
    why = re.sub(r"line \d+", "line N", re.sub(r"[\w./-]+\.py:\d+", "FILE:N", found.group(1)))
    return re.sub(r"`[^`]*`", "`...`", why)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, action="append", help="a labels file (repeatable; default: labels/*)")
    parser.add_argument("--repo", action="append", help="only these repositories (owner/name, repeatable)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "gradlint-fix-review")
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gradlint-corpus")
    args = parser.parse_args(argv)

    entries = [
        e for e in load_labels(args.labels or sorted((HERE / "labels").glob("*.json")))
        if e.path.endswith(".py") and (not args.repo or e.repo in args.repo)
    ]
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    by_snapshot: dict[tuple[str, str], list] = defaultdict(list)
    for entry in entries:
        by_snapshot[(entry.repo, entry.commit)].append(entry)

    counts = Counter()
    applied = Counter()
    offered_left: dict[str, list[str]] = {}
    no_fix: dict[tuple[str, str], list[str]] = defaultdict(list)
    problems: list[str] = []
    changed_files: list[str] = []
    not_python3: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gradlint-fix-review.") as work:
        for (repo, commit), group in sorted(by_snapshot.items()):
            if not mirror_of(repo, args.mirrors).is_dir() or not has_commit(repo, commit, args.mirrors):
                problems.append(f"{repo}: no mirror or no commit {commit[:12]}; {len(group)} file(s) skipped")
                continue
            tree = Path(work) / repo.replace("/", "+")
            shutil.copytree(materialise(repo, commit, args.mirrors, args.cache), tree)
            files = [tree / e.path for e in group if (tree / e.path).is_file()]
            problems += [f"{e.repo}/{e.path}: no such file" for e in group if not (tree / e.path).is_file()]
            before = fixable_findings(tree, files)
            originals = {f: f.read_bytes() for f in files}
            for file in files:
                name = f"{repo}/{file.relative_to(tree)}"
                counts["files"] += 1
                if not compiles(originals[file].decode("utf-8", "replace"), str(file)):
                    not_python3.append(name)  # GL001: --fix leaves it alone and exits 2
                    continue
                first = run_fix(tree, file)
                if first.returncode not in (0, 1):
                    problems.append(f"{name}: --fix exited {first.returncode}: {first.stderr.strip()[-300:]}")
                fixed = file.read_bytes()
                if fixed == originals[file]:
                    continue
                counts["changed"] += 1
                changed_files.append(name)
                old = originals[file].decode("utf-8", "replace")
                new = fixed.decode("utf-8", "replace")
                diff = difflib.unified_diff(
                    old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}"
                )
                target = args.out / f"{repo.replace('/', '+')}" / f"{file.relative_to(tree)}.diff"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("".join(diff), encoding="utf-8")
                if not compiles(new, str(file)):
                    counts["compile failures"] += 1
                    problems.append(f"{name}: the fixed file does not compile")
                run_fix(tree, file)
                if file.read_bytes() == fixed:
                    counts["second run no-op"] += 1
                else:
                    problems.append(f"{name}: a second --fix changed the file again")
            after = fixable_findings(tree, files)
            for file in files:
                was = Counter(f.code for f in before.get(file, []) if f.fix is not None)
                left = Counter(f.code for f in after.get(file, []) if f.fix is not None)
                applied.update(was - left)
                if left:
                    offered_left[f"{repo}/{file.relative_to(tree)}"] = sorted(left.elements())
                for finding in before.get(file, []):
                    if finding.fix is None:
                        no_fix[(finding.code, reason(finding))].append(f"{repo}/{file.relative_to(tree)}:{finding.line}")

    print(f"files: {counts['files']} labelled .py files fixed ({len(entries)} listed)")
    print(f"files Python 3 does not compile (GL001, not fixed): {len(not_python3)} {' '.join(not_python3)}")
    print(f"files changed: {counts['changed']}")
    print(f"fixes applied by code: {', '.join(f'{c} {applied[c]}' for c in FIXABLE)} (total {sum(applied.values())})")
    print(f"files still offering a fix after --fix: {len(offered_left)}")
    for name, codes in offered_left.items():
        print(f"  {name}: {', '.join(codes)}")
    print(f"second run no-op: {counts['second run no-op']} of {counts['changed']}")
    print(f"compile failures: {counts['compile failures']}")
    print(f"diffs: {args.out}")
    for name in changed_files:
        print(f"  {name}")
    print(f"\nfindings of fixable codes with no fix ({sum(len(where) for where in no_fix.values())}):")
    for (code, why), where in sorted(no_fix.items(), key=lambda item: (item[0][0], -len(item[1]))):
        print(f"  {code} {len(where):>3}  {why}")
        for place in where:
            print(f"          {place}")
    if problems:
        print(f"\nproblems ({len(problems)}):")
        for p in problems:
            print(f"  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
