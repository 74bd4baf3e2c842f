"""``genperf rules [--output DIR]``: Prometheus rule files from the genperf configuration.

The thresholds are read from the same settings genperf's own verdicts use (``--config`` or
``$GENPERF_CONFIG`` and ``GENPERF_*`` variables), so Prometheus alerts on the same lines.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from genperf.cli.context import state
from genperf.config import CONFIG_ENV
from genperf.exporters.prometheus_rules import DURATION_HINT, RuleTiming, is_duration, rule_files


def _duration(name: str) -> Any:
    return typer.Option(f"--{name}", help=_HELP[name], callback=_check_duration)


def _check_duration(value: str) -> str:
    if not is_duration(value):
        raise typer.BadParameter(f"{DURATION_HINT}, got {value!r}")
    return value


_HELP = {
    "window": "Tasks judged together: generation time, success rate, model loading.",
    "burst": "Window of bursts: out-of-memory failures, dropped records.",
    "short": "Window of rates that must keep up: database errors, a node down.",
    "for": "How long a condition holds before its alert fires.",
}


def rules(  # noqa: PLR0917 (typer passes options by keyword)
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Directory to write the two rule files into.", file_okay=False
        ),
    ] = Path(),
    window: Annotated[str, _duration("window")] = RuleTiming.window,
    burst: Annotated[str, _duration("burst")] = RuleTiming.burst,
    short: Annotated[str, _duration("short")] = RuleTiming.short,
    pending: Annotated[str, _duration("for")] = RuleTiming.pending,
    oom_burst: Annotated[
        int, typer.Option("--oom-burst", min=1, help="Out-of-memory failures that make a burst.")
    ] = RuleTiming.oom_burst,
) -> None:
    """Write Prometheus recording and alerting rules from the genperf configuration."""
    try:
        timing = RuleTiming(
            window=window, burst=burst, short=short, pending=pending, oom_burst=oom_burst
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = state.settings()
    config = state.config or os.environ.get(CONFIG_ENV)
    source = Path(config).name if config else "defaults"
    output.mkdir(parents=True, exist_ok=True)
    for name, text in rule_files(settings, timing, source=source).items():
        _write(output / name, text)
        typer.echo(str(output / name))


def _write(path: Path, text: str) -> None:
    """Write next to the final name, then rename: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # rule files hold no secret; Prometheus may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    app.command()(rules)
