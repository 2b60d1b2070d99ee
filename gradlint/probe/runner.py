"""The probe's parent side: start the script (or torchrun with it), collect every process's records, enforce the
timeout, and judge the run across the processes that trained."""
from __future__ import annotations

import collections
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from gradlint.probe.analysis import ProbeFinding, ProbeResult, analyze
from gradlint.probe.child import RECORDS_ENV, STEPS_ENV
from gradlint.probe.records import EndRecord, RecurrentRecord, RunInfo, StepRecord, is_finite

OUTPUT_TAIL_LINES = 20
OUTPUT_LINE_CHARS = 300  # one progress bar or logged tensor can be megabytes long
_STARTUP = str(Path(__file__).resolve().parent / "startup")
_BOOTSTRAP = "from gradlint.probe.child import main; main()"  # gradlint is imported by the start-up hook
# Variables torchrun sets: a script that fails for want of one was meant to run under it.
_TORCHRUN_NEEDED = re.compile(r"\b(RANK|LOCAL_RANK|WORLD_SIZE|LOCAL_WORLD_SIZE|MASTER_ADDR|MASTER_PORT)\b|env://")
# Which process's verdict speaks for a run of independent processes: the first that is a problem.
_SEVERITY = ["exploding", "non-finite", "vanishing", "clipped", "healthy", "inconclusive"]


@dataclass
class _Collected:
    steps: list[StepRecord] = field(default_factory=list)
    recurrent: list[tuple[int, RecurrentRecord]] = field(default_factory=list)  # with the pid that sent it
    ends: list[EndRecord] = field(default_factory=list)
    live: set[int] = field(default_factory=set)  # pids whose connection is open: alive, and ours to end


def _read_records(
    connection: socket.socket, collected: _Collected, on_step: Callable[[StepRecord], None] | None
) -> None:
    pid = None
    with connection, connection.makefile("r", encoding="utf-8", errors="replace") as stream:
        for line in stream:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed process carries nothing we can use
            kind = data.get("type")
            if kind == "process":
                pid = data["pid"]
                collected.live.add(pid)
            elif kind == "step":
                record = StepRecord.from_json(data)
                collected.steps.append(record)
                if on_step is not None:
                    on_step(record)
            elif kind == "recurrent":
                collected.recurrent.append((data["pid"], RecurrentRecord.from_json(data)))
            elif kind == "end":
                collected.ends.append(EndRecord.from_json(data))
    collected.live.discard(pid)


def _accept(
    server: socket.socket,
    collected: _Collected,
    on_step: Callable[[StepRecord], None] | None,
    readers: list[threading.Thread],
    done: threading.Event,
) -> None:
    while not done.is_set():
        try:
            connection, _ = server.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        connection.settimeout(None)
        reader = threading.Thread(target=_read_records, args=(connection, collected, on_step), daemon=True)
        reader.start()
        readers.append(reader)


def _clip_line(line: str) -> str:
    line = line.rstrip("\n")
    if len(line) > OUTPUT_LINE_CHARS:
        return f"{line[:OUTPUT_LINE_CHARS]} ... ({len(line):,} characters)"
    return line


def _read_output(stream: IO[str], tail: collections.deque[str], echo: IO[str] | None) -> None:
    for line in stream:
        tail.append(_clip_line(line))
        if echo is not None:
            echo.write(line)
            echo.flush()


