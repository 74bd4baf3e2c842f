"""Every "at or above" edge, exactly on the edge: a peak of exactly 85.0 % or 95.0 %, a time
equal to its target, a load equal to its threshold, a share equal to MIN_SHARE, a duration
equal to a histogram bound. The Python tally (analysis/window.py) gives the expected counts,
and the SQL twin (storage/aggregates.py) must agree on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest

from genperf.analysis.bottlenecks import MIN_SHARE, Severity, detect_bottlenecks
from genperf.analysis.failures import classify
from genperf.analysis.window import generation_targets, tally
from genperf.config import Settings
from genperf.exporters.prometheus import DURATION_BUCKETS, TaskOutcomes
from genperf.records import ErrorCategory, TaskRecord
from genperf.storage.codec import task_to_row
from genperf.storage.schema import generation_tasks
from genperf.storage.sql import SqlStore
from genperf.tally import (
    GPU_CRITICAL_CELSIUS,
    GPU_HOT_CELSIUS,
    LOAD_MIN_SECONDS,
    LOAD_SHARE,
    LOAD_SLOW_SECONDS,
    LOW_GPU_UTILIZATION_PERCENT,
)
from genperf.testing import make_task

from .conftest import T0, history
from .test_sql_aggregates import assert_same, everything, sql_store  # noqa: F401  (fixture)

SETTINGS = Settings()
BT = SETTINGS.benchmark_targets
TARGET = generation_targets(SETTINGS)["720p"]
FACTOR = BT.generation_time_acceptable_factor
TOTAL = 1000.0  # MiB: peaks below are exact percentages of it (850 -> 85.0 %)


def _pct(percent: float) -> float:
    return percent * TOTAL / 100.0


def on_the_edges() -> list[TaskRecord]:
    base = {
        "resolution": "1280x720",
        "vram_total_mb": TOTAL,
        "ram_total_mb": TOTAL,
        "avg_gpu_utilization_percent": 90.0,
    }
    at_acceptable = make_task(
        task_id="at-acceptable",
        started_at=T0,
        peak_vram_usage_mb=_pct(BT.vram_usage_percent.acceptable),  # 85.0 %
        peak_ram_usage_mb=_pct(BT.ram_usage_percent.acceptable),
        avg_cpu_percent=BT.cpu_usage_percent.acceptable,
        generation_time_seconds=TARGET,  # equal to its target: on target
        model_load_time_seconds=LOAD_SLOW_SECONDS,
        peak_gpu_temperature_celsius=GPU_HOT_CELSIUS,
        **{**base, "avg_gpu_utilization_percent": LOW_GPU_UTILIZATION_PERCENT},
    )
    at_maximum = make_task(
        task_id="at-maximum",
        started_at=T0.replace(minute=10),
        peak_vram_usage_mb=_pct(BT.vram_usage_percent.maximum),  # 95.0 %
        peak_ram_usage_mb=_pct(BT.ram_usage_percent.acceptable),  # VRAM alone is over
        avg_cpu_percent=BT.cpu_usage_percent.maximum,
        generation_time_seconds=TARGET * FACTOR,  # equal to "acceptable": over target only
        model_load_time_seconds=None,
        peak_gpu_temperature_celsius=GPU_CRITICAL_CELSIUS,
        **base,
    )
    load_share = make_task(
        task_id="load-share",
        started_at=T0.replace(minute=20),
        generation_time_seconds=LOAD_MIN_SECONDS / LOAD_SHARE,  # the load is exactly its share
        model_load_time_seconds=LOAD_MIN_SECONDS,
        peak_vram_usage_mb=None,
        peak_ram_usage_mb=None,
        avg_cpu_percent=None,
        peak_gpu_temperature_celsius=None,
        **base,
    )
    ram_at_maximum = make_task(
        task_id="ram-at-maximum",
        started_at=T0.replace(minute=25),
        peak_vram_usage_mb=None,
        peak_ram_usage_mb=_pct(BT.ram_usage_percent.maximum),  # host RAM alone is over
        avg_cpu_percent=None,
        peak_gpu_temperature_celsius=None,
        **base,
    )
    just_below = make_task(
        task_id="just-below",
        started_at=T0.replace(minute=30),
        peak_vram_usage_mb=_pct(BT.vram_usage_percent.acceptable) - 0.5,
        peak_ram_usage_mb=_pct(BT.ram_usage_percent.acceptable) - 0.5,
        avg_cpu_percent=BT.cpu_usage_percent.acceptable - 0.01,
        generation_time_seconds=TARGET - 0.01,
        model_load_time_seconds=LOAD_SLOW_SECONDS - 0.01,
        peak_gpu_temperature_celsius=GPU_HOT_CELSIUS - 0.01,
        **base,
    )
    return [at_acceptable, at_maximum, load_share, ram_at_maximum, just_below]


def test_the_python_tally_counts_each_edge_as_reached():
    assert TARGET * LOAD_SHARE > LOAD_SLOW_SECONDS  # the slow load does not also dominate
    t = tally(on_the_edges(), SETTINGS)
    for key, acceptable in (("vram", 2), ("ram", 3), ("cpu", 2)):
        assert getattr(t, f"{key}_ge_acceptable") == acceptable, key
        assert getattr(t, f"{key}_ge_maximum") == 1, key
    assert t.memory_over == 2  # one by VRAM alone, one by host RAM alone
    assert t.over_target == 1 and t.over_acceptable == 0
    assert t.time_score_sum == pytest.approx(1.0 + TARGET / (TARGET * FACTOR) + 3.0)
    assert t.load_slow == 1 and t.load_dominant == 1
    assert t.temp_hot == 2 and t.temp_critical == 1
    assert t.cpu_busy_gpu_idle == 0  # CPU at acceptable, but the GPU at 50 % is not idle


def test_the_sql_tally_agrees_exactly_on_the_edges(sql_store: SqlStore):  # noqa: F811
    tasks = on_the_edges()
    with sql_store._engine.begin() as conn:
        conn.execute(generation_tasks.insert(), [task_to_row(t) for t in tasks])
    from genperf.storage import aggregates

    assert_same(aggregates.window_tally(sql_store, everything(), SETTINGS), tally(tasks, SETTINGS))


def test_a_share_of_exactly_min_share_is_a_bottleneck():
    n = round(1 / MIN_SHARE)  # 20 tasks: 1 of them is exactly MIN_SHARE
    tasks = history(n, vram_total_mb=TOTAL, peak_vram_usage_mb=_pct(50.0))
    tasks[0] = make_task(
        task_id="edge", vram_total_mb=TOTAL, peak_vram_usage_mb=_pct(BT.vram_usage_percent.maximum)
    )
    found = detect_bottlenecks(tasks, SETTINGS).get("vram")
    assert found is not None and found.severity is Severity.CRITICAL
    assert found.affected_tasks == ("edge",)


def test_a_duration_equal_to_a_bucket_bound_is_in_that_bucket():
    bound = DURATION_BUCKETS[3]
    outcomes = TaskOutcomes()
    outcomes.observe(make_task(generation_time_seconds=float(bound)))
    (hist,) = outcomes._durations.values()
    assert hist.buckets[3] == 1 and hist.buckets[2] == 0


def test_outer_only_rules_look_at_the_raised_exception_not_its_causes():
    assert classify(ValueError("bad config"), "model_load")[0] is ErrorCategory.MODEL_LOAD_ERROR
    try:
        try:
            raise ValueError("bad config")
        except ValueError as inner:
            raise RuntimeError("the wrapper gave up") from inner
    except RuntimeError as outer:
        wrapped = outer
    assert classify(wrapped, "model_load")[0] is ErrorCategory.UNKNOWN
    assert classify(wrapped, "denoise")[0] is ErrorCategory.UNKNOWN
