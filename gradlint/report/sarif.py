"""The sarif format: SARIF 2.1.0, as GitHub code scanning and other viewers read it."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gradlint.findings import Finding, Severity
from gradlint.report.paths import posix, printable, relative_to_root, uri_path

if TYPE_CHECKING:
    from gradlint.checks.registry import Rule

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/gradlint/gradlint"
SRCROOT = "%SRCROOT%"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradlint")
    except PackageNotFoundError:
        return "0.0.0"


def render_sarif(findings: Sequence[Finding], *, rules: Sequence[Rule], root: Path | None = None) -> str:
    descriptors = [rule_descriptor(rule) for rule in rules]
    index = {rule.code: i for i, rule in enumerate(rules)}
    for f in findings:
        # A finding whose rule was not passed in still needs a descriptor, or its
        # ruleIndex would point nowhere.
        if f.code not in index:
            index[f.code] = len(descriptors)
            descriptors.append(fallback_descriptor(f))

    seen: Counter[str] = Counter()
    results = []
    for f in findings:
        key = fingerprint(f)
        seen[key] += 1
        # Identical findings in one file stay distinct alerts, numbered in order.
        if seen[key] > 1:
            key = f"{key}:{seen[key]}"
        results.append(result(f, index[f.code], key, root))

    run: dict = {
        "tool": {
            "driver": {
                "name": "gradlint",
                "version": tool_version(),
                "informationUri": INFORMATION_URI,
                "rules": descriptors,
            }
        },
        # libcst columns count code points, not UTF-16 units.
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if root is not None:
        run["originalUriBaseIds"] = {SRCROOT: {"uri": directory_uri(root)}}
    log = {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}
    return json.dumps(log, indent=2) + "\n"


def rule_descriptor(rule: Rule) -> dict:
    tags = ["gradlint"]
    if rule.fixable:
        tags.append("autofix")
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": f"{rule.code} ({rule.name})"},
        "fullDescription": {"text": rule.summary},
        "help": {
            "text": f"{rule.summary} See {rule.help_uri}",
            "markdown": f"{rule.summary}\n\nSee [{rule.code} ({rule.name})]({rule.help_uri}) for examples and the fix.",
        },
        "helpUri": rule.help_uri,
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": tags},
    }


def fallback_descriptor(finding: Finding) -> dict:
    return {
        "id": finding.code,
        "name": finding.name,
        "shortDescription": {"text": f"{finding.code} ({finding.name})"},
        "defaultConfiguration": {"level": LEVELS[finding.severity]},
    }


def fingerprint(finding: Finding) -> str:
    # No line numbers: an alert must survive code being moved up or down the file.
    parts = [finding.code, posix(finding.path), str(finding.cell or ""), finding.message]
    # surrogatepass: a name that is not UTF-8 still gives the same fingerprint run after run.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def result(finding: Finding, rule_index: int, fingerprint_value: str, root: Path | None) -> dict:
    message = printable(finding.message)
    if finding.cell is not None:
        message = f"cell {finding.cell}: {message}"
    location = artifact_location(finding.path, root)
    out: dict = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": message},
        "locations": [{"physicalLocation": {"artifactLocation": location, "region": region(finding)}}],
        "partialFingerprints": {"gradlint/v1": fingerprint_value},
    }
    fix = sarif_fix(finding, location)
    if fix is not None:
        out["fixes"] = [fix]
    properties: dict = {}
    if finding.help is not None:
        # The rule's descriptor holds its general help; this is the fix for this finding, in its framework.
        properties["help"] = printable(finding.help)
    if finding.cell is not None:
        properties["cell"] = finding.cell
    if properties:
        out["properties"] = properties
    return out


def region(finding: Finding) -> dict:
    # The schema wants positive numbers; a finding with a bad end keeps only its start.
    start_line = max(finding.line, 1)
    start_column = max(finding.column, 1)
    out = {"startLine": start_line, "startColumn": start_column}
    ends_after_start = finding.end_line > start_line or (
        finding.end_line == start_line and finding.end_column >= start_column
    )
    if ends_after_start:
        out["endLine"] = finding.end_line
        out["endColumn"] = finding.end_column
    return out


def artifact_location(path: str, root: Path | None) -> dict:
    rel = relative_to_root(path, root)
    if rel is not None:
        return {"uri": uri_path(rel), "uriBaseId": SRCROOT}
    if Path(path).is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": uri_path(posix(path))}


def directory_uri(root: Path) -> str:
    uri = Path(root).resolve().as_uri()
    # A base URI must end with a slash, or the last folder would be replaced on resolution.
    return uri if uri.endswith("/") else uri + "/"


def sarif_fix(finding: Finding, location: dict) -> dict | None:
    # Edits are offsets into the file's text; in a notebook that text is not the .ipynb file.
    if finding.fix is None or not finding.fix.edits or finding.cell is not None:
        return None
    replacements = [
        {
            "deletedRegion": {"charOffset": edit.start, "charLength": edit.end - edit.start},
            "insertedContent": {"text": edit.text},
        }
        for edit in finding.fix.edits
    ]
    return {
        "description": {"text": finding.fix.description},
        "artifactChanges": [{"artifactLocation": dict(location), "replacements": replacements}],
    }
