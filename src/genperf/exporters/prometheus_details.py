"""Prometheus: what the dashboards and alert rules need beyond :mod:`.prometheus`.

Kept apart from the core collector so each can change without the other, and lean: a scrape's
cost grows with its series, so each family has only the labels and buckets its dashboards and
alerts read, and none grows with the task count.

* :class:`TaskDetails` (fed the database's task records, like
  :class:`~genperf.exporters.prometheus.TaskOutcomes`), for completed tasks: time spent in
  each phase by model type (count and sum: mean durations and shares), the mean denoising step
  by model type and resolution class (count and sum), and a histogram of peak VRAM in percent
  of the GPU by model type and resolution class, with buckets on genperf's VRAM lines. Phase
  names outside :data:`genperf.records.STANDARD_PHASES` count as ``phase="other"``.
* :func:`throttle_metrics` (per process, like the host and GPU gauges): per GPU, 1 while
  its clock is cut for heat (``genperf_gpu_thermal_throttled``) or for power
  (``genperf_gpu_power_throttled``), the same test genperf's thermal bottleneck check
  applies to a task's throttle reasons.
* :func:`duration_buckets`: the task duration histogram's bucket bounds, with every configured
  generation-time target and "acceptable" line among them, so that an alert can count exactly
  how many tasks were within a target (``genperf rules``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Container, Iterator
from dataclasses import dataclass

from prometheus_client.core import (
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from genperf.config import Settings
from genperf.exporters.prometheus import (
    _SEEN_RUNS,
    DURATION_BUCKETS,
    MAX_MODEL_TYPES,
    OTHER,
    _bounded,
    _label,
    bounded_node,
    gpu_labels,
    histogram,
)
from genperf.numbers import percent
from genperf.records import STANDARD_PHASES, SystemSample, TaskRecord, TaskStatus
from genperf.tally import power_throttled, thermal_throttled


def duration_buckets(settings: Settings) -> tuple[float, ...]:
    """:data:`DURATION_BUCKETS` plus each class's target and acceptable line (seconds)."""
    factor = settings.benchmark_targets.generation_time_acceptable_factor
    lines = {
        bound
        for target in settings.performance_thresholds.generation_time_targets().values()
        for bound in (target, target * factor)
    }
    return tuple(sorted(set(DURATION_BUCKETS) | lines))


def vram_buckets(settings: Settings) -> tuple[float, ...]:
    """Half the GPU, genperf's VRAM band (optimal, acceptable, and its maximum, which is the
    spec's ``max_vram_usage_percent``), and all of it (percent)."""
    band = settings.benchmark_targets.vram_usage_percent
    return tuple(sorted({50.0, band.optimal, band.acceptable, band.maximum, 100.0}))


@dataclass
class _Sum:
    count: int = 0
    total: float = 0.0


_Key = tuple[str, str, str]


