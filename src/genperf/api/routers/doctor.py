"""GET /api/v1/performance/doctor: ``genperf doctor``'s checks, run by the server itself.

The server's answer adds what only it knows: whether its sampler runs, how fresh its newest
sample is, and its store writer's queue and dropped counters. ``genperf doctor --url`` asks it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from genperf.api.auth import RequireRead
from genperf.api.deps import Context
from genperf.doctor import run_doctor
from genperf.records import utc_now

router = APIRouter(tags=["performance"], dependencies=[RequireRead])

VerdictText = Literal["ok", "not_available", "warning", "failure"]


class CheckOut(BaseModel):
    name: str = Field(description="A stable id: nvml, database_schema, model:<dir> ...")
    title: str
    verdict: VerdictText
    evidence: str
    fix: str | None
    data: dict[str, Any]


class DoctorOut(BaseModel):
    verdict: VerdictText = Field(description="The worst verdict of the checks")
    exit_code: Literal[0, 1, 2] = Field(description="0 ok, 1 warnings, 2 failures")
    counts: dict[str, int]
    generated_at: datetime
    node: str
    where: Literal["local", "server"]
    checks: list[CheckOut]


@router.get(
    "/doctor",
    response_model=DoctorOut,
    summary="Health checks of this server: GPU, torch, database, monitor, host, models",
)
def doctor(context: Context) -> dict[str, Any]:
    """Every check with its verdict (ok, not_available, warning, failure), evidence and fix;
    ``exit_code`` is what ``genperf doctor`` exits with (0 ok, 1 warnings, 2 failures)."""
    # A plain def: the checks touch the database, the disks and NVML, so they run in the
    # thread pool, not on the event loop.
    monitor = context.monitor
    now = utc_now()
    sample = monitor.current_sample()
    report = run_doctor(
        context.settings,
        monitor_running=monitor.running,
        monitor_stats=monitor.self_stats(),
        sample_age_seconds=max(0.0, (now - sample.taken_at).total_seconds()),
        now=now,
        where="server",
    )
    return report.to_dict()
