"""Loading a registered model as a monitored pipeline, and calling it for a request.

Shared by the in-process runner and the worker subprocess, so both generate the same way.
torch and diffusers are imported here, on first use, never when genperf is imported.
"""

from __future__ import annotations

import functools
import importlib
import os
import time
from collections.abc import Callable
from typing import Any

from genperf.generation.errors import GenerationTimeoutError
from genperf.generation.registry import ModelSpec
from genperf.generation.request import GenerationRequest
from genperf.integrations.diffusers import MonitoredPipeline, load_pipeline
from genperf.monitor import PerformanceMonitor, TaskHandle


@functools.cache
def prepare_libraries() -> None:
    """Import torch, diffusers and transformers (about 3 s, once: call it before a task
    starts so the task does not pay for it), silence their progress bars and chatter, and
    keep them off the Hugging Face Hub (models are local directories)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    importlib.import_module("torch")
    diffusers: Any = importlib.import_module("diffusers")
    transformers: Any = importlib.import_module("transformers")
    _ = diffusers.DiffusionPipeline  # resolves diffusers' lazy modules now, not in a task
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_model(
    spec: ModelSpec,
    monitor: PerformanceMonitor,
    task: TaskHandle | None,
    *,
    on_phase: Callable[[str], None] | None = None,
) -> MonitoredPipeline:
    """Load ``spec`` as the ``model_load`` phase of ``task``; a monitored pipeline. Without a
    task (a measured grid), the load is recorded by the pipeline's first call."""
    prepare_libraries()
    torch: Any = importlib.import_module("torch")
    pipeline_class = importlib.import_module("diffusers").DiffusionPipeline

    kwargs = dict(spec.load_kwargs)
    if isinstance(kwargs.get("dtype"), str):
        kwargs["dtype"] = getattr(torch, kwargs["dtype"])
    pipe = load_pipeline(
        pipeline_class,
        spec.path,
        monitor=monitor,
        model_type=spec.model_type,
        task=task,
        on_phase=on_phase,
        **kwargs,
    )
    if torch.cuda.is_available():
        pipe.pipeline.to("cuda")
    pipe.pipeline.set_progress_bar_config(disable=True)
    return pipe


def generation_kwargs(
    request: GenerationRequest, spec: ModelSpec, *, deadline: Deadline | None = None
) -> dict[str, Any]:
    """The pipeline call for a request; frames come back as numpy (nothing is saved).
    With a ``deadline``, the generation stops at the first denoising step that ends past it."""
    kwargs = {
        **spec.call_kwargs,
        "prompt": request.prompt,
        "height": request.height,
        "width": request.width,
        "num_frames": request.frames,
        "num_inference_steps": request.steps,
        "output_type": "np",
    }
    if deadline is not None:
        kwargs["callback_on_step_end"] = deadline.step_callback
    return kwargs


class Deadline:
    """A run's time limit, checked at the end of every denoising step (a thread cannot be
    stopped from outside; the steps are where the time goes). Raises
    :class:`GenerationTimeoutError` inside the step, so the task fails as ``timeout`` in the
    ``denoise`` phase and the worker goes on with the next request."""

    def __init__(self, limit_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_seconds = limit_seconds
        self._clock = clock
        self._ends = clock() + limit_seconds

    def check(self) -> None:
        if self._clock() >= self._ends:
            raise GenerationTimeoutError(self.limit_seconds)

    def step_callback(self, pipe: Any, step: int, timestep: Any, tensors: Any) -> dict[str, Any]:
        self.check()
        return {}
