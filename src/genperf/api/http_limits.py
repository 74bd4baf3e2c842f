"""The HTTP server's own bounds, so stalled or flooding clients cannot exhaust it.

uvicorn's h11 server has a keep-alive timeout and a concurrency limit, but no limit on how
long a request may take to arrive, and it accepts every connection: 1,100 clients that send
half a request and stop held 1,100 file descriptors for ever, and with 1,024 allowed every
other request failed ("Too many open files"). :class:`GuardedH11Protocol` adds:

* a read limit: a request's headers and body must arrive within ``request_read_seconds``
  of its first byte (or of the connection): otherwise a 408, in the API's error shape when
  nothing of the request was understood yet, and the connection is closed;
* a connection limit: past ``max_connections`` open connections a new one is closed at
  once (and ``limit_concurrency`` answers 503 to requests near it);
* parser errors answered in the API's error shape (JSON ``{"error": ...}``), not plain text.

:func:`uvicorn_config` puts these together with the keep-alive timeout; :func:`serve` also
raises the soft open-files limit to the hard one and summarises repeated log lines
(:mod:`genperf.logs`). Behind a reverse proxy (nginx, Caddy) these still hold; the proxy's
own timeouts then protect it first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol

from genperf.api.date_header import DateHeader
from genperf.config import ApiLimits
from genperf.logs import Throttle, summarise_repeats

logger = logging.getLogger("genperf.api")

_refusals = Throttle()


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request read limit, a connection limit, and parser
    errors in the API's error shape. Configured by :func:`uvicorn_config`."""

    read_seconds: float = 10.0
    max_connections: int = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            held = _refusals.ready()
            if held is not None:
                logger.warning(
                    "refusing connections: %d open, the most allowed (api_limits."
                    "max_connections); %d more refused since the last such line",
                    len(self.connections) - 1,
                    held,
                )
            transport.abort()
            return
        self._watch_read()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_read()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_read_timer()
        super().connection_lost(exc)

    def _reading(self) -> bool:
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def _watch_read(self) -> None:
        """Start the read limit when a request begins; stop it once it has all arrived."""
        if self.transport.is_closing():
            return
        if not self._reading():
            self._stop_read_timer()
        elif self._read_timer is None:
            self._read_timer = self.loop.call_later(self.read_seconds, self._read_timed_out)

    def _stop_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing() or not self._reading():
            return
        if self.conn.their_state is h11.IDLE:
            # Nothing of the request was understood: answer in raw bytes (h11 cannot send a
            # response to a request it has not read).
            body = _error_body(
                "request_timeout",
                f"the request did not arrive within {self.read_seconds:g} s",
            )
            head = (
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
        # A body that stalls: the route waiting for it sees the client disconnect.
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers to bytes that are not HTTP, in the API's error shape."""
        body = _error_body("bad_request", f"{msg.rstrip('.')}: the request is not valid HTTP/1.1")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers)))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:  # a response had begun already: just close
            pass
        self.transport.close()


def uvicorn_config(app: Any, *, host: str, port: int, log_level: str, limits: ApiLimits) -> Config:
    """uvicorn's configuration for ``genperf serve``, bounded by ``limits``."""
    protocol = type(
        "GenperfH11Protocol",
        (GuardedH11Protocol,),
        {"read_seconds": limits.request_read_seconds, "max_connections": limits.max_connections},
    )
    return Config(
        DateHeader(app),
        date_header=False,  # set per response: the server's loop need not wake to refresh it
        host=host,
        port=port,
        log_level=log_level,
        http=protocol,
        server_header=False,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_seconds,
        # Trust X-Forwarded-For from a proxy on this host only, so behind a local proxy
        # the real (remote) client is what the loopback rule sees.
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
        timeout_graceful_shutdown=1,  # Ctrl-C stops within a second, open requests or not
    )


def raise_open_files_limit() -> int:
    """Raise the soft limit on open files to the hard one (a default of 1,024 is a few
    hundred clients); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
        except (ValueError, OSError):
            logger.debug("could not raise the open files limit", exc_info=True)
    return soft


def summarise_server_logs() -> None:
    """Repeated lines of uvicorn's error log and of genperf's and asyncio's (through the root
    logger) are summarised, one a window with a count; the access log is left whole."""
    summarise_repeats(logging.getLogger("uvicorn"))
    root = logging.getLogger()
    if not root.handlers:  # else the application configured logging: its handlers get it
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s:  %(name)s: %(message)s"))
        root.addHandler(handler)
    summarise_repeats(root)