def _end_processes(group: int, pids: set[int]) -> None:
    """End the script's process group, and the watched processes in other sessions (torchrun's ranks)."""
    for kill, target in [(os.killpg, group), *((os.kill, pid) for pid in list(pids))]:
        try:
            kill(target, signal.SIGKILL)
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
    nproc_per_node: int | None = None,
) -> ProbeResult:
    """Run `python SCRIPT ARGS` (or torchrun's launch of it, with nproc_per_node) under the probe for at most
    `steps` steps per process and `timeout` seconds.

    echo, when given, receives the script's stdout and stderr as they come; otherwise only their last lines
    are kept for the report.
    """
    command = [sys.executable, "-c", _BOOTSTRAP, str(script), *args]
    if nproc_per_node is not None:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1"]
        command = [*launcher, "--nproc-per-node", str(nproc_per_node), "--no-python", *command]
    collected = _Collected()
    tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
    with tempfile.TemporaryDirectory(prefix="gradlint-probe-") as folder, socket.socket(socket.AF_UNIX) as server:
        address = os.path.join(folder, "records")
        server.bind(address)
        server.listen()
        server.settimeout(0.2)  # so the accepting thread sees the run end
        path = os.pathsep.join(p for p in (_STARTUP, os.environ.get("PYTHONPATH")) if p)
        env = dict(
            os.environ,
            PYTHONUNBUFFERED="1",  # so --show-output streams and a crash loses no lines
            PYTHONPATH=path,
            **{RECORDS_ENV: address, STEPS_ENV: str(steps)},
        )
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group, so DataLoader workers end with it
        )
        done = threading.Event()
        readers: list[threading.Thread] = []
        accepting = threading.Thread(target=_accept, args=(server, collected, on_step, readers, done), daemon=True)
        output = threading.Thread(target=_read_output, args=(process.stdout, tail, echo), daemon=True)
        accepting.start()
        output.start()
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            # Also on success: workers the script left behind still hold the pipes open.
            _end_processes(process.pid, collected.live)
            process.wait()
            done.set()
            accepting.join()
        deadline = time.monotonic() + 5
        for reader in [*readers, output]:
            reader.join(timeout=max(0.0, deadline - time.monotonic()))
    end = _run_end(collected.ends, process.pid, distributed=nproc_per_node is not None)
    run = RunInfo(end=end, timed_out=timed_out, returncode=process.returncode, output_tail=list(tail))
    result = judge(collected.steps, collected.recurrent, run)
    if result.verdict == "inconclusive" and nproc_per_node is None and end is not None and end.error:
        if _TORCHRUN_NEEDED.search(end.error):
            result.reason += "; it needs torchrun's variables: run it with --nproc-per-node N"
    return result


def _run_end(ends: list[EndRecord], main_pid: int, *, distributed: bool) -> EndRecord | None:
    """How the run ended: the script's own process; under torchrun a rank the probe stopped (the others then
    fail in their next collective), else a rank that failed, else rank 0."""
    if not distributed:
        return next((e for e in ends if e.pid == main_pid), None)
    ranks = [e for e in ends if e.rank is not None]
    ranks.sort(key=lambda e: (e.status != "stopped", e.status != "error", e.rank))
    return ranks[0] if ranks else None


def judge(steps: list[StepRecord], recurrent: list[tuple[int, RecurrentRecord]], run: RunInfo) -> ProbeResult:
    """One verdict over every process that trained.

    Ranks whose gradients and weights agree step by step were synchronised (DDP): one rank's series is the
    run's, rank 0's unless another went non-finite first. Ranks that disagree hold shards (FSDP): the run's
    norms are combined across them. Processes without ranks (spawn or Hogwild workers) train on their own:
    each is judged, and the most severe verdict is the run's.
    """
    by_process: dict[int | None, list[StepRecord]] = {}
    for record in steps:
        by_process.setdefault(record.pid, []).append(record)
    if len(by_process) <= 1:
        return analyze(sorted(steps, key=lambda s: s.step), [r for _, r in recurrent], run)
    series = [sorted(s, key=lambda r: r.step) for s in by_process.values()]
    if all(s[0].rank is not None for s in series):
        series.sort(key=lambda s: s[0].rank)
        summary = "; ".join(f"rank {s[0].rank}: {_evidence(s)}" for s in series)
        first_bad = _first_nonfinite(series)
        named = f"; rank {first_bad[0].rank} went non-finite first" if first_bad else ""
        if _synchronised(series):
            chosen = first_bad or series[0]
            result = analyze(chosen, _of(recurrent, chosen[0].pid), run)
            note = f"{len(series)} ranks with synchronised gradients (DDP): rank {chosen[0].rank}'s norms are the run's"
        else:
            result = analyze(_combined(series), _of(recurrent, series[0][0].pid), run)
            note = f"{len(series)} ranks holding shards: the norms are combined across ranks (sum of squares)"
        result.findings.insert(0, ProbeFinding("ranks", f"{note}{named}; {summary}"))
        return result
    results = [analyze(s, _of(recurrent, s[0].pid), run) for s in series]
    worst = min(range(len(series)), key=lambda i: _SEVERITY.index(results[i].verdict))
    result = results[worst]
    judged = "; ".join(f"pid {s[0].pid}: {r.verdict}, {_evidence(s)}" for s, r in zip(series, results))
    result.findings.insert(
        0,
        ProbeFinding(
            "processes",
            f"{len(series)} processes trained, each judged on its own; the verdict is pid {series[worst][0].pid}'s. "
            f"{judged}",
        ),
    )
    return result


