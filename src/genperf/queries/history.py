"""History-based answers shared by the API and the CLI: each optimisation's measured impact,
and the forecast of each resolution class's p95 and the fleet's capacity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from genperf.analysis.forecast import Crossing, capacity, forecast_p95
from genperf.analysis.impact import optimization_impact
from genperf.config import Settings
from genperf.records import to_jsonable, utc_now
from genperf.storage.base import Store, TaskQuery

MAX_IMPACT_TASKS = 50_000  # the newest tasks of the window the impact is measured on


def impact_payload(
    store: Store, hours: float, model_type: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """The impact of each optimisation over the last ``hours`` (the API's and CLI's payload)."""
    since = (now or utc_now()) - timedelta(hours=hours)
    records = list(
        store.iter_tasks(
            TaskQuery(
                since=since,
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
    payload: dict[str, Any] = to_jsonable(
        {
            "time_window_hours": hours,
            "model_type": model_type,
            "tasks": len(records),
            "optimizations": rows,
        }
    )
    return payload


def forecast_payload(
    store: Store, settings: Settings, hours: float, now: datetime | None = None
) -> dict[str, Any]:
    """The forecast over the last ``hours`` (the API's and CLI's payload). The queue is the
    tasks of the window still running (each node's generation and those waiting for it)."""
    now = now or utc_now()
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
    payload: dict[str, Any] = {
        "time_window_hours": hours,
        "classes": rows,
        "capacity": to_jsonable(capacity(records, running)),
    }
    return payload


def _crossing(crossing: Crossing | None) -> dict[str, Any] | None:
    if crossing is None:
        return None
    data: dict[str, Any] = to_jsonable(crossing)
    return {**data, "text": crossing.text}
