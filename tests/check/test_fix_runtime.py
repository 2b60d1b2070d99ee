"""Proof by running: every fixed script in fixtures/fix trains for a few real steps (torch CPU) without an
exception, and every optimizer step sees gradients clipped to the threshold the fix (or the script) set.

A global optimizer step pre-hook records, at each step, the norm of the gradients over exactly the
parameters that optimizer updates. The scripts scale their losses so that the unclipped norm is far above 1.
"""
from __future__ import annotations

import math
import runpy
from pathlib import Path

import pytest

from gradlint.config import Settings
from gradlint.fix.apply import fix_text

torch = pytest.importorskip("torch")
from torch.optim.optimizer import register_optimizer_step_pre_hook  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# Keras fixtures need TensorFlow, which the test environment does not install.
RUNNABLE = sorted(p for p in (REPO / "fixtures" / "fix").glob("*.py") if "tensorflow" not in p.read_text())
CLIPPING = [p for p in RUNNABLE if "clip" in p.read_text() or p.stem.startswith("GL101")]
MAX_NORM = 1.0
pytestmark = pytest.mark.slow  # about a second a case: lint, fix, then real steps


def step_norms(text: str, tmp_path: Path) -> list[float]:
    """Run a script and return the gradient norm each optimizer step saw, over that optimizer's parameters."""
    norms: list[float] = []

    def record(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norms.append(math.sqrt(sum(float(g.pow(2).sum()) for g in grads)))

    script = tmp_path / "train.py"
    script.write_text(text, encoding="utf-8")
    torch.manual_seed(0)
    handle = register_optimizer_step_pre_hook(record)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        handle.remove()
    return norms


def fixed(case: Path) -> str:
    return fix_text(case.read_text(encoding="utf-8"), case.name, Settings())[0]


@pytest.mark.parametrize("case", RUNNABLE, ids=lambda p: p.stem)
def test_fixed_script_runs(case, tmp_path):
    assert step_norms(fixed(case), tmp_path)


@pytest.mark.parametrize("case", CLIPPING, ids=lambda p: p.stem)
def test_fixed_script_clips_every_step_of_every_optimizer(case, tmp_path):
    norms = step_norms(fixed(case), tmp_path)
    assert norms and max(norms) <= MAX_NORM * (1 + 1e-4), norms
    # Clipping scaled gradients would leave norms near 1 / loss scale: the fix clips the true ones.
    assert min(norms) > 0.1, norms


@pytest.mark.parametrize("case", [p for p in CLIPPING if p.stem.startswith(("GL101", "GL102"))], ids=lambda p: p.stem)
def test_unfixed_script_steps_with_norms_far_above_the_threshold(case, tmp_path):
    # Without the fix the same steps see large gradients: the clip above is what bounds them.
    assert max(step_norms(case.read_text(encoding="utf-8"), tmp_path)) > 10 * MAX_NORM
