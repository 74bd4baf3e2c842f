"""The application factory: ``create_app()`` builds the FastAPI app around a monitor.

::

    app = create_app()                                  # settings from file + environment
    app = create_app(settings, monitor=m, store=s)      # tests: their own monitor and store
    app = create_app(extra_routers=[generation_router]) # more resources under the same guards

The lifespan starts the monitor (sampler and store writer) and, on shutdown, stops it and
flushes what it holds; a monitor passed in is flushed but left to its owner to close.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from genperf import __version__
from genperf.api import errors
from genperf.api.auth import TokenTable
from genperf.api.deps import AppContext, KnownQueryOnly
from genperf.api.docs import install_docs
from genperf.api.guards import HostOriginGuard
from genperf.api.head import HeadAsGet
from genperf.api.limits import BodySizeLimit
from genperf.api.open_tasks import OpenTaskLedger
from genperf.api.reports import ReportCache
from genperf.api.routers import (
    analysis,
    benchmarks,
    doctor,
    export,
    health,
    metrics,
    nodes,
    predict,
    prometheus,
    recommendations,
    status,
    tasks,
    whoami,
)
from genperf.api.settings import ApiSettings
from genperf.config import Settings, load_settings
from genperf.errors import GenperfError
from genperf.exporters.process_metrics import ProcessExposition
from genperf.exporters.prometheus_tasks import StoreTaskFamilies
from genperf.monitor import PerformanceMonitor
from genperf.storage.base import Store

logger = logging.getLogger("genperf.api")

API_PREFIX = "/api/v1/performance"
_PERFORMANCE_ROUTERS = (
    status.router,
    analysis.router,
    metrics.router,
    recommendations.router,
    benchmarks.router,
    export.router,
    tasks.router,
    doctor.router,
    predict.router,
    nodes.router,
)


def create_app(
    settings: Settings | None = None,
    *,
    monitor: PerformanceMonitor | None = None,
    store: Store | None = None,
    api_settings: ApiSettings | None = None,
    extra_routers: Iterable[APIRouter] = (),
    environ: Mapping[str, str] | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: genperf's settings; default: the monitor's, else :func:`load_settings`.
        monitor: the monitor to serve; default: a new one on ``store`` (or the settings'
            database), owned, started and closed by the app's lifespan.
        store: where reads come from; default: the monitor's store.
        api_settings: tokens, hosts, CORS, limits; default: from settings and environment.
        extra_routers: more routers (e.g. the generation service's), mounted as they are,
            behind the same Host, Origin and body-size guards and the same error shape.
        environ: the environment to read ``GENPERF_*`` from (default: ``os.environ``).

    Raises:
        ConfigError: a setting or an API token entry is invalid.
    """
    env = os.environ if environ is None else environ
    if settings is None:
        settings = monitor.settings if monitor is not None else load_settings(environ=env)
    api = api_settings if api_settings is not None else ApiSettings.load(settings, env)
    tokens = TokenTable.parse(api.api_tokens)
    owns_monitor = monitor is None
    if monitor is None:
        monitor = PerformanceMonitor(settings, store=store)  # store None: the settings' database
    # /metrics: this process's own gauges, read at scrape time, and the task families of the
    # database every process writes to (only this API process exports those: no double count).
    process_families = ProcessExposition(monitor, version=__version__)
    store_tasks = StoreTaskFamilies(
        (lambda: store) if store is not None else (lambda: monitor.store), settings
    )
    monitor.add_task_listener(store_tasks.changed)  # this process's tasks show at once
    bounds = settings.api_limits
    open_tasks = OpenTaskLedger(
        max_total=bounds.max_open_tasks,
        max_per_client=bounds.max_open_tasks_per_client,
        idle_seconds=bounds.open_task_idle_seconds,
    )
    monitor.add_task_listener(open_tasks.finished)  # a finished task frees its place
    reports: ReportCache[Any] = ReportCache(api.report_cache_seconds)
    # A finished task changes the analysis: cached reports must not disagree with /metrics.
    monitor.add_task_listener(lambda _record: reports.invalidate())
    context = AppContext(
        settings=settings,
        api=api.model_copy(update={"api_tokens": ()}),  # from here on, only digests
        monitor=monitor,
        store=store,
        tokens=tokens,
        store_tasks=store_tasks,
        reports=reports,
        process_families=process_families,
        owns_monitor=owns_monitor,
        open_tasks=open_tasks,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context.monitor.start()
        logger.info(
            "genperf API ready: %s, %s",
            "token auth" if tokens else "no tokens (loopback clients only)",
            context.settings.safe_dict()["database_url"],
        )
        sweeper = asyncio.create_task(expire_abandoned_tasks(context))
        try:
            yield
        finally:
            sweeper.cancel()
            context.store_tasks.close()
            if context.owns_monitor:
                context.monitor.close()  # closes the store only if it opened it
            else:
                context.monitor.flush()

    app = FastAPI(
        title="genperf",
        version=__version__,
        summary="Performance monitor for AI generation services.",
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, from local assets (not a CDN)
        redoc_url=None,  # ReDoc exists only on a CDN
    )
    install_docs(app, "genperf")
    app.state.genperf = context
    errors.install(app)
    strict = [KnownQueryOnly]
    for router in _PERFORMANCE_ROUTERS:
        app.include_router(
            router, prefix=API_PREFIX, responses=errors.ERROR_RESPONSES, dependencies=strict
        )
    app.include_router(prometheus.router, responses=errors.ERROR_RESPONSES, dependencies=strict)
    app.include_router(health.router, dependencies=strict)
    app.include_router(whoami.router, responses=errors.ERROR_RESPONSES, dependencies=strict)
    from genperf.web import web_router  # the dashboard page at / (its URL carries filters)

    app.include_router(web_router())
    for router in extra_routers:
        app.include_router(router, responses=errors.ERROR_RESPONSES)
    # Middleware: the last added runs first. Guards run before anything reads the body.
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(api.cors_origins),
            allow_methods=["GET", "POST", "PATCH"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=api.max_body_bytes)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        HostOriginGuard, allowed_hosts=api.allowed_hosts, cors_origins=api.cors_origins
    )
    return app


async def expire_abandoned_tasks(context: AppContext) -> None:
    """Close running tasks whose client has gone quiet for ``open_task_idle_seconds``."""
    ledger = context.open_tasks
    while True:
        await asyncio.sleep(ledger.sweep_every_seconds())
        for task_id in ledger.idle():
            reason = (
                f"abandoned: no update from its client for {ledger.idle_seconds:g} s "
                "(api_limits.open_task_idle_seconds)"
            )
            try:
                await asyncio.to_thread(context.monitor.interrupt_task, task_id, reason)
            except GenperfError:  # completed meanwhile, or not the monitor's any more
                ledger.release(task_id)
            except Exception:
                logger.exception("could not close abandoned task %s", task_id)
                ledger.release(task_id)
            else:
                ledger.expired += 1


_DESCRIPTION = """
genperf measures every generation of an AI generation service (time, phases, true peak VRAM
and RAM, optimisations, failures) and tells what limits it and what to change.

**Access.** With API tokens configured (`GENPERF_API_TOKENS='read:<t>,write:<t>,admin:<t>'`),
send `Authorization: Bearer <token>`: `read` for GET endpoints and `/metrics`, `write` for task
ingestion, `admin` for exports (admin implies write implies read). Without tokens the server
answers loopback clients only.

**Errors** are always `{"error": {"code", "message", "field"}}`.
"""
