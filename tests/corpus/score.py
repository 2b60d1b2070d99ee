"""Score gradlint against the hand-labelled corpus of public training code (issue 10).

Reads every labels file under tests/corpus/labels/ (or the ones given with --labels), materialises each
repository's snapshot at the labelled commit from the fetched mirrors (/work/.mirror/owner+name/repo, a bare
git directory) into a cache folder, lints each labelled file inside its repository tree (so its neighbouring
files are read as they would be in the project), and prints per-rule, per-kind and overall precision and
recall, then every false positive and false negative.

Run by hand (CI has no mirror):  python tests/corpus/score.py [--kind pytorch] [--rule GL101] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from gradlint.config import Settings
from gradlint.engine import lint_paths

HERE = Path(__file__).resolve().parent
KINDS = ("pytorch", "lightning", "hf", "keras", "tf1", "notebook")
COMMIT = re.compile(r"^[0-9a-f]{40}$")
CODE = re.compile(r"^GL\d{3}$")
SOURCES = (".py", ".ipynb")


@dataclass
class Item:
    """One finding or one expected finding, on one labelled file."""

    code: str
    line: int
    cell: int | None
    text: str  # the finding's message, or the label's evidence

    def where(self) -> str:
        return f"cell {self.cell}:{self.line}" if self.cell is not None else str(self.line)


@dataclass
class Entry:
    repo: str
    commit: str
    path: str
    kind: str
    expected: list[Item]
    source: str  # the labels file it comes from
    found: list[Item] = field(default_factory=list)
    checked: bool = False

    @property
    def name(self) -> str:
        return f"{self.repo}/{self.path}"


def load_labels(files: list[Path]) -> list[Entry]:
    """Every entry of the labels files; a malformed entry stops the run with its file and index."""
    entries: list[Entry] = []
    seen: dict[tuple[str, str], str] = {}
    for file in files:
        data = json.loads(file.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            sys.exit(f"{file}: the labels must be a JSON list of entries")
        for i, raw in enumerate(data):
            where = f"{file.name}[{i}]"
            missing = {"repo", "commit", "path", "kind", "expected"} - set(raw)
            if missing:
                sys.exit(f"{where}: missing {', '.join(sorted(missing))}")
            if not COMMIT.match(raw["commit"]):
                sys.exit(f"{where}: commit must be 40 lowercase hex digits")
            if raw["kind"] not in KINDS:
                sys.exit(f"{where}: kind must be one of {', '.join(KINDS)}")
            expected = []
            for e in raw["expected"]:
                if not CODE.match(e.get("code", "")) or not isinstance(e.get("line"), int):
                    sys.exit(f"{where}: each expected finding needs a code like GL101 and an integer line")
                expected.append(Item(e["code"], e["line"], e.get("cell"), e.get("evidence", "")))
            key = (raw["repo"], raw["path"])
            if key in seen:
                sys.exit(f"{where}: {raw['repo']}/{raw['path']} is already labelled in {seen[key]}")
            seen[key] = file.name
            entries.append(Entry(raw["repo"], raw["commit"], raw["path"], raw["kind"], expected, file.name))
    return entries


def mirror_of(repo: str, mirrors: Path) -> Path:
    """The repository's git directory: fetch leaves either a bare one or a checkout's `.git`."""
    git = mirrors / repo.replace("/", "+") / "repo"
    return git / ".git" if (git / ".git").is_dir() else git


def materialise(repo: str, commit: str, mirrors: Path, cache: Path) -> Path:
    """The repository's Python sources and notebooks at `commit`, extracted once into the cache folder and
    reused by later runs. Only what gradlint reads is written: snapshots lack large files (data sets), so a
    plain `git archive` of the whole tree would fail."""
    tree = cache / repo.replace("/", "+") / commit
    if tree.is_dir():
        return tree
    tree.parent.mkdir(parents=True, exist_ok=True)
    git = ["git", "--git-dir", str(mirror_of(repo, mirrors))]
    listing = subprocess.run(git + ["ls-tree", "-r", "-z", commit], check=True, capture_output=True).stdout
    blobs = []
    for record in listing.decode("utf-8", "surrogateescape").split("\0"):
        if not record:
            continue
        meta, path = record.split("\t", 1)
        mode, kind, oid = meta.split()
        if kind == "blob" and mode != "120000" and path.endswith(SOURCES):
            blobs.append((oid, path))
    ids = "".join(f"{oid}\n" for oid, _ in blobs).encode()
    batch = subprocess.run(git + ["cat-file", "--batch"], input=ids, check=True, capture_output=True).stdout
    part = Path(tempfile.mkdtemp(prefix=f"{commit}.", dir=tree.parent))
    try:
        at = 0
        for _, path in blobs:
            end = batch.index(b"\n", at)
            header = batch[at:end].split()
            at = end + 1
            if header[-1] == b"missing":  # over the snapshot's size limit
                continue
            size = int(header[2])
            target = part / path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(batch[at : at + size])
            at += size + 1
        os.replace(part, tree)  # whole trees only: an interrupted run leaves no half tree behind
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return tree


def has_commit(repo: str, commit: str, mirrors: Path) -> bool:
    git = ["git", "--git-dir", str(mirror_of(repo, mirrors)), "cat-file", "-e", f"{commit}^{{commit}}"]
    return subprocess.run(git, capture_output=True).returncode == 0


def lint_entries(entries: list[Entry], mirrors: Path, cache: Path, jobs: int | None) -> list[str]:
    """Fill each entry's findings; returns the problems met (missing mirrors, files, internal errors)."""
    problems: list[str] = []
    by_snapshot: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for entry in entries:
        by_snapshot[(entry.repo, entry.commit)].append(entry)
    for (repo, commit), group in sorted(by_snapshot.items()):
        if not mirror_of(repo, mirrors).is_dir():
            problems.append(
                f"{repo}: no mirror at {mirror_of(repo, mirrors)}; {len(group)} file(s) skipped "
                f"(fetch it: the search tool's fetch with source github:{repo})"
            )
            continue
        if not has_commit(repo, commit, mirrors):
            problems.append(f"{repo}: commit {commit} is not in the mirror; {len(group)} file(s) skipped")
            continue
        tree = materialise(repo, commit, mirrors, cache)
        files = {}
        for entry in group:
            file = tree / entry.path
            if not file.is_file():
                problems.append(f"{entry.name}: no such file at {commit[:12]}; skipped")
                continue
            files[str(file)] = entry
        if not files:
            continue
        result = lint_paths(list(files), Settings(root=tree), jobs=jobs)
        problems.extend(f"{repo}: {e}" for e in result.internal_errors + result.unchecked)
        for finding in result.findings:
            entry = files.get(str(Path(finding.path)))
            if entry is None:  # a neighbour reported (GL001 of a file the labelled one imports)
                problems.append(f"{repo}: {finding.path}:{finding.line}: {finding.code} {finding.message}")
                continue
            entry.found.append(Item(finding.code, finding.line, finding.cell, finding.message))
        for entry in files.values():
            entry.checked = True
    return problems


