"""The analysis compares nodes: one that stands out from the fleet for the same model x
resolution class is a bottleneck with evidence and advice, on the Python and the SQL path."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from genperf.analysis import Window, analyze, build_report, detect_bottlenecks
from genperf.analysis.report import load_window
from genperf.config import Settings
from genperf.records import GpuReading, SystemSample, TaskRecord, TaskStatus
from genperf.storage import MemoryStore, SqlStore
from genperf.storage.base import TaskQuery
from genperf.testing import make_task

from .conftest import T0
from .test_sql_aggregates import sql_store  # noqa: F401  (SQLite and PostgreSQL stores)

NOW = T0 + timedelta(hours=20)


def fleet_history() -> list[TaskRecord]:
    """Four nodes, 720p and 1080p: node-3's 720p tasks take 1.41x the fleet's; node-4 gets
    only 1080p work (slow by nature, never compared with 720p); node-2 fails 4 in 10."""
    out: list[TaskRecord] = []
    for i in range(40):
        started = T0 + timedelta(minutes=7 * i)
        out.append(make_task(node="node-1", started_at=started, generation_time_seconds=200.0))
        out.append(
            make_task(
                node="node-3",
                started_at=started,
                generation_time_seconds=282.0,
            )
        )
        failing = i % 10 < 4
        out.append(
            make_task(
                node="node-2",
                started_at=started,
                status=TaskStatus.FAILED if failing else TaskStatus.COMPLETED,
                error_category="out_of_memory_gpu" if failing else None,
                generation_time_seconds=None if failing else 200.0,
            )
        )
        out.append(
            make_task(
                node="node-4",
                resolution="1920x1080",
                started_at=started,
                generation_time_seconds=900.0,
            )
        )
    return out


def samples() -> list[SystemSample]:
    hot = GpuReading(index=0, throttle_reasons=("hw_thermal_slowdown",))
    cool = GpuReading(index=0, throttle_reasons=())
    return [
        SystemSample(
            T0 + timedelta(minutes=i),
            node,
            gpus=(hot if node == "node-3" and i % 10 < 3 else cool,),
        )
        for i in range(100)
        for node in ("node-1", "node-2", "node-3")
    ]


def test_a_slow_node_and_a_failing_node_stand_out_with_evidence(settings: Settings) -> None:
    analysis = detect_bottlenecks(Window.of(fleet_history(), settings, samples()), settings)
    node = analysis.get("node")
    assert node is not None
    assert analysis.checks["node"] == "bottleneck"
    flagged = {n["node"]: n for n in node.evidence["nodes"]}
    assert set(flagged) == {"node-2", "node-3"}  # node-4 is slow only against itself: 1080p
    assert (
        "node-3: 720p t2v-A14B median 41 % slower than the fleet over 40 tasks; GPU thermal "
        "throttling in 30 % of samples" in node.summary
    )
    assert "node-2: 720p t2v-A14B failure rate 40 % against the fleet's 0 % over 40 tasks" in (
        node.summary
    )
    assert flagged["node-3"]["fleet_median_seconds"] == 200.0
    assert flagged["node-3"]["throttled_sample_share"] == pytest.approx(0.3)
    assert node.affected_count == 80


def test_no_node_stands_out_in_a_uniform_fleet(settings: Settings) -> None:
    even = [
        dataclasses.replace(t, generation_time_seconds=200.0, status=TaskStatus.COMPLETED)
        for t in fleet_history()
        if t.node != "node-4"
    ]
    analysis = detect_bottlenecks(Window.of(even, settings), settings)
    assert analysis.get("node") is None
    assert analysis.checks["node"] == "ok"
    hot = [
        dataclasses.replace(
            t, peak_gpu_temperature_celsius=(t.peak_gpu_temperature_celsius or 0) + 15
        )
        if t.node == "node-1"
        else t
        for t in even
    ]
    found = detect_bottlenecks(Window.of(hot, settings), settings).get("node")
    assert found is not None
    assert [(n["node"], n["reasons"]) for n in found.evidence["nodes"]] == [("node-1", ["hot"])]
    one = [t for t in fleet_history() if t.node == "node-3"]
    assert detect_bottlenecks(Window.of(one, settings), settings).checks["node"] == "no_data"


def test_the_advice_names_the_node(settings: Settings) -> None:
    store = MemoryStore()
    for t in fleet_history():
        store.save_task(t)
    report = build_report(store, settings, now=NOW)
    advice = {r.id: r for r in report.recommendations}
    assert "inspect_node" in advice
    assert "node-3: 720p t2v-A14B median 41 % slower" in advice["inspect_node"].evidence


def test_the_sql_path_finds_the_same_nodes(
    settings: Settings,
    sql_store: SqlStore,  # noqa: F811  (the fixture imported above)
) -> None:
    memory = MemoryStore()
    history = fleet_history()  # one set of task ids for both stores
    for store in (sql_store, memory):
        for t in history:
            store.save_task(t)
        store.save_samples(samples())
    query = TaskQuery(since=T0, until=NOW)
    by_sql = load_window(sql_store, settings, query, sql_min_tasks=0)
    by_records = load_window(memory, settings, query)
    assert (by_sql.method, by_records.method) == ("sql", "records")
    a = analyze(by_sql, settings, time_window_hours=20, now=NOW).bottlenecks.get("node")
    b = analyze(by_records, settings, time_window_hours=20, now=NOW).bottlenecks.get("node")
    assert a is not None
    assert a == b


def test_the_rest_of_the_fleet_median_is_exact_with_ties() -> None:
    import random
    import statistics

    from genperf.analysis.nodes import _median_without

    rnd = random.Random(11)
    for _ in range(500):
        whole = [float(rnd.randint(0, 6)) for _ in range(rnd.randint(1, 30))]
        part = rnd.sample(whole, rnd.randint(0, len(whole)))
        rest = list(whole)
        for v in part:
            rest.remove(v)
        expected = statistics.median(rest) if rest else None
        assert _median_without(sorted(whole), sorted(part)) == expected
