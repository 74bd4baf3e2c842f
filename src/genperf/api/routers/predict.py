"""Prediction and what history says about optimisations and configuration changes.

Every route answers through the query layer (:class:`genperf.queries.Queries`), as the CLI's
``predict``, ``impact``, ``forecast`` and ``changes`` do on a local database.

- ``POST /api/v1/performance/predict``: a generation's time and peak memory before it runs,
  learnt from the store's history of that model type (and node); see
  :mod:`genperf.prediction`. A question the history cannot answer is still a 200, with
  ``answerable: false``, the reasons and the runs that would make it answerable: never a
  made-up number.
- ``GET /api/v1/performance/forecast``: when each resolution class's p95 crosses its target
  and acceptable lines at the current trend, the fleet's capacity in tasks per hour at the
  current mix and how long the queue takes (see :mod:`genperf.analysis.forecast`).
- ``GET /api/v1/performance/impact``: each optimisation's measured impact (median time and
  peak with against without it, same model type x resolution class), see
  :mod:`genperf.analysis.impact`.
- ``GET /api/v1/performance/config-changes``: each recorded configuration change (``genperf
  tune`` writes them) with the window before it against the window after, per model type x
  resolution class: tasks, success rate, median and p95 time, median peaks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genperf.api.auth import RequireRead
from genperf.api.deps import ModelTypeFilter, QueriesDep, TimeWindowHours
from genperf.generation.request import MAX_FRAMES, MAX_STEPS, RESOLUTION_ALIASES
from genperf.queries.history import MAX_CHANGES
from genperf.queries.models import (
    ConfigChangesOut,
    ForecastOut,
    ImpactListOut,
    PredictionOut,
)
from genperf.records import to_jsonable

router = APIRouter(tags=["prediction"], dependencies=[RequireRead])

MAX_TOKENS = 16
MAX_COMPARE_HOURS = 24.0 * 30  # each side of a configuration change


class PredictIn(BaseModel):
    """The generation to predict."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_type: str = Field(min_length=1, max_length=100)
    resolution: str = Field(
        max_length=32,
        pattern=r"^([1-9][0-9]{0,4}x[1-9][0-9]{0,4}|480p|720p)$",
        description="WIDTHxHEIGHT (1280x720), or 480p / 720p.",
    )
    frames: int = Field(ge=1, le=MAX_FRAMES)
    steps: int = Field(ge=1, le=MAX_STEPS)
    optimizations: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None,
        max_length=MAX_TOKENS,
        description="Optimisation tokens (vae_tiling, offload:model ...); default: the set "
        "most runs of this model used.",
    )
    node: str | None = Field(None, min_length=1, max_length=255)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        # The pattern has checked the form; genperf.prediction (numpy, scipy) loads on use.
        width, height = RESOLUTION_ALIASES.get(value) or map(int, value.split("x"))
        return f"{width}x{height}"


def prediction_out(prediction: Any) -> PredictionOut:
    """A :class:`genperf.prediction.Prediction` as served."""
    return PredictionOut.model_validate(to_jsonable(prediction))


@router.post(
    "/predict",
    response_model=PredictionOut,
    summary="Predict a generation's time and peak memory from history",
)
def predict(queries: QueriesDep, body: PredictIn) -> PredictionOut:
    return queries.predict(
        body.model_type,
        body.resolution,
        body.frames,
        body.steps,
        optimizations=body.optimizations,
        node=body.node,
    )


@router.get(
    "/impact",
    response_model=ImpactListOut,
    summary="Each optimisation's impact on time and peak memory, from history",
)
def impact(
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 168.0,
    model_type: ModelTypeFilter = None,
) -> ImpactListOut:
    """Median generation time and peak memory with against without each optimisation token,
    on the same model type x resolution class, with task counts and a confidence."""
    return queries.impact(time_window_hours, model_type=model_type)


@router.get(
    "/forecast",
    response_model=ForecastOut,
    summary="When each class's p95 crosses its lines; capacity and queue time",
)
def forecast(queries: QueriesDep, time_window_hours: TimeWindowHours = 168.0) -> ForecastOut:
    return queries.forecast(time_window_hours)


@router.get(
    "/config-changes",
    response_model=ConfigChangesOut,
    summary="Each configuration change: the window before against the window after",
)
def config_changes(
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 720.0,
    compare_hours: Annotated[
        float,
        Query(
            gt=0,
            le=MAX_COMPARE_HOURS,
            allow_inf_nan=False,
            description="How long each side of a change spans (hours).",
        ),
    ] = 24.0,
    limit: Annotated[int, Query(ge=1, le=MAX_CHANGES)] = 20,
) -> ConfigChangesOut:
    """The changes made in the window, newest first, each with its writer's measured
    figures and, per model type x resolution class, the ``compare_hours`` before it against
    the ``compare_hours`` after: finished tasks, success rate, median and p95 time of the
    completed ones, median peak VRAM and RAM, and the change in median time and peak."""
    return queries.config_changes(time_window_hours, compare_hours=compare_hours, limit=limit)
