"""Kill -9 a real ``genperf serve`` in the middle of a database fault, then count: every
completion acknowledged as durable (200) must be in the database, and every answer must have
told the truth (200 stored, 202 ``durable: false`` otherwise). Real SQLite files, a real
tmpfs, real PostgreSQL, real TCP listeners.
"""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from genperf.storage import SqlStore
from genperf.testing import make_task

from .harness import Forwarder, Ledger, Server, SilentListener, free_port, lost_records, report

pytestmark = pytest.mark.slow

FAULT_TASKS = 5


def _ids(prefix: str, n: int = FAULT_TASKS) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def test_kill_9_while_another_process_holds_the_sqlite_write_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'genperf.db'}"
    server = Server(tmp_path, url)
    ledger = Ledger()
    holder = None
    try:
        server.wait_alive()
        server.wait_until(server.ready, "ready")
        ledger.run(server, _ids("before"), timed=False)
        holder = sqlite3.connect(tmp_path / "genperf.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # held across the whole fault, and the kill
        ledger.run(server, _ids("locked"))
        assert all(ledger.answers[t][0] == 202 for t in _ids("locked"))
        assert not server.ready()
    finally:
        server.kill9()
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
    lost = lost_records(url, ledger.acknowledged())
    report("sqlite_write_lock_held", ledger, lost)
    assert lost == []
    assert len(ledger.acknowledged()) == FAULT_TASKS  # the ones before the fault


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> None:
    # Unbuffered: a buffered file keeps the part of the last write the disk refused and
    # raises ENOSPC again when it is closed (whether it does depends on the free space mod
    # 64 KiB, i.e. on how big the database happened to be).
    with open(disk / "filler", "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass  # ENOSPC: full


def test_kill_9_with_the_disk_full(tmp_path: Path, small_disk: Path) -> None:
    url = f"sqlite:///{small_disk / 'genperf.db'}"
    server = Server(tmp_path / "server", url)
    ledger = Ledger()
    try:
        server.wait_alive()
        server.wait_until(server.ready, "ready")
        ledger.run(server, _ids("before"), timed=False)
        _fill(small_disk)
        # Enough writes to need new pages once the WAL's free frames are used up.
        for round_ in range(4):
            ledger.run(server, _ids(f"full{round_}", 10))
        assert ledger.queued(), "the full disk never refused a write"
        assert not server.ready()
    finally:
        server.kill9()
    lost = lost_records(url, ledger.acknowledged())
    report("disk_full", ledger, lost)
    assert lost == []


def _corrupt_the_tasks_table(path: Path) -> None:
    with sqlite3.connect(path) as db:
        root = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'generation_tasks'"
        ).fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)


def test_kill_9_with_a_corrupt_page(tmp_path: Path) -> None:
    path = tmp_path / "genperf.db"
    url = f"sqlite:///{path}"
    store = SqlStore(url)
    for i in range(20):
        store.save_task(make_task(task_id=f"old-{i}", started_at=make_task().started_at))
    store.close()
    _corrupt_the_tasks_table(path)
    server = Server(tmp_path / "server", url)
    ledger = Ledger()
    try:
        server.wait_alive()
        ledger.run(server, _ids("corrupt"))
        assert all(ledger.answers[t][0] == 202 for t in _ids("corrupt"))
        assert not server.ready()
    finally:
        server.kill9()
    report("corrupt_page", ledger, [])
    assert ledger.acknowledged() == []  # nothing claimed stored: nothing to lose


def test_kill_9_with_a_stalled_database(tmp_path: Path) -> None:
    """PostgreSQL's port accepts connections and never answers (a stalled server or network)."""
    listener = SilentListener()
    url = f"postgresql://genperf@127.0.0.1:{listener.port}/genperf"
    server = Server(tmp_path, url)
    ledger = Ledger()
    try:
        server.wait_alive()
        assert not server.ready()
        ledger.run(server, _ids("stalled", 20))
        assert all(ledger.answers[t][0] == 202 for t in _ids("stalled", 20))
    finally:
        server.kill9()
        listener.close()
    report("stalled_database", ledger, [])
    assert ledger.acknowledged() == []
    # Bounded: the connect timeout (3 s) and the writer's lock wait (2 s), not minutes.
    assert max(ledger.seconds) < 30


@pytest.mark.postgres
def test_serve_starts_with_postgres_down_queues_then_connects_when_it_is_back(
    tmp_path: Path, postgres_schema: tuple[sqlalchemy.Engine, str, str]
) -> None:
    engine, schema, schema_url = postgres_schema  # tests/conftest.py's PostgresSchema
    real = sqlalchemy.make_url(schema_url)
    port = free_port()  # nothing listens here yet: PostgreSQL is "down"
    via = real.set(host="127.0.0.1", port=port).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    url = via.render_as_string(hide_password=False)
    forwarder = Forwarder(port, (real.host or "127.0.0.1", real.port or 5432))
    server = Server(tmp_path, url)
    ledger = Ledger()
    try:
        server.wait_alive()
        assert not server.ready()
        ledger.run(server, _ids("down"))
        assert all(ledger.answers[t][0] == 202 for t in _ids("down"))

        forwarder.start()  # the database is back
        server.wait_until(server.ready, "ready once the database is back")
        for task_id in _ids("down"):  # the same completion again: now stored
            assert ledger.complete(server, task_id, timed=False) == 200
        ledger.run(server, _ids("back"), timed=False)

        def tables() -> set[str]:
            with engine.connect() as conn:
                return set(
                    conn.execute(
                        sqlalchemy.text(
                            "SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = :s"
                        ),
                        {"s": schema},
                    ).scalars()
                )

        # The queue's table is made by the worker's next look at the queue (its poll).
        server.wait_until(
            lambda: {"generation_tasks", "generation_requests"} <= tables(),
            "the task and queue tables once the database is back",
        )
    finally:
        server.kill9()
        forwarder.close()
    real_url = real.update_query_dict({"options": f"-csearch_path={schema}"})
    lost = lost_records(real_url.render_as_string(hide_password=False), ledger.acknowledged())
    report("postgres_down_at_start", ledger, lost)
    assert lost == []
    assert len(ledger.acknowledged()) == 2 * FAULT_TASKS  # the queued ones too, once retried
