"""build_report: the window it reads, the shape it returns, and the same answer from every store."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from genperf.analysis import SPEC_KEYS, analyze, build_report, load_window
from genperf.analysis.bottlenecks import AnalysisStatus
from genperf.config import Settings
from genperf.records import SystemSample, TaskRecord, TaskStatus
from genperf.storage import MemoryStore, Store, TaskQuery
from genperf.storage.sql import SqlStore

from .conftest import T0, history, vary

NOW = T0 + timedelta(hours=24)
EXTRA_KEYS = (
    "time_window_hours",
    "task_count",
    "generated_at",
    "window",
    "filters",
    "summary",
    "efficiency",
    "benchmarks",
    "failures",
    "method",
)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = (
        MemoryStore() if request.param == "memory" else SqlStore(f"sqlite:///{tmp_path / 'g.db'}")
    )
    yield opened
    opened.close()


def fill(store: Store, tasks: list[TaskRecord] | None = None) -> list[TaskRecord]:
    tasks = tasks if tasks is not None else known_tasks()
    for t in tasks:
        store.save_task(t)
    store.save_samples(
        [
            SystemSample(
                taken_at=NOW - timedelta(minutes=1),
                node="n",
                disk_path="/m",
                disk_free_bytes=2 * 1024**3,
            )
        ]
    )
    return tasks


def known_tasks() -> list[TaskRecord]:
    # 36 tasks over the last 12 hours (every 20 min), a third at 96 % VRAM, 4 failed in the decode
    recent = history(36, every_minutes=20)
    recent = [dataclasses.replace(t, started_at=t.started_at + timedelta(hours=12)) for t in recent]
    recent = vary(recent, 0.34, peak_vram_usage_mb=81_920 * 0.96)
    recent[-4:] = [
        dataclasses.replace(
            t,
            status=TaskStatus.FAILED,
            error_category="out_of_memory_gpu",
            failed_phase="vae_decode",
        )
        for t in recent[-4:]
    ]
    old = history(10)  # the day before the window
    old = [dataclasses.replace(t, started_at=t.started_at - timedelta(hours=30)) for t in old]
    other = history(5, every_minutes=60, model_type="i2v-A14B")
    other = [dataclasses.replace(t, started_at=t.started_at + timedelta(hours=13)) for t in other]
    running = history(2, status=TaskStatus.RUNNING)
    running = [dataclasses.replace(t, started_at=NOW - timedelta(minutes=5)) for t in running]
    return recent + old + other + running


def test_the_dict_is_the_spec_block_then_genperfs_extras(store: Store, settings: Settings) -> None:
    fill(store)
    d = build_report(store, settings, now=NOW).to_dict()
    assert tuple(d) == SPEC_KEYS + EXTRA_KEYS
    json.dumps(d, allow_nan=False)  # JSON-safe
    assert d["task_count"] == 41
    assert d["success_rate"] == pytest.approx(37 / 41)
    assert d["bottleneck_analysis"]["status"] == "bottlenecks_found"
    assert {b["resource"] for b in d["bottleneck_analysis"]["bottlenecks"]} >= {"vram", "disk"}
    ids = [r["id"] for r in d["optimization_recommendations"]]
    assert "vae_tiling" in ids and "model_cpu_offload" in ids and "free_disk_space" in ids
    assert d["failures"]["by_category"] == {"out_of_memory_gpu": 4}
    assert d["performance_trends"]["generation_time"]["720p"]["direction"] == "stable"
    assert d["generated_at"] == NOW.isoformat()
    assert d["window"] == {"start": (NOW - timedelta(hours=24)).isoformat(), "end": NOW.isoformat()}
    assert d["method"]["aggregation"] == "records"


def test_the_window_and_the_filters(store: Store, settings: Settings) -> None:
    fill(store)
    assert build_report(store, settings, now=NOW).task_count == 41  # not the old, not the running
    assert build_report(store, settings, now=NOW, time_window_hours=60).task_count == 51
    assert build_report(store, settings, now=NOW, model_type="i2v-A14B").task_count == 5
    ok = build_report(store, settings, now=NOW, success_only=True)
    assert ok.task_count == 37
    assert ok.summary.success_rate == 1.0
    assert ok.to_dict()["filters"] == {"model_type": None, "success_only": True, "nodes": []}


def test_stores_agree(tmp_path: Path, settings: Settings) -> None:
    mem, sql = MemoryStore(), SqlStore(f"sqlite:///{tmp_path / 'g.db'}")
    fill(sql, fill(mem))
    a = build_report(mem, settings, now=NOW).to_dict()
    b = build_report(sql, settings, now=NOW).to_dict()
    sql.close()
    assert a == b


def test_an_empty_store_is_no_data_not_zero(store: Store, settings: Settings) -> None:
    d = build_report(store, settings, now=NOW).to_dict()
    assert d["task_count"] == 0
    assert d["average_generation_time"] is None
    assert d["success_rate"] is None
    assert d["resource_efficiency"] is None
    assert d["bottleneck_analysis"]["status"] == AnalysisStatus.NO_DATA.value
    assert d["optimization_recommendations"] == []
    assert {b["status"] for b in d["benchmarks"]} == {"no_data"}


def test_nan_and_infinity_never_reach_the_dict(settings: Settings) -> None:
    store = MemoryStore()
    for i, t in enumerate(history(6)):
        bad = math.nan if i % 2 else math.inf
        store.save_task(
            dataclasses.replace(
                t,
                started_at=NOW - timedelta(hours=1, minutes=i),
                generation_time_seconds=bad,
                peak_vram_usage_mb=bad,
            )
        )
    json.dumps(build_report(store, settings, now=NOW).to_dict(), allow_nan=False)


def test_a_bad_window_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="time_window_hours"):
        build_report(MemoryStore(), settings, time_window_hours=0)


def test_a_window_longer_than_the_calendar_is_all_history(settings: Settings) -> None:
    store = MemoryStore()
    fill(store)
    assert build_report(store, settings, now=NOW, time_window_hours=1e12).task_count == 51


def test_now_defaults_to_the_current_time(settings: Settings) -> None:
    report = build_report(MemoryStore(), settings)
    assert report.generated_at.tzinfo is not None
    assert report.window_end == report.generated_at


def test_a_large_memory_store_is_streamed_with_a_sample(settings: Settings) -> None:
    store = MemoryStore()
    for t in history(400, every_minutes=2):
        store.save_task(dataclasses.replace(t, started_at=t.started_at + timedelta(hours=10)))
    query = TaskQuery(since=NOW - timedelta(hours=24), until=NOW)
    window = load_window(store, settings, query, sample_size=100)
    r = analyze(window, settings, time_window_hours=24, now=NOW)
    assert r.task_count == 400  # exact
    assert 50 < r.method.tasks_read < 150
    assert r.method.aggregation == "records"
    assert r.summary.estimated
    assert sum(g.task_count for g in r.summary.breakdown) == pytest.approx(400, abs=2)
