"""Benchmark of the probe, run by hand: `python tests/bench/bench_probe.py [--pairs N] [--skip-fixtures]`.

1. Overhead: one mid-sized MLP (about 4.2M parameters, Adam, batch 256, CPU) trains in this one process with
   and without the probe's instrumentation, alternating step by step; each run reports the median step time
   of each and their ratio, and the figure is the median ratio of --runs runs (the target is <= 1.05). On
   this machine kind one step's time varies by +-15% from the next, so a run takes 100 steps each way: with
   blocks of 6, five runs' ratios spread from 1.04 to 1.17 for the same code.
2. Time to verdict: `python -m gradlint probe FIXTURE --steps 12 --format json` for every fixture, wall time
   from the command's start to its exit (which is when the verdict is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures" / "probe"
FIXTURE_ARGS = {"healthy_needs_args.py": ["--", "--lr", "0.001"]}
NOT_FIXTURES = {"sibling_model.py"}  # a module another fixture imports, not a script to probe


def _time_step(model, optimizer, features, targets, i: int) -> float:
    import torch

    batch = slice((i % 4) * 256, (i % 4 + 1) * 256)
    start = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(features[batch]), targets[batch])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def measure_overhead(pairs: int) -> tuple[float, float, int]:
    """Median step time without and with the probe, the two alternating step by step (which goes first
    alternating too), so that the machine's drift over the run weighs on both alike."""
    import torch
    from torch import nn

    sys.path.insert(0, str(REPO))
    from gradlint.probe.instrument import Recorder

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 1024), nn.ReLU(),
        nn.Linear(1024, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    features = torch.randn(1024, 1024)
    targets = torch.randint(0, 10, (1024,))
    for i in range(5):  # warm up allocator and kernels
        _time_step(model, optimizer, features, targets, i)
    plain: list[float] = []
    probed: list[float] = []
    records: list[dict] = []
    recorder = Recorder(records.append)  # one recorder for the run, as the probe has
    for i in range(pairs):
        for with_probe in (i % 2 == 0, i % 2 == 1):
            if not with_probe:
                plain.append(_time_step(model, optimizer, features, targets, i))
                continue
            recorder.install()
            try:
                probed.append(_time_step(model, optimizer, features, targets, i))
            finally:
                recorder.uninstall()
    params = sum(p.numel() for p in model.parameters())
    assert sum(r["type"] == "step" for r in records) == pairs, "the probe missed steps"
    return statistics.median(plain), statistics.median(probed), params


def time_to_verdict(name: str, steps: int) -> tuple[float, str, int]:
    command = [sys.executable, "-m", "gradlint", "probe", str(FIXTURES / name), "--steps", str(steps)]
    command += ["--format", "json", *FIXTURE_ARGS.get(name, [])]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - start
    verdict = json.loads(done.stdout)["verdict"] if done.stdout.strip().startswith("{") else "error"
    return elapsed, verdict, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100, help="steps with and without the probe in each run")
    parser.add_argument("--probe-steps", type=int, default=12)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-fixtures", action="store_true")
    options = parser.parse_args()

    ratios = []
    for run in range(options.runs):
        plain, probed, params = measure_overhead(options.pairs)
        if run == 0:
            import torch

            print(
                f"overhead: MLP with {params / 1e6:.1f}M parameters, Adam, batch 256, CPU, "
                f"{torch.get_num_threads()} threads, {options.pairs} steps each way per run"
            )
        print(f"  run {run + 1}: median step without probe {plain * 1e3:.1f} ms, with probe {probed * 1e3:.1f} ms, ratio {probed / plain:.3f}")
        ratios.append(probed / plain)
    print(f"  median ratio of {options.runs} runs {statistics.median(ratios):.3f} (target <= 1.05)")
    if options.skip_fixtures:
        return
    print(f"\ntime to verdict (gradlint probe --steps {options.probe_steps}):")
    for script in sorted(FIXTURES.glob("*.py")):
        if script.name in NOT_FIXTURES:
            continue
        elapsed, verdict, code = time_to_verdict(script.name, options.probe_steps)
        print(f"  {script.name:32s} {elapsed:6.2f} s  {verdict} (exit {code})")


if __name__ == "__main__":
    main()
