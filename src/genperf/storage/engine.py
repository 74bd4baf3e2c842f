"""Engines for SQLite and PostgreSQL, set up for durability and threads, and error translation.

Everything that touches the database goes through :func:`store_errors`, so callers only ever
see genperf's :class:`StoreError` / :class:`StoreUnavailableError`, never a SQLAlchemy or
driver exception, and never a password.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import QueuePool

from genperf.config import redact_url
from genperf.errors import StoreError, StoreUnavailableError

logger = logging.getLogger("genperf.storage")

SQLITE_BUSY_TIMEOUT_SECONDS = 15.0  # how long a writer waits for another one's lock
# PostgreSQL: a server that is down, or stalled (it accepts connections and never answers, or
# the network drops packets), must cost a write a few seconds, never minutes: then the
# monitor queues the record and says it is not yet durable.
POSTGRES_CONNECT_TIMEOUT_SECONDS = 3  # connecting, authentication included
POSTGRES_WRITE_TIMEOUT_MS = 5000  # statement_timeout of each write (server side: lock waits)
_POSTGRES_TCP = {
    # Unacknowledged data (a dead network or host) fails the connection after this long...
    "tcp_user_timeout": 5000,
    # ...and so does an idle connection whose peer vanished.
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}

# Execution option naming the statement that opens a SQLite transaction (see _on_begin).
SQLITE_BEGIN = "genperf_sqlite_begin"


def normalise_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` (and ``postgres://``) use psycopg 3."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise StoreError(f"not a database URL: {redact_url(url)!r}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def make_engine(url: str, engine_kwargs: Mapping[str, Any] | None = None) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL); ``engine_kwargs`` go to create_engine.

    Raises:
        StoreUnavailableError: the SQLite directory cannot be made, or psycopg is missing.
        StoreError: the URL is not SQLite or PostgreSQL.
    """
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        # One engine serves many threads, each on its own pooled connection.
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        if is_memory_sqlite(parsed):
            # An in-memory database lives in one connection: keep exactly one, shared in turn.
            kwargs = {"poolclass": QueuePool, "pool_size": 1, "max_overflow": 0}
    elif backend == "postgresql":
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS, **_POSTGRES_TCP}
        kwargs = {"pool_pre_ping": True}  # survive a server restart between writes
    else:
        raise StoreError(
            f"unsupported database {parsed.drivername!r} in {redact_url(url)}: "
            "genperf stores to SQLite or PostgreSQL"
        )
    extra = dict(engine_kwargs or {})
    connect_args.update(extra.pop("connect_args", {}))
    kwargs.update(extra)
    try:
        engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    except ImportError as exc:
        raise StoreUnavailableError(
            f"cannot open {redact_url(url)}: the driver is not installed ({exc.name}); "
            "for PostgreSQL install genperf[postgres]"
        ) from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot open {redact_url(url)}: {_detail(exc, url)}") from exc
    if backend == "sqlite":
        if not is_memory_sqlite(parsed):  # made once the URL is known good, never before
            with store_errors("create the database directory and file", url):
                _private_sqlite_file(Path(parsed.database or ""))
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Python's sqlite3 module begins transactions late and commits before DDL on its own;
    # switch that off and emit BEGIN ourselves (_on_begin), as SQLAlchemy's docs advise.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer, and the writer never blocks readers.
        _use_wal(cursor)
        # Durability: in WAL mode, FULL syncs the log at every commit, so a task is on disk
        # when save_task returns. NORMAL syncs only at checkpoints: a power cut could undo
        # the last commits. The cost is one fsync per commit, and commits are few: one per
        # finished generation, one per batch of samples.
        cursor.execute("PRAGMA synchronous=FULL")
        # Deleted content (a cleared prompt, a pruned sample) is overwritten with zeros, not
        # left in free space; checkpoint_and_truncate then removes the older copies in the WAL.
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
_WAL_SUFFIXES = ("", "-wal", "-shm", "-journal")


