"""What the routes depend on: the app's context (monitor, store, settings) and query types.

Routes take these as ``Annotated`` parameters; tests swap the context by passing their own
monitor and store to :func:`genperf.api.create_app`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import StringConstraints

from genperf.api.errors import ApiError
from genperf.api.settings import MAX_WINDOW_HOURS, ApiSettings
from genperf.config import Settings
from genperf.errors import StoreUnavailableError
from genperf.monitor import PerformanceMonitor
from genperf.queries import Filters, Queries
from genperf.storage.base import Store

if TYPE_CHECKING:
    from genperf.api.auth import TokenTable
    from genperf.api.open_tasks import OpenTaskLedger
    from genperf.api.reports import ReportCache
    from genperf.exporters.process_metrics import ProcessExposition
    from genperf.exporters.prometheus_tasks import StoreTaskFamilies


@dataclass(frozen=True, slots=True)
class AppContext:
    """Everything the routes share, kept on ``app.state.genperf``."""

    settings: Settings
    api: ApiSettings
    monitor: PerformanceMonitor
    store: Store | None  # None: read through monitor.store (opened lazily by its writer)
    tokens: TokenTable
    store_tasks: StoreTaskFamilies  # /metrics' task families, from the database
    reports: ReportCache[Any]
    process_families: ProcessExposition  # /metrics' own gauges, read from the monitor
    owns_monitor: bool
    open_tasks: OpenTaskLedger  # running tasks opened over HTTP: bounded, expired when idle

    def read_store(self) -> Store:
        """The store to read from.

        Raises:
            StoreUnavailableError: the database cannot be opened right now (503).
        """
        store = self.store if self.store is not None else self.monitor.store
        if store is None:
            raise StoreUnavailableError("the database cannot be opened")
        return store


# Dependencies that only read memory are ``async def``: FastAPI runs a plain ``def``
# dependency in its thread pool, a hop that costs more than the work itself.


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.genperf
    return context


async def get_context(request: Request) -> AppContext:
    return context_of(request)


async def get_monitor(request: Request) -> PerformanceMonitor:
    return context_of(request).monitor


def get_store(request: Request) -> Store:
    """Blocking: the first call may open the database. Runs in the thread pool."""
    return context_of(request).read_store()


async def get_settings(request: Request) -> Settings:
    return context_of(request).settings


async def get_queries(request: Request) -> Queries:
    """The query layer over the app's store, report cache and the monitor's fits of the
    history (the store opens on first read, in the route's own thread)."""
    context = context_of(request)
    return Queries(
        context.settings,
        context.read_store,
        cache=context.reports,
        predictor=context.monitor.predictor,
    )


Context = Annotated[AppContext, Depends(get_context)]
MonitorDep = Annotated[PerformanceMonitor, Depends(get_monitor)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
QueriesDep = Annotated[Queries, Depends(get_queries)]

TimeWindowHours = Annotated[
    float,
    Query(
        gt=0,
        le=MAX_WINDOW_HOURS,
        allow_inf_nan=False,
        description=f"Hours back from now (0 < hours <= {MAX_WINDOW_HOURS:g}).",
    ),
]
ModelTypeFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="Only tasks of this model type."),
]
SuccessOnly = Annotated[bool, Query(description="Only tasks that completed successfully.")]
MAX_NODES_FILTER = 256  # node names one request may name (a fleet is tens of nodes)
NodeName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
]
NodeFilter = Annotated[
    list[NodeName],
    Query(
        max_length=MAX_NODES_FILTER,
        description="Only tasks (and samples) of this node; repeat for several nodes.",
    ),
]


async def task_filters(
    model_type: ModelTypeFilter = None,
    success_only: SuccessOnly = False,
    node: NodeFilter = [],  # noqa: B006 (FastAPI copies defaults)
) -> Filters:
    """A read's filters, from its query parameters: a new filter is a field of
    :class:`~genperf.queries.Filters` and a parameter here, for every route that filters."""
    return Filters(model_type, success_only, node)


FiltersDep = Annotated[Filters, Depends(task_filters)]


async def reject_unknown_query(request: Request) -> None:
    """Refuse query parameters the route does not declare, and a single-valued one given more
    than once (422 naming the first), so a typo such as ``time_window_hour=48`` is an error,
    not a silently ignored filter, and ``model_type=a&model_type=b`` is not read as ``b``."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _known_query.get(id(dependant))
    if known is None:
        known = _known_query[id(dependant)] = _query_names(dependant)
    seen: set[str] = set()
    for name, _value in request.query_params.multi_items():
        repeatable = known.get(name)
        if repeatable is None:
            raise ApiError(
                422, "invalid_request", f"{name}: unknown query parameter", field=name or "query"
            )
        if name in seen and not repeatable:
            raise ApiError(422, "invalid_request", f"{name}: given more than once", field=name)
        seen.add(name)


# Per route (routes live as long as the app): its query names, each with whether it repeats.
_known_query: dict[int, dict[str, bool]] = {}


def _query_names(dependant: Dependant) -> dict[str, bool]:
    names = {
        param.alias: typing.get_origin(param.field_info.annotation) in (list, tuple, set)
        or _is_sequence(param.field_info.annotation)
        for param in dependant.query_params
    }
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _is_sequence(annotation: Any) -> bool:
    """``list[str] | None`` and the like: a parameter that may repeat."""
    return any(typing.get_origin(arg) in (list, tuple, set) for arg in typing.get_args(annotation))


KnownQueryOnly = Depends(reject_unknown_query)
