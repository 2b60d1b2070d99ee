"""Benchmark of the probe, run by hand: `python tests/bench/bench_probe.py [--steps-per-block N]`.

1. Overhead: one mid-sized MLP (about 4.2M parameters, Adam, batch 256, CPU) trains in alternating blocks
   with and without the probe's instrumentation in this one process; each run reports the median step time
   of each and their ratio, and the figure is the median ratio of --runs runs (the target is <= 1.05).
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


def _time_steps(model, optimizer, features, targets, count: int) -> list[float]:
    import torch

    times = []
    for i in range(count):
        batch = slice((i % 4) * 256, (i % 4 + 1) * 256)
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(features[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def measure_overhead(blocks: int, steps_per_block: int) -> tuple[float, float, int]:
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
    _time_steps(model, optimizer, features, targets, 5)  # warm up allocator and kernels
    plain: list[float] = []
    probed: list[float] = []
    records: list[dict] = []
    for _ in range(blocks):
        plain += _time_steps(model, optimizer, features, targets, steps_per_block)
        recorder = Recorder(records.append)
        recorder.install()
        try:
            probed += _time_steps(model, optimizer, features, targets, steps_per_block)
        finally:
            recorder.uninstall()
    params = sum(p.numel() for p in model.parameters())
    assert sum(r["type"] == "step" for r in records) == blocks * steps_per_block, "the probe missed steps"
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
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--steps-per-block", type=int, default=6)
    parser.add_argument("--probe-steps", type=int, default=12)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-fixtures", action="store_true")
    options = parser.parse_args()

    ratios = []
    for run in range(options.runs):
        plain, probed, params = measure_overhead(options.blocks, options.steps_per_block)
        if run == 0:
            print(f"overhead: MLP with {params / 1e6:.1f}M parameters, Adam, batch 256, CPU")
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
