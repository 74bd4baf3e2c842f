"""Running one request in this process: load (or reuse) the model, then generate, monitored.

The task is opened before the model is loaded, so a load that fails (a corrupt or missing
model) is a failed task with its ``model_load`` phase and diagnosis, like any other failure.
"""

from __future__ import annotations

from collections.abc import Callable

from genperf.generation.model_cache import PipelineCache
from genperf.generation.pipelines import (
    Deadline,
    generation_kwargs,
    load_model,
    prepare_libraries,
)
from genperf.generation.presets import apply, preset
from genperf.generation.registry import ModelRegistry
from genperf.generation.request import GenerationRequest
from genperf.monitor import PerformanceMonitor, TaskHandle
from genperf.records import TaskRecord

OnRun = Callable[[str], None]  # told the run_id of the monitored run as soon as it exists


class InProcessRunner:
    """Runs requests in this process, keeping loaded models in ``cache``."""

    def __init__(
        self, monitor: PerformanceMonitor, registry: ModelRegistry, cache: PipelineCache
    ) -> None:
        self.monitor = monitor
        self.registry = registry
        self.cache = cache

    def run(
        self, request: GenerationRequest, on_run: OnRun, *, time_limit_seconds: float | None = None
    ) -> TaskRecord:
        """Generate; returns the completed record (failed or not). Past ``time_limit_seconds``
        (counted from here) the generation stops at its next denoising step, a ``timeout``.

        Raises:
            ModelNotAvailableError: the model type no longer resolves (before any task).
            Exception: whatever escaped before the monitored task began.
        """
        deadline = None if time_limit_seconds is None else Deadline(time_limit_seconds)
        spec = self.registry.ensure_ready(request.model_type)  # building is not the task's cost
        prepare_libraries()  # nor are the imports
        key = f"{spec.model_type}@{spec.path}"
        handle: TaskHandle | None = None
        try:
            with request.track(self.monitor) as handle:
                current = self.monitor.get_task_metrics(request.task_id)
                if current is not None:
                    on_run(current.run_id)
                pipe = self.cache.get(key)
                if pipe is None:
                    pipe = load_model(spec, self.monitor, handle)
                    self.cache.put(key, pipe)
                if request.preset is not None:
                    apply(pipe.pipeline, preset(request.preset))
                pipe(**generation_kwargs(request, spec, deadline=deadline), task=handle)
        except Exception:
            if handle is not None and handle.record is not None:
                return handle.record  # the failure is recorded, with its diagnosis
            raise
        assert handle.record is not None
        return handle.record
