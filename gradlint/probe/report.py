"""The probe's report: the verdict with its evidence, the layers that grew, G per step, and the static findings
for the script marked confirmed or not by the run. Text (rich) and JSON share the same pieces."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gradlint.probe.analysis import ProbeResult

# Which static findings a run can confirm. A code confirmed by verdicts is "confirmed" when the run's verdict
# is one of them, "n/a" when the verdict says nothing about it, and "not confirmed" for any other conclusive
# verdict. `clipped` confirms the risks (the run shows gradients that clipping had to hold back) but not GL101:
# GL101 says nothing clips, and the run saw clipping, so that finding was wrong for this run.
_EXPLODING_RISK = ({"exploding", "clipped"}, {"vanishing"})
_CONFIRMED_BY_VERDICT: dict[str, tuple[set[str], set[str]]] = {
    "GL101": ({"exploding"}, {"vanishing"}),
    "GL201": _EXPLODING_RISK,
    "GL301": _EXPLODING_RISK,
    "GL302": _EXPLODING_RISK,
    "GL303": _EXPLODING_RISK,
    "GL401": _EXPLODING_RISK,
    "GL404": _EXPLODING_RISK,
    "GL405": _EXPLODING_RISK,
}
# Codes a secondary finding of the run confirms, whatever the verdict.
_CONFIRMED_BY_FINDING = {"GL402": "gradients-not-cleared", "GL103": "clip-scaled-gradients"}

_VERDICT_STYLES = {
    "exploding": "bold red",
    "non-finite": "bold red",
    "vanishing": "bold yellow",
    "clipped": "bold yellow",
    "healthy": "bold green",
    "inconclusive": "bold magenta",
}
_SPARK = "▁▂▃▄▅▆▇█"
LAYER_ROWS = 8


def confirmation(code: str, result: ProbeResult) -> str:
    """'confirmed', 'not confirmed' or 'n/a': what this run says about a static finding with this code."""
    if result.verdict == "inconclusive":
        return "n/a"
    if code in _CONFIRMED_BY_FINDING:
        return "confirmed" if result.has_finding(_CONFIRMED_BY_FINDING[code]) else "not confirmed"
    if code not in _CONFIRMED_BY_VERDICT:
        return "n/a"
    confirming, unrelated = _CONFIRMED_BY_VERDICT[code]
    if result.verdict in confirming:
        return "confirmed"
    return "n/a" if result.verdict in unrelated else "not confirmed"


@dataclass
class StaticSection:
    """The linter's findings for the script, each with what the run says about it."""

    available: bool
    reason: str | None = None  # why it is unavailable
    findings: list[tuple[Any, str]] = field(default_factory=list)  # (Finding, confirmation)


def static_section(script: Path, result: ProbeResult) -> StaticSection:
    """Lint the script and mark each finding; when the linter fails, say so rather than lose the verdict."""
    from gradlint.engine import lint_paths

    target = script.resolve()
    try:
        mine = [f for f in lint_paths([str(script)]).findings if Path(f.path).resolve() == target]
    except Exception as exc:  # a linter bug must not cost the user the probe's verdict
        return StaticSection(False, f"the linter failed: {type(exc).__name__}: {exc}")
    mine.sort(key=lambda f: (f.line, f.column, f.code))
    return StaticSection(True, None, [(f, confirmation(f.code, result)) for f in mine])


def to_json(result: ProbeResult, static: StaticSection) -> dict[str, Any]:
    data = result.to_json()
    data["static"] = [{**finding.to_dict(), "confirmation": status} for finding, status in static.findings]
    data["static_available"] = static.available
    if not static.available:
        data["static_unavailable_reason"] = static.reason
    data["output_tail"] = result.run.output_tail if _script_failed(result) else []
    return data


def sparkline(values: list[float]) -> str:
    """One character per step on a log scale; non-finite steps are marked ×."""
    logs = [math.log10(v) if v > 0 and math.isfinite(v) else None for v in values]
    finite = [v for v in logs if v is not None]
    if not finite:
        return "×" * len(values)
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    return "".join(
        "×" if v is None else _SPARK[min(len(_SPARK) - 1, int((v - low) / span * len(_SPARK)))] for v in logs
    )


def _script_failed(result: ProbeResult) -> bool:
    end = result.run.end
    if end is None or result.run.timed_out:
        return True
    return end.status == "error" or (end.status == "exit" and end.exit_code != 0)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"


def render_text(script: Path | str, result: ProbeResult, static: StaticSection | None, console: Console) -> None:
    """The text report. static is None where no script was linted (GradientMonitor)."""
    steps = result.steps
    verdict = Text(result.verdict.upper(), style=_VERDICT_STYLES[result.verdict])
    console.print(Text.assemble(verdict, f"  {result.reason}"))
    console.print(f"{script} · {len(steps)} step{'s' if len(steps) != 1 else ''} · exit {result.exit_code}")
    if result.findings:
        console.print()
        for finding in result.findings:
            console.print(Text.assemble(("  " + finding.id, "bold"), f"  {finding.message}"))
    if steps:
        grads = [s.grad_norm for s in steps]
        console.print()
        console.print(
            Text.assemble(
                ("G per step  ", "bold"),
                sparkline(grads),
                f"  {_fmt(grads[0])} → {_fmt(grads[-1])} (log scale)",
            )
        )
    layers = [layer for layer in result.layers if layer.growth is not None][:LAYER_ROWS]
    if layers:
        table = Table(title="Layers with the largest gradient growth", title_justify="left")
        table.add_column("parameter")
        for column in ("first", "last", "max", "growth"):
            table.add_column(column, justify="right")
        for layer in layers:
            table.add_row(layer.name, _fmt(layer.first), _fmt(layer.last), _fmt(layer.max), f"{_fmt(layer.growth)}x")
        console.print()
        console.print(table)
    if static is not None:
        _render_static(static, console)
    if _script_failed(result) and result.run.output_tail:
        console.print()
        console.print(Text("The script's last lines of output", style="bold"))
        for line in result.run.output_tail:
            console.print(Text("  " + line))


def _render_static(static: StaticSection, console: Console) -> None:
    if not static.available:
        console.print()
        console.print(f"Static findings: unavailable ({static.reason})")
    elif not static.findings:
        console.print()
        console.print("Static findings: none for this script")
    else:
        console.print()
        console.print(Text("Static findings", style="bold"))
        for finding, status in static.findings:
            style = {"confirmed": "red", "not confirmed": "green"}.get(status, "dim")
            console.print(
                Text.assemble(
                    f"  {finding.line}:{finding.column} {finding.code} {finding.name}  ",
                    (status, style),
                    f"\n      {finding.message}",
                )
            )
