"""``genperf nodes``: the fleet, one row per node (``GET /nodes``, or the local database)."""

from __future__ import annotations

from typing import Annotated

import typer

from genperf.cli import render
from genperf.cli.commands_read import emit
from genperf.cli.context import JsonOption, NodeOption, parse_hours, state


def nodes(
    hours: Annotated[
        float,
        typer.Option("--hours", parser=parse_hours, help="Time window in hours."),
    ] = 24.0,
    node: NodeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the nodes: up or down, GPUs, running tasks, success rate and median times."""
    payload = state.source().nodes(hours, nodes=node or ())
    emit(payload, as_json, render.nodes_view)


def register(app: typer.Typer) -> None:
    app.command()(nodes)
