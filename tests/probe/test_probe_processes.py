"""The probe watches every process a script starts, behaves as `python SCRIPT` would, and ends the run when asked."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from probe_helpers import FIXTURES

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def test_spawn_workers_are_watched_and_judged_each(probe_json):
    run = probe_json("spawn_workers.py")
    assert run.exit_code == 1
    assert run.data["verdict"] == "exploding"
    processes = [f["message"] for f in run.data["findings"] if f["id"] == "processes"]
    assert processes and processes[0].startswith("2 processes trained, each judged on its own")
    assert processes[0].count(": exploding, 12 steps") == 2
    assert len({step["pid"] for step in run.data["history"]}) == 1


def test_forked_hogwild_workers_are_watched(probe_json):
    run = probe_json("hogwild.py")
    assert run.exit_code == 0
    assert run.data["verdict"] == "healthy"
    processes = [f["message"] for f in run.data["findings"] if f["id"] == "processes"]
    assert processes and processes[0].count(": healthy, 12 steps") == 2


def test_a_bare_except_does_not_outlive_the_step_budget(probe_json):
    run = probe_json("bare_except.py", steps=10)
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 10
    assert [step["step"] for step in run.data["history"]] == list(range(1, 11))


def test_training_in_a_thread_ends_at_the_step_budget(probe_json):
    started = time.monotonic()
    run = probe_json("thread_training.py", "--timeout", "120", steps=10)
    assert run.data["verdict"] == "healthy"
    assert run.data["steps"] == 10
    assert time.monotonic() - started < 60  # not the whole --timeout


def test_the_script_reads_the_probes_own_stdin():
    command = [sys.executable, "-m", "gradlint", "probe", str(FIXTURES / "stdin_lr.py"), "--steps", "4"]
    command += ["--format", "json"]
    out = subprocess.run(command, input="0.5\n", capture_output=True, text=True, timeout=300)
    data = json.loads(out.stdout)
    assert data["verdict"] == "healthy"
    assert [step["lr"] for step in data["history"]] == [0.5] * 4


def test_the_scripts_last_lines_are_cut_to_a_sane_size(probe_json, tmp_path):
    script = tmp_path / "floods.py"
    script.write_text(
        "import sys\n"
        "for i in range(100):\n"
        "    print('x' * 100_000)\n"
        "sys.exit('gave up')\n"
    )
    run = probe_json(str(script))
    assert run.data["verdict"] == "inconclusive"
    tail = run.data["output_tail"]
    assert len(tail) <= 20 and max(len(line) for line in tail) < 400
    assert tail[-1] == "gave up"
    assert tail[0] == "x" * 300 + " ... (100,000 characters)"


def test_a_script_that_needs_torchrun_is_inconclusive_with_a_hint(probe_json):
    run = probe_json("ddp_healthy.py")
    assert run.exit_code == 3
    assert run.data["verdict"] == "inconclusive"
    assert "environment variable RANK expected" in run.data["reason"]
    assert run.data["reason"].endswith("run it with --nproc-per-node N")
