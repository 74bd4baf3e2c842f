"""REST routes of the generation service, mounted by the wiring (``genperf.server``)::

    app = create_app(settings, monitor=monitor, extra_routers=[make_router(service)])

- ``POST /api/v1/generation/tasks`` ``{"model_type", "prompt", "resolution", "steps",
  "frames"}`` -> 202 ``{"task_id", "status", "prediction"}`` (role ``write``; the prediction
  is ``POST /api/v1/performance/predict``'s answer for it);
- ``GET /api/v1/generation/tasks`` (newest first, ``status``, ``limit``, ``offset``) and
  ``GET /api/v1/generation/tasks/{task_id}``: status and the performance record (role ``read``).

Bad input, or a request over the service's ``generation_limits``, is a 422 naming the field;
a full queue is a 429 with Retry-After. Responses never carry the prompt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.params import Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from genperf.api.auth import RequireRead, RequireWrite
from genperf.api.errors import ApiError, ErrorResponse
from genperf.api.routers.predict import prediction_out
from genperf.api.schemas import TaskOut
from genperf.generation import (
    DEFAULT_MODEL_TYPE,
    GenerationService,
    GenerationTask,
    ModelNotAvailableError,
    QueueFullError,
    RequestLimitError,
    RequestNotFoundError,
    RequestStatus,
    parse_resolution,
)
from genperf.generation.request import (
    MAX_FRAMES,
    MAX_HEADROOM_MIB,
    MAX_PROMPT_CHARS,
    MAX_STEPS,
    MIN_HEADROOM_MIB,
    check_frames,
)
from genperf.queries.models import PredictionOut

logger = logging.getLogger("genperf.generation")

PREFIX = "/api/v1/generation/tasks"
MAX_PAGE = 500

StrictInt = Annotated[int, Field(strict=True)]


class GenerationTaskIn(BaseModel):
    """A generation to queue."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_type: str = Field(
        DEFAULT_MODEL_TYPE,
        min_length=1,
        max_length=100,
        description="A registered model type (the built-in tiny-wan-t2v runs anywhere).",
    )
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    resolution: str = Field(
        max_length=32, description="WIDTHxHEIGHT, multiples of 16 (832x480), or 480p / 720p."
    )
    steps: StrictInt = Field(ge=1, le=MAX_STEPS)
    frames: StrictInt = Field(ge=1, le=MAX_FRAMES, description="Of the form 4k+1 (9, 17, 81).")
    memory_headroom_mib: StrictInt | None = Field(
        None,
        ge=MIN_HEADROOM_MIB,
        le=MAX_HEADROOM_MIB,
        description=(
            "Run in a worker subprocess whose address space may grow by at most this many MiB "
            "once the model is loaded: a generation needing more runs out of memory for real."
        ),
    )

    requeue_on_failure: bool = Field(
        False,
        description="When the worker running it dies (its lease expires), queue it once more "
        "instead of recording it interrupted.",
    )

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        width, height = parse_resolution(value)
        return f"{width}x{height}"

    @field_validator("frames")
    @classmethod
    def _frames(cls, value: int) -> int:
        return check_frames(value)


class GenerationTaskAccepted(BaseModel):
    task_id: str
    status: RequestStatus
    prediction: PredictionOut | None = Field(
        None,
        description="What the history predicts for it (answerable or not); null when the "
        "history could not be read.",
    )


class GenerationTaskOut(BaseModel):
    """A generation request, its status and (once it runs) its performance record."""

    model_config = ConfigDict(protected_namespaces=())

    task_id: str
    model_type: str
    resolution: str
    steps: int
    frames: int
    memory_headroom_mib: int | None = None
    status: RequestStatus
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    run_id: str | None = None
    error_message: str | None = None
    node: str | None = Field(None, description="The node whose worker runs (ran) it.")
    attempts: int = Field(0, description="How many times a worker claimed it.")
    requeue_on_failure: bool = False
    interrupted_phase: str | None = Field(
        None, description="The phase it was in when its worker died."
    )
    metrics: TaskOut | None = None
    tuning: list[TuningOut] = Field(
        default_factory=list, description="Auto-tune's preset for each run, and why."
    )
    prediction: PredictionOut | None = Field(
        None,
        description="What the history predicted for it when it was queued (the POST's "
        "answer, kept); null when none could be made then.",
    )

    @classmethod
    def of(cls, task: GenerationTask) -> GenerationTaskOut:
        # The request's own fields by name (never its prompt, which is no field here).
        out = cls.model_validate(task.request, from_attributes=True)
        return out.model_copy(
            update={
                "metrics": None if task.metrics is None else TaskOut.model_validate(task.metrics),
                "tuning": [TuningOut.model_validate(d, from_attributes=True) for d in task.tuning],
                "prediction": None
                if task.prediction is None
                else PredictionOut.model_validate(task.prediction),
            }
        )


