"""Configuration: `[tool.gradlint]` in pyproject.toml (or gradlint.toml) -> validated settings."""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradlint.catalog import CODES
from gradlint.findings import Severity
from gradlint.source import matches_any

DEFAULT_OPTIONS: dict[str, Any] = {
    "max-plain-depth": 8,
    "max-batch-size": 1024,
    "max-sgd-lr": 1.0,
    "max-adaptive-lr": 0.1,
    "clip-threshold-max": 1000.0,
    "regularization-scope": "at-risk",
    "parse-timeout": 10.0,
}
# Options that cannot change a file's findings, so a cached result stays good when they change.
NOT_IN_CACHE_KEY = frozenset({"parse-timeout"})
LIST_KEYS = ("select", "ignore", "extend-select", "exclude", "extend-exclude")
KNOWN_KEYS = frozenset(LIST_KEYS) | {"per-file-ignores", "fail-on"} | set(DEFAULT_OPTIONS)


class ConfigError(Exception):
    """A bad configuration key or value; the message is one line naming it."""


@dataclass(frozen=True)
class Settings:
    select: tuple[str, ...] = ("GL",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    fail_on: Severity = Severity.WARNING
    options: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIONS))
    root: Path = field(default_factory=Path.cwd)
    source: Path | None = None  # the config file read, if any

    def enabled_codes(self, codes: list[str], path: str | None = None) -> frozenset[str]:
        """The codes that run on `path`: selected (most specific prefix wins) and not ignored there."""
        ignored = list(self.ignore)
        if path is not None and self.per_file_ignores:
            rel = _relative(path, self.root)
            for pattern, file_codes in self.per_file_ignores:
                if matches_any(rel, (pattern,)):
                    ignored.extend(file_codes)
        selected = tuple(self.select) + tuple(self.extend_select)
        result = set()
        for code in codes:
            chosen = _longest(code, selected)
            if chosen is None:
                continue
            dropped = _longest(code, tuple(ignored))
            if dropped is not None and len(dropped) >= len(chosen):
                continue
            result.add(code)
        return frozenset(result)

    def cache_key(self) -> str:
        """What of the settings can change a file's findings: the code selection and the rule options."""
        options = sorted((k, v) for k, v in self.options.items() if k not in NOT_IN_CACHE_KEY)
        data = json.dumps(
            [self.select, self.ignore, self.extend_select, self.per_file_ignores, options],
            default=str,
        )
        import hashlib  # here: a worker never asks, and imports this module on the way to its first file

        return hashlib.sha256(data.encode()).hexdigest()[:16]


def _longest(code: str, prefixes: tuple[str, ...]) -> str | None:
    matches = [p for p in prefixes if code.startswith(p)]
    return max(matches, key=len) if matches else None


def _relative(path: str, root: Path) -> str:
    p = Path(path)
    try:
        return p.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return p.as_posix()


def find_config(start: Path) -> Path | None:
    """The nearest pyproject.toml with a [tool.gradlint] table, or gradlint.toml, upwards from `start`."""
    current = start.resolve()
    for folder in [current, *current.parents]:
        own = folder / "gradlint.toml"
        pyproject = folder / "pyproject.toml"
        try:
            if own.is_file():
                return own
            if not pyproject.is_file():
                continue
        except OSError:
            continue  # a folder we may not look into
        try:
            tool = _tool_table(_read_toml(pyproject), pyproject)
        except ConfigError:
            return pyproject  # reported by load_settings with the reason
        if "gradlint" in tool:
            return pyproject
    return None


def load_settings(config: Path | None = None, start: Path | None = None) -> Settings:
    """Read and validate the configuration; raises ConfigError with a one-line message."""
    path = config if config is not None else find_config(start or Path.cwd())
    if path is None:
        return Settings()
    data = _read_toml(path)
    tool = _tool_table(data, path)
    # gradlint.toml may hold the keys at its top level.
    table = tool.get("gradlint", {}) if path.name == "pyproject.toml" else tool.get("gradlint", data)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.gradlint] must be a table")
    return parse_table(table, path)


def _read_toml(path: Path) -> dict[str, Any]:
    # Imported here: a worker never reads a configuration, and imports this module on the way to its first file.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _tool_table(data: dict[str, Any], path: Path) -> dict[str, Any]:
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: 'tool' must be a table (got {type(tool).__name__})")
    return tool


def parse_table(table: dict[str, Any], path: Path) -> Settings:
    codes = list(CODES)
    where = f"{path}: [tool.gradlint]"
    for key in table:
        if key not in KNOWN_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(KNOWN_KEYS))})")
    lists: dict[str, tuple[str, ...]] = {}
    for key in LIST_KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: '{key}' must be a list of strings")
        if key in ("select", "ignore", "extend-select"):
            for code in value:
                check_code(code, codes, f"{where}: '{key}'")
        lists[key] = tuple(value)
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{where}: 'per-file-ignores' must be a table of pattern = [codes]")
    per_file_ignores = []
    for pattern, file_codes in per_file.items():
        if not isinstance(file_codes, list) or not all(isinstance(c, str) for c in file_codes):
            raise ConfigError(f"{where}: 'per-file-ignores' entry '{pattern}' must be a list of codes")
        for code in file_codes:
            check_code(code, codes, f"{where}: 'per-file-ignores' entry '{pattern}'")
        per_file_ignores.append((pattern, tuple(file_codes)))
    fail_on = table.get("fail-on", "warning")
    try:
        severity = Severity(fail_on)
    except ValueError:
        raise ConfigError(f"{where}: 'fail-on' must be one of info, warning, error (got {fail_on!r})") from None
    options = dict(DEFAULT_OPTIONS)
    for key, default in DEFAULT_OPTIONS.items():
        if key not in table:
            continue
        value = table[key]
        if isinstance(default, str):
            if value not in ("at-risk", "all"):
                raise ConfigError(f"{where}: '{key}' must be \"at-risk\" or \"all\" (got {value!r})")
        elif isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: '{key}' must be a positive integer (got {value!r})")
        elif not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{where}: '{key}' must be a positive finite number (got {value!r})")
        options[key] = value
    select = lists["select"] or ("GL",)
    return Settings(
        select=select,
        ignore=lists["ignore"],
        extend_select=lists["extend-select"],
        exclude=lists["exclude"] + lists["extend-exclude"],
        per_file_ignores=tuple(per_file_ignores),
        fail_on=severity,
        options=options,
        root=path.parent.resolve(),
        source=path,
    )


def check_code(code: str, codes: list[str], where: str) -> None:
    """A code or prefix must name at least one rule (`GL`, `GL1`, `GL101`)."""
    if not any(c.startswith(code) for c in codes) or not code.startswith("GL"):
        raise ConfigError(f"{where}: '{code}' matches no rule code")
