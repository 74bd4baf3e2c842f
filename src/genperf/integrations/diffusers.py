"""Monitored diffusers pipelines: one line makes every call a monitored task.

::

    from genperf.integrations.diffusers import load_pipeline, monitor_pipeline

    pipe = load_pipeline(WanPipeline, "/models/Wan2.2-T2V-A14B-Diffusers", monitor=monitor,
                         model_type="t2v-A14B", dtype=torch.bfloat16)   # model load timed
    # or, for a pipeline you already have: pipe = monitor_pipeline(pipe, monitor, model_type=...)
    video = pipe(prompt, height=720, width=1280, num_frames=81).frames   # one monitored task

Each call records, without more code: the phases ``text_encode`` / ``denoise`` / ``vae_decode``
with their durations and peak memory (they cover the whole call, so they add up to the task's
time), every denoising step's time (the first, the warm-up,
kept apart in :class:`CallSummary`), which expert ran each step of a two-expert Wan2.2 model,
the optimisations the pipeline runs with (:func:`detect_optimizations`), and the model load
(its time, and whether the weights were memory-mapped: then the real reading happens during
the first step, which is why the service loads with ``disable_mmap=True``). The caller's own
``callback_on_step_end`` is still called and what it returns is honoured.

A failure completes the task as failed, in the phase it happened, with the monitor's diagnosis
(error_category, recovery_suggestions), and the exception propagates unchanged.

Two keyword arguments of a call belong to genperf and are not passed to the pipeline:
``task_id`` (the id of the task the call creates; generated when absent) and ``task`` (a
:class:`~genperf.monitor.TaskHandle` of a task already open: the call joins it instead, so a
service can put the model load and the call in one task).

torch and diffusers are never imported here: the module loads without the ``diffusers`` extra.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any

from genperf import optimizations as opt
from genperf.integrations.call_recorder import DENOISE, TEXT_ENCODE, CallRecorder, CallSummary
from genperf.integrations.pipeline_hooks import PipelineHooks
from genperf.integrations.pipeline_inspect import denoisers, detect_optimizations
from genperf.monitor import PerformanceMonitor, TaskHandle
from genperf.records import UPDATABLE_FIELDS, TaskRecord

logger = logging.getLogger("genperf.integrations")

# Record fields written only when this genperf's TaskRecord has them.
_OPTIONAL_FIELDS = ("step_experts", "warmup_step_seconds")


@dataclass(frozen=True, slots=True)
class LoadInfo:
    """How a pipeline was loaded: ``from_pretrained``'s wall time and whether weights were
    memory-mapped (diffusers' default; ``disable_mmap=True`` reads them during the load)."""

    seconds: float
    memory_mapped: bool


class MonitoredPipeline:
    """A diffusers pipeline whose every call is a monitored task.

    Everything but calling is delegated to the wrapped pipeline (``pipe.vae``,
    ``pipe.enable_model_cpu_offload()`` ...); :attr:`pipeline` is the pipeline itself.

    Args:
        pipe: any diffusers pipeline (WanPipeline, a DiffusionPipeline subclass ...), or an
            already monitored one (re-wrapped for this monitor).
        model_type: the task's model_type (``t2v-A14B``, ``tiny-wan-t2v`` ...).
        model_used: the task's model_used (a repo id or path); default: model_type.
        load: how it was loaded, recorded by the first call (see :func:`load_pipeline`).
        on_phase: told the name of each phase as it begins (progress reporting).

    Attributes:
        last_call: what the integration saw in the latest call on any thread.
        last_record: the completed record of the latest call that owned its task.
    """

    def __init__(
        self,
        pipe: Any,
        monitor: PerformanceMonitor,
        *,
        model_type: str,
        model_used: str | None = None,
        load: LoadInfo | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        if isinstance(pipe, MonitoredPipeline):
            pipe = pipe.detach()  # one set of hooks: the newest wrapper's
        self.pipeline = pipe
        self.monitor = monitor
        self.model_type = model_type
        self.model_used = model_used
        self.last_call: CallSummary | None = None
        self.last_record: TaskRecord | None = None
        self._pending_load = load
        self._on_phase = on_phase
        self._calls = 0
        self._hooks = PipelineHooks(pipe)
        self._hooks.install()
        # Start sampling and open the store now: a first call must not pay for it (its time
        # would fall outside the task and the call would take longer than it records).
        monitor.start()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "pipeline":
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __repr__(self) -> str:
        return f"MonitoredPipeline({type(self.pipeline).__name__}, model_type={self.model_type!r})"

    @property
    def _pipeline_class(self) -> Any:
        return type(self.pipeline)

    def to(self, *args: Any, **kwargs: Any) -> MonitoredPipeline:
        """``pipeline.to(...)``, returning this wrapper (``pipe = pipe.to("cuda")`` keeps it)."""
        self.pipeline.to(*args, **kwargs)
        return self

    def detach(self) -> Any:
        """Take genperf's hooks off the pipeline and return it, unmonitored."""
        self._hooks.remove()
        return self.pipeline

    def __call__(
        self, *args: Any, task_id: str | None = None, task: TaskHandle | None = None, **kwargs: Any
    ) -> Any:
        """Run the pipeline as one monitored task (or inside ``task``); returns its output."""
        monitor = self.monitor
        if task is not None:
            tid, owned = task.task_id, False
        else:
            tid, owned = task_id or uuid.uuid4().hex, True
            monitor.start_task_monitoring(tid, self.model_type, **self._task_fields(kwargs))
        self._hooks.install()
        recorder = self._recorder(tid, kwargs)
        call_kwargs = self._with_step_callback(recorder, kwargs)
        self._hooks.recorder = recorder
        error: BaseException | None = None
        try:
            self._safely(recorder.begin, self._first_phase())
            self._safely(self._record_setup, tid, joined=not owned)
            return self.pipeline(*args, **call_kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._hooks.recorder = None
            self._calls += 1
            self._safely(self._finish, recorder, error, owned)

    # --- one call ---------------------------------------------------------------------------

    def _task_fields(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        defaults = _call_defaults(self._pipeline_class)
        height = kwargs.get("height", defaults.get("height"))
        width = kwargs.get("width", defaults.get("width"))
        steps = kwargs.get("num_inference_steps", defaults.get("num_inference_steps"))
        frames = kwargs.get("num_frames", defaults.get("num_frames"))
        fields: dict[str, Any] = {
            "resolution": f"{width}x{height}" if _is_int(width) and _is_int(height) else "unknown",
            "steps": steps if _is_int(steps) else None,
        }
        if _is_int(frames):
            fields["frames"] = frames
        if self.model_used:
            fields["model_used"] = self.model_used
        return fields

    def _first_phase(self) -> str:
        """Where a call starts: encoding the prompt, or denoising for pipelines without one."""
        return TEXT_ENCODE if callable(getattr(self.pipeline, "encode_prompt", None)) else DENOISE

    def _recorder(self, task_id: str, kwargs: Mapping[str, Any]) -> CallRecorder:
        experts = list(denoisers(self.pipeline))
        return CallRecorder(
            self.monitor,
            task_id,
            boundary_timestep=_boundary_timestep(self.pipeline),
            first_expert=experts[0] if experts else "transformer",
            second_expert=experts[1] if len(experts) > 1 else "transformer_2",
            step_per_forward=not _accepts(self._pipeline_class, "callback_on_step_end"),
            on_phase=self._on_phase,
        )

    def _with_step_callback(self, recorder: CallRecorder, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's kwargs with a step callback that records, then runs the caller's own."""
        if not _accepts(self._pipeline_class, "callback_on_step_end"):
            return kwargs
        user = kwargs.get("callback_on_step_end")
        call_kwargs = dict(kwargs)
        inputs = getattr(user, "tensor_inputs", None)
        if user is not None and inputs is not None:
            # The pipeline reads PipelineCallback.tensor_inputs only from the object it is given.
            call_kwargs.setdefault("callback_on_step_end_tensor_inputs", list(inputs))

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> Any:
            try:
                recorder.step_finished(timestep)
            except Exception:
                logger.warning("genperf step hook failed; the generation goes on", exc_info=True)
            if user is None:
                return {}
            return user(pipe, step, timestep, tensors)

        call_kwargs["callback_on_step_end"] = on_step_end
        return call_kwargs

    def _record_setup(self, task_id: str, *, joined: bool) -> None:
        """Optimisations and the model load, set on the task as the call begins."""
        tokens = set(detect_optimizations(self.pipeline))
        fields: dict[str, Any] = {}
        load, self._pending_load = self._pending_load, None
        if load is not None:
            fields["model_load_time_seconds"] = load.seconds
            fields["weights_memory_mapped"] = load.memory_mapped
        elif self._calls > 0:
            tokens.add(opt.MODEL_CACHED)  # loaded before and kept: this call paid no load
        if joined:
            current = self.monitor.get_task_metrics(task_id)
            if current is not None:
                tokens.update(current.optimizations_applied)
        fields["optimizations_applied"] = sorted(tokens)
        self.monitor.update_task_metrics(task_id, **fields)

    def _finish(self, recorder: CallRecorder, error: BaseException | None, owned: bool) -> None:
        """Close the phase, write the steps, and complete the task if the call owns it."""
        try:
            summary = recorder.finish(error)
        except Exception:
            logger.warning("genperf could not close the call's phase", exc_info=True)
            summary = recorder.summary()
        self.last_call = summary
        fields: dict[str, Any] = {"step_times_seconds": list(summary.step_times_seconds)}
        optional = {
            "step_experts": list(summary.step_experts),
            "warmup_step_seconds": summary.warmup_step_seconds,
        }
        fields.update({k: v for k, v in optional.items() if k in UPDATABLE_FIELDS})
        self._safely(self.monitor.update_task_metrics, summary.task_id, **fields)
        if owned:
            self.last_record = self.monitor.complete_task_monitoring(
                summary.task_id, success=error is None, error=error
            )

    def _safely(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            logger.warning("genperf could not record part of a call", exc_info=True)


# The public verb for wrapping: the class does the work (re-wrapping included).
monitor_pipeline = MonitoredPipeline


def load_pipeline(
    cls: Any,
    path: str | PathLike[str],
    *,
    monitor: PerformanceMonitor,
    model_type: str,
    task: TaskHandle | None = None,
    on_phase: Callable[[str], None] | None = None,
    **from_pretrained_kwargs: Any,
) -> MonitoredPipeline:
    """``cls.from_pretrained(path, **kwargs)``, timed, as a monitored pipeline.

    With ``task`` the load is that task's ``model_load`` phase (a load failure then fails the
    task, diagnosed as a model load error). Without, the load time and the mmap mode are
    recorded by the pipeline's first call. ``disable_mmap=True`` makes the load read the
    weights (a true load time); diffusers' default memory-maps them, and the reading then
    happens in the first denoising step.
    """
    mapped = not bool(from_pretrained_kwargs.get("disable_mmap", False))
    began = time.perf_counter()
    if task is not None:
        if on_phase is not None:
            on_phase("model_load")
        with task.phase("model_load"):
            pipe = cls.from_pretrained(path, **from_pretrained_kwargs)
    else:
        pipe = cls.from_pretrained(path, **from_pretrained_kwargs)
    info = LoadInfo(seconds=time.perf_counter() - began, memory_mapped=mapped)
    if task is not None:
        task.update(model_load_time_seconds=info.seconds, weights_memory_mapped=info.memory_mapped)
    return MonitoredPipeline(
        pipe,
        monitor,
        model_type=model_type,
        model_used=str(path) if task is None else None,
        load=None if task is not None else info,
        on_phase=on_phase,
    )


# --- pipeline introspection (cached per class) ------------------------------------------------


@functools.cache
def _signature(cls: Any) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(cls.__call__).parameters
    except (TypeError, ValueError):
        return {}


def _accepts(cls: Any, name: str) -> bool:
    return name in _signature(cls)


@functools.cache
def _call_defaults(cls: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in _signature(cls).items()
        if p.default is not inspect.Parameter.empty
    }


def _boundary_timestep(pipe: Any) -> float | None:
    """``boundary_ratio * num_train_timesteps`` of a two-expert Wan2.2 pipeline, else None."""
    try:
        ratio = _config_value(pipe, "boundary_ratio")
        train = _config_value(getattr(pipe, "scheduler", None), "num_train_timesteps")
        return float(ratio) * float(train) if ratio is not None and train is not None else None
    except (TypeError, ValueError):
        return None


def _config_value(obj: Any, key: str) -> Any:
    config = getattr(obj, "config", None)
    if isinstance(config, Mapping):
        return config.get(key)
    return getattr(config, key, None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
