"""The probe's side of every watched process: install the hooks, stream records, and run the user's script.

The runner starts `python -c <bootstrap> SCRIPT [ARGS...]` (under torchrun, one per rank) with
GRADLINT_PROBE_RECORDS naming its socket and gradlint/probe/startup first on PYTHONPATH. `start()` runs in every
Python process when it imports torch (from that start-up hook), forked workers included: each process opens its
own connection and tags its records with its pid and rank, so the script's stdout and stderr stay the script's.
`main()` runs the script itself as __main__ and reports how it ended.
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import socket
import sys
import threading
import traceback
from typing import Any

from gradlint.probe.records import EndRecord

RECORDS_ENV = "GRADLINT_PROBE_RECORDS"  # the parent's Unix socket
STEPS_ENV = "GRADLINT_PROBE_STEPS"  # steps each process takes before it is ended


class _Channel:
    """One connection to the parent. Records are JSON lines; a failed write means nobody is left to tell."""

    def __init__(self, address: str) -> None:
        self._lock = threading.Lock()  # training threads and the main thread may both emit
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(address)
        self.send({"type": "process"})  # tells the parent this pid is one to end when the run is over

    def send(self, record: dict[str, Any]) -> None:
        record["pid"] = os.getpid()
        record["rank"] = _rank()
        data = (json.dumps(record) + "\n").encode("utf-8")
        with self._lock:
            try:
                self._socket.sendall(data)
            except OSError:
                pass

    def drop(self) -> None:
        """Close a connection inherited through fork: it stays open, and the parent's, in the parent."""
        self._socket.close()


def _rank() -> int | None:
    torch = sys.modules.get("torch")
    distributed = getattr(torch, "distributed", None)
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank()
    rank = os.environ.get("RANK")
    return int(rank) if rank is not None and rank.isdigit() else None


_channel: _Channel | None = None
_recorder: Any = None
_hooks_registered = False  # inherited by forked children, which must not register them again
_starting = False


def _connect() -> None:
    global _channel, _hooks_registered
    if _channel is not None:
        return
    _channel = _Channel(os.environ[RECORDS_ENV])
    if not _hooks_registered:
        _hooks_registered = True
        atexit.register(_flush)
        os.register_at_fork(after_in_child=_restart_after_fork)


def start() -> None:
    """Watch this process: connect to the parent and install the hooks (once). Imports torch."""
    global _recorder, _starting
    # The import of torch below fires the start-up hook, which calls this again: that call has nothing to do.
    if _recorder is not None or _starting:
        return
    _starting = True
    try:
        from gradlint.probe.instrument import Recorder

        _connect()
        _recorder = Recorder(_channel.send, max_steps=int(os.environ[STEPS_ENV]), stop=_stop)
        _recorder.install()
    finally:
        _starting = False


def _restart_after_fork() -> None:
    """A forked process (a Hogwild or DataLoader worker) inherits the hooks and the parent's connection: give it
    its own of both."""
    global _channel, _recorder
    if _channel is None:
        return
    _channel.drop()
    _channel = None
    if _recorder is None:
        return
    _recorder.uninstall()
    _recorder = None
    try:
        start()
    except OSError as exc:  # the parent is gone
        print(f"gradlint probe: not watching process {os.getpid()}: {exc}", file=sys.stderr)


def _flush() -> None:
    if _recorder is None:
        return
    try:
        _recorder.finish()
    except BaseException as exc:  # a failure here must not hide how the script ended
        print(f"gradlint probe: could not flush the last step: {exc}", file=sys.stderr)


def _end(end: EndRecord) -> None:
    """Flush the records, say how the run ended, and end the process without waiting for anything."""
    _flush()
    if _channel is not None:
        calls = (_recorder.forward_calls, _recorder.backward_calls) if _recorder is not None else (0, 0)
        _channel.send(EndRecord(end.status, end.exit_code, end.error, *calls).to_json())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    # Skip interpreter shutdown: DataLoader workers and non-daemon threads of a stopped script would hold it.
    os._exit(0)


def _stop() -> None:
    # Called from a step hook once the step budget is spent or a value went non-finite. Ending the process
    # here, not raising, is what stops scripts that swallow exceptions or train in a thread.
    _end(EndRecord("stopped"))


def main() -> None:
    script, *script_args = sys.argv[1:]
    _connect()  # the hooks come with the script's own `import torch` (the start-up hook), as fast as `python SCRIPT`
    # Behave as `python SCRIPT ARGS` would: its argv, its folder first on sys.path, the same working folder.
    sys.argv = [script, *script_args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    end: EndRecord
    try:
        runpy.run_path(script, run_name="__main__")
        end = EndRecord("completed")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            end = EndRecord("exit", exit_code=exc.code or 0)
        else:
            print(exc.code, file=sys.stderr)  # as Python prints sys.exit("message")
            end = EndRecord("exit", exit_code=1)
    except BaseException as exc:  # the script's own failure is evidence, not our crash
        traceback.print_exc()
        end = EndRecord("error", error=f"{type(exc).__name__}: {exc}".strip())
    _end(end)
