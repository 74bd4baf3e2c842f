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
from collections.abc import Callable
from typing import Any, Protocol

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


def _influx(url: str, settings: Settings, limits: QueueLimits, node: str) -> Sink:
    from genperf.sinks.influx import InfluxSink

    timeout = settings.sink_timeout_seconds
    return InfluxSink(url, settings.influxdb_database, limits, timeout_seconds=timeout)


def _elastic(url: str, settings: Settings, limits: QueueLimits, node: str) -> Sink:
    from genperf.sinks.elastic import ElasticSink

    timeout = settings.sink_timeout_seconds
    return ElasticSink(url, settings.elasticsearch_index, limits, timeout_seconds=timeout)


def _otlp(endpoint: str, settings: Settings, limits: QueueLimits, node: str) -> Sink:
    from genperf.sinks.otlp import OtlpSink

    return OtlpSink.to_endpoint(
        endpoint,
        node=node,
        export_seconds=settings.otlp_export_seconds,
        timeout_seconds=settings.sink_timeout_seconds,
    )


def _json_log(target: str, settings: Settings, limits: QueueLimits, node: str) -> Sink:
    from genperf.sinks.jsonlog import JsonLogSink

    return JsonLogSink(target, limits)


# Each sink: the setting that turns it on (its value is the builder's first argument), the
# extra it needs (None: its dependencies always ship) and its builder, in the order built.
SINKS: tuple[tuple[str, str | None, Callable[[Any, Settings, QueueLimits, str], Sink]], ...] = (
    ("influxdb_url", None, _influx),
    ("elasticsearch_url", "elasticsearch", _elastic),
    ("otlp_endpoint", "otlp", _otlp),
    ("task_log", None, _json_log),
)


def build_sinks(settings: Settings, *, node: str) -> list[Sink]:
    """The sinks the settings ask for (none by default), not started yet."""
    limits = queue_limits(settings)
    sinks: list[Sink] = []
    for setting, extra, build in SINKS:
        value = getattr(settings, setting)
        if not value:
            continue
        try:
            sinks.append(build(value, settings, limits, node))
        except ImportError as exc:
            if extra is None:
                raise
            _missing(setting, extra, exc)
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
