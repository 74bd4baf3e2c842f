"""Roll-ups answer exactly what the raw tasks answer (storage/rollups.py).

A seeded, awkward history over three days and four nodes (None everywhere it may be, every
status, records saved running then finished, records superseded into another bucket, runs
marked interrupted) is written through ``save_task`` on SQLite and the real PostgreSQL, with
roll-ups kept current as it is written. Random windows (edge hours, whole days, node and model
filters, success only) are then answered from the roll-ups and from the raw tasks, and a
rebuild from the raw tasks must give the very rows the writes kept.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from genperf.config import Settings
from genperf.records import TaskRecord, TaskStatus
from genperf.storage.base import TaskQuery
from genperf.storage.memory import MemoryStore
from genperf.tally import FailureRow, Tally

from .conftest import T0
from .test_sql_aggregates import awkward_history, sql_store  # noqa: F401 (fixture)

sqlalchemy = pytest.importorskip("sqlalchemy")

from genperf.storage import aggregates, rollups  # noqa: E402
from genperf.storage.schema import task_rollup_failures, task_rollups  # noqa: E402
from genperf.storage.sql import SqlStore  # noqa: E402

NODES = ("node-a", "node-b", "node-c", "node-d")
MODELS = ("t2v-A14B", "i2v-A14B")


def fleet_history(seed: int = 3) -> list[TaskRecord]:
    """awkward_history spread over ~3 days, four nodes and two models, in random order."""
    rnd = random.Random(seed)
    out = []
    for i, r in enumerate(awkward_history(300, seed)):
        out.append(
            dataclasses.replace(
                r,
                run_id=f"run-{i}",
                node=rnd.choice(NODES),
                model_type=rnd.choice(MODELS),
                started_at=T0 + timedelta(minutes=rnd.uniform(0, 72 * 60)),
            )
        )
    return out


def write(store: SqlStore, records: list[TaskRecord], seed: int = 4) -> list[TaskRecord]:
    """Save each record as a real writer would (running first, some superseded into another
    bucket, some marked interrupted); returns the records as finally stored."""
    rnd = random.Random(seed)
    final: dict[str, TaskRecord] = {}
    for r in records:
        if rnd.random() < 0.3:  # started, then finished: the running row counts nowhere
            store.save_task(dataclasses.replace(r, status=TaskStatus.RUNNING))
        if r.status is not TaskStatus.RUNNING and rnd.random() < 0.15:
            # written once elsewhere and finished, then rewritten: counted once, where it is now
            store.save_task(dataclasses.replace(r, node="node-z", resolution="64x64"))
        store.save_task(r)
        final[r.run_id] = r
    running = [r.run_id for r in final.values() if r.status is TaskStatus.RUNNING]
    gone = running[: len(running) // 2]
    store.mark_interrupted(gone, T0 + timedelta(days=4))
    for run_id in gone:
        final[run_id] = dataclasses.replace(final[run_id], status=TaskStatus.INTERRUPTED)
    return list(final.values())


def close(a: Tally, b: Tally) -> None:
    for f in dataclasses.fields(Tally):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) or isinstance(y, float):
            assert x == pytest.approx(y, rel=1e-9, abs=1e-9), f.name
        else:
            assert x == y, f.name


def runs(rows: tuple[FailureRow, ...]) -> dict[tuple[object, ...], int]:
    out: dict[tuple[object, ...], int] = {}
    for row in rows:
        out[row[:4]] = out.get(row[:4], 0) + row.runs
    return out


def windows(rnd: random.Random, n: int) -> list[TaskQuery]:
    out = []
    for _ in range(n):
        since = T0 + timedelta(minutes=rnd.uniform(-60, 60 * 60))
        until = since + timedelta(minutes=rnd.choice([30, 61, 180, 1500, 3000, 5000]))
        nodes = tuple(sorted(rnd.sample(NODES, rnd.choice([0, 1, 2]))))
        out.append(
            TaskQuery(
                since=since,
                until=until,
                nodes=nodes,
                model_type=rnd.choice([None, None, *MODELS]),
                success_only=rnd.random() < 0.2,
            )
        )
    # exact hour and day edges, the whole history, and until on an hour's first instant
    start = T0.replace(minute=0, second=0, microsecond=0)
    out.append(TaskQuery(since=start, until=start + timedelta(days=2)))
    out.append(TaskQuery(since=start - timedelta(days=1), until=start + timedelta(days=5)))
    out.append(TaskQuery(since=start + timedelta(hours=1), until=start + timedelta(hours=30)))
    return out


@pytest.fixture
def written(sql_store: SqlStore) -> tuple[SqlStore, list[TaskRecord], Settings]:  # noqa: F811
    settings = Settings()
    assert sql_store.start_rollups(settings)
    return sql_store, write(sql_store, fleet_history()), settings


def raw_store(records: list[TaskRecord]) -> MemoryStore:
    memory = MemoryStore()
    for r in records:
        memory.save_task(r)
    return memory


def test_rolled_up_answers_equal_the_raw_ones(
    written: tuple[SqlStore, list[TaskRecord], Settings],
) -> None:
    store, records, settings = written
    memory = raw_store(records)
    rnd = random.Random(5)
    used = 0
    for query in windows(rnd, 40):
        rolled = aggregates._rolled(store, query, settings)
        if rolled is None:
            continue
        used += 1
        plan, keep = rolled
        finished = dataclasses.replace(query, finished_only=True)
        raw_tally = aggregates.window_tally(store, finished, settings)  # one raw statement
        close(aggregates.rolled_tally(store, finished, settings, plan, keep), raw_tally)
        raw_failures = runs(aggregates.window_failures(store, finished))
        assert runs(aggregates.rolled_failures(store, finished, plan, keep)) == raw_failures
        assert store.count_tasks(query) == memory.count_tasks(query)
        assert store.task_counts_by_node(query) == memory.task_counts_by_node(query)
    assert used >= 30  # the windows do exercise the roll-ups


def test_a_rebuild_gives_the_rows_the_writes_kept(
    written: tuple[SqlStore, list[TaskRecord], Settings],
) -> None:
    store, _, settings = written

    def rows() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with store._read("read") as conn:
            tallies = [
                tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                for row in conn.execute(sqlalchemy.select(task_rollups)).all()
            ]
            fails = list(conn.execute(sqlalchemy.select(task_rollup_failures)).all())
        return sorted(tallies, key=repr), sorted(fails, key=repr)

    kept = rows()
    assert kept[0] and kept[1]
    steps: list[tuple[int, int]] = []
    days = store.rebuild_rollups(
        settings, days_per_step=2, progress=lambda d, t: steps.append((d, t))
    )
    assert days >= 3 and steps[-1] == (days, days) and len(steps) == math.ceil(days / 2)
    assert rows() == kept
    assert store.rollup_bands() == rollups.fingerprint(settings)


def test_other_bands_or_no_bands_read_the_raw_tasks(
    written: tuple[SqlStore, list[TaskRecord], Settings],
) -> None:
    store, _, settings = written
    start = T0.replace(minute=0, second=0, microsecond=0)
    query = TaskQuery(since=start, until=start + timedelta(days=2))
    assert aggregates._rolled(store, query, settings) is not None
    other = settings.model_copy(
        update={
            "benchmark_targets": settings.benchmark_targets.model_copy(
                update={"generation_time_acceptable_factor": 3.0}
            )
        }
    )
    assert aggregates._rolled(store, query, other) is None
    with store._write("forget") as conn:
        conn.execute(sqlalchemy.delete(rollups.rollup_bands))
    assert aggregates._rolled(store, query) is None


def test_the_plan_covers_the_window_once() -> None:
    rnd = random.Random(7)
    for _ in range(200):
        since = T0 + timedelta(minutes=rnd.uniform(-3000, 3000))
        until = since + timedelta(minutes=rnd.choice([0, 1, 59, 60, 61, 1440, 5000, 9000]))
        p = rollups.plan(since, until)
        pieces = [(a, b) for a, b, _ in p.raw] + [
            (rollups.start_of(lo), rollups.start_of(hi)) for lo, hi in [*p.hours, *p.days]
        ]
        pieces.sort()
        assert pieces[0][0] == since and pieces[-1][1] == until
        for (_, end), (start, _) in itertools.pairwise(pieces):
            assert end == start
        assert all(lo % 24 == 0 and hi % 24 == 0 for lo, hi in p.days)


def test_a_probed_sample_is_bounded_and_spread_over_the_window(
    written: tuple[SqlStore, list[TaskRecord], Settings],
) -> None:
    store, _, _ = written
    since, until = T0, T0 + timedelta(hours=72)
    query = TaskQuery(since=since, until=until, nodes=("node-a", "node-b"))
    sample = aggregates.probed_sample(store, query, since, until, 40)
    assert 20 <= len(sample) <= 40
    assert [r.started_at for r in sample] == sorted(r.started_at for r in sample)
    assert all(since <= r.started_at <= until for r in sample)
    assert all(r.status is not TaskStatus.RUNNING and r.node in query.nodes for r in sample)
    thirds = {int((r.started_at - since) / (until - since) * 3) for r in sample}
    assert thirds == {0, 1, 2}


@pytest.mark.parametrize(
    ("nodes", "model_type", "want"),
    [((), None, 500), (("node-a", "node-c"), MODELS[0], 60)],
)
def test_a_probed_sample_is_the_first_tasks_of_each_slice(
    written: tuple[SqlStore, list[TaskRecord], Settings],
    nodes: tuple[str, ...],
    model_type: str | None,
    want: int,
) -> None:
    """Each probe gives its slice's first tasks (by start, at most want / probes of them),
    whether the probes are one statement (PostgreSQL) or one each (SQLite)."""
    store, records, _ = written
    since, until = T0 + timedelta(minutes=7), T0 + timedelta(hours=70)
    query = TaskQuery(since=since, until=until, nodes=nodes, model_type=model_type)
    finished = dataclasses.replace(query, finished_only=True)
    matching = sorted(raw_store(records).query_tasks(finished), key=lambda r: r.started_at)
    probes = min(aggregates.PROBES, want)
    per, step = -(-want // probes), (until - since) / probes
    expected = []
    for k in range(probes):
        lo, hi = since + step * k, since + step * (k + 1)
        last = k == probes - 1
        expected += [r for r in matching if lo <= r.started_at and (last or r.started_at < hi)][
            :per
        ]
    sample = aggregates.probed_sample(store, query, since, until, want)
    assert [r.run_id for r in sample] == [r.run_id for r in expected]
    assert per > 1 or len(nodes) > 0  # both a slice limit above one and a filtered probe
    assert len(expected) < len(matching)  # the limit does leave tasks out


def test_concurrent_writers_of_one_bucket_lose_nothing(sql_store: SqlStore) -> None:  # noqa: F811
    """Writers in threads (each its own connection) finish tasks of the same hour, model and
    class at once: the day and fleet rows they all remake must count every task."""
    settings = Settings()
    sql_store.start_rollups(settings)
    start = T0.replace(minute=0, second=0, microsecond=0)
    records = [
        dataclasses.replace(
            r,
            run_id=f"c-{i}",
            node=NODES[i % 2],
            model_type=MODELS[0],
            resolution="1280x720",
            status=TaskStatus.COMPLETED,
            started_at=start + timedelta(seconds=i),
        )
        for i, r in enumerate(awkward_history(80, 9))
    ]
    gate = threading.Barrier(4)

    def writer(part: list[TaskRecord]) -> None:
        gate.wait()
        for r in part:
            sql_store.save_task(r)

    threads = [threading.Thread(target=writer, args=(records[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    query = TaskQuery(since=start, until=start + timedelta(days=1), finished_only=True)
    rolled = aggregates._rolled(sql_store, query, settings)
    assert rolled is not None
    total = aggregates.rolled_tally(sql_store, query, settings, *rolled)
    assert total.tasks == len(records)
    close(total, aggregates.window_tally(sql_store, query, settings))


def test_a_new_database_rolls_up_from_its_first_task_an_old_one_waits(tmp_path: Path) -> None:
    from genperf.storage import open_store

    fresh = Settings(database_url=f"sqlite:///{tmp_path / 'new.db'}")
    store = open_store(fresh)
    assert isinstance(store, SqlStore)
    assert store.rollup_bands() == rollups.fingerprint(fresh)
    store.close()
    old = SqlStore(f"sqlite:///{tmp_path / 'old.db'}")
    old.save_task(fleet_history()[0])
    old.close()
    reopened = open_store(Settings(database_url=f"sqlite:///{tmp_path / 'old.db'}"))
    assert isinstance(reopened, SqlStore)
    assert reopened.rollup_bands() is None  # its history needs `genperf rollups rebuild`
    reopened.close()
