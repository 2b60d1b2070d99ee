"""Helpers for the probe tests: a typer app that registers probe exactly as gradlint's main app does.

A module with its own name rather than conftest.py, so that tests can import it without clashing with other
folders' conftest modules."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from gradlint.probe.cli import probe

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "probe"

app = typer.Typer()


@app.callback()
def _root() -> None:
    """A group, so `probe` is a subcommand as in the real app."""


app.command("probe", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(probe)


class ProbeRun:
    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.stdout)

    def finding_ids(self) -> set[str]:
        return {f["id"] for f in self.data["findings"]}


def run_cli(*args: str) -> ProbeRun:
    result = CliRunner().invoke(app, ["probe", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return ProbeRun(result.exit_code, result.stdout, result.stderr)
