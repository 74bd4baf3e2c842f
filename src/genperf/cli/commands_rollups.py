"""``genperf rollups``: the roll-ups the reads of long windows use (see storage/rollups.py).

``rebuild`` makes every roll-up again from the raw tasks with this configuration's bands and
targets (an existing database gets its roll-ups this way; so does one whose readers changed
their bands); ``status`` says whether the reads of this configuration use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from genperf.cli.context import state
from genperf.errors import GenperfError

if TYPE_CHECKING:
    from genperf.storage.sql import SqlStore

rollups_app = typer.Typer(
    help="Roll-ups of the task history (hour and day x node x model x class)."
)


def _sql_store() -> SqlStore:
    from genperf.storage import open_store
    from genperf.storage.sql import SqlStore

    store = open_store(state.settings().resolved_database_url)
    if not isinstance(store, SqlStore):
        store.close()
        raise typer.BadParameter("roll-ups need a SQL database (GENPERF_DATABASE_URL)")
    return store


@rollups_app.command()
def rebuild(
    days_per_step: int = typer.Option(7, min=1, max=366, help="Days rebuilt per transaction."),
) -> None:
    """Make every roll-up again from the raw tasks (readers use the raw tasks meanwhile)."""
    console = Console(stderr=True)
    store = _sql_store()
    try:
        with Progress(
            TextColumn("rebuilding roll-ups"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("days"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as bar:
            task = bar.add_task("rebuild", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            days = store.rebuild_rollups(
                state.settings(), days_per_step=days_per_step, progress=advance
            )
    except GenperfError as exc:
        raise typer.BadParameter(str(exc)) from exc
    finally:
        store.close()
    typer.echo(f"rebuilt the roll-ups of {days} days from the raw tasks")


@rollups_app.command()
def status() -> None:
    """Whether reads with this configuration use the roll-ups."""
    from genperf.storage import rollups

    store = _sql_store()
    try:
        recorded = store.rollup_bands()
    finally:
        store.close()
    if recorded is None:
        typer.echo("no roll-ups: reads scan the raw tasks (run `genperf rollups rebuild`)")
    elif recorded == "":
        typer.echo("a rebuild is under way (or was stopped): reads scan the raw tasks")
    elif recorded != rollups.fingerprint(state.settings()):
        typer.echo(
            "the roll-ups were made with other bands or targets than this configuration's: "
            "its reads scan the raw tasks (`genperf rollups rebuild` remakes them with these)"
        )
    else:
        typer.echo("current: long windows are read from the roll-ups")


def register(app: typer.Typer) -> None:
    app.add_typer(rollups_app, name="rollups")
