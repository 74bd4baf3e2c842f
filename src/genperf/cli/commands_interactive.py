"""``genperf`` (no command) or ``genperf interactive``: a prompt over the same commands.

Each line is a command as it would follow ``genperf`` on the command line (``tasks 5``,
``analysis 48 --json``, ``export --format csv``), or a menu number. It runs through the same
click command, so it parses, validates and fails exactly as on the command line, and shares
the invocation's source. ``help`` shows the menu, ``help tasks`` a command's options; ``quit``,
``q``, ``exit`` or Ctrl-D leave. Ctrl-C stops the command running (the live monitor) and
returns to the prompt; at the prompt it clears the line.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Callable, Sequence

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from genperf.cli.context import state, usage_message
from genperf.errors import GenperfError

PROMPT = "genperf> "
QUIT_WORDS = frozenset({"quit", "q", "exit", ":q"})
HELP_WORDS = frozenset({"help", "h", "?", "menu"})

# The commands offered, in menu order, with what to type and what they do.
MENU: tuple[tuple[str, str, str], ...] = (
    ("status", "status", "system status now: CPU, RAM, disk, GPUs"),
    ("analysis", "analysis [HOURS]", "performance analysis of the last HOURS (24)"),
    ("tasks", "tasks [N]", "the last N tasks, newest first (10)"),
    ("benchmarks", "benchmarks", "current performance against the targets"),
    ("export", "export [--format json|csv] [--hours H]", "export the data to a file"),
    ("monitor", "monitor [SECONDS]", "live view, refreshed every SECONDS (10); Ctrl-C returns"),
)
COMMANDS = tuple(name for name, _, _ in MENU)


def menu_view(where: str) -> Table:
    """The menu: numbers, what to type, what it does. Pure."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold cyan")
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for number, (_, usage, what) in enumerate(MENU, start=1):
        table.add_row(str(number), usage, what)
    table.add_row("h", "help [COMMAND]", "this menu, or a command's options")
    table.add_row("q", "quit", "leave (also exit, Ctrl-D)")
    table.title = f"genperf interactive · {where}"
    table.title_justify = "left"
    table.caption = "Type a command with its options as after `genperf`, or its number."
    table.caption_justify = "left"
    return table


def interactive() -> None:
    """Open the interactive dashboard: a menu and a prompt over the same commands."""
    with contextlib.suppress(ImportError):  # line editing and history, where the platform has it
        import readline  # noqa: F401
    run_loop(input, Console())


def run_loop(read_line: Callable[[str], str], console: Console) -> None:
    """Read commands until quit or end of input; each runs as on the command line."""
    group = typer.main.get_command(_app())
    assert isinstance(group, TyperGroup)
    console.print(menu_view(state.source().where))
    while True:
        try:
            line = read_line(PROMPT)
        except EOFError:
            console.print()
            break
        except KeyboardInterrupt:
            console.print()
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            _error(console, f"cannot read that line: {exc}")
            continue
        if not words:
            continue
        name = _command_name(words[0])
        if name in QUIT_WORDS:
            break
        if name in HELP_WORDS:
            _help(group, console, words[1:])
            continue
        if name not in COMMANDS:
            _error(console, f"unknown command {words[0]!r}: type help for the menu")
            continue
        _run(group, name, words[1:], console)
    console.print("Bye.")


def _command_name(word: str) -> str:
    if word.isdigit() and 1 <= int(word) <= len(MENU):
        return MENU[int(word) - 1][0]
    return word.lower()


def _help(group: TyperGroup, console: Console, args: Sequence[str]) -> None:
    if not args:
        console.print(menu_view(state.source().where))
        return
    name = _command_name(args[0])
    if name not in COMMANDS:
        _error(console, f"no command {args[0]!r}: type help for the menu")
        return
    _run(group, name, ["--help"], console)


def _run(group: TyperGroup, name: str, args: Sequence[str], console: Console) -> None:
    command = group.commands[name]
    try:
        command.main(args=list(args), prog_name=name, standalone_mode=False)
    except typer.Exit:
        pass
    except typer.TyperException as exc:  # a usage error: bad HOURS, unknown option ...
        _error(console, usage_message(exc))
    except typer.Abort:
        console.print()
    except GenperfError as exc:
        if state.debug:
            console.print_exception()
        _error(console, str(exc))
    except KeyboardInterrupt:
        console.print()


def _error(console: Console, message: str) -> None:
    console.print(Text(f"genperf: {message}", style="red"))


def _app() -> typer.Typer:
    from genperf.cli.app import app

    return app


def register(app: typer.Typer) -> None:
    app.command()(interactive)
