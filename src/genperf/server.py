"""The wiring: ``genperf serve`` builds the monitor, the store, the generation service and
the API, and runs them with uvicorn in one process. Nothing below this module builds them.

It refuses an open address without tokens:

Without API tokens anyone who can reach the port could read and write, so the server then
listens on loopback only; asking for another address is an error that says how to set
tokens. Behind a reverse proxy on the same host, configure tokens too: the proxy's requests
come from loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ipaddress
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from fastapi import APIRouter, FastAPI

from genperf.api.app import create_app
from genperf.api.auth import TokenTable, is_loopback
from genperf.api.http_limits import raise_open_files_limit, summarise_server_logs, uvicorn_config
from genperf.api.settings import TOKENS_ENV, ApiSettings
from genperf.config import Settings
from genperf.errors import ConfigError

if TYPE_CHECKING:
    from genperf.generation.service import GenerationService
    from genperf.monitor import PerformanceMonitor

logger = logging.getLogger("genperf.server")


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


# How long Ctrl-C waits for a running generation before handing it back as interrupted.
STOP_GRACE_SECONDS = 0.5


class QuietServer(uvicorn.Server):
    """uvicorn's server, ticking every 5 seconds instead of ten times a second. Its tick
    refreshes uvicorn's Date header and looks whether to stop; genperf sets the Date header
    per response instead (:class:`genperf.api.date_header.DateHeader`, in
    :func:`genperf.api.http_limits.uvicorn_config`), and a stop signal wakes the loop at once,
    so Ctrl-C is no slower. Each wake-up of an idle process costs about 0.3 ms of CPU here,
    whatever it does: ten a second were most of an idle ``genperf serve``'s CPU (0.23 % of a
    core of 0.32 %), one a second still 0.04 %. Each tick waits on a bare future woken by a
    timer, not ``asyncio.wait_for`` (a task, a timeout and a cancellation)."""

    tick_seconds = 5.0
    _loop: asyncio.AbstractEventLoop | None = None
    _tick: asyncio.Future[None] | None = None

    async def main_loop(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # uvicorn's own work runs when counter % 10 == 0
            self._tick = tick = loop.create_future()
            if not self.should_exit:  # a signal before this tick existed woke the last one
                timer = loop.call_later(self.tick_seconds, _wake, tick)
                await tick
                timer.cancel()
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._tick is not None:
            self._loop.call_soon_threadsafe(_wake, self._tick)


def _wake(tick: asyncio.Future[None]) -> None:
    if not tick.done():
        tick.set_result(None)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    environ: Mapping[str, str] | None = None,
    log_level: str = "info",
    extra_routers: Iterable[APIRouter] = (),
    demo: bool = False,
    run_worker: bool = True,
) -> bool:
    """Run the API, the sampler and the reference generation service until interrupted.

    Returns True when everything stopped; False when a running generation was handed back as
    interrupted (Ctrl-C does not wait for it) and its thread still runs: the caller should
    then end the process at once (``os._exit``) rather than by a normal interpreter exit.

    The generation service (its worker and ``/api/v1/generation`` routes) needs the
    ``diffusers`` extra; without it the API runs alone. With ``demo`` a short batch of real
    tiny-wan generations, one of which really runs out of memory, is queued at start. Without
    ``run_worker`` this process queues generations and reaps dead workers' leases, and the
    fleet's agents (``genperf agent --worker``) run them.

    Raises:
        ConfigError: bad settings or tokens, a non-loopback host without tokens, or
            ``demo`` without the diffusers extra.
    """
    from genperf.monitor import PerformanceMonitor

    # Refuse a bad address or token list before anything opens the database.
    api = ApiSettings.load(settings, environ)
    check_bind(host, api)
    TokenTable.parse(api.api_tokens)  # a malformed entry stops here, before the database
    monitor = PerformanceMonitor(settings)
    service = _generation_service(monitor, required=demo, run_worker=run_worker)
    routers = list(extra_routers)
    if service is not None:
        from genperf.api.routers.generation import make_router

        routers.append(make_router(service))
    try:
        app = _build_app(settings, api, environ, routers, monitor)
        del api  # from here on only the app's token digests remain
        monitor.start()
        if service is not None:
            service.start()
            if demo:
                from genperf.generation.demo import queue_demo_batch

                ids = queue_demo_batch(service)
                logger.warning(
                    "demo: %d generations queued (%s ...); watch http://%s:%d/ or run "
                    "`genperf analysis` in a minute",
                    len(ids),
                    ids[0],
                    host,
                    port,
                )
        raise_open_files_limit()
        config = uvicorn_config(
            app, host=host, port=port, log_level=log_level, limits=settings.api_limits
        )
        summarise_server_logs()  # after uvicorn configured its loggers
        # uvicorn re-raises the Ctrl+C it handled: for us that is a clean stop.
        with contextlib.suppress(KeyboardInterrupt):
            QuietServer(config).run()
    finally:
        stopped = service is None or service.close(grace_seconds=STOP_GRACE_SECONDS)
        monitor.close()
    return stopped


def _generation_service(
    monitor: PerformanceMonitor, *, required: bool, run_worker: bool = True
) -> GenerationService | None:
    """The reference generation service, or None (logged) when diffusers is not installed."""
    if importlib.util.find_spec("diffusers") is None or importlib.util.find_spec("torch") is None:
        if required:
            raise ConfigError(
                "the demo runs real diffusion pipelines: install torch, then genperf[diffusers]"
            )
        logger.info("generation service off: install genperf[diffusers] to run generations")
        return None
    from genperf.generation.service import GenerationService

    return GenerationService(monitor, run_worker=run_worker)


def _build_app(
    settings: Settings,
    api: ApiSettings,
    environ: Mapping[str, str] | None,
    extra_routers: Iterable[APIRouter],
    monitor: PerformanceMonitor | None = None,
) -> FastAPI:
    """The app; it keeps only the tokens' digests. ``GENPERF_API_TOKENS`` leaves this process's
    environment here (so no child process, such as a generation worker, inherits it)."""
    # create_app parses the tokens: a bad entry stops start-up before the port opens.
    app = create_app(
        settings, monitor=monitor, api_settings=api, environ=environ, extra_routers=extra_routers
    )
    if environ is None:
        os.environ.pop(TOKENS_ENV, None)
    return app
