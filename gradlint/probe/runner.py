"""The probe's parent side: start the script in a child process, collect its records, enforce the timeout."""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gradlint.probe.analysis import ProbeResult, analyze
from gradlint.probe.records import EndRecord, RecurrentRecord, RunInfo, StepRecord

OUTPUT_TAIL_LINES = 20
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# -c leaves sys.path[0] for the child to set to the script's folder; gradlint is found from where it is now.
_BOOTSTRAP = (
    f"import sys; sys.path[0] = {_PACKAGE_ROOT!r}; "
    "from gradlint.probe.child import main; main()"
)


@dataclass
class _Collected:
    steps: list[StepRecord] = field(default_factory=list)
    recurrent: list[RecurrentRecord] = field(default_factory=list)
    end: EndRecord | None = None


def _read_records(stream: IO[str], collected: _Collected, on_step: Callable[[StepRecord], None] | None) -> None:
    for line in stream:
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a killed child carries nothing we can use
        kind = data.get("type")
        if kind == "step":
            record = StepRecord.from_json(data)
            collected.steps.append(record)
            if on_step is not None:
                on_step(record)
        elif kind == "recurrent":
            collected.recurrent.append(RecurrentRecord.from_json(data))
        elif kind == "end":
            collected.end = EndRecord.from_json(data)


def _read_output(stream: IO[str], tail: collections.deque[str], echo: IO[str] | None) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))
        if echo is not None:
            echo.write(line)
            echo.flush()


def _end_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def run_probe(
    script: Path,
    args: list[str],
    *,
    steps: int = 30,
    timeout: float = 300.0,
    echo: IO[str] | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
) -> ProbeResult:
    """Run `python SCRIPT ARGS` under the probe for at most `steps` steps and `timeout` seconds.

    echo, when given, receives the script's stdout and stderr as they come; otherwise only their last lines
    are kept for the report.
    """
    read_end, write_end = os.pipe()
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # so --show-output streams and a crash loses no lines
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, str(write_end), str(steps), str(script), *args],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group, so DataLoader workers end with it
        )
    finally:
        os.close(write_end)
    collected = _Collected()
    tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
    with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as records:
        readers = [
            threading.Thread(target=_read_records, args=(records, collected, on_step), daemon=True),
            threading.Thread(target=_read_output, args=(process.stdout, tail, echo), daemon=True),
        ]
        for reader in readers:
            reader.start()
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Also on success: workers the script left behind still hold the pipes open.
            _end_group(process.pid)
            process.wait()
        for reader in readers:
            reader.join(timeout=5)
    run = RunInfo(end=collected.end, timed_out=timed_out, returncode=process.returncode, output_tail=list(tail))
    return analyze(collected.steps, collected.recurrent, run)
