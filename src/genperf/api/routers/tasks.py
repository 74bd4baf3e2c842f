"""Task ingestion for generation services in other processes: the spec's task API over HTTP.

Same rules as the library: an unknown task is 404, an unknown metric 422 naming it,
updating a finished task 409, starting a task id that is running 409. Completing answers
what became of the record: 200 stored, 202 queued in memory (``durable: false``); completing
a finished task again is idempotent with the same outcome, 409 with another.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Path, Query, Request, Response, status

from genperf.api.auth import RequireRead, RequireWrite, is_loopback
from genperf.api.deps import Context
from genperf.api.errors import ApiError, ErrorResponse
from genperf.api.open_tasks import client_key
from genperf.api.schemas import (
    ActiveTaskOut,
    RunningTasksPage,
    TaskCompletedOut,
    TaskCompleteIn,
    TaskMetricsIn,
    TaskOut,
    TaskStartIn,
)
from genperf.errors import TaskStateError, UnknownTaskError
from genperf.records import CompletedTask, Durability

RETRY_AFTER_SECONDS = 5  # when a client may ask again whether a queued record has landed

router = APIRouter(prefix="/tasks", tags=["tasks"])
TASKS_PATH = "/api/v1/performance/tasks"  # where the app mounts this router

TaskIdPath = Annotated[
    str,
    Path(min_length=1, max_length=200, description="The generation service's task id."),
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No task has this id"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The task is already finished (or running)"}
}
_TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorResponse, "description": "Too many running tasks: see Retry-After"}
}
MAX_PAGE = 500


@contextmanager
def _conflict_when_finished_elsewhere(context: Context, task_id: str) -> Iterator[None]:
    """A task unknown to the monitor but finished in the store (e.g. before a restart) is a
    conflict (409), not an unknown task (404)."""
    try:
        yield
    except UnknownTaskError:
        record = context.read_store().get_task(task_id)
        if record is not None and record.finished:
            raise TaskStateError(f"task {task_id!r} is already complete") from None
        raise


@router.post(
    "",
    response_model=TaskOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[RequireWrite],
    summary="Start monitoring a generation",
    responses={**_CONFLICT, **_TOO_MANY},
)
def start_task(
    context: Context, body: TaskStartIn, request: Request, response: Response
) -> TaskOut:
    # The generation runs in the client's process: on this host when it calls over loopback
    # and names no other node (this server's host and GPU samples then apply to it),
    # elsewhere otherwise. Any write token may name any node (docs/design.md, "Nodes").
    client = request.client.host if request.client else None
    here = is_loopback(client) and body.node in (None, context.monitor.node)
    ledger = context.open_tasks
    reserved = ledger.admit(body.task_id, client_key(request))  # 429 past the bounds
    try:
        record = context.monitor.start_task_monitoring(
            body.task_id,
            body.model_type,
            body.resolution,
            body.steps,
            runs_in="this_host" if here else "elsewhere",
            node=body.node,
            **body.fields(),
        )
    except BaseException:
        if reserved:
            ledger.release(body.task_id)
        raise
    response.headers["Location"] = f"{TASKS_PATH}/{quote(record.task_id, safe='')}"
    return TaskOut.model_validate(record)


@router.patch(
    "/{task_id}",
    response_model=TaskOut,
    dependencies=[RequireWrite],
    summary="Update a running task's metrics",
    responses={**_NOT_FOUND, **_CONFLICT},
)
def update_task(context: Context, task_id: TaskIdPath, body: TaskMetricsIn) -> TaskOut:
    with _conflict_when_finished_elsewhere(context, task_id):
        context.monitor.update_task_metrics(task_id, **body.fields())
        context.open_tasks.touch(task_id)
    record = context.monitor.get_task_metrics(task_id)
    if record is None:  # completed by another caller in between
        raise UnknownTaskError(task_id)
    return TaskOut.model_validate(record)


@router.post(
    "/{task_id}/complete",
    response_model=TaskCompletedOut,
    dependencies=[RequireWrite],
    summary="Finish a task, successfully or not",
    description=(
        "200: the record is stored (durable). 202: accepted but only queued in memory "
        "(`durable: false`): the database is down, locked, stalled or full; it is written "
        "when the database is back, and a restart of this server before then loses it: send "
        "the same completion again later to learn whether it landed. A retried completion "
        "with the same outcome is idempotent (same record, 200 or 202); a different outcome "
        "is 409. 500 `store_refused`: the database refused the record for good."
    ),
    responses={
        202: {"model": TaskCompletedOut, "description": "Accepted, not yet durable"},
        500: {"model": ErrorResponse, "description": "The database refused the record"},
        **_NOT_FOUND,
        **_CONFLICT,
    },
)
def complete_task(
    context: Context,
    task_id: TaskIdPath,
    response: Response,
    body: Annotated[TaskCompleteIn | None, Body()] = None,
) -> TaskCompletedOut:
    done = body if body is not None else TaskCompleteIn()
    try:
        record = context.monitor.complete_task_monitoring(
            task_id,
            success=done.success,
            error=done.error,
            error_category=done.error_category,
            failed_phase=done.failed_phase,
        )
    except (UnknownTaskError, TaskStateError) as exc:
        record = _retried(context, task_id, done.success, exc)
    if record.durability is Durability.REFUSED:
        raise ApiError(500, "store_refused", f"task {task_id!r}: the database refused its record")
    if not record.durable:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return TaskCompletedOut.model_validate(record)


def _retried(
    context: Context, task_id: str, success: bool, exc: UnknownTaskError | TaskStateError
) -> CompletedTask:
    """A completion of a task already finished: the same answer again (idempotent) when the
    outcome matches, 409 when it does not; the monitor's own error when no record is found
    (404 unknown, or 409 for a task completed here whose record was refused)."""
    finished = context.monitor.finished_task(task_id)
    if finished is None:
        raise exc
    if finished.success != success:
        raise TaskStateError(f"task {task_id!r} is already {finished.status.value}")
    return finished


@router.get(
    "",
    response_model=RunningTasksPage,
    dependencies=[RequireRead],
    summary="Running tasks, oldest first, one page at a time",
)
def running_tasks(
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Tasks per page.")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Tasks to skip.")] = 0,
) -> RunningTasksPage:
    """Every task being monitored now, with its record so far and the phase it is in
    (``/status`` shows only the first few). Finished tasks are in ``/metrics``."""
    active = context.monitor.active_tasks(limit=offset + limit)[offset:]
    total = int(context.monitor.self_stats()["tasks_running"])
    following = offset + len(active)
    return RunningTasksPage(
        total=total,
        limit=limit,
        offset=offset,
        next_offset=following if following < total and active else None,
        tasks=[
            ActiveTaskOut.model_validate(a.record).model_copy(update={"current_phase": a.phase})
            for a in active
        ],
    )


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    dependencies=[RequireRead],
    summary="A task's metrics: live while it runs, stored once finished",
    responses=_NOT_FOUND,
)
def get_task(context: Context, task_id: TaskIdPath) -> TaskOut:
    record = context.monitor.get_task_metrics(task_id)
    if record is None:
        raise UnknownTaskError(task_id)
    return TaskOut.model_validate(record)
