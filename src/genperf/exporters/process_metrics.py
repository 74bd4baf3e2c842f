"""A process's own metrics on a small authenticated listener: what `genperf agent` serves.

An agent (a GPU node's monitor, without the API) exports only what is its own: host and GPU
gauges, throttle flags, the monitor's health (sampler, writer queue, drops) and
``genperf_info``, every series labelled with its node. The task families come from the
database, through the API process only (:mod:`genperf.exporters.prometheus_tasks`), so a
fleet's sum counts each task once.

:class:`ProcessExposition` renders these for a scrape. Most of the lines (host, every GPU's
gauges and throttle flags) are read from the latest sample, which changes once per interval:
they are rendered once per sample and format, and only the few that change between samples
(the sample's age, the monitor's health, ``genperf_info``) at every scrape. prometheus_client
checks and escapes every label of every line it renders, so rendering the whole exposition per
scrape cost an 8-GPU node about a millisecond.

The listener is a small WSGI app (the same content negotiation and gzip as the API's
``/metrics``) on prometheus_client's threading WSGI server, behind a bearer-token check. It
binds 127.0.0.1 unless told otherwise, and refuses to listen elsewhere without a token.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import generate_latest
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from genperf import __version__
from genperf.exporters.gzip_join import accepts_gzip
from genperf.exporters.prometheus import (
    MonitorSource,
    live_metrics,
    negotiate,
    node_label,
    sample_metrics,
    strip_eof,
)
from genperf.exporters.prometheus_details import throttle_metrics
from genperf.records import SystemSample

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class ProcessExposition:
    """One process's own families (the monitor's gauges and health, GPU throttle flags),
    every series labelled with its node; no task family, no global collector.

    Args:
        monitor: read at every scrape (a PerformanceMonitor).
        version: ``genperf_info``'s version label.
        wall_time: Unix seconds (the latest sample's age).
    """

    def __init__(
        self,
        monitor: MonitorSource,
        *,
        version: str = __version__,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self.monitor = monitor
        self.version = version
        self._wall_time = wall_time
        # openmetrics? -> (the sample and node it was rendered for, its lines). A new sample
        # is a new object (they are frozen), so identity says when to render again.
        self._by_sample: dict[bool, tuple[SystemSample, str, bytes]] = {}

    def exposition(self, openmetrics: bool) -> bytes:
        """The families in the Prometheus text format, or OpenMetrics (ending ``# EOF``)."""
        node = node_label(self.monitor)
        sample = self.monitor.current_sample()
        cached = self._by_sample.get(openmetrics)
        if cached is not None and cached[0] is sample and cached[1] == node:
            sample_lines = cached[2]
        else:
            families = chain(sample_metrics(node, sample), throttle_metrics(node, sample))
            sample_lines = _render(openmetrics, families, last=False)
            self._by_sample[openmetrics] = (sample, node, sample_lines)  # one assignment: atomic
        stats = self.monitor.self_stats()
        live = live_metrics(node, self.version, sample, stats, self._wall_time())
        return sample_lines + _render(openmetrics, live, last=True)


class _Families(Collector):
    """Families already built, as the collector prometheus_client's renderers read."""

    def __init__(self, families: Iterator[Any]) -> None:
        self._families = families

    def collect(self) -> Iterator[Any]:
        return self._families


def _render(openmetrics: bool, families: Iterator[Any], *, last: bool) -> bytes:
    """``families`` rendered; in OpenMetrics, the ``# EOF`` only when they come ``last``."""
    if not openmetrics:
        return generate_latest(_Families(families))
    text: bytes = generate_openmetrics(_Families(families))  # type: ignore[no-untyped-call]
    return text if last else strip_eof(text)


def metrics_app(families: ProcessExposition) -> WsgiApp:
    """A WSGI app serving ``families`` on every path: OpenMetrics when the ``Accept`` header
    asks for it, gzip when ``Accept-Encoding`` accepts it."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        gzip = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
        body, content_type = negotiate(families, environ.get("HTTP_ACCEPT"), gzip=gzip)
        headers = [("Content-Type", content_type), ("Vary", "Accept-Encoding")]
        if gzip:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]

    return app


def token_digest(token: str) -> bytes:
    """The SHA-256 digest a scraper's token is checked against. ``token`` is the token
    itself, or its digest written ``sha256:<64 hex digits>`` (as in ``api_tokens``), so the
    token file on a node need not hold the secret.

    Raises:
        ValueError: ``sha256:`` followed by anything but 64 hexadecimal digits (a typo, which
            taken literally would lock every scraper out).
    """
    kind, _, hexdigest = token.partition(":")
    if kind.strip().lower() != "sha256" or not hexdigest:
        return hashlib.sha256(token.encode("utf-8")).digest()
    if not _HEX_DIGEST.fullmatch(hexdigest.strip()):
        raise ValueError("token: a sha256 token digest must be 64 hexadecimal digits")
    return bytes.fromhex(hexdigest.strip())


_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def require_bearer(app: WsgiApp, token: str | None) -> WsgiApp:
    """``app`` behind ``Authorization: Bearer <token>`` (its digest compared in constant
    time with :func:`token_digest`'s); 401 without it. ``token`` None lets every request
    through (loopback only, see :func:`serve_process_metrics`)."""
    if token is None:
        return app
    expected = token_digest(token)

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        scheme, _, given = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
        presented = hashlib.sha256(given.strip().encode("utf-8")).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
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
        token: the bearer token scrapers must send (genperf's read token), or its digest
            ``sha256:<hex>``; required unless ``host`` is a loopback address.

    Raises:
        ValueError: ``token`` is missing (or blank) for a non-loopback ``host``, a malformed
            ``sha256:`` digest, or ``port`` is out of range.
        OSError: the address cannot be bound.
    """
    if token is not None and not token.strip():
        raise ValueError("token: must not be blank (None serves loopback without one)")
    if token is None and not _is_loopback(host):
        raise ValueError(f"token: required to serve metrics on {host!r} (not a loopback address)")
    if not 0 <= port <= 65535:
        raise ValueError(f"port: must be 0..65535, got {port}")
    app = require_bearer(metrics_app(ProcessExposition(monitor)), token)
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


__all__ = [
    "MetricsListener",
    "ProcessExposition",
    "metrics_app",
    "require_bearer",
    "serve_process_metrics",
    "token_digest",
]
