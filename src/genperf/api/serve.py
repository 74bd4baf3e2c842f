"""``genperf serve``: run the API with uvicorn, refusing an open address without tokens.

Without API tokens anyone who can reach the port could read and write, so the server then
listens on loopback only; asking for another address is an error that says how to set
tokens. Behind a reverse proxy on the same host, configure tokens too: the proxy's requests
come from loopback.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping

from fastapi import APIRouter, FastAPI

from genperf.api.app import create_app
from genperf.api.auth import is_loopback
from genperf.api.settings import TOKENS_ENV, ApiSettings
from genperf.config import Settings
from genperf.errors import ConfigError


def is_loopback_address(host: str) -> bool:
    """True when every address ``host`` names is a loopback one ("localhost", 127.0.0.1, ::1).
    The wildcards "0.0.0.0" and "::" and any name that resolves elsewhere are not."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            return False
        addresses = {str(info[4][0]) for info in infos}
        return bool(addresses) and all(is_loopback(a) for a in addresses)
    return is_loopback(host.strip("[]"))


def check_bind(host: str, api: ApiSettings) -> None:
    """Refuse a non-loopback address when no tokens are configured.

    Raises:
        ConfigError: saying how to configure tokens.
    """
    if api.api_tokens or is_loopback_address(host):
        return
    raise ConfigError(
        f"refusing to listen on {host} without API tokens: anyone who can reach it could "
        f"read and write the monitor. Set tokens, for example "
        f"{TOKENS_ENV}='read:<long random token>,write:<token>,admin:<token>', "
        "or listen on 127.0.0.1",
        key="api_tokens",
    )


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    environ: Mapping[str, str] | None = None,
    log_level: str = "info",
    extra_routers: Iterable[APIRouter] = (),
) -> None:
    """Run the API until interrupted (uvicorn; the app's lifespan runs the monitor).
    ``extra_routers`` (the dashboard, the generation service) are mounted as create_app does.

    Raises:
        ConfigError: bad settings or tokens, or a non-loopback host without tokens.
    """
    import uvicorn

    app = _build_app(settings, host, environ, extra_routers)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        server_header=False,
        # Trust X-Forwarded-For from a proxy on this host only, so behind a local proxy the
        # real (remote) client is what the loopback rule sees.
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
    )


def _build_app(
    settings: Settings,
    host: str,
    environ: Mapping[str, str] | None,
    extra_routers: Iterable[APIRouter],
) -> FastAPI:
    """The app, after the checks. Only token digests outlive this call: the settings that
    held the tokens go with its frame, and ``GENPERF_API_TOKENS`` leaves this process's
    environment (so no child process inherits it)."""
    api = ApiSettings.load(settings, environ)
    check_bind(host, api)
    # create_app parses the tokens: a bad entry stops start-up before the port opens.
    app = create_app(settings, api_settings=api, environ=environ, extra_routers=extra_routers)
    if environ is None:
        os.environ.pop(TOKENS_ENV, None)
    return app
