"""InfluxDB line protocol: exact text of task and sample points, escaping, unknown values left
out, and a streamed export in bounded memory."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from genperf.exporters import influx
from genperf.records import GpuReading, PhaseRecord, SystemSample, TaskRecord, TaskStatus
from genperf.storage import MemoryStore
from genperf.testing import make_task

TASK = make_task(
    run_id="r1",
    task_id="t1",
    node="gpu 1",
    model_type="t2v,A=14B",
    phases=(PhaseRecord("denoise", 1.0, 200.5, peak_vram_mb=39000.0),),
    optimizations_applied=("dtype:bf16",),
)

TASK_LINE = (
    r"genperf_task,node=gpu\ 1,model_type=t2v\,A\=14B,resolution_class=720p,status=completed,"
    r'error_category=none run_id="r1",task_id="t1",resolution="1280x720",steps=20i,'
    r'completed_at="2026-01-01T00:04:00+00:00",model_used="t2v-A14B",'
    r"generation_time_seconds=240.0,model_load_time_seconds=20.0,"
    r'step_times_seconds="[]",peak_vram_usage_mb=40000.0,avg_vram_usage_mb=30000.0,'
    r"vram_total_mb=81920.0,peak_ram_usage_mb=20000.0,avg_ram_usage_mb=15000.0,"
    r"ram_total_mb=65536.0,peak_cpu_percent=50.0,avg_cpu_percent=30.0,"
    r"peak_gpu_utilization_percent=98.0,avg_gpu_utilization_percent=90.0,"
    r"peak_gpu_temperature_celsius=70.0,avg_gpu_temperature_celsius=65.0,"
    r'gpu_throttle_reasons="[]",samples_count=0i,optimizations_applied="[\"dtype:bf16\"]",'
    r'recovery_suggestions="[]",success=true,phase_denoise_seconds=200.5,'
    r"phase_denoise_peak_vram_mb=39000.0 1767225600000000793"
)


def test_a_task_is_one_point_with_every_known_metric() -> None:
    assert influx.task_line(TASK) == TASK_LINE


def test_a_failure_carries_its_category_and_message() -> None:
    failed = make_task(
        run_id="r2",
        status=TaskStatus.FAILED,
        error_category="out_of_memory_gpu",
        error_message='CUDA "out of memory"\nat C:\\vae',
        peak_vram_usage_mb=float("nan"),
    )
    line = influx.task_line(failed)
    assert ",status=failed,error_category=out_of_memory_gpu " in line
    assert r'error_message="CUDA \"out of memory\"' + "\n" + r'at C:\\vae"' in line
    assert "peak_vram_usage_mb" not in line  # NaN is unknown: no field
    assert "success=false" in line


def test_tags_never_break_the_line() -> None:
    odd = make_task(node="a\tb\\", model_type="", resolution_class="720p")
    head = re.split(r"(?<!\\) ", influx.task_line(odd), maxsplit=1)[0]  # unescaped space
    assert head.startswith(r"genperf_task,node=a\ b,model_type=unknown,")


def test_the_time_is_started_at_and_stable_per_run() -> None:
    ns = influx.task_timestamp_ns(TASK)
    assert ns // 1000 == int(TASK.started_at.timestamp()) * 1_000_000
    twin = make_task(run_id="r1-retry", started_at=TASK.started_at)
    assert influx.task_timestamp_ns(twin) != ns  # same microsecond, still two points
    assert influx.task_timestamp_ns(make_task(run_id="r1")) == ns  # a rewrite replaces it


def test_every_task_field_has_a_fixed_type() -> None:
    kinds = influx.TASK_FIELD_KINDS
    assert kinds["steps"] == kinds["samples_count"] == "int"
    assert kinds["generation_time_seconds"] == kinds["peak_vram_usage_mb"] == "float"
    assert kinds["weights_memory_mapped"] == "bool"
    assert kinds["optimizations_applied"] == kinds["completed_at"] == "string"
    assert not set(kinds) & {*influx.TASK_TAGS, "started_at", "phases"}
    assert set(kinds) | {*influx.TASK_TAGS, "started_at", "phases"} == set(TaskRecord.__slots__)


SAMPLE = SystemSample(
    taken_at=datetime(2026, 1, 1, 0, 0, 1, 500, tzinfo=UTC),
    node="n1",
    cpu_percent=12.5,
    cpu_count=16,
    ram_used_bytes=1024,
    gpus=(
        GpuReading(
            index=0,
            name="NVIDIA H200",
            memory_used_bytes=2048,
            power_watts=300.0,
            throttle_reasons=("hw_slowdown",),
        ),
        GpuReading(index=1),  # nothing known: no point
    ),
)


def test_a_sample_is_a_host_point_and_a_point_per_gpu() -> None:
    assert influx.sample_lines(SAMPLE) == [
        "genperf_sample,node=n1 cpu_percent=12.5,ram_used_bytes=1024i,cpu_count=16i "
        "1767225601000500000",
        r"genperf_gpu,node=n1,gpu=0,gpu_name=NVIDIA\ H200 memory_used_bytes=2048i,"
        r'power_watts=300.0,throttle_reasons="[\"hw_slowdown\"]" 1767225601000500000',
    ]


def test_render_streams_tasks_then_samples_in_chunks() -> None:
    chunks = list(influx.render([TASK, TASK], [SAMPLE], chunk_lines=2))
    assert chunks == [
        TASK_LINE + "\n" + TASK_LINE + "\n",
        "\n".join(influx.sample_lines(SAMPLE)) + "\n",
    ]


def _records(count: int) -> Iterator[TaskRecord]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        yield make_task(started_at=start + timedelta(seconds=i))


def _peak(count: int) -> int:
    tracemalloc.start()
    try:
        for _ in influx.render(_records(count), chunk_lines=50):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_render_holds_one_chunk_at_a_time() -> None:
    small, large = _peak(200), _peak(2_000)
    assert large < small * 1.5, (small, large)  # 10x the tasks, not 10x the memory


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def query_samples(self, *args: Any, **kwargs: Any) -> list[SystemSample]:
        self.calls += 1
        return super().query_samples(*args, **kwargs)


def test_stored_samples_are_read_an_hour_at_a_time_each_once() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    samples = [SystemSample(taken_at=start + timedelta(minutes=30 * i), node="n") for i in range(7)]
    store = CountingStore()
    store.save_samples(samples)
    got = list(influx.stored_samples(store, start, start + timedelta(hours=3)))
    assert got == samples  # the samples on slice boundaries come once
    assert store.calls == 3
