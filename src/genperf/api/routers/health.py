"""Liveness and readiness probes: no token needed, nothing revealed."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.deps import Context
from genperf.api.errors import ApiError, ErrorResponse
from genperf.api.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="The process is alive")
async def healthz() -> HealthOut:
    return HealthOut()


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="The database answers and takes writes",
    responses={
        503: {
            "model": ErrorResponse,
            "description": "The database is unreachable, or its last write failed (locked, "
            "full, a corrupt page): completions are only queued in memory meanwhile",
        }
    },
)
def readyz(context: Context) -> ReadyOut:
    store = context.store if context.store is not None else context.monitor.store
    if store is None or not store.ping():
        raise ApiError(503, "not_ready", "the database is not reachable", headers=_RETRY)
    # A ping reads; it says nothing of a locked, full or damaged database. The monitor's
    # writer writes every few seconds (samples, tasks): its last outcome is the truth.
    if context.monitor.write_error() is not None:
        raise ApiError(503, "not_ready", "the database does not take writes", headers=_RETRY)
    return ReadyOut()


_RETRY = {"Retry-After": "5"}