def _private_sqlite_file(path: Path) -> None:
    """Make the database readable by its owner only: a new directory 0700 and the file 0600
    (SQLite gives its -wal and -shm files the mode of the database file). An existing file of
    ours that others may read is tightened; an existing directory is left as it is (it may be
    shared, such as /tmp), but a new one is private."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        pass
    else:
        os.close(fd)  # an empty file is an empty SQLite database
    for suffix in _WAL_SUFFIXES:
        _tighten(Path(f"{path}{suffix}"))


def _tighten(path: Path) -> None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)


class HeldReader:
    """One DB-API connection kept for a small read made again and again (an idle worker's
    look at its queue every few seconds): no pool checkout and no SQLAlchemy execution per
    read, about a tenth of their CPU. Each read ends its transaction, so nothing is held
    between reads (PostgreSQL would keep one open; a SQLite checkpoint would wait for it).

    :meth:`fetchone` answers None when the read fails (the database is down, locked,
    replaced): the caller falls back to its full path, which reports the error properly.
    The connection is then dropped and the next read opens another.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Any = None
        self._lock = threading.Lock()

    def fetchone(self, sql: str) -> tuple[Any, ...] | None:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self._engine.raw_connection()
                cursor = self._connection.cursor()
                try:
                    cursor.execute(sql)
                    row: tuple[Any, ...] | None = cursor.fetchone()
                finally:
                    cursor.close()
                self._connection.rollback()
                return row
            except Exception:  # the driver's own errors: the caller's full path reports them
                logger.debug("a held read failed; the connection is dropped", exc_info=True)
                self._drop_locked()
                return None

    def close(self) -> None:
        with self._lock:
            self._drop_locked()

    def _drop_locked(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()  # not back to the pool: it may be broken


CHECKPOINT_BUSY_MS = 1000  # how long a checkpoint waits for readers before giving up


def checkpoint_and_truncate(engine: Engine) -> bool:
    """Copy the WAL into the database file and empty it, so content deleted with
    ``secure_delete`` is gone from both files. SQLite only (a no-op elsewhere); waits at most
    CHECKPOINT_BUSY_MS for readers. Returns True when the WAL was emptied; False (logged at
    debug) when readers kept it, and the next checkpoint will do it."""
    if engine.dialect.name != "sqlite":
        return False
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            (usual_ms,) = cursor.execute("PRAGMA busy_timeout").fetchone()
            cursor.execute(f"PRAGMA busy_timeout={CHECKPOINT_BUSY_MS}")
            try:
                busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout={int(usual_ms)}")
        finally:
            cursor.close()
    finally:
        connection.close()
    if busy:
        logger.debug("WAL checkpoint deferred: readers are active")
    return not busy


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (it stays so, in the file). Switching needs an exclusive
    lock, and SQLite answers "database is locked" at once, without its busy wait, when
    another connection is opening the same new file: so retry, for up to the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return  # already: every open but the very first
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _on_begin(connection: Connection) -> None:
    # Plain BEGIN for reads. Writers ask for BEGIN IMMEDIATE (SQLITE_BEGIN option): they take
    # the write lock up front, waiting up to the busy timeout, rather than failing at once
    # with SQLITE_BUSY when a transaction that has read turns into a write.
    connection.exec_driver_sql(connection.get_execution_options().get(SQLITE_BEGIN, "BEGIN"))


@contextmanager
def store_errors(action: str, url: str) -> Iterator[None]:
    """Translate whatever the database layer raises into genperf's store errors."""
    try:
        yield
    except StoreError:
        raise
    except (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,
        OSError,
    ) as exc:
        # Connection refused, server gone, "database is locked", pool exhausted, disk errors:
        # worth retrying later.
        raise StoreUnavailableError(
            f"cannot {action} at {redact_url(url)}: {_detail(exc, url)}"
        ) from exc
    except sa_exc.DatabaseError as exc:
        if not _damaged(exc):
            raise StoreError(f"cannot {action} at {redact_url(url)}: {_detail(exc, url)}") from exc
        # A damaged SQLite file is the database's fault, not the record's: keep the record
        # and retry it (the operator repairs or replaces the file), as for an outage.
        raise StoreUnavailableError(
            f"cannot {action} at {redact_url(url)}: {_detail(exc, url)}"
        ) from exc
    except (sa_exc.SQLAlchemyError, CommandError) as exc:
        raise StoreError(f"cannot {action} at {redact_url(url)}: {_detail(exc, url)}") from exc


def _damaged(exc: sa_exc.DatabaseError) -> bool:
    """SQLITE_CORRUPT ("database disk image is malformed") or SQLITE_NOTADB."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _detail(exc: BaseException, url: str) -> str:
    # The driver's own message, first line only: SQLAlchemy's text appends the statement and
    # its parameters, which are long and none of the reader's business.
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    detail = text[0] if text else type(exc).__name__
    password = _password(url)
    return detail.replace(password, "***") if password else detail


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except sa_exc.ArgumentError:
        return None
