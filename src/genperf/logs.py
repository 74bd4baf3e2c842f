"""Repeated log lines summarised: the first one, then at most one a window, with a count.

A misbehaving client or an outage can make the same line happen thousands of times a second
("Invalid HTTP request received", "too many open files", "task queued until the store is
back"); written out, they fill the disk and hide everything else. Two tools:

* :class:`RepeatFilter`, a ``logging.Filter`` for handlers: per (logger, level, message
  template), the first record passes, later ones within ``window_seconds`` are held back, and
  the next one after the window passes with "[N more like this in the last W s]";
* :class:`Throttle`, for code that logs one event kind itself: ``ready()`` says when to log
  and how many were held back since the last time.

Both are bounded: a filter remembers at most ``max_keys`` templates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_WINDOW_SECONDS = 10.0


class Throttle:
    """One event kind, reported at most once per ``window_seconds``."""

    def __init__(
        self,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._held = 0

    def ready(self) -> int | None:
        """None: hold this one back. A number: log now; that many were held back before it."""
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self.window:
                self._held += 1
                return None
            held, self._held, self._last = self._held, 0, now
            return held


class RepeatFilter(logging.Filter):
    """Lets the first of a repeated log line through, then one per window with a count."""

    def __init__(
        self,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        *,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window = window_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._throttles: OrderedDict[tuple[str, int, str], Throttle] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        with self._lock:
            throttle = self._throttles.get(key)
            if throttle is None:
                throttle = self._throttles[key] = Throttle(self.window, self._clock)
                while len(self._throttles) > self.max_keys:
                    self._throttles.popitem(last=False)
            self._throttles.move_to_end(key)
        held = throttle.ready()
        if held is None:
            return False
        if held:
            # The template gets the note (no "%" in it), so the arguments still fit.
            record.msg = f"{record.msg} [{held} more like this in the last {self.window:g} s]"
        return True


def summarise_repeats(
    logger: logging.Logger, window_seconds: float = DEFAULT_WINDOW_SECONDS
) -> None:
    """Add a :class:`RepeatFilter` to every handler of ``logger`` (once each)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter(window_seconds))
