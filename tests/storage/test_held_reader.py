"""HeldReader: one DB-API connection kept for a read made again and again, on SQLite and
PostgreSQL. A failed read answers None and the next one reconnects; between reads nothing is
held: no open transaction on PostgreSQL, no snapshot a SQLite checkpoint would wait for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from genperf.storage.engine import HeldReader, checkpoint_and_truncate, make_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE held (x INTEGER)"))
        conn.execute(text("INSERT INTO held VALUES (7)"))
    yield made
    made.dispose()


@pytest.fixture
def reader(engine: Engine) -> Iterator[HeldReader]:
    held = HeldReader(engine)
    yield held
    held.close()


def test_a_failed_read_answers_none_and_the_next_one_works(reader):
    assert reader.fetchone("SELECT x FROM held") == (7,)
    assert reader.fetchone("SELECT x FROM no_such_table") is None
    assert reader.fetchone("SELECT count(*) FROM held") == (1,)


def test_nothing_is_held_between_reads(reader, engine):
    if engine.dialect.name == "postgresql":
        (backend,) = reader.fetchone("SELECT pg_backend_pid()")
        with engine.connect() as conn:
            state = conn.execute(
                text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend}
            ).scalar_one()
        assert state == "idle"  # not "idle in transaction"
    assert reader.fetchone("SELECT count(*) FROM held") == (1,)
    with engine.begin() as conn:  # a write after the read
        conn.execute(text("INSERT INTO held VALUES (8)"))
    if engine.dialect.name == "sqlite":
        assert checkpoint_and_truncate(engine)  # no reader kept a snapshot open
    assert reader.fetchone("SELECT count(*) FROM held") == (2,)  # and it sees the write
