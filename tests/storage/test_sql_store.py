"""SqlStore beyond the contract: errors, secrets, SQLite settings, streaming, durability."""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event, insert

from genperf.errors import StoreError, StoreUnavailableError
from genperf.records import GpuReading, SystemSample, TaskStatus
from genperf.storage import MEMORY_URL, MemoryStore, SqlStore, TaskQuery, open_store
from genperf.storage.base import genperf_version
from genperf.storage.codec import sample_to_row
from genperf.storage.engine import normalise_url
from genperf.storage.schema import system_samples
from genperf.testing import make_task, make_tasks

SECRET = "s3cret-Pa55word"


# --- errors -----------------------------------------------------------------------------------


def test_unreachable_postgres_is_unavailable_and_never_shows_the_password() -> None:
    url = f"postgresql://genperf:{SECRET}@127.0.0.1:1/genperf"  # nothing listens on port 1

    with pytest.raises(StoreUnavailableError) as caught:
        SqlStore(url)

    message = str(caught.value)
    assert SECRET not in message
    assert "genperf:***@127.0.0.1:1/genperf" in message
    assert "upgrade the database schema" in message


def test_sqlite_where_no_directory_can_be_made_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    with pytest.raises(StoreUnavailableError, match="create the database directory"):
        SqlStore(f"sqlite:///{blocker / 'sub' / 'genperf.db'}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories anyway")
def test_sqlite_in_a_read_only_directory_is_a_store_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreError):
            SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    finally:
        tmp_path.chmod(0o700)


def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "genperf.db"
    store = SqlStore(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 0.05}})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            store.save_task(make_task())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.save_task(make_task())  # and it recovers once the lock is gone
    assert store.count_tasks(TaskQuery()) == 1
    store.close()


