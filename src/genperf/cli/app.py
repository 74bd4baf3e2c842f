"""The genperf command line (thin: it parses, calls genperf, and renders)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from genperf.cli import render
from genperf.config import Settings, load_settings
from genperf.records import to_jsonable

app = typer.Typer(
    name="genperf",
    help="Performance monitor for AI generation services.",
    no_args_is_help=True,
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
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


class State:
    config: Path | None = None
    debug: bool = False


state = State()


@app.callback()
def _main(
    config: ConfigOption = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Debug logging and full tracebacks.")
    ] = False,
) -> None:
    state.config = config
    state.debug = debug
    if debug:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")


def settings() -> Settings:
    return load_settings(state.config)


def console() -> Console:
    return Console()


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Show the current system sample (CPU, RAM, disk, GPUs) and the settings in use."""
    from genperf.collectors import default_collectors
    from genperf.monitor.sampler import Sampler

    s = settings()
    sampler = Sampler(
        default_collectors(s),
        s.monitoring_interval_seconds,
        lambda *_: None,
        node=s.node_name or _hostname(),
    )
    sample = sampler.sample_once()
    if as_json:
        payload: dict[str, Any] = {"sample": to_jsonable(sample), "settings": s.safe_dict()}
        typer.echo(json.dumps(payload, indent=2))
        return
    console().print(render.status_view(sample, s.safe_dict()))


def _hostname() -> str:
    import socket

    return socket.gethostname()


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
