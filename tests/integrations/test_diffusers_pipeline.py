"""A real tiny Wan2.2 pipeline (two experts, boundary_ratio 0.875), monitored in one line."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from diffusers_support import CALL, torch

from genperf.config import Settings
from genperf.integrations.diffusers import MonitoredPipeline, load_pipeline, monitor_pipeline
from genperf.monitor import PerformanceMonitor
from genperf.records import ErrorCategory, TaskStatus

# diffusers leaves the weights file open when loading with disable_mmap=True.
pytestmark = pytest.mark.filterwarnings("ignore:unclosed file.*safetensors:ResourceWarning")

PHASES = ["text_encode", "denoise", "vae_decode"]


def test_a_call_is_a_monitored_task_with_load_phases_steps_and_experts(monitor, tiny_wan_dir):
    from diffusers import WanPipeline

    pipe = load_pipeline(
        WanPipeline,
        tiny_wan_dir,
        monitor=monitor,
        model_type="tiny-wan-t2v",
        dtype=torch.float32,
        disable_mmap=True,
    )
    pipe.set_progress_bar_config(disable=True)  # delegated to the pipeline

    output = pipe(**CALL, num_inference_steps=8, task_id="job-1")

    assert output.frames.shape[:2] == (1, 9)
    record = monitor.get_task_metrics("job-1")
    assert record is pipe.last_record or record == pipe.last_record
    assert record.status is TaskStatus.COMPLETED
    assert (record.model_type, record.resolution, record.steps, record.frames) == (
        "tiny-wan-t2v",
        "64x64",
        8,
        9,
    )
    assert record.model_load_time_seconds is not None and record.model_load_time_seconds > 0
    assert record.weights_memory_mapped is False
    assert [p.name for p in record.phases] == PHASES
    assert all(p.duration_seconds > 0 and not p.failed for p in record.phases)
    assert all(p.peak_ram_mb is not None and p.peak_ram_mb > 0 for p in record.phases)
    assert sum(p.duration_seconds for p in record.phases) <= record.generation_time_seconds
    assert record.peak_process_rss_mb is not None and record.peak_process_rss_mb > 0
    assert "attention:sdpa" in record.optimizations_applied
    assert len(record.step_times_seconds) == 8
    assert all(t > 0 for t in record.step_times_seconds)

    # Which expert ran each step: transformer while t >= 875, then transformer_2.
    timesteps = pipe.scheduler.timesteps
    expected = ["transformer" if float(t) >= 875 else "transformer_2" for t in timesteps]
    call = pipe.last_call
    assert list(call.step_experts) == expected
    assert {"transformer", "transformer_2"} == set(expected)
    assert call.denoiser_calls == {name: 2 * expected.count(name) for name in set(expected)}
    # The warm-up is kept apart: the first step, and the first of the second expert.
    assert call.warmup_steps == (0, expected.index("transformer_2"))
    assert call.warmup_step_seconds == record.step_times_seconds[0]
    assert call.steady_step_seconds is not None


@pytest.fixture
def ram_dir(tmp_path):
    """A folder in RAM where there is one: the durable commit of a task's record (an fsync,
    10-30 ms on a busy disk) comes after its time is taken, so it is part of a call's wall time
    but not of its generation time; here it costs nothing and the comparison is fair."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="genperf-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_phases_add_up_to_the_task_and_the_task_to_the_calls_wall_time(wan, ram_dir):
    """A tiny call lasts ~0.1 s: a systematic gap (the monitor starting inside the first call,
    time between phases) of the ~45 ms once seen would fail the closest of three fresh runs."""
    task_gaps, phase_gaps = [], []
    for trial in range(3):
        settings = Settings(data_dir=ram_dir / str(trial), monitoring_interval_seconds=3600.0)
        monitor = PerformanceMonitor(settings)  # a real SQLite file, opened on start
        try:
            pipe = monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
            began = time.perf_counter()
            pipe(**CALL, num_inference_steps=2)
            wall = time.perf_counter() - began
            record = pipe.last_record
        finally:
            monitor.close()
        total = record.generation_time_seconds
        phases = sum(p.duration_seconds for p in record.phases)
        assert [p.name for p in record.phases] == PHASES
        assert phases <= total + 1e-9 <= wall + 2e-9  # each measured inside the other
        task_gaps.append(wall - total)
        phase_gaps.append(total - phases)
    assert min(task_gaps) < 0.02, task_gaps
    assert min(phase_gaps) < 0.01, phase_gaps


def test_the_next_call_reuses_the_loaded_model(monitor, tiny_wan_dir):
    from diffusers import WanPipeline

    pipe = load_pipeline(
        WanPipeline, tiny_wan_dir, monitor=monitor, model_type="m", dtype=torch.float32
    )
    pipe.set_progress_bar_config(disable=True)
    first = (pipe(**CALL, num_inference_steps=2), pipe.last_record)[1]
    second = (pipe(**CALL, num_inference_steps=2), pipe.last_record)[1]
    assert first.weights_memory_mapped is True  # diffusers' default: mmap
    assert first.model_load_time_seconds is not None and "model_cached" not in (
        first.optimizations_applied
    )
    assert second.model_load_time_seconds is None
    assert "model_cached" in second.optimizations_applied
    assert first.task_id != second.task_id


def test_the_users_callback_runs_and_its_return_is_honoured(monitor, wan):
    pipe = monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
    seen = []

    def zero_latents(p, step, timestep, tensors):
        seen.append((step, sorted(tensors)))
        return {"latents": torch.zeros_like(tensors["latents"])}

    out = pipe(
        **{**CALL, "output_type": "latent"},
        num_inference_steps=3,
        callback_on_step_end=zero_latents,
    )
    assert seen == [(0, ["latents"]), (1, ["latents"]), (2, ["latents"])]
    assert torch.count_nonzero(out.frames) == 0  # the callback's latents were used
    assert len(pipe.last_record.step_times_seconds) == 3
    assert [p.name for p in pipe.last_record.phases] == ["text_encode", "denoise"]


