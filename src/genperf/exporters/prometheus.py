"""Prometheus: the monitor read at scrape time, on a private registry.

:class:`MonitorCollector` turns the monitor's latest sample into gauges when Prometheus
scrapes, so values are never stale copies and nothing runs between scrapes:

* host gauges, one per :data:`genperf.records.HOST_METRICS` entry: ``genperf_host_<name>``;
* GPU gauges, one per :data:`genperf.records.GPU_METRICS` entry, labelled by GPU index and
  model name: ``genperf_gpu_<name>{gpu="0",name="NVIDIA H200"}``;
* the database's tasks by status and error category, ``genperf_store_tasks``, from
  :class:`StoreTaskCounts`: true for every process writing to the database the server reads
  (a worker, a second service, the CLI), counted there with one grouped query cached for
  :data:`STORE_COUNTS_SECONDS`;
* this process's own task duration histograms by model type and resolution class, and its
  finished-task counters by status and error category, from :class:`TaskOutcomes`: only what
  this process's monitor saw finish since it started (Prometheus sums them across processes);
* the monitor's own overhead and health (``PerformanceMonitor.self_stats``).
* ``genperf_info{node, version}``, an info metric.

:func:`negotiate` answers in OpenMetrics when the scraper asks for it (``Accept:
application/openmetrics-text``), else in the Prometheus text format.

No label carries an unbounded value: no task ids, no prompts, no error messages. Model types
come from callers, so only the first :data:`MAX_MODEL_TYPES` distinct ones get a series of
their own; later ones are counted under ``model_type="other"``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
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

from genperf.records import (
    GPU_METRICS,
    HOST_METRICS,
    ErrorCategory,
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
STORE_COUNTS_SECONDS = 5.0  # a scrape every 15 s reads the database at most once per scrape
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


class TaskOutcomes:
    """Cumulative task durations and outcomes since this process started (thread-safe).

    ``observe`` takes finished records; each run is counted once even when saved twice.
    Durations are of completed tasks only (a failure's duration says little); every finished
    task counts in ``genperf_tasks_finished_total{status, error_category}``.
    """

    def __init__(self, buckets: Iterable[float] = DURATION_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._durations: dict[tuple[str, str], _Histogram] = {}
        self._outcomes: dict[tuple[str, str], int] = {}
        self._model_types: set[str] = set()
        self._seen: OrderedDict[str, None] = OrderedDict()

    def observe(self, record: TaskRecord) -> None:
        if record.status is TaskStatus.RUNNING:
            return
        with self._lock:
            if record.run_id in self._seen:
                return
            self._seen[record.run_id] = None
            if len(self._seen) > _SEEN_RUNS:
                self._seen.popitem(last=False)
            outcome = (record.status.value, self._category(record))
            self._outcomes[outcome] = self._outcomes.get(outcome, 0) + 1
            seconds = record.generation_time_seconds
            if record.status is TaskStatus.COMPLETED and seconds is not None:
                key = (self._model_type(record.model_type), _label(record.resolution_class))
                hist = self._durations.get(key)
                if hist is None:
                    hist = self._durations[key] = _Histogram([0] * len(self.buckets))
                for i, bound in enumerate(self.buckets):
                    if seconds <= bound:
                        hist.buckets[i] += 1
                hist.count += 1
                hist.total += seconds

    def _model_type(self, model_type: str) -> str:
        label = _label(model_type)
        if label in self._model_types:
            return label
        if len(self._model_types) >= MAX_MODEL_TYPES:
            return OTHER
        self._model_types.add(label)
        return label

    @staticmethod
    def _category(record: TaskRecord) -> str:
        if record.status is TaskStatus.COMPLETED:
            return "none"
        try:
            return ErrorCategory(record.error_category or "unknown").value
        except ValueError:
            return OTHER

    def metrics(self) -> Iterator[Metric]:
        with self._lock:
            durations = {k: (list(h.buckets), h.count, h.total) for k, h in self._durations.items()}
            outcomes = {**_ZERO_OUTCOMES, **self._outcomes}
        hist = HistogramMetricFamily(
            "genperf_task_duration_seconds",
            "Generation time of the tasks this process's monitor completed since it started",
            labels=("model_type", "resolution_class"),
        )
        for (model_type, res_class), (counts, count, total) in sorted(durations.items()):
            cumulative = [(_bound(b), n) for b, n in zip(self.buckets, counts, strict=True)]
            hist.add_metric(
                [model_type, res_class], [*cumulative, ("+Inf", count)], sum_value=total
            )
        yield hist
        finished = CounterMetricFamily(
            "genperf_tasks_finished",
            "Tasks this process's monitor finished since it started, by status and error"
            " category (the database's totals are genperf_store_tasks)",
            labels=("status", "error_category"),
        )
        for (status, category), n in sorted(outcomes.items()):
            finished.add_metric([status, category], n)
        yield finished


# Every outcome starts at 0, so an alert's increase() sees the first failure of a kind too
# (a counter series that appears at 1 has no earlier sample to increase from).
_ZERO_OUTCOMES: Mapping[tuple[str, str], int] = {
    (TaskStatus.COMPLETED.value, "none"): 0,
    **{(TaskStatus.FAILED.value, category.value): 0 for category in ErrorCategory},
    (TaskStatus.INTERRUPTED.value, ErrorCategory.INTERRUPTED.value): 0,
}


class TaskCountSource(Protocol):
    """A store that can count its task records by (status, error_category)."""

    def status_counts(self) -> Mapping[tuple[str | None, str | None], int]: ...


class StoreTaskCounts:
    """``genperf_store_tasks{status, error_category}``: the task records of the database.

    Read with one grouped count, kept for ``ttl`` seconds so that scrapes (or several
    Prometheus servers) cost the database at most one query per ``ttl``. When the database
    cannot be read, the last counts are kept while they are recent (``ttl`` * 12), then the
    family is left out rather than shown stale.

    Args:
        store: returns the store to count (None while it cannot be opened).
        ttl: seconds a count is reused.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        store: Callable[[], object | None],
        *,
        ttl: float = STORE_COUNTS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] | None = None
        self._read_at = 0.0

    def counts(self) -> dict[tuple[str, str], int] | None:
        """(status, error_category) -> records, None when the database cannot be read."""
        with self._lock:  # one reader at a time: concurrent scrapes share one query
            now = self._clock()
            if self._counts is not None and now - self._read_at < self._ttl:
                return self._counts
            try:
                fresh = self._read()
            except Exception:
                logger.debug("could not count the database's tasks", exc_info=True)
                fresh = None
            if fresh is not None:
                self._counts, self._read_at = fresh, now
            elif self._counts is not None and now - self._read_at > self._ttl * 12:
                self._counts = None
            return self._counts

    def _read(self) -> dict[tuple[str, str], int] | None:
        store = self._store()
        count = getattr(store, "status_counts", None)
        if not callable(count):
            return None
        out: dict[tuple[str, str], int] = {}
        for (status, category), n in count().items():
            key = (_status_label(status), _category_label(status, category))
            out[key] = out.get(key, 0) + int(n)
        return out

    def metrics(self) -> Iterator[Metric]:
        counts = self.counts()
        if counts is None:
            return
        family = GaugeMetricFamily(
            "genperf_store_tasks",
            "Task records in the database by status and error category, written by any process"
            " (the server's own finished tasks are genperf_tasks_finished_total)",
            labels=("status", "error_category"),
        )
        for (status, category), n in sorted(counts.items()):
            family.add_metric([status, category], n)
        yield family


