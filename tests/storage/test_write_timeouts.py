"""Writes are bounded on a real PostgreSQL: a table locked by another session fails the
write after the statement timeout (a StoreUnavailableError: queue and retry), never hangs."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from genperf.errors import StoreUnavailableError
from genperf.storage import SqlStore
from genperf.storage.engine import POSTGRES_WRITE_TIMEOUT_MS, normalise_url
from genperf.testing import make_task


@pytest.mark.postgres
def test_a_write_behind_a_lock_fails_after_the_statement_timeout(postgres_schema_url):
    store = SqlStore(postgres_schema_url)
    other = create_engine(normalise_url(postgres_schema_url))
    outcome: list[BaseException | None] = []
    try:
        with other.connect() as conn:
            conn.execute(text("LOCK TABLE generation_tasks IN ACCESS EXCLUSIVE MODE"))

            def write() -> None:
                try:
                    store.save_task(make_task(task_id="blocked"))
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
        store.save_task(make_task(task_id="after"))  # the lock is gone: writes work again
        assert store.get_task("after") is not None
    finally:
        store.close()
        other.dispose()
