"""The InfluxDB sink against a real influxd: what is queried back equals what the store holds,
also after an outage; the queue never blocks a generation; drops and refusals are counted."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from influx_server import InfluxServer, free_port

from genperf.collectors import HostCollector, ProcessPeakMemory, TorchMemoryProbe
from genperf.config import Settings
from genperf.exporters.influx import (
    GPU_MEASUREMENT,
    SAMPLE_MEASUREMENT,
    TASK_FIELD_KINDS,
    TASK_MEASUREMENT,
    task_timestamp_ns,
)
from genperf.monitor import PerformanceMonitor
from genperf.records import GPU_METRICS, HOST_METRICS, MIB, GpuReading, SystemSample, TaskRecord
from genperf.sinks.base import QueueLimits
from genperf.sinks.influx import InfluxSink
from genperf.storage import SqlStore, TaskQuery
from genperf.testing import FakeCollector, FakeTorchCuda, make_task, wait_until

GPU = GpuReading(  # the one boundary this machine lacks: a GPU (NVML's reading of it)
    index=0,
    name="NVIDIA H200",
    memory_used_bytes=40_000 * MIB,
    memory_total_bytes=143_771 * MIB,
    utilization_percent=97.0,
    temperature_celsius=71.0,
    power_watts=612.5,
    sm_clock_mhz=1980,
    throttle_reasons=("sw_thermal",),
)


def make_monitor(tmp_path: Path, url: str, **overrides: Any) -> PerformanceMonitor:
    values: dict[str, Any] = {
        "monitoring_interval_seconds": 3600.0,  # samples are taken by the test (sample_once)
        "data_dir": tmp_path,
        "node_name": "influx-node",
        "influxdb_url": url,
        "sink_flush_seconds": 0.05,
        "sink_retry_max_seconds": 0.2,
        "sink_timeout_seconds": 5.0,
    }
    settings = Settings(**{**values, **overrides})
    return PerformanceMonitor(
        settings,
        collectors=[HostCollector(tmp_path), FakeCollector({"gpus": (GPU,)}, name="gpu")],
        torch_probe=TorchMemoryProbe(FakeTorchCuda(available=False)),
        process_memory=ProcessPeakMemory(),
    )


def run_tasks(monitor: PerformanceMonitor, prefix: str, count: int) -> None:
    for i in range(count):
        task_id = f"{prefix}-{i}"
        if i % 3 == 2:  # a failure, diagnosed, with a message holding quotes and a newline
            monitor.start_task_monitoring(task_id, "t2v-A14B", "1280x720", steps=4)
            with monitor.phase(task_id, "text_encode"):
                pass
            monitor.complete_task_monitoring(
                task_id,
                False,
                MemoryError('CUDA out of memory "tried" 2 GiB\nat vae'),
                failed_phase="vae_decode",
            )
            continue
        with monitor.track(task_id, model_type="tiny wan,=x", resolution="64x64", steps=2) as t:
            with t.phase("denoise"):
                t.update(optimizations_applied=["dtype:bf16", "vae_tiling"], frames=9)
            with t.phase("vae_decode"):
                pass


def assert_task_point(row: dict[str, Any], record: TaskRecord) -> None:
    assert row["time"] == task_timestamp_ns(record)
    assert row["node"] == record.node
    assert row["model_type"] == record.model_type
    assert row["resolution_class"] == record.resolution_class
    assert row["status"] == record.status.value
    assert row["error_category"] == (record.error_category if not record.success else "none")
    assert row["success"] is record.success
    for name, kind in TASK_FIELD_KINDS.items():
        value, got = getattr(record, name), row.get(name)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            assert got is None, name
        elif isinstance(value, tuple):
            assert json.loads(got) == list(value), name
        elif isinstance(value, datetime):
            assert got == value.isoformat(), name
        elif kind == "float":
            assert got == pytest.approx(value, rel=1e-12), name
        else:
            assert got == value, name
    for phase in record.phases:
        assert row[f"phase_{phase.name}_seconds"] == pytest.approx(phase.duration_seconds)


def assert_influx_equals_store(influxd: InfluxServer, store: SqlStore) -> list[TaskRecord]:
    records = store.query_tasks(TaskQuery(finished_only=True))
    rows = {r["run_id"]: r for r in influxd.query(f"SELECT * FROM {TASK_MEASUREMENT}")}
    assert set(rows) == {r.run_id for r in records}
    for record in records:
        assert_task_point(rows[record.run_id], record)
    return records


@pytest.mark.slow
def test_tasks_and_samples_queried_back_equal_the_store(
    tmp_path: Path, influxd: InfluxServer
) -> None:
    monitor = make_monitor(tmp_path, influxd.url)
    with monitor:
        samples = [monitor._sampler.sample_once() for _ in range(3)]
        run_tasks(monitor, "job", 6)
        assert monitor.flush_sinks(60)
        stats = monitor.sinks[0].stats()
    assert stats["tasks_sent"] == 6 and stats["samples_sent"] >= 3
    assert stats["tasks_dropped"] == stats["samples_dropped"] == 0
    store = SqlStore(Settings(data_dir=tmp_path).resolved_database_url)
    try:
        records = assert_influx_equals_store(influxd, store)
        stored_samples = store.query_samples()
    finally:
        store.close()
    assert {r.status.value for r in records} == {"completed", "failed"}
    # Every stored sample is a host point and a GPU point at its time, with its values.
    host = {r["time"]: r for r in influxd.query(f"SELECT * FROM {SAMPLE_MEASUREMENT}")}
    gpus = {r["time"]: r for r in influxd.query(f"SELECT * FROM {GPU_MEASUREMENT}")}
    assert len(stored_samples) == len(host) == len(gpus) >= len(samples)
    for sample in stored_samples:
        ns = round(sample.taken_at.timestamp() * 1e6) * 1000
        assert host[ns]["node"] == "influx-node"
        for spec in HOST_METRICS:
            expected = getattr(sample, spec.name)
            assert host[ns].get(spec.name) == (
                pytest.approx(expected) if expected is not None else None
            ), spec.name
        gpu_row = gpus[ns]
        assert (gpu_row["gpu"], gpu_row["gpu_name"]) == ("0", "NVIDIA H200")
        for spec in GPU_METRICS:
            assert gpu_row.get(spec.name) == getattr(GPU, spec.name), spec.name
        assert json.loads(gpu_row["throttle_reasons"]) == ["sw_thermal"]


@pytest.mark.slow
def test_the_sink_catches_up_after_an_outage(tmp_path: Path, influxd: InfluxServer) -> None:
    monitor = make_monitor(tmp_path, influxd.url)
    with monitor:
        run_tasks(monitor, "before", 2)
        assert monitor.flush_sinks(60)
        influxd.stop()
        run_tasks(monitor, "during", 4)  # completes at once: the sink only queues them
        sink = monitor.sinks[0]
        # influxd is down
        wait_until(lambda: sink.stats()["send_errors"] >= 1, timeout=30.0, what="a failed send")
        assert not sink.flush(0.2)
        assert sink.stats()["queued"] == 4
        influxd.start()
        assert monitor.flush_sinks(60)
        stats = sink.stats()
    assert stats["tasks_sent"] == 6 and stats["tasks_dropped"] == 0
    store = SqlStore(Settings(data_dir=tmp_path).resolved_database_url)
    try:
        assert len(assert_influx_equals_store(influxd, store)) == 6
    finally:
        store.close()


def test_a_hung_endpoint_never_blocks_a_generation(tmp_path: Path) -> None:
    """A server that accepts connections and never answers, with a two-minute send timeout:
    the sink's thread waits in its send while twenty generations complete at once (any send
    on their thread would hold each for the timeout), and the bounded queue drops (and
    counts) the oldest tasks beyond its size."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        conn, _ = server.accept()
        held.append(conn)  # open, and never answered
        accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    monitor = make_monitor(
        tmp_path, url, sink_queue_size=5, sink_batch_size=1, sink_timeout_seconds=120.0
    )
    with monitor:
        try:
            # The monitor's first sample is the first batch: the sink's thread is now stuck
            # sending it.
            assert accepted.wait(30)
            done = threading.Event()

            def generations() -> None:
                run_tasks(monitor, "hung", 20)
                done.set()

            threading.Thread(target=generations, daemon=True).start()
            assert done.wait(60)  # far less than one send's timeout
            stats = monitor.sinks[0].stats()
            assert stats["queued"] == 5 + 1  # the queue's bound, plus the sample in flight
            assert (stats["tasks_sent"], stats["tasks_dropped"]) == (0, 20 - 5)
            assert monitor.self_stats()["sink_items_dropped"] == 15
            assert monitor.store is not None
            assert monitor.store.count_tasks(TaskQuery()) == 20  # the store has them all
        finally:  # end the hung send, so that closing the monitor does not wait for it
            for conn in held:
                conn.close()
            server.close()


