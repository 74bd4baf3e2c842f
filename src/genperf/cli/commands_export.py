"""``genperf export [--format json|csv|influx|ndjson] [--hours H] [--output FILE]``.

The file is written next to its final name and renamed into place when complete, so an export
that fails or is interrupted never leaves a half-written file under that name. A progress bar
(on stderr, in a terminal) follows an export of many tasks. ``--output -`` writes to stdout.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from genperf.cli.context import HoursOption, NodeOption, state
from genperf.cli.exporting import ExportRequest, ExportResult
from genperf.cli.source import SourceError
from genperf.queries.reads import EXPORT_FORMATS
from genperf.records import utc_now
from genperf.units import human_bytes

# Fewer tasks than this export in a blink: no bar.
PROGRESS_MIN_TASKS = 500


def parse_format(value: str) -> str:
    fmt = value.strip().lower()
    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(
            f"format must be one of {', '.join(EXPORT_FORMATS)}, got {value!r}"
        )
    return fmt


def default_output(fmt: str, now: datetime) -> Path:
    return Path(f"genperf-export-{now:%Y%m%dT%H%M%SZ}.{fmt}")


class BarProgress:
    """An :class:`~genperf.cli.source.ExportProgress` drawn as a rich bar on ``console``.

    The bar appears only for a long export (many tasks, or bytes from a server) and only
    where someone can see it (a terminal).
    """

    def __init__(self, console: Console, *, min_tasks: int = PROGRESS_MIN_TASKS) -> None:
        self._console = console
        self._min_tasks = min_tasks
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int | None, unit: str) -> None:
        if not self._console.is_terminal:
            return
        if unit == "tasks" and total is not None and total < self._min_tasks:
            return
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        self._progress = Progress(
            TextColumn("exporting"),
            BarColumn(),
            count,
            TextColumn(unit if unit != "bytes" else ""),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("export", total=total)
        self._progress.refresh()  # drawn at once, not at the first tick

    def advance(self, amount: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, amount)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def export(
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            parser=parse_format,
            help="json (the spec's document), csv, influx (line protocol: tasks, samples) "
            "or ndjson (an Elasticsearch _bulk body).",
        ),
    ] = "json",
    hours: HoursOption = 24.0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write (default: genperf-export-<UTC time>.<format>); - for stdout.",
        ),
    ] = None,
    nodes: NodeOption = None,
) -> None:
    """Export the tasks of the last --hours (24) with their analysis, as JSON or CSV, or
    tasks and samples as InfluxDB line protocol, or tasks as an Elasticsearch bulk body."""
    source = state.source()
    err = Console(stderr=True)
    progress = BarProgress(err)
    to_stdout = output is not None and str(output) == "-"
    path = output if output is not None else default_output(fmt, utc_now())
    request = ExportRequest(fmt, hours, nodes or ())
    try:
        if to_stdout:
            result = source.export(request, sys.stdout.buffer, progress)
            sys.stdout.buffer.flush()
        else:
            result = _to_file(path, lambda out: source.export(request, out, progress))
    finally:
        progress.stop()
    count = result.tasks
    what = "tasks" if count is None else f"{count} task{'s' if count != 1 else ''}"
    summary = (
        f"Exported {what} of the last {hours:g} h to {'stdout' if to_stdout else path} "
        f"({human_bytes(result.bytes_written)})."
    )
    # The summary goes where it cannot mix with the data.
    (err if to_stdout else Console()).print(summary, highlight=False, soft_wrap=True)


def _to_file(path: Path, write: Callable[[IO[bytes]], ExportResult]) -> ExportResult:
    """Write through a private temporary file (mode 0600, the spec asks exports be secured),
    renamed to ``path`` only once complete."""
    directory = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise SourceError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(exc, OSError):
            raise SourceError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return result


def register(app: typer.Typer) -> None:
    app.command()(export)
