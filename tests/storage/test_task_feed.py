"""The task-row feed (``Store.task_rows``) and what Prometheus folds from it
(``StoreTaskFamilies``): every finished row exactly once, over every store, including a row
whose transaction commits after a later one (PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, insert

from genperf.config import Settings
from genperf.exporters.prometheus_tasks import StoreTaskFamilies
from genperf.records import TaskStatus
from genperf.storage import SqlStore
from genperf.storage.codec import task_to_row
from genperf.storage.schema import generation_tasks
from genperf.testing import ManualClock, make_task


def finished(families: StoreTaskFamilies) -> dict[tuple[str, str], float]:
    """(node, status) -> genperf_tasks_finished_total, zeros left out."""
    text = families.exposition(openmetrics=False).decode()
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "genperf_tasks_finished_total" and s.value:
                key = (s.labels["node"], s.labels["status"])
                out[key] = out.get(key, 0) + s.value
    return out


def families_of(store, clock: ManualClock | None = None, **kw) -> StoreTaskFamilies:
    return StoreTaskFamilies(
        lambda: store, Settings(), clock=clock or ManualClock(0.0), wait_seconds=30.0, **kw
    )


def test_the_feed_returns_newer_rows_by_id_and_the_asked_ones(store):
    for i in range(5):
        store.save_task(make_task(task_id=f"t{i}"))
    rows = store.task_rows(0, (), 3)
    assert [r.task_id for _, r in rows] == ["t0", "t1", "t2"]
    ids = [row_id for row_id, _ in rows]
    assert ids == sorted(ids)
    rest = store.task_rows(ids[-1], [ids[0]], 10)
    assert sorted(r.task_id for _, r in rest) == ["t0", "t3", "t4"]


def test_a_running_row_counts_once_when_it_finishes_and_a_resave_not_again(store):
    clock = ManualClock(0.0)
    families = families_of(store, clock)
    try:
        running = make_task(task_id="r", status=TaskStatus.RUNNING, node="n1")
        store.save_task(running)
        store.save_task(make_task(task_id="done", node="n2"))
        assert finished(families) == {("n2", "completed"): 1}  # a running row is not finished
        store.save_task(dataclasses.replace(running, status=TaskStatus.FAILED))  # same row
        families.changed()
        assert finished(families) == {("n2", "completed"): 1, ("n1", "failed"): 1}
        store.save_task(dataclasses.replace(running, status=TaskStatus.FAILED))  # saved twice
        clock.advance(5.0)
        assert finished(families) == {("n2", "completed"): 1, ("n1", "failed"): 1}
    finally:
        families.close()


def test_nothing_is_shown_until_the_first_pass_is_complete_and_then_all_of_it(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'feed.db'}")
    for i in range(7):
        store.save_task(make_task(task_id=f"t{i}"))
    families = families_of(store, batch_rows=2)  # four reads for seven rows
    try:
        assert finished(families) == {("test-node", "completed"): 7}
    finally:
        families.close()
        store.close()


@pytest.fixture
def on_sqlite(tmp_path) -> Iterator[tuple[SqlStore, ManualClock, StoreTaskFamilies]]:
    store = SqlStore(f"sqlite:///{tmp_path / 'feed.db'}")
    clock = ManualClock(0.0)
    families = families_of(store, clock)
    yield store, clock, families
    families.close()
    store.close()


def test_the_families_are_rendered_once_per_change(on_sqlite):
    store, clock, families = on_sqlite
    store.save_task(make_task(task_id="a"))
    first = families.exposition(openmetrics=False)
    clock.advance(5.0)  # a refresh, but nothing changed: the same bytes, not re-rendered
    assert families.exposition(openmetrics=False) is first
    store.save_task(make_task(task_id="b"))
    families.changed()
    assert families.exposition(openmetrics=False) is not first
    assert finished(families) == {("test-node", "completed"): 2}
    assert not families.exposition(openmetrics=True).endswith(b"# EOF\n")  # a prefix


def test_a_row_committed_after_a_later_one_is_still_counted(postgres_schema_url):
    """PostgreSQL hands out ids at insert: a transaction holding id n can commit after one
    holding n+1 was read. The fold rechecks such gaps instead of skipping them forever."""
    store = SqlStore(postgres_schema_url)
    clock = ManualClock(0.0)
    families = families_of(store, clock)
    engine = create_engine(postgres_schema_url)
    try:
        store.save_task(make_task(task_id="first"))
        assert finished(families) == {("test-node", "completed"): 1}
        with engine.connect() as slow:
            slow.begin()
            slow.execute(insert(generation_tasks), task_to_row(make_task(task_id="slow")))
            store.save_task(make_task(task_id="fast"))  # a higher id, committed first
            clock.advance(5.0)
            assert finished(families) == {("test-node", "completed"): 2}
            slow.commit()
        clock.advance(5.0)
        assert finished(families) == {("test-node", "completed"): 3}
    finally:
        families.close()
        engine.dispose()
        store.close()


def test_the_series_count_follows_nodes_and_models_not_tasks(on_sqlite):
    store, _, families = on_sqlite

    def series() -> int:
        text = families.exposition(openmetrics=False).decode()
        return sum(1 for line in text.splitlines() if line and not line.startswith("#"))

    def add(start: int, count: int) -> None:
        for i in range(start, start + count):
            store.save_task(
                make_task(
                    task_id=f"t{i}",
                    node=f"node-{i % 4}",
                    model_type=f"model-{i % 3}",
                    generation_time_seconds=float(i % 500),
                    status=TaskStatus.FAILED if i % 7 == 0 else TaskStatus.COMPLETED,
                )
            )
        families.changed()

    add(0, 100)
    after_100 = series()
    add(100, 900)
    assert series() == after_100
    assert "task_id" not in families.exposition(openmetrics=False).decode()
