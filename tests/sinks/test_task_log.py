"""JSON log lines per finished task: one JSON object per line with every field of the stored
record, written off the generation's thread to a file (0600, following a rotation) or stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.sinks import build_sinks
from genperf.sinks.base import QueueLimits
from genperf.sinks.jsonlog import JsonLogSink, log_entry
from genperf.storage import MemoryStore, TaskQuery
from genperf.testing import FakeCollector, make_task, wait_until


def monitor_logging_to(tmp_path: Path, target: str, store: MemoryStore) -> PerformanceMonitor:
    settings = Settings(
        monitoring_interval_seconds=3600.0,
        data_dir=tmp_path,
        node_name="log-node",
        task_log=target,
        sink_flush_seconds=0.05,
    )
    return PerformanceMonitor(
        settings, collectors=[FakeCollector({"cpu_percent": 5.0})], store=store
    )


def run_two(monitor: PerformanceMonitor) -> None:
    with monitor.track("ok-1", model_type="t2v-A14B", resolution="1280x720", steps=2) as t:
        with t.phase("denoise"):
            pass
    with pytest.raises(MemoryError):
        with monitor.track("oom-1", model_type="t2v-A14B", resolution="1920x1080"):
            raise MemoryError("CUDA out of memory")


def test_each_finished_task_is_one_json_line_with_the_stored_record(tmp_path: Path) -> None:
    log = tmp_path / "tasks.jsonl"
    store = MemoryStore()
    with monitor_logging_to(tmp_path, str(log), store) as monitor:
        run_two(monitor)
        assert monitor.flush_sinks(30)
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    entries = [json.loads(line) for line in lines]
    stored = {r.task_id: r for r in store.query_tasks(TaskQuery())}
    for entry in entries:
        record = stored[entry["task_id"]]
        assert {k: entry[k] for k in record.to_dict()} == record.to_dict()
        assert entry["time"] == record.completed_at.isoformat()
    ok, oom = entries
    assert (ok["level"], oom["level"]) == ("info", "error")
    assert ok["message"].startswith("task ok-1 completed in ")
    assert oom["message"] == "task oom-1 failed (out_of_memory_gpu) (t2v-A14B, 1080p)"
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_a_rotated_log_is_followed(tmp_path: Path) -> None:
    log = tmp_path / "tasks.jsonl"
    sink = JsonLogSink(str(log), QueueLimits(flush_seconds=0.05))
    sink.start()
    sink.offer_task(make_task(task_id="before"))
    assert sink.flush(30)
    log.rename(tmp_path / "tasks.jsonl.1")  # logrotate's default: rename, no signal
    sink.offer_task(make_task(task_id="after"))
    assert sink.flush(30)
    sink.close()
    assert json.loads(log.read_text())["task_id"] == "after"
    assert json.loads((tmp_path / "tasks.jsonl.1").read_text())["task_id"] == "before"


def test_stdout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sink = JsonLogSink("stdout", QueueLimits(flush_seconds=0.05))
    sink.start()
    record = make_task()
    sink.offer_task(record)
    assert sink.flush(30)
    sink.close()
    assert json.loads(capfd.readouterr().out) == log_entry(record)


def test_an_unwritable_log_is_retried_then_counted(tmp_path: Path) -> None:
    sink = JsonLogSink(
        str(tmp_path / "missing-dir" / "tasks.jsonl"), QueueLimits(flush_seconds=0.05)
    )
    sink.start()
    sink.offer_task(make_task())
    wait_until(lambda: sink.stats()["send_errors"] >= 1, timeout=30.0, what="a failed write")
    assert sink.stats()["queued"] == 1
    (tmp_path / "missing-dir").mkdir()  # the disk is back
    assert sink.flush(30)
    sink.close()
    assert sink.stats()["tasks_sent"] == 1


def test_the_settings_build_every_sink(tmp_path: Path) -> None:
    settings = Settings(
        influxdb_url="http://127.0.0.1:8086",
        elasticsearch_url="http://127.0.0.1:9200",
        otlp_endpoint="http://127.0.0.1:4318/v1/metrics",
        task_log=str(tmp_path / "t.jsonl"),
    )
    sinks = build_sinks(settings, node="n")
    try:
        assert [s.name for s in sinks] == ["influxdb", "elasticsearch", "otlp", "task-log"]
    finally:
        for sink in sinks:
            sink.close(timeout=1)
