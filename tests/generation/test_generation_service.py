"""End to end on the real tiny Wan2.2 pipeline: queue -> worker -> monitored task -> store."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from genperf.config import GenerationLimits, ModelLimits
from genperf.generation import (
    TINY_WAN,
    GenerationService,
    ModelNotAvailableError,
    RequestNotFoundError,
    RequestStatus,
)
from genperf.records import ErrorCategory, TaskStatus

pytestmark = pytest.mark.filterwarnings("ignore:unclosed file.*safetensors:ResourceWarning")

PROMPT = "a lighthouse keeper's secret recipe for plum jam"  # must never reach the metrics
PHASES = ["text_encode", "denoise", "vae_decode"]


def _all_text_in_database(settings) -> str:
    path = settings.resolved_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')
        )


def test_a_generation_is_a_stored_monitored_task(service, monitor, settings):
    first = service.submit(TINY_WAN, PROMPT, "64x64", 4, 9)
    second = service.submit(TINY_WAN, PROMPT, "128x64", 2, 5)
    assert service.wait_idle(180)

    task = service.get(first)
    assert task.status is RequestStatus.COMPLETED
    record = task.metrics
    assert record is not None and record.status is TaskStatus.COMPLETED
    assert record == monitor.store.get_run(task.request.run_id)  # durable, linked by run_id
    assert (record.model_type, record.resolution, record.steps, record.frames) == (
        TINY_WAN,
        "64x64",
        4,
        9,
    )
    assert record.model_load_time_seconds is not None and record.model_load_time_seconds > 0
    assert record.weights_memory_mapped is False
    assert [p.name for p in record.phases] == ["model_load", *PHASES]
    assert len(record.step_times_seconds) == 4
    assert record.peak_process_rss_mb is not None and record.peak_process_rss_mb > 0
    assert all(p.peak_ram_mb and p.peak_ram_mb > 0 for p in record.phases)
    assert "attention:sdpa" in record.optimizations_applied

    again = service.get(second).metrics
    assert again.status is TaskStatus.COMPLETED
    assert [p.name for p in again.phases] == PHASES  # the model stayed loaded
    assert again.model_load_time_seconds is None
    assert "model_cached" in again.optimizations_applied
    assert (again.resolution, again.frames, len(again.step_times_seconds)) == ("128x64", 5, 2)

    # The prompt is input, not a metric: not in any table once done, nor in what is served.
    assert PROMPT not in _all_text_in_database(settings)
    assert PROMPT not in repr(service.get(first).to_dict())
    assert [t.task_id for t in service.list()] == [second, first]


def test_a_corrupt_model_directory_is_a_model_load_error(service, data_dir, tmp_path):
    broken = tmp_path / "broken-wan"
    shutil.copytree(data_dir / "models" / TINY_WAN, broken)
    weights = next((broken / "transformer_2").glob("*.safetensors"))
    with weights.open("r+b") as f:
        f.truncate(100)
    spec = service.registry.resolve(TINY_WAN)
    service.registry.register(
        "broken-wan", broken, load_kwargs=spec.load_kwargs, call_kwargs=spec.call_kwargs
    )
    task_id = service.submit("broken-wan", PROMPT, "64x64", 2, 5)
    assert service.wait_idle(120)
    task = service.get(task_id)
    assert task.status is RequestStatus.FAILED
    record = task.metrics
    assert record.error_category == ErrorCategory.MODEL_LOAD_ERROR.value
    assert record.failed_phase == "model_load"
    assert [p.name for p in record.phases] == ["model_load"] and record.phases[0].failed
    assert record.recovery_suggestions
    assert "Unable to load weights" in record.error_message


@pytest.mark.slow
def test_out_of_memory_is_real_and_recorded_in_vae_decode(service, monitor):
    # As shared/reference's `--fail oom`: 64 MiB of address space above the loaded model.
    task_id = service.submit(TINY_WAN, PROMPT, "832x480", 4, 17, memory_headroom_mib=64)
    assert service.wait_idle(300)
    task = service.get(task_id)
    assert task.status is RequestStatus.FAILED
    record = task.metrics
    assert record == monitor.store.get_run(task.request.run_id)
    assert record.error_category == ErrorCategory.OUT_OF_MEMORY_HOST.value
    assert record.failed_phase == "vae_decode"
    assert "DefaultCPUAllocator: can't allocate memory" in record.error_message
    assert any("tiling" in s for s in record.recovery_suggestions)
    assert [p.name for p in record.phases] == ["model_load", *PHASES]
    assert record.phase("vae_decode").failed and not record.phase("denoise").failed
    assert len(record.step_times_seconds) == 4  # every denoising step fitted
    assert record.generation_time_seconds > record.phase("denoise").duration_seconds
    assert record.peak_process_rss_mb > 0


def test_model_types_without_a_directory_are_refused_naming_the_setting(service):
    with pytest.raises(ModelNotAvailableError) as info:
        service.submit("t2v-A14B", PROMPT, "1280x720", 40, 81)
    message = str(info.value)
    assert "'t2v-A14B'" in message and "GENPERF_MODEL_DIR" in message
    assert "Wan-AI/Wan2.2-T2V-A14B-Diffusers" in message
    with pytest.raises(ModelNotAvailableError, match="'no-such-model'"):
        service.submit("no-such-model", PROMPT, "64x64", 2, 5)
    assert service.list() == []


@pytest.mark.parametrize(
    ("resolution", "steps", "frames", "match"),
    [
        ("64x60", 2, 5, "multiples of 16"),
        ("big", 2, 5, "WIDTHxHEIGHT"),
        ("64x64", 0, 5, "steps"),
        ("64x64", 2, 6, "4k\\+1"),
    ],
)
def test_bad_requests_are_refused(service, resolution, steps, frames, match):
    with pytest.raises(ValueError, match=match):
        service.submit(TINY_WAN, PROMPT, resolution, steps, frames)


def test_unknown_task_ids_are_not_found(service):
    with pytest.raises(RequestNotFoundError):
        service.get("nope")


def test_requests_left_running_by_a_stopped_service_are_failed_at_start(monitor):
    first = GenerationService(monitor)  # never started: nothing runs its requests
    task_id = first.submit(TINY_WAN, PROMPT, "64x64", 2, 5)
    assert first.queue.claim_next().task_id == task_id  # "running" when the process died
    first.close()
    second = GenerationService(monitor, poll_seconds=0.1)
    second.start()
    try:
        task = second.get(task_id)
        assert task.status is RequestStatus.FAILED
        assert "stopped" in task.request.error_message
    finally:
        second.close()


def test_a_run_past_its_time_limit_fails_as_timeout_and_the_worker_goes_on(monitor):
    limits = GenerationLimits(per_model={"tiny-slow": ModelLimits(max_run_seconds=1e-6)})
    service = GenerationService(monitor, poll_seconds=0.1, limits=limits)
    tiny = service.registry.resolve(TINY_WAN)
    service.registry.register(
        "tiny-slow", tiny.path, load_kwargs=tiny.load_kwargs, call_kwargs=tiny.call_kwargs
    )
    service.registry.ensure_ready(TINY_WAN)
    with service:
        slow = service.submit("tiny-slow", PROMPT, "64x64", 4, 5)
        after = service.submit(TINY_WAN, PROMPT, "64x64", 2, 5)
        assert service.wait_idle(180)
    record = service.get(slow).metrics
    assert service.get(slow).status is RequestStatus.FAILED
    assert record.error_category == ErrorCategory.TIMEOUT.value
    assert record.failed_phase == "denoise"
    assert len(record.step_times_seconds) == 1  # stopped at the end of its first step
    assert "limit" in record.error_message
    assert service.get(after).status is RequestStatus.COMPLETED
