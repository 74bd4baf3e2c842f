"""OpenTelemetry metrics over OTLP/HTTP (the ``otlp`` extra: opentelemetry-sdk and its OTLP
HTTP exporter), for any backend that ingests OTLP: an OpenTelemetry Collector, Grafana
Cloud, Datadog, New Relic, Honeycomb, AWS CloudWatch and Azure Monitor through the Collector.

Instruments (resource: ``service.name=genperf``, ``host.name=<node>``):

* ``genperf.task.duration`` (histogram, s): generation time of completed tasks, by
  ``model_type`` and ``resolution_class``, with the Prometheus histogram's buckets;
* ``genperf.task.model_load.duration`` (histogram, s) and ``genperf.task.peak_vram`` /
  ``genperf.task.peak_ram`` (histograms, MiBy): completed tasks, same attributes;
* ``genperf.task.phase.duration`` (histogram, s): each phase, by ``phase`` as well;
* ``genperf.tasks.finished`` (counter): every finished task by ``model_type``,
  ``resolution_class``, ``status`` and ``error_category``;
* ``genperf.host.<metric>`` and ``genperf.gpu.<metric>`` (gauges, attributes ``gpu`` and
  ``gpu.name``): the latest sample, read when the SDK collects.

Offering a task records into the SDK's in-memory aggregation (a lock and a few additions, no
I/O); the SDK's own reader thread exports every ``otlp_export_seconds``, retrying a failed
export within its timeout. Attribute values are bounded like the Prometheus labels: only the
first 50 model types and phase names get their own series, later ones count as ``other``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Histogram, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from genperf.exporters.prometheus import DURATION_BUCKETS, MAX_MODEL_TYPES
from genperf.records import (
    GPU_METRICS,
    HOST_METRICS,
    MetricSpec,
    SystemSample,
    TaskRecord,
    TaskStatus,
)

OTHER = "other"
_UNITS = {
    "percent": "%",
    "bytes": "By",
    "bytes_per_second": "By/s",
    "celsius": "Cel",
    "watts": "W",
    "megahertz": "MHz",
}


class _Bounded:
    """The first ``limit`` distinct values pass; later ones become ``other``."""

    def __init__(self, limit: int = MAX_MODEL_TYPES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        value = value[:100] or OTHER
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
            return value


class _CountingExporter(MetricExporter):
    """The OTLP exporter, counting failed exports for ``stats()``."""

    def __init__(self, inner: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.failures = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is not MetricExportResult.SUCCESS:
            self.failures += 1
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


class OtlpSink:
    """Finished tasks and the latest sample as OpenTelemetry metrics.

    Args:
        reader: where the metrics go: a ``PeriodicExportingMetricReader`` over the OTLP
            exporter (:meth:`to_endpoint`), or the SDK's ``InMemoryMetricReader`` in tests.
        node: the ``host.name`` resource attribute.
    """

    name = "otlp"

    def __init__(
        self,
        reader: MetricReader,
        *,
        node: str,
        exporter: _CountingExporter | None = None,
    ) -> None:
        self._exporter = exporter
        self._latest: SystemSample | None = None
        self._model_type = _Bounded()
        self._phase = _Bounded()
        self.tasks_recorded = 0
        self._count_lock = threading.Lock()  # tasks finish on many threads
        resource = Resource.create({"service.name": "genperf", "host.name": node})
        self.provider = MeterProvider(
            metric_readers=[reader], resource=resource, shutdown_on_exit=False
        )
        meter = self.provider.get_meter("genperf")
        buckets = list(DURATION_BUCKETS)

        def seconds(name: str, description: str) -> Histogram:
            # the duration histograms share the Prometheus histogram's buckets
            return meter.create_histogram(
                name, unit="s", description=description, explicit_bucket_boundaries_advisory=buckets
            )

        self._duration = seconds("genperf.task.duration", "Generation time of completed tasks")
        self._model_load = seconds(
            "genperf.task.model_load.duration", "Model load time of completed tasks"
        )
        self._phase_duration = seconds(
            "genperf.task.phase.duration", "Duration of each phase of completed tasks"
        )
        self._peak_vram = meter.create_histogram(
            "genperf.task.peak_vram", unit="MiBy", description="Peak VRAM of completed tasks"
        )
        self._peak_ram = meter.create_histogram(
            "genperf.task.peak_ram", unit="MiBy", description="Peak RAM of completed tasks"
        )
        self._finished = meter.create_counter(
            "genperf.tasks.finished",
            unit="{task}",
            description="Finished tasks by status and error category",
        )
        gauges = (
            ("host", HOST_METRICS, self._host_callback),
            ("gpu", GPU_METRICS, self._gpu_callback),
        )
        for kind, specs, callback in gauges:
            for spec in specs:
                meter.create_observable_gauge(
                    f"genperf.{kind}.{spec.name}",
                    callbacks=[callback(spec)],
                    unit=_UNITS.get(spec.unit, ""),
                    description=spec.help,
                )

    @classmethod
    def to_endpoint(
        cls, endpoint: str, *, node: str, export_seconds: float, timeout_seconds: float
    ) -> OtlpSink:
        """A sink exporting to an OTLP/HTTP metrics endpoint (``.../v1/metrics``)."""
        exporter = _CountingExporter(OTLPMetricExporter(endpoint=endpoint, timeout=timeout_seconds))
        reader = PeriodicExportingMetricReader(
            exporter,
            export_interval_millis=export_seconds * 1000,
            export_timeout_millis=timeout_seconds * 1000,
        )
        return cls(reader, node=node, exporter=exporter)

    # --- the monitor's side ---------------------------------------------------------------

    def offer_task(self, record: TaskRecord) -> None:
        if record.status is TaskStatus.RUNNING:
            return
        attrs = {
            "model_type": self._model_type(record.model_type),
            "resolution_class": record.resolution_class,
        }
        category = "none" if record.success else (record.error_category or "unknown")
        self._finished.add(1, {**attrs, "status": record.status.value, "error_category": category})
        with self._count_lock:
            self.tasks_recorded += 1
        if not record.success:
            return
        for instrument, value in (
            (self._duration, record.generation_time_seconds),
            (self._model_load, record.model_load_time_seconds),
            (self._peak_vram, record.peak_vram_usage_mb),
            (self._peak_ram, record.peak_ram_usage_mb),
        ):
            if value is not None:
                instrument.record(value, attrs)
        for phase in record.phases:
            self._phase_duration.record(
                phase.duration_seconds, {**attrs, "phase": self._phase(phase.name)}
            )

    def offer_sample(self, sample: SystemSample) -> None:
        self._latest = sample  # read by the gauges' callbacks when the SDK collects

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Nothing to start: the SDK's reader runs from construction."""

    def flush(self, timeout: float) -> bool:
        """Export now; True when the export succeeded (the SDK's force_flush says only that it
        ran)."""
        failures = self._exporter.failures if self._exporter is not None else 0
        done = self.provider.force_flush(timeout_millis=timeout * 1000)
        return bool(done) and failures == (self._exporter.failures if self._exporter else 0)

    def close(self, timeout: float = 5.0) -> None:
        self.provider.shutdown(timeout_millis=timeout * 1000)

    def stats(self) -> dict[str, int]:
        return {
            "tasks_sent": self.tasks_recorded,
            "samples_sent": 0,
            "tasks_dropped": 0,
            "samples_dropped": 0,
            "send_errors": self._exporter.failures if self._exporter is not None else 0,
            "queued": 0,
        }

    # --- gauges ---------------------------------------------------------------------------

    def _host_callback(self, spec: MetricSpec) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            sample = self._latest
            value = getattr(sample, spec.name) if sample is not None else None
            return [] if value is None else [Observation(float(value))]

        return observe

    def _gpu_callback(self, spec: MetricSpec) -> Any:
        def observe(options: CallbackOptions) -> Sequence[Observation]:
            sample = self._latest
            out: list[Observation] = []
            for gpu in sample.gpus if sample is not None else ():
                value = getattr(gpu, spec.name)
                if value is not None:
                    attrs = {"gpu": str(gpu.index), "gpu.name": gpu.name or "unknown"}
                    out.append(Observation(float(value), attrs))
            return out

        return observe
