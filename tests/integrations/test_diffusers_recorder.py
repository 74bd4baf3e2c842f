"""The call recorder's rules on a manual clock, a pipeline without step callbacks, and the
promise that genperf imports without torch or diffusers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from diffusers_support import torch

from genperf.integrations.call_recorder import CallRecorder, CallSummary
from genperf.integrations.diffusers import monitor_pipeline
from genperf.testing import ManualClock


def _recorder(monitor, clock, **kw):
    monitor.start_task_monitoring("t", "m")
    return CallRecorder(monitor, "t", clock=clock, **kw)


def test_steps_run_from_the_first_forward_to_the_scheduler_step(monitor):
    clock = ManualClock(0.0)
    rec = _recorder(monitor, clock, boundary_timestep=875.0)
    rec.encode_started()
    clock.advance(1.0)
    rec.encode_finished()
    clock.advance(0.5)  # preparing latents: no step
    for expert, seconds in (("transformer", 3.0), ("transformer_2", 1.0), ("transformer_2", 1.0)):
        rec.denoiser_forward(expert)
        clock.advance(seconds / 2)
        rec.denoiser_forward(expert)  # classifier-free guidance: a second forward
        clock.advance(seconds / 2)
        rec.step_finished(999)
        clock.advance(0.25)  # the user's callback: not a step's time
    rec.decode_started()
    summary = rec.finish(None)
    assert summary.step_times_seconds == (3.0, 1.0, 1.0)
    assert summary.step_experts == ("transformer", "transformer_2", "transformer_2")
    assert summary.denoiser_calls == {"transformer": 2, "transformer_2": 4}
    assert summary.warmup_steps == (0, 1)
    assert summary.steady_step_seconds == 1.0
    record = monitor.complete_task_monitoring("t")
    assert [p.name for p in record.phases] == ["text_encode", "denoise", "vae_decode"]


def test_without_forward_hooks_the_expert_comes_from_the_boundary(monitor):
    rec = _recorder(monitor, ManualClock(0.0), boundary_timestep=875.0)
    for t in (999.0, 875.0, 874.9):
        rec.step_finished(t)
    assert rec.finish(None).step_experts == ("transformer", "transformer", "transformer_2")
    monitor.complete_task_monitoring("t")


def test_a_failure_between_encoding_and_the_first_step_is_in_denoise(monitor):
    rec = _recorder(monitor, ManualClock(0.0))
    rec.encode_started()
    rec.encode_finished()
    rec.finish(RuntimeError("prepare_latents failed"))
    record = monitor.complete_task_monitoring("t", success=False, error="x")
    assert record.failed_phase == "denoise"


def test_one_step_per_forward_without_step_callbacks(monitor):
    clock = ManualClock(0.0)
    rec = _recorder(monitor, clock, step_per_forward=True, first_expert="unet")
    for _ in range(3):
        rec.denoiser_forward("unet")
        clock.advance(2.0)
    summary = rec.finish(None)
    assert summary.step_times_seconds == (2.0, 2.0, 2.0)
    assert summary.step_experts == ("unet",) * 3
    monitor.complete_task_monitoring("t")


def test_summary_of_no_steps():
    summary = CallSummary("t")
    assert summary.warmup_step_seconds is None
    assert summary.steady_step_seconds is None
    assert summary.warmup_steps == ()


def test_a_ddpm_pipeline_without_step_callbacks_is_monitored(monitor):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(32, 64),
        norm_num_groups=32,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    ddpm = DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000))
    ddpm.set_progress_bar_config(disable=True)
    pipe = monitor_pipeline(ddpm, monitor, model_type="ddpm-tiny")
    pipe(batch_size=1, num_inference_steps=4, output_type="np")
    record = pipe.last_record
    assert [p.name for p in record.phases] == ["denoise"]
    assert len(record.step_times_seconds) == 4
    assert pipe.last_call.step_experts == ("unet",) * 4
    assert record.steps == 4
    assert record.resolution == "unknown"


def test_genperf_imports_without_torch_or_diffusers():
    code = (
        "import sys\n"
        "for name in ('torch', 'diffusers', 'transformers', 'accelerate'):\n"
        "    sys.modules[name] = None  # an import of it now fails\n"
        "import genperf.integrations.diffusers, genperf.generation\n"
        "from genperf.integrations import monitor_pipeline\n"
        "assert 'torch' not in [m for m, v in sys.modules.items() if v is not None]\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("steps", [1, 3])
def test_warmup_steps_of_a_single_expert(steps):
    summary = CallSummary("t", (5.0,) + (1.0,) * (steps - 1), ("transformer",) * steps)
    assert summary.warmup_steps == (0,)
    assert summary.steady_step_seconds == (1.0 if steps > 1 else None)
