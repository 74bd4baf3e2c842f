"""Prometheus: the monitor read at scrape time, on a private registry.

Two kinds of family, kept apart so that summing over every scraped target is the truth
(docs/design.md, "Prometheus across processes"):

* per process, from the monitor (:func:`sample_metrics` from its latest sample,
  :func:`live_metrics` at every scrape; served by
  :class:`~genperf.exporters.process_metrics.ProcessExposition`), each series labelled with
  the process's ``node``: host gauges, one per
  :data:`genperf.records.HOST_METRICS` entry (``genperf_host_<name>``); GPU gauges, one per
  :data:`genperf.records.GPU_METRICS` entry, by GPU index and model name
  (``genperf_gpu_<name>{node, gpu="0", name="NVIDIA H200"}``); the monitor's own overhead and
  health (``PerformanceMonitor.self_stats``); ``genperf_info{node, version}``. Every process
  (``genperf serve`` and each agent) exports these for itself only.
* per database, the task families (:class:`TaskOutcomes` and
  :class:`~genperf.exporters.prometheus_details.TaskDetails`, fed from the store's rows by
  :class:`~genperf.exporters.prometheus_tasks.StoreTaskFamilies`): finished tasks by node,
  status and error category, duration histograms by model type and resolution class. Only
  the API process exports them, so a task is counted once, whichever process wrote it.

:func:`negotiate` answers in OpenMetrics when the scraper asks for it (``Accept:
application/openmetrics-text``), else in the Prometheus text format.

No label carries an unbounded value: no task ids, no prompts, no error messages. Model types
and node names come from callers, so only the first :data:`MAX_MODEL_TYPES` (and
:data:`MAX_NODES`) distinct ones get a series of their own; later ones are counted under
``"other"``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from genperf.exporters.gzip_join import EMPTY, DeflatedPrefix, gzip_join
from genperf.records import (
    GPU_METRICS,
    HOST_METRICS,
    ErrorCategory,
    GpuReading,
    SystemSample,
    TaskRecord,
    TaskStatus,
)

logger = logging.getLogger("genperf.exporters")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # without an Accept header

# From seconds (tiny test models) to half an hour (1080p video), with the spec's lines:
# 300 s (720p target), 450 s (acceptable), 900 s (1080p target), 1350 s (acceptable).
DURATION_BUCKETS: tuple[float, ...] = (
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0,
    600.0, 900.0, 1350.0, 1800.0, 2700.0, 3600.0,
)  # fmt: skip
MAX_MODEL_TYPES = 50
MAX_NODES = 256  # node labels of the task counters; a fleet of 64 GPUs fits four times over
OTHER = "other"
_SEEN_RUNS = 10_000  # run ids remembered, so a record saved twice is counted once
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# self_stats key -> (metric name, help, is a counter)
SELF_STATS: Mapping[str, tuple[str, str, bool]] = {
    "samples_taken": ("genperf_monitor_samples", "Samples taken by the sampler", True),
    "collector_errors": ("genperf_monitor_collector_errors", "Collector failures", True),
    "sampling_seconds": (
        "genperf_monitor_sampling_seconds",
        "Time spent collecting samples (the monitor's own cost)",
        True,
    ),
    "task_api_seconds": (
        "genperf_monitor_task_api_seconds",
        "Time spent inside start/complete_task_monitoring (the caller's cost)",
        True,
    ),
    "tasks_running": ("genperf_monitor_tasks_running", "Tasks being monitored now", False),
    "tasks_written": ("genperf_monitor_tasks_written", "Task records written", True),
    "tasks_pending": (
        "genperf_monitor_tasks_pending",
        "Task records waiting for the database",
        False,
    ),
    "tasks_dropped": ("genperf_monitor_tasks_dropped", "Task records dropped", True),
    "samples_written": ("genperf_monitor_samples_written", "Samples written", True),
    "samples_dropped": ("genperf_monitor_samples_dropped", "Samples dropped", True),
    "store_errors": ("genperf_monitor_store_errors", "Database errors", True),
    "sink_items_sent": (
        "genperf_monitor_sink_items_sent",
        "Tasks and samples sent by the live sinks (InfluxDB, Elasticsearch, JSON log)",
        True,
    ),
    "sink_items_dropped": (
        "genperf_monitor_sink_items_dropped",
        "Tasks and samples the live sinks dropped (queue full, refused, unsent at close)",
        True,
    ),
    "sink_items_queued": (
        "genperf_monitor_sink_items_queued",
        "Tasks and samples waiting in the live sinks' queues",
        False,
    ),
    "sink_errors": ("genperf_monitor_sink_errors", "Failed sends of the live sinks", True),
}


def _label(value: str, limit: int = 64) -> str:
    """A label value of bounded length without control characters (any other text is valid
    in a Prometheus label value; the exposition escapes it)."""
    return _CONTROL.sub("", value)[:limit] or OTHER


@dataclass
class _Histogram:
    buckets: list[int]
    count: int = 0
    total: float = 0.0


class TaskOutcomes(Collector):
    """Cumulative task durations and outcomes of the records it observed, by node
    (thread-safe).

    ``observe`` takes finished records; each run is counted once even when saved twice.
    Durations are of completed tasks only (a failure's duration says little); every finished
    task counts in ``genperf_tasks_finished_total{node, status, error_category}``.
    """

    def __init__(self, buckets: Iterable[float] = DURATION_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._durations: dict[tuple[str, str, str], _Histogram] = {}
        self._outcomes: dict[tuple[str, str, str], int] = {}
        self._model_types: set[str] = set()
        self._nodes: set[str] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()

    def observe(self, record: TaskRecord, node: str | None = None) -> None:
        """Count ``record`` under ``node`` (a label already bounded by the caller), or under
        its own node, bounded here."""
        if record.status is TaskStatus.RUNNING:
            return
        with self._lock:
            if record.run_id in self._seen:
                return
            self._seen[record.run_id] = None
            if len(self._seen) > _SEEN_RUNS:
                self._seen.popitem(last=False)
            if node is None:
                node = bounded_node(self._nodes, record.node)
            self._nodes.add(node)
            outcome = (node, record.status.value, self._category(record))
            self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
            seconds = record.generation_time_seconds
            if record.status is TaskStatus.COMPLETED and seconds is not None:
                model_type = _bounded(self._model_types, _label(record.model_type), MAX_MODEL_TYPES)
                key = (node, model_type, _label(record.resolution_class))
                hist = self._durations.get(key)
                if hist is None:
                    hist = self._durations[key] = _Histogram([0] * len(self.buckets))
                for i, bound in enumerate(self.buckets):
                    if seconds <= bound:
                        hist.buckets[i] += 1
                hist.count += 1
                hist.total += seconds

    @staticmethod
    def _category(record: TaskRecord) -> str:
        if record.status is TaskStatus.COMPLETED:
            return "none"
        try:
            return ErrorCategory(record.error_category or "unknown").value
        except ValueError:
            return OTHER

    def collect(self) -> Iterator[Metric]:
        return self.metrics()

    def metrics(self, nodes: Container[str] | None = None) -> Iterator[Metric]:
        """The families, of ``nodes`` only when given (one node's block, see
        :mod:`genperf.exporters.prometheus_tasks`)."""
        with self._lock:
            durations = {
                k: (list(h.buckets), h.count, h.total)
                for k, h in self._durations.items()
                if nodes is None or k[0] in nodes
            }
            zeros = {
                (node, *outcome): 0
                for node in self._nodes
                if nodes is None or node in nodes
                for outcome in _ZERO_OUTCOMES
            }
            outcomes = {
                **zeros,
                **{k: n for k, n in self._outcomes.items() if nodes is None or k[0] in nodes},
            }
        yield histogram(
            "genperf_task_duration_seconds",
            "Generation time of the database's completed tasks",
            self.buckets,
            durations,
        )
        finished = CounterMetricFamily(
            "genperf_tasks_finished",
            "The database's finished tasks by the node that ran them, status and error category",
            labels=("node", "status", "error_category"),
        )
        for labels, n in sorted(outcomes.items()):
            finished.add_metric(list(labels), n)
        yield finished


def bounded_node(seen: set[str], node: str) -> str:
    """The ``node`` label of a task: its node while among the first :data:`MAX_NODES`
    distinct ones in ``seen``, else "other"."""
    return _bounded(seen, _label(node, 255), MAX_NODES)


def _bounded(seen: set[str], label: str, limit: int) -> str:
    """``label`` while it is among the first ``limit`` distinct ones, else "other" (the
    caller holds the lock guarding ``seen``)."""
    if label in seen:
        return label
    if len(seen) >= limit:
        return OTHER
    seen.add(label)
    return label


# Every outcome of every node seen starts at 0, so an alert's increase() sees the first
# failure of a kind too (a counter series that appears at 1 has no earlier sample).
_ZERO_OUTCOMES: Mapping[tuple[str, str], int] = {
    (TaskStatus.COMPLETED.value, "none"): 0,
    **{(TaskStatus.FAILED.value, category.value): 0 for category in ErrorCategory},
    (TaskStatus.INTERRUPTED.value, ErrorCategory.INTERRUPTED.value): 0,
}


def _bound(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{value:.1f}"


def histogram(
    name: str,
    documentation: str,
    bounds: Sequence[float],
    series: Mapping[tuple[str, str, str], tuple[list[int], int, float]],
) -> HistogramMetricFamily:
    """A histogram family by (node, model_type, resolution_class); each series holds its
    cumulative count per bound, its count and its sum."""
    family = HistogramMetricFamily(
        name, documentation, labels=("node", "model_type", "resolution_class")
    )
    for labels, (counts, count, total) in sorted(series.items()):
        cumulative = [(_bound(b), n) for b, n in zip(bounds, counts, strict=True)]
        family.add_metric(list(labels), [*cumulative, ("+Inf", count)], sum_value=total)
    return family


class MonitorSource(Protocol):
    """What the collector reads; a PerformanceMonitor satisfies it."""

    @property
    def node(self) -> str: ...

    def current_sample(self) -> SystemSample: ...

    def self_stats(self) -> dict[str, float | int]: ...


def live_metrics(
    node: str, version: str, sample: SystemSample, stats: Mapping[str, float | int], now: float
) -> Iterator[Metric]:
    """The families that change between two samples: ``genperf_info``, the latest sample's
    age and the monitor's own health (read at every scrape)."""
    info = {"node": node, "version": version or "unknown"}
    yield InfoMetricFamily("genperf", "genperf's version and node", value=info)
    yield _gauge(
        "genperf_sample_age_seconds",
        "Age of the latest sample",
        node,
        max(0.0, now - sample.taken_at.timestamp()),
    )
    yield from _self_metrics(node, stats)


def node_label(monitor: MonitorSource) -> str:
    """The ``node`` label of a process's own series."""
    return _label(monitor.node, 255)


def _gauge(name: str, help_text: str, node: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=("node",))
    family.add_metric([node], value)
    return family


def sample_metrics(node: str, sample: SystemSample) -> Iterator[Metric]:
    """The families read from one sample: its time, host and per-GPU gauges (the same for
    every scrape until the next sample, so they can be rendered once per sample)."""
    yield _gauge(
        "genperf_sample_timestamp_seconds", "When the latest sample was taken (Unix time)",
        node, sample.taken_at.timestamp(),
    )  # fmt: skip
    for spec in HOST_METRICS:
        value = getattr(sample, spec.name)
        if value is not None:
            yield _gauge(f"genperf_host_{spec.name}", spec.help, node, float(value))
    families = {
        spec.name: GaugeMetricFamily(
            f"genperf_gpu_{spec.name}", spec.help, labels=("node", "gpu", "name")
        )
        for spec in GPU_METRICS
    }
    for gpu in sample.gpus:
        labels = gpu_labels(node, gpu)
        for spec in GPU_METRICS:
            value = getattr(gpu, spec.name)
            if value is not None:
                families[spec.name].add_metric(labels, float(value))
    yield from (family for family in families.values() if family.samples)


def gpu_labels(node: str, gpu: GpuReading) -> list[str]:
    """A GPU's series labels: node, index and model name."""
    return [node, str(gpu.index), _label(gpu.name or "unknown", 128)]


def _self_metrics(node: str, stats: Mapping[str, float | int]) -> Iterator[Metric]:
    for key, (name, help_text, counter) in SELF_STATS.items():
        value = stats.get(key)
        if value is None:
            continue
        if counter:
            family = CounterMetricFamily(name, help_text, labels=("node",))
            family.add_metric([node], float(value))
            yield family
        else:
            yield _gauge(name, help_text, node, float(value))


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(registry)


class Exposition(Protocol):
    """Families rendered for a scrape: the Prometheus text format, or OpenMetrics (ending
    with ``# EOF``)."""

    def exposition(self, openmetrics: bool) -> bytes: ...


class Prefix(Protocol):
    """Families rendered elsewhere (and cached there) that go before a registry's exposition:
    plain, and compressed once per change (see :mod:`genperf.exporters.gzip_join`)."""

    def exposition(self, openmetrics: bool) -> bytes: ...

    def deflated(self, openmetrics: bool) -> DeflatedPrefix: ...


def negotiate(
    families: Exposition,
    accept: str | None,
    prefix: Prefix | None = None,
    *,
    gzip: bool = False,
) -> tuple[bytes, str]:
    """``families`` in the format the scraper's ``Accept`` header asks for, and its content
    type: OpenMetrics when asked for it, else the Prometheus text format (prometheus_client's
    own negotiation, so the two stay in step with the library). ``prefix``'s families come
    first (so OpenMetrics' ``# EOF`` stays last); ``gzip`` compresses the whole body as one
    gzip member, the prefix's part compressed once per change rather than per scrape."""
    _, content_type = choose_encoder(accept or "")
    openmetrics = content_type.startswith("application/openmetrics-text")
    body = families.exposition(openmetrics)
    if gzip:
        return gzip_join(prefix.deflated(openmetrics) if prefix else EMPTY, body), content_type
    if prefix is None:
        return body, content_type
    return prefix.exposition(openmetrics) + body, content_type


_EOF = b"# EOF\n"


def strip_eof(body: bytes) -> bytes:
    """An OpenMetrics exposition without its closing ``# EOF``, to be appended to another."""
    return body[: -len(_EOF)] if body.endswith(_EOF) else body


__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "MAX_NODES",
    "MonitorSource",
    "TaskOutcomes",
    "gpu_labels",
    "live_metrics",
    "negotiate",
    "node_label",
    "render",
    "sample_metrics",
]
