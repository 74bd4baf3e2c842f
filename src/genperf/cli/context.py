"""What every command shares: the invocation's state, the data source, error handling, options.

Errors are one line on stderr and exit code 2, whether genperf raised them (a
:class:`~genperf.errors.GenperfError`: no data yet, server unreachable, token refused, bad
config) or the command line was wrong (a bad HOURS, an unknown command). ``--debug`` shows the
traceback of genperf's errors instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from genperf.config import Settings, load_settings
from genperf.errors import GenperfError

if TYPE_CHECKING:
    from genperf.cli.source import Source

ERROR_EXIT_CODE = 2
# One year: the longest window the API accepts (genperf.api.settings.MAX_WINDOW_HOURS).
MAX_HOURS = 24.0 * 365


@dataclass
class CliState:
    """The global options of one invocation, and what they open lazily (settings, source).

    One object for the process: ``genperf`` runs one invocation, and the interactive mode runs
    its commands inside the invocation that opened it, so they share its source (one database
    connection pool, one HTTP client).
    """

    config: Path | None = None
    debug: bool = False
    url: str | None = None
    token: str | None = field(default=None, repr=False)  # a secret: never in a repr
    # How a source is made; tests replace it to pass fakes in (a collector, a transport).
    source_factory: Callable[[CliState], Source] | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _source: Source | None = field(default=None, repr=False)

    def reset(
        self,
        *,
        config: Path | None = None,
        debug: bool = False,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        self.close()
        self.config, self.debug, self.url, self.token = config, debug, url or None, token or None
        self._settings = None

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings

    def source(self) -> Source:
        """The data source (a :class:`genperf.cli.source.Source`), opened on first use."""
        if self._source is None:
            if self.source_factory is not None:
                self._source = self.source_factory(self)
            else:
                from genperf.cli.source import open_source

                self._source = open_source(self.settings(), url=self.url, token=self.token)
        return self._source

    def close(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source.close()


state = CliState()


def fail(message: str) -> NoReturn:
    """Print one line on stderr and leave with the error exit code."""
    typer.echo(f"genperf: {message}", err=True)
    raise typer.Exit(ERROR_EXIT_CODE)


def usage_message(exc: typer.TyperException) -> str:
    """A usage error (typer's copy of click's UsageError) as one line that says where to look.

    typer carries its own click (``typer._click``); its errors are reached through the public
    ``typer.TyperException``, and ``ctx`` is there on the usage errors.
    """
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "genperf"
    text = " ".join(exc.format_message().split())
    option = getattr(exc, "option_name", None)
    if isinstance(option, str) and option[1:2].isdigit():  # `analysis -3`: click saw an option
        text = f"Invalid value {option!r}: a negative number is not allowed here"
    return f"{text} (see '{where} --help')"


class GenperfGroup(TyperGroup):
    """The app's group: turns genperf's errors and usage errors into one line and exit 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            fail(usage_message(exc))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except GenperfError as exc:
            if state.debug:
                raise
            fail(str(exc))
        except typer.TyperException as exc:
            fail(usage_message(exc))


Number = TypeVar("Number", int, float)


def _bad(rule: str, value: object) -> typer.BadParameter:
    """The one-line usage error of a value that breaks ``rule``."""
    return typer.BadParameter(f"{rule}, got {value!r}")


def _read(value: object, kind: Callable[[Any], Number], rule: str) -> Number:
    """``value`` as an int or a float, or the usage error that states ``rule``."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise _bad(rule, value) from None


def parse_hours(value: str | float) -> float:
    """A time window in hours: a finite number > 0 and at most ten years."""
    hours = _read(value, float, "hours must be a number")
    if not math.isfinite(hours) or hours <= 0:
        raise _bad("hours must be a number > 0", value)
    if hours > MAX_HOURS:
        raise _bad(f"hours must be at most {MAX_HOURS:g} (a year)", value)
    return hours


def parse_count(value: str | int) -> int:
    """A number of items: a whole number >= 1."""
    count = _read(value, int, "must be a whole number")
    if count < 1:
        raise _bad("must be at least 1", value)
    return count


def parse_seconds(value: str | float) -> float:
    """A refresh interval in seconds: at least 0.1 and at most a day."""
    seconds = _read(value, float, "seconds must be a number")
    if not math.isfinite(seconds) or not 0.1 <= seconds <= 86_400:
        raise _bad("seconds must be between 0.1 and 86400", value)
    return seconds


HoursOption = Annotated[
    float, typer.Option("--hours", parser=parse_hours, help="Time window in hours.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the data as JSON (the API's shape) for scripts.")
]
NodeOption = Annotated[
    list[str] | None,
    typer.Option("--node", help="Only this node (repeat for several); default: every node."),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="Read from a running genperf server (e.g. http://host:8000) instead of the "
        "local database.",
        envvar="GENPERF_URL",
        show_envvar=True,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token for the server. Prefer GENPERF_TOKEN: other users of this machine "
        "can see a command line.",
        envvar="GENPERF_TOKEN",
        show_envvar=True,
    ),
]
