"""Worker processes: each file is checked in a child process, so that one file costs one file.

libcst's native parser can overflow its stack on deep trees (a segmentation fault, which no `except`
catches) and can take minutes on some shapes; the same holds for any bug of ours nobody has met yet. The
parent hands batches of files to workers and is told which file (and which neighbouring file it reads)
each worker is on. A worker that dies or runs past the time limit is ended and replaced: the file it was
on becomes a failure, a neighbouring file it was reading is added to the files no worker reads again,
and the rest of its batch goes back in the queue.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Sequence

# work(batch, avoid, notify) -> None; it calls notify(("start", i)), notify(("done", i, result)),
# and notify(("enter", path)) / notify(("leave", path)) around reading a neighbouring file. It is
# sent to the worker with each batch, so it must pickle.
Work = Callable[[list, frozenset, Callable[[tuple], None]], None]


@dataclass(frozen=True)
class Job:
    """Work named by module and function, with its leading arguments: the parent sends it without
    importing that module (the worker imports it, or has already: see `prestart`)."""

    module: str
    function: str
    args: tuple = ()

    def __call__(self, batch: list, avoid: frozenset, notify: Callable[[tuple], None]) -> None:
        getattr(importlib.import_module(self.module), self.function)(*self.args, batch, avoid, notify)


@dataclass
class Failure:
    """A task's file (or a neighbour it read, `neighbour`) crashed its worker or ran out of time."""

    reason: str  # "crashed" or "timeout"
    neighbour: str | None = None


@dataclass
class _Worker:
    process: Any
    conn: Connection
    batch: list = field(default_factory=list)
    position: int = -1  # index in `batch` of the task in progress
    started: float = 0.0
    reading: list[str] = field(default_factory=list)  # neighbours being read, innermost last


def _context():
    # fork starts a worker in milliseconds with everything already imported; elsewhere, spawn.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


# Python's default of 1,000 frames turns valid files with a chain of a few hundred `and`s or `+`s into
# internal errors in our tree walks. A worker may go deeper: should the C stack run out first, the worker
# dies and its file costs one GL001, as any crash does.
RECURSION_LIMIT = 20_000


def _serve(conn: Connection, preload: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends its workers
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    if preload is not None:
        importlib.import_module(preload)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        work, batch, avoid = message
        work(batch, avoid, conn.send)
        conn.send(("batch",))


# Workers started by `prestart`, waiting for the run that needs them.
_spares: list[_Worker] = []


def _start(context, preload: str | None = None) -> _Worker:
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, preload), daemon=True)
    process.start()
    child.close()
    return _Worker(process, parent)


def prestart(preload: str) -> None:
    """Start a worker now that imports `preload` while this process goes on (reading its options,
    finding files); the next `run_isolated` uses it. A one-file run (pre-commit) spends most of its
    time importing, and the two imports then overlap. Only where fork is cheap."""
    context = _context()
    if context.get_start_method() == "fork":
        _spares.append(_start(context, preload))


def run_isolated(
    batches: Sequence[list], work: Work, workers: int, timeout: float
) -> Iterator[tuple[Any, Any, Failure | None]]:
    """Yield (task, result, None) for each task, or (task, None, failure) for one that failed."""
    context = _context()
    queue: deque[list] = deque(b for b in batches if b)
    avoid: set[str] = set()
    pool: list[_Worker] = []
    results: list[tuple[Any, Any, Failure | None]] = []

    def start() -> _Worker:
        while _spares:
            spare = _spares.pop()
            if spare.process.is_alive():
                return spare
            _end(spare)
        return _start(context)

    def give(worker: _Worker) -> None:
        worker.batch = queue.popleft()
        worker.position = -1
        worker.reading = []
        worker.started = time.monotonic()
        worker.conn.send((work, worker.batch, frozenset(avoid)))

    def lost(worker: _Worker, reason: str) -> list[tuple[Any, Any, Failure | None]]:
        """The worker is gone: blame its file (or neighbour), requeue the rest, replace it."""
        _end(worker)
        pool.remove(worker)
        failed = []
        rest = worker.batch[max(worker.position, 0) :]
        if worker.reading:
            # The neighbour is to blame, not the file that imported it: no worker reads that neighbour
            # again, and the file is checked again without it.
            neighbour = worker.reading[-1]
            avoid.add(neighbour)
            failed.append((rest[0], None, Failure(reason, neighbour)))
        elif worker.position >= 0:
            failed.append((rest[0], None, Failure(reason)))
            rest = rest[1:]
        if rest:
            queue.appendleft(rest)
        if queue:
            pool.append(start())
        return failed

    try:
        for _ in range(min(workers, len(queue))):
            pool.append(start())
        while pool:
            for worker in pool:
                if not worker.batch and queue:
                    give(worker)
            busy = [w for w in pool if w.batch]
            if not busy:
                break
            now = time.monotonic()
            wait_for = max(0.0, min(w.started + timeout - now for w in busy))
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], wait_for)
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    try:
                        _read(worker, results.append)
                    except (EOFError, OSError):
                        results.extend(lost(worker, "crashed"))
                        continue
                    if worker.batch and not worker.process.is_alive():
                        results.extend(lost(worker, "crashed"))
                        continue
                if worker.batch and time.monotonic() - worker.started > timeout:
                    results.extend(lost(worker, "timeout"))
            yield from results
            results.clear()
    finally:
        for worker in pool:
            _end(worker, gently=True)


def _read(worker: _Worker, emit: Callable[[tuple], None]) -> None:
    """Take every message the worker has sent so far."""
    while worker.batch and worker.conn.poll():
        message = worker.conn.recv()
        kind = message[0]
        if kind == "start":
            worker.position = message[1]
            worker.started = time.monotonic()
        elif kind == "done":
            emit((worker.batch[message[1]], message[2], None))
        elif kind == "enter":
            worker.reading.append(message[1])
        elif kind == "leave":
            worker.reading.pop()
        elif kind == "batch":
            worker.batch = []


def _end(worker: _Worker, gently: bool = False) -> None:
    try:
        if gently and worker.process.is_alive():
            worker.conn.send(None)
            worker.process.join(1.0)
        if worker.process.is_alive():
            os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join()
    except (OSError, ValueError):
        pass
    worker.conn.close()
