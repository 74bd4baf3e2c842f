"""``genperf agent``: monitor a GPU node into the fleet's shared database, and with
``--worker`` run generations from the fleet's queue (no API: ``genperf serve`` runs that)."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from genperf.cli.context import state
from genperf.records import NODE_PATTERN


def _node(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(NODE_PATTERN, value):
        raise typer.BadParameter(
            "a host name: letters, digits, '.', '_', ':' or '-', starting with a letter or "
            "digit, at most 255 characters",
            param_hint="--node",
        )
    return value


def agent(  # noqa: PLR0917 (typer: one parameter per option)
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            callback=_node,
            help="This node's name in the fleet (default: node_name, else the host name).",
        ),
    ] = None,
    worker: Annotated[
        bool,
        typer.Option("--worker", help="Also run generations from the shared queue (diffusers)."),
    ] = False,
    model_type: Annotated[
        list[str] | None,
        typer.Option(
            "--model-type",
            help="With --worker: claim only requests of this model type (repeatable).",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            help="Serve this node's own metrics for Prometheus on this port (off by default).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="The address of the metrics listener.")
    ] = "127.0.0.1",
    metrics_token_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics-token-file",
            exists=True,
            dir_okay=False,
            help="A file holding the bearer token scrapers must send, or its digest "
            "sha256:<hex> (needed off loopback).",
        ),
    ] = None,
) -> None:
    """Monitor this node into the shared database (set database_url to the fleet's
    PostgreSQL) until stopped (SIGTERM or Ctrl-C); no API."""
    from genperf.agent import MetricsEndpoint, run_agent

    if model_type and not worker:
        raise typer.BadParameter("needs --worker", param_hint="--model-type")
    metrics = None
    if metrics_port is not None:
        # The token is read from a file, never the command line (visible to every user in ps).
        token = metrics_token_file.read_text().strip() if metrics_token_file else None
        metrics = MetricsEndpoint(metrics_port, metrics_host, token or None)
    settings = state.settings()
    if node is not None:
        settings = settings.model_copy(update={"node_name": node})
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not run_agent(settings, worker=worker, model_types=model_type or (), metrics=metrics):
        # A generation was handed back as interrupted and its thread is still in torch: a
        # normal interpreter exit would abort under it. Everything is written; leave now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def register(app: typer.Typer) -> None:
    app.command()(agent)
