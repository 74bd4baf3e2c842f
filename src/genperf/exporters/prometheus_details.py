"""Prometheus: what the dashboards and alert rules need beyond :mod:`.prometheus`.

Kept apart from the core collector so each can change without the other:

* :class:`TaskDetails` (a task listener): histograms of completed tasks by model type and
  resolution class: each phase's duration, the mean denoising step, peak VRAM and RAM in
  percent of the device. Phase names outside :data:`genperf.records.STANDARD_PHASES` count
  as ``phase="other"``, so the series count depends on the configuration, never on the tasks.
* :class:`ThrottleCollector`: per GPU, 1 while its clock is cut for heat
  (``genperf_gpu_thermal_throttled``) or for power (``genperf_gpu_power_throttled``), the same
  test genperf's thermal bottleneck check applies to a task's throttle reasons.
* :func:`duration_buckets`: the task duration histogram's bucket bounds, with every configured
  generation-time target and "acceptable" line among them, so that an alert can count exactly
  how many tasks were within a target (``genperf rules``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from genperf.analysis.window import power_throttled, thermal_throttled
from genperf.config import Settings
from genperf.exporters.prometheus import (
    DURATION_BUCKETS,
    MAX_MODEL_TYPES,
    OTHER,
    MonitorSource,
    _label,
)
from genperf.records import STANDARD_PHASES, TaskRecord, TaskStatus

# Phases of tiny test models take milliseconds; a real model load or denoise takes minutes.
PHASE_BUCKETS: tuple[float, ...] = (0.05, 0.25, 1, 5, 15, 30, 60, 120, 300, 600, 1200)
STEP_BUCKETS: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0)
PERCENT_BUCKETS: tuple[float, ...] = (10.0, 25.0, 50.0, 70.0, 80.0, 85.0, 90.0, 95.0, 100.0)
_LABELS = ("model_type", "resolution_class")


def duration_buckets(settings: Settings) -> tuple[float, ...]:
    """:data:`DURATION_BUCKETS` plus each class's target and acceptable line (seconds)."""
    factor = settings.benchmark_targets.generation_time_acceptable_factor
    lines = {
        bound
        for target in settings.performance_thresholds.generation_time_targets().values()
        for bound in (target, target * factor)
    }
    return tuple(sorted(set(DURATION_BUCKETS) | lines))


class TaskDetails:
    """Histograms of completed tasks, on their own registry-ready collectors (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model_types: set[str] = set()
        self.phase_seconds = Histogram(
            "genperf_task_phase_duration_seconds",
            "Duration of each phase of completed tasks",
            (*_LABELS, "phase"),
            buckets=PHASE_BUCKETS,
            registry=None,
        )
        self.step_seconds = Histogram(
            "genperf_task_step_seconds",
            "Mean denoising step time of completed tasks",
            _LABELS,
            buckets=STEP_BUCKETS,
            registry=None,
        )
        self.peak_vram_percent = Histogram(
            "genperf_task_peak_vram_percent",
            "Peak GPU memory of completed tasks, percent of the GPU",
            _LABELS,
            buckets=PERCENT_BUCKETS,
            registry=None,
        )
        self.peak_ram_percent = Histogram(
            "genperf_task_peak_ram_percent",
            "Peak host memory of completed tasks, percent of the host",
            _LABELS,
            buckets=PERCENT_BUCKETS,
            registry=None,
        )

    def register(self, registry: CollectorRegistry) -> None:
        for metric in (
            self.phase_seconds,
            self.step_seconds,
            self.peak_vram_percent,
            self.peak_ram_percent,
        ):
            registry.register(metric)

    def observe(self, record: TaskRecord) -> None:
        """A task listener: completed tasks only (a failed task's phases say little)."""
        if record.status is not TaskStatus.COMPLETED:
            return
        labels = (self._model_type(record.model_type), _label(record.resolution_class))
        for phase in record.phases:
            name = phase.name if phase.name in STANDARD_PHASES else OTHER
            self.phase_seconds.labels(*labels, name).observe(phase.duration_seconds)
        if record.step_times_seconds:
            steps = record.step_times_seconds
            self.step_seconds.labels(*labels).observe(sum(steps) / len(steps))
        vram = _percent(record.peak_vram_usage_mb, record.vram_total_mb)
        if vram is not None:
            self.peak_vram_percent.labels(*labels).observe(vram)
        ram = _percent(record.peak_ram_usage_mb, record.ram_total_mb)
        if ram is not None:
            self.peak_ram_percent.labels(*labels).observe(ram)

    def _model_type(self, model_type: str) -> str:
        # The same rule as TaskOutcomes: the first MAX_MODEL_TYPES names, then "other".
        label = _label(model_type)
        with self._lock:
            if label in self._model_types:
                return label
            if len(self._model_types) >= MAX_MODEL_TYPES:
                return OTHER
            self._model_types.add(label)
            return label


class ThrottleCollector(Collector):
    """Reads the latest sample's GPU throttle reasons at scrape time."""

    def __init__(self, monitor: MonitorSource) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[Metric]:
        thermal = GaugeMetricFamily(
            "genperf_gpu_thermal_throttled",
            "1 while the GPU's clock is cut for heat (NVML clock event reasons)",
            labels=("gpu", "name"),
        )
        power = GaugeMetricFamily(
            "genperf_gpu_power_throttled",
            "1 while the GPU's clock is cut for power (NVML clock event reasons)",
            labels=("gpu", "name"),
        )
        for gpu in self.monitor.current_sample().gpus:
            if gpu.throttle_reasons is None:
                continue  # unknown on this GPU: no sample rather than a false 0
            labels = [str(gpu.index), _label(gpu.name or "unknown", 128)]
            thermal.add_metric(labels, float(thermal_throttled(gpu.throttle_reasons)))
            power.add_metric(labels, float(power_throttled(gpu.throttle_reasons)))
        if thermal.samples:
            yield thermal
            yield power


def _percent(used: float | None, total: float | None) -> float | None:
    if used is None or not total:
        return None
    return 100.0 * used / total


__all__ = [
    "PERCENT_BUCKETS",
    "PHASE_BUCKETS",
    "STEP_BUCKETS",
    "TaskDetails",
    "ThrottleCollector",
    "duration_buckets",
]
