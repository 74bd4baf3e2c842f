"""Shared pieces of the analysis tests: settings and synthetic histories with known answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genperf.config import Settings
from genperf.records import TaskRecord, TaskStatus
from genperf.testing import make_task

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def settings() -> Settings:
    return Settings()


def history(count: int, every_minutes: float = 10.0, **fields: Any) -> list[TaskRecord]:
    """``count`` healthy 720p tasks (make_task defaults) started every few minutes from T0."""
    return [
        make_task(started_at=T0 + timedelta(minutes=i * every_minutes), **fields)
        for i in range(count)
    ]


def vary(tasks: list[TaskRecord], share: float, **fields: Any) -> list[TaskRecord]:
    """The first ``share`` of the tasks changed by ``fields`` (the rest as they are)."""
    import dataclasses

    n = round(len(tasks) * share)
    return [dataclasses.replace(t, **fields) if i < n else t for i, t in enumerate(tasks)]


def failed(**fields: Any) -> dict[str, Any]:
    """Fields of a failed run."""
    return {"status": TaskStatus.FAILED, **fields}


HistoryFactory = Callable[[], list[TaskRecord]]