def test_a_pipeline_callback_object_gets_its_tensor_inputs(monitor, wan):
    from diffusers.callbacks import PipelineCallback

    seen = []

    class Watch(PipelineCallback):
        tensor_inputs = ("latents", "prompt_embeds")

        def __init__(self):
            super().__init__(cutoff_step_ratio=1.0)

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            seen.append(sorted(callback_kwargs))
            return callback_kwargs

    pipe = monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
    pipe(**CALL, num_inference_steps=2, callback_on_step_end=Watch())
    assert seen == [["latents", "prompt_embeds"]] * 2


def test_a_failure_is_recorded_in_its_phase_and_reraised_unchanged(monitor, wan):
    pipe = monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
    bad = torch.zeros(1, 32, 7)  # prompt embeddings of the wrong width
    call = {k: v for k, v in CALL.items() if k != "prompt"}
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied") as info:
        pipe(
            **call,
            prompt_embeds=bad,
            negative_prompt_embeds=bad,
            num_inference_steps=2,
            task_id="bad-input",
        )
    assert type(info.value) is RuntimeError  # the pipeline's own exception
    assert any("torch" in str(tb.path) for tb in info.traceback)
    record = monitor.get_task_metrics("bad-input")
    assert record.status is TaskStatus.FAILED
    assert record.failed_phase == "denoise"
    assert record.error_category == ErrorCategory.INVALID_INPUT.value
    assert record.recovery_suggestions
    assert record.phase("denoise").failed
    assert "mat1 and mat2" in record.error_message


def test_a_call_can_join_a_task_with_its_model_load(monitor, tiny_wan_dir):
    from diffusers import DiffusionPipeline

    with monitor.track("joined", model_type="tiny-wan-t2v", resolution="64x64", steps=2) as task:
        task.update(optimizations_applied=["alloc:expandable_segments"])
        pipe = load_pipeline(
            DiffusionPipeline,
            tiny_wan_dir,
            monitor=monitor,
            model_type="tiny-wan-t2v",
            task=task,
            dtype=torch.float32,
            disable_mmap=True,
        )
        pipe.set_progress_bar_config(disable=True)
        pipe(**CALL, num_inference_steps=2, task=task)
    record = task.record
    assert [p.name for p in record.phases] == ["model_load", *PHASES]
    assert record.model_load_time_seconds == pytest.approx(
        record.phase("model_load").duration_seconds, abs=0.05
    )
    assert record.weights_memory_mapped is False
    assert {"alloc:expandable_segments", "attention:sdpa"} <= set(record.optimizations_applied)
    assert pipe.last_record is None  # the call did not own the task


def test_a_corrupt_model_fails_its_task_in_model_load(monitor, tiny_wan_dir, tmp_path):
    import shutil

    from diffusers import DiffusionPipeline

    broken = tmp_path / "broken"
    shutil.copytree(tiny_wan_dir, broken)
    weights = next((broken / "transformer").glob("*.safetensors"))
    with weights.open("r+b") as f:
        f.truncate(100)
    with (
        pytest.raises(OSError, match="Unable to load weights"),
        monitor.track("corrupt", model_type="tiny-wan-t2v") as task,
    ):
        load_pipeline(DiffusionPipeline, broken, monitor=monitor, model_type="x", task=task)
    record = task.record
    assert record.failed_phase == "model_load"
    assert record.error_category == ErrorCategory.MODEL_LOAD_ERROR.value
    assert any("corrupt" in s or "truncated" in s for s in record.recovery_suggestions)


def test_detach_takes_the_hooks_off(monitor, wan):
    pipe = monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
    assert "encode_prompt" in wan.__dict__ and "decode" in wan.vae.__dict__
    assert wan.transformer._forward_pre_hooks
    assert pipe.detach() is wan
    assert "encode_prompt" not in wan.__dict__ and "decode" not in wan.vae.__dict__
    assert not wan.transformer._forward_pre_hooks and not wan.transformer_2._forward_pre_hooks


def test_wrapping_a_monitored_pipeline_rewraps_the_raw_one(monitor, wan):
    first = MonitoredPipeline(wan, monitor, model_type="first")
    second = MonitoredPipeline(first, monitor, model_type="second")  # the class, not the verb
    assert second.pipeline is wan  # not a wrapper around a wrapper
    assert len(wan.transformer._forward_pre_hooks) == 1  # one set of hooks: the newest's
    second(**CALL, num_inference_steps=2, task_id="rewrapped")
    assert monitor.get_task_metrics("rewrapped").model_type == "second"
    assert first.last_record is None


def test_hooks_follow_a_replaced_component(monitor, wan):
    pipe = monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
    pipe(**CALL, num_inference_steps=2)
    wan.transformer_2 = wan.transformer  # one expert for every step now
    pipe(**CALL, num_inference_steps=8)
    assert pipe.last_call.step_experts == ("transformer",) * 8  # the module that ran
    assert len(pipe.last_record.step_times_seconds) == 8
    assert pipe.last_call.denoiser_calls == {"transformer": 16}


def test_unmonitored_calls_through_the_raw_pipeline_are_not_recorded(monitor, wan):
    monitor_pipeline(wan, monitor, model_type="tiny-wan-t2v")
    wan(**CALL, num_inference_steps=2)  # the hooks are there, but no task is running
    assert monitor.active_tasks() == []
    assert monitor.self_stats()["tasks_written"] == 0
