"""`gradlint probe SCRIPT [-- ARGS...]`: the command, as a typer-annotated function the main app registers.

Register it with extra arguments allowed, so what follows the script reaches the script:

    app.command("probe", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(probe)
"""
from __future__ import annotations

import enum
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

USAGE_ERROR = 2


class ProbeFormat(str, enum.Enum):
    text = "text"
    json = "json"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"gradlint probe: error: {message}", err=True)
    return typer.Exit(USAGE_ERROR)


def probe(
    ctx: typer.Context,
    script: Annotated[Path, typer.Argument(help="The training script, run as `python SCRIPT ARGS`.", show_default=False)],
    steps: Annotated[int, typer.Option(min=1, help="Optimization steps to watch before stopping the script.")] = 30,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds before the script and its workers are ended.")] = 300.0,
    format: Annotated[ProbeFormat, typer.Option("--format", help="text, or json (stdout holds only the JSON).")] = ProbeFormat.text,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the report here, not to stdout.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a PNG heatmap of gradient norms (needs matplotlib).")] = None,
    show_output: Annotated[bool, typer.Option("--show-output", help="Stream the script's output (to stderr).")] = False,
    nproc_per_node: Annotated[
        Optional[int],
        typer.Option("--nproc-per-node", min=1, help="Launch N ranks as torchrun does, and judge them together."),
    ] = None,
    nnodes: Annotated[int, typer.Option("--nnodes", min=1, max=1, help="Nodes: one, this machine.")] = 1,
) -> None:
    """Run SCRIPT for a few real steps and say whether its gradients explode, with the evidence.

    Exit 0 healthy or clipped, 1 exploding, vanishing or non-finite, 2 usage error, 3 inconclusive.
    """
    script_args = list(ctx.args)
    if "TORCHELASTIC_RUN_ID" in os.environ:  # set by torchrun for its ranks: each would probe and report alone
        raise _fail("gradlint probe is running under torchrun; run `gradlint probe --nproc-per-node N SCRIPT` instead")
    if not script.is_file():
        raise _fail(f"no such script: {script}")
    if importlib.util.find_spec("torch") is None:
        raise _fail("torch is not installed in this Python; install it (pip install 'gradlint[probe]')")
    from gradlint.probe.plot import plotting_available, write_plot

    if plot is not None and not plotting_available():
        raise _fail("--plot needs matplotlib; install it (pip install 'gradlint[plot]')")

    from rich.console import Console

    from gradlint.probe.report import render_text, static_section, to_json
    from gradlint.probe.runner import run_probe

    echo = sys.stderr if show_output else None
    if sys.stderr.isatty():
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task(f"probing {script.name}", total=steps)
            result = run_probe(
                script,
                script_args,
                steps=steps,
                timeout=timeout,
                echo=echo,
                on_step=lambda record: progress.update(task, completed=record.step),
                nproc_per_node=nproc_per_node,
            )
    else:
        result = run_probe(
            script, script_args, steps=steps, timeout=timeout, echo=echo, nproc_per_node=nproc_per_node
        )

    static = static_section(script, result)
    try:
        stream = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror}")
    try:
        if format is ProbeFormat.json:
            stream.write(json.dumps(to_json(result, static), indent=2, allow_nan=False) + "\n")
        else:
            # Off a terminal rich would wrap at 80 columns and cut parameter names; logs and files are wider.
            console = Console(file=stream, width=None if stream.isatty() else 120)
            render_text(script, result, static, console)
    finally:
        if output is not None:
            stream.close()
    if plot is not None:
        try:
            write_plot(result, plot)
        except OSError as exc:
            raise _fail(f"cannot write {plot}: {exc.strerror}")
    raise typer.Exit(result.exit_code)
