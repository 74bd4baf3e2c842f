"""Writes are bounded on a real PostgreSQL: a table locked by another session fails the
write after the statement timeout (a StoreUnavailableError: queue and retry), never hangs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text

from genperf.errors import StoreUnavailableError
from genperf.records import SystemSample
from genperf.storage import SqlStore
from genperf.storage.engine import POSTGRES_WRITE_TIMEOUT_MS, normalise_url
from genperf.testing import make_task


def save_task(store: SqlStore, task_id: str) -> None:
    store.save_task(make_task(task_id=task_id))


def save_sample(store: SqlStore, _task_id: str) -> None:
    # samples take a connection of their own (storage/sample_insert.py), bounded the same way
    store.save_samples([SystemSample(taken_at=datetime.now(UTC), node="n")])


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("table", "save"), [("generation_tasks", save_task), ("system_samples", save_sample)]
)
def test_a_write_behind_a_lock_fails_after_the_statement_timeout(
    postgres_schema_url: str, table: str, save: Callable[[SqlStore, str], None]
) -> None:
    store = SqlStore(postgres_schema_url)
    save(store, "before")  # a sample connection is kept from here on
    other = create_engine(normalise_url(postgres_schema_url))
    outcome: list[BaseException | None] = []
    try:
        with other.connect() as conn:
            conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))

            def write() -> None:
                try:
                    save(store, "blocked")
                    outcome.append(None)
                except BaseException as exc:  # reported below
                    outcome.append(exc)

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            writer.join(6 * POSTGRES_WRITE_TIMEOUT_MS / 1000)  # generous: 2 busy cores
            assert not writer.is_alive(), "the write hangs behind the lock"
            conn.rollback()
        assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailableError)
        assert "statement timeout" in str(outcome[0])
        save(store, "after")  # the lock is gone: writes work again
    finally:
        store.close()
        other.dispose()
