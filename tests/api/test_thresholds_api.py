"""The spec's thresholds reach the API: /benchmarks serves the bands the dashboard draws its
lines from, with the thresholds as their limits, and judges against them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from api_support import P

from genperf.config import Settings
from genperf.records import utc_now
from genperf.testing import make_task


@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # overrides conftest's: stricter thresholds
    return Settings.model_validate(
        {
            "monitoring_interval_seconds": 3600.0,
            "data_dir": str(tmp_path),
            "node_name": "api-node",
            "performance_thresholds": {
                "max_vram_usage_percent": 50,
                "max_ram_usage_percent": 10,
                "min_success_rate": 1.0,
            },
        }
    )


def test_the_benchmarks_serve_the_thresholds_as_limits(client, store) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        started = utc_now() - timedelta(hours=1 + i)
        store.save_task(
            make_task(task_id=f"t{i}", started_at=started, peak_vram_usage_mb=0.6 * 81_920.0)
        )
    body = client.get(f"{P}/benchmarks", params={"time_window_hours": 24}).json()
    targets = body["targets"]
    assert targets["vram_usage_percent"]["maximum"] == 50
    assert targets["ram_usage_percent"]["maximum"] == 10
    assert targets["success_rate"]["minimum"] == 1.0
    status = {b["name"]: b["status"] for b in body["benchmarks"]}
    assert status["vram_usage_percent"] == "over_limit"
