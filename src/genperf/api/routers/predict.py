"""POST /api/v1/performance/predict: a generation's time and peak memory before it runs.

Learnt from the store's history of that model type (and node); see :mod:`genperf.prediction`.
A question the history cannot answer is still a 200, with ``answerable: false``, the reasons
and the runs that would make it answerable: never a made-up number.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genperf.api.auth import RequireRead
from genperf.api.deps import Context, StoreDep
from genperf.generation.request import MAX_FRAMES, MAX_STEPS, RESOLUTION_ALIASES
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
