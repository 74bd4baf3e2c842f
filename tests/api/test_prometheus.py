"""GET /metrics and the collector: read at scrape time, per-GPU gauges, histograms, counters,
the monitor's overhead, bounded labels, a private registry."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import prometheus_client
from api_support import P
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from genperf.exporters.prometheus import (
    CONTENT_TYPE,
    DURATION_BUCKETS,
    MAX_MODEL_TYPES,
    SELF_STATS,
    StoreTaskCounts,
    TaskOutcomes,
    registry_for,
    render,
)
from genperf.records import GPU_METRICS, HOST_METRICS, TaskStatus
from genperf.storage import MemoryStore
from genperf.testing import ManualClock, make_task


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_the_exposition_parses_and_has_host_and_per_gpu_gauges(client):
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE
    values = samples(r.text)
    assert values[("genperf_host_cpu_percent", ())] == 12.5
    assert values[("genperf_host_ram_total_bytes", ())] == 16000 * 2**20
    gpu0 = (("gpu", "0"), ("name", "NVIDIA H200"))
    gpu1 = (("gpu", "1"), ("name", "NVIDIA H200"))
    assert values[("genperf_gpu_memory_used_bytes", gpu0)] == 20_000 * 2**20
    assert values[("genperf_gpu_power_watts", gpu0)] == 412.5
    assert values[("genperf_gpu_memory_used_bytes", gpu1)] == 2**20
    assert ("genperf_gpu_utilization_percent", gpu1) not in values  # unknown: no sample
    assert values[("genperf_info", (("node", "api-node"), ("version", "0.1.0")))] == 1


def test_every_metric_of_the_tables_has_a_name(client):
    text = client.get("/metrics").text
    for spec in HOST_METRICS:
        assert f"genperf_host_{spec.name}" in text or spec.name in {
            "swap_used_bytes",
            "swap_percent",
            "disk_used_bytes",
            "disk_total_bytes",
            "disk_free_bytes",
            "disk_percent",
            "disk_read_bytes_per_second",
            "disk_write_bytes_per_second",
            "cpu_temperature_celsius",
        }  # not in the scripted readings
    assert {s.name for s in GPU_METRICS} >= {"memory_used_bytes", "temperature_celsius"}


def test_the_monitor_is_read_at_scrape_time(client, monitor):
    before = samples(client.get("/metrics").text)[("genperf_monitor_samples_total", ())]
    monitor._sampler.sample_once()
    after = samples(client.get("/metrics").text)[("genperf_monitor_samples_total", ())]
    assert after == before + 1


def test_the_monitors_own_overhead_is_exposed(client):
    text = client.get("/metrics").text
    for name, _, counter in SELF_STATS.values():
        assert (f"{name}_total" if counter else name) in text


def test_task_histograms_and_outcomes_have_bounded_labels():
    outcomes = TaskOutcomes()
    outcomes.observe(make_task(generation_time_seconds=250.0, resolution="1280x720"))
    outcomes.observe(make_task(generation_time_seconds=1000.0, resolution="1920x1080"))
    outcomes.observe(make_task(status=TaskStatus.FAILED, error_category="out_of_memory_gpu"))
    outcomes.observe(make_task(status=TaskStatus.FAILED, error_category="made-up"))
    outcomes.observe(make_task(status=TaskStatus.RUNNING))  # not finished: ignored
    for i in range(MAX_MODEL_TYPES + 10):
        outcomes.observe(make_task(model_type=f"model-{i}", generation_time_seconds=5.0))

    class Monitor:
        node = "n"

        def current_sample(self):
            from genperf.records import SystemSample, utc_now

            return SystemSample(taken_at=utc_now(), node="n")

        def self_stats(self):
            return {}

    values = samples(render(registry_for(Monitor(), outcomes)).decode())
    key = (("model_type", "t2v-A14B"), ("resolution_class", "720p"))
    assert values[("genperf_task_duration_seconds_count", key)] == 1
    assert values[("genperf_task_duration_seconds_bucket", (("le", "300.0"), *key))] == 1
    assert values[("genperf_task_duration_seconds_bucket", (("le", "180.0"), *key))] == 0
    assert values[("genperf_task_duration_seconds_sum", key)] == 250.0
    assert (
        values[
            (
                "genperf_tasks_finished_total",
                (("error_category", "out_of_memory_gpu"), ("status", "failed")),
            )
        ]
        == 1
    )
    assert (
        values[
            ("genperf_tasks_finished_total", (("error_category", "other"), ("status", "failed")))
        ]
        == 1
    )
    model_types = {
        dict(labels)["model_type"]
        for (name, labels) in values
        if name == "genperf_task_duration_seconds_count"
    }
    assert len(model_types) == MAX_MODEL_TYPES + 1  # the first 50, and "other"
    assert "other" in model_types
    assert DURATION_BUCKETS[0] <= 1.0 and DURATION_BUCKETS[-1] >= 1800.0


def test_a_record_saved_twice_is_counted_once():
    outcomes = TaskOutcomes()
    record = make_task()
    outcomes.observe(record)
    outcomes.observe(dataclasses.replace(record))
    # Non-zero samples only: every outcome's counter starts at 0.
    counts = {s.name: s.value for m in outcomes.metrics() for s in m.samples if s.value}
    assert counts["genperf_tasks_finished_total"] == 1
    assert counts["genperf_task_duration_seconds_count"] == 1


def test_the_registry_is_private(client):
    text = client.get("/metrics").text
    assert "process_cpu_seconds_total" not in text  # the global registry's collectors
    assert "python_info" not in text
    assert b"genperf_info" not in prometheus_client.generate_latest()


def test_no_task_id_or_prompt_in_labels(client):
    client.post(
        f"{P}/tasks",
        json={"task_id": "secret-job-7", "model_type": "t2v-A14B", "error_message": None},
    )
    client.post(
        f"{P}/tasks/secret-job-7/complete",
        json={"success": False, "error": "prompt 'a purple cat' rejected"},
    )
    text = client.get("/metrics").text
    assert "secret-job-7" not in text
    assert "purple" not in text


def test_openmetrics_when_the_scraper_asks_for_it(client):
    asked = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert asked.headers["content-type"].startswith("application/openmetrics-text")
    assert asked.text.endswith("# EOF\n")
    assert "# TYPE genperf info" in asked.text  # an info metric, not a gauge
    families = {f.name: f for f in openmetrics_families(asked.text)}
    assert families["genperf"].type == "info"
    plain = client.get("/metrics", headers={"Accept": "text/plain"})
    assert plain.headers["content-type"] == CONTENT_TYPE
    assert "# EOF" not in plain.text


# A second process (a worker, another service) writing to the database the server reads.
_OTHER_WRITER = """
import sys
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor

