"""The read commands: status, analysis, tasks, benchmarks. Each asks the source, then renders.

Every one takes ``--json`` and then prints the source's payload, the same data the API serves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType

from genperf.cli import render
from genperf.cli.context import HoursOption, JsonOption, NodeOption, parse_count, parse_hours, state
from genperf.cli.escape import printable
from genperf.cli.style import Targets
from genperf.queries import Filters

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


View = Callable[[Any, Targets], RenderableType]


def emit(payload: Any, as_json: bool, view: View | None = None) -> None:
    """Print the payload as JSON, or drawn by ``view`` with its text made safe for the
    terminal (:func:`genperf.cli.escape.printable`: no client's escape codes reach it)."""
    if as_json:
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    elif view is not None:
        console().print(view(printable(payload), targets()))


def status(nodes: NodeOption = None, as_json: JsonOption = False) -> None:
    """Show the system now (CPU, RAM, swap, disk, each GPU), the monitor and running tasks."""
    payload = state.source().status(nodes=nodes or ())
    emit(payload, as_json, render.status_view)


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
    payload = state.source().analysis(hours, Filters(model_type, success_only, nodes or ()))
    emit(payload, as_json, render.analysis_view)


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
    filters = Filters(model_type, success_only, nodes or ())
    payload = state.source().tasks(count, hours=hours, filters=filters)
    emit(payload, as_json, render.tasks_view)


def benchmarks(
    hours: HoursOption = 24.0,
    nodes: NodeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare current performance with the spec's targets (time, VRAM, RAM, CPU, success)."""
    payload = state.source().benchmarks(hours, nodes=nodes or ())
    emit(payload, as_json, render.benchmarks_view)


def register(app: typer.Typer) -> None:
    for command in (status, analysis, tasks, benchmarks):
        app.command()(command)
