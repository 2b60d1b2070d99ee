"""--plot: a heatmap of log10 gradient norm (parameters by steps) over the curve of G. Needs matplotlib."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from gradlint.probe.analysis import ProbeResult


def plotting_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def write_plot(result: ProbeResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: never open a window, work without a display
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(name for s in result.steps for name in s.grad_norms))
    grid = [
        [
            math.log10(v) if (v := s.grad_norms.get(name)) is not None and v > 0 and math.isfinite(v) else math.nan
            for s in result.steps
        ]
        for name in names
    ]
    figure, (curve, heat) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 3 + 0.25 * len(names)), layout="constrained", height_ratios=[1, max(1, len(names) / 6)]
    )
    steps = [s.step for s in result.steps]
    curve.semilogy(steps, [s.grad_norm for s in result.steps], marker="o", label="G (before clipping)")
    if any(s.clipped for s in result.steps):
        curve.semilogy(steps, [s.grad_norm_after for s in result.steps], marker=".", label="after clipping")
    curve.set_ylabel("gradient norm")
    curve.set_title(f"gradlint probe: {result.verdict}")
    curve.legend(loc="best")
    if names and steps:
        image = heat.imshow(
            grid,
            aspect="auto",
            interpolation="nearest",
            extent=(steps[0] - 0.5, steps[-1] + 0.5, len(names) - 0.5, -0.5),
        )
        heat.set_yticks(range(len(names)), names, fontsize=7)
        # One colorbar for both axes keeps the curve and the heatmap on the same step axis.
        figure.colorbar(image, ax=[curve, heat], label="log10 gradient norm")
    heat.set_xlabel("step")
    figure.savefig(path, dpi=110)
    plt.close(figure)
