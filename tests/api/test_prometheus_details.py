"""/metrics for dashboards and alert rules: phase and step sums, the peak VRAM histogram,
throttle gauges, outcome counters that start at 0, and buckets on the configured lines."""

from __future__ import annotations

from api_support import P
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from genperf.config import BenchmarkTargets, PerformanceThresholds, Settings
from genperf.exporters.process_metrics import ProcessExposition
from genperf.exporters.prometheus import DURATION_BUCKETS, MAX_MODEL_TYPES, TaskOutcomes, render
from genperf.exporters.prometheus_details import (
    TaskDetails,
    duration_buckets,
    vram_buckets,
)
from genperf.records import ErrorCategory, GpuReading, PhaseRecord, SystemSample, utc_now
from genperf.testing import make_task


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_duration_buckets_hold_every_target_and_acceptable_line():
    settings = Settings(
        performance_thresholds=PerformanceThresholds(
            max_generation_time_720p=200.0, max_generation_time_480p=42.5
        ),
        benchmark_targets=BenchmarkTargets(generation_time_acceptable_factor=2.0),
    )
    buckets = duration_buckets(settings)
    assert {200.0, 400.0, 42.5, 85.0, 900.0, 1800.0} <= set(buckets)
    assert set(DURATION_BUCKETS) <= set(buckets)
    assert list(buckets) == sorted(set(buckets))


def test_every_outcome_of_a_node_starts_at_zero_so_a_first_failure_is_an_increase():
    outcomes = TaskOutcomes()
    outcomes.observe(make_task(node="n1"))
    values = samples(
        "".join(f"{line}\n" for m in outcomes.metrics() for line in render_family(m).splitlines())
    )
    for category in ErrorCategory:
        key = (
            "genperf_tasks_finished_total",
            (("error_category", category.value), ("node", "n1"), ("status", "failed")),
        )
        assert values[key] == 0
    done = (("error_category", "none"), ("node", "n1"), ("status", "completed"))
    assert values[("genperf_tasks_finished_total", done)] == 1


def render_family(metric):
    registry = CollectorRegistry(auto_describe=False)

    class One:
        def collect(self):
            yield metric

    registry.register(One())
    return render(registry).decode()


def _details_text(details: TaskDetails) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(details)
    return render(registry).decode()


def test_vram_buckets_are_genperfs_vram_lines():
    settings = Settings(performance_thresholds=PerformanceThresholds(max_vram_usage_percent=88))
    assert vram_buckets(settings) == (50.0, 70.0, 85.0, 88.0, 100.0)  # 88 is the band's maximum


def test_phase_step_and_peak_vram_of_completed_tasks():
    details = TaskDetails()
    details.observe(
        make_task(
            phases=(
                PhaseRecord("model_load", 0.0, 20.0),
                PhaseRecord("denoise", 20.0, 200.0),
                PhaseRecord("my-own-phase", 220.0, 3.0),
            ),
            step_times_seconds=(9.0, 11.0),
            peak_vram_usage_mb=72_000.0,
            vram_total_mb=80_000.0,
        )
    )
    details.observe(make_task(status="failed", phases=(PhaseRecord("denoise", 0.0, 5.0),)))
    values = samples(_details_text(details))
    key = (("model_type", "t2v-A14B"), ("node", "test-node"), ("resolution_class", "720p"))
    phase = "genperf_task_phase_duration_seconds"
    model = ("model_type", "t2v-A14B")
    node = ("node", "test-node")
    assert values[(f"{phase}_count", (model, node, ("phase", "denoise")))] == 1  # not the failed
    assert values[(f"{phase}_sum", (model, node, ("phase", "denoise")))] == 200.0
    assert values[(f"{phase}_sum", (model, node, ("phase", "model_load")))] == 20.0
    assert values[(f"{phase}_sum", (model, node, ("phase", "other")))] == 3.0
    assert values[("genperf_task_step_seconds_sum", key)] == 10.0  # the mean step
    assert values[("genperf_task_step_seconds_count", key)] == 1
    assert values[("genperf_task_peak_vram_percent_bucket", (("le", "85.0"), *key))] == 0
    assert values[("genperf_task_peak_vram_percent_bucket", (("le", "90.0"), *key))] == 1
    assert values[("genperf_task_peak_vram_percent_count", key)] == 1
    assert not any(name.endswith("_created") for name, _ in values)  # no extra series


