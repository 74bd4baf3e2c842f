"""GET /api/v1/performance/status: the system now (CPU, RAM, disk, GPUs) and running tasks."""

from __future__ import annotations

from fastapi import APIRouter

from genperf.api.auth import RequireRead
from genperf.api.deps import Context
from genperf.api.schemas import (
    STATUS_ACTIVE_TASKS,
    ActiveTaskOut,
    MonitoringOut,
    MonitorStatsOut,
    SampleOut,
    StatusOut,
)
from genperf.records import utc_now

router = APIRouter(tags=["performance"], dependencies=[RequireRead])


@router.get("/status", response_model=StatusOut, summary="Current system performance status")
async def status(context: Context) -> StatusOut:
    """The latest sample (taken by the sampler, so this reads memory only), the first tasks
    being monitored now with the phase each is in (all of them: GET /tasks), and the
    monitor's own statistics."""
    # async: it reads memory only (the sampler thread took the sample), so it runs on the
    # event loop without a thread-pool hop.
    monitor = context.monitor
    sample = monitor.current_sample()
    now = utc_now()
    return StatusOut(
        timestamp=now,
        monitoring=MonitoringOut(
            running=monitor.running,
            node=monitor.node,
            interval_seconds=context.settings.monitoring_interval_seconds,
            sample_age_seconds=max(0.0, (now - sample.taken_at).total_seconds()),
        ),
        system=SampleOut.model_validate(sample),
        active_tasks=[
            ActiveTaskOut.model_validate(active.record).model_copy(
                update={"current_phase": active.phase}
            )
            for active in monitor.active_tasks(limit=STATUS_ACTIVE_TASKS)
        ],
        monitor=MonitorStatsOut.model_validate(monitor.self_stats()),
    )
