"""Wake idle workers when a request is queued anywhere: PostgreSQL LISTEN/NOTIFY.

The queue sends ``pg_notify`` in the transaction that queues (or requeues) a request; one
listener thread per process holds a connection that LISTENs on the channel and wakes the
worker. A worker then needs no fast poll: it falls back to a slow one (``idle_poll_seconds``)
for a notification lost while its connection was down. SQLite has no such channel: there the
process that queues wakes its own worker directly, and other processes poll.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from genperf.generation.queue import NOTIFY_CHANNEL

logger = logging.getLogger("genperf.generation")

STOP_CHECK_SECONDS = 10.0  # how often the listener looks whether it should stop
_RECONNECT_MAX_SECONDS = 30.0


class NotifyListener:
    """A daemon thread that calls ``on_notify`` for each request announced on ``url``
    (a PostgreSQL SQLAlchemy URL), and once each time it (re)connects, for what was queued
    while it was not listening."""

    def __init__(self, url: str, on_notify: Callable[[], None]) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self._on_notify = on_notify
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="genperf-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop; it ends within STOP_CHECK_SECONDS (not awaited: a
        daemon thread waiting on its socket holds nothing)."""
        self._stopping.set()

    def _loop(self) -> None:
        import psycopg

        backoff = 1.0
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 1.0
                    self._on_notify()
                    self._listen(conn.pgconn)
            except psycopg.Error as exc:
                logger.warning("generation queue notifications lost, reconnecting: %s", exc)
                self._stopping.wait(backoff)
                backoff = min(2 * backoff, _RECONNECT_MAX_SECONDS)

    def _listen(self, pgconn: Any) -> None:
        """Sleep on the connection's socket until the server sends something. Not
        ``Connection.notifies()``: it wakes every 0.1 s (to let Ctrl-C in), which was most
        of an idle worker's CPU."""
        socket = pgconn.socket
        while not self._stopping.is_set():
            readable, _, _ = select.select([socket], [], [], STOP_CHECK_SECONDS)
            if not readable:
                continue
            pgconn.consume_input()  # raises OperationalError when the connection is lost
            announced = False
            while pgconn.notifies() is not None:
                announced = True
            if announced:
                self._on_notify()
