"""The wiring of ``genperf agent``: the monitor of one GPU node (sampler, writer, exact peaks)
writing to the fleet's shared database, without the API, and, with ``worker``, a generation
worker taking requests from the fleet's queue. ``genperf serve`` (API, dashboard, queueing)
may run anywhere against the same database.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

from genperf.config import Settings, redact_url
from genperf.errors import ConfigError
from genperf.monitor import PerformanceMonitor

logger = logging.getLogger("genperf.agent")

# How long a stop waits for a running generation before handing it back as interrupted.
STOP_GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class MetricsEndpoint:
    """Where the agent serves its own metrics for Prometheus (its node's host and GPU gauges
    and monitor health; the task families come from the API process only)."""

    port: int
    host: str = "127.0.0.1"
    token: str | None = None  # the bearer token scrapers send; required off loopback


def run_agent(
    settings: Settings,
    *,
    worker: bool = False,
    model_types: Sequence[str] = (),
    stop: threading.Event | None = None,
    metrics: MetricsEndpoint | None = None,
) -> bool:
    """Monitor this node (and run generations, with ``worker``) until ``stop`` is set,
    SIGTERM or Ctrl-C.

    Returns True when everything stopped; False when a running generation was handed back as
    interrupted and its thread still runs in torch: the caller should then end the process at
    once (``os._exit``), as ``genperf serve`` does.

    Raises:
        ConfigError: ``worker`` without the diffusers extra, or a ``metrics`` endpoint that
            cannot serve (no token off loopback, a port in use).
    """
    if worker and (
        importlib.util.find_spec("diffusers") is None or importlib.util.find_spec("torch") is None
    ):
        raise ConfigError("--worker runs diffusion pipelines: install torch and genperf[diffusers]")
    stop = stop if stop is not None else threading.Event()
    monitor = PerformanceMonitor(settings)
    service = None
    if worker:
        from genperf.generation.service import GenerationService

        service = GenerationService(monitor, model_types=model_types or None)
    previous = _stop_on_sigterm(stop)
    stopped = True
    listener = None
    try:
        monitor.start()
        if metrics is not None:
            listener = _serve_metrics(monitor, metrics)
        if service is not None:
            service.start()
        logger.warning(
            "genperf agent on node %s: sampling every %g s into %s%s",
            monitor.node,
            settings.monitoring_interval_seconds,
            redact_url(settings.resolved_database_url),
            ""
            if service is None
            else ", generation worker on"
            + (f" (model types {', '.join(model_types)})" if model_types else ""),
        )
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is a clean stop
            stop.wait()
    finally:
        if listener is not None:
            listener.close()
        if service is not None:
            stopped = service.close(grace_seconds=STOP_GRACE_SECONDS)
        monitor.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return stopped


def _serve_metrics(monitor: PerformanceMonitor, where: MetricsEndpoint) -> Any:
    from genperf.exporters.process_metrics import serve_process_metrics

    try:
        listener = serve_process_metrics(monitor, where.host, where.port, where.token)
    except (ValueError, OSError) as exc:
        raise ConfigError(
            f"--metrics-port: cannot serve on {where.host}:{where.port}: {exc}"
        ) from exc
    logger.warning("agent metrics on http://%s:%d/metrics", where.host, listener.port)
    return listener


def _stop_on_sigterm(stop: threading.Event) -> Any:
    """SIGTERM (systemd's stop) sets ``stop``; only the main thread may install handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return signal.signal(signal.SIGTERM, handle)
