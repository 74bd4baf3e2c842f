"""Adopting a service's own generation_tasks, on SQLite and PostgreSQL: the monitor fills the
service's row of a task (the spec's six columns and the rest) and the rows it creates get
valid keys, whatever the key's type, with NOT NULL columns without defaults filled."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text

from genperf.records import TaskStatus
from genperf.storage import SqlStore, TaskQuery
from genperf.storage.engine import make_engine
from genperf.testing import make_task

# name -> (SQLite, PostgreSQL) CREATE TABLE, and the service's row of task "old-1".
SHAPES = {
    # The task id is the key, as text; columns the service requires, without defaults.
    "text key": (
        """CREATE TABLE generation_tasks (
            id VARCHAR(64) PRIMARY KEY, prompt TEXT NOT NULL, priority INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL, status VARCHAR(20))""",
        """CREATE TABLE generation_tasks (
            id VARCHAR(64) PRIMARY KEY, prompt TEXT NOT NULL, priority INTEGER NOT NULL,
            created_at TIMESTAMPTZ NOT NULL, status VARCHAR(20))""",
        "INSERT INTO generation_tasks (id, prompt, priority, created_at, status) "
        "VALUES ('old-1', 'a cat', 5, '2026-01-01 10:00:00', 'queued')",
    ),
    # A numbered key and the service's own task_id column.
    "numbered key": (
        """CREATE TABLE generation_tasks (
            id INTEGER PRIMARY KEY, task_id VARCHAR(200) NOT NULL, prompt TEXT NOT NULL,
            is_public BOOLEAN NOT NULL)""",
        """CREATE TABLE generation_tasks (
            id SERIAL PRIMARY KEY, task_id VARCHAR(200) NOT NULL, prompt TEXT NOT NULL,
            is_public BOOLEAN NOT NULL)""",
        "INSERT INTO generation_tasks (task_id, prompt, is_public) VALUES ('old-1', 'a cat', true)",
    ),
    # An integer key nothing numbers (not SQLite's rowid, no sequence): genperf numbers it.
    "integer key": (
        """CREATE TABLE generation_tasks (
            id BIGINT PRIMARY KEY, task_id VARCHAR(200), prompt TEXT NOT NULL,
            cost REAL NOT NULL)""",
        """CREATE TABLE generation_tasks (
            id BIGINT PRIMARY KEY, task_id VARCHAR(200), prompt TEXT NOT NULL,
            cost REAL NOT NULL)""",
        "INSERT INTO generation_tasks (id, task_id, prompt, cost) "
        "VALUES (7, 'old-1', 'a cat', 1.5)",
    ),
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    yield made
    made.dispose()


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_monitor_fills_the_services_row_and_gives_its_own_rows_valid_keys(
    db_url: str, engine: Engine, shape: str
) -> None:
    sqlite_ddl, postgres_ddl, service_row = SHAPES[shape]
    with engine.begin() as conn:
        conn.execute(text(sqlite_ddl if engine.dialect.name == "sqlite" else postgres_ddl))
        conn.execute(text(service_row))

    store = SqlStore(db_url)
    try:
        running = make_task(
            task_id="old-1", status=TaskStatus.RUNNING, generation_time_seconds=None
        )
        store.save_task(running)  # the start row, as the monitor writes it
        done = dataclasses.replace(
            running,
            status=TaskStatus.FAILED,
            generation_time_seconds=42.5,
            optimizations_applied=("dtype:bf16", "vae_tiling"),
            error_category="out_of_memory_gpu",
            recovery_suggestions=("enable VAE tiling",),
        )
        store.save_task(done)
        fresh = make_task(task_id="new-1")  # a task the service has no row for
        store.save_task(fresh)
        later = running.started_at + timedelta(minutes=5)
        retry = make_task(task_id="old-1", started_at=later)  # a second run: a row of its own
        store.save_task(retry)

        with engine.connect() as conn:
            rows = (
                conn.execute(text("SELECT * FROM generation_tasks ORDER BY run_id"))
                .mappings()
                .all()
            )
        assert len(rows) == 3  # the service's row was filled, not duplicated
        by_run = {r["run_id"]: r for r in rows}
        old = by_run[done.run_id]
        assert old["prompt"] == "a cat"  # the service's own values are kept
        assert (old["model_used"], old["generation_time_seconds"], old["peak_vram_usage_mb"]) == (
            "t2v-A14B",
            42.5,
            40_000.0,
        )
        assert json.loads(old["optimizations_applied"]) == ["dtype:bf16", "vae_tiling"]
        assert old["error_category"] == "out_of_memory_gpu"
        assert json.loads(old["recovery_suggestions"]) == ["enable VAE tiling"]
        assert old["status"] == "failed" and old["task_id"] == "old-1"
        if shape == "text key":
            assert old["id"] == "old-1"
        keys = [r["id"] for r in rows]
        assert None not in keys and len(set(keys)) == 3  # every row has a valid, unique key
        if shape == "text key":
            assert by_run[fresh.run_id]["id"] == "new-1"  # the task id, where it is free
            assert by_run[retry.run_id]["id"] == retry.run_id  # taken: the run id
        for r in (by_run[fresh.run_id], by_run[retry.run_id]):
            assert r["prompt"] == ""  # NOT NULL without a default: a neutral value

        # genperf reads its records back from the service's table.
        assert store.get_run(done.run_id) == done
        assert store.get_task("old-1") == retry
        assert store.count_tasks(TaskQuery()) == 3
    finally:
        store.close()


def test_a_table_genperf_made_is_written_with_its_own_upsert(db_url: str) -> None:
    store = SqlStore(db_url)
    try:
        assert store._service is None
        record = make_task()
        store.save_task(record)
        store.save_task(record)
        assert store.count_tasks(TaskQuery()) == 1
    finally:
        store.close()
