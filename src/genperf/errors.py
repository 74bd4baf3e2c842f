"""genperf's one exception tree.

::

    GenperfError
    ├── ConfigError            bad config file, key or value (names the key and the source)
    ├── UnknownTaskError       a task id the monitor is not tracking (also a KeyError)
    ├── UnknownFieldError      a task metric name that does not exist (also a ValueError)
    ├── TaskStateError         an operation the task's state forbids, e.g. completing twice
    └── StoreError             the database could not be reached or written
        └── StoreUnavailableError

The monitor never raises these into a running generation except for caller mistakes
(unknown task or field), which are programming errors the caller must see.
"""

from __future__ import annotations


class GenperfError(Exception):
    """Base of every error genperf raises on purpose."""


class ConfigError(GenperfError):
    """A configuration problem; the message names the key and where it came from."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None):
        self.key = key
        self.source = source
        where = f" in {source}" if source else ""
        field = f"{key}: " if key else ""
        super().__init__(f"config error{where}: {field}{message}")


class UnknownTaskError(GenperfError, KeyError):
    """No monitored task has this id."""

    def __init__(self, task_id: str):
        self.task_id = task_id
        super().__init__(f"unknown task {task_id!r}: it was never started or is already complete")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0])


class UnknownFieldError(GenperfError, ValueError):
    """A task metric name that genperf does not know."""

    def __init__(self, field: str, allowed: frozenset[str] | None = None):
        self.field = field
        hint = f"; known fields: {', '.join(sorted(allowed))}" if allowed else ""
        super().__init__(f"unknown task metric {field!r}{hint}")


class InvalidFieldValueError(GenperfError, ValueError):
    """A known task metric given a value of the wrong type or range."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"task metric {field!r}: {message}")


class UnknownCursorError(GenperfError, LookupError):
    """A page cursor naming no stored task run (a deleted run, or not a cursor at all)."""

    def __init__(self, cursor: str):
        self.field = "cursor"
        super().__init__(f"cursor {cursor!r}: no stored task run has this id")


class TaskStateError(GenperfError):
    """The task is not in a state that allows this operation (e.g. completed twice)."""


class StoreError(GenperfError):
    """The store failed to read or write."""


class StoreUnavailableError(StoreError):
    """The database cannot be reached right now."""
