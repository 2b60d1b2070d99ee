"""Config files a training script reads (JSON, YAML, TOML, Hydra's composed config): found next to the linted
file or at its project's root, parsed once per project, and recorded as files the findings depend on.

Nothing here runs code of the project: YAML is read with PyYAML's safe loader (and only where PyYAML is
installed beside gradlint), TOML with tomllib. Anything unreadable, too large, malformed, or whose top level
is not a mapping is None: the values read from it stay unknown.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradlint.facts.file import FileFacts

# A config is a few kilobytes; anything larger is data, not settings, and not worth a linter's time.
MAX_BYTES = 1_000_000
# A YAML file of aliases (the "billion laughs") is small on disk but huge once walked: values are
# compared by their repr, so a structure past these bounds is treated as unreadable.
MAX_NODES = 100_000
MAX_DEPTH = 64
# Folders that mark a project's root: relative paths are tried there after the linted file's folder
# (a script is run from its own folder or from the root).
_ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
# Hydra: a value still to be filled in (`???`) or computed from another (`${model.hidden}`).
_UNRESOLVED = ("???",)

KINDS = ("json", "yaml", "toml")


# Errors of the file system (a folder we may not read, a symbolic link loop) mean unknown, never a crash.
_FS_ERRORS = (OSError, RuntimeError, ValueError, RecursionError, MemoryError)


def load(facts: "FileFacts", written: str, kind: str) -> dict | None:
    """The mapping a config file holds, for a path as the script writes it; None when unknown."""
    try:
        return _load(facts, written, kind)
    except _FS_ERRORS:
        return None


def hydra(facts: "FileFacts", config_path: str, config_name: str) -> dict | None:
    """The config `@hydra.main(config_path=..., config_name=...)` composes with no overrides (see _hydra)."""
    try:
        return _hydra(facts, config_path, config_name)
    except _FS_ERRORS:
        return None


def _load(facts: "FileFacts", written: str, kind: str) -> dict | None:
    for candidate in candidates(facts, written):
        # Recorded found or not: creating the file beside the script later must re-check it.
        depend(facts, candidate)
        if candidate.is_file():
            return read(facts, candidate, kind)
    return None


def candidates(facts: "FileFacts", written: str) -> list[Path]:
    """Where a path may point, in the order tried: itself when absolute, else under the file's folder, then
    under the project's root."""
    if not written or "\0" in written or written.startswith(("~", "$")) or "://" in written:
        return []
    path = Path(written)
    if path.is_absolute():
        found = [path]
    else:
        here = folder(facts)
        if here is None:
            return []
        found = [here / path]
        root = project_root(here)
        if root is not None and root != here:
            found.append(root / path)
    return found


def folder(facts: "FileFacts") -> Path | None:
    """The linted file's folder; None for source given as a string with no file behind it."""
    if not facts.path or facts.path.startswith("<"):
        return None
    try:
        return Path(facts.path).resolve().parent
    except (OSError, RuntimeError, ValueError):
        return None


def project_root(start: Path) -> Path | None:
    """The first folder from `start` up holding pyproject.toml, setup.py or .git (None if none does)."""
    for here in (start, *start.parents):
        try:
            if any((here / marker).exists() for marker in _ROOT_MARKERS):
                return here
        except OSError:
            return None
    return None


def depend(facts: "FileFacts", path: Path) -> None:
    project = facts.project
    if project is None or folder(facts) is None:
        return
    try:
        project.uses(facts.path).add(str(path.resolve()))
    except (OSError, RuntimeError, ValueError):
        pass


def read(facts: "FileFacts", path: Path, kind: str) -> dict | None:
    """A config file's mapping, parsed once per project (each linted file has a project of its own)."""
    project = facts.project
    cache: dict = project.configs if project is not None else {}
    try:
        key = (str(path.resolve()), kind)
    except (OSError, RuntimeError, ValueError):
        return None
    if key not in cache:
        depend(facts, path)
        cache[key] = _parse(path, kind)
    return cache[key]


def _parse(path: Path, kind: str) -> dict | None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError):
        return None
    if len(data) > MAX_BYTES:
        return None
    try:
        if kind == "json":
            result = json.loads(data.decode("utf-8-sig"))
        elif kind == "yaml":
            result = _yaml(data)
        elif kind == "toml":
            result = _toml(data)
        else:
            return None
    except (ValueError, TypeError, RecursionError, MemoryError, UnicodeError):
        return None
    except Exception:  # a parser's own error class (yaml.YAMLError, tomllib.TOMLDecodeError ...)
        return None
    if not isinstance(result, dict) or not _bounded(result):
        return None
    return result


def _yaml(data: bytes) -> Any:
    # Imported here, at each read: PyYAML is not one of gradlint's dependencies, and where it is missing
    # the values stay unknown rather than the linter failing.
    try:
        import yaml
    except ImportError:
        return None
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    return yaml.load(data.decode("utf-8-sig"), Loader=loader)