settings = Settings(database_url=sys.argv[1], monitoring_interval_seconds=3600.0, node_name="w")
with PerformanceMonitor(settings) as monitor:
    for i in range(3):
        with monitor.track(f"other-{i}", model_type="t2v-A14B"):
            pass
    monitor.start_task_monitoring("other-oom", "t2v-A14B")
    monitor.complete_task_monitoring("other-oom", False, "CUDA out of memory")
"""


def test_task_counts_come_from_the_database_every_process_writes(client, store):
    client.post(f"{P}/tasks", json={"task_id": "mine", "model_type": "t2v-A14B"})
    client.post(f"{P}/tasks/mine/complete", json={"success": True})
    url = str(store._url)
    subprocess.run([sys.executable, "-c", _OTHER_WRITER, url], check=True, timeout=120)

    values = samples(client.get("/metrics").text)
    completed = (("error_category", "none"), ("status", "completed"))
    oom = (("error_category", "out_of_memory_gpu"), ("status", "failed"))
    assert values[("genperf_store_tasks", completed)] == 4  # 3 from the other process + 1
    assert values[("genperf_store_tasks", oom)] == 1
    # This process's own counters are labelled as such, and count only what it saw.
    assert values[("genperf_tasks_finished_total", completed)] == 1
    assert values.get(("genperf_tasks_finished_total", oom), 0) == 0  # its series starts at 0


def test_database_counts_are_cached_for_a_few_seconds_and_bounded_in_labels():
    store = MemoryStore()
    clock = ManualClock(0.0)
    counts = StoreTaskCounts(lambda: store, ttl=5.0, clock=clock)
    store.save_task(make_task())
    assert counts.counts() == {("completed", "none"): 1}
    store.save_task(make_task())
    store.save_task(make_task(status=TaskStatus.FAILED, error_category="made-up"))
    clock.advance(4.9)
    assert counts.counts() == {("completed", "none"): 1}  # one query per ttl
    clock.advance(0.2)
    assert counts.counts() == {("completed", "none"): 2, ("failed", "other"): 1}


def test_database_counts_survive_a_short_outage_and_then_go_away():
    store = MemoryStore()
    clock = ManualClock(0.0)
    counts = StoreTaskCounts(lambda: store, ttl=5.0, clock=clock)
    store.save_task(make_task())
    assert counts.counts() == {("completed", "none"): 1}
    store.close()  # reads now raise
    clock.advance(10.0)
    assert counts.counts() == {("completed", "none"): 1}  # recent enough to keep
    clock.advance(60.0)
    assert counts.counts() is None
    assert list(counts.metrics()) == []