def match(expected: list[Item], found: list[Item]) -> tuple[list[tuple[Item, Item]], list[Item], list[Item]]:
    """Pairs of one code on one file as a multiset: as many true positives as the smaller count, the
    nearest lines paired first. Returns (pairs, false negatives, false positives)."""

    def distance(e: Item, f: Item) -> tuple[int, int]:
        return (0 if e.cell == f.cell else 1, abs(e.line - f.line))

    candidates = sorted(
        ((distance(e, f), i, j) for i, e in enumerate(expected) for j, f in enumerate(found)),
        key=lambda c: c[0],
    )
    used_e: set[int] = set()
    used_f: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i in used_e or j in used_f:
            continue
        used_e.add(i)
        used_f.add(j)
        pairs.append((expected[i], found[j]))
    misses = [e for i, e in enumerate(expected) if i not in used_e]
    extra = [f for j, f in enumerate(found) if j not in used_f]
    return pairs, misses, extra


@dataclass
class Tally:
    expected: int = 0
    found: int = 0
    tp: int = 0

    def add(self, expected: int, found: int, tp: int) -> None:
        self.expected += expected
        self.found += found
        self.tp += tp

    def precision(self) -> float | None:
        return self.tp / self.found if self.found else None

    def recall(self) -> float | None:
        return self.tp / self.expected if self.expected else None

    def row(self) -> dict:
        return {
            "expected": self.expected,
            "found": self.found,
            "tp": self.tp,
            "fp": self.found - self.tp,
            "fn": self.expected - self.tp,
            "precision": self.precision(),
            "recall": self.recall(),
        }