class TaskDetails(Collector):
    """Phases, steps and peak VRAM of completed tasks, by node (thread-safe). Register it on
    a registry and feed it records through :meth:`observe`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.vram_buckets = vram_buckets(settings or Settings())
        self._lock = threading.Lock()
        self._model_types: set[str] = set()
        self._nodes: set[str] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()  # runs counted, the latest ones
        self._phases: dict[_Key, _Sum] = {}  # (node, model type, phase)
        self._steps: dict[_Key, _Sum] = {}  # (node, model type, resolution class)
        self._vram: dict[_Key, tuple[list[int], _Sum]] = {}  # per bucket; count, sum

    def observe(self, record: TaskRecord, node: str | None = None) -> None:
        """Completed tasks only (a failed task's phases say little), under ``node`` (a label
        bounded by the caller) or the record's own node, bounded here."""
        if record.status is not TaskStatus.COMPLETED:
            return
        vram = percent(record.peak_vram_usage_mb, record.vram_total_mb)
        with self._lock:
            if record.run_id in self._seen:
                return  # a record saved twice counts once, as in TaskOutcomes
            self._seen[record.run_id] = None
            if len(self._seen) > _SEEN_RUNS:
                self._seen.popitem(last=False)
            if node is None:
                node = bounded_node(self._nodes, record.node)
            # The same rule as TaskOutcomes: the first MAX_MODEL_TYPES names, then "other".
            model = _bounded(self._model_types, _label(record.model_type), MAX_MODEL_TYPES)
            key = (node, model, _label(record.resolution_class))
            for phase in record.phases:
                name = phase.name if phase.name in STANDARD_PHASES else OTHER
                _add(self._phases, (node, model, name), phase.duration_seconds)
            if record.step_times_seconds:
                steps = record.step_times_seconds
                _add(self._steps, key, sum(steps) / len(steps))
            if vram is not None:
                counts, total = self._vram.setdefault(key, ([0] * len(self.vram_buckets), _Sum()))
                for i, bound in enumerate(self.vram_buckets):
                    counts[i] += vram <= bound
                total.count += 1
                total.total += vram

    def collect(self) -> Iterator[Metric]:
        return self.metrics()

    def metrics(self, nodes: Container[str] | None = None) -> Iterator[Metric]:
        """The families, of ``nodes`` only when given."""

        def wanted(key: _Key) -> bool:
            return nodes is None or key[0] in nodes

        with self._lock:
            phases = {k: (v.count, v.total) for k, v in self._phases.items() if wanted(k)}
            steps = {k: (v.count, v.total) for k, v in self._steps.items() if wanted(k)}
            vram = {k: (list(c), t.count, t.total) for k, (c, t) in self._vram.items() if wanted(k)}
        yield _summary(
            "genperf_task_phase_duration_seconds",
            "Time completed tasks spent in each phase",
            ("node", "model_type", "phase"),
            phases,
        )
        yield _summary(
            "genperf_task_step_seconds",
            "Mean denoising step time of completed tasks",
            ("node", "model_type", "resolution_class"),
            steps,
        )
        yield histogram(
            "genperf_task_peak_vram_percent",
            "Peak GPU memory of completed tasks, percent of the GPU",
            self.vram_buckets,
            vram,
        )


def _summary(
    name: str, documentation: str, labels: tuple[str, str, str], sums: dict[_Key, tuple[int, float]]
) -> SummaryMetricFamily:
    family = SummaryMetricFamily(name, documentation, labels=labels)
    for values, (count, total) in sorted(sums.items()):
        family.add_metric(list(values), count, total)
    return family


def _add(sums: dict[_Key, _Sum], key: _Key, value: float) -> None:
    entry = sums.get(key)
    if entry is None:
        entry = sums[key] = _Sum()
    entry.count += 1
    entry.total += value


def throttle_metrics(node: str, sample: SystemSample) -> Iterator[Metric]:
    """Per GPU of ``sample``, 1 while its clock is cut for heat (or for power), 0 otherwise;
    no series for a GPU whose reasons are unknown."""
    thermal = GaugeMetricFamily(
        "genperf_gpu_thermal_throttled",
        "1 while the GPU's clock is cut for heat (NVML clock event reasons)",
        labels=("node", "gpu", "name"),
    )
    power = GaugeMetricFamily(
        "genperf_gpu_power_throttled",
        "1 while the GPU's clock is cut for power (NVML clock event reasons)",
        labels=("node", "gpu", "name"),
    )
    for gpu in sample.gpus:
        if gpu.throttle_reasons is None:
            continue  # unknown on this GPU: no sample rather than a false 0
        labels = gpu_labels(node, gpu)
        thermal.add_metric(labels, float(thermal_throttled(gpu.throttle_reasons)))
        power.add_metric(labels, float(power_throttled(gpu.throttle_reasons)))
    if thermal.samples:
        yield thermal
        yield power


__all__ = [
    "TaskDetails",
    "duration_buckets",
    "throttle_metrics",
    "vram_buckets",
]
