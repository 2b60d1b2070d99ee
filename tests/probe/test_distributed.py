"""`gradlint probe --nproc-per-node N`: torchrun's launch of the script, every rank watched, one verdict."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from probe_helpers import FIXTURES, run_cli

from gradlint.probe.records import RunInfo, StepRecord
from gradlint.probe.runner import judge


def _probe(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("torch")
    # A real process: exactly one report must reach stdout, whatever the ranks print.
    command = [sys.executable, "-m", "gradlint", "probe", "--nproc-per-node", "2", str(FIXTURES / name), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


# G of the first steps of ddp_healthy.py, which fsdp_healthy.py shards: the combined norm must be the same.
DDP_HEALTHY_G = [1.7535371, 1.7289944, 1.5888443]


def _ranks(data: dict) -> str:
    return next(f["message"] for f in data["findings"] if f["id"] == "ranks")


@pytest.mark.slow
def test_healthy_ddp_gives_one_report_and_one_verdict(tmp_path):
    target = tmp_path / "report.json"
    out = _probe("ddp_healthy.py", "--steps", "8", "--format", "json", "--output", str(target))
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    data = json.loads(target.read_text())  # one JSON object: one write
    assert data["verdict"] == "healthy"
    assert data["steps"] == 8
    assert {step["rank"] for step in data["history"]} == {0}
    ranks = _ranks(data)
    assert ranks.startswith("2 ranks with synchronised gradients (DDP): rank 0's norms are the run's")
    assert "rank 0: 8 steps" in ranks and "rank 1: 8 steps" in ranks
    assert [step["grad_norm"] for step in data["history"][:3]] == pytest.approx(DDP_HEALTHY_G, rel=1e-5)


@pytest.mark.slow
def test_sharded_fsdp_ranks_combine_into_the_models_norm():
    out = _probe("fsdp_healthy.py", "--steps", "8", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["verdict"] == "healthy"
    assert data["steps"] == 8
    assert _ranks(data).startswith("2 ranks holding shards: the norms are combined across ranks (sum of squares)")
    assert [step["grad_norm"] for step in data["history"][:3]] == pytest.approx(DDP_HEALTHY_G, rel=1e-5)


@pytest.mark.slow
def test_exploding_ddp_names_the_rank_that_went_non_finite_first():
    out = _probe("ddp_exploding.py", "--steps", "12", "--format", "json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["verdict"] == "exploding"
    assert "right after a huge update" in data["reason"]
    ranks = _ranks(data)
    assert "rank 1 went non-finite first" in ranks
    rank_1 = ranks.rsplit("rank 1: ", 1)[1]
    assert rank_1.startswith("7 steps") and "loss" in rank_1 and "non-finite at step 7" in rank_1


def test_the_probe_run_by_torchrun_asks_for_nproc_per_node(monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    run = run_cli(str(FIXTURES / "ddp_healthy.py"))
    assert run.exit_code == 2
    assert run.stdout == ""
    assert "run `gradlint probe --nproc-per-node N SCRIPT` instead" in run.stderr
    assert run.stderr.strip().count("\n") == 0


def _series(pid: int, rank: int | None, grads: list[float], params: list[float]) -> list[StepRecord]:
    return [
        StepRecord(i + 1, "optimizer", 1.0, g, g, p, 0.01, 0.1, False, None, {"w": g}, {"w": p}, pid=pid, rank=rank)
        for i, (g, p) in enumerate(zip(grads, params))
    ]


def test_synchronised_ranks_are_judged_on_rank_0():
    steps = _series(11, 1, [3.0, 2.0, 1.0], [5.0] * 3) + _series(10, 0, [3.0, 2.0, 1.0], [5.0] * 3)
    result = judge(steps, [], RunInfo())
    assert result.verdict == "healthy"
    assert [s.rank for s in result.steps] == [0, 0, 0]
    assert result.findings[0].id == "ranks"


def test_sharded_ranks_combine_their_norms_as_one_model():
    steps = _series(10, 0, [3.0, 3.0, 3.0], [1.0] * 3) + _series(11, 1, [4.0, 4.0, 4.0], [2.0] * 3)
    result = judge(steps, [], RunInfo())
    assert [s.grad_norm for s in result.steps] == [5.0, 5.0, 5.0]
    assert result.steps[0].grad_norms == {"w": 5.0}
    assert result.findings[0].message.startswith("2 ranks holding shards")


def test_sharded_steps_between_parameter_norms_weigh_updates_by_the_norms_measured_last():
    ranks = [_series(10, 0, [3.0, 3.0, 3.0], [3.0] * 3), _series(11, 1, [4.0, 4.0, 4.0], [4.0] * 3)]
    ranks[0][0].update_ratio, ranks[1][0].update_ratio = 0.002, 0.004
    for record in ranks[1][1:]:  # rank 1 measured its parameters on its first step only
        record.param_norm, record.param_norms = None, {}
    result = judge(ranks[0] + ranks[1], [], RunInfo())
    assert [s.param_norm for s in result.steps] == [5.0, None, None]
    # (0.002 x 3, 0.004 x 4) over the norm 5, then (0.01 x 3, 0.01 x 4), rank 1 still weighed by its 4.
    assert [s.update_ratio for s in result.steps] == pytest.approx([(0.006**2 + 0.016**2) ** 0.5 / 5, 0.01, 0.01])


def test_independent_processes_give_the_most_severe_verdict():
    growing = [10.0**i for i in range(12)]
    steps = _series(10, None, [1.0] * 12, [1.0] * 12) + _series(11, None, growing, [1.0] * 12)
    result = judge(steps, [], RunInfo())
    assert result.verdict == "exploding"
    assert {s.pid for s in result.steps} == {11}
    assert "the verdict is pid 11's" in result.findings[0].message
