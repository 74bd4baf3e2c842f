"""``genperf nodes``: the fleet, one row per node (``GET /nodes``, or the local database)."""

from __future__ import annotations

import typer

from genperf.cli import render
from genperf.cli.commands_read import emit
from genperf.cli.context import HoursOption, JsonOption, NodeOption, state


def nodes(
    hours: HoursOption = 24.0,
    node: NodeOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the nodes: up or down, GPUs, running tasks, success rate and median times."""
    payload = state.source().nodes(hours, nodes=node or ())
    emit(payload, as_json, render.nodes_view)


def register(app: typer.Typer) -> None:
    app.command()(nodes)
