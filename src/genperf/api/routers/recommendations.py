"""GET /api/v1/performance/recommendations: what to change, grouped by category."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import Context, StoreDep, TimeWindowHours
from genperf.api.report_view import report_dict
from genperf.api.schemas import RecommendationsOut

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get(
    "/recommendations",
    response_model=RecommendationsOut,
    summary="Categorized optimization recommendations",
)
def recommendations(
    context: Context, store: StoreDep, time_window_hours: TimeWindowHours = 24.0
) -> RecommendationsOut:
    """The analysis' recommendations, most important first, and the same grouped by
    category (hardware, configuration, workflow, targets)."""
    report = report_dict(context, store, time_window_hours)
    items = list(report.get("optimization_recommendations") or [])
    by_category: dict[str, list[dict[str, object]]] = {}
    for item in items:
        by_category.setdefault(str(item.get("category", "other")), []).append(item)
    return RecommendationsOut.model_validate(
        {
            "time_window_hours": report.get("time_window_hours", time_window_hours),
            "total": len(items),
            "recommendations": items,
            "by_category": by_category,
        }
    )
