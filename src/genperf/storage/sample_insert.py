"""The sample write path: one connection of its own and one INSERT, prepared once.

An idle agent's only writes are its sample batches, one commit every ``samples_per_write``
intervals, and each runs cold after the writer slept: what it costs is roughly how much code
it runs. Through SQLAlchemy a batch checked a connection out of the pool (PostgreSQL: pinged
it, then set the write's timeout), set SQLite's ``synchronous`` to NORMAL and back to FULL
around the commit, looked the statement up in the compiled cache and built a dict per row.
Here the batch is the DB-API's ``executemany`` of a fixed INSERT on a connection kept between
batches, each row a tuple built column by column, and the connection is set up once: on
SQLite ``synchronous=NORMAL`` (it writes samples only; task records keep FULL on the pool's
connections), on PostgreSQL the write's ``statement_timeout`` for the session.
benchmarks/sample_write.py measures a batch after a sleep both ways, agent_cost.py what it
does to the agent (benchmarks/README.md, "Agent cost").

What stays the same: errors come out as the store's (:func:`store_errors`, so the writer keeps
the batch and retries it), a SQLite writer takes the write lock when it begins
(``BEGIN IMMEDIATE``, waiting up to the busy timeout), a PostgreSQL write is bounded by the
same statement timeout. A kept connection that failed is thrown away; one the server dropped
while it sat idle (a restart: the pool's pre-ping no longer sees it) is replaced once, at
once, so a restart costs the next batch a reconnect, not an error.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import PoolProxiedConnection

from genperf.config import redact_url
from genperf.errors import StoreError
from genperf.records import SystemSample
from genperf.storage.base import genperf_version
from genperf.storage.codec import SAMPLE_ENCODERS
from genperf.storage.engine import POSTGRES_WRITE_TIMEOUT_MS, store_errors
from genperf.storage.schema import system_samples as samples

ColumnWriter = Callable[[SystemSample], Any]


class SampleInserter:
    """Writes batches of samples in one transaction each.

    Args:
        engine: the store's engine (its ``connect`` hooks set the connection up).
        url: the database URL, for error messages (redacted there).
        keep_connection: keep one connection between batches; False for an in-memory SQLite
            database, whose single connection the rest of the store shares in turn.
    """

    def __init__(self, engine: Engine, url: str, *, keep_connection: bool) -> None:
        self._engine = engine
        self._url = url
        self._keep = keep_connection
        self._postgres = engine.dialect.name == "postgresql"
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        columns = [c for c in samples.c if c.name != "id"]
        quote = engine.dialect.identifier_preparer.quote
        mark = "%s" if self._postgres else "?"  # psycopg's and sqlite3's positional marks
        names = ", ".join(quote(c.name) for c in columns)  # the schema's own, quoted
        marks = ", ".join(mark for _ in columns)
        self._sql = f"INSERT INTO {quote(samples.name)} ({names}) VALUES ({marks})"  # noqa: S608
        self._writers = [self._column_writer(c) for c in columns]
        self._conn: PoolProxiedConnection | None = None
        self._lock = threading.Lock()  # one batch at a time on the kept connection
        self._closed = False

    def insert(self, batch: Sequence[SystemSample]) -> None:
        """Write ``batch`` and commit. Raises StoreError / StoreUnavailableError."""
        rows = [tuple([write(s) for write in self._writers]) for s in batch]
        with self._lock, store_errors("save samples", self._url):
            if self._closed:
                raise StoreError(f"cannot save samples: {redact_url(self._url)} is closed")
            try:
                self._write_or_reconnect(rows)
            except BaseException:
                self._discard()
                raise
            if not self._keep:
                self._release()

    def close(self) -> None:
        """Close the kept connection (before the engine is disposed: the pool does not
        close a connection that is checked out)."""
        with self._lock:
            self._closed = True
            self._discard()

    # --- helpers ------------------------------------------------------------------------

    def _write_or_reconnect(self, rows: list[tuple[Any, ...]]) -> None:
        reused = self._conn is not None
        try:
            self._write(rows)
        except self._dbapi_error as exc:
            if not self._dropped_while_idle(exc, reused):
                raise self._wrapped(exc) from exc
            self._discard()
            try:
                self._write(rows)  # once, on a new connection
            except self._dbapi_error as again:
                raise self._wrapped(again) from again

    def _write(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._connection().driver_connection
        assert conn is not None
        if self._postgres:
            with conn.cursor() as cursor:  # psycopg begins the transaction on first use
                cursor.executemany(self._sql, rows)
            conn.commit()
        else:  # autocommit mode (engine.py): the transaction is ours to begin
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(self._sql, rows)
            conn.execute("COMMIT")

    def _connection(self) -> PoolProxiedConnection:
        if self._conn is None:
            self._conn = self._engine.raw_connection()
            if self._postgres:
                # Every statement on it is a sample write: bound them all for the session,
                # rather than with a SET LOCAL round trip in each batch.
                driver = self._conn.driver_connection
                assert driver is not None
                driver.execute(f"SET statement_timeout = {POSTGRES_WRITE_TIMEOUT_MS}")
                driver.commit()
            elif self._keep:
                # Samples need not outlive a power cut (a task's record must): in WAL mode a
                # NORMAL commit is safe against a crash of the process but syncs nothing.
                # Set once: this connection writes nothing else, and never returns to the pool.
                driver = self._conn.driver_connection
                assert driver is not None
                driver.execute("PRAGMA synchronous=NORMAL")
        return self._conn

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()  # back to the pool

    def _discard(self) -> None:
        """Throw the connection away (its open transaction, if any, dies with it)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # Closing a broken connection may fail too: it is gone anyway.
            with contextlib.suppress(Exception):
                conn.invalidate()

    def _dropped_while_idle(self, exc: Exception, reused: bool) -> bool:
        """Did a kept connection fail because the server closed it while it was idle?"""
        conn = self._conn
        if not (reused and self._keep and conn is not None):
            return False
        return bool(self._engine.dialect.is_disconnect(exc, conn.driver_connection, None))  # type: ignore[arg-type]

    def _wrapped(self, exc: Exception) -> sa_exc.StatementError:
        """The driver's error as SQLAlchemy's, which :func:`store_errors` sorts into
        'retry later' (the database is down, locked, full, damaged) and 'refused'."""
        return sa_exc.DBAPIError.instance(
            self._sql, None, exc, self._dbapi_error, dialect=self._engine.dialect
        )

    def _column_writer(self, column: Column[Any]) -> ColumnWriter:
        """How one column's value is made from a sample: the codec's encoding, then the
        column type's own bind processing for this database (a UTC stamp as SQLite text)."""
        if column.name == "genperf_version":
            version = genperf_version()
            return lambda _sample: version
        encode = SAMPLE_ENCODERS[column.name]
        process = column.type.dialect_impl(self._engine.dialect).bind_processor(
            self._engine.dialect
        )
        if process is None:
            return encode
        return lambda sample: process(encode(sample))
