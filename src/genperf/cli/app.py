"""The genperf command line (thin: it parses, calls genperf, and renders)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genperf.cli import (
    commands_agent,
    commands_doctor,
    commands_export,
    commands_interactive,
    commands_monitor,
    commands_nodes,
    commands_predict,
    commands_read,
    commands_rollups,
    commands_rules,
)
from genperf.cli.context import GenperfGroup, TokenOption, UrlOption, state
from genperf.config import Settings

app = typer.Typer(
    name="genperf",
    help="Performance monitor for AI generation services. With no command: interactive mode.",
    cls=GenperfGroup,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="JSON config file (default: $GENPERF_CONFIG).",
        envvar="GENPERF_CONFIG",
        show_envvar=True,
    ),
]


@app.callback(invoke_without_command=True)
def _main(
    ctx: typer.Context,
    config: ConfigOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Debug logging and full tracebacks.")
    ] = False,
) -> None:
    state.reset(config=config, debug=debug, url=url, token=token)
    ctx.call_on_close(state.close)
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")
    if ctx.invoked_subcommand is None:
        commands_interactive.interactive()


def settings() -> Settings:
    return state.settings()


def console() -> Console:
    return Console()


for _commands in (commands_read, commands_export, commands_monitor, commands_interactive):
    _commands.register(app)
commands_rules.register(app)
commands_doctor.register(app)
commands_predict.register(app)
commands_nodes.register(app)
commands_rollups.register(app)
commands_agent.register(app)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option("--demo", help="Queue a short batch of real tiny-wan generations.")
    ] = False,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run queued generations here too; --no-worker leaves them to the agents "
            "(genperf agent --worker) while this process still queues and reaps.",
        ),
    ] = True,
) -> None:
    """Serve the REST API, dashboard, Prometheus /metrics and generation service.

    The host is monitored meanwhile. Without API tokens (GENPERF_API_TOKENS) it listens on
    loopback only."""
    from genperf.server import serve as run_server

    if not run_server(settings(), host=host, port=port, demo=demo, run_worker=worker):
        # A generation was handed back as interrupted and its thread is still in torch: a
        # normal interpreter exit would abort under it. Everything is written; leave now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