def test_an_unreachable_endpoint_keeps_and_counts(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sink = InfluxSink(url, "genperf", QueueLimits(batch_size=10, queue_size=3, flush_seconds=0.05))
    sink.start()
    for _ in range(5):
        sink.offer_task(make_task())
    assert not sink.flush(0.3)
    sink.close(timeout=5)
    stats = sink.stats()
    assert stats["tasks_sent"] == 0
    assert stats["tasks_dropped"] == 5  # 2 for the full queue, 3 unsent at close
    assert stats["send_errors"] >= 1


@pytest.mark.slow
def test_points_influxdb_refuses_are_dropped_and_counted(influxd: InfluxServer) -> None:
    """Another writer made ``steps`` a string field of genperf_task: InfluxDB refuses our
    integer (400, field type conflict). The batch is dropped, counted, and the points after
    it still go through."""
    influxd.query("CREATE DATABASE genperf")
    refused = make_task(task_id="refused")
    other = f'{TASK_MEASUREMENT},node=x steps="many" {task_timestamp_ns(refused) + 1}'
    httpx.post(f"{influxd.url}/write", params={"db": "genperf"}, content=other).raise_for_status()
    sink = InfluxSink(influxd.url, "genperf", QueueLimits(batch_size=1, flush_seconds=0.05))
    sink.start()
    sink.offer_task(refused)
    sink.offer_task(make_task(task_id="after", steps=None))
    assert sink.flush(30)
    sink.close()
    stats = sink.stats()
    assert (stats["tasks_sent"], stats["tasks_dropped"], stats["send_errors"]) == (1, 1, 1)
    rows = influxd.query(f"SELECT task_id FROM {TASK_MEASUREMENT} WHERE task_id != ''")
    assert {r["task_id"] for r in rows} == {"after"}


def test_samples_without_values_make_no_points() -> None:
    sink = InfluxSink("http://127.0.0.1:9", "genperf", QueueLimits())
    empty = SystemSample(taken_at=make_task().started_at, node="n")
    assert sink.encode([], [empty]) == b""


@pytest.mark.slow
def test_genperf_export_influx_loads_into_influxdb_as_the_store_holds(
    tmp_path: Path, influxd: InfluxServer
) -> None:
    """``genperf export --format influx`` (a real process on the monitored database): the file
    written to InfluxDB's /write gives back the store's tasks and samples."""
    monitor = make_monitor(tmp_path, influxd.url)
    monitor.sinks.clear()  # this test loads the export file, not the live sink
    with monitor:
        monitor._sampler.sample_once()
        run_tasks(monitor, "exported", 3)
    out = tmp_path / "export.lp"
    env = {**os.environ, "GENPERF_DATA_DIR": str(tmp_path), "GENPERF_NODE_NAME": "cli"}
    env.pop("GENPERF_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "genperf", "export", "-f", "influx", "-o", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Exported 3 tasks" in done.stdout
    influxd.query("CREATE DATABASE genperf")
    response = httpx.post(
        f"{influxd.url}/write", params={"db": "genperf"}, content=out.read_bytes(), timeout=30
    )
    assert response.status_code == 204, response.text
    store = SqlStore(Settings(data_dir=tmp_path).resolved_database_url)
    try:
        assert len(assert_influx_equals_store(influxd, store)) == 3
        stored = store.query_samples()
    finally:
        store.close()
    host = influxd.query(f"SELECT * FROM {SAMPLE_MEASUREMENT}")
    assert sorted(r["time"] for r in host) == [
        round(s.taken_at.timestamp() * 1e6) * 1000 for s in stored
    ]
