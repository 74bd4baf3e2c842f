"""The read commands: status, analysis, tasks, benchmarks. Each asks the source, then renders.

Every one takes ``--json`` and then prints the source's payload, the same data the API serves.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType

from genperf.cli import render
from genperf.cli.context import JsonOption, NodeOption, parse_count, parse_hours, state
from genperf.cli.style import Targets

HoursArgument = Annotated[
    float,
    typer.Argument(
        parser=parse_hours, metavar="HOURS", help="Time window in hours.", show_default=True
    ),
]


def console() -> Console:
    return Console()


def targets() -> Targets:
    return Targets.from_settings(state.settings())


def emit(payload: Any, as_json: bool, draw: RenderableType | None = None) -> None:
    """Print the payload as JSON, or the rendered view."""
    if as_json:
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    elif draw is not None:
        console().print(draw)


def status(nodes: NodeOption = None, as_json: JsonOption = False) -> None:
    """Show the system now (CPU, RAM, swap, disk, each GPU), the monitor and running tasks."""
    payload = state.source().status(nodes=nodes or ())
    emit(payload, as_json, None if as_json else render.status_view(payload, targets()))


ModelTypeOption = Annotated[
    str | None, typer.Option("--model-type", help="Only this model type, e.g. t2v-A14B.")
]
SuccessOnlyOption = Annotated[
    bool, typer.Option("--success-only", help="Only tasks that completed.")
]


def analysis(
    hours: HoursArgument = 24.0,
    model_type: ModelTypeOption = None,
    success_only: SuccessOnlyOption = False,
    nodes: NodeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Analyse the last HOURS: times, success rate, bottlenecks, trends, recommendations."""
    payload = state.source().analysis(
        hours, model_type=model_type, success_only=success_only, nodes=nodes or ()
    )
    emit(payload, as_json, None if as_json else render.analysis_view(payload, targets()))


def tasks(
    count: Annotated[
        int,
        typer.Argument(parser=parse_count, metavar="N", help="How many tasks, newest first."),
    ] = 10,
    *,
    hours: Annotated[
        float | None,
        typer.Option(
            "--hours",
            parser=parse_hours,
            help="Only tasks started in the last HOURS (default: a year).",
        ),
    ] = None,
    model_type: ModelTypeOption = None,
    success_only: SuccessOnlyOption = False,
    nodes: NodeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the last N tasks, newest first, with their times and peaks against the targets."""
    payload = state.source().tasks(
        count, hours=hours, model_type=model_type, success_only=success_only, nodes=nodes or ()
    )
    emit(payload, as_json, None if as_json else render.tasks_view(payload, targets()))


def benchmarks(
    hours: Annotated[
        float,
        typer.Option("--hours", parser=parse_hours, help="Time window in hours."),
    ] = 24.0,
    nodes: NodeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare current performance with the spec's targets (time, VRAM, RAM, CPU, success)."""
    payload = state.source().benchmarks(hours, nodes=nodes or ())
    emit(payload, as_json, None if as_json else render.benchmarks_view(payload, targets()))


def register(app: typer.Typer) -> None:
    for command in (status, analysis, tasks, benchmarks):
        app.command()(command)
