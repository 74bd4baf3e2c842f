"""GET /api/v1/performance/status: the system now (CPU, RAM, disk, GPUs) and running tasks."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import Context, NodeFilter, QueriesDep
from genperf.api.schemas import StatusOut

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get("/status", response_model=StatusOut, summary="Current system performance status")
async def status(
    context: Context,
    queries: QueriesDep,
    node: NodeFilter = [],  # noqa: B006 (FastAPI copies defaults)
) -> StatusOut:
    """The latest sample (taken by the sampler, so this reads memory only), the tasks being
    monitored now with the phase each is in, and the monitor's own statistics."""
    # async: it reads memory only (the sampler thread took the sample), so it runs on the
    # event loop without a thread-pool hop.
    return queries.live_status(context.monitor, nodes=node)
