"""Browser-facing guards, as plain ASGI middleware: the Host header and the Origin header.

* Host: only ``localhost``, ``127.0.0.1``, ``::1`` and the configured ``allowed_hosts`` are
  answered (400 otherwise), so a page that rebinds its own DNS name to 127.0.0.1 cannot read
  the API: its requests carry its own name. ``*`` in allowed_hosts turns the check off;
  ``*.example.com`` allows subdomains.
* Origin: a request that carries an Origin (browsers add it to cross-origin requests) is
  refused (403) unless the origin is one of ``cors_origins`` or the server's own, so no web
  page can make the browser write to the API (CSRF) or start an expensive export.

Liveness and readiness probes are exempt: they reveal nothing, and orchestrators send the
pod's address as Host.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from genperf.api.errors import error_response

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})


def host_name(host_header: str) -> str:
    """The host of a Host header: ``Example.COM:80`` -> ``example.com``; ``[::1]:80`` -> ``::1``."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class HostOriginGuard:
    """Refuses requests with a Host the server does not answer to, or a foreign Origin."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: Iterable[str] = (), cors_origins: Iterable[str] = ()
    ) -> None:
        self.app = app
        hosts = {h.strip().lower().rstrip(".") for h in (*LOOPBACK_HOSTS, *allowed_hosts)}
        self.any_host = "*" in hosts
        self.hosts = frozenset(h for h in hosts if not h.startswith("*"))
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in cors_origins)

    def host_allowed(self, host: str) -> bool:
        return self.any_host or host in self.hosts or host.endswith(self.suffixes or ("\0",))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host_header = headers.get("host", "")
        if not self.host_allowed(host_name(host_header)):
            response = error_response(
                400,
                "invalid_host",
                "this server does not answer to that Host; add it to allowed_hosts "
                "(GENPERF_ALLOWED_HOSTS) if it is yours",
                "host",
            )
            await response(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin, host_header):
            response = error_response(
                403,
                "cross_origin",
                "cross-origin requests are refused; add the origin to cors_origins "
                "(GENPERF_CORS_ORIGINS) to allow it",
                "origin",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def origin_allowed(self, origin: str, host_header: str) -> bool:
        normalised = origin.strip().rstrip("/").lower()
        if normalised in self.origins or "*" in self.origins:
            return True
        try:
            netloc = urlsplit(normalised).netloc
        except ValueError:
            return False
        return bool(netloc) and netloc == host_header.strip().lower()
