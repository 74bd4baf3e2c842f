"""The genperf command line (thin: it parses, calls genperf, and renders)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genperf.cli import (
    commands_export,
    commands_interactive,
    commands_monitor,
    commands_read,
    render,
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the REST API and Prometheus /metrics, monitoring this host meanwhile.
    Without API tokens (GENPERF_API_TOKENS) it listens on loopback only."""
    from genperf.api.serve import serve as run_server

    run_server(settings(), host=host, port=port)


@app.command()
def demo() -> None:
    """Monitor a few real CPU generations into the configured database, then show them."""
    from rich.table import Table

    from genperf.demo import DEMO_JOBS, run_demo
    from genperf.monitor import PerformanceMonitor
    from genperf.units import human_duration, human_mib

    s = settings().model_copy(update={"monitoring_interval_seconds": 0.1})
    out = console()
    table = Table(title="Monitored generations", title_justify="left")
    phases = ("model_load", "text_encode", "denoise", "vae_decode")
    for column in (
        "task",
        "class",
        "steps",
        "total",
        "load",
        "encode",
        "denoise",
        "decode",
        "peak RSS",
    ):
        table.add_column(column, no_wrap=True)
    with PerformanceMonitor(s) as monitor:
        out.print(render.sample_table(monitor.current_sample()))
        with out.status("running demo generations...") as spinner:
            for n, record in enumerate(run_demo(monitor), start=1):
                spinner.update(f"running demo generations... {n}/{len(DEMO_JOBS)}")
                durations = [record.phase(p) for p in phases]
                table.add_row(
                    record.task_id,
                    record.resolution_class,
                    str(record.steps),
                    human_duration(record.generation_time_seconds),
                    *(human_duration(p.duration_seconds if p else None) for p in durations),
                    human_mib(record.peak_process_rss_mb),
                )
    out.print(table)
    out.print(f"Stored in {s.safe_dict()['database_url']}")