class TuningOut(BaseModel):
    """Auto-tune's choice for one run of the request, and why."""

    run_id: str | None
    preset: str | None
    reason: str
    retry_of_run_id: str | None
    created_at: datetime


class GenerationTaskList(BaseModel):
    tasks: list[GenerationTaskOut]


_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No generation task has this id"}
}


def _prediction(service: GenerationService, body: GenerationTaskIn) -> PredictionOut | None:
    """The request's prediction; None when it cannot be made now (the request is queued
    whatever happens here)."""
    try:
        return prediction_out(
            service.monitor.predict(body.model_type, body.resolution, body.frames, body.steps)
        )
    except Exception as exc:
        logger.warning("no prediction for a queued generation: %s", exc)
        return None


def make_router(
    service: GenerationService,
    *,
    read: Sequence[Depends] = (RequireRead,),
    write: Sequence[Depends] = (RequireWrite,),
) -> APIRouter:
    """The generation routes, served by ``service``; ``read`` / ``write`` guard them
    (default: the API's token roles)."""
    router = APIRouter(prefix=PREFIX, tags=["generation"])

    @router.post(
        "",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=GenerationTaskAccepted,
        dependencies=list(write),
        summary="Queue a generation (monitored when it runs)",
        responses={
            429: {"model": ErrorResponse, "description": "The queue is full: see Retry-After"}
        },
    )
    def submit(body: GenerationTaskIn, response: Response) -> GenerationTaskAccepted:
        # Predicted before it is queued: the run can never be part of its own history.
        prediction = _prediction(service, body)
        try:
            task_id = service.submit(
                body.model_type,
                body.prompt,
                body.resolution,
                body.steps,
                body.frames,
                memory_headroom_mib=body.memory_headroom_mib,
                requeue_on_failure=body.requeue_on_failure,
            )
        except ModelNotAvailableError as exc:
            raise ApiError(422, "invalid_request", str(exc), field="model_type") from None
        except RequestLimitError as exc:
            raise ApiError(422, "invalid_request", str(exc), field=exc.field) from None
        except QueueFullError as exc:
            raise ApiError(
                429,
                "queue_full",
                str(exc),
                headers={"Retry-After": str(exc.retry_after_seconds)},
            ) from None
        response.headers["Location"] = f"{PREFIX}/{quote(task_id, safe='')}"
        if prediction is not None:
            service.keep_prediction(task_id, prediction.model_dump(mode="json"))
        return GenerationTaskAccepted(
            task_id=task_id, status=RequestStatus.QUEUED, prediction=prediction
        )

    @router.get(
        "",
        response_model=GenerationTaskList,
        dependencies=list(read),
        summary="Generation tasks, newest first, with their performance records",
    )
    def list_tasks(
        status_: Annotated[RequestStatus | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> GenerationTaskList:
        tasks = service.list(status_, limit=limit, offset=offset)
        return GenerationTaskList(tasks=[GenerationTaskOut.of(t) for t in tasks])

    @router.get(
        "/{task_id}",
        response_model=GenerationTaskOut,
        dependencies=list(read),
        summary="One generation task: status and performance record",
        responses=_NOT_FOUND,
    )
    def get_task(
        task_id: Annotated[str, Path(min_length=1, max_length=64)],
    ) -> GenerationTaskOut:
        try:
            return GenerationTaskOut.of(service.get(task_id))
        except RequestNotFoundError as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    return router
