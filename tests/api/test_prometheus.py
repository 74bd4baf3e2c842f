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
    MAX_NODES,
    SELF_STATS,
    TaskOutcomes,
    render,
)
from genperf.records import GPU_METRICS, HOST_METRICS, TaskStatus
from genperf.storage import TaskQuery
from genperf.testing import make_task

NODE = "test-node"  # make_task's


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
    node = (("node", "api-node"),)  # every series of the process names its node
    assert values[("genperf_host_cpu_percent", node)] == 12.5
    assert values[("genperf_host_ram_total_bytes", node)] == 16000 * 2**20
    gpu0 = (("gpu", "0"), ("name", "NVIDIA H200"), *node)
    gpu1 = (("gpu", "1"), ("name", "NVIDIA H200"), *node)
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
    key = ("genperf_monitor_samples_total", (("node", "api-node"),))
    before = samples(client.get("/metrics").text)[key]
    monitor._sampler.sample_once()
    after = samples(client.get("/metrics").text)[key]
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
    for i in range(MAX_NODES + 10):
        outcomes.observe(make_task(node=f"node-{i}", status=TaskStatus.FAILED))

    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(outcomes)
    values = samples(render(registry).decode())
    key = (("model_type", "t2v-A14B"), ("node", NODE), ("resolution_class", "720p"))
    assert values[("genperf_task_duration_seconds_count", key)] == 1
    assert values[("genperf_task_duration_seconds_bucket", (("le", "300.0"), *key))] == 1
    assert values[("genperf_task_duration_seconds_bucket", (("le", "180.0"), *key))] == 0
    assert values[("genperf_task_duration_seconds_sum", key)] == 250.0
    assert (
        values[
            (
                "genperf_tasks_finished_total",
                (("error_category", "out_of_memory_gpu"), ("node", NODE), ("status", "failed")),
            )
        ]
        == 1
    )
    other = (("error_category", "other"), ("node", NODE), ("status", "failed"))
    assert values[("genperf_tasks_finished_total", other)] == 1
    nodes = {dict(labels)["node"] for (name, labels) in values if name.startswith("genperf_tasks")}
    assert len(nodes) == MAX_NODES + 1  # the first MAX_NODES names (NODE among them), "other"
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


# Two other processes (an agent, a worker) writing to the database the server reads.
_OTHER_WRITER = """
import sys
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor

url, node = sys.argv[1], sys.argv[2]
settings = Settings(database_url=url, monitoring_interval_seconds=3600.0, node_name=node)
with PerformanceMonitor(settings) as monitor:
    for i in range(3):
        with monitor.track(f"{node}-{i}", model_type="t2v-A14B"):
            pass
    monitor.start_task_monitoring(f"{node}-oom", "t2v-A14B")
    monitor.complete_task_monitoring(f"{node}-oom", False, "CUDA out of memory")
    monitor.start_task_monitoring(f"{node}-running", "t2v-A14B")
    monitor.flush()
"""


def _store_counts(store) -> dict[tuple[str, str, str], int]:
    """(node, status, error category) -> finished task rows, counted in the database."""
    counts: dict[tuple[str, str, str], int] = {}
    for record in store.query_tasks(TaskQuery(limit=None)):
        if record.status is not TaskStatus.RUNNING:
            key = (record.node, record.status.value, record.error_category or "none")
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_task_counters_are_the_databases_whichever_process_wrote_them(client, store):
    client.post(f"{P}/tasks", json={"task_id": "mine", "model_type": "t2v-A14B"})
    client.post(f"{P}/tasks/mine/complete", json={"success": True})
    url = str(store._url)
    for node in ("agent-a", "agent-b"):
        subprocess.run([sys.executable, "-c", _OTHER_WRITER, url, node], check=True, timeout=120)

    finished = {
        (dict(labels)["node"], dict(labels)["status"], dict(labels)["error_category"]): value
        for (name, labels), value in samples(client.get("/metrics").text).items()
        if name == "genperf_tasks_finished_total" and value
    }
    expected = _store_counts(store)
    assert finished == expected
    assert expected[("agent-b", "completed", "none")] == 3  # the other processes' tasks count
    assert expected[("agent-a", "failed", "out_of_memory_gpu")] == 1
    assert expected[("api-node", "completed", "none")] == 1


def test_gzip_when_the_scraper_accepts_it_is_the_same_exposition(client):
    client.post(f"{P}/tasks", json={"task_id": "z", "model_type": "t2v-A14B"})
    client.post(f"{P}/tasks/z/complete", json={"success": True})
    for accept in ("text/plain", "application/openmetrics-text"):
        plain = client.get("/metrics", headers={"Accept": accept, "Accept-Encoding": "identity"})
        zipped = client.get("/metrics", headers={"Accept": accept, "Accept-Encoding": "gzip"})
        assert "content-encoding" not in plain.headers
        assert zipped.headers["content-encoding"] == "gzip"  # httpx decodes it for us
        assert zipped.headers["vary"] == "Accept-Encoding"
        assert zipped.headers["content-type"] == plain.headers["content-type"]
        stable = [
            line
            for line in zipped.text.splitlines()
            if not line.startswith(("genperf_sample_age", "genperf_monitor_"))
        ]
        assert stable == [
            line
            for line in plain.text.splitlines()
            if not line.startswith(("genperf_sample_age", "genperf_monitor_"))
        ]
        assert "genperf_tasks_finished_total" in zipped.text
    openmetrics = client.get(
        "/metrics",
        headers={"Accept": "application/openmetrics-text", "Accept-Encoding": "gzip"},
    )
    assert openmetrics.text.endswith("# EOF\n")
    assert openmetrics.text.count("# EOF") == 1
