"""History-based answers shared by the API and the CLI (through :class:`Queries`): each
optimisation's measured impact, the forecast of each resolution class's p95 and the fleet's
capacity, and each recorded configuration change's window before against after."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from genperf.analysis.forecast import Crossing, capacity, forecast_p95
from genperf.analysis.impact import change_impact, optimization_impact
from genperf.config import Settings
from genperf.queries.models import (
    ChangeGroupOut,
    ConfigChangeOut,
    ConfigChangesOut,
    ForecastOut,
    ImpactListOut,
    WindowFiguresOut,
)
from genperf.records import to_jsonable
from genperf.storage.base import Store, TaskQuery
from genperf.storage.changes import ConfigurationChange

MAX_IMPACT_TASKS = 50_000  # the newest tasks of the window the impact is measured on
MAX_CHANGE_TASKS = 20_000  # the tasks read around one configuration change
MAX_CHANGES = 100  # the most changes one read lists


def impact(store: Store, hours: float, model_type: str | None, now: datetime) -> ImpactListOut:
    """The impact of each optimisation over the last ``hours``."""
    records = list(
        store.iter_tasks(
            TaskQuery(
                since=now - timedelta(hours=hours),
                model_type=model_type,
                success_only=True,
                newest_first=True,
                limit=MAX_IMPACT_TASKS,
            )
        )
    )
    rows = []
    for i in optimization_impact(records):
        c = i.comparison
        rows.append(
            {
                "token": i.token,
                "model_type": i.model_type,
                "resolution_class": i.resolution_class,
                "summary": i.summary,
                "count_without": c.count_a,
                "count_with": c.count_b,
                "time_without_seconds": c.time_a_seconds,
                "time_with_seconds": c.time_b_seconds,
                "time_change_percent": c.time_change_percent,
                "time_confidence": c.time_confidence,
                "peak_metric": c.peak_metric,
                "peak_without_mb": c.peak_a_mb,
                "peak_with_mb": c.peak_b_mb,
                "peak_change_percent": c.peak_change_percent,
                "peak_confidence": c.peak_confidence,
            }
        )
    payload = {
        "time_window_hours": hours,
        "model_type": model_type,
        "tasks": len(records),
        "optimizations": rows,
    }
    return ImpactListOut.model_validate(to_jsonable(payload))


def forecast(store: Store, settings: Settings, hours: float, now: datetime) -> ForecastOut:
    """The forecast over the last ``hours``. The queue is the tasks of the window still
    running (each node's generation and those waiting for it)."""
    since = now - timedelta(hours=hours)
    query = TaskQuery(since=since, newest_first=True, limit=MAX_IMPACT_TASKS)
    records = list(store.iter_tasks(query))
    running = sum(1 for r in records if not r.finished)
    thresholds = settings.performance_thresholds
    factor = settings.benchmark_targets.generation_time_acceptable_factor
    classes = forecast_p95(
        records, thresholds.generation_time_targets(), factor, since=since, now=now
    )
    rows = [
        {**to_jsonable(c), "target": _crossing(c.target), "acceptable": _crossing(c.acceptable)}
        for c in classes
    ]
    payload = {
        "time_window_hours": hours,
        "classes": rows,
        "capacity": to_jsonable(capacity(records, running)),
    }
    return ForecastOut.model_validate(payload)


def config_changes(
    store: Store, hours: float, compare_hours: float, now: datetime, limit: int = MAX_CHANGES
) -> ConfigChangesOut:
    """The configuration changes made in the last ``hours`` (newest first, at most
    ``limit``), each with the ``compare_hours`` before it against the ``compare_hours``
    after it, per model type x resolution class. A store that keeps no changes (in memory)
    lists none."""
    read = getattr(store, "configuration_changes", None)
    found: list[ConfigurationChange] = (
        read(since=now - timedelta(hours=hours), limit=min(limit, MAX_CHANGES))
        if callable(read)
        else []
    )
    window = timedelta(hours=compare_hours)
    changes = [_change(store, c, window) for c in found]
    return ConfigChangesOut(time_window_hours=hours, compare_hours=compare_hours, changes=changes)


def _change(store: Store, change: ConfigurationChange, window: timedelta) -> ConfigChangeOut:
    query = TaskQuery(
        since=change.changed_at - window,
        until=change.changed_at + window,
        model_type=change.model_type,
        newest_first=True,
        limit=MAX_CHANGE_TASKS,
    )
    narrow = getattr(store, "task_outcomes", None)  # a SQL store's narrow read
    records = narrow(query) if callable(narrow) else store.iter_tasks(query)
    groups = []
    for g in change_impact(records, change.changed_at, window):
        c = g.comparison
        groups.append(
            ChangeGroupOut(
                model_type=g.model_type,
                resolution_class=g.resolution_class,
                before=WindowFiguresOut.model_validate(g.before),
                after=WindowFiguresOut.model_validate(g.after),
                time_change_percent=c.time_change_percent,
                time_confidence=c.time_confidence,
                peak_metric=c.peak_metric,
                peak_change_percent=c.peak_change_percent,
                peak_confidence=c.peak_confidence,
            )
        )
    out: ConfigChangeOut = ConfigChangeOut.model_validate(
        {**to_jsonable(change), "model_type": change.model_type, "groups": groups}
    )
    return out


def _crossing(crossing: Crossing | None) -> dict[str, Any] | None:
    if crossing is None:
        return None
    data: dict[str, Any] = to_jsonable(crossing)
    return {**data, "text": crossing.text}
