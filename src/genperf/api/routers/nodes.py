"""GET /api/v1/performance/nodes: the fleet, one row per node."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import NodeFilter, QueriesDep, TimeWindowHours
from genperf.queries.models import NodesOut

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get("/nodes", response_model=NodesOut, summary="The fleet: every node's state")
def nodes(
    queries: QueriesDep,
    time_window_hours: TimeWindowHours = 24.0,
    node: NodeFilter = [],  # noqa: B006 (FastAPI copies defaults)
) -> NodesOut:
    """Each node that sampled or ran tasks in the window: its newest sample's age, up or down
    (no sample for more than 3 of its intervals), its GPUs, running tasks, tasks and success
    rate in the window, median time per resolution class, and the genperf it runs."""
    return queries.nodes(time_window_hours, nodes=node)