def _of(recurrent: list[tuple[int, RecurrentRecord]], pid: int | None) -> list[RecurrentRecord]:
    return [r for sender, r in recurrent if sender == pid]


def _evidence(series: list[StepRecord]) -> str:
    grads = [s.grad_norm for s in series]
    bad = next((s for s in series if s.nonfinite), None)
    went = f", {'/'.join(bad.nonfinite)} non-finite at step {bad.step}" if bad else ""
    return f"{len(series)} steps, G {_fmt(grads[0])} -> {_fmt(grads[-1])}{went}"


def _first_nonfinite(series: list[list[StepRecord]]) -> list[StepRecord] | None:
    """The rank that went non-finite first; on the same step, the one whose record says more (its loss, the
    origin)."""
    bad = []
    for s in series:
        record = next((r for r in s if r.nonfinite), None)
        if record is not None:
            bad.append(((record.step, -len(record.nonfinite), record.nonfinite_origin is None, record.rank), s))
    return min(bad)[1] if bad else None


def _synchronised(series: list[list[StepRecord]]) -> bool:
    first = {r.step: r for r in series[0]}
    for other in series[1:]:
        for record in other:
            mine = first.get(record.step)
            if mine is None:
                continue
            for a, b in ((mine.grad_norm, record.grad_norm), (mine.param_norm, record.param_norm)):
                if is_finite(a) and is_finite(b) and abs(a - b) > 1e-5 * max(abs(a), abs(b)):
                    return False
    return True


def _combined(series: list[list[StepRecord]]) -> list[StepRecord]:
    """One record per step that every rank took, with norms combined as the norm of the whole model."""
    by_step = [{r.step: r for r in s} for s in series]
    common = sorted(set.intersection(*(set(s) for s in by_step)))
    combined = []
    # Each rank measures its parameter norms when its own updates call for it (instrument.PARAM_NORM_EVERY):
    # a step that some rank did not measure has no combined norm, and weighs the shards' updates by the norms
    # each rank measured last, which quiet steps move by less than a hundredth each.
    weights: list[float | None] = [None] * len(series)
    for step in common:
        records = [s[step] for s in by_step]
        first = records[0]
        weights = [w if r.param_norm is None else r.param_norm for w, r in zip(weights, records)]
        measured = all(r.param_norm is not None for r in records)
        param_norm = _root_sum_squares(r.param_norm for r in records) if measured else None
        update = None
        if all(is_finite(r.update_ratio) and is_finite(w) for r, w in zip(records, weights)):
            total = _root_sum_squares(weights)
            if total > 0:
                # Each shard's update weighted by its share of the weights.
                update = _root_sum_squares(r.update_ratio * w for r, w in zip(records, weights)) / total
        grad_norms: dict[str, float] = {}
        param_norms: dict[str, float] = {}
        for r in records:
            for target, values in ((grad_norms, r.grad_norms), (param_norms, r.param_norms)):
                for name, value in values.items():
                    target[name] = _root_sum_squares([target.get(name, 0.0), value])
        cleared = [r.grads_cleared for r in records]
        combined.append(
            StepRecord(
                step=step,
                kind=first.kind,
                loss=first.loss,
                grad_norm=_root_sum_squares(r.grad_norm for r in records),
                grad_norm_after=_root_sum_squares(r.grad_norm_after for r in records),
                param_norm=param_norm,
                update_ratio=update,
                lr=first.lr,
                clipped=any(r.clipped for r in records),
                clip_threshold=first.clip_threshold,
                grad_norms=grad_norms,
                param_norms=param_norms,
                nonfinite=sorted({k for r in records for k in r.nonfinite}),
                nonfinite_origin=next((r.nonfinite_origin for r in records if r.nonfinite_origin), None),
                grads_cleared=None if None in cleared else all(cleared),
            )
        )
    return combined


def _root_sum_squares(values) -> float:
    return sum(v * v for v in values) ** 0.5


def _fmt(value: float) -> str:
    return f"{value:.3g}" if is_finite(value) and 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"
