"""The analysis report as the routes serve it: built by ``genperf.analysis.build_report``
from the store, cached briefly per (window, filters), as a JSON-ready dict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from genperf.analysis import build_report
from genperf.api.deps import AppContext
from genperf.api.reports import normalise_window
from genperf.storage.base import Store


def report_dict(
    context: AppContext,
    store: Store,
    time_window_hours: float,
    *,
    model_type: str | None = None,
    success_only: bool = False,
    now: datetime | None = None,
    cached: bool = True,
) -> dict[str, Any]:
    """``build_report(...).to_dict()``; from the cache unless ``now`` is given or ``cached``
    is False (an export reports the exact window it exports). A cached report's window is
    normalised (:func:`normalise_window`: whole minutes, whole hours from one hour up), so
    a client varying the window cannot make every request a new build."""
    if now is None and cached and context.reports.ttl > 0:
        time_window_hours = normalise_window(time_window_hours)

    def build() -> dict[str, Any]:
        report = build_report(
            store,
            context.settings,
            time_window_hours=time_window_hours,
            model_type=model_type,
            success_only=success_only,
            now=now,
        )
        return report.to_dict()

    if now is not None or not cached:
        return build()
    value: dict[str, Any] = context.reports.get(
        ("report", time_window_hours, model_type, success_only), build
    )
    return value