@pytest.mark.parametrize("url", ["mysql://u:pw@host/db", "not a url", "sqlite+nosuch:///x.db"])
def test_unsupported_urls_are_store_errors(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the SQLite one names a relative file
    with pytest.raises(StoreError):
        SqlStore(url)
    assert list(tmp_path.iterdir()) == []  # refused before any file is made


@pytest.mark.postgres
def test_a_record_the_database_rejects_is_a_store_error_not_unavailable(
    postgres_schema_url: str,
) -> None:
    # A permanent error: retrying would not help, so it is not StoreUnavailableError.
    store = SqlStore(postgres_schema_url)
    with pytest.raises(StoreError) as caught:
        store.save_task(make_task(model_used="x" * 101))  # the spec's VARCHAR(100)
    assert not isinstance(caught.value, StoreUnavailableError)
    assert "too long" in str(caught.value)
    assert store.count_tasks(TaskQuery()) == 0
    store.close()


@pytest.mark.postgres
def test_a_password_never_reaches_the_log(
    postgres_schema_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The local server trusts every password, so a URL with one still connects.
    url = postgres_schema_url.replace("postgres@", f"postgres:{SECRET}@")
    with caplog.at_level(logging.DEBUG):
        store = SqlStore(url)
        store.save_task(make_task())
        store.close()
    assert "task store open" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in repr(store)


def test_postgresql_urls_use_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


# --- SQLite specifics -------------------------------------------------------------------------


def test_sqlite_is_wal_with_full_sync_and_makes_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "genperf.db"
    store = SqlStore(f"sqlite:///{path}")
    assert path.exists()
    with store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    store.close()


def test_in_memory_sqlite_is_one_database_shared_by_threads() -> None:
    store = SqlStore("sqlite://")
    saved = make_task()
    worker = threading.Thread(target=store.save_task, args=(saved,))
    worker.start()
    worker.join()
    assert store.get_run(saved.run_id) == saved
    store.close()


def test_iter_tasks_reads_in_bounded_batches(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    for record in make_tasks(25):
        store.save_task(record)
    selects: list[str] = []
    event.listen(store._engine, "before_cursor_execute", lambda *a: selects.append(a[2]))

    streamed = store.iter_tasks(TaskQuery(), batch_size=7)
    assert selects == []  # lazy: nothing read before the first item is asked for
    assert len(list(streamed)) == 25
    queries = [s for s in selects if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == math.ceil(25 / 7)
    assert all("LIMIT" in q for q in queries)
    store.close()


def test_a_saved_task_survives_the_process_being_killed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'genperf.db'}"
    script = (
        "import os, sys\n"
        "from genperf.storage import SqlStore\n"
        "from genperf.testing import make_task\n"
        f"store = SqlStore({url!r})\n"
        "store.save_task(make_task(run_id='survivor'))\n"
        "os._exit(0)  # no close, no flush, no atexit\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)

    store = SqlStore(url)
    survivor = store.get_run("survivor")
    assert survivor is not None
    assert survivor.status is TaskStatus.COMPLETED
    store.close()


# --- open_store -------------------------------------------------------------------------------


def test_open_store_by_url_or_settings(tmp_path: Path) -> None:
    from genperf.config import Settings

    memory = open_store(MEMORY_URL)
    assert isinstance(memory, MemoryStore)
    sql = open_store(Settings(data_dir=tmp_path))
    assert isinstance(sql, SqlStore)
    assert (tmp_path / "genperf.db").exists()
    sql.close()
    memory.close()


def test_a_corrupt_row_is_a_store_error(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    store.save_task(make_task(run_id="bad"))
    with store._engine.begin() as conn:
        conn.exec_driver_sql("UPDATE generation_tasks SET phases = '{not json'")

    with pytest.raises(StoreError, match="'bad': cannot decode the stored task"):
        store.get_run("bad")
    store.close()


def test_sample_batches_commit_without_a_sync_and_task_writes_keep_full(tmp_path: Path) -> None:
    """Samples skip SQLite's fsync (a power cut may lose the last batch, a crash of the
    process cannot) on a connection of their own; a task's record commits with FULL."""
    store = SqlStore(f"sqlite:///{tmp_path / 'sync.db'}")
    seen: list[tuple[str, int]] = []

    @event.listens_for(store._writer, "after_cursor_execute")
    def _sync_level(conn, cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO"):
            table = statement.split()[2]
            level = cursor.connection.execute("PRAGMA synchronous").fetchone()[0]
            seen.append((table, level))

    now = datetime.now(UTC)
    store.save_samples([SystemSample(taken_at=now, node="n"), SystemSample(taken_at=now, node="n")])
    store.save_task(make_task())
    kept = store._samples._conn
    assert kept is not None  # kept for the next batch
    assert kept.driver_connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    store.close()
    assert [level for table, level in seen if table == "generation_tasks"] == [2]  # FULL
    assert seen[0][0] == "generation_tasks"  # samples never take a pooled connection


def full_sample(node: str) -> SystemSample:
    """A sample with every kind of column filled: numbers, JSON lists, a UTC stamp."""
    gpu = GpuReading(0, name="H200", memory_used_bytes=3 << 30, throttle_reasons=("power",))
    return SystemSample(
        taken_at=datetime(2026, 12, 2, 16, 40, 1, 123456, tzinfo=UTC),
        node=node,
        cpu_percent=12.5,
        cpu_per_core_percent=(10.0, 15.0),
        ram_used_bytes=5 << 30,
        disk_path="/data",
        cpu_temperature_celsius=51.0,
        process_rss_bytes=1 << 28,
        gpus=(gpu,),
    )


def test_a_sample_is_stored_exactly_as_sqlalchemy_would_store_it(db_url: str) -> None:
    """The lean insert writes the same column values, the stamp's text on SQLite included,
    as SQLAlchemy's own insert of the codec's row, so every reader reads it alike."""
    store = SqlStore(db_url)
    store.save_samples([full_sample("lean")])
    row = {**sample_to_row(full_sample("core")), "genperf_version": genperf_version()}
    with store._engine.begin() as conn:
        conn.execute(insert(system_samples), [row])
    with store._engine.connect() as conn:  # the raw values, as stored
        stored = {
            node: values
            for node, *values in conn.exec_driver_sql(
                "SELECT node, * FROM system_samples ORDER BY id"
            )
        }
    read_back = store.query_samples()
    store.close()
    assert read_back == [full_sample("lean"), full_sample("core")]
    lean, core = stored["lean"], stored["core"]
    columns = [c.name for c in system_samples.c]
    differ = [name for name, a, b in zip(columns, lean, core, strict=True) if a != b]
    assert differ == ["id", "node"]


def test_a_locked_database_fails_a_sample_batch_as_unavailable_and_the_next_one_writes(
    tmp_path: Path,
) -> None:
    """The writer keeps a batch that failed with StoreUnavailableError and retries it: a
    driver error must come out as the store's, and the kept connection must recover."""
    path = tmp_path / "genperf.db"
    store = SqlStore(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 0.05}})
    batch = [full_sample("n")]
    store.save_samples(batch)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            store.save_samples(batch)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.save_samples(batch)
    assert len(store.query_samples()) == 2
    store.close()


def test_a_closed_store_refuses_samples_and_keeps_no_connection(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    inserter = store._samples
    store.save_samples([full_sample("n")])
    store.close()
    assert inserter._conn is None
    with pytest.raises(StoreError, match="closed"):
        store.save_samples([full_sample("n")])
    with pytest.raises(StoreError, match="closed"):  # a writer that got past the store's check
        inserter.insert([full_sample("n")])
    assert inserter._conn is None


@pytest.mark.postgres
def test_a_sample_connection_the_server_dropped_is_replaced_without_an_error(
    postgres_schema_url: str,
) -> None:
    """A server restart between batches (the kept connection is not pinged) costs the next
    batch a reconnect, not a store error that readiness would report."""
    store = SqlStore(postgres_schema_url)
    store.save_samples([full_sample("n")])
    kept = store._samples._conn
    assert kept is not None
    pid = kept.driver_connection.info.backend_pid
    with store._engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
    store.save_samples([full_sample("n")])
    assert len(store.query_samples()) == 2
    store.close()
