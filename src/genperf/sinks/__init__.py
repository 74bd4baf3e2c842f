"""Live sinks: finished tasks (and samples) sent on to an operator's stack as they happen.

* :class:`~genperf.sinks.influx.InfluxSink` (``influxdb_url``): line protocol to InfluxDB 1.x.
* :class:`~genperf.sinks.elastic.ElasticSink` (``elasticsearch_url``): task documents through
  the official client's bulk helpers (the ``elasticsearch`` extra).
* :class:`~genperf.sinks.otlp.OtlpSink` (``otlp_endpoint``): OpenTelemetry metrics over
  OTLP/HTTP (the ``otlp`` extra).
* :class:`~genperf.sinks.jsonlog.JsonLogSink` (``task_log``): one JSON line per finished task.

The monitor builds them from its settings (:func:`build_sinks`), offers them every finished
task and every sample, and closes them with itself. Offering never does I/O on the caller's
thread: see :mod:`genperf.sinks.base`. A sink whose extra is not installed is reported once
in the log and left out; it never stops the monitor.
"""

from __future__ import annotations

import logging
from typing import Protocol

from genperf.config import Settings
from genperf.records import SystemSample, TaskRecord
from genperf.sinks.base import QueueLimits

logger = logging.getLogger("genperf.sinks")


class Sink(Protocol):
    """What the monitor feeds. ``offer_*`` must return at once, whatever the endpoint does."""

    name: str

    def offer_task(self, record: TaskRecord) -> None: ...

    def offer_sample(self, sample: SystemSample) -> None: ...

    def start(self) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...

    def stats(self) -> dict[str, int]: ...


def queue_limits(settings: Settings) -> QueueLimits:
    return QueueLimits(
        batch_size=settings.sink_batch_size,
        queue_size=settings.sink_queue_size,
        flush_seconds=settings.sink_flush_seconds,
        retry_max_seconds=settings.sink_retry_max_seconds,
    )


def build_sinks(settings: Settings, *, node: str) -> list[Sink]:
    """The sinks the settings ask for (none by default), not started yet."""
    limits = queue_limits(settings)
    sinks: list[Sink] = []
    if settings.influxdb_url:
        from genperf.sinks.influx import InfluxSink

        sinks.append(
            InfluxSink(
                settings.influxdb_url,
                settings.influxdb_database,
                limits,
                timeout_seconds=settings.sink_timeout_seconds,
            )
        )
    if settings.elasticsearch_url:
        try:
            from genperf.sinks.elastic import ElasticSink
        except ImportError as exc:
            _missing("elasticsearch_url", "elasticsearch", exc)
        else:
            sinks.append(
                ElasticSink(
                    settings.elasticsearch_url,
                    settings.elasticsearch_index,
                    limits,
                    timeout_seconds=settings.sink_timeout_seconds,
                )
            )
    if settings.otlp_endpoint:
        try:
            from genperf.sinks.otlp import OtlpSink
        except ImportError as exc:
            _missing("otlp_endpoint", "otlp", exc)
        else:
            sinks.append(
                OtlpSink.to_endpoint(
                    settings.otlp_endpoint,
                    node=node,
                    export_seconds=settings.otlp_export_seconds,
                    timeout_seconds=settings.sink_timeout_seconds,
                )
            )
    if settings.task_log:
        from genperf.sinks.jsonlog import JsonLogSink

        sinks.append(JsonLogSink(settings.task_log, limits))
    return sinks


def _missing(setting: str, extra: str, exc: ImportError) -> None:
    logger.error(
        "%s is set but the %r extra is not installed (pip install 'genperf[%s]'): %s; "
        "this sink is off",
        setting,
        extra,
        extra,
        exc,
    )


__all__ = ["QueueLimits", "Sink", "build_sinks", "queue_limits"]
