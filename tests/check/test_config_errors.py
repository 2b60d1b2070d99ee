"""Configuration files of the wrong shape and values that make no sense: a one-line error naming the key."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from gradlint.cli import app
from gradlint.config import DEFAULT_OPTIONS, ConfigError, Settings, load_settings


def config_error(tmp_path, text: str, name: str = "pyproject.toml") -> str:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(start=tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("tool", ["5", '"gradlint"', '["gradlint"]', "2024-01-01"])
@pytest.mark.parametrize("name", ["pyproject.toml", "gradlint.toml"])
def test_tool_that_is_not_a_table_is_a_config_error(tmp_path, tool, name):
    assert "'tool' must be a table" in config_error(tmp_path, f"tool = {tool}\n", name)


def test_tool_gradlint_that_is_not_a_table_is_a_config_error(tmp_path):
    assert "[tool.gradlint] must be a table" in config_error(tmp_path, "[tool]\ngradlint = 5\n")


@pytest.mark.parametrize("opening", ["[", "{a = "])
def test_toml_nested_past_the_recursion_limit_is_a_config_error(tmp_path, opening):
    closing = "]" if opening == "[" else "}"
    text = "[tool.gradlint]\nselect = " + opening * 5000 + "1" + closing * 5000 + "\n"
    assert "nested too deeply" in config_error(tmp_path, text)


def test_find_config_skips_folders_it_may_not_look_into(tmp_path):
    root = os.geteuid() == 0
    if root and shutil.which("setpriv") is None:
        pytest.skip("root may look into any folder, and setpriv is missing to act as another user")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if root else []
    start = tmp_path / "closed" / "inner"
    start.mkdir(parents=True)
    tmp_path.chmod(0o711)
    (tmp_path / "closed").chmod(0o700 if root else 0o000)  # stat of what lies inside fails (EACCES)
    probe = f"import pathlib, gradlint.config as c; print(c.find_config(pathlib.Path({str(start)!r})))"
    try:
        result = subprocess.run([*as_nobody, sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    finally:
        (tmp_path / "closed").chmod(0o700)
    assert result.stdout.strip() == "None", result.stderr


@pytest.mark.parametrize("key", ["max-sgd-lr", "max-adaptive-lr", "clip-threshold-max", "parse-timeout"])
@pytest.mark.parametrize("value", ["nan", "inf", "+inf", "-inf", "0", "-1.5"])
def test_numbers_must_be_positive_and_finite(tmp_path, key, value):
    message = config_error(tmp_path, f"[tool.gradlint]\n{key} = {value}\n")
    assert f"'{key}' must be a positive finite number" in message


@pytest.mark.parametrize("key", ["max-plain-depth", "max-batch-size"])
def test_integer_options_reject_infinity(tmp_path, key):
    assert f"'{key}' must be a positive integer" in config_error(tmp_path, f"[tool.gradlint]\n{key} = inf\n")


def test_parse_timeout_is_read_with_a_default_and_left_out_of_the_cache_key(tmp_path):
    assert DEFAULT_OPTIONS["parse-timeout"] == 10.0
    (tmp_path / "pyproject.toml").write_text("[tool.gradlint]\nparse-timeout = 2.5\n")
    settings = load_settings(start=tmp_path)
    assert settings.options["parse-timeout"] == 2.5
    default = Settings()
    assert replace(default, options={**default.options, "parse-timeout": 99}).cache_key() == default.cache_key()
    assert replace(default, options={**default.options, "max-sgd-lr": 2.0}).cache_key() != default.cache_key()


@pytest.mark.parametrize(
    "text, message",
    [
        ("tool = 5\n", "'tool' must be a table"),
        ("tool = ['gradlint']\n", "'tool' must be a table"),
        ("[tool.gradlint]\nmax-sgd-lr = nan\nclip-threshold-max = nan\n", "'max-sgd-lr' must be a positive finite"),
        ("[tool.gradlint]\nselect = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ],
)
def test_cli_reports_a_bad_config_in_one_line_with_exit_2(tmp_path, monkeypatch, text, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(text)
    (tmp_path / "a.py").write_text("import torch\nprint(torch.ones(1))\n")
    result = CliRunner().invoke(app, ["check", "--no-cache", "a.py"], catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
