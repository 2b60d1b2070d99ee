"""The probe's side of the child process: install the hooks, run the user's script as __main__, report.

Started by the runner as `python -c <bootstrap> RECORD_FD MAX_STEPS SCRIPT [ARGS...]`. Records go as JSON lines
to RECORD_FD, a pipe of their own, so the script's stdout and stderr stay the script's.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from typing import Any, TextIO

from gradlint.probe.records import EndRecord


class _StepBudgetSpent(BaseException):
    """Raised from a hook to end the script. A BaseException, so `except Exception:` in scripts lets it pass."""


def _writer(channel: TextIO) -> Any:
    def emit(record: dict[str, Any]) -> None:
        try:
            channel.write(json.dumps(record) + "\n")
            channel.flush()  # the parent must have the evidence even if the script dies next
        except (BrokenPipeError, ValueError):
            pass  # the parent is gone: nobody to tell

    return emit


def _stop() -> None:
    raise _StepBudgetSpent()


def main() -> None:
    record_fd, max_steps, script, *script_args = sys.argv[1:]
    channel = os.fdopen(int(record_fd), "w", encoding="utf-8")
    emit = _writer(channel)

    from gradlint.probe.instrument import Recorder

    recorder = Recorder(emit, max_steps=int(max_steps), stop=_stop)
    recorder.install()

    # Behave as `python SCRIPT ARGS` would: its argv, its folder first on sys.path, the same working folder.
    sys.argv = [script, *script_args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    end: EndRecord
    try:
        runpy.run_path(script, run_name="__main__")
        end = EndRecord("completed")
    except _StepBudgetSpent:
        end = EndRecord("stopped")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) or exc.code is None else 1
        end = EndRecord("exit", exit_code=0 if code is None else code)
    except BaseException as exc:  # the script's own failure is evidence, not our crash
        traceback.print_exc()
        end = EndRecord("error", error=f"{type(exc).__name__}: {exc}".strip())
    try:
        recorder.finish()
    except BaseException as exc:  # a failure here must not hide how the script ended
        print(f"gradlint probe: could not flush the last step: {exc}", file=sys.stderr)
    end = EndRecord(end.status, end.exit_code, end.error, recorder.forward_calls, recorder.backward_calls)
    emit(end.to_json())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    channel.close()
    # Skip interpreter shutdown: DataLoader workers and non-daemon threads of a stopped script would hold it.
    os._exit(0)


if __name__ == "__main__":
    main()