def _toml(data: bytes) -> Any:
    try:
        import tomllib
    except ImportError:  # Python 3.10: tomli is a dependency there
        try:
            import tomli as tomllib
        except ImportError:
            return None
    return tomllib.loads(data.decode("utf-8-sig"))


def _bounded(data: Any) -> bool:
    """Whether a parsed structure is small and shallow enough to walk (shared YAML aliases count each time)."""
    todo = [(data, 0)]
    count = 0
    while todo:
        item, depth = todo.pop()
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            todo.extend((v, depth + 1) for v in item.values())
            todo.extend((k, depth + 1) for k in item if not isinstance(k, (str, int, float, bool)))
        elif isinstance(item, (list, tuple, set)):
            todo.extend((v, depth + 1) for v in item)
    return True


def omegaconf(data: dict | None) -> dict | None:
    """A YAML mapping as OmegaConf gives it: values still to be filled (`???`) or interpolated (`${a.b}`) are
    known only at run time, so their keys are left out (reading them is unknown, never the raw string)."""
    if data is None:
        return None
    result = {}
    for key, value in data.items():
        if isinstance(value, dict):
            result[key] = omegaconf(value)
        elif _settled(value):
            result[key] = value
    return result


def _settled(value: Any) -> bool:
    """Whether a value holds no `???` or `${...}` (in lists too: `layers: [{size: ${width}}]`)."""
    if isinstance(value, str):
        return value not in _UNRESOLVED and "${" not in value
    if isinstance(value, list):
        return all(_settled(v) for v in value)
    if isinstance(value, dict):
        return all(_settled(v) for v in value.values())
    return True


# -- Hydra -----------------------------------------------------------------------------------------------


def _hydra(facts: "FileFacts", config_path: str, config_name: str) -> dict | None:
    """The config `@hydra.main(config_path=..., config_name=...)` composes with no overrides: the primary
    file with its `defaults:` list, each `- group: option` merged under `group`. An entry this cannot
    follow leaves its key unknown (left out); one whose key cannot be told leaves the whole config unknown."""
    here = folder(facts)
    if here is None or "://" in config_path or ":" in config_path.split("/")[0]:
        return None
    name = config_name if config_name.endswith((".yaml", ".yml")) else f"{config_name}.yaml"
    conf = here / config_path
    primary_path = conf / name
    depend(facts, primary_path)
    primary = read(facts, primary_path, "yaml") if primary_path.is_file() else None
    if primary is None:
        return None
    primary = dict(primary)
    defaults = primary.pop("defaults", [])
    if not isinstance(defaults, list):
        return None
    layers: list[dict | None] = []  # None marks `_self_`
    unknown: set[str] = set()
    self_listed = False
    for entry in defaults:
        if entry == "_self_":
            layers.append(None)
            self_listed = True
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            return None  # `- base`: a config merged at the top, keys unknown here
        [(group, option)] = entry.items()
        if not isinstance(group, str):
            return None
        key = group.split("@")[0].split("/")[0].split()[-1] if group.split() else ""
        if not key.isidentifier():
            return None
        if option is None:
            continue  # `- model: null`: nothing chosen
        plain = group.isidentifier() and isinstance(option, str) and "${" not in option and "/" not in option
        loaded = _group(facts, conf, group, option) if plain else None
        if loaded is None:
            unknown.add(key)
            # A package written after `@` (`- model@encoder: lstm`) lands under that key instead.
            if "@" in group:
                unknown.add(group.split("@", 1)[1].split(".")[0])
            continue
        layers.append({key: loaded})
    if not self_listed:
        # Hydra 1.1 on: the primary config is merged last. Where it also sets a group's key, older Hydra
        # merged it first: which one wins then depends on the version, so that key is unknown.
        unknown.update(k for layer in layers if layer for k in layer if k in primary)
        layers.append(None)
    result: dict = {}
    for layer in layers:
        _merge(result, primary if layer is None else layer)
    for key in unknown:
        result.pop(key, None)
    return omegaconf(result)


def _group(facts: "FileFacts", conf: Path, group: str, option: str) -> dict | None:
    name = option if option.endswith((".yaml", ".yml")) else f"{option}.yaml"
    path = conf / group / name
    depend(facts, path)
    if not path.is_file():
        return None
    data = read(facts, path, "yaml")
    if data is None or "defaults" in data:
        return None  # a group option's own defaults list: not followed
    try:
        head = path.read_bytes()[:2000]
    except OSError:
        return None
    if b"@package" in head:
        return None  # `# @package _global_` moves its keys elsewhere
    return data


def _merge(into: dict, other: dict) -> None:
    """OmegaConf's merge: mappings merge key by key, anything else is replaced."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merged = dict(into[key])
            _merge(merged, value)
            into[key] = merged
        else:
            into[key] = value
