"""A process's own metrics on a small authenticated listener: what `genperf agent` serves.

An agent (a GPU node's monitor, without the API) exports only what is its own: host and GPU
gauges, throttle flags, the monitor's health (sampler, writer queue, drops) and
``genperf_info``, every series labelled with its node. The task families come from the
database, through the API process only (:mod:`genperf.exporters.prometheus_tasks`), so a
fleet's sum counts each task once.

The listener is prometheus_client's own WSGI app (content negotiation, OpenMetrics, gzip) on
its threading WSGI server, behind a bearer-token check. It binds 127.0.0.1 unless told
otherwise, and refuses to listen elsewhere without a token.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from genperf import __version__
from genperf.exporters.prometheus import MonitorCollector, MonitorSource
from genperf.exporters.prometheus_details import ThrottleCollector

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def process_registry(monitor: MonitorSource, *, version: str = __version__) -> CollectorRegistry:
    """A private registry of one process's own collectors (the monitor's gauges and health,
    GPU throttle flags), read at scrape time; no task family, no global collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor, version=version))
    registry.register(ThrottleCollector(monitor))
    return registry


def require_bearer(app: WsgiApp, token: str | None) -> WsgiApp:
    """``app`` behind ``Authorization: Bearer <token>`` (compared in constant time); 401
    without it. ``token`` None lets every request through (loopback only, see
    :func:`serve_process_metrics`)."""
    if token is None:
        return app
    expected = f"Bearer {token}".encode()

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        given = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if not hmac.compare_digest(given, expected):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"a bearer token is required\n"]
        return app(environ, start_response)

    return guarded


@dataclass
class MetricsListener:
    """A running listener: its ``port`` (the one bound when 0 was asked) and :meth:`close`."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()


def serve_process_metrics(
    monitor: MonitorSource,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
) -> MetricsListener:
    """Serve ``monitor``'s own metrics at ``http://host:port/metrics`` on a daemon thread.

    Args:
        monitor: the process's monitor (a PerformanceMonitor); read at scrape time.
        host: the address to bind; loopback by default.
        port: the port; 0 picks a free one (see the returned listener's ``port``).
        token: the bearer token scrapers must send (genperf's read token); required unless
            ``host`` is a loopback address.

    Raises:
        ValueError: ``token`` is missing (or blank) for a non-loopback ``host``, or ``port``
            is out of range.
        OSError: the address cannot be bound.
    """
    if token is not None and not token.strip():
        raise ValueError("token: must not be blank (None serves loopback without one)")
    if token is None and not _is_loopback(host):
        raise ValueError(f"token: required to serve metrics on {host!r} (not a loopback address)")
    if not 0 <= port <= 65535:
        raise ValueError(f"port: must be 0..65535, got {port}")
    app = require_bearer(make_wsgi_app(process_registry(monitor)), token)
    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    thread = threading.Thread(
        target=server.serve_forever, name="genperf-process-metrics", daemon=True
    )
    thread.start()
    return MetricsListener(server, thread)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = ["MetricsListener", "process_registry", "require_bearer", "serve_process_metrics"]