def _report(entry: Entry, item: Item) -> dict:
    return {"file": entry.name, "kind": entry.kind, "code": item.code, "line": item.where(), "text": item.text}


def score(entries: list[Entry], wanted) -> dict:
    per_rule: dict[str, Tally] = defaultdict(Tally)
    per_kind: dict[str, Tally] = defaultdict(Tally)
    overall = Tally()
    false_pos, false_neg = [], []
    for entry in entries:
        if not entry.checked:
            continue
        per_kind[entry.kind]  # a kind with only clean, silent files still gets its row
        codes = sorted({i.code for i in entry.expected + entry.found if wanted(i.code)})
        for code in codes:
            expected = [i for i in entry.expected if i.code == code]
            found = [i for i in entry.found if i.code == code]
            pairs, misses, extra = match(expected, found)
            for tally in (per_rule[code], per_kind[entry.kind], overall):
                tally.add(len(expected), len(found), len(pairs))
            false_neg += [_report(entry, m) for m in misses]
            false_pos += [_report(entry, f) for f in extra]
    return {
        "per_rule": {code: t.row() for code, t in sorted(per_rule.items())},
        "per_kind": {kind: t.row() for kind, t in sorted(per_kind.items())},
        "overall": overall.row(),
        "false_positives": false_pos,
        "false_negatives": false_neg,
    }


def table(title: str, rows: dict[str, dict]) -> str:
    def ratio(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    lines = [f"{title:<10} {'expected':>8} {'found':>6} {'TP':>5} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>6}"]
    for name, r in rows.items():
        lines.append(
            f"{name:<10} {r['expected']:>8} {r['found']:>6} {r['tp']:>5} {r['fp']:>4} {r['fn']:>4} "
            f"{ratio(r['precision']):>9} {ratio(r['recall']):>6}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=Path, action="append", help="a labels file (repeatable; default: labels/*)")
    parser.add_argument("--kind", choices=KINDS, action="append", help="score only these kinds (repeatable)")
    parser.add_argument("--rule", action="append", help="score only these codes or prefixes, e.g. GL101, GL4")
    parser.add_argument("--json", type=Path, help="also write the scores and every FP/FN to this file")
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"), help="where fetch puts the repositories")
    cache = Path(tempfile.gettempdir()) / "gradlint-corpus"
    parser.add_argument("--cache", type=Path, default=cache, help="where snapshots are extracted")
    parser.add_argument("--jobs", type=int, help="worker processes for gradlint (default: the cores)")
    args = parser.parse_args(argv)

    files = args.labels or sorted((HERE / "labels").glob("*.json"))
    entries = [e for e in load_labels(files) if not args.kind or e.kind in args.kind]
    rules = tuple(args.rule or ("GL",))

    def wanted(code: str) -> bool:
        return code.startswith(rules)

    problems = lint_entries(entries, args.mirrors, args.cache, args.jobs)
    checked = [e for e in entries if e.checked]
    result = score(checked, wanted)

    kinds = defaultdict(int)
    for e in checked:
        kinds[e.kind] += 1
    clean = sum(1 for e in checked if not any(wanted(i.code) for i in e.expected))
    print(
        f"corpus: {len(checked)} files checked of {len(entries)} labelled, "
        f"from {len({e.repo for e in checked})} repositories "
        f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); {clean} labelled clean for these rules\n"
    )
    print(table("rule", result["per_rule"]) + "\n")
    print(table("kind", result["per_kind"]) + "\n")
    print(table("overall", {"all": result["overall"]}) + "\n")
    for title, key in (("false positives", "false_positives"), ("false negatives", "false_negatives")):
        print(f"{title} ({len(result[key])}):")
        for item in result[key]:
            print(f"  {item['file']}:{item['line']}: {item['code']} [{item['kind']}] {item['text']}")
        print()
    if problems:
        print(f"problems ({len(problems)}):")
        for p in problems:
            print(f"  {p}")
    if args.json:
        result["corpus"] = {"files": len(checked), "labelled": len(entries), "kinds": kinds, "problems": problems}
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
