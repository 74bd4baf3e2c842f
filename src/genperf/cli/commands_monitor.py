"""``genperf monitor [SECONDS]``: the live dashboard, redrawn in place until Ctrl-C.

In a terminal it draws on the alternate screen (rich ``Live``), so leaving, by Ctrl-C or after
``--count`` frames, gives back the terminal as it was, cursor included. Into a pipe or a file
(``genperf monitor 5 | tee log``) it prints each frame as it comes, one after the other, like
``nvidia-smi -l``, so a reader sees them live and a killed monitor leaves what it showed. A
refresh that fails
(the database busy, the server restarting) keeps the last frame and says so; it does not end
the monitor. With ``--json`` it prints one JSON document per refresh, a line each.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from genperf.cli import render
from genperf.cli.context import JsonOption, parse_seconds, state
from genperf.cli.escape import printable
from genperf.cli.style import Targets
from genperf.errors import GenperfError


def monitor(
    seconds: Annotated[
        float,
        typer.Argument(parser=parse_seconds, metavar="SECONDS", help="Seconds between refreshes."),
    ] = 10.0,
    count: Annotated[
        int | None,
        typer.Option(
            "--count", "-n", min=1, help="Stop after this many refreshes (default: never)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Watch CPU, RAM, each GPU, the tasks running now and the latest ones, live (Ctrl-C quits)."""
    source = state.source()
    if as_json:
        _json_lines(source.live, seconds, count)
        return
    targets = Targets.from_settings(state.settings())
    console = Console()
    run_live(
        lambda: render.live_view(
            printable(source.live()), targets, interval=seconds, where=source.where
        ),
        console,
        seconds,
        count,
    )


def run_live(
    frame: Callable[[], RenderableType],
    console: Console,
    seconds: float,
    count: int | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Draw ``frame()`` every ``seconds`` until Ctrl-C or ``count`` frames; returns the frames.

    The first frame's error ends the command (nothing to show); a later one is shown under the
    last good frame while refreshing goes on.
    """
    try:
        first = frame()
    except KeyboardInterrupt:
        return 0
    if not console.is_terminal:
        return _stream(first, frame, console, seconds, count, sleep=sleep)
    drawn = 1
    last_good = first
    try:
        with Live(
            first,
            console=console,
            screen=console.is_terminal,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live:
            while count is None or drawn < count:
                sleep(seconds)
                try:
                    last_good = frame()
                    live.update(last_good, refresh=True)
                except GenperfError as exc:
                    note = Text(f"refresh failed, retrying: {exc}", style="red")
                    live.update(Group(last_good, note), refresh=True)
                drawn += 1
    except KeyboardInterrupt:
        pass
    console.print(f"genperf monitor stopped after {drawn} frame{'s' if drawn != 1 else ''}.")
    return drawn


def _stream(
    first: RenderableType,
    frame: Callable[[], RenderableType],
    console: Console,
    seconds: float,
    count: int | None,
    *,
    sleep: Callable[[float], None],
) -> int:
    """Not a terminal: every frame printed (and flushed) as it comes; a failed refresh adds
    its note instead of repeating the last frame."""
    _emit(console, first)
    drawn = 1
    try:
        while count is None or drawn < count:
            sleep(seconds)
            try:
                _emit(console, frame())
            except GenperfError as exc:
                _emit(console, Text(f"refresh failed, retrying: {exc}", style="red"))
            drawn += 1
    except KeyboardInterrupt:
        pass
    return drawn


def _emit(console: Console, renderable: RenderableType) -> None:
    console.print(renderable)
    console.file.flush()  # a pipe is block-buffered: the reader must see the frame now


def _json_lines(live: Callable[[], dict[str, Any]], seconds: float, count: int | None) -> None:
    drawn = 0
    try:
        while True:
            typer.echo(json.dumps(live(), ensure_ascii=False))
            drawn += 1
            if count is not None and drawn >= count:
                return
            time.sleep(seconds)
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    app.command()(monitor)