def test_a_record_saved_twice_is_counted_once():
    import dataclasses

    details = TaskDetails()
    record = make_task(phases=(PhaseRecord("denoise", 0.0, 2.0),), step_times_seconds=(1.0,))
    details.observe(record)
    details.observe(dataclasses.replace(record))
    values = samples(_details_text(details))
    denoise = (("model_type", "t2v-A14B"), ("node", "test-node"), ("phase", "denoise"))
    assert values[("genperf_task_phase_duration_seconds_count", denoise)] == 1
    key = (("model_type", "t2v-A14B"), ("node", "test-node"), ("resolution_class", "720p"))
    assert values[("genperf_task_step_seconds_count", key)] == 1
    assert values[("genperf_task_peak_vram_percent_count", key)] == 1


def test_series_do_not_grow_with_tasks_or_their_names():
    details = TaskDetails()

    def series() -> int:
        return len(samples(_details_text(details)))

    phases = (PhaseRecord("denoise", 0.0, 1.0), PhaseRecord("x", 1.0, 1.0))
    for i in range(200):
        details.observe(make_task(model_type=f"m{i % 10}", phases=phases, step_times_seconds=(1,)))
    after_200 = series()
    for i in range(2000):
        phases_i = (PhaseRecord(f"custom-{i}", 0.0, 1.0),)  # a new name each time: "other"
        details.observe(make_task(model_type=f"m{i % 10}", phases=phases_i))
    assert series() == after_200
    for i in range(MAX_MODEL_TYPES * 3):
        details.observe(make_task(model_type=f"new-{i}", phases=phases))
    model_types = {
        dict(labels)["model_type"]
        for name, labels in samples(_details_text(details))
        if name == "genperf_task_phase_duration_seconds_count"
    }
    assert len(model_types) == MAX_MODEL_TYPES + 1  # the first 50 names, then "other"


class _Monitor:
    node = "n"

    def __init__(self, gpus: tuple[GpuReading, ...]) -> None:
        self.gpus = gpus

    def current_sample(self) -> SystemSample:
        return SystemSample(taken_at=utc_now(), node="n", gpus=self.gpus)

    def self_stats(self) -> dict[str, float | int]:
        return {}


def _throttle(gpus: tuple[GpuReading, ...]) -> dict:
    text = ProcessExposition(_Monitor(gpus)).exposition(openmetrics=False).decode()
    return {key: v for key, v in samples(text).items() if key[0].endswith("_throttled")}


def test_throttle_gauges_follow_the_thermal_checks_test():
    values = _throttle(
        (
            GpuReading(index=0, name="H200", throttle_reasons=("sw_thermal",)),
            GpuReading(index=1, name="H200", throttle_reasons=("sw_power_cap",)),
            GpuReading(index=2, name="H200", throttle_reasons=()),
            GpuReading(index=3, name="H200"),  # unknown: no sample, never a false 0
        )
    )
    gpu = lambda i: (("gpu", str(i)), ("name", "H200"), ("node", "n"))  # noqa: E731
    assert values[("genperf_gpu_thermal_throttled", gpu(0))] == 1
    assert values[("genperf_gpu_power_throttled", gpu(0))] == 0
    assert values[("genperf_gpu_thermal_throttled", gpu(1))] == 0
    assert values[("genperf_gpu_power_throttled", gpu(1))] == 1
    assert values[("genperf_gpu_thermal_throttled", gpu(2))] == 0
    assert ("genperf_gpu_thermal_throttled", gpu(3)) not in values
    assert _throttle(()) == {}


def test_the_app_exposes_details_and_buckets_from_its_settings(client):
    task = {
        "task_id": "d-1",
        "model_type": "t2v-A14B",
        "resolution": "720p",
        "phases": [{"name": "denoise", "started_offset_seconds": 0, "duration_seconds": 2.0}],
    }
    assert client.post(f"{P}/tasks", json=task).status_code == 201
    assert client.post(f"{P}/tasks/d-1/complete").status_code == 200
    values = samples(client.get("/metrics").text)
    api = ("node", "api-node")  # the app's fixture: tasks posted to the API run on its node
    key = (("model_type", "t2v-A14B"), api, ("phase", "denoise"))
    assert values[("genperf_task_phase_duration_seconds_count", key)] == 1
    duration = (("le", "450.0"), ("model_type", "t2v-A14B"), api, ("resolution_class", "720p"))
    assert values[("genperf_task_duration_seconds_bucket", duration)] == 1
