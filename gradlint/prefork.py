"""A worker forked first thing in `gradlint check`, before anything else is imported.

A one-file run (pre-commit) is mostly imports: the worker's (libcst and the rules) and the parent's (the
command line). Forked at once, the worker starts on its imports a few tens of milliseconds sooner than if this
process first imported what forking with multiprocessing takes (multiprocessing, typing, dataclasses); so this
module imports only the interpreter's built-in modules. gradlint.workers takes the worker up (`spare`).
"""
from __future__ import annotations

import _socket
import atexit
import os
import sys

# (pid, this process's end of the worker's socket, a pipe end that reads EOF once the worker has exited).
spare: tuple[int, int, int] | None = None


def fork(preload: str) -> None:
    global spare
    if not hasattr(os, "fork"):
        return
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    exited, alive = os.pipe()
    pid = os.fork()
    if pid == 0:
        ours.close()
        os.close(exited)
        code = 1
        try:
            from multiprocessing.connection import Connection

            from gradlint.workers import serve

            serve(Connection(theirs.detach()), preload)
            code = 0
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # as multiprocessing's children do: none of the parent's exit handlers
    theirs.close()
    os.close(alive)
    spare = (pid, ours.detach(), exited)
    atexit.register(_end_unused)


def _end_unused() -> None:
    """A run that ended before it needed the worker (a bad option, a missing path) ends it: it holds this
    process's stdout and stderr, which a caller reads to their end."""
    global spare
    if spare is not None:
        import signal

        (pid, ours, exited), spare = spare, None
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass
        for fd in (ours, exited):
            os.close(fd)
