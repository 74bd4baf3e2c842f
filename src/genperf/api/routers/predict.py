"""Prediction and what history says about optimisations.

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
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genperf.api.auth import RequireRead
from genperf.api.deps import Context, ModelTypeFilter, StoreDep, TimeWindowHours
from genperf.generation.request import MAX_FRAMES, MAX_STEPS, RESOLUTION_ALIASES
from genperf.queries.history import forecast_payload, impact_payload
from genperf.records import to_jsonable

router = APIRouter(tags=["prediction"], dependencies=[RequireRead])

MAX_TOKENS = 16


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


class EstimateOut(BaseModel):
    value: float
    low: float
    high: float


class SuggestedRunOut(BaseModel):
    resolution: str
    frames: int
    steps: int
    optimizations: list[str]


class PredictionOut(BaseModel):
    """A prediction with 90 % intervals, or why there is none (``answerable: false``)."""

    model_config = ConfigDict(protected_namespaces=())

    model_type: str
    node: str | None
    resolution: str
    frames: int
    steps: int
    optimizations: list[str]
    answerable: bool
    generation_time_seconds: EstimateOut | None = Field(
        None, description="Without the model load (see phases.model_load)."
    )
    phases: dict[str, EstimateOut]
    peak_ram_mb: EstimateOut | None = Field(None, description="The process's peak RSS.")
    peak_ram_growth_mb: EstimateOut | None = Field(
        None, description="What the generation adds to the process's RSS (model loaded)."
    )
    peak_vram_mb: EstimateOut | None = None
    interval_level: float
    tasks: int = Field(description="Completed runs the answer is learnt from.")
    configurations: int
    reasons: list[str]
    suggested_runs: list[SuggestedRunOut]


def prediction_out(prediction: Any) -> PredictionOut:
    return PredictionOut.model_validate(to_jsonable(prediction))


@router.post(
    "/predict",
    response_model=PredictionOut,
    summary="Predict a generation's time and peak memory from history",
)
def predict(context: Context, store: StoreDep, body: PredictIn) -> PredictionOut:
    prediction = context.monitor.predictor.predict(
        store,
        body.model_type,
        body.resolution,
        body.frames,
        body.steps,
        optimizations=body.optimizations,
        node=body.node,
    )
    return prediction_out(prediction)


class ImpactOut(BaseModel):
    """One optimisation token on one model type x resolution class: without (a) against
    with (b)."""

    model_config = ConfigDict(protected_namespaces=())

    token: str
    model_type: str
    resolution_class: str
    summary: str
    count_without: int
    count_with: int
    time_without_seconds: float | None
    time_with_seconds: float | None
    time_change_percent: float | None
    time_confidence: str
    peak_metric: str | None
    peak_without_mb: float | None
    peak_with_mb: float | None
    peak_change_percent: float | None
    peak_confidence: str


class ImpactListOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    time_window_hours: float
    model_type: str | None
    tasks: int
    optimizations: list[ImpactOut]


@router.get(
    "/impact",
    response_model=ImpactListOut,
    summary="Each optimisation's impact on time and peak memory, from history",
)
def impact(
    store: StoreDep,
    time_window_hours: TimeWindowHours = 168.0,
    model_type: ModelTypeFilter = None,
) -> ImpactListOut:
    """Median generation time and peak memory with against without each optimisation token,
    on the same model type x resolution class, with task counts and a confidence."""
    return ImpactListOut.model_validate(impact_payload(store, time_window_hours, model_type))


class CrossingOut(BaseModel):
    line_seconds: float
    already: bool
    at: datetime | None
    text: str


class ClassForecastOut(BaseModel):
    resolution_class: str
    tasks: int
    p95_now_seconds: float | None
    trend_seconds_per_day: float | None
    target: CrossingOut | None
    acceptable: CrossingOut | None
    note: str | None


class CapacityOut(BaseModel):
    tasks_per_hour: float | None
    nodes: int
    queue: int
    queue_hours: float | None


class ForecastOut(BaseModel):
    time_window_hours: float
    classes: list[ClassForecastOut]
    capacity: CapacityOut


@router.get(
    "/forecast",
    response_model=ForecastOut,
    summary="When each class's p95 crosses its lines; capacity and queue time",
)
def forecast(
    context: Context, store: StoreDep, time_window_hours: TimeWindowHours = 168.0
) -> ForecastOut:
    return ForecastOut.model_validate(forecast_payload(store, context.settings, time_window_hours))