def _status_label(status: str | None) -> str:
    try:
        return TaskStatus(status or "").value
    except ValueError:
        return OTHER


def _category_label(status: str | None, category: str | None) -> str:
    if status in (TaskStatus.COMPLETED.value, TaskStatus.RUNNING.value) and category is None:
        return "none"
    try:
        return ErrorCategory(category or "unknown").value
    except ValueError:
        return OTHER


def _bound(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{value:.1f}"


class MonitorSource(Protocol):
    """What the collector reads; a PerformanceMonitor satisfies it."""

    @property
    def node(self) -> str: ...

    def current_sample(self) -> SystemSample: ...

    def self_stats(self) -> dict[str, float | int]: ...


class MonitorCollector(Collector):
    """Reads the monitor at scrape time. Register it on a private :class:`CollectorRegistry`."""

    def __init__(
        self,
        monitor: MonitorSource,
        outcomes: TaskOutcomes,
        *,
        version: str = "",
        wall_time: Callable[[], float] = time.time,
        store_counts: StoreTaskCounts | None = None,
    ) -> None:
        self.monitor = monitor
        self.outcomes = outcomes
        self.version = version
        self._wall_time = wall_time
        self.store_counts = store_counts

    def collect(self) -> Iterator[Metric]:
        yield InfoMetricFamily(
            "genperf",
            "genperf's version and node",
            value={"node": _label(self.monitor.node, 255), "version": self.version or "unknown"},
        )
        sample = self.monitor.current_sample()
        yield from _sample_metrics(sample, self._wall_time())
        if self.store_counts is not None:
            yield from self.store_counts.metrics()
        yield from self.outcomes.metrics()
        yield from _self_metrics(self.monitor.self_stats())


def _sample_metrics(sample: SystemSample, now: float) -> Iterator[Metric]:
    taken = sample.taken_at.timestamp()
    yield GaugeMetricFamily(
        "genperf_sample_timestamp_seconds", "When the latest sample was taken (Unix time)", taken
    )
    yield GaugeMetricFamily(
        "genperf_sample_age_seconds", "Age of the latest sample", max(0.0, now - taken)
    )
    for spec in HOST_METRICS:
        value = getattr(sample, spec.name)
        if value is not None:
            yield GaugeMetricFamily(f"genperf_host_{spec.name}", spec.help, float(value))
    families = {
        spec.name: GaugeMetricFamily(f"genperf_gpu_{spec.name}", spec.help, labels=("gpu", "name"))
        for spec in GPU_METRICS
    }
    for gpu in sample.gpus:
        labels = [str(gpu.index), _label(gpu.name or "unknown", 128)]
        for spec in GPU_METRICS:
            value = getattr(gpu, spec.name)
            if value is not None:
                families[spec.name].add_metric(labels, float(value))
    yield from (family for family in families.values() if family.samples)


def _self_metrics(stats: Mapping[str, float | int]) -> Iterator[Metric]:
    for key, (name, help_text, counter) in SELF_STATS.items():
        value = stats.get(key)
        if value is None:
            continue
        if counter:
            yield CounterMetricFamily(name, help_text, value=float(value))
        else:
            yield GaugeMetricFamily(name, help_text, value=float(value))


def registry_for(
    monitor: MonitorSource,
    outcomes: TaskOutcomes,
    *,
    version: str = "",
    store: Callable[[], object | None] | None = None,
) -> CollectorRegistry:
    """A private registry holding only genperf's collector (no process or platform metrics
    of whoever imported prometheus_client first). ``store`` returns the store whose tasks
    ``genperf_store_tasks`` counts."""
    registry = CollectorRegistry(auto_describe=False)
    counts = StoreTaskCounts(store) if store is not None else None
    registry.register(MonitorCollector(monitor, outcomes, version=version, store_counts=counts))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (:data:`CONTENT_TYPE`)."""
    return generate_latest(registry)


def negotiate(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry in the format the scraper's ``Accept`` header asks for, and its content
    type: OpenMetrics when asked for it, else the Prometheus text format (prometheus_client's
    own negotiation, so the two stay in step with the library)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


__all__ = [
    "CONTENT_TYPE",
    "DURATION_BUCKETS",
    "MonitorCollector",
    "StoreTaskCounts",
    "TaskOutcomes",
    "negotiate",
    "registry_for",
    "render",
]
