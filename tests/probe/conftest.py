"""The probe_json fixture for the probe tests."""
from __future__ import annotations

import pytest
from probe_helpers import FIXTURES, ProbeRun, run_cli


@pytest.fixture
def probe_json():
    """Probe a fixture with --format json: probe_json("healthy_mlp.py", "--steps", "8")."""

    def run(name: str, *args: str, steps: int = 12) -> ProbeRun:
        return run_cli(str(FIXTURES / name), "--steps", str(steps), "--format", "json", *args)

    return run
