"""The probe command's contract: usage errors, output files, timeouts, and what importing it costs."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from probe_helpers import FIXTURES, run_cli

REPO = Path(__file__).resolve().parents[2]


def test_missing_script_is_a_one_line_usage_error(tmp_path):
    run = run_cli(str(tmp_path / "nope.py"))
    assert run.exit_code == 2
    assert run.stderr.strip().count("\n") == 0
    assert "no such script" in run.stderr
    assert run.stdout == ""


def test_missing_torch_is_a_one_line_usage_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    run = run_cli(str(FIXTURES / "healthy_mlp.py"))
    assert run.exit_code == 2
    assert "torch is not installed" in run.stderr
    assert run.stderr.strip().count("\n") == 0


def test_plot_without_matplotlib_is_a_one_line_usage_error(monkeypatch, tmp_path):
    import gradlint.probe.plot

    monkeypatch.setattr(gradlint.probe.plot, "plotting_available", lambda: False)
    run = run_cli(str(FIXTURES / "healthy_mlp.py"), "--plot", str(tmp_path / "x.png"))
    assert run.exit_code == 2
    assert "--plot needs matplotlib" in run.stderr


def test_importing_the_probe_does_not_import_torch():
    code = "import sys, gradlint.probe, gradlint.probe.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_output_file_gets_the_json_and_stdout_stays_empty(tmp_path):
    pytest.importorskip("torch")
    target = tmp_path / "report.json"
    run = run_cli(str(FIXTURES / "healthy_mlp.py"), "--steps", "4", "--format", "json", "--output", str(target))
    assert run.exit_code == 0
    assert run.stdout == ""
    data = json.loads(target.read_text())
    assert data["verdict"] == "healthy"
    assert {"verdict", "steps", "reason", "findings", "history", "layers", "static"} <= set(data)


@pytest.mark.slow
def test_timeout_ends_the_script_and_everything_it_started(tmp_path):
    pytest.importorskip("torch")
    pid_file = tmp_path / "grandchild.pid"
    script = tmp_path / "hangs.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(120)\n"
    )
    started = time.monotonic()
    run = run_cli(str(script), "--timeout", "4", "--format", "json")
    assert time.monotonic() - started < 30
    assert run.exit_code == 3
    assert "timed out" in run.data["reason"]
    assert not _running(int(pid_file.read_text()))


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan killed in a container may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_show_output_streams_the_scripts_output_to_stderr(tmp_path):
    script = tmp_path / "talks.py"
    script.write_text("print('hello from the script')\n")
    run = run_cli(str(script), "--show-output", "--format", "json")
    assert "hello from the script" not in run.stdout
    assert json.loads(run.stdout)["verdict"] == "inconclusive"
