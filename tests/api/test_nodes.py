"""GET /nodes: the fleet, one row per node, from what each node wrote to the shared database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_support import P

from genperf.config import Settings
from genperf.queries.fleet import DOWN_INTERVALS, inferred_interval, node_state
from genperf.records import GpuReading, SystemSample, TaskStatus, utc_now
from genperf.storage.base import genperf_version
from genperf.testing import make_task

H200 = GpuReading(
    index=0,
    name="NVIDIA H200",
    memory_used_bytes=20 * 2**30,
    memory_total_bytes=141 * 2**30,
    utilization_percent=97.0,
    temperature_celsius=81.0,
)


@pytest.fixture
def fleet(store):
    now = utc_now()
    # gpu-1 samples every 10 s, newest just now; gpu-2 every second, but not for a minute
    store.save_samples(
        [SystemSample(now - timedelta(seconds=10 * i), "gpu-1", gpus=(H200,)) for i in range(5)]
        + [SystemSample(now - timedelta(seconds=60 + i), "gpu-2") for i in range(5)]
    )
    for i, seconds in enumerate((100.0, 300.0, 200.0)):  # 720p median 200
        store.save_task(
            make_task(
                node="gpu-1",
                started_at=now - timedelta(minutes=i + 1),
                generation_time_seconds=seconds,
            )
        )
    store.save_task(
        make_task(
            node="gpu-1",
            resolution="1920x1080",
            started_at=now - timedelta(minutes=9),
            generation_time_seconds=900.0,
        )
    )
    store.save_task(
        make_task(
            node="gpu-1",
            status=TaskStatus.FAILED,
            error_category="out_of_memory_gpu",
            started_at=now - timedelta(minutes=5),
            generation_time_seconds=None,
        )
    )
    store.save_task(
        make_task(
            node="gpu-1",
            status=TaskStatus.RUNNING,
            completed_at=None,
            started_at=now - timedelta(seconds=30),
            generation_time_seconds=None,
        )
    )
    store.save_task(make_task(node="posted-elsewhere", started_at=now - timedelta(hours=2)))
    store.save_task(make_task(node="long-ago", started_at=now - timedelta(days=3)))


def test_each_node_with_its_state_gpus_tasks_and_medians(client, fleet):
    body = client.get(f"{P}/nodes").json()
    assert [n["node"] for n in body["nodes"]] == ["gpu-1", "gpu-2", "posted-elsewhere"]
    assert body["targets"]["720p"] > 0
    one, two, posted = body["nodes"]
    assert one["state"] == "up"
    assert one["interval_seconds"] == pytest.approx(10.0)
    assert one["last_sample_age_seconds"] < 10
    assert one["genperf_version"] == genperf_version()
    assert one["gpus"] == [
        {
            "index": 0,
            "name": "NVIDIA H200",
            "memory_used_bytes": 20 * 2**30,
            "memory_total_bytes": 141 * 2**30,
            "utilization_percent": 97.0,
            "temperature_celsius": 81.0,
        }
    ]
    assert (one["running_tasks"], one["tasks"], one["completed"]) == (1, 5, 4)
    assert one["success_rate"] == pytest.approx(0.8)
    assert one["p50_generation_time_seconds"] == {"1080p": 900.0, "720p": 200.0}
    assert one["p50_tasks"] == {"1080p": 1, "720p": 3}
    assert two["state"] == "down"
    assert two["interval_seconds"] == pytest.approx(1.0)
    assert (two["tasks"], two["success_rate"], two["gpus"]) == (0, None, [])
    assert posted["state"] == "no_samples"
    assert posted["last_sample_at"] is None
    assert (posted["tasks"], posted["success_rate"]) == (1, 1.0)


def test_the_node_filter_and_the_window(client, fleet):
    body = client.get(f"{P}/nodes", params=[("node", "gpu-2"), ("node", "nowhere")]).json()
    assert [n["node"] for n in body["nodes"]] == ["gpu-2"]
    week = client.get(f"{P}/nodes", params={"time_window_hours": 24 * 7}).json()
    assert "long-ago" in [n["node"] for n in week["nodes"]]
    assert client.get(f"{P}/nodes", params={"node": "a\x00"}).status_code == 422


def test_a_node_is_down_after_three_of_its_intervals():
    settings = Settings()
    late = DOWN_INTERVALS * 5.0
    assert node_state(late, 5.0, settings) == "up"
    assert node_state(late + 0.01, 5.0, settings) == "down"
    # larger batches of samples: one batch and one interval
    batched = settings.model_copy(update={"samples_per_write": 10})
    assert node_state(55.0, 5.0, batched) == "up"
    assert node_state(55.01, 5.0, batched) == "down"
    assert node_state(None, None, settings) == "no_samples"
    # with one sample, the interval is unknown: the reader's own setting stands in
    assert (
        node_state(
            late + 0.01, None, settings.model_copy(update={"monitoring_interval_seconds": 5.0})
        )
        == "down"
    )


def test_the_interval_is_the_median_gap_of_the_newest_samples():
    now = utc_now()
    taken = [0, 2, 4, 30, 32]  # one long gap (a skipped tick or a restart) does not count
    samples = [SystemSample(now - timedelta(seconds=s), "n") for s in taken]
    assert inferred_interval(samples) == pytest.approx(2.0)
    assert inferred_interval(samples[:1]) is None
