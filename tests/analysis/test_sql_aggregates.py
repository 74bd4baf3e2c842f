"""storage/aggregates.py computes in SQL exactly what analysis/window.py computes in Python.

A seeded, deliberately awkward history (None everywhere it may be, zero totals, every status,
unknown categories, odd phases) is stored and aggregated both ways, on SQLite and on the real
PostgreSQL server (as the store tests do: GENPERF_TEST_POSTGRES_URL or 127.0.0.1:5432).
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from genperf.analysis.failures import count_failures, from_rows
from genperf.analysis.report import load_window
from genperf.analysis.window import tally
from genperf.config import Settings
from genperf.records import TaskRecord, TaskStatus
from genperf.storage.base import TaskQuery
from genperf.tally import Tally
from genperf.testing import make_task

from .conftest import T0

sqlalchemy = pytest.importorskip("sqlalchemy")
from genperf.storage import aggregates  # noqa: E402  (needs SQLAlchemy)
from genperf.storage.codec import task_to_row  # noqa: E402
from genperf.storage.schema import generation_tasks  # noqa: E402
from genperf.storage.sql import SqlStore  # noqa: E402

POSTGRES_URL = (
    os.environ.get("GENPERF_TEST_POSTGRES_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def awkward_history(n: int = 400, seed: int = 1) -> list[TaskRecord]:
    rnd = random.Random(seed)

    def maybe(value: float) -> float | None:
        return None if rnd.random() < 0.15 else value

    out = []
    for i in range(n):
        status = rnd.choice(
            [TaskStatus.COMPLETED] * 7
            + [TaskStatus.FAILED, TaskStatus.INTERRUPTED, TaskStatus.RUNNING]
        )
        done = status is TaskStatus.COMPLETED
        out.append(
            make_task(
                started_at=T0 + timedelta(minutes=3 * i),
                status=status,
                resolution=rnd.choice(["1280x720", "1920x1080", "832x480", "64x64"]),
                generation_time_seconds=rnd.choice([None, 0.0, rnd.uniform(20, 2000)]),
                model_load_time_seconds=rnd.choice([None, 0.0, rnd.uniform(0, 200)]),
                peak_vram_usage_mb=maybe(rnd.uniform(0, 82_000)),
                vram_total_mb=rnd.choice([None, 0.0, 81_920.0, 81_920.0]),
                peak_ram_usage_mb=maybe(rnd.uniform(0, 65_536)),
                ram_total_mb=rnd.choice([None, 65_536.0]),
                avg_cpu_percent=maybe(rnd.uniform(0, 100)),
                avg_gpu_utilization_percent=maybe(rnd.uniform(0, 100)),
                peak_gpu_temperature_celsius=maybe(rnd.uniform(50, 95)),
                gpu_throttle_reasons=rnd.choice(
                    [(), ("hw_thermal",), ("sw_power_cap",), ("hw_slowdown", "sw_power_cap")]
                ),
                optimizations_applied=rnd.choice(
                    [
                        (),
                        ("dtype:bf16",),
                        ("offload:model", "dtype:bf16"),
                        ("offload:sequential",),
                        ("vae_tiling",),
                    ]
                ),
                error_category=None
                if done
                else rnd.choice([None, "out_of_memory_gpu", "timeout", "bogus"]),
                failed_phase=None
                if done
                else rnd.choice([None, "vae_decode", "decode", "denoise"]),
            )
        )
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "sqlite":
        store = SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    else:
        store = SqlStore(request.getfixturevalue("postgres_schema_url"))
    yield store
    store.close()


@pytest.fixture
def stored(sql_store: SqlStore) -> tuple[SqlStore, list[TaskRecord]]:
    tasks = awkward_history()
    rows = [task_to_row(t) for t in tasks]  # one executemany: save_task commits each row
    with sql_store._engine.begin() as conn:
        conn.execute(generation_tasks.insert(), rows)
    return sql_store, tasks


def assert_same(a: Tally, b: Tally) -> None:
    for f in dataclasses.fields(Tally):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(y, float) or isinstance(x, float):
            assert x == pytest.approx(y, rel=1e-9), f.name
        else:
            assert x == y, f.name


def everything(**kw: object) -> TaskQuery:
    return TaskQuery(finished_only=True, newest_first=False, **kw)  # type: ignore[arg-type]


SETTINGS = [
    Settings(),
    Settings.model_validate(
        {
            "performance_thresholds": {"max_generation_time_480p": 100},
            "benchmark_targets": {
                "vram_usage_percent": {"optimal": 10, "acceptable": 20, "maximum": 30}
            },
        }
    ),
    # The spec's thresholds move the bands' limits (config.Settings._thresholds_are_the_limits).
    Settings.model_validate(
        {
            "performance_thresholds": {
                "max_vram_usage_percent": 50,
                "max_ram_usage_percent": 10,
                "min_success_rate": 1.0,
            }
        }
    ),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=["defaults", "custom", "thresholds"])
def test_the_sql_tally_equals_the_python_tally(
    stored: tuple[SqlStore, list[TaskRecord]], settings: Settings
) -> None:
    store, tasks = stored
    assert_same(aggregates.window_tally(store, everything(), settings), tally(tasks, settings))


def test_time_slices_add_up_to_the_whole(
    stored: tuple[SqlStore, list[TaskRecord]], settings: Settings
) -> None:
    store, tasks = stored
    q = everything(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=15))
    inside = [t for t in tasks if q.since <= t.started_at <= q.until]  # type: ignore[operator]
    expected = tally(inside, settings)
    for workers in (1, 3, 7):
        assert_same(aggregates.window_tally(store, q, settings, workers=workers), expected)
    assert_same(
        aggregates.window_tally(store, everything(), settings, workers=4), tally(tasks, settings)
    )


def test_failure_counts_are_the_same(stored: tuple[SqlStore, list[TaskRecord]]) -> None:
    store, tasks = stored
    assert from_rows(aggregates.window_failures(store, everything())) == count_failures(tasks)


def test_filters_apply(stored: tuple[SqlStore, list[TaskRecord]], settings: Settings) -> None:
    store, tasks = stored
    ok = [t for t in tasks if t.status is TaskStatus.COMPLETED]
    assert_same(
        aggregates.window_tally(store, everything(success_only=True), settings), tally(ok, settings)
    )


def test_the_whole_sample_is_every_finished_task(stored: tuple[SqlStore, list[TaskRecord]]) -> None:
    store, tasks = stored
    finished = [t for t in tasks if t.status is not TaskStatus.RUNNING]
    sample = aggregates.window_sample(store, everything(), 1.0)
    assert [t.run_id for t in sample] == [t.run_id for t in finished]
    for got, want in zip(sample, finished, strict=True):
        for f in dataclasses.fields(TaskRecord):
            if f.name not in aggregates._SKIPPED:  # no analysis reads those
                assert getattr(got, f.name) == getattr(want, f.name), f.name


def test_a_partial_sample_is_about_the_fraction(stored: tuple[SqlStore, list[TaskRecord]]) -> None:
    store, tasks = stored
    finished = sum(t.status is not TaskStatus.RUNNING for t in tasks)
    n = len(aggregates.window_sample(store, everything(), 0.25))
    assert 0.15 * finished < n < 0.35 * finished


def test_a_large_window_goes_through_sql_with_exact_totals(
    stored: tuple[SqlStore, list[TaskRecord]], settings: Settings
) -> None:
    store, tasks = stored
    w = load_window(store, settings, everything(), sample_size=50, sql_min_tasks=0)
    assert w.method == "sql"
    assert w.sampled and 20 < len(w.tasks) < 100
    assert_same(w.tally, tally(tasks, settings))
    small = load_window(store, settings, everything())
    assert small.method == "records"  # a small window: whole records
    assert_same(small.tally, w.tally)
    assert small.failures == w.failures


def test_the_postgres_statement_avoids_sqlite_only_functions(settings: Settings) -> None:
    from sqlalchemy.dialects import postgresql

    stmt = aggregates.tally_statement("postgresql", settings, [])
    text = str(stmt.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert "total(" not in text and "instr(" not in text and "LIMIT" not in text


def approx_equal(a: object, b: object, path: str = "") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            approx_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            approx_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def test_the_sql_path_gives_the_report_of_the_records_path(
    stored: tuple[SqlStore, list[TaskRecord]], settings: Settings
) -> None:
    from datetime import datetime

    from genperf.analysis import Window, analyze

    store, tasks = stored
    now = datetime(2026, 1, 3, tzinfo=T0.tzinfo)
    by_sql = load_window(store, settings, everything(), sql_min_tasks=0)
    assert by_sql.method == "sql" and not by_sql.sampled
    by_records = Window.of(tasks, settings)
    a = analyze(by_sql, settings, time_window_hours=24, now=now).to_dict()
    b = analyze(by_records, settings, time_window_hours=24, now=now).to_dict()
    a.pop("method"), b.pop("method")
    a.pop("window"), b.pop("window")
    approx_equal(a, b)


def test_an_in_memory_database_is_aggregated_on_its_one_connection(settings: Settings) -> None:
    store = SqlStore("sqlite://")
    tasks = awkward_history(120)
    with store._engine.begin() as conn:
        conn.execute(generation_tasks.insert(), [task_to_row(t) for t in tasks])
    assert aggregates.default_workers(store) == 1
    w = load_window(store, settings, everything(), sample_size=30, sql_min_tasks=0)
    store.close()
    assert w.method == "sql"
    assert_same(w.tally, tally(tasks, settings))


def test_an_empty_window_aggregates_to_nothing(sql_store: SqlStore, settings: Settings) -> None:
    assert aggregates.window_tally(sql_store, everything(), settings, workers=3) == Tally()
    assert aggregates.window_failures(sql_store, everything()) == ()
